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
from dataclasses import dataclass, field, replace
from functools import lru_cache

from ..text import STOPWORDS, figures, names, strip_citations, units
from .dataset import normalize_for_chunk

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
_NUM_UNIT = re.compile(r"\d[\d.,]*\s*(?:[a-z]{1,3}|[A-Z]{1,2})")  # 232ms, 12h, 8x, 128K: a measurement
_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_CJK_DIGIT = re.compile(r"(?<=[\u3400-\u9fff])(?=\d)")
_MARKDOWN = re.compile(r"[*_`#>|~]+|\$+|\\[a-z]+")
_APPROX = re.compile(r"约|大约|左右|近|超过|多达|约为|~|≈|about|around|approximately|roughly|nearly|over|more than|almost",
                     re.I)
_CLAUSE_SPLIT = re.compile(r"[；;]|[，,](?!\d{3})\s*|(?<=[\u3400-\u9fff])而(?=[\u3400-\u9fff])|\s+(?:while|whereas|but)\s+",
                           re.I)
_ENDS_QUESTION = re.compile(r"[?？]\s*$|吗\s*[。.]?\s*$")
_LEAD_IN = re.compile(r"[:：]\s*(?:\.{2,}|…+)?\s*$")  # "The exponents are:", "**规模提升**: .."
# an exercise's instruction copied as an answer: "请试着去实现它", "参考…以实现", "Try to…"
_INSTRUCTION = re.compile(r"^\W*(?:请|试着|试试|尝试|参考|详见|参见|(?:please|try|see|refer to|consider|note that)\b)",
                          re.I)
# a heading copied as a sentence: "Long Context Extension", "4.3. Long Context Extension"
_TITLE = re.compile(r"(?:\d+(?:\.\d+)*\.?\s+)?(?:[A-Z][\w\-]*)(?:\s+(?:[A-Z][\w\-]*|of|and|for|the|in|to|with)){0,6}[.:]?")
# a sentence that starts by pointing back ("这一发现…", "It…") is read with the one before it
_ANAPHOR = re.compile(r"^\W*(?:这|该|此|其|它|他|她|上述|例如|比如|此外|另外|同时|因此|"
                      r"(?:this|that|these|those|it|its|they|their|such|for instance|for example|"
                      r"moreover|in addition|also|however|thus|therefore)\b)", re.I)


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


_EN_NUM = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                        "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_EN_NUM_WORD = re.compile(r"\b(" + "|".join(w for w in _EN_NUM if w not in ("zero", "one")) + r")\b", re.I)
_ZH_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_ZH_NUM_WORD = re.compile(r"(?<![\u3400-\u9fff\d])([一二两三四五六七八九十])(?=[个块层条种位名项次倍张篇])")


# d2l's markup (":cite:`He.Zhang.Ren.ea.2016`", ":numref:`sec_resnet`") names no model
_ROLE = re.compile(r":(?:cite|citet|numref|label|eqref|eqlabel|width|begin_tab|end_tab|ref):`[^`]*`")
_DIGITS_WORD = re.compile(r"(?<![A-Za-z\-\d.])(\d+(?:\.\d+)?)(?=[a-z]{2,}\b)")


def normalise(text: str) -> str:
    """What both claims and passages are read as: nfkc, a number apart from the unit glued to
    it ("232ms" → "232 ms": text.figures would read 23), and small number words as digits
    ("five convolutional layers" = "5 个卷积层" = "五个卷积层")."""
    t = _DIGITS_WORD.sub(r"\1 ", nfkc(_ROLE.sub(" ", text)))
    t = _EN_NUM_WORD.sub(lambda m: str(_EN_NUM[m.group(1).lower()]), t)
    return _ZH_NUM_WORD.sub(lambda m: f" {_ZH_NUM[m.group(1)]} ", t)


def is_filler(word: str) -> bool:
    w = word.lower()
    return w in STOPWORDS or w in _EN_FILLER or w in _ZH_FILLER


@lru_cache(maxsize=50000)
def name_key(name: str) -> str:
    """DeepSeek-V3, deepseek v3 and DEEPSEEK_V3 are one name; 3×3 is 3x3."""
    return re.sub(r"[\s\-_.·/]+", "", nfkc(name).lower().replace("×", "x"))


