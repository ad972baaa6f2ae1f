"""The one text core: sentences and evidence units with offsets, citation markers, terms, numbers.

Bottom of the import graph (stdlib only), so the chunker, the answer path, the UI and the eval
judges all split and count the same way. Helpers here are neutral building blocks; policy
(what counts as support, which units to keep) lives in the modules that use them, and the eval
judge must not borrow the answer side's policy (see tutor/evaluation/judges.py).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# ---- sentences ---------------------------------------------------------------------------------

# a sentence ends at Chinese 。！？； (optionally followed by closing quotes/brackets), or at
# English .!?; followed by whitespace — the chunker's boundary (changing it changes chunks)
SENT_END = re.compile(r"[。！？；][”’」』）)\]]*|[.!?;][\"')\]]*(?=\s)")

TABLE_ROW = re.compile(r"^\s*\|")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
# an HTML table row in a note or a converted paper ("<tr>", its cells often one per line, "</tr>")
HTML_ROW_OPEN = re.compile(r"^\s*<tr[\s>]", re.I)
HTML_ROW_CLOSE = re.compile(r"</tr\s*>", re.I)
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•·]|\d{1,2}[.)、]|[（(]\d{1,2}[)）]|#{1,6})\s+")
_ZH_END = "。！？；"
_ABBREV = ("e.g", "i.e", "et al", "etc", "vs", "fig", "eq", "cf", "approx")


@dataclass(frozen=True)
class Span:
    """A unit of a text: `text[start:end]`, with what kind of line it came from."""

    start: int
    end: int
    kind: str  # sentence | row | header | code | formula | heading
    # what a reader needs beside the unit: a table row's header row, a code line's label line
    # (the first line of its block when it ends with ":", e.g. "ImageNet Top-5 错误率:")
    context: tuple[int, int] | None = None


def lines(text: str) -> list[tuple[int, str]]:
    """(offset, line with its line break) for every line of `text`."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, line))
        pos += len(line)
    return out


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


_PROGRAM_START = re.compile(r"^\s*(?:(?:def|class|return|import|lambda)\b|from \S+ import\b|(?:for|if|elif|while)\b.*:\s*$)")
_CALL = re.compile(r"[A-Za-z_][\w.]*\(")


def program_line(text: str) -> bool:
    """A line of Python, as a chunk cut from inside a code block shows it outside any fence:
    "def resnet_block(a, b,", "blk.append(Residual(c,", "x, y = d2l.load_data(…)" — a call with an
    assignment or a bracket or comma at the end, and no sentence end."""
    t = text.strip()
    if _PROGRAM_START.match(t):
        return True
    return bool(_CALL.search(t)) and not t.endswith((".", "。")) and \
        (bool(re.search(r"(?<![=!<>])=(?!=)", t)) or t.endswith((",", "(", ")", ":")))


