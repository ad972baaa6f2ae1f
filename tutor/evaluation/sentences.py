"""Answer text → sentences with their citation markers, for per-sentence citation scoring.

ALCE scores citations per sentence, so where a sentence ends decides which sources it cites.
Models put markers on both sides of the end punctuation ("…best [1]. Next" and "…最好。[1][2]"),
so markers that directly follow a sentence end stay with that sentence, as do markers alone on
the next line. Splits happen on Chinese 。！？； (and their full-width forms), on English . ! ?
followed by a space or the end, on newlines and at list items. Decimals ("3.57") never split, and
a few common abbreviations ("e.g.", "et al.") are not treated as sentence ends.
"""
from __future__ import annotations

import re

# [1] [1,2] [1, 2] [1-3] 【1】 【1，2】; the body is checked again by `citations_in`
MARKER = re.compile(r"[\[［]\s*\d[\d\s,，、\-–—~]*[\]］]|【\s*\d[\d\s,，、\-–—~]*】")
_MARKERS_AHEAD = re.compile(r"(?:\s*(?:" + MARKER.pattern + r"))+")
_ZH_END = "。！？；"  # always a sentence end, whatever follows
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•·]|\d{1,2}[.)、]|[（(]\d{1,2}[)）]|#{1,6})\s+")
_ABBREV = ("e.g", "i.e", "et al", "etc", "vs", "fig", "eq", "cf", "approx")
_MAX_RANGE = 20  # "[1-999]" is a typo, not 999 citations


def _is_abbrev(before: str) -> bool:
    tail = before.lower().rstrip(".")
    return any(tail.endswith(a) and (len(tail) == len(a) or not tail[-len(a) - 1].isalpha())
               for a in _ABBREV)


def _ends_here(line: str, j: int) -> bool:
    """ASCII . ! ? end a sentence before a space, the end, a citation marker or a CJK character
    ("是什么?它…"); so "3.57" and "e.g.x" stay whole."""
    return (j >= len(line) or line[j].isspace() or bool(_MARKERS_AHEAD.match(line, j))
            or "\u3400" <= line[j] <= "\u9fff")


def _split_line(line: str) -> list[str]:
    out: list[str] = []
    start, i, n = 0, 0, len(line)
    while i < n:
        ch = line[i]
        end = None
        if ch in _ZH_END:
            end = i + 1
        elif ch == "." and _ends_here(line, i + 1) and not _is_abbrev(line[start:i]):
            end = i + 1
        elif ch in "!?" and (_ends_here(line, i + 1) or not re.match(r"[a-z0-9_=]", line[i + 1])):
            end = i + 1  # "最后一点?It was…" splits; "a != b" and "pass?x" do not
        if end is None:
            i += 1
            continue
        while end < n and line[end] in _ZH_END + ".!?”’\"')）":  # "?!", closing quotes
            end += 1
        m = _MARKERS_AHEAD.match(line, end)
        if m:
            end = m.end()
        out.append(line[start:end])
        start = i = end
    out.append(line[start:])
    return out


def split_sentences(text: str) -> list[str]:
    """The answer's sentences, each with its citation markers, stripped; contentless pieces
    (only punctuation or markers) are dropped, a markers-only piece joins the sentence before."""
    sentences: list[str] = []
    for raw in (text or "").splitlines():
        line = _LIST_ITEM.sub("", raw)
        for piece in _split_line(line):
            piece = piece.strip()
            if not piece:
                continue
            if not _has_content(strip_citations(piece)):
                if sentences and MARKER.search(piece):
                    sentences[-1] = f"{sentences[-1]}{piece}"
                continue
            sentences.append(piece)
    return sentences


def _has_content(s: str) -> bool:
    return any(ch.isalnum() for ch in s)


def citations_in(sentence: str) -> list[int]:
    """Source numbers cited in `sentence`, in order of first appearance, without repeats.

    Reads [1], [1,2], [1, 2], [1-3], 【1】 and full-width ［１］; numbers < 1 and malformed or absurd
    markers ("[a]", "[]", "[1-999]") are ignored rather than guessed at."""
    seen: list[int] = []
    for m in MARKER.finditer(sentence):
        body = m.group(0)[1:-1]
        for part in re.split(r"[,，、]|\s+(?=\d)", body):
            part = part.strip()
            if not part:
                continue
            rng = re.fullmatch(r"(\d+)\s*[-–—~]\s*(\d+)", part)
            if rng:
                a, b = sorted((int(rng.group(1)), int(rng.group(2))))
                nums = range(a, b + 1) if b - a < _MAX_RANGE else []
            elif part.isdigit():
                nums = [int(part)]
            else:
                continue
            for x in nums:
                if x >= 1 and x not in seen:
                    seen.append(x)
    return seen


def strip_citations(sentence: str) -> str:
    """The sentence as a judge should see it: markers removed, spaces tidied."""
    s = MARKER.sub("", sentence)
    s = re.sub(r"\s+([.,;:!?。，；：！？、])", r"\1", s)
    return re.sub(r"\s{2,}", " ", s).strip()