def _typed_names(text: str) -> list[str]:
    """text.names without figures ("60M", "1.6T") and without a trailing Chinese word ("2020年")."""
    out = []
    for n in names(text):
        n = re.split(r"[\u3400-\u9fff]", n)[0].rstrip(".-_")
        if n and not _SCALED.fullmatch(n) and not _NUM_UNIT.fullmatch(n) and "_" not in n \
                and len(re.findall(r"[A-Za-z]", n)) >= 2:
            out.append(n)
    return out


def _stem(word: str) -> str:
    """"reproduce", "reproduces", "reproduced" → "reproduc": the inflections meet."""
    for suf in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            word = word[: -len(suf)]
            break
    return word[:-1] if word.endswith("e") and len(word) >= 5 else word


# ---- the claim -------------------------------------------------------------------------------
@dataclass
class Number:
    value: float
    percent: bool
    text: str
    measure: str | None  # the word saying what it counts ("专家", "parameters"), if any
    year: bool = False
    approx: bool = False
    qualifier: bool = False  # "DeepSeekMoE 16B": part of the name, not a quantity of it


@dataclass
class Clause:
    text: str
    names: list[str] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    inherited: list[str] = field(default_factory=list)  # names carried over from context
    maybe: str | None = None  # a capitalised first word: a name if the passages capitalise it too
    from_question: bool = False  # `inherited` are the question's names: any one may be the subject
    context: list[Number] = field(default_factory=list)  # the question's figures a fragment answers
    # about ("DeepSeekMoE 16B": the 16B says which model), found near the answer's number
    asked: frozenset[str] = frozenset()  # stems of the question's words: what the claim adds is the rest

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
    s = normalise(strip_citations(sentence))
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


@lru_cache(maxsize=20000)
def _tagged(run: str) -> tuple[tuple[str, str], ...]:
    import jieba.posseg as pseg

    _jieba()
    return tuple((w, f) for w, f in pseg.lcut(run))


def _tokens(text: str) -> list[tuple[str, int, int, bool, str]]:
    """(word, start, end, is_latin, part of speech) of the words of `text`, in order."""
    out = []
    for m in _LATIN.finditer(text):
        if not _SCALED.fullmatch(m.group(0)):
            out.append((m.group(0), m.start(), m.end(), True, "eng"))
    for m in _CJK_RUN.finditer(text):
        pos = m.start()
        for w, f in _tagged(m.group(0)):
            out.append((w, pos, pos + len(w), False, f))
            pos += len(w)
    return sorted(out, key=lambda t: t[1])


# parts of speech that can say what a number counts: nouns, verbal nouns, abbreviations, units
_MEASURE_POS = ("n", "vn", "j", "eng", "q", "l", "nz", "ns", "nr", "m", "a")


