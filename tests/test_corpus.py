"""tutor.corpus: scanning, decoding, PDF pages (real pypdf on real files), titles, bad files."""
from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from tutor.corpus import (CorpusError, SourceFile, clean_pdf_text, load_corpus, load_file, note_title,
                          scan)

ROOT = Path(__file__).resolve().parents[1]
MOE_PDF = ROOT / "corpus" / "papers" / "deepseekmoe_2024.pdf"


def src(path: Path, root: Path) -> SourceFile:
    return SourceFile(path, path.relative_to(root).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest())


def assert_one_line_skip(warnings: list[str], name: str, *words: str) -> None:
    hits = [w for w in warnings if w.startswith(f"{name}:")]
    assert len(hits) == 1, warnings
    assert "\n" not in hits[0] and "skipped" in hits[0]
    for w in words:
        assert w in hits[0], hits[0]


# ---- a real bundled paper ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def moe_docs():
    docs, warning = load_file(src(MOE_PDF, ROOT / "corpus"))
    assert warning is None
    return docs


def test_pdf_pages_are_numbered_like_the_pdf(moe_docs):
    reader = PdfReader(str(MOE_PDF))
    assert [d.page for d in moe_docs] == list(range(1, len(reader.pages) + 1))  # every page has text
    # "con-\nventional" on page 5 of the PDF (Figure 2's caption), checked with pypdf itself
    raw5 = reader.pages[4].extract_text()
    assert "MoE layer with the con-\nventional top-2 routing" in raw5
    phrase = "MoE layer with the conventional top-2 routing strategy"
    assert [d.page for d in moe_docs if phrase in d.text] == [5]
    assert [d.page for d in moe_docs if "Figure 3 | Ablation studies for DeepSeekMoE" in d.text] == [12]
    d5 = moe_docs[4]
    assert (d5.file, d5.path, d5.page) == ("deepseekmoe_2024.pdf", "papers/deepseekmoe_2024.pdf", 5)


def test_pdf_title_comes_from_the_manifest(moe_docs):
    # the PDF's own /Title is empty; papers/MANIFEST.tsv names it
    assert {d.title for d in moe_docs} == {
        "DeepSeekMoE: Towards Ultimate Expert Specialization in Mixture-of-Experts Language Models"}


# ---- clean_pdf_text ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("a gat-\ning network", "a gating network"),  # hyphenated across lines
    ("Mixture-of-\nExperts", "Mixture-of-\nExperts".replace("\n", " ")),  # capital: a real hyphen
    ("state-of-the-art", "state-of-the-art"),
    ("one line\nnext line", "one line next line"),  # soft break inside a paragraph
    ("para one.\n\npara two.", "para one.\n\npara two."),  # paragraph break kept
    ("混合专家\n模型", "混合专家模型"),  # no space glued into Chinese text
    ("模型。\nMoE", "模型。 MoE"),
    ("e\ufb03cient \ufb01ne \ufb02ow", "e\ufb03cient fine flow"),  # fi/fl ligatures
    ("nul\x00byte", "nulbyte"),
    ("windows\r\nbreaks\rhere", "windows breaks here"),
    ("too    many \t spaces", "too many spaces"),
    ("  \n padded \n  ", "padded"),
])
def test_clean_pdf_text(raw, clean):
    assert clean_pdf_text(raw) == clean


def test_real_pdf_lines_are_joined_and_dehyphenated(tmp_path, make_pdf):
    pdf = make_pdf(tmp_path / "papers" / "tiny.pdf",
                   [["Mixture-of-Experts models use a gat-", "ing network to route", "each token."],
                    ["Page two is about load balancing."]], title="A Tiny Paper")
    docs, _ = load_file(src(pdf, tmp_path))
    assert [d.page for d in docs] == [1, 2]
    assert docs[0].text == "Mixture-of-Experts models use a gating network to route each token."
    assert docs[1].text == "Page two is about load balancing."
    assert {d.title for d in docs} == {"A Tiny Paper"}  # the PDF's /Title without a manifest


