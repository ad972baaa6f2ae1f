"""Question → ranked `Hit`s: dense (FAISS) and BM25 (jieba), fused by reciprocal rank.

Cross-lingual: each query also runs in the other language's words (glossary expansion), and the
per-language ranked lists are fused, so an English question reaches a Chinese note.

Fusion is written here (a few lines of RRF) rather than with llama-index's QueryFusionRetriever,
which wants its own embedding/LLM wrappers and async plumbing for what is a weighted sum of
reciprocal ranks over lists we already have.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .config import Settings
from .embedding import Embedder
from .glossary import language, translate_terms
from .index import IndexData, IndexError_
from .lexical import tokenize
from .types import Hit, SearchResult

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class Ranked:
    """One retriever's ranking: chunk rows, best first, with their raw scores."""

    rows: list[int]
    scores: list[float]
    weight: float = 1.0


def rrf(lists: list[Ranked], k: int = 60) -> list[tuple[int, float]]:
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, row in enumerate(ranked.rows, start=1):
            fused[row] = fused.get(row, 0.0) + ranked.weight / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


class Retriever:
    def __init__(self, index: IndexData, embedder: Embedder, settings: Settings):
        ident = index.manifest.get("embedder", {})
        if ident.get("spec") != embedder.spec or ident.get("query_prompt") != embedder.query_prompt:
            raise IndexError_(
                f"index was built with embedder {ident.get('spec')!r} but {embedder.spec!r} is configured: "
                "run `tutor ingest` to rebuild, or set the embedder back")
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def _dense(self, vecs: np.ndarray, n: int) -> list[Ranked]:
        n = min(n, self.index.dense.ntotal)
        if n == 0:
            return [Ranked([], []) for _ in vecs]
        scores, rows = self.index.dense.search(vecs, n)
        return [Ranked([int(r) for r in rs if r >= 0], [float(s) for s in ss]) for ss, rs in zip(scores, rows)]

    def _bm25(self, tokens: list[str], n: int) -> Ranked:
        bm25 = self.index.bm25
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

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> SearchResult:
        query = query.strip()
        if not query:
            raise ValueError("empty question: ask something, e.g. tutor search \"什么是残差连接？\"")
        k = k or self.settings.top_k
        mode = mode or self.settings.retrieval_mode
        if mode not in MODES:
            raise ValueError(f"unknown retrieval mode {mode!r} (expected one of {', '.join(MODES)})")
        n = max(self.settings.candidates, k)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        extra = translate_terms(query) if self.settings.cross_lingual else ""
        texts = [query] + ([f"{query} {extra}"] if extra else [])

        lists: list[Ranked] = []
        qvecs = None
        if mode in ("dense", "hybrid"):
            t = time.perf_counter()
            qvecs = self.embedder.queries(texts)
            timings["embed"] = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            dense = self._dense(qvecs, n)
            timings["dense"] = (time.perf_counter() - t) * 1000
            lists += dense if mode == "hybrid" else dense[:1]
            if mode == "dense" and len(dense) > 1:
                lists.append(Ranked(dense[1].rows, dense[1].scores, 0.5))
        if mode in ("bm25", "hybrid"):
            t = time.perf_counter()
            lists.append(self._bm25(tokenize(query), n))
            if extra:
                lists.append(self._bm25(tokenize(f"{query} {extra}"), n))
            timings["bm25"] = (time.perf_counter() - t) * 1000
        fused = rrf(lists, self.settings.rrf_k)[:k] if len(lists) > 1 else \
            list(zip(lists[0].rows, lists[0].scores))[:k]
        hits = [Hit(self.index.chunks[row], score, rank, mode)
                for rank, (row, score) in enumerate(fused, start=1)]
        timings["total"] = (time.perf_counter() - t0) * 1000
        sim = self._similarity(qvecs, [row for row, _ in fused]) if qvecs is not None else None
        return SearchResult(query, hits, timings, language(query), sim)

    def _similarity(self, qvecs: np.ndarray, rows: list[int]) -> float | None:
        """Best cosine between the question and the returned chunks: the relevance gate's input."""
        if not rows:
            return None
        vecs = np.vstack([self.index.dense.reconstruct(int(r)) for r in rows])
        return float((vecs @ qvecs.T).max())
