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

from .glossary import translate_terms
from .lexical import tokenize
from .text import figure_values, figures, names, normalise, units
from .types import Evidence as Unit, Hit

# a question asking for a quantity / a date: the evidence must carry a figure
_QUANTITY = re.compile(
    r"多少|几[个层倍天年次种块位名]|多大|多长|多高|多快|几何|百分之|比例|how (?:many|much|large|big|long|fast|high)"
    r"|what (?:is|was|are|were) (?:the )?(?:number|size|count|rate|percentage|error|accuracy|score|cost)"
    r"|\b(?:rate|percentage|ratio)\b", re.I)
_YEAR = re.compile(r"哪一?年|何时|什么时候|\bwhen\b|what year|which year", re.I)
_YEAR_VALUE = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
# content words too generic to say what a question asks about
_GENERIC = frozenset("模型 model models 方法 method 论文 paper 笔记 notes note 问题 介绍 作用 什么 主要 "
                     "一共 总共 大约 请问 使用 用了 原始 original".split())


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    reason: str  # why not (names missing / no figure / attribute not covered / weak), or "ok"
    best: Unit | None = None
    coverage: float = 0.0
    missing: list[str] = field(default_factory=list)


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

    @staticmethod
    def of(question: str) -> "Query":
        extra = translate_terms(question)
        q_names = [n for n in names(question) if not _YEAR_VALUE.fullmatch(n)]
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
        return Query(question, q_names, weights, sets, bool(_QUANTITY.search(question)),
                     bool(_YEAR.search(question)))

    def coverage(self, window_tokens: set[str], window_text: str) -> float:
        """Share of the attribute's words in the window (best of the question's own words and
        their translation); a Chinese word also counts when it is a substring of the window."""
        best = 1.0 if not self.attr_sets else 0.0
        for toks in self.attr_sets:
            hit = sum(1 for t in toks if t in window_tokens or (not t.isascii() and t in window_text))
            best = max(best, hit / len(toks))
        return best


def _norm_name(s: str) -> str:
    return re.sub(r"[\s\-_.]", "", normalise(s))


def candidates(hits: list[Hit]) -> list[Unit]:
    """Every unit of every hit, in hit order then document order (headings and table header rows
    are context, not candidates)."""
    out: list[Unit] = []
    for i, h in enumerate(hits, start=1):
        t = h.chunk.text
        k = 0
        for sp in units(t):
            if sp.kind in ("heading", "header"):
                continue
            ctx = t[sp.context[0]:sp.context[1]] if sp.context else ""
            out.append(Unit(i, h, h.chunk.start + sp.start, h.chunk.start + sp.end, t[sp.start:sp.end],
                            sp.kind, ctx, 0.0, k))
            k += 1
    return out


def approx_tokens(text: str) -> int:
    """Conservative across tokenizers (Qwen ~0.7 tokens per Chinese character, byte-level ones 2–3)."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return int(cjk * 1.5) + (len(text) - cjk) // 3


class Selector:
    """Scores and picks evidence units. `embed` maps texts to L2-normalised vectors (query side
    first) — the retrieval embedder; None scores lexically only."""

    def __init__(self, embed_query=None, embed_passages=None, budget_tokens: int = 260, max_units: int = 6,
                 dense_weight: float = 0.5, max_dense: int = 24):
        self.embed_query = embed_query
        self.embed_passages = embed_passages
        self.budget = budget_tokens
        self.max_units = max_units
        self.dense_weight = dense_weight
        self.max_dense = max_dense

    @staticmethod
    def window_text(u: Unit, by_chunk: dict[str, list[Unit]]) -> str:
        c = u.hit.chunk
        near = [x.text for x in by_chunk[c.id] if abs(x.order - u.order) == 1]
        return " ".join([u.context, u.text, c.title, c.section, *near])

    def lexical(self, q: Query, u: Unit) -> float:
        ut = set(tokenize(f"{u.context} {u.text} {u.hit.chunk.section.split(' › ')[-1]}"))
        total = sum(q.weights.values()) or 1.0
        score = sum(w for t, w in q.weights.items() if t in ut) / total
        if q.quantity and figures(u.text):
            score += 0.15
        if q.year and _YEAR_VALUE.search(u.text):
            score += 0.15
        return score

    def score(self, question: str, hits: list[Hit]) -> tuple[Query, list[Unit]]:
        q = Query.of(question)
        cands = candidates(hits)
        if not cands:
            return q, []
        lex = np.array([self.lexical(q, u) for u in cands], dtype=np.float32)
        rank = np.array([1.0 / (1 + u.n) for u in cands], dtype=np.float32)
        dense = np.zeros(len(cands), dtype=np.float32)
        if self.embed_query is not None and self.dense_weight > 0:
            order = np.argsort(-(lex + 0.3 * rank))[: self.max_dense]
            qv = self.embed_query(question)
            pv = self.embed_passages([cands[i].prompt_text() for i in order])
            dense[order] = pv @ qv
        base = lex + self.dense_weight * dense + 0.1 * rank
        final = base.copy()
        for i, u in enumerate(cands):  # neighbours of a strong unit: the sentence before/after
            for j in (i - 1, i + 1):
                if 0 <= j < len(cands) and cands[j].hit is u.hit:
                    final[i] = max(final[i], base[i] + 0.15 * (base[j] - base[i]))
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
        """Answerable when one unit's window holds all the question's names, a figure when a
        quantity/year is asked, and at least `min_coverage` of the attribute terms."""
        if not scored:
            return Verdict(False, "no evidence")
        by_chunk: dict[str, list[Unit]] = {}
        for u in scored:
            by_chunk.setdefault(u.hit.chunk.id, []).append(u)
        best: tuple[float, Unit, float, list[str]] | None = None
        for u in sorted(scored, key=lambda x: -x.score)[:12]:
            text = self.window_text(u, by_chunk)
            missing = [n for n in q.names if _norm_name(n) not in _norm_name(text)]
            if missing:
                continue
            if q.quantity and not figures(f"{u.context} {u.text}"):
                continue
            if q.year and not _YEAR_VALUE.search(u.text):
                continue
            cov = q.coverage(set(tokenize(text)), normalise(text))
            if best is None or (cov, u.score) > (best[0], best[1].score):
                best = (cov, u, cov, [])
        top = max(scored, key=lambda x: x.score)
        if best is None:
            missing = [n for n in q.names if not any(_norm_name(n) in _norm_name(u.text + u.hit.chunk.section
                                                                                 + u.hit.chunk.title)
                                                    for u in scored)]
            reason = ("names not in the evidence" if missing else
                      "no figure next to the asked-for thing" if (q.quantity or q.year) else "weak evidence")
            return Verdict(False, reason, top, 0.0, missing)
        cov, unit = best[0], best[1]
        if cov < min_coverage:
            return Verdict(False, "attribute not covered", unit, cov)
        if top.score < min_score:
            return Verdict(False, "weak evidence", unit, cov)
        return Verdict(True, "ok", unit, cov)


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
