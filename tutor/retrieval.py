"""Question → ranked `Hit`s: dense (FAISS) and BM25 (jieba), fused by weighted reciprocal rank.

Each question runs as a few query variants, each through dense and BM25, and all the ranked
lists are fused with weighted RRF:

- the question with its glossary translation appended (tutor/glossary.py): the other language's
  words for its DL terms, so an English question reaches a Chinese note and a Chinese question
  an English paper. When there is a translation the bare question is not searched on its own
  (`original_weight` 0): its lists only pull towards same-language chunks;
- its parts, when it asks several things ("X 是什么？Y 有多少？"), at half weight: the second
  fact is not drowned by chunks that only answer the first;
- the other forms of a rewritten follow-up (tutor/chat.py: the rule-built standalone question
  beside the model's rewrite), each with its own translation, at `standalone_weight`: a rewrite
  that lost the topic or the follow-up's question cannot lose the evidence;
- BM25 lists weigh twice the dense ones (`dense_weight` 0.5): on this corpus BM25 over jieba
  tokens is the stronger retriever, and e5-small's dense ranks are noisy across languages.

The fused scores are then boosted where the question points: its folder ("my notes" → notes/,
"the paper" → papers/, "d2l" → d2l-zh/) and chunks whose heading path (title › sections) names
what it names (DeepSeek-V3, ResNet). Last, per-file diversity: at most `file_cap` chunks of one
file per `top_k` places (the top hit's file `lead_bonus` more), so one long file (a 130-chunk
note, a 50-page paper) cannot fill the result, and a question that needs two sources gets both.

Every knob is a `Settings` field; the defaults were measured on evals/datasets/dev.jsonl and a
private check set, and are round numbers on purpose (held-out sets are scored too).

Fusion is written here (a few lines of RRF) rather than with llama-index's QueryFusionRetriever,
which wants its own embedding/LLM wrappers and async plumbing for what is a weighted sum of
reciprocal ranks over lists we already have.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from .config import Settings
from .embedding import Embedder
from .glossary import language, translate_terms
from .errors import EmbedderMismatch, EmptyQuestion, QuestionTooLong
from .index import IndexData
from .lexical import tokenize
from .records import Hit, SearchResult

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Ranked:
    """One retriever's ranking: chunk rows, best first, with their raw scores."""

    rows: list[int]
    scores: list[float]
    weight: float = 1.0


class Variant(NamedTuple):
    """One form of the question that is searched: "q" the question, "x" it with its translation,
    "p" one of its parts, "a" an alternate form (a follow-up's other standalone question)."""

    kind: str
    text: str
    weight: float


@dataclass(frozen=True)
class QueryPlan:
    """What one search runs: the question's variants, through which retrievers (`mode`), with
    `n` candidates per list, for `k` results; `hint_text` is what source / name boosts read."""

    query: str
    variants: tuple[Variant, ...]
    mode: str
    k: int
    n: int
    hint_text: str

    def whole(self) -> list[int]:
        """The variants that ask the whole question (not a part): the relevance gate's."""
        return [i for i, v in enumerate(self.variants) if v.kind != "p"]