def units(text: str) -> list[Span]:
    """Split a passage into evidence units with exact offsets: prose sentences (never inside
    "3.57" or "e.g."), table rows (the first row of a table is its `header`, the |---| rule is
    skipped), code lines inside fences, `$$` formula lines and headings — each whole."""
    out: list[Span] = []
    prev_row = False
    header: tuple[int, int] | None = None
    label: tuple[int, int] | None = None
    lead: tuple[int, int] | None = None  # the prose line just before, when it ends in ":" ("3. **GRU**:")
    in_code = _starts_in_code(text)
    html_header: tuple[int, int] | None = None
    html_row: int | None = None  # where an open <tr> began
    para: tuple[int, int] | None = None  # the prose lines read so far of an open paragraph

    def flush() -> None:
        nonlocal para
        if para:
            out.extend(Span(s, e, "sentence") for s, e in sentence_spans(text, *para))
        para = None

    for pos, line in lines(text):
        body = line.rstrip("\r\n")
        if not in_code and (html_row is not None or HTML_ROW_OPEN.match(body)):
            flush()
            # an HTML row is one unit however its cells are laid out: the row with <th> cells is
            # the header of the rows after it, as a markdown table's first row is
            if html_row is None:
                html_row = _trim(text, pos, pos + len(body))[0]
            close = HTML_ROW_CLOSE.search(body)
            if close:
                a, b = html_row, pos + close.end()
                html_row = None
                if re.search(r"<th[\s>]", text[a:b], re.I):
                    html_header = (a, b)
                    out.append(Span(a, b, "header"))
                else:
                    out.append(Span(a, b, "row", html_header))
            continue
        if FENCE.match(body):
            flush()
            # a block's lines are labelled by the line that introduces them: the prose lead line
            # before the fence, then any line inside ending in ":" ("Codeforces (编程竞赛):")
            in_code, label = not in_code, (lead if not in_code else None)
            prev_row = False
            lead = None
            continue
        a, b = _trim(text, pos, pos + len(body))
        if a == b:
            flush()
            prev_row = False
            continue
        if in_code:
            out.append(Span(a, b, "code", label))
            if text[b - 1] in ":：":
                label = (a, b)
            continue
        lead = (a, b) if text[a:b].rstrip("*").endswith((":", "：")) else None
        if TABLE_ROW.match(body):
            flush()
            if not TABLE_RULE.match(body):
                if prev_row:
                    out.append(Span(a, b, "row", header))
                else:
                    header = (a, b)
                    out.append(Span(a, b, "header"))
            prev_row = True
            continue
        elif HEADING.match(body):
            flush()
            out.append(Span(a, b, "heading"))
        elif body.strip().startswith("$$") or body.strip().endswith("$$"):
            flush()
            out.append(Span(a, b, "formula"))
        else:
            if para and _continues(text[para[0]:para[1]], body):
                para = (para[0], b)  # a line wrapped inside a sentence: the paragraph goes on
                prev_row = False
                continue
            flush()
            para = (a, b)
        prev_row = False
    flush()
    return out


def _continues(before: str, line: str) -> bool:
    """A prose line is the rest of the sentence above it: that one stops without an end mark
    (d2l's sources wrap lines inside a sentence, at a comma or mid-phrase) and neither is a list
    item, figure, ":label:" role, HTML or CSS line."""
    last = before.rsplit("\n", 1)[-1]
    return not before.rstrip().endswith(tuple(_ZH_END + ".!?:：|")) and _wrappable(last) and \
        _wrappable(line) and not _LIST_ITEM.match(line)


def _wrappable(line: str) -> bool:
    t = line.strip()
    return bool(t) and not t.startswith(("$$", "<", "|", "![", ":", "```", "#")) and \
        not t.endswith((";", ">", "[", "(", "{")) and not program_line(t) and "self." not in t


def _starts_in_code(text: str) -> bool:
    """A chunk cut from inside a code block: its first fence is a bare closing one ("```" with no
    language) and the lines before it are program lines. Read the other way, the closing fence
    would open a block and turn the prose after it into code."""
    before: list[str] = []
    for _, line in lines(text):
        if FENCE.match(line):
            if line.strip() not in ("```", "~~~"):
                return False
            body = [b for b in before if b.strip()]
            return bool(body) and sum(program_line(b) for b in body) * 2 >= len(body)
        before.append(line)
    return False


def parent_item(text: str, pos: int) -> tuple[int, int] | None:
    """When the line at `pos` is a nested list item, the span of the line it hangs under: the
    less-indented list item above it ("2. **World Models** (2018)" over "   - David Ha, Jürgen
    Schmidhuber"), or a "label:" line; else None. Blank lines between items are skipped."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:len(text) if end < 0 else end]
    if not _LIST_ITEM.match(line) or line.lstrip().startswith("#"):
        return None
    indent = len(line) - len(line.lstrip())
    while start > 0:
        prev_start = text.rfind("\n", 0, start - 1) + 1
        prev = text[prev_start:start - 1]
        start = prev_start
        if not prev.strip():
            continue
        lead = len(prev) - len(prev.lstrip())
        labelled = prev.rstrip("* ").endswith((":", "："))
        if lead < indent and (_LIST_ITEM.match(prev) or labelled) or lead <= indent and labelled:
            return prev_start + lead, prev_start + len(prev.rstrip())
        if lead <= indent and not _LIST_ITEM.match(prev):
            return None  # prose at the item's level: the list started here, under no parent
    return None


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence offsets within `text[start:end]` (one line of prose), whitespace trimmed."""
    end = len(text) if end is None else end
    seg = text[start:end]
    spans, s = [], 0
    for m in SENT_END.finditer(seg):
        if m.group(0)[0] == "." and _is_abbrev(seg[s:m.start()]):
            continue
        if m.end() > s:
            spans.append((s, m.end()))
            s = m.end()
    if s < len(seg):
        spans.append((s, len(seg)))
    out = []
    for a, b in spans:
        a, b = _trim(text, start + a, start + b)
        if a < b:
            out.append((a, b))
    return out


