"""What a sentence asserts, and whether passages state it: the claims judge's reading.

A bag-of-words judge passes an invented figure that sits among real words ("DeepSeek-V3 has 256
experts and 1 trillion parameters"), a swapped entity ("VGG-19's error is 15.3%", where 15.3% is
AlexNet's in the next table row) and a claim that is true in the world but not in the sources.
So a sentence is read as clauses, each with
- anchors: the names it mentions (models, methods, datasets, people; zh↔en through the judge's
  own alias table) and its numbers (scale-normalised: 60M = 6000万 = 60 million), each number with
  the word next to it that says what it measures;
- content words: the predicate and the rest.
A clause is supported only when ONE evidence window of the passages holds all its anchors — a
sentence (with the sentence or heading before it when it names nothing itself), a table row with
its header, a code / list line with the lead line of its block — and its neighbourhood covers
most of its content words. A name or number found nowhere is unsupported; a question, or a
sentence that only restates the question it answers, asserts nothing and is not supported.

Independent of what it judges: it uses the shared text core (tutor.text) for splitting, numbers
and markers only, and its own alias table (aliases.py) — never tutor.answer, tutor.evidence or
tutor.glossary, so answer-side checks and this judge agree only when both are right.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from ..text import STOPWORDS, figures, names, strip_citations, units

# ---- words ---------------------------------------------------------------------------------
_EN_FILLER = frozenset(
    "according note notes source sources passage passages document documents mentioned mention "
    "mentions stated states state shows show shown described describes describe based following "
    "follows here there such like well known called named way ways thing things one ones "
    "also however therefore thus hence because since while although though whereas which whose "
    "being been become becomes became make makes made use uses used using get gets got "
    "let lets can cannot could would should will shall may might must need needs "
    "example instance etc i.e e.g about around approximately roughly nearly almost over under "
    "first second third finally overall main mainly mostly generally usually often typically "
    "important key significant significantly able allow allows allowed".split())
_ZH_FILLER = frozenset(
    "笔记 记录 根据 提到 资料 来源 文档 说明 显示 指出 表示 认为 介绍 描述 提供 其中 以及 因此 所以 但是 而且 "
    "并且 非常 主要 大约 左右 比较 相关 这个 那个 这些 那些 一个 一种 可以 能够 就是 还是 或者 以上 如下 "
    "什么 怎么 如何 哪些 为什么 多少 是否 我们 你们 他们 它们 没有 不是 通过 进行 使用 具体 上述 总之 答案 问题 "
    "段落 文中 原文 资料中 笔记中 之前 之后 以后 以前 同时 另外 此外 其他 这样 那样 这里 那里 由于 因为 "
    "可能 需要 一些 很多 许多 各种 方面 情况 时候 部分 等等 包括 以及 例如 比如 即 也是 都是 只是 还有".split())
# a classifier says "how many" but not "of what": a number's measure is the word after it
_CLASSIFIERS = frozenset("个 块 条 种 位 名 项 次 张 篇 份 组 对 倍 层 年 月 日 天 步 轮 类".split())
# questions that ask for a value or an entity: restating one gives nothing ("X 的参数量是多少" →
# "X 的参数量是："); a why / how question's restated premise is a claim and is judged as one
_ASKS_VALUE = re.compile(r"多少|几[个块条种位名项次层年天倍]|什么时候|何时|哪[一个些年位家]|谁|是什么|叫什么|"
                         r"\b(?:how (?:many|much|large|big|long|fast|old)|when|which|who|whom|what(?: is| are| was| were)?)\b",
                         re.I)
_LATIN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]+(?:[-+.'][A-Za-z0-9]+)*")
_SCALED = re.compile(r"[\d.,]+\s*(?:[kmbt]|万|亿|千|%)?", re.I)  # a figure, not a name: 60M, 1.6T
_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_CJK_DIGIT = re.compile(r"(?<=[\u3400-\u9fff])(?=\d)")
_MARKDOWN = re.compile(r"[*_`#>|~]+|\$+|\\[a-z]+")
_APPROX = re.compile(r"约|大约|左右|近|超过|多达|约为|~|≈|about|around|approximately|roughly|nearly|over|more than|almost",
                     re.I)
_CLAUSE_SPLIT = re.compile(r"[；;]|[，,](?!\d{3})\s*|(?<=[\u3400-\u9fff])而(?=[\u3400-\u9fff])|\s+(?:while|whereas|but)\s+",
                           re.I)
_ENDS_QUESTION = re.compile(r"[?？]\s*$|吗\s*[。.]?\s*$")
_LEAD_IN = re.compile(r"[:：]\s*$")
# a sentence that starts by pointing back ("这一发现…", "It…") is read with the one before it
_ANAPHOR = re.compile(r"^\W*(?:这|该|此|其|它|他|她|上述|(?:this|that|these|those|it|its|they|their|such)\b)", re.I)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=20000)
def cut(text: str) -> tuple[str, ...]:
    """jieba words of a Chinese text (cached: the same passages are cut for every claim)."""
    return tuple(_jieba().lcut(text))


@lru_cache(maxsize=20000)
def _people(text: str) -> tuple[str, ...]:
    """Chinese person names (jieba's `nr` tag), which must be found like any model name."""
    import jieba.posseg as pseg

    _jieba()
    return tuple(w for w, f in pseg.lcut(text) if f == "nr" and len(w) >= 2 and _CJK.search(w))


def nfkc(text: str) -> str:
    """NFKC, with a space between a Chinese character and a digit: text.figures reads "是15.3%"
    as no number at all (a CJK character counts as a word character before the digits)."""
    return _CJK_DIGIT.sub(" ", unicodedata.normalize("NFKC", text))


def is_filler(word: str) -> bool:
    w = word.lower()
    return w in STOPWORDS or w in _EN_FILLER or w in _ZH_FILLER


def name_key(name: str) -> str:
    """DeepSeek-V3, deepseek v3 and DEEPSEEK_V3 are one name; 3×3 is 3x3."""
    return re.sub(r"[\s\-_.·/]+", "", nfkc(name).lower().replace("×", "x"))


def _typed_names(text: str) -> list[str]:
    """text.names without figures ("60M", "1.6T") and without a trailing Chinese word ("2020年")."""
    out = []
    for n in names(text):
        n = re.split(r"[\u3400-\u9fff]", n)[0].rstrip(".-_")
        if n and not _SCALED.fullmatch(n) and "_" not in n and len(re.findall(r"[A-Za-z]", n)) >= 2:
            out.append(n)
    return out


def _stem(word: str) -> str:
    for suf in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            return word[: -len(suf)]
    return word


# ---- the claim -------------------------------------------------------------------------------
@dataclass
class Number:
    value: float
    percent: bool
    text: str
    measure: str | None  # the word saying what it counts ("专家", "parameters"), if any
    year: bool = False
    approx: bool = False


@dataclass
class Clause:
    text: str
    names: list[str] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    inherited: list[str] = field(default_factory=list)  # names carried over from context

    @property
    def anchors(self) -> list[str]:
        return self.names + self.inherited

    def empty(self) -> bool:
        return not (self.names or self.numbers or self.terms)


@dataclass
class Claim:
    text: str
    clauses: list[Clause]
    asserts: bool = True  # False: a question, a lead-in, or a restatement of the question
    why: str = ""


def clean(sentence: str) -> str:
    """The sentence as a judge reads it: no citation markers, markdown or list bullets."""
    s = nfkc(strip_citations(sentence))
    s = re.sub(r"^\s*(?:[-*+•·]|\d{1,2}[.)、]|[（(]\d{1,2}[)）])\s+", "", s)
    s = _MARKDOWN.sub(" ", s)
    return re.sub(r"\s+", " ", s).strip()


def _is_name(word: str, first: bool, zh: bool) -> bool:
    if len(word) < 2 or is_filler(word):
        return False
    if any(c.isdigit() for c in word) or any(c.isupper() for c in word[1:]):
        return True
    if word[0].isupper():
        return zh or not first
    return False


def _tokens(text: str) -> list[tuple[str, int, int, bool]]:
    """(word, start, end, is_latin) of the content-bearing words of `text`, in order."""
    out = []
    for m in _LATIN.finditer(text):
        if not _SCALED.fullmatch(m.group(0)):
            out.append((m.group(0), m.start(), m.end(), True))
    for m in _CJK_RUN.finditer(text):
        pos = m.start()
        for w in cut(m.group(0)):
            out.append((w, pos, pos + len(w), False))
            pos += len(w)
    return sorted(out, key=lambda t: t[1])


def parse_clause(text: str, zh: bool) -> Clause:
    cl = Clause(text)
    seen: set[str] = set()
    for n in _typed_names(text):
        k = name_key(n)
        if k and k not in seen and not is_filler(n) and not re.fullmatch(r"[\d.]+[a-z%]*", k):
            seen.add(k)
            cl.names.append(n)
    for p in _people(text) if zh else ():
        if p not in seen:
            seen.add(p)
            cl.names.append(p)
    toks = _tokens(text)
    first_latin = True
    for w, _, _, latin in toks:
        if latin:
            base = re.sub(r"'s$", "", w)
            if _is_name(base, first_latin, zh) and name_key(base) not in seen:
                seen.add(name_key(base))
                cl.names.append(base)
            elif name_key(base) not in seen and len(base) >= 3 and not is_filler(base) \
                    and not _is_name(base, first_latin, zh):
                low = base.lower()
                if low not in cl.terms:
                    cl.terms.append(low)
            first_latin = False
        elif len(w) >= 2 and not is_filler(w) and w not in seen and w not in cl.terms:
            cl.terms.append(w)
    for f in figures(text):
        raw = text[f.start:f.end]
        is_year = not f.percent and f.value.is_integer() and 1900 <= f.value <= 2100 and \
            not re.search(r"[^\d\s]", raw)
        after = [t for t in toks if t[1] >= f.end and t[1] - f.end <= 6 and not _num_token(t[0])]
        before = [t for t in toks if t[2] <= f.start and f.start - t[2] <= 4 and not _num_token(t[0])]
        measure = None
        for w, _, _, latin in after:
            if w in _CLASSIFIERS or is_filler(w) or (not latin and len(w) < 2):
                continue
            measure = w
            break
        if measure is None:
            for w, _, _, latin in reversed(before):
                if is_filler(w) or w in ("是", "为", "达", "约", "有"):
                    continue
                measure = w if latin or len(w) >= 2 else None
                break
        approx = bool(_APPROX.search(text[max(0, f.start - 8):f.start]))
        cl.numbers.append(Number(f.value, f.percent, raw, measure, is_year, approx))
    return cl


def _num_token(w: str) -> bool:
    return bool(re.fullmatch(r"[\d.,%]+|[kmbt]|万|亿|千|million|billion|trillion|thousand", w, re.I))


def content_keys(text: str, zh: bool) -> set[str]:
    """Names, numbers and content words of a text, for "does it only restate the question?"."""
    cl = parse_clause(clean(text), zh)
    keys = {name_key(n) for n in cl.names} | {f"#{n.value:g}" for n in cl.numbers}
    keys |= {_stem(t) for t in cl.terms}
    return keys


def parse_claim(sentence: str, question: str | None = None) -> Claim:
    text = clean(sentence)
    zh = bool(_CJK.search(text))
    if not any(ch.isalnum() for ch in text):
        return Claim(text, [], asserts=True, why="nothing to check")
    if _ENDS_QUESTION.search(text):
        return Claim(text, [], asserts=False, why="a question asserts nothing")
    pieces = [p.strip() for p in _CLAUSE_SPLIT.split(text) if p and p.strip()]
    clauses = [parse_clause(p, zh) for p in pieces]
    clauses = [c for c in clauses if not c.empty()] or clauses[:1]
    claim = Claim(text, clauses)
    q_clause = parse_clause(clean(question), bool(_CJK.search(question))) if question else None
    if question:
        q_keys = content_keys(question, bool(_CJK.search(question)))
        c_keys = content_keys(text, zh)
        if c_keys and c_keys <= q_keys and _ASKS_VALUE.search(nfkc(question)):
            return Claim(text, clauses, asserts=False, why="only restates the question")
    if _LEAD_IN.search(text) and not any(c.numbers for c in clauses):
        return Claim(text, clauses, asserts=False, why="a lead-in asserts nothing")
    # a clause that names nothing is about the subject named before it (in the sentence, else in
    # the question): "AlexNet 的错误率是 15.3%，比传统方法低 10.9%" — the 10.9% is AlexNet's too
    prev: list[str] = []
    for c in claim.clauses:
        if c.names:
            prev = c.names[:1]
        elif c.numbers or not c.terms:
            if prev:
                c.inherited = list(prev)
            elif q_clause is not None and q_clause.names:
                # the question's subject: its most specific name (a version beats a family)
                c.inherited = [next((n for n in q_clause.names if any(ch.isdigit() for ch in n)),
                                    q_clause.names[0])]
        if q_clause is not None and not c.terms and c.numbers and c.numbers[0].measure is None:
            c.numbers[0].measure = asked_unit(question or "")  # "多少美元" → a bare "5.6M" is dollars
    return claim


_ASKED = re.compile(r"(?:多少|几)(?:个|块|条|种|位|名|项|次)?([\u3400-\u9fff]{1,4}?)(?:[？?，,。]|$|呢|吗|啊)|"
                    r"how (?:many|much) ([a-z][a-z\- ]{1,30}?)(?:\b(?:do|does|did|is|are|was|were|has|have|had|in|of|per)\b|[?,.]|$)",
                    re.I)


def asked_unit(question: str) -> str | None:
    """What a how-many question counts: "多少美元" → 美元, "how many experts" → experts."""
    m = _ASKED.search(nfkc(question))
    if not m:
        return None
    unit = (m.group(1) or m.group(2) or "").strip().split(" ")[-1]
    return unit if unit and not is_filler(unit) else None


# ---- the passages ----------------------------------------------------------------------------
@dataclass
class Window:
    """One evidence unit with the context it needs to be read alone."""
    tight: str  # lower-case NFKC text: the unit (+ header / lead / preceding context)
    wide: str  # the tight text plus its neighbours, for content-word coverage
    values: frozenset[float]
    latin: tuple[str, ...]  # name keys of its Latin words (and of their hyphen parts)


@dataclass
class PassageView:
    windows: list[Window]
    low: str
    flat: str
    values: frozenset[float]
    latin: frozenset[str]


def _values(text: str) -> frozenset[float]:
    out: set[float] = set()
    for f in figures(text):
        out.add(f.value)
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:[kmbt万亿]|million|billion)", nfkc(text), re.I):
        out.add(float(f"{float(m.group(1)):.6g}"))  # "671B" also reads as the 671 in "671B 参数"
    return frozenset(out)