def test_pdf_title_falls_back_to_file_stem(tmp_path, make_pdf):
    pdf = make_pdf(tmp_path / "untitled_paper.pdf", [["Some text."]])
    docs, _ = load_file(src(pdf, tmp_path))
    assert docs[0].title == "untitled_paper"


# ---- note titles ------------------------------------------------------------------------------

@pytest.mark.parametrize("text, title", [
    ("---\ntitle: \"From front matter\"\ntags: [a]\n---\n# Heading\nbody", "From front matter"),
    ("---\ntags: [a]\n---\n\n## **First** `heading`\n\nbody", "First heading"),
    ("plain text\n\n### Third-level 标题 ###\nmore", "Third-level 标题"),
    ("no heading at all\n#hashtag is not a heading", "fallback"),
    ("```bash\n# install first\npip install x\n```\n\n## Real heading\n", "Real heading"),
    ("~~~\n# only code\n~~~\n", "fallback"),
    ("```\n# unclosed fence\n", "fallback"),
    ("#\nnext line is no heading\n", "fallback"),
])
def test_note_title(text, title):
    assert note_title(text, "fallback") == title


def test_note_title_from_manifest_beats_heading(tmp_path):
    (tmp_path / "n.md").write_text("# Heading title\n\nbody\n", encoding="utf-8")
    (tmp_path / "m.md").write_text("# Own heading\n\nbody\n", encoding="utf-8")
    (tmp_path / "MANIFEST.tsv").write_text("file\ttitle\nn.md\tManifest title\n", encoding="utf-8")
    titles = {d.file: d.title for d in load_corpus(tmp_path).documents}
    assert titles == {"n.md": "Manifest title", "m.md": "Own heading"}


# ---- scan, .tutorignore -----------------------------------------------------------------------

def test_scan_lists_supported_files_with_hashes(tmp_path):
    for rel in ("a.md", "b.TXT", "c.markdown", "sub/d.md", "img.png", "code.py", ".hidden.md",
                ".obsidian/workspace.md", "sub/.git/x.md"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"# {rel}\n", encoding="utf-8")
    files = scan(tmp_path)
    assert [f.rel for f in files] == ["a.md", "b.TXT", "c.markdown", "sub/d.md"]
    f = files[0]
    assert f.path == tmp_path / "a.md" and f.sha256 == hashlib.sha256(b"# a.md\n").hexdigest()


def test_tutorignore(tmp_path):
    rels = ["keep.md", "secret.md", "drafts/a.md", "notes/drafts/b.md", "notes/c.tmp.md", "notes/d.md",
            "papers/old/e.md", "papers/f.md", "LICENSES/g.txt", "todo.md", "sub/todo.md"]
    for rel in rels:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("text\n", encoding="utf-8")
    (tmp_path / ".tutorignore").write_text(
        "# comment line\n\nsecret.md\ndrafts/\n*.tmp.md\n  papers/old  \nLICENSES/\n/todo.md\n", encoding="utf-8")
    assert [f.rel for f in scan(tmp_path)] == ["keep.md", "notes/d.md", "papers/f.md", "sub/todo.md"]