def _is_abbrev(before: str) -> bool:
    tail = before.lower().rstrip(".")
    return any(tail.endswith(a) and (len(tail) == len(a) or not tail[-len(a) - 1].isalpha())
               for a in _ABBREV)


# ---- citation markers ----------------------------------------------------------------------------

# [1] [1,2] [1, 3] [1-3] 【2】 ［１］ [^4] [来源1] [资料1] [source 2] — every shape small models produce
MARKER = re.compile(r"[\[［【]\s*(?:\^|来源|资料|source\s*)?\s*(\d{1,3}(?:\s*[,，、\-–—~]+\s*\d{1,3})*)\s*[\]］】]",
                    re.I)
_MARKERS_AHEAD = re.compile(r"(?:\s*(?:" + MARKER.pattern + r"))+", re.I)
_MAX_RANGE = 20  # "[1-999]" is a typo, not 999 citations
# a citation with a word where its number belongs, copied from the prompt's wording: "[资料来源]", "[编号]", "[source]"
PLACEHOLDER = re.compile(r"[ \t]*[\[［【]\s*(?:编号|n|资料(?:来源)?|来源|出处|sources?|citation|ref)\s*[\]］】]", re.I)


def marker_numbers(body: str) -> list[int]:
    """The numbers inside one marker's body ("1, 3-5" → 1, 3, 4, 5); absurd ranges are dropped."""
    out: list[int] = []
    for part in re.split(r"\s*[,，、]+\s*", unicodedata.normalize("NFKC", body).strip()):
        rng = re.fullmatch(r"(\d+)\s*[-–—~]\s*(\d+)", part)
        if rng:
            a, b = sorted((int(rng.group(1)), int(rng.group(2))))
            if a <= b < a + _MAX_RANGE:
                out.extend(range(a, b + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def citations_in(text: str) -> list[int]:
    """Source numbers cited in `text`, in order of first appearance, without repeats (≥ 1)."""
    seen: list[int] = []
    for m in MARKER.finditer(text):
        for n in marker_numbers(m.group(1)):
            if n >= 1 and n not in seen:
                seen.append(n)
    return seen


def parse_citations(text: str, n_sources: int) -> tuple[list[int], list[int]]:
    """All cited numbers in order of first use: (valid ones, out-of-range ones)."""
    valid: list[int] = []
    invalid: list[int] = []
    for n in citations_in(text):
        (valid if 1 <= n <= n_sources else invalid).append(n)
    for m in MARKER.finditer(text):  # [0] is invalid too
        if 0 in marker_numbers(m.group(1)) and 0 not in invalid:
            invalid.append(0)
    return valid, invalid


def normalise_citations(text: str, n_sources: int) -> str:
    """Rewrite every marker shape as [n][m]; drop numbers that point at no source."""
    def repl(m: re.Match) -> str:
        return "".join(f"[{n}]" for n in marker_numbers(m.group(1)) if 1 <= n <= n_sources)

    return MARKER.sub(repl, text)


def strip_citations(text: str) -> str:
    """The text without markers, spaces tidied (what a judge or a matcher should read)."""
    s = MARKER.sub("", text)
    s = re.sub(r"\s+([.,;:!?。，；：！？、])", r"\1", s)
    return re.sub(r"[ \t]{2,}", " ", s).strip()


# ---- answer sentences ------------------------------------------------------------------------------

def _ends_here(line: str, j: int) -> bool:
    """ASCII . ! ? end a sentence before a space, the end, a marker or a CJK character."""
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
            end = i + 1
        if end is None:
            i += 1
            continue
        while end < n and line[end] in _ZH_END + ".!?”’\"')）":
            end += 1
        m = _MARKERS_AHEAD.match(line, end)
        if m:
            end = m.end()
        out.append(line[start:end])
        start = i = end
    out.append(line[start:])
    return out


def split_sentences(text: str) -> list[str]:
    """An answer's sentences, each keeping its citation markers (markers on either side of the
    end punctuation, or alone on the next line, stay with their sentence); list bullets dropped;
    contentless pieces dropped."""
    sentences: list[str] = []
    for raw in (text or "").splitlines():
        line = _LIST_ITEM.sub("", raw)
        for piece in _split_line(line):
            piece = piece.strip()
            if not piece:
                continue
            if not any(ch.isalnum() for ch in strip_citations(piece)):
                if sentences and MARKER.search(piece):
                    sentences[-1] = f"{sentences[-1]}{piece}"
                continue
            sentences.append(piece)
    return sentences


# ---- terms -----------------------------------------------------------------------------------------

STOPWORDS = frozenset(
    # Chinese function words, question words and fillers
    "的 了 和 是 在 有 与 及 或 中 对 为 也 就 都 而 把 被 这 那 个 之 其 以 于 上 下 吗 呢 吧 啊 什么 怎么 "
    "如何 哪些 哪个 为什么 多少 是否 一个 一种 我们 你 我 他 它 请 问 能 会 可以 里 给 各 又 还 "
    "到底 大概 大约 分别 具体 一下 一些 这个 那个 这些 那些 时 时候 呀 么 啥 怎样 怎么样 "
    # English
    "a an the of to in on for and or is are was were be been being what which who whom whose how "
    "why when where does do did doing done it its this that these those with by as at from about "
    "into than then there their they them can could would should will shall may might must "
    "please tell me my i you your we our us explain describe say says said give given gives "
    "according roughly approximately exactly really actually just only also so such any some "
    "all each both other per much many have has had not no yes if but up out over very more most".split())

_TERM = re.compile(r"[\u3400-\u9fff]|[a-z0-9][a-z0-9.\-%]*", re.I)


def is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff"


def terms(text: str) -> set[str]:
    """A language-neutral overlap unit: CJK character bigrams plus Latin words and numbers
    (lower-case, NFKC, stopwords dropped). Bigrams need no segmenter and match across spacing."""
    text = unicodedata.normalize("NFKC", text)
    toks = [t.lower().rstrip(".-") for t in _TERM.findall(text)]
    out = {t for t in toks if t and not is_cjk(t[0]) and t not in STOPWORDS}
    cjk = [t for t in toks if t and is_cjk(t[0])]
    out |= {a + b for a, b in zip(cjk, cjk[1:])}
    return out


# a model or method name as typed: DeepSeek-V3, AlexNet, ResNet-152, BERT, GPT-4o, MoE, top-5 —
# a word with a digit or a capital after its first letter
_NAME = re.compile(r"(?<![A-Za-z0-9_-])(?=[A-Za-z0-9_.-]*(?:\d|[A-Z][A-Za-z0-9_.-]*[A-Z]))[A-Za-z0-9][A-Za-z0-9_.-]*"
                   r"[A-Za-z0-9_]")


def names(text: str) -> list[str]:
    """The model / method names typed in `text` (in order; pure numbers excluded)."""
    return [n for n in _NAME.findall(text)
            if re.search(r"[A-Za-z]", n) and not re.fullmatch(r"\d+(?:\.\d+)?[kmbt]", n, re.I)]


# ---- numbers ---------------------------------------------------------------------------------------

_SCALE = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9,
          "trillion": 1e12, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_UNIT = "|".join(sorted((re.escape(u) for u in _SCALE), key=len, reverse=True))
# a figure: digits (1,000 / 3.57), then an optional scale word or %; not the digits inside a
# name ("V3", "GPT-4", "top-5", "ResNet-152": those belong to the name)
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.\-])((?>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?))\s*(" + _UNIT + r"|%)?(?![a-z])",
                     re.I)