def _latin_keys(text: str) -> tuple[str, ...]:
    out = []
    for m in re.finditer(r"[A-Za-z0-9][A-Za-z0-9\-_.+/]*[A-Za-z0-9]|[A-Za-z]", nfkc(text)):
        w = m.group(0)
        out.append(name_key(w))
        parts = re.split(r"[-_./+]", w)
        if len(parts) > 1:
            out += [name_key(p) for p in parts if p]
            for i in range(1, len(parts)):  # DeepSeek-V3-Base → deepseekv3
                out.append(name_key("".join(parts[:i])))
                out.append(name_key("".join(parts[i:])))
    return tuple(out)


def _own_names(text: str) -> bool:
    return bool(_typed_names(text)) or bool(re.search(r"(?<![A-Za-z])[A-Z][a-z]{2,}", text[1:]))


@lru_cache(maxsize=4096)
def view(passage: str) -> PassageView:
    """A passage's evidence windows (cached: every sentence of every answer asks again)."""
    text = nfkc(passage)
    spans = units(text)
    pieces = [text[s.start:s.end] for s in spans]
    kinds = [s.kind for s in spans]
    windows: list[Window] = []
    header: int | None = None
    lead: int | None = None
    heading: int | None = None
    for i, (piece, kind) in enumerate(zip(pieces, kinds)):
        ctx: list[int] = []
        if kind == "header":
            header = i
        elif kind == "row" and header is not None:
            ctx.append(header)
        if kind == "code":
            if i == 0 or kinds[i - 1] != "code":
                lead = i
            elif lead is not None:
                ctx.append(lead)
        if kind == "heading":
            heading = i
        if (not _own_names(piece) or _ANAPHOR.match(piece)) and kind not in ("header", "heading"):
            # back to the nearest unit that names something: up to 3 sentences, or through the
            # whole code block / table and the line that introduces it
            j = i - 1
            while j >= 0 and (j >= i - 3 or kinds[j + 1] in ("code", "row")):
                ctx.append(j)
                if _own_names(pieces[j]):
                    break
                j -= 1
            if heading is not None and heading not in ctx:
                ctx.append(heading)
        tight = " \n ".join(pieces[k] for k in sorted(set(ctx)) + [i])
        near = [k for k in (i - 1, i + 1) if 0 <= k < len(pieces)]
        wide = tight + " \n " + " \n ".join(pieces[k] for k in near)
        windows.append(Window(tight.lower(), wide.lower(), _values(tight), _latin_keys(tight)))
    low = text.lower()
    return PassageView(windows, low, re.sub(r"\s+", "", low), _values(text), frozenset(_latin_keys(text)))