def _measure(word: str, latin: bool, pos: str) -> str | None:
    if latin:
        return None if is_filler(word) or len(word) < 2 else word
    word = re.sub(r"(?:大约|约为|约|近)$", "", word)  # jieba's "差约": the hedge is not the measure
    word = re.sub(r"^[万亿千]+", "", word) if pos == "m" else word  # "万美元" → 美元
    if len(word) < 2 or word in _CLASSIFIERS or is_filler(word) or not pos.startswith(_MEASURE_POS):
        return None
    return word


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
    for w, _, _, latin, _ in toks:
        if latin:
            base = re.sub(r"'s$", "", w)
            if first_latin and not zh and base[:1].isupper() and base[1:].islower() and len(base) >= 3 \
                    and not is_filler(base) and name_key(base) not in seen:
                cl.maybe = base
            elif _is_name(base, first_latin, zh) and name_key(base) not in seen:
                seen.add(name_key(base))
                cl.names.append(base)
            elif name_key(base) not in seen and len(base) >= 3 and not is_filler(base) \
                    and not _is_name(base, first_latin, zh):
                low = base.lower()
                if low not in cl.terms:
                    cl.terms.append(low)
            first_latin = False
        else:
            w = re.sub(r"^[万亿千]+|(?:大约|约为|约)$", "", w)  # "万美元", "差约": scale and hedge are not words
            if len(w) >= 2 and not is_filler(w) and w not in seen and w not in cl.terms:
                cl.terms.append(w)
    # the subject is the name said first
    low = text.lower()
    cl.names.sort(key=lambda n: (low.find(n.lower()) if n.lower() in low else len(low)))
    for f in figures(text):
        raw = text[f.start:f.end]
        is_year = not f.percent and f.value.is_integer() and 1900 <= f.value <= 2100 and \
            not re.search(r"[^\d\s]", raw)
        after = [t for t in toks if t[2] > f.end and t[1] >= f.start and t[1] - f.end <= 6
                 and not _num_token(t[0])]
        before = [t for t in toks if t[2] <= f.start and f.start - t[2] <= 4 and not _num_token(t[0])]
        measure = next((m for w, _, _, latin, pos in after if (m := _measure(w, latin, pos))), None)
        if measure is None:  # "错误率是 15.3%", "error rate of 7.3%"
            for w, _, _, latin, pos in reversed(before):
                if is_filler(w) or w in ("是", "为", "达", "约", "有", "of", "is", "was", "at"):
                    continue
                measure = _measure(w, latin, pos)
                break
        approx = bool(_APPROX.search(text[max(0, f.start - 8):f.start]))
        qualifier = bool(re.search(r"[A-Za-z0-9][\w\-.]*\s?$", text[max(0, f.start - 30):f.start])) and \
            bool(re.fullmatch(r"[\d.]+\s?[bmkt]", raw.strip(), re.I)) and \
            any(text[max(0, f.start - 30):f.start].rstrip().endswith(n) for n in cl.names)
        cl.numbers.append(Number(f.value, f.percent, raw, None if qualifier else measure, is_year, approx,
                                 qualifier))
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
    if "›" in text:  # "梯度下降 › 小结": a source's label copied from the prompt
        return Claim(text, [], asserts=False, why="a copied source label asserts nothing")
    if _INSTRUCTION.match(text):
        return Claim(text, [], asserts=False, why="an instruction asserts nothing")
    if _TITLE.fullmatch(text):
        return Claim(text, [], asserts=False, why="a copied heading asserts nothing")
    pieces = [p.strip() for p in _CLAUSE_SPLIT.split(text) if p and p.strip()]
    clauses = [parse_clause(p, zh) for p in pieces]
    clauses = [c for c in clauses if not c.empty()] or clauses[:1]
    claim = Claim(text, clauses)
    q_clause = parse_clause(clean(question), bool(_CJK.search(question))) if question else None
    if q_clause is not None:
        asked = frozenset(_stem(t) for t in q_clause.terms)
        for c in clauses:
            c.asked = asked
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
        elif prev:  # "…，实现了开源民主化": still the subject of the sentence
            c.inherited = list(prev)
        elif c.numbers or not c.terms:
            if q_clause is not None and q_clause.names:
                # the question's names, the most specific first (a version beats a family): the
                # fragment is about whichever of them the passage speaks of
                c.inherited = sorted(q_clause.names, key=lambda n: not any(ch.isdigit() for ch in n))
                c.from_question = True
        if q_clause is not None and not c.terms and not c.maybe and c.numbers:  # a bare fragment answers the question
            if c.numbers[0].measure is None:
                c.numbers[0].measure = asked_unit(question or "")  # "多少美元": a bare "5.6M" is dollars
            c.context = [n for n in q_clause.numbers if not n.year]
    return claim


_ASKED = re.compile(r"(?:多少|几)(?:个|块|条|种|位|名|项|次)?\s*([\u3400-\u9fff]{1,4}?|[A-Za-z][\w\-]*)\s*"
                    r"(?=的|和|与|[？?，,。、]|$|呢|吗|啊|训练|用|来)|"
                    r"how (?:many|much) ([a-z][a-z\- ]{1,30}?)(?:\b(?:do|does|did|is|are|was|were|has|have|had|in|of|per)\b|[?,.]|$)",
                    re.I)
_WHAT_OF = re.compile(r"\bwhat (?:is|are|was|were) (?:the )?([a-z][a-z\- ]{1,30}?) (?:of|for|in|on)\b", re.I)
# a share needs no word of its own: "15%" is the proportion the question asks for
_SHARE = frozenset("比例 百分比 比率 占比 percentage proportion fraction ratio share".split())


