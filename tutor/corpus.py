"""Corpus folder → `Document`s: notes (.md/.txt) whole, PDFs page by page.

Bad files never stop an ingest: they are skipped with a one-line warning (returned, not printed,
so the CLI and UI decide how to show them).
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .credits import manifest_rows
from .errors import CorpusError
from .records import Document
from .text import clean_heading

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
PDF_SUFFIXES = {".pdf"}
IGNORE_FILE = ".tutorignore"


@dataclass
class SourceFile:
    path: Path  # absolute
    rel: str  # relative to the corpus dir, posix
    sha256: str


@dataclass
class LoadReport:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _ignore_patterns(root: Path) -> list[str]:
    f = root / IGNORE_FILE
    if not f.is_file():
        return []
    lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    """gitignore-like: `name`, `*.md`, `drafts/` match any path component; a pattern with a slash
    (`papers/old`, `/todo.md`) matches the path from the corpus root, or a folder on it."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" in pat:
            if any(fnmatch.fnmatch(p, pat.lstrip("/")) for p in prefixes):
                return True
        elif fnmatch.fnmatch(rel, pat) or any(fnmatch.fnmatch(p, pat) for p in parts):
            return True
    return False


def shown_name(rel: str) -> str:
    """A path as text that can be printed and stored: bytes that are not UTF-8 (kept by Python
    as lone surrogates) become \\xNN escapes."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def scan(corpus_dir: Path, warnings: list[str] | None = None) -> list[SourceFile]:
    """List ingestible files with their content hash (the basis of incremental ingest).
    A file whose name is not valid UTF-8 cannot be recorded in the index: it is left out, with a
    warning naming it appended to `warnings`."""
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CorpusError(f"corpus folder not found: {root}")
    patterns = _ignore_patterns(root)
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or any(part.startswith(".") for part in rel.split("/")):
            continue
        if p.suffix.lower() not in TEXT_SUFFIXES | PDF_SUFFIXES or _ignored(rel, patterns):
            continue
        try:
            rel.encode("utf-8")
        except UnicodeEncodeError:
            if warnings is not None:
                warnings.append(f"{shown_name(rel)}: file name is not valid UTF-8; skipped (rename the file)")
            continue
        files.append(SourceFile(p, rel, hashlib.sha256(p.read_bytes()).hexdigest()))
    if not files:
        raise CorpusError(f"no .md/.txt/.pdf files in corpus folder {root}")
    return files


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_FENCED = re.compile(r"^[ \t]{0,3}(```|~~~).*?(?:^[ \t]*\1[^\n]*$|\Z)", re.M | re.S)


def note_title(text: str, fallback: str) -> str:
    """Front-matter `title:` if any, else the first heading, else the file stem."""
    fm = _FRONT_MATTER.match(text)
    if fm:
        m = re.search(r"^title:\s*[\"']?(.+?)[\"']?\s*$", fm.group(1), re.M)
        if m:
            return m.group(1)
    m = _HEADING.search(_FENCED.sub("", text))  # a `# comment` in a code block is no heading
    return clean_heading(m.group(1)) if m else fallback


def read_text_file(path: Path) -> tuple[str, str | None]:
    """Decode a note. UTF-8 first; then GB18030 (notes saved by Chinese Windows editors) when
    the result reads as Chinese; then Windows-1252 when it reads as Latin-script text; then
    charset-normalizer's guess. Almost any byte string decodes as GB18030, so a Latin-1 note
    ("café") would otherwise be indexed as mojibake ("caf閑"): each guess is checked."""
    raw = path.read_bytes()
    name = path.name
    binary = ValueError(f"{name}: not UTF-8 text, and no other encoding fits; skipped (save it as UTF-8)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows Notepad's "Unicode" (UTF-16 + BOM)
        try:
            return raw.decode("utf-16"), None
        except UnicodeDecodeError:
            raise binary from None
    if b"\x00" in raw:  # no text file has NULs; binary data can still decode as GB18030
        raise binary
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    for encoding, plausible in (("gb18030", _reads_as_chinese), ("cp1252", _reads_as_latin)):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if plausible(text):
            return text, f"{name}: not UTF-8, read as {encoding.upper()}"
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is not None and best.encoding not in ("gb18030", "gbk", "gb2312", "cp1252"):
        text = str(best)
        if _mostly_letters(text):
            return text, f"{name}: not UTF-8, read as {best.encoding} (a guess: save it as UTF-8 to be sure)"
    raise binary


def _non_ascii(text: str) -> list[str]:
    return [c for c in text if ord(c) > 0x7f and not c.isspace()]


def _reads_as_chinese(text: str) -> bool:
    """Real Chinese text is nearly all common (GB2312) characters; Latin-1 bytes read as GB18030
    give rare ones (é + a letter is never a GB2312 pair)."""
    chars = _non_ascii(text)
    if not chars:
        return True
    common = sum(1 for c in chars if _in_gb2312(c))
    return common / len(chars) >= 0.9


def _in_gb2312(c: str) -> bool:
    try:
        c.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _reads_as_latin(text: str) -> bool:
    """Windows-1252 text: its non-ASCII characters are Latin letters and the usual punctuation,
    and most letters are plain ASCII (French, German, Spanish… accent a few letters per word;
    Cyrillic or Greek read as Windows-1252 turns every letter into an accented one)."""
    chars = _non_ascii(text)
    ok = sum(1 for c in chars if unicodedata.name(c, "").startswith("LATIN") or c in "’‘“”–—…«»°€£§·×±¿¡©®™")
    letters = sum(1 for c in text if c.isalpha())
    accented = sum(1 for c in chars if c.isalpha())
    return bool(chars) and ok / len(chars) >= 0.9 and accented <= 0.4 * letters


def _mostly_letters(text: str) -> bool:
    chars = _non_ascii(text)
    return bool(chars) and sum(1 for c in chars if unicodedata.category(c)[0] in "LP") / len(chars) >= 0.9


_HYPHEN_BREAK = re.compile(r"(\w)-\n(?=[a-z])")
_SOFT_BREAK = re.compile(r"(?<=[^\n])\n(?=[^\n])")
_CJK_BREAK = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\n(?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


def clean_pdf_text(text: str) -> str:
    """Undo the usual pypdf artefacts: words hyphenated across lines, hard line breaks inside
    paragraphs (kept as one space so English words don't glue), ligatures, NULs."""
    text = text.replace("\x00", "").replace("\ufb01", "fi").replace("\ufb02", "fl")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK.sub(r"\1", text)
    text = _CJK_BREAK.sub("", text)  # a line break inside Chinese text is no word break
    text = _SOFT_BREAK.sub(" ", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def _manifest_titles(folder: Path) -> dict[str, str]:
    """A `MANIFEST.tsv` (file, title columns) next to PDFs names them better than PDF metadata."""
    return {name: row["title"] for name, row in manifest_rows(folder).items() if row.get("title")}


def open_pdf(path: Path):
    """A `pypdf.PdfReader`, decrypted when an empty password opens it (ValueError when it needs
    one). The one way the project opens a PDF: ingest, and the eval's quote check."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(str(path))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ValueError(f"{path.name}: encrypted PDF (needs a password); skipped")
    return reader


def page_texts(reader) -> list[str]:
    """pypdf's raw text of each page ("" for a page without any)."""
    return [page.extract_text() or "" for page in reader.pages]


def read_pdf(path: Path, rel: str, title: str | None, pages: list[str] | None = None) -> list[Document]:
    """The PDF's pages as documents; `pages` are its raw page texts when read_pdf_pages read them."""
    from pypdf.errors import PdfReadError

    try:
        reader = open_pdf(path)
        if not title:
            meta = reader.metadata
            title = (meta.title if meta and meta.title else None) or path.stem
        docs = []
        for i, raw in enumerate(page_texts(reader) if pages is None else pages, start=1):
            text = clean_pdf_text(raw)
            if text:
                docs.append(Document(path.name, rel, title, text, page=i))
    except ValueError:
        raise
    except (PdfReadError, OSError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{path.name}: unreadable PDF ({type(e).__name__}: {e}); skipped") from None
    except Exception as e:  # pypdf raises many internal types on damaged files
        raise ValueError(f"{path.name}: unreadable PDF ({type(e).__name__}); skipped") from None
    if not docs:
        raise ValueError(f"{path.name}: PDF has no extractable text (scanned?); skipped")
    return docs


def load_file(src: SourceFile, pdf_pages: list[str] | None = None) -> tuple[list[Document], str | None]:
    """One file → its documents and an optional warning. Raises ValueError to skip the file.
    `pdf_pages`: a PDF's raw page texts, already read (read_pdf_pages)."""
    title = _manifest_titles(src.path.parent).get(src.path.name)
    if src.path.suffix.lower() in PDF_SUFFIXES:
        return read_pdf(src.path, src.rel, title, pdf_pages), None
    text, warning = read_text_file(src.path)
    if not text.strip():
        raise ValueError(f"{src.path.name}: empty file; skipped")
    return [Document(src.path.name, src.rel, title or note_title(text, src.path.stem), text)], warning


def load_corpus(corpus_dir: Path) -> LoadReport:
    """Every document of the corpus (used by evals to check quotes; ingest goes file by file)."""
    report = LoadReport()
    for src in scan(corpus_dir, warnings=report.warnings):
        try:
            docs, warning = load_file(src)
        except ValueError as e:
            report.warnings.append(str(e))
            report.skipped.append(src.rel)
            continue
        report.documents.extend(docs)
        if warning:
            report.warnings.append(warning)
    return report