def rrf(lists: list[Ranked], k: int = 60) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion: score(row) = Σ weight / (k + rank), best first."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, row in enumerate(ranked.rows, start=1):
            fused[row] = fused.get(row, 0.0) + ranked.weight / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def diversify(ranked: list[tuple[int, float]], group: Callable[[int], str], k: int,
              cap: int, window: int = 5, lead_bonus: int = 0) -> list[tuple[int, float]]:
    """The first `k` of `ranked`, with at most `cap` rows of one group (file) in the first
    `window` places, 2·cap in the first 2·window, and so on; the group of the first row may have
    `lead_bonus` more. A row held back by the cap comes back as soon as its group is allowed
    again, so nothing is lost and the first `window` rows are the same whatever `k` is (a search
    for 10 starts with the search for 5). `cap` ≤ 0 turns it off."""
    if cap <= 0:
        return ranked[:k]
    pool = list(ranked)
    count: dict[str, int] = {}
    out: list[tuple[int, float]] = []
    while pool and len(out) < k:
        allowed = cap * (len(out) // max(window, 1) + 1)
        lead = group(out[0][0]) if out else None

        def fits(row: int) -> bool:
            g = group(row)
            return count.get(g, 0) < allowed + (lead_bonus if g == lead else 0)

        i = next((i for i, (row, _) in enumerate(pool) if fits(row)), 0)
        row, score = pool.pop(i)
        count[group(row)] = count.get(group(row), 0) + 1
        out.append((row, score))
    return out


# a model or method name as typed: DeepSeek-V3, AlexNet, ResNet-152, BERT, GPT-4o, MoE, 16B —
# a word with a digit or a capital after its first letter
_NAME = re.compile(r"(?<![\w-])(?=[\w.-]*(?:\d|[A-Z][\w.-]*[A-Z]))[A-Za-z0-9][\w.-]*[\w]")


def names(query: str) -> list[str]:
    """The model / method names typed in `query`."""
    return _NAME.findall(query)


# where a question points at one kind of source ("my notes", "the paper", "d2l"): the folder
# under the corpus whose chunks get `Settings.source_boost`
SOURCE_HINTS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"笔记|\bmy notes?\b|\bthe notes\b|\bnotes (?:say|said|claim|mention)", re.I), "notes/"),
    (re.compile(r"论文|技术报告|\bpapers?\b|technical report", re.I), "papers/"),
    (re.compile(r"\bd2l\b|动手学|教材|\btextbook\b", re.I), "d2l-zh/"),
]


# a question's parts: split after ？?；;!！ and 。 (a period only when followed by more text)
_PARTS = re.compile(r"(?<=[？?；;!！。])\s*|(?<=[a-z0-9)]\.)\s+(?=[A-Z])")
_MIN_PART = 6  # characters: shorter parts ("为什么？") are not worth their own search


def split_parts(query: str, max_parts: int | None = None) -> list[str]:
    """The separate questions in `query` (at least two, each long enough), else []; at most
    `max_parts` of them (the first ones): each part costs a search of its own."""
    parts = [p.strip() for p in _PARTS.split(query) if p.strip()]
    parts = [p for p in parts if len(p) >= _MIN_PART]
    return parts[:max_parts] if len(parts) >= 2 else []


def check_question(question: str, settings: Settings) -> str:
    """The question, stripped; `EmptyQuestion` when blank, `QuestionTooLong` past the configured
    cap. The one check every entry point (CLI, web UI, evals, the API) goes through."""
    q = (question or "").strip()
    if not q:
        raise EmptyQuestion()
    limit = settings.retrieval.max_question_chars
    if limit and limit > 0 and len(q) > limit:
        raise QuestionTooLong(len(q), limit)
    return q