# ---- matching --------------------------------------------------------------------------------
def name_in(name: str, latin: tuple[str, ...] | frozenset[str], low: str, aliases,
            scope: frozenset[str] | None = None) -> bool:
    """A name occurs: as a Latin word (or a hyphen part of one: "V3" in "DeepSeek-V3"), its
    plural, a Chinese string, or one of its aliases in the other language."""
    k = name_key(name)
    if not k:
        return True
    if _CJK.search(k):
        if k in re.sub(r"\s+", "", low):
            return True
    elif k in latin or (k.endswith("s") and k[:-1] in latin) or (k + "s") in latin:
        return True
    elif len(k) >= 5 and any(x.startswith(k) for x in latin):  # ResNet → ResNet152
        return True
    parts = [name_key(p) for p in re.split(r"[-_\s]+", nfkc(name)) if p]
    tail = "".join(parts[1:])
    if len(parts) >= 2 and re.search(r"[a-z]", tail) and len(tail) >= 2 and tail in latin and \
            (scope is None or parts[0] in scope):  # DeepSeek-R1-Zero written "R1-Zero" in a DeepSeek text
        return True
    flat = re.sub(r"\s+", "", low)
    for a in aliases.of(name) | aliases.of(k):
        if _CJK.search(a):
            if a in flat:
                return True
        elif name_key(a) in latin or re.search(r"(?<![a-z0-9])" + re.escape(a), low):
            return True
    return False


