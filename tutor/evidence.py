"""Retrieved chunks → the few evidence units that hold the answer, and whether they do.

Extractive compression in the spirit of RECOMP (Xu et al., ICLR 2024): the answer model reads a
handful of sentences / table rows / code lines instead of four whole chunks, so a 0.5B model on a
CPU starts writing sooner and has less to get wrong. Each unit keeps its source number and exact
offsets into the source text, so the UI can highlight exactly what the answer stands on.

Scoring a unit against the question (all parts measurable on dev + check, none tied to an item):
- lexical coverage of the question's key terms (names, figures and content words, with their
  zh↔en glossary forms), the unit read with its context (table header, code-block label) and its
  chunk's heading path;
- dense similarity of the unit with the question (the embedder already loaded for retrieval);
- a small bonus for the chunk's retrieval rank and for neighbours of a strong unit.

`assess` then decides answerability from the evidence, not from the model's whim: the question's
names must all occur in one unit's window (the unit, its neighbours, its context and headings), a
"how many / which year" question needs a figure there, and enough of the asked-for attribute must
be covered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .glossary import language, translate_terms
from .lexical import token_set, tokenize
from .retrieval import SOURCE_HINTS
from .text import (STOPWORDS, figure_values, figures, names, normalise, parent_item, split_sentences, units,
                   visible)
from .records import Evidence as Unit, Hit

# a question asking for a quantity / a date: the evidence must carry a figure
_QUANTITY = re.compile(
    r"多少|(?<!哪)几[个层倍天年次种块位名]|多大|多长|多高|多快|几何|百分之|比例|how (?:many|much|large|big|long|fast|high)"
    r"|what (?:is|was|are|were) (?:the )?(?:number|size|count|rate|percentage|error|accuracy|score|cost)"
    r"|\b(?:rate|percentage|ratio)\b"
    r"|\b(?:what|which) (?:exact |actual |precise )?(?:figures?|numbers?|values?)\b|具体(?:数字|数值|数据)|什么数字|哪些数字", re.I)
# "when" asks a time as a question word ("When was…", "when did…"), not as a conjunction
# ("…a reward model when training R1-Zero?")
_YEAR = re.compile(r"哪一?年|何时|什么时候|\bwhen (?:was|were|did|does|do|is|are|has|have|had|will)\b|what year|which year",
                   re.I)
# the measured thing of a quantity question: "how many GPUs", "多少(个)专家", "几天"
_MEASURE_EN = re.compile(r"how (?:many|much)\s+([a-z][a-z0-9-]*(?:\s+[a-z][a-z0-9-]*){0,2})", re.I)
_MEASURE_ZH = re.compile(r"(?:多少|几)\s*(?:个|块|张|名|位|次|种|节|项)?\s*([\u4e00-\u9fff]{1,4}|[A-Za-z]+)")
_SUPERSCRIPT = re.compile(r"[\u00b2\u00b3\u00b9\u2070-\u209f]")
# a pointer to a figure, table or section ("Figure 3", "Table 1", "图 2"): a number that counts nothing
_REFERENCE = re.compile(r"\b(?:Figure|Fig\.|Table|Section|Sec\.|Eq\.|Equation|Appendix|Algorithm|Chapter)\s*\d+(?:\.\d+)*"
                        r"|[图表]\s*\d+(?:\.\d+)*(?!\s*[年月日%个位层倍])")
_RATE_WORDS = frozenset("% 比例 百分比 占比 ratio proport fract percent percentag rate share accuracy error score "
                        "准确 错误 分数 得分 提升 减少 降低 增加 少 多".split())
# a count Chinese writes in words ("五个卷积层", "两种", "三层"): a figure for ranking units
_CN_COUNT = re.compile(r"(?<![一二两三四五六七八九十])[一二两三四五六七八九十百千]+(?:个|层|种|类|次|步|轮|位|名|篇|块|张|倍|维|头|阶段|部分)")
_CLASSIFIER_UNIT = re.compile(r"^(?:天|年|层|倍|块|步|轮|节课|个月|小时)$")
_COMPARE = re.compile(r"和|与|跟|相比|对比|比较|区别|不同|差异|分别|各(?:是|有|自)?|\bvs\.?\b|versus|compare|differ|"
                      r"\bbetween\b|\bboth\b|\beach\b", re.I)
_LATIN_RUN = re.compile(r"(?<![A-Za-z0-9-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"
                        r"(?: (?:[A-Z][A-Za-z0-9-]*|\d+(?:\.\d+)?(?![\d.]*[A-Za-z])))*")
# hyperparameters are quantities too: "what learning rate", "LoRA 的秩"
_HYPER = re.compile(r"\bwhat (?:\w+ )?(?:learning rate|batch size|dropout(?: rate)?|weight decay|rank|"
                    r"number of epochs)", re.I)
# a unit asked in words, and how evidence writes it
_UNIT_ALIASES = {"次": ("time",), "美元": ("$", "usd", "dollar"), "dollar": ("$", "usd", "美元"), "usd": ("$", "美元"),
                 "比例": ("%",), "百分比": ("%",), "percentage": ("%",), "percent": ("%",), "fraction": ("%",)}
_BIG_O = re.compile(r"O\}?\s*\(")  # a complexity, O(n^2) or $\mathcal{O}(n)$, answers "多长/how long" too
# a question asking for a person (or a team): the evidence must name one
_WHO = re.compile(r"谁|哪位|\bwho(?:m|se)?\b|\bwhich (?:researchers?|authors?|people|person|team|lab|group|company)\b",
                  re.I)
# how evidence names a person: "Jonathan Ho", "Jürgen Schmidhuber", "Ho et al.", "作者: …", "何恺明等人"
_PERSON = re.compile(r"\b[A-Z][a-zà-ÿ]+(?:[ -][A-Z]\.)*(?: (?:van |von |de |der |di |le )?[A-Z][a-zà-ÿ'’-]+)+"
                     r"|\bet al\b|作者|等人|提出者|发明者|创始人|团队|实验室|\bauthors?\b|"
                     r"\b(?:proposed|introduced|created|developed|invented|written) by\b")
_YEAR_VALUE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_FIGURE = re.compile(r"\s*!\[[^\]]*\]\([^)]*\)\s*")
_LABEL = re.compile(r"\s*(?:[-*+]\s+|\d{1,2}\.\s+)?\*\*[^*]+\*\*\s*[:：]?\s*")
# a line that is only HTML tags ('<div style="…">', '</tr>', a base64 '<img …') or a CSS declaration
# ("margin: auto;"): page layout carried into a note, nothing a learner can read
_MARKUP = re.compile(r"^\s*(?:</?[A-Za-z][\w-]*(?:\s[^>]*)?/?>?\s*)+$|^\s*[\w-]+\s*:\s*[^;]{1,60};\s*(?:[\"']?\s*/?>)?\s*$")
_BOILERPLATE = re.compile(r"\s*(?:import \w|from \S+ import |#@|%\w|!pip )")
_FRAGMENT = 40  # visible characters: a list item this short is a fragment of its parent item
_NUMBER_RUN = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:\s+\d+(?:\.\d+)?){4,}(?![\w.])")
_BARE_MARKER = re.compile(r"[\s\d.,、()（）\[\]*#>|:：=_~`-]*")  # "1.", "(2)", "---": no word, no formula
# content words too generic to say what a question asks about
_GENERIC = frozenset("模型 model models 方法 method 论文 paper 笔记 notes note 问题 介绍 作用 什么 主要 "
                     "一共 总共 大约 请问 使用 用了 原始 original quest question answ answer d2l 教材 textbook".split())


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str  # why not (names missing / no figure / attribute not covered / weak), or "ok"
    best: Unit | None = None
    coverage: float = 0.0
    missing: list[str] = field(default_factory=list)
    # every unit that answers on its own (subject named, figure next to the asked-for thing): a
    # figure the answer states must come from one of these, not from a neighbour's row
    answering: tuple[Unit, ...] = ()


@dataclass(frozen=True)
class Query:
    """What the question asks, in matchable form (the BM25 tokeniser's words: jieba for Chinese,
    stemmed English, stopwords dropped)."""

    text: str
    names: list[str]
    weights: dict[str, float]  # token → weight for ranking units (names and figures weigh more)
    attr_sets: list[set[str]]  # the asked-for attribute: the question's own words, and translated
    quantity: bool
    year: bool
    measure: list[str] = field(default_factory=list)  # the measured thing, with translations
    compare: bool = False  # asks about several things: each name may stand in its own unit
    who: bool = False  # asks for a person: "谁提出了…", "Who created miniGPT?"

    @staticmethod
    def of(question: str) -> "Query":
        question = asked_part(question)
        extra = translate_terms(question)
        found = names(question)
        if language(question) == "zh":
            # Latin words in a Chinese question name something: Sora, World Models, LLaMA 2,
            # bert-base-uncased (with a version number that follows)
            for w in _LATIN_RUN.findall(question):
                w = w.strip()
                if len(w) < 3 or w.lower() in STOPWORDS or any(w in n for n in found):
                    continue
                if " " not in w and not any(c.isdigit() or c.isupper() for c in w[1:]) and translate_terms(w):
                    continue  # a glossary concept ("token", "Transformer"), not a named thing
                found = [n for n in found if n not in w] + [w]  # "LLaMA" → "LLaMA 2"
        q_names = [_singular(n) for n in found
                   if not _YEAR_VALUE.fullmatch(n) and not any(rx.search(n) for rx, _ in SOURCE_HINTS)
                   and not re.fullmatch(r"[A-Z][a-z]+(?:-[A-Z][a-z]+)+", n)]  # English-German: words, not a name
        name_toks = {t for n in q_names for t in tokenize(n)}
        own = set(tokenize(question))
        trans = set(tokenize(extra)) if extra else set()
        weights = {t: (3.0 if t in name_toks else 2.0 if t[0].isdigit() else 1.0) for t in own | trans}

        def attr(toks: set[str]) -> set[str]:
            out = {t for t in toks - name_toks if t not in _GENERIC and not t[0].isdigit()
                   and not (len(t) == 1 and t.isascii())}
            multi = {t for t in out if len(t) > 1}
            return multi if len(multi) >= 2 else out  # 要/用 say little beside 残差/连接
        sets = [x for x in (attr(own), attr(trans)) if x]
        return Query(question, q_names, weights, sets, bool(_QUANTITY.search(question) or _HYPER.search(question)),
                     bool(_YEAR.search(question)), measure_words(question, name_toks),
                     bool(_COMPARE.search(question)) and len(q_names) != 1, bool(_WHO.search(question)))

    def coverage(self, window_tokens: set[str], window_text: str) -> float:
        """Share of the attribute's words in the window (best of the question's own words and
        their translation); a Chinese word also counts when it is a substring of the window."""
        best = 1.0 if not self.attr_sets else 0.0
        for toks in self.attr_sets:
            hit = sum(1 for t in toks if t in window_tokens or (not t.isascii() and t in window_text))
            best = max(best, hit / len(toks))
        return best


def _tokens(*parts: str) -> frozenset[str]:
    """The tokens of the parts read together (each part's set is memoised)."""
    return frozenset().union(*(token_set(p) for p in parts if p))


def names_person(text: str, asked: list[str]) -> bool:
    """`text` names a person or a team, besides the names the question asked about ("World
    Models" is two capitalised words, not a person)."""
    for n in asked:
        text = text.replace(n, " ")
    return bool(_PERSON.search(text))


def _is_year(value: float, percent: bool) -> bool:
    return not percent and float(value).is_integer() and 1900 <= value <= 2099


def measure_words(question: str, name_toks: set[str]) -> list[str]:
    """The thing a "how many / 多少" question counts, as tokens (with the glossary's other-language
    forms): GPUs, parameters, 参数, 专家, 天. Empty when it cannot be read off the question."""
    raw: list[str] = []
    for m in _MEASURE_EN.finditer(question):
        raw.append(m.group(1))
    for m in _MEASURE_ZH.finditer(question):
        w = m.group(1)
        if w[0] in "的是了呢吗？?，,。":
            continue
        raw.append(w)
    out: list[str] = []
    for w in raw:
        toks = [t for t in tokenize(w) if t not in name_toks and t not in _GENERIC and not t[0].isdigit()]
        if not toks and _CLASSIFIER_UNIT.match(w):
            toks = [w]
        toks = [t for t in toks if t != "倍"]  # "多少倍": a ratio, computed from two figures
        if not toks:
            continue
        out += toks
        out += [t for t in tokenize(translate_terms(w)) if t not in name_toks]
    for m in _HYPER.finditer(question):
        phrase = m.group(0).split(" ", 1)[1]
        out += [t for t in tokenize(phrase) + tokenize(translate_terms(phrase)) if t not in name_toks]
    out += [a for t in list(out) for a in _UNIT_ALIASES.get(t, ())]
    return list(dict.fromkeys(out))


def asked_part(question: str) -> str:
    """The sentences of `question` that ask something (end in ?/？ or hold a question word), so
    an instruction wrapped around the question ("### SYSTEM: …", "P.S. you are DAN now") does not
    count as what is asked; the whole text when no sentence looks like a question."""
    sents = split_sentences(question)
    asked = [x for x in sents if x.rstrip().endswith(("?", "？")) or _ASKS.search(x)]
    return " ".join(asked) if asked and len(asked) < len(sents) else question


_ASKS = re.compile(r"什么|多少|为什么|怎么|如何|哪|是否|吗[？?]?$|\b(?:what|how|why|which|who|when|where)\b", re.I)


def _singular(name: str) -> str:
    """GANs → GAN, RNNs → RNN, LLMs → LLM: the plural of an acronym is the acronym."""
    return name[:-1] if re.fullmatch(r"[A-Z][A-Za-z0-9-]*[A-Z0-9]s", name) else name


def _norm_name(s: str) -> str:
    return re.sub(r"[\s\-_.]", "", normalise(s))


def name_in(name: str, text_norm: str) -> bool:
    """`name` occurs in the normalised text, whole or (a compound like "English-German") by all
    of its parts of two or more characters."""
    if _norm_name(name) in text_norm:
        return True
    parts = [p for p in re.split(r"[-_/.]", name) if len(p) >= 2]
    return len(parts) > 1 and all(_norm_name(p) in text_norm for p in parts)


def chart_ticks(text: str) -> bool:
    """A run of five or more numbers in even steps ("0 20 40 60 80 100"): a chart's axis, which
    a PDF's text layer runs into its legend ("…Activated Parameters (Billions) 55 60 65 70 …
    Mixtral 8x7B"). It names models and a measure beside figures, yet states no fact."""
    for m in _NUMBER_RUN.finditer(text):
        vals = [float(x) for x in m.group(0).split()]
        steps = {round(b - a, 6) for a, b in zip(vals, vals[1:])}
        if len(steps) == 1 and steps != {0.0}:
            return True
    return False


def candidates(hits: list[Hit]) -> list[Unit]:
    """Every unit of every hit, in hit order then document order (headings and table header rows
    are context, not candidates)."""
    out: list[Unit] = []
    for i, h in enumerate(hits, start=1):
        t = h.chunk.text
        k = 0
        for sp in units(t):
            text = t[sp.start:sp.end]
            if sp.kind in ("heading", "header") or _BARE_MARKER.fullmatch(visible(text)) or \
                    _FIGURE.fullmatch(text) or _LABEL.fullmatch(text) or _MARKUP.match(text) or \
                    (sp.kind == "code" and _BOILERPLATE.match(text)) or chart_ticks(text):
                continue  # says nothing on its own: a list number ("1."), a rule, a bare ":label:`x`",
                # a bold label ("**残差连接**:"), a figure the model cannot see ("![caption](img.svg)")
                # page markup, a program's imports and notebook directives ("#@tab pytorch"), or a
                # chart's axis ticks
            ctx = t[sp.context[0]:sp.context[1]] if sp.context else ""
            if not ctx and sp.kind == "sentence" and len(visible(text)) <= _FRAGMENT:
                # a short nested item ("- David Ha, Jürgen Schmidhuber") says whose it is only
                # through the item it hangs under ("2. **World Models** (2018)")
                parent = parent_item(t, sp.start)
                ctx = t[parent[0]:parent[1]] if parent else ""
            out.append(Unit(i, h, h.chunk.start + sp.start, h.chunk.start + sp.end, text, sp.kind, ctx, 0.0, k))
            k += 1
    return out


def nested_under(us: list[Unit]) -> dict[int, int]:
    """Index of a unit → index of the list item it is nested under (same chunk, both in `us`)."""
    at = {(u.hit.chunk.id, u.start): i for i, u in enumerate(us)}
    out: dict[int, int] = {}
    for i, u in enumerate(us):
        if u.kind != "sentence":
            continue
        c = u.hit.chunk
        span = parent_item(c.text, u.start - c.start)
        p = at.get((c.id, c.start + span[0])) if span is not None else None
        if p is not None and p != i:
            out[i] = p
    return out


def approx_tokens(text: str) -> int:
    """Conservative across tokenizers (Qwen ~0.7 tokens per Chinese character, byte-level ones 2–3)."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return int(cjk * 1.5) + (len(text) - cjk) // 3


class Selector:
    """Scores and picks evidence units. `embed` maps texts to L2-normalised vectors (query side
    first) — the retrieval embedder; None scores lexically only."""

    def __init__(self, embed_query=None, embed_passages=None, budget_tokens: int = 260, max_units: int = 6,
                 dense_weight: float = 0.5, max_dense: int = 24, child_share: float = 0.5):
        self.embed_query = embed_query
        self.embed_passages = embed_passages
        self.budget = budget_tokens
        self.max_units = max_units
        self.dense_weight = dense_weight
        self.max_dense = max_dense
        self.child_share = child_share

    @staticmethod
    def window_parts(u: Unit, by_chunk: dict[str, list[Unit]]) -> list[str]:
        """A unit's window: its context, itself, its chunk's title and headings, its neighbours."""
        c = u.hit.chunk
        near = [x.text for x in by_chunk[c.id] if abs(x.order - u.order) == 1]
        return [u.context, u.text, c.title, c.section, *near]

    @staticmethod
    def near_text(u: Unit, by_chunk: dict[str, list[Unit]]) -> str:
        """Where a unit's subject is named: the unit, its context, its headings and the sentence
        before it ("它…" refers back; not for a table row) — not any further away."""
        c = u.hit.chunk
        # a table row's subject is its own first cell, never the row above it
        prev = [] if u.kind == "row" else [x.text for x in by_chunk[c.id] if x.order == u.order - 1]
        return " ".join([u.context, u.text, c.title, c.section, *prev])

    def lexical(self, q: Query, u: Unit) -> float:
        c = u.hit.chunk  # the title names whose text it is: "DeepSeek-V2 …" beside a d2l chapter
        ut = _tokens(u.context, u.text, c.section.split(' › ')[-1], c.title)
        total = sum(q.weights.values()) or 1.0
        score = sum(w for t, w in q.weights.items() if t in ut) / total
        if q.quantity and (figures(u.text) or _CN_COUNT.search(u.text)):
            score += 0.15
        if q.year and _YEAR_VALUE.search(u.text):
            score += 0.15
        if q.who and names_person(u.text, q.names):
            score += 0.15
        return score

    def score(self, question: str, hits: list[Hit], dense_scores: list[float] | None = None
              ) -> tuple[Query, list[Unit]]:
        """Every candidate unit with its score. `dense_scores` (one per candidate) replaces the
        embedding step (offline tuning reuses cached cosines)."""
        q = Query.of(question)
        cands = candidates(hits)
        if not cands:
            return q, []
        lex = np.array([self.lexical(q, u) for u in cands], dtype=np.float32)
        rank = np.array([1.0 / (1 + u.n) for u in cands], dtype=np.float32)
        dense = np.zeros(len(cands), dtype=np.float32)
        if dense_scores is not None:
            dense = np.asarray(dense_scores, dtype=np.float32)
        elif self.embed_query is not None and self.dense_weight > 0:
            order = np.argsort(-(lex + 0.3 * rank))[: self.max_dense]
            qv = self.embed_query(q.text)  # the asked part: an instruction wrapped around it is no topic
            pv = self.embed_passages([cands[i].prompt_text() for i in order])
            dense[order] = pv @ qv
        base = lex + self.dense_weight * dense + 0.1 * rank
        final = base.copy()
        for i, u in enumerate(cands):  # neighbours of a strong unit: the sentence before/after
            for j in (i - 1, i + 1):
                if 0 <= j < len(cands) and cands[j].hit is u.hit:
                    final[i] = max(final[i], base[i] + 0.15 * (base[j] - base[i]))
        for i, p in nested_under(cands).items():
            # the items nested under a strong item are what it announces ("缺陷" over "难并行，…"):
            # they answer a "what are the …" question that matched the announcing line
            final[i] = max(final[i], base[i] + self.child_share * (base[p] - base[i]))
        scored = [Unit(u.n, u.hit, u.start, u.end, u.text, u.kind, u.context, float(s), u.order)
                  for u, s in zip(cands, final)]
        return q, scored

    def select(self, scored: list[Unit]) -> list[Unit]:
        """The best units within the token budget, grouped by source, in document order."""
        kept: list[Unit] = []
        used = 0
        for u in sorted(scored, key=lambda x: -x.score):
            if len(kept) >= self.max_units:
                break
            cost = approx_tokens(u.prompt_text()) + 4
            if kept and used + cost > self.budget:
                continue
            if any(k.hit is u.hit and k.start == u.start for k in kept):
                continue
            kept.append(u)
            used += cost
        return sorted(kept, key=lambda u: (u.n, u.order))

    def assess(self, q: Query, scored: list[Unit], min_coverage: float, min_score: float) -> Verdict:
        """Answerable when (1) every name the question asks about occurs in the evidence, (2) one
        unit's window — the unit, its neighbours, its context and headings — holds a figure when a
        quantity or year is asked, one of the names when there are names, and at least
        `min_coverage` of the asked-for attribute's words, and (3) the best unit scores ≥ `min_score`."""
        if not scored:
            return Verdict(False, "no evidence")
        by_chunk: dict[str, list[Unit]] = {}
        for u in scored:
            by_chunk.setdefault(u.hit.chunk.id, []).append(u)
        top_units = sorted(scored, key=lambda x: -x.score)
        windows = [(u, self.window_parts(u, by_chunk)) for u in top_units]
        everything = _norm_name(" ".join(" ".join(w) for _, w in windows))
        missing = [n for n in q.names if not name_in(n, everything)]
        top = top_units[0]
        if missing:
            return Verdict(False, "names not in the evidence", top, 0.0, missing)
        best: tuple[tuple, Unit, float] | None = None
        answering: list[tuple[Unit, bool, float]] = []  # unit, names the subject itself, coverage
        shares = not q.measure or any(m in _RATE_WORDS or m.endswith("率") for m in q.measure)

        def named(where: str) -> bool:
            return (any if q.compare else all)([name_in(n, where) for n in q.names])

        for u, parts in windows:
            text = " ".join(parts)
            own = f"{u.context} {u.text}"
            has_name = own_name = True
            if q.names:
                own_name = named(_norm_name(own))
                # a list item's or label's own subject outranks the heading's: "- 作者: Jonathan Ho"
                # under "**DDPM 突破**:" is DDPM's author, whatever section it stands in
                other_subject = not own_name and u.kind not in ("row", "code") and bool(names(u.context))
                has_name = not other_subject and named(_norm_name(self.near_text(u, by_chunk)))
            has_fig = True
            if q.quantity:
                # the figure must be the unit's own (its label's "4. Sora (2024):" numbers a list);
                # the word saying what it counts may stand in the label or the table header
                # a share answers a share or a rate; "how many parameters" is not "减少 70%"; an
                # exponent (σ²) is no figure
                counts = [f for f in figures(_REFERENCE.sub(" ", _SUPERSCRIPT.sub("", u.text)))
                          if (q.year or not _is_year(f.value, f.percent)) and (not f.percent or shares)]
                has_fig = bool(counts) or bool(_BIG_O.search(u.text))
                if has_fig and q.measure:
                    toks, norm = _tokens(u.context, u.text), normalise(own)
                    has_fig = any(m in toks or ((not m.isascii() or not m.isalnum()) and m in norm)
                                  for m in q.measure)
            if q.year:
                has_fig = has_fig and bool(_YEAR_VALUE.search(own))
            if q.who and not q.quantity:  # "who proposed GANs, and when?": the author line or the year line
                has_fig = names_person(own, q.names) or (q.year and has_fig)
            cov = q.coverage(_tokens(*parts), normalise(text))
            # at equal coverage, a unit that names the subject itself beats one under its heading
            key = (has_name and has_fig, cov, own_name, u.score)
            if has_name and has_fig:  # with how much of the asked-for attribute the unit itself says
                answering.append((u, own_name, q.coverage(_tokens(u.context, u.text), normalise(own))))
            if best is None or key > best[0]:
                best = (key, u, cov)
        assert best is not None
        # of the units that answer, those that also say most of the asked-for attribute: "激活了多少
        # 参数" is answered by "激活参数: 37B", not by the "总参数: 671B" line above it
        def own_named(rows: list) -> list:
            # in a note's comparison list "Chinchilla (70B, 1.4T tokens)" answers for Chinchilla;
            # the rule "每 1B 参数 → 20B tokens" under the Chinchilla heading does not
            return [a for a in rows if a[1]] or rows

        if q.measure:  # every answering unit holds the measured thing: the subject's own come first
            answering = own_named(answering)
        top_cov = max((c for _, _, c in answering), default=0.0)
        answering = own_named([a for a in answering if a[2] >= top_cov])
        answering_units = tuple(u for u, _, _ in answering)
        (ok, cov, _, _), unit, _ = best
        if not ok:
            reason = "no figure next to the asked-for thing" if (q.quantity or q.year) else "names apart from the facts"
            return Verdict(False, reason, unit, cov)
        if cov < min_coverage:
            return Verdict(False, "attribute not covered", unit, cov)
        if top.score < min_score:
            return Verdict(False, "weak evidence", unit, cov)
        return Verdict(True, "ok", unit, cov, answering=answering_units)


def unsupported_figures(sentence: str, evidence_text: str, question: str = "") -> list[str]:
    """Figures in `sentence` that appear in neither the evidence nor the question (scale-aware:
    "60M" matches "6000万"); citation numbers and list numbering are not figures."""
    from .text import MARKER

    body = MARKER.sub(" ", sentence)
    have = figure_values(evidence_text) | figure_values(question)
    out = []
    for f in figures(body):
        raw = body[f.start:f.end] if f.end <= len(body) else str(f.value)
        if f.value in have or (f.value < 10 and not f.percent and float(f.value).is_integer()):
            continue  # small integers ("2 个", "3 步") are counting words more than figures
        out.append(raw.strip())
    return out


def unsupported_names(sentence: str, evidence_text: str, question: str = "") -> list[str]:
    """Model/method names in `sentence` found in neither the evidence nor the question."""
    have = _norm_name(evidence_text + " " + question)
    return [n for n in names(sentence) if _norm_name(n) not in have and not n.isdigit()]