def asked_unit(question: str) -> str | None:
    """What a question asks to count or measure: "多少美元" → 美元, "how many experts" → experts,
    "Elo 分数是多少" → 分数, "what is the context length of…" → length, "有多长" → 长度."""
    q = nfkc(question)
    if re.search(r"\b(?:dollars?|usd)\b|\$|美元|多少钱", q, re.I):  # a cost asked in money
        return "dollars"
    inn = re.search(r"\bin ([a-z][a-z ]{1,20}?)\s*[?？]\s*$", q, re.I)  # "…measured in tokens?"
    if inn and not is_filler(inn.group(1).split()[-1]):
        return inn.group(1).split()[-1]
    m = _ASKED.search(q)
    unit = (m.group(1) or m.group(2) or "").strip().split(" ")[-1] if m else ""
    if not unit or is_filler(unit):
        w = _WHAT_OF.search(q)
        unit = w.group(1).split()[-1] if w else ""
    ask = re.search(r"多少|几|多[长大久快高宽深]", q)
    if (not unit or is_filler(unit)) and ask:
        # "Top-5 错误率…降到了多少", "卷积窗口有多大": the last noun before the question word
        named = {name_key(n) for n in _typed_names(q)}
        nouns = [w for w, _, _, latin, pos in _tokens(q[:ask.start()])
                 if (latin or pos.startswith(("n", "vn", "j"))) and len(w) >= 2 and not is_filler(w)
                 and name_key(w) not in named]
        unit = nouns[-1] if nouns else ""
    return unit if unit and not is_filler(unit) else None


# ---- the passages ----------------------------------------------------------------------------
@dataclass
class Unit:
    """One evidence unit (sentence, table row, code / list line, heading) and its context."""
    text: str  # lower-case
    ctx: str  # lower-case: the unit + its table header / block lead / the sentences it leans on
    # (when it names nothing itself or starts with "this / 例如") + its section headings
    values: frozenset[float]  # the numbers of the unit itself
    latin: tuple[str, ...]  # name keys of the Latin words of ctx
    names: frozenset[str]  # name keys of the names ctx mentions (for "whose number is this?")
    kind: str = "sentence"
    ctx_values: frozenset[float] = frozenset()


@dataclass
class PassageView:
    units: list[Unit]
    text: str  # normalised, case kept
    low: str
    values: frozenset[float]
    latin: frozenset[str]
    names: frozenset[str]


# "3. **GPU 加速**", "### 9.5 DeepSeek-V3": list and section numbers are not figures
_HEADING_NUMBER = re.compile(r"(\s*#{1,6}\s*)(\d{1,2}(?:\.\d{1,2})*\.?)(?=\s)")  # "### 9.5 DeepSeek-V3"
_LIST_NUMBER = re.compile(r"(\s*(?:[-*+]\s+)?)(\d{1,2}[.)、])(?=\s|\*)")  # "3. **GPU 加速**"


def _positions(text: str) -> list[tuple[float, int, int]]:
    """(value, start, end) of every number in a passage unit, list / section numbers excepted."""
    body = text
    for pat in (_HEADING_NUMBER, _LIST_NUMBER):
        m = pat.match(body)
        if m:
            body = body[:m.start(2)] + " " * len(m.group(2)) + body[m.end(2):]
            break
    out = [(f.value, f.start, f.end) for f in figures(body)]
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)(?=[a-z])", body, re.I):
        out.append((float(f"{float(m.group(1)):.6g}"), m.start(), m.end()))  # "6x", "8x7B": digits count too
    return out


def _values(text: str) -> frozenset[float]:
    return frozenset(v for line in text.splitlines() for v, _, _ in _positions(line))


@lru_cache(maxsize=20000)
def _latin_keys(text: str) -> tuple[str, ...]:
    out = []
    for m in re.finditer(r"[A-Za-z0-9][A-Za-z0-9\-_.+/]*[A-Za-z0-9]|[A-Za-z]", text):
        w = m.group(0)
        out.append(name_key(w))
        parts = re.split(r"[-_./+]", w)
        if len(parts) > 1:
            out += [name_key(p) for p in parts if p]
            for i in range(1, len(parts)):  # DeepSeek-V3-Base → deepseekv3
                out.append(name_key("".join(parts[:i])))
                out.append(name_key("".join(parts[i:])))
    return tuple(out)


_CAPITALISED = re.compile(r"(?<![A-Za-z0-9\-])[A-Z][a-z]{2,}(?![A-Za-z0-9])")


def _name_set(text: str) -> frozenset[str]:
    """Name keys a passage text mentions: typed names and capitalised words (not fillers)."""
    out = {name_key(n) for n in _typed_names(text)}
    for m in _CAPITALISED.finditer(text):  # "Among the routed experts…": not a name
        before = text[:m.start()].rstrip(" *_`\"'“(")
        if before and before[-1] not in ".!?:;。！？：；\n" and not is_filler(m.group(0)):
            out.add(name_key(m.group(0)))
    return frozenset(k for k in out if k)