def number_in(n: Number, values: frozenset[float]) -> bool:
    if n.value in values:
        return True
    if n.approx:  # "about 60 million" for 62.5 million: same leading digits
        return any(v and abs(v - n.value) / abs(v) <= 0.05 for v in values)
    return False


def term_hit(term: str, low: str, flat: str, aliases) -> float:
    """1 if the word (or an alias) occurs; for 3+ Chinese characters the share of its bigrams
    that do ("传统方法" vs "传统的方法")."""
    if _CJK.search(term):
        if term in flat:
            return 1.0
        best = 0.0
        if len(term) >= 3:
            grams = [term[i:i + 2] for i in range(len(term) - 1)]
            best = sum(g in flat for g in grams) / len(grams)
    else:
        stem = _stem(term)
        if re.search(r"(?<![a-z0-9])" + re.escape(stem), low):
            return 1.0
        best = 0.0
    for a in aliases.of(term):
        if (_CJK.search(a) and a in flat) or (not _CJK.search(a) and re.search(
                r"(?<![a-z0-9])" + re.escape(_stem(a)), low)):
            return 1.0
    return best


def coverage(terms: list[str], low: str, aliases) -> float | None:
    if not terms:
        return None
    flat = re.sub(r"\s+", "", low)
    return sum(term_hit(t, low, flat, aliases) for t in terms) / len(terms)