@dataclass(frozen=True)
class Figure:
    value: float  # scaled: 60M, 6000万 and 60 million are all 6e7; 15.3% is 15.3
    percent: bool
    start: int
    end: int


def _numbers(text: str):
    """(plain value, unit or "", start, end) of every number in NFKC `text`."""
    for m in _NUMBER.finditer(unicodedata.normalize("NFKC", text)):
        try:
            plain = float(m.group(1).replace(",", ""))
        except ValueError:
            continue
        yield plain, (m.group(2) or "").lower(), m.start(), m.end()


def figures(text: str) -> list[Figure]:
    """Every number in `text` with its scale normalised (万/亿/K/M/B/T/thousand…, full-width
    digits via NFKC), so notes, papers and answers that write one figure differently agree.
    Offsets are into `text` when NFKC kept its length, else approximate."""
    return [Figure(_round(plain * _SCALE.get(unit, 1.0)), unit == "%", a, b) for plain, unit, a, b in _numbers(text)]


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def figure_values(text: str) -> set[float]:
    """The set of values in `text`, plain and scaled ("60M" gives 60 and 6e7)."""
    out: set[float] = set()
    for plain, unit, _, _ in _numbers(text):
        out.add(_round(plain))
        if unit in _SCALE:
            out.add(_round(plain * _SCALE[unit]))
    return out