def _own_names(text: str) -> bool:
    return bool(_typed_names(text)) or bool(re.search(r"(?<![A-Za-z])[A-Z][a-z]{2,}", text[1:]))


def _level(heading: str) -> int:
    m = re.match(r"\s*(#{1,6})", heading)
    return len(m.group(1)) if m else 7


@lru_cache(maxsize=4096)
def view(passage: str) -> PassageView:
    """A passage's evidence units with their context (cached: every sentence asks again)."""
    text = normalise(passage)
    spans = units(text)
    pieces = [text[s.start:s.end] for s in spans]
    kinds = [s.kind for s in spans]
    out: list[Unit] = []
    header: int | None = None
    lead: int | None = None
    path: list[int] = []  # the headings above, one per level
    for i, (piece, kind) in enumerate(zip(pieces, kinds)):
        ctx: list[int] = []
        if kind == "heading":
            lvl = _level(piece)
            path = [h for h in path if _level(pieces[h]) < lvl]
        if kind == "header":
            header = i
        elif kind == "row" and header is not None:
            ctx.append(header)
        if kind == "code":  # a code / list block's first line says what its lines are
            if i == 0 or kinds[i - 1] != "code":
                lead = i
            elif lead is not None:
                ctx.append(lead)
        if (not _own_names(piece) or _ANAPHOR.match(piece)) and kind not in ("header", "heading"):
            # lean on what came before: up to 3 sentences, or back through the whole code block /
            # table to the line that introduces it, stopping at the first unit that names something
            j = i - 1
            while j >= 0 and (j >= i - 3 or kinds[j + 1] in ("code", "row")) and kinds[j] != "heading":
                ctx.append(j)
                if _own_names(pieces[j]) and not _ANAPHOR.match(pieces[j]):
                    break
                j -= 1
            ctx += path
        body = " \n ".join(pieces[k] for k in sorted(set(ctx)) + [i])
        out.append(Unit(piece.lower(), body.lower(), _values(piece), _latin_keys(body), _name_set(body), kind,
                        _values(body)))
        if kind == "heading":
            path.append(i)
    low = text.lower()
    return PassageView(out, text, low, _values(text), frozenset(_latin_keys(text)), _name_set(text))


# ---- matching --------------------------------------------------------------------------------
def _flat(low: str) -> str:
    return re.sub(r"\s+", "", low)


def name_in(name: str, latin, low: str, aliases, scope: frozenset[str] | None = None) -> bool:
    """A name occurs: as a Latin word (or a hyphen part of one: "V3" in "DeepSeek-V3"), its
    plural, a Chinese string, or one of its aliases in the other language."""
    k = name_key(name)
    if not k:
        return True
    flat = _flat(low)
    if _CJK.search(k):
        if k in flat:
            return True
    elif k in latin or (k.endswith("s") and k[:-1] in latin) or (k + "s") in latin:
        return True
    elif len(k) >= 5 and any(x.startswith(k) for x in latin):  # ResNet → ResNet152
        return True
    parts = [name_key(p) for p in re.split(r"[-_\s]+", normalise(name)) if p]
    tail = "".join(parts[1:])
    if len(parts) >= 2 and re.search(r"[a-z]", tail) and len(tail) >= 2 and tail in latin and \
            (scope is None or parts[0] in scope):  # DeepSeek-R1-Zero written "R1-Zero" in a DeepSeek text
        return True
    for a in aliases.of(name, trusted=True) | aliases.of(k, trusted=True):
        if _CJK.search(a):
            if a in flat:
                return True
        elif name_key(a) in latin or re.search(r"(?<![a-z0-9])" + re.escape(a), low):
            return True
    return False


def number_in(n: Number, values: frozenset[float]) -> bool:
    if n.value in values:
        return True
    if n.approx:  # "about 60 million" for 62.5 million: within 5%
        return any(v and abs(v - n.value) / abs(v) <= 0.05 for v in values)
    return False


def _cjk_share(text: str) -> float:
    cjk = len(_CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]", text))
    return cjk / (cjk + latin / 4) if cjk + latin else 0.0  # ~4 Latin letters per word ≈ 1 character


