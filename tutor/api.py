"""`Tutor`: the one object the CLI, the web UI and the evals call.

It owns the lazily-loaded heavy parts (embedder, index, LLM) so that a long-lived process (the UI,
an eval run) loads each once; it holds no per-conversation state, so one instance can serve many.
"""
from __future__ import annotations

import threading
from pathlib import Path

from .config import Settings, load_settings
from .embedding import Embedder
from .glossary import language
from .index import IndexData, IngestReport, Reporter, ingest, live_generation, load_index
from .models import Progress
from .retrieval import Retriever, check_question
from .types import Answer, SearchResult


class Tutor:
    def __init__(self, settings: Settings | None = None, progress: Progress | None = None):
        self.settings = settings or load_settings()
        self.progress = progress
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._index: IndexData | None = None
        self._retriever: Retriever | None = None
        self._llm = None

    # ---- corpus → index ----------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.settings, progress=self.progress)
            return self._embedder

    def ingest(self, reporter: Reporter | None = None, rebuild: bool = False) -> IngestReport:
        report = ingest(self.settings, reporter, rebuild=rebuild, embedder=self.embedder)
        with self._lock:
            self._index = self._retriever = None
        return report

    # ---- retrieval ---------------------------------------------------------------------------
    @property
    def index(self) -> IndexData:
        with self._lock:
            gen = live_generation(self.settings.index_dir)
            if self._index is None or gen is None or Path(self._index.path) != gen:
                self._index = load_index(self.settings.index_dir)  # picks up a newer ingest
                self._retriever = None
            return self._index

    @property
    def retriever(self) -> Retriever:
        index = self.index
        with self._lock:
            if self._retriever is None or self._retriever.index is not index:
                self._retriever = Retriever(index, self.embedder, self.settings)
            return self._retriever

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> SearchResult:
        query = check_question(query, self.settings)  # before loading anything
        return self.retriever.search(query, k=k, mode=mode)

    # ---- answers -----------------------------------------------------------------------------
    @property
    def llm(self):
        """The answering model, loaded on first use (a GGUF is materialised once, with progress)."""
        with self._lock:
            if self._llm is None:
                from .llm import make_llm

                self._llm = make_llm(self.settings, progress=self.progress)
                self._llm.check()
            return self._llm

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None,
                   k: int | None = None, lang: str | None = None):
        """Yield `answer.Event`s: stage → (rewritten) → sources → thinking/tokens → done(Answer)."""
        from .answer import Event, answer_stream
        from .chat import needs_rewrite, standalone_question

        question = check_question(question, self.settings)
        lang = lang or language(question)
        standalone = question
        if history and needs_rewrite(question, history):
            yield Event("stage", text="rewriting")
            standalone = standalone_question(question, history, self.llm)
            yield Event("rewritten", text=standalone)
        yield Event("stage", text="retrieving")
        search = self.search(standalone, k=max(k or self.settings.top_k, self.settings.answer_k))
        for ev in answer_stream(standalone, search, lambda: self.llm, self.settings, lang=lang,
                                embedder=self.embedder):
            if ev.kind == "done" and ev.answer is not None and standalone != question:
                from dataclasses import replace

                ev = Event("done", answer=replace(ev.answer, question=question, standalone_question=standalone))
            yield ev

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
            lang: str | None = None) -> Answer:
        for ev in self.ask_stream(question, history=history, k=k, lang=lang):
            if ev.kind == "done":
                return ev.answer
        raise RuntimeError("no answer produced")  # pragma: no cover
