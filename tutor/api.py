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
from .prompts import CONTEXT
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

    def search(self, query: str, k: int | None = None, mode: str | None = None,
               alternates: tuple[str, ...] | list[str] = ()) -> SearchResult:
        query = check_question(query, self.settings)  # before loading anything
        return self.retriever.search(query, k=k, mode=mode, alternates=alternates)

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

    def rewrite(self, question: str, history: list[tuple[str, str]] | None = None, use_llm: bool = True):
        """A follow-up as a standalone question (`chat.Rewrite`); the model is loaded only when
        the question is a follow-up and `use_llm` (retrieval-only evals use the rule form)."""
        from .chat import needs_rewrite, rewrite

        history = history or []
        llm = self.llm if use_llm and needs_rewrite(question.strip(), history) else None
        return rewrite(question, history, llm)

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None,
                   k: int | None = None, lang: str | None = None, rewrite=None, context: str | None = None):
        """Yield `answer.Event`s: stage → (rewritten) → sources → thinking/tokens → done(Answer).

        A follow-up is searched as its standalone form(s) and answered as its standalone
        question, so "它" is unambiguous to the model. `rewrite`: a `chat.Rewrite` already made
        for this question (an eval searches with it first). `context`: a line the answer sees
        beside the question (e.g. the previous answer's gist); by default the previous
        answer's gist is given only when no earlier question names a topic, i.e. when the
        follow-up can only point into that answer."""
        from .answer import Event, answer_stream
        from .chat import answer_gist, needs_rewrite, topic

        question = check_question(question, self.settings)
        history = history or []
        lang = lang or language(question)
        if rewrite is None and needs_rewrite(question, history):
            yield Event("stage", text="rewriting")
            rewrite = self.rewrite(question, history)
        if rewrite is not None and rewrite.rewritten:
            yield Event("rewritten", text=rewrite.standalone)
            if context is None and topic(history) is None:
                context = answer_gist(history[-1][1]) or None
        standalone = rewrite.standalone if rewrite is not None else question
        alternates = rewrite.alternates if rewrite is not None else ()
        yield Event("stage", text="retrieving")
        search = self.search(standalone, k=max(k or self.settings.top_k, self.settings.answer_k),
                             alternates=alternates)
        asked = standalone if not context else \
            standalone + "\n" + CONTEXT["en" if lang == "en" else "zh"].format(context=context)
        for ev in answer_stream(asked, search, lambda: self.llm, self.settings, lang=lang,
                                embedder=self.embedder):
            if ev.kind == "done" and ev.answer is not None and (standalone != question or context):
                from dataclasses import replace

                ev = Event("done", answer=replace(ev.answer, question=question, standalone_question=standalone))
            yield ev

    def prepare(self, question: str, k: int | None = None):
        """A single-turn question up to the model call (`answer.Pending`), or its declined
        `Answer` when it is off-topic: what `ask` does before generating, for callers that
        generate many answers in one batch (`answer.answer_batch`)."""
        from .answer import select_evidence

        question = check_question(question, self.settings)
        search = self.search(question, k=max(k or self.settings.top_k, self.settings.answer_k))
        return select_evidence(question, search, self.settings, language(question), self.embedder)

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
            lang: str | None = None, rewrite=None, context: str | None = None) -> Answer:
        for ev in self.ask_stream(question, history=history, k=k, lang=lang, rewrite=rewrite, context=context):
            if ev.kind == "done":
                return ev.answer
        raise RuntimeError("no answer produced")  # pragma: no cover