def term_hit(term: str, low: str, aliases) -> float | None:
    """1 if the word (or an alias) occurs; for 3+ Chinese characters the share of its bigrams
    that do ("传统方法" vs "传统的方法"). None: a word of the other language with no alias
    cannot be checked here, so it neither counts for nor against."""
    flat = _flat(low)
    zh = bool(_CJK.search(term))
    best = 0.0
    if zh:
        if term in flat:
            return 1.0
        if len(term) >= 3:
            grams = [term[i:i + 2] for i in range(len(term) - 1)]
            best = sum(g in flat for g in grams) / len(grams)
    elif re.search(r"(?<![a-z])" + re.escape(_stem(term)), low):
        return 1.0
    alias = aliases.of(term)
    for a in alias:
        if (_CJK.search(a) and a in flat) or (not _CJK.search(a) and re.search(
                r"(?<![a-z])" + re.escape(_stem(a)), low)):
            return 1.0
    if zh and len(term) >= 3 and best < 1.0:  # "训练成本" in English: training + cost
        words = [w for w in cut(term) if len(w) >= 2]
        if len(words) >= 2:
            hits = [term_hit(w, low, aliases) for w in words]
            if all(h == 1.0 for h in hits):
                return 1.0
    # a word of the other script cannot be checked against this text: an English word in Chinese
    # prose; a Chinese word where there is (almost) no Chinese — mixed code-and-notes windows are
    # Chinese enough to be checked
    if not alias and best == 0.0 and ((not zh and _cjk_share(low) > 0.5) or (zh and len(_CJK.findall(low)) < 8)):
        return None
    return best


def coverage(terms: list[str], low: str, aliases) -> float | None:
    """Share of the clause's checkable content words found in `low`; English phrases in the
    alias table ("residual connection" ↔ 残差连接) count as one."""
    hits: list[float] = []
    skip = False
    for i, t in enumerate(terms):
        if skip:
            skip = False
            continue
        if i + 1 < len(terms) and not _CJK.search(t) and aliases.of(f"{t} {terms[i + 1]}"):
            h = term_hit(f"{t} {terms[i + 1]}", low, aliases)
            if h == 1.0:
                hits += [1.0, 1.0]
                skip = True
                continue
        h = term_hit(t, low, aliases)
        if h is not None:
            hits.append(h)
    return sum(hits) / len(hits) if hits else None


@dataclass
class ClauseCheck:
    text: str
    supported: bool
    why: str
    coverage: float | None = None


_NEAR = 60  # characters around a number in prose where the word saying what it counts must be


def _measured(n: Number, u: "Unit", aliases) -> bool:
    """Does the passage say the number counts what the claim says ("671B 参数", not "671B
    tokens")? In prose the word must stand near the number; a table row or a code / list line
    may have it in its header, lead line or heading."""
    if u.kind in ("row", "code", "header") and _says(n.measure, u.ctx, u.latin, aliases):
        return True
    for v, a, b in _positions(u.text):
        if v != n.value and not (n.approx and v and abs(v - n.value) / abs(v) <= 0.05):
            continue
        near = u.text[max(0, a - _NEAR):b + _NEAR]
        if _says(n.measure, near, _latin_keys(near), aliases):
            return True
    return False


def _says(measure: str, text: str, latin, aliases) -> bool:
    """Is the measure word in `text`? A word of the other language that the alias table cannot
    map (term_hit's None) is no evidence against: "60,000 handwritten digits" vs "60000个手写数字"."""
    hit = term_hit(measure, text, aliases)
    return hit is None or bool(hit) or name_in(measure, latin, text, aliases)


def _competitor(ctx_names: frozenset[str], claim_keys: set[str], aliases) -> bool:
    """Does this context name something the claim does not (whose number it may well be)?"""
    for k in ctx_names:
        if len(k) < 3 or any(k == c or k.startswith(c) or c.startswith(k) for c in claim_keys):
            continue
        if any(name_key(a) in claim_keys for a in aliases.of(k, trusted=True)):
            continue
        return True
    return False