@dataclass
class ClauseCheck:
    text: str
    supported: bool
    why: str
    coverage: float | None = None


def check_clause(cl: Clause, views: list[PassageView], aliases, threshold: float) -> ClauseCheck:
    all_latin = frozenset().union(*(v.latin for v in views))
    all_low = "\n".join(v.low for v in views)
    all_values = frozenset().union(*(v.values for v in views))
    for n in cl.names:
        if not name_in(n, all_latin, all_low, aliases):
            return ClauseCheck(cl.text, False, f"name {n!r} is in no passage")
    for n in cl.numbers:
        if not number_in(n, all_values):
            return ClauseCheck(cl.text, False, f"number {n.text!r} is in no passage")
    anchors = cl.anchors
    best_cov, best_why = -1.0, "no window holds its names and numbers together"
    for v in views:
        for w in v.windows:
            if not all(number_in(n, w.values) for n in cl.numbers):
                continue
            if not all(name_in(a, w.latin, w.tight, aliases, v.latin) for a in anchors):
                continue
            flat = re.sub(r"\s+", "", w.tight)
            if not all(n.measure is None or n.year or term_hit(n.measure, w.tight, flat, aliases) >= 0.5
                       or name_in(n.measure, w.latin, w.tight, aliases) for n in cl.numbers):
                best_why = "its numbers measure something else here"
                continue
            cov = coverage(cl.terms, w.wide, aliases)
            cov = 1.0 if cov is None else cov
            if cov > best_cov:
                best_cov = cov
    if best_cov < 0:
        return ClauseCheck(cl.text, False, best_why)
    ok = best_cov >= threshold
    return ClauseCheck(cl.text, ok, f"content words covered {best_cov:.2f}", best_cov)


@dataclass
class Verdict:
    supported: bool
    why: str
    clauses: list[ClauseCheck] = field(default_factory=list)


def assess(sentence: str, passages: list[str], aliases, threshold: float = 0.5,
           question: str | None = None) -> Verdict:
    """Is every clause of `sentence` stated by the passages? (with the reason, to read)"""
    claim = parse_claim(sentence, question)
    if not claim.asserts:
        return Verdict(False, claim.why)
    if not claim.clauses or all(c.empty() for c in claim.clauses):
        return Verdict(True, claim.why or "nothing to check")
    views = [view(p) for p in passages]
    checks = [check_clause(c, views, aliases, threshold) for c in claim.clauses if not c.empty()]
    bad = next((c for c in checks if not c.supported), None)
    return Verdict(bad is None, bad.why if bad else "every clause found", checks)