def test_missing_or_empty_corpus_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        scan(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .md/.txt/.pdf files"):
        scan(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.docx").write_bytes(b"PK")
    (tmp_path / "other" / "y.md").write_text("x")
    (tmp_path / "other" / ".tutorignore").write_text("*.md\n")
    with pytest.raises(CorpusError):
        load_corpus(tmp_path / "other")
    (tmp_path / "afile.md").write_text("x")
    with pytest.raises(CorpusError):
        scan(tmp_path / "afile.md")


# ---- bad files never stop a load --------------------------------------------------------------

def test_encodings(tmp_path):
    (tmp_path / "utf8.md").write_text("# 笔记\n\n残差连接。\n", encoding="utf-8")
    (tmp_path / "bom.md").write_bytes("\ufeff# 带 BOM\n\n正文。\n".encode("utf-8"))
    (tmp_path / "gbk.txt").write_bytes("# 中文笔记\n\n注意力机制让模型关注重要的部分。\n".encode("gb18030"))
    (tmp_path / "utf16.txt").write_bytes("# UTF-16 笔记\n\n记事本保存的 Unicode 文本。\n".encode("utf-16"))
    (tmp_path / "binary.txt").write_bytes(random.Random(0).randbytes(4096))
    (tmp_path / "nul.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00")
    (tmp_path / "empty.md").write_text("  \n\n", encoding="utf-8")
    report = load_corpus(tmp_path)
    docs = {d.file: d for d in report.documents}
    assert set(docs) == {"utf8.md", "bom.md", "gbk.txt", "utf16.txt"}
    assert docs["gbk.txt"].text.startswith("# 中文笔记") and docs["gbk.txt"].title == "中文笔记"
    assert docs["bom.md"].title == "带 BOM" and not docs["bom.md"].text.startswith("\ufeff")
    assert docs["utf16.txt"].title == "UTF-16 笔记"
    assert sorted(report.skipped) == ["binary.txt", "empty.md", "nul.md"]
    assert "gbk.txt: not UTF-8, read as GB18030" in report.warnings
    assert_one_line_skip(report.warnings, "binary.txt", "not UTF-8")
    assert_one_line_skip(report.warnings, "nul.md", "not UTF-8")
    assert_one_line_skip(report.warnings, "empty.md", "empty")
    assert len(report.warnings) == 4


def _encrypted(pdf_bytes: bytes, user_pw: str) -> bytes:
    w = PdfWriter(clone_from=io.BytesIO(pdf_bytes))
    w.encrypt(user_pw)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_bad_pdfs_are_skipped_and_the_rest_loads(tmp_path, make_pdf):
    good = make_pdf(tmp_path / "good.pdf", [["Expert load balancing keeps every expert busy."]])
    good_bytes = good.read_bytes()
    (tmp_path / "truncated.pdf").write_bytes(good_bytes[: len(good_bytes) // 2])
    (tmp_path / "real_truncated.pdf").write_bytes(MOE_PDF.read_bytes()[:50_000])
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.4\n" + random.Random(1).randbytes(3000))
    (tmp_path / "notapdf.pdf").write_text("just some text with a .pdf suffix\n")
    (tmp_path / "locked.pdf").write_bytes(_encrypted(good_bytes, "pw"))
    (tmp_path / "open_encrypted.pdf").write_bytes(_encrypted(good_bytes, ""))  # empty user password: readable
    make_pdf(tmp_path / "blank.pdf", [[]])  # a page without text (a scan)
    (tmp_path / "note.md").write_text("# Note\n\nStill indexed.\n", encoding="utf-8")

    report = load_corpus(tmp_path)
    loaded = sorted({d.file for d in report.documents})
    assert loaded == ["good.pdf", "note.md", "open_encrypted.pdf"]
    bad = ["blank.pdf", "garbage.pdf", "locked.pdf", "notapdf.pdf", "real_truncated.pdf", "truncated.pdf"]
    assert sorted(report.skipped) == sorted(bad)
    assert len(report.warnings) == len(bad)
    assert_one_line_skip(report.warnings, "locked.pdf", "encrypted")
    assert_one_line_skip(report.warnings, "blank.pdf", "no extractable text")
    for name in ("garbage.pdf", "notapdf.pdf", "real_truncated.pdf", "truncated.pdf"):
        assert_one_line_skip(report.warnings, name, "unreadable PDF")


def test_load_file_raises_value_error_for_a_bad_file(tmp_path):
    p = tmp_path / "x.pdf"
    p.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"^x\.pdf: unreadable PDF"):
        load_file(src(p, tmp_path))