def check_clause(cl: Clause, views: list[PassageView], aliases, threshold: float,
                 claim_keys: set[str] | None = None) -> ClauseCheck:
    all_latin = frozenset().union(*(v.latin for v in views))
    all_low = "\n".join(v.low for v in views)
    all_values = frozenset().union(*(v.values for v in views))
    for n in cl.names:
        if not name_in(n, all_latin, all_low, aliases):
            return ClauseCheck(cl.text, False, f"name {n!r} is in no passage")
    for n in cl.numbers:
        if not number_in(n, all_values):
            return ClauseCheck(cl.text, False, f"number {n.text!r} is in no passage")
    keys = set(claim_keys or ()) | {name_key(a) for a in cl.anchors}
    if cl.from_question and cl.terms and not any(name_in(a, all_latin, all_low, aliases) for a in cl.inherited):
        # "当学习率为1.1时" for "d2l 的例子里…": a clause with words of its own, whose question names
        # a source or topic the passages never repeat, is about what the passages are about
        cl = replace(cl, inherited=[], from_question=False, context=[])
    best_cov, best_why = -1.0, "no passage window holds its names and numbers together"
    # the question's own words prove nothing: cover what the claim adds to them
    added = [t for t in cl.terms if _stem(t) not in cl.asked]
    terms = added if len(added) >= 2 else cl.terms
    checkable = coverage(terms, all_low, aliases) is not None
    for v in views:
        us = v.units
        subject = cl.anchors[0] if cl.anchors else None
        if cl.from_question and not cl.names and not any(ch.isdigit() for ch in subject or ""):
            # no versioned model in the question ("DeepSeek-V3" would have to be the one): the
            # fragment is about whichever of the question's names this passage speaks of
            subject = next((a for a in cl.inherited if name_in(a, v.latin, v.low, aliases, v.latin)), subject)
        subject_here = subject is not None and name_in(subject, v.latin, v.low, aliases, v.latin)
        for i in range(len(us)):
            # a small window: the unit and its neighbours — but a table row is a record of its own
            near = [i] if us[i].kind == "row" else [j for j in (i - 1, i, i + 1) if 0 <= j < len(us)]
            region = " \n ".join([us[i].ctx] + [us[j].text for j in near if j != i])
            latin = us[i].latin + tuple(x for j in near if j != i for x in _latin_keys(us[j].text))
            # every name but the subject must be here; the subject may stand anywhere in the same
            # passage (a heading, the chunk's first line) when nothing else here competes for it
            if not all(name_in(a, latin, region, aliases, v.latin) for a in cl.names if a != subject):
                continue
            subject_near = subject is None or name_in(subject, latin, region, aliases, v.latin)
            if not subject_near and not subject_here:
                continue
            ok = True
            for n in cl.numbers:
                if n.qualifier:  # the model's size, said with its name: in the window is enough
                    if not any(number_in(n, us[j].ctx_values) for j in near):
                        ok = False
                        break
                    continue
                bound = False
                for j in near:
                    u = us[j]
                    if not number_in(n, u.values):
                        continue
                    if n.measure and not n.year and not (n.percent and n.measure.lower() in _SHARE) \
                            and not _measured(n, u, aliases):
                        best_why = f"{n.text} measures something else here"
                        continue
                    if subject is None or name_in(subject, u.latin, u.ctx, aliases, v.latin) or \
                            (subject_here and not _competitor(u.names, keys, aliases)):
                        bound = True
                        break
                    best_why = f"{n.text} belongs to another name here"
                if not bound:
                    ok = False
                    break
            if not ok:
                continue
            if cl.context and not all(number_in(n, frozenset().union(*(us[j].ctx_values for j in near)))
                                      for n in cl.context):
                best_why = "not for the model / setting the question names"
                continue
            if not subject_near and not cl.numbers and \
                    _competitor(frozenset().union(*(us[j].names for j in near)), keys, aliases):
                continue
            cov = coverage(terms, region, aliases)
            if cov is None:  # no word checkable in this window (a code line, a table row, another script):
                # anchored names / figures there state the link; a clause of words alone must find
                # its words, unless no passage could show them (a cross-lingual paraphrase)
                cov = 1.0 if cl.names or cl.numbers or not checkable else 0.0
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


# an extractive answer: 'The sources say: "…" [1]; "…" [2].', '资料中的原文：“…” [1]；', '“…” [2]。'
_QUOTE_LEAD = re.compile(r"^\s*(?:(?:the )?sources? says?|according to the sources?|资料(?:中的)?原文|原文|资料(?:里|中)?(?:说|写道))"
                         r"\s*[:：]\s*", re.I)
_QUOTED = re.compile(r"“([^”]+)”|\"([^\"]+)\"|「([^」]+)」")
# "[2] (BERT › 掩蔽语言模型): …": the source's label a quote is introduced with; cut: "[3] (Report (p."
_SOURCE_LABEL = re.compile(r"^\s*(?:\[\d+\]\s*)?[（(](?:[^()（）]|[（(][^()（）]*[)）])*[)）]\s*[:：]\s*")
_CUT_LABEL = re.compile(r"^\s*(?:\[\d+\]\s*)?[（(][^)）]*$")
_REFERENCE_ONLY = re.compile(r"^(?:\W*(?:资料|来源|出处|原文|资料来源|sources?|passages?|see)\s*\d*\W*)+$", re.I)


