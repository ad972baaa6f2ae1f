"""Documents → Chunks: heading-aware, sentence-aware, Chinese-aware, with exact offsets.

Written by hand rather than with llama-index's MarkdownNodeParser + SentenceSplitter because we
need three things those don't give together: exact character offsets into the source for every
chunk (citations point at the passage), no cut inside a code line or a table row, and sentence
boundaries for Chinese punctuation (。！？；) as well as English.

A chunk's text is always `document.text[start:end]`.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .records import HEADING_SEP, Chunk, Document
from .text import SENT_END as _SENT_END
from .text import clean_heading
from .text import lines as _lines

_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|")
# d2l-zh repeats each code cell for mxnet (the untagged `{.python .input}`), tensorflow and
# paddle beside pytorch; only the pytorch copy is kept (the others are noise to a learner's search).
# `#@tab all` cells are shared by every framework (there is no separate pytorch copy): kept.
_D2L_OTHER_TAB = re.compile(r"^```\{\.python \.input\}\s*\n(?!#@tab [^\n]*(?:pytorch|\ball\b))")


@dataclass
class _Atom:
    start: int
    end: int
    path: tuple[str, ...]
    kind: str  # heading | prose | code | table | skip (a dropped d2l cell: chunks never span it)
    level: int = 0  # heading level, for kind == "heading"


def _split_long(start: int, end: int, text: str, size: int) -> list[tuple[int, int]]:
    """A single sentence longer than a chunk: cut at the last space/comma before the limit."""
    spans = []
    while end - start > size:
        window = text[start:start + size]
        cut = max(window.rfind(" "), window.rfind("，"), window.rfind(","), window.rfind("、"))
        cut = cut + 1 if cut > size // 2 else size
        spans.append((start, start + cut))
        start += cut
    spans.append((start, end))
    return spans


def _sentences(start: int, line: str, text: str, size: int) -> list[tuple[int, int]]:
    spans, s = [], start
    for m in _SENT_END.finditer(line):
        e = start + m.end()
        if e > s:
            spans.append((s, e))
            s = e
    if s < start + len(line):
        spans.append((s, start + len(line)))
    return [p for a, b in spans for p in _split_long(a, b, text, size)]


def _block_atoms(rows: list[tuple[int, str]], path, kind: str, size: int) -> list[_Atom]:
    """A code block or table: whole if it fits, else line by line (never inside a line)."""
    # spans stop before the line break, so a block of exactly `size` visible chars still fits
    start, end = rows[0][0], rows[-1][0] + len(rows[-1][1].rstrip("\r\n"))
    if end - start <= size:
        return [_Atom(start, end, path, kind)]
    return [_Atom(p, p + len(ln.rstrip("\r\n")), path, kind) for p, ln in rows]


def atomize(doc: Document, size: int) -> list[_Atom]:
    text, lines = doc.text, _lines(doc.text)
    atoms: list[_Atom] = []
    stack: list[tuple[int, str]] = []  # (level, heading)
    path: tuple[str, ...] = ()
    i = 0
    while i < len(lines):
        pos, line = lines[i]
        if _FENCE.match(line):
            fence = _FENCE.match(line).group(1)
            j = i + 1
            while j < len(lines) and not lines[j][1].lstrip().startswith(fence):
                j += 1
            block = lines[i:min(j + 1, len(lines))]
            head = "".join(ln for _, ln in block[:2])
            if not _D2L_OTHER_TAB.match(head):
                atoms += _block_atoms(block, path, "code", size)
            else:
                atoms.append(_Atom(pos, block[-1][0] + len(block[-1][1]), path, "skip"))
            i = j + 1
            continue
        if _TABLE_ROW.match(line):
            j = i
            while j < len(lines) and _TABLE_ROW.match(lines[j][1]):
                j += 1
            atoms += _block_atoms(lines[i:j], path, "table", size)
            i = j
            continue
        m = _HEADING.match(line)
        if m:
            level, title = len(m.group(1)), clean_heading(m.group(2))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            path = tuple(h for _, h in stack if h)
            atoms.append(_Atom(pos, pos + len(line), path, "heading", level))
        elif line.strip():
            atoms += [_Atom(a, b, path, "prose") for a, b in _sentences(pos, line, text, size)]
        i += 1
    return atoms


_KATEX_HTML = re.compile(r'<span class="katex-html".*?</span>(?=</span>\s*(?:[^<]|$))', re.S)
_TAG = re.compile(r"<[^>]{1,400}>")
_D2L_ROLE = re.compile(r":(?:numref|cite|label|width|eqref|ref):`[^`]*`")
_DATA_URI = re.compile(r"\(data:[^)]{20,}\)")


def searchable_text(chunk: Chunk) -> str:
    """What the embedder and BM25 see: the heading path (context for short chunks), then the
    chunk text without markup noise (KaTeX/HTML tags, d2l roles, inline images)."""
    text = _DATA_URI.sub("()", chunk.text)
    text = _KATEX_HTML.sub("", text)
    text = _TAG.sub(" ", text)
    text = _D2L_ROLE.sub("", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    head = chunk.label
    return f"{head}\n{text}" if head else text


def _section(paths: list[tuple[str, ...]], title: str) -> str:
    common = list(paths[0])
    for p in paths[1:]:
        n = 0
        while n < min(len(common), len(p)) and common[n] == p[n]:
            n += 1
        common = common[:n]
    if common and common[0] == title:
        common = common[1:]
    return HEADING_SEP.join(common)


def _chunk_id(doc: Document, start: int, end: int, text: str) -> str:
    key = f"{doc.path}|{doc.page}|{start}|{end}|{text}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def chunk_document(doc: Document, size: int = 500, overlap: int = 80,
                   break_level: int = 3) -> list[Chunk]:
    """Pack atoms greedily into chunks of at most `size` characters.

    A new chunk starts at headings of level ≤ `break_level` (topic boundaries), or when the next
    atom would overflow; deeper headings (e.g. "#### 论文") stay with their siblings when they fit,
    so small note sub-sections travel together. When a long section is split, the new chunk
    repeats the last sentences (≤ `overlap` chars) of the previous one.
    """
    atoms = atomize(doc, size)
    groups: list[list[_Atom]] = []
    cur: list[_Atom] = []
    for atom in atoms:
        if atom.kind == "skip":  # a chunk's text is one span: close it before a dropped cell
            if cur:
                groups.append(cur)
            cur = []
            continue
        if cur and atom.kind == "heading" and atom.level <= break_level:
            groups.append(cur)
            cur = []
        elif cur and atom.end - cur[0].start > size:
            groups.append(cur)
            carry: list[_Atom] = []
            # overlap: trailing prose sentences of the same section, if not yet a heading break
            for prev in reversed(cur):
                if prev.kind != "prose" or prev.path != atom.path:
                    break
                if atom.end - prev.start > size or cur[-1].end - prev.start > overlap:
                    break
                carry.insert(0, prev)
            cur = carry
        cur.append(atom)
    if cur:
        groups.append(cur)

    chunks = []
    for g in groups:
        start, end = g[0].start, g[-1].end
        raw = doc.text[start:end]
        lead = len(raw) - len(raw.lstrip())
        if any(a.kind in ("code", "table") and a.start <= start + lead < a.end for a in g):
            # a chunk that opens on a code line / table row keeps the line's indentation
            lead = max(0, doc.text.rfind("\n", start, start + lead) + 1 - start)
        start, end = start + lead, start + len(raw.rstrip())
        if end <= start:
            continue
        text = doc.text[start:end]
        chunks.append(Chunk(_chunk_id(doc, start, end, text), doc.file, doc.path, doc.title,
                            _section([a.path for a in g], doc.title), doc.page, start, end, text))
    return chunks