def normalise(text: str) -> str:
    """EVAL_SCHEMA matching form: NFKC, lower-case, no whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())


def compact(text: str) -> str:
    """Only the letters and digits of `normalise(text)`: texts that differ in punctuation, markup
    and spacing compare equal."""
    return re.sub(r"[\W_]+", "", normalise(text))


# ---- display -------------------------------------------------------------------------------------

# what a reader of the rendered page never sees: d2l/Sphinx roles (":label:`fig_x`", ":numref:`x`",
# ":cite:`x`") and the targets of images and links (their alt text / link text stays)
_ROLE = re.compile(r":\w+:`[^`]*`")
_TARGET = re.compile(r"(!?\[[^\]]*\])\([^)]*\)")


# an HTML table row's cell tags: a reader sees the cells side by side, "VAE | 4,348,547"
_CELL_GAP = re.compile(r"</t[dh]>\s*<t[dh](?:\s[^>]*)?>", re.I)
_ROW_TAG = re.compile(r"\s*</?t[rdh](?:\s[^>]*)?>\s*", re.I)


# inline HTML a converted article keeps ('<dt-cite key="x">Evolving Stable Strategies</dt-cite>'):
# the browser shows the inner text. Named tags only, so a literal "<mask>" token stays
_INLINE_TAG = re.compile(r"</?(?:dt-cite|dt-fn|a|b|i|em|strong|sup|sub|span|br|code|p|div|img|font|u|small)"
                         r"(?:\s[^<>]*)?/?>", re.I)


# a sentence wrapped over lines (d2l's sources) reads as one line: no space inside Chinese
_WRAP = re.compile(r"(\S)[ \t]*\r?\n[ \t]*(\S)")
_CJK_CHAR = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def _unwrap(m: re.Match) -> str:
    a, b = m.group(1), m.group(2)
    return a + b if _CJK_CHAR.match(a) or _CJK_CHAR.match(b) else f"{a} {b}"


def visible(text: str) -> str:
    """`text` without markup a reader never sees (see above)."""
    text = _TARGET.sub(r"\1", _ROLE.sub("", text))
    if "<" in text:
        if "<t" in text or "<T" in text:
            text = _ROW_TAG.sub(" ", _CELL_GAP.sub(" | ", text)).strip()
        text = _INLINE_TAG.sub("", text)
    if "\n" in text:
        text = _WRAP.sub(_unwrap, text)
    return text


def clean_heading(s: str) -> str:
    """A heading's words without markdown emphasis or code marks (`**ResNet**` → ResNet)."""
    return re.sub(r"[*_`]+", "", s).strip()


def clip(text: str | None, limit: int, *, fold: bool = True) -> str:
    """`text` cut to `limit` characters, the last one "…" when it was longer; with `fold` first on
    one line (runs of white space become one space), as previews and report cells want it."""
    t = " ".join(str(text or "").split()) if fold else str(text or "")
    return t if len(t) <= limit else t[: limit - 1] + "…"