def quotes(sentence: str) -> list[str] | None:
    """The quoted texts of a sentence made only of quotes (an extractive answer), else None."""
    body = _QUOTE_LEAD.sub("", strip_citations(sentence))
    found = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(body)]
    if not found or re.search(r"[^\W_]", _QUOTED.sub(" ", body)):
        return None
    return found


_SPLICE_GAP = 200  # flat characters between a label and its line; a table header may be further up


def verbatim(quote: str, passages: list[str]) -> bool:
    """The quote stands word for word in one passage (as the eval matches quotes: whitespace and
    markdown aside); pieces
    joined by "…" (a label and its line) stand there in that order with no other label line
    between them — a header spliced onto a line of another section ("AIME 2024: … R1: 1450 Elo")
    is no quote."""
    raw = [p for p in re.split(r"…|\.\.\.", quote) if normalize_for_chunk(p)]
    if not raw:
        return False
    parts = [normalize_for_chunk(p) for p in raw]
    far = "|" in raw[0]  # a table header row, read with one of its rows
    for passage in passages:
        lines = passage.splitlines()
        flat_lines = [normalize_for_chunk(x) for x in lines]
        flat = "".join(flat_lines)
        label_at, at = [], 0  # where each line that ends in a colon (a label) starts in `flat`
        for x, fx in zip(lines, flat_lines):
            if x.rstrip().endswith((":", "：")):
                label_at.append(at)
            at += len(fx)
        pos = None
        for part in parts:
            i = flat.find(part, pos or 0)
            if i < 0 or pos is not None and (any(pos <= a < i for a in label_at) or
                                             not far and i - pos > _SPLICE_GAP):
                break
            pos = i + len(part)
        else:
            return True
    return False


def quote_states(quote: str) -> bool:
    """Can a quoted piece of a passage state anything? Not a heading or code comment, a link,
    a bare URL, table cells without a figure, or a lead-in line."""
    q = quote.strip().strip("…").strip()
    if re.match(r"#|\*?\s*\[[^\]]*\]\s*$|[（(]?https?://", q) or re.search(r"[:：]\s*$", q):
        return False
    if not re.search(r"[^\W\d_]{2}", re.sub(r"[（(]?https?://\S+", " ", q)) or _TITLE.fullmatch(q):
        return False  # nothing but a link or figures; a heading ("Discussion Amount of SFT Data.")
    return not ("|" in q and not re.search(r"\d", q))


def assess(sentence: str, passages: list[str], aliases, threshold: float = 0.5,
           question: str | None = None) -> Verdict:
    """Is every clause of `sentence` stated by the passages? (with the reason, to read)"""
    quoted = quotes(sentence)
    if quoted is not None:  # each quote is a claim of its own; one that states nothing answers nothing
        for q in quoted:
            if not quote_states(q):
                return Verdict(False, "a quoted heading / link / label states nothing")
            if verbatim(q, passages):
                continue
            v = assess(q, passages, aliases, threshold, question)
            if not v.supported:
                return v
        return Verdict(True, "every quote found")
    if _CUT_LABEL.match(sentence) or _REFERENCE_ONLY.match(strip_citations(sentence)):
        return Verdict(False, "a source reference asserts nothing")
    sentence = _SOURCE_LABEL.sub("", sentence)
    claim = parse_claim(sentence, question)
    if not claim.asserts:
        return Verdict(False, claim.why)
    if not claim.clauses or all(c.empty() for c in claim.clauses):
        return Verdict(True, claim.why or "nothing to check")
    views = [view(p) for p in passages]
    for c in claim.clauses:  # "Gemini scores…": a name when the passages write it capitalised
        if c.maybe:
            pat = re.compile(r"(?<![A-Za-z])" + re.escape(c.maybe) + r"(?![a-z])")
            if any(pat.search(v.text) for v in views):
                c.names.insert(0, c.maybe)
            elif c.maybe.lower() not in c.terms:
                c.terms.insert(0, c.maybe.lower())
    keys = {name_key(n) for c in claim.clauses for n in c.anchors}
    checks = [check_clause(c, views, aliases, threshold, keys) for c in claim.clauses if not c.empty()]
    bad = next((c for c in checks if not c.supported), None)
    return Verdict(bad is None, bad.why if bad else "every clause found", checks)