class Retriever:
    def __init__(self, index: IndexData, embedder: Embedder, settings: Settings):
        if index.manifest.embedder_change(embedder):
            have = index.manifest.embedder_key
            if have.spec != embedder.spec:
                problem = f"index was built with embedder {have.spec!r} but {embedder.spec!r} is configured"
            elif have.backend != embedder.backend:
                problem = (f"index was built with embedder {have.spec!r} on backend {have.backend!r} but backend "
                           f"{embedder.backend!r} is configured")
            else:
                problem = f"index was built with embedder {have.spec!r} and other query/passage prompts"
            raise EmbedderMismatch(problem, "run `tutor ingest` to rebuild, or set the embedder settings back")
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.bm25 = index.bm25_for(settings.retrieval.bm25_k1, settings.retrieval.bm25_b)
        self._heads = self._heading_tokens()

    def _heading_tokens(self) -> tuple[list[frozenset[str]], dict[str, float]]:
        """Per chunk, the Latin tokens of its heading path (title › sections: "deepseek-v3",
        "resnet", "bert", …), and each token's idf over the distinct heading paths."""
        cache: dict[tuple[str, str], frozenset[str]] = {}
        heads = []
        for c in self.index.chunks:
            key = (c.title, c.section)
            if key not in cache:
                cache[key] = frozenset(t for t in tokenize(f"{c.title} {c.section}")
                                       if t.isascii() and any(ch.isalpha() for ch in t))
            heads.append(cache[key])
        df: dict[str, int] = {}
        for head in cache.values():
            for t in head:
                df[t] = df.get(t, 0) + 1
        n = max(len(cache), 1)
        return heads, {t: math.log(1 + n / d) for t, d in df.items()}

    def _boosted(self, query: str, fused: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Fused scores × (1 + source_boost) for chunks in the folder the question points at,
        × (1 + heading_boost · share of the question's names, by idf, in the chunk's headings)."""
        s = self.settings
        chunks = self.index.chunks
        prefixes = tuple(p for rx, p in SOURCE_HINTS if rx.search(query)) if s.retrieval.source_boost else ()
        heads, idf = self._heads
        named = {t for w in names(query) for t in tokenize(w) if t in idf} if s.retrieval.heading_boost else set()
        total = sum(idf[t] for t in named)
        if not prefixes and not total:
            return fused
        out = []
        for row, score in fused:
            if prefixes and chunks[row].path.startswith(prefixes):
                score *= 1 + s.retrieval.source_boost
            if total:
                score *= 1 + s.retrieval.heading_boost * sum(idf[t] for t in named & heads[row]) / total
            out.append((row, score))
        return sorted(out, key=lambda kv: (-kv[1], kv[0]))

    # ---- the single retrievers ----------------------------------------------------------------
    def _dense(self, vecs: np.ndarray, n: int) -> list[Ranked]:
        n = min(n, self.index.dense.ntotal)
        if n == 0:
            return [Ranked([], []) for _ in vecs]
        scores, rows = self.index.dense.search(vecs, n)
        return [Ranked([int(r) for r in rs if r >= 0], [float(s) for s in ss]) for ss, rs in zip(scores, rows)]

    def _bm25(self, tokens: list[str], n: int) -> Ranked:
        bm25 = self.bm25
        if bm25 is None or not tokens:
            return Ranked([], [])
        vocab = bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return Ranked([], [])
        n = min(n, len(self.index.chunks))
        rows, scores = bm25.retrieve([known], k=n, show_progress=False, n_threads=1)
        pairs = [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0]
        return Ranked([r for r, _ in pairs], [s for _, s in pairs])

    # ---- search ---------------------------------------------------------------------------------
    def variants(self, query: str, alternates: tuple[str, ...] | list[str] = ()) -> list[Variant]:
        """Every query variant: the question, its translation, its parts (each with its own
        translation), each alternate form of the question (with its translation)."""
        s = self.settings
        out = [Variant("q", query, 1.0)]
        if s.retrieval.cross_lingual:
            extra = translate_terms(query)
            if extra:
                # the translated question holds the question's own words too; the bare question
                # only adds lists biased to its own language (weight 0 by default: not run)
                out = [Variant("q", query, s.retrieval.original_weight)] if s.retrieval.original_weight > 0 else []
                out.append(Variant("x", f"{query} {extra}", s.retrieval.translated_weight))
        if s.retrieval.split_parts:
            for part in split_parts(query, max(s.retrieval.max_query_parts, 0)):
                extra = translate_terms(part) if s.retrieval.cross_lingual else ""
                out.append(Variant("p", f"{part} {extra}".strip(), s.retrieval.part_weight))
        for alt in dict.fromkeys(a.strip() for a in alternates):
            if alt and alt != query and s.retrieval.standalone_weight > 0:
                extra = translate_terms(alt) if s.retrieval.cross_lingual else ""
                out.append(Variant("a", f"{alt} {extra}".strip(), s.retrieval.standalone_weight))
        return out

    def plan(self, query: str, k: int | None = None, mode: str | None = None,
             alternates: tuple[str, ...] | list[str] = ()) -> QueryPlan:
        """The checked question and everything its search will run (ValueError on a bad mode)."""
        s = self.settings
        query = check_question(query, s)
        k = k or s.retrieval.top_k
        mode = mode or s.retrieval.mode
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r} (expected one of {', '.join(MODES)})")
        return QueryPlan(query, tuple(self.variants(query, alternates)), mode, k, max(s.retrieval.candidates, k),
                         " ".join([query, *alternates]))

    def search(self, query: str, k: int | None = None, mode: str | None = None,
               alternates: tuple[str, ...] | list[str] = ()) -> SearchResult:
        """Ranked hits for `query`; `alternates` are other forms of the same question (a
        follow-up's rule-built standalone form) searched and fused with it. The pipeline: plan
        the variants → rank each through dense and / or BM25 → fuse → boost → diversify → gate."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        plan = self.plan(query, k, mode, alternates)
        lists, qvecs = self._rank(plan, timings)
        fused = self._boosted(plan.hint_text, self._fuse(plan, lists))
        chunks = self.index.chunks
        s = self.settings
        r = s.retrieval
        fused = diversify(fused, lambda row: chunks[row].file, plan.k, r.file_cap, r.top_k, r.lead_bonus)
        hits = [Hit(chunks[row], score, rank, plan.mode) for rank, (row, score) in enumerate(fused, start=1)]
        sim = self._gate(plan, qvecs, [row for row, _ in fused], timings)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(plan.query, hits, timings, language(plan.query), sim)

    def _rank(self, plan: QueryPlan, timings: dict[str, float]) -> tuple[list[Ranked], np.ndarray | None]:
        """Each variant through the plan's retrievers, weighted (variant × retriever); the query
        vectors too (None in BM25 mode), for the gate."""
        s = self.settings
        lists: list[Ranked] = []
        qvecs = None
        if plan.mode in ("dense", "hybrid"):
            t = time.perf_counter()
            qvecs = self.embedder.queries([v.text for v in plan.variants])
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            w = s.retrieval.dense_weight if plan.mode == "hybrid" else 1.0
            for v, ranked in zip(plan.variants, self._dense(qvecs, plan.n)):
                lists.append(Ranked(ranked.rows, ranked.scores, w * v.weight))
            timings["dense"] = (time.perf_counter() - t) * 1000
        if plan.mode in ("bm25", "hybrid"):
            t = time.perf_counter()
            w = s.retrieval.bm25_weight if plan.mode == "hybrid" else 1.0
            for v in plan.variants:
                ranked = self._bm25(tokenize(v.text), plan.n)
                lists.append(Ranked(ranked.rows, ranked.scores, w * v.weight))
            timings["bm25"] = (time.perf_counter() - t) * 1000
        return [r for r in lists if r.rows], qvecs

    def _fuse(self, plan: QueryPlan, lists: list[Ranked]) -> list[tuple[int, float]]:
        """Weighted RRF of the lists; a single list of a single variant keeps its own scores."""
        if len(lists) == 1 and len(plan.variants) == 1:
            return list(zip(lists[0].rows, lists[0].scores))
        return rrf(lists, self.settings.retrieval.rrf_k)

    def _gate(self, plan: QueryPlan, qvecs: np.ndarray | None, rows: list[int],
              timings: dict[str, float]) -> float | None:
        """The relevance gate's input, in every mode: the dense cosine between the question (and
        its translation, not its parts) and the returned chunks. BM25 mode embeds the question for
        it alone (BM25 scores are not comparable across questions; the cosine is calibrated) and
        also counts the question's nearest chunks, so the gate asks "is this corpus about it?" as
        in dense mode, whatever BM25 happened to rank first."""
        whole = plan.whole()
        if qvecs is not None:
            return self._similarity(qvecs[whole], rows)
        t = time.perf_counter()
        gate_vecs = self.embedder.queries([plan.variants[i].text for i in whole])
        nearest = {r for ranked in self._dense(gate_vecs, plan.k) for r in ranked.rows}
        sim = self._similarity(gate_vecs, rows + sorted(nearest - set(rows)))
        timings["gate_embed"] = (time.perf_counter() - t) * 1000
        return sim

    def _similarity(self, qvecs: np.ndarray, rows: list[int]) -> float | None:
        """Best cosine between the question and the returned chunks: the relevance gate's input."""
        if not rows:
            return None
        vecs = np.vstack([self.index.dense.reconstruct(int(r)) for r in rows])
        return float((vecs @ qvecs.T).max())
