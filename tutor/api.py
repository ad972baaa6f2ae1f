"""`Tutor`: the one object the CLI, the web UI and the evals call.

It owns the lazily-loaded heavy parts (embedder, index, LLM) so that a long-lived process (the UI,
an eval run) loads each once; it holds no per-conversation state, so one instance can serve many.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from .config import Settings, load_settings
from .credits import Credits
from .embedding import Embedder
from .glossary import language
from .index import IndexData, IngestReport, Reporter, ingest, live_generation, load_index
from .models import Progress
from .prompts import CONTEXT, LEVELS
from .retrieval import Retriever, check_question
from .records import Answer, Event, SearchResult, heading_path


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
            gen = live_generation(self.settings.paths.index_dir)
            if self._index is None or gen is None or Path(self._index.path) != gen:
                self._index = load_index(self.settings.paths.index_dir)  # picks up a newer ingest
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
        result = self.retriever.search(query, k=k, mode=mode, alternates=alternates)
        # the corpus the index was built from (`tutor ingest FOLDER` may name another one)
        credits = Credits(Path(self.index.manifest.corpus_dir or self.settings.paths.corpus_dir))
        return replace(result, hits=[replace(h, credit=credits.of(h.chunk.path)) for h in result.hits])

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
                   k: int | None = None, lang: str | None = None, rewrite=None, context: str | None = None,
                   level: str | None = None):
        """Yield `records.Event`s: stage → (rewritten) → sources → thinking/tokens → done(Answer).

        A follow-up is searched as its standalone form(s) and answered as its standalone
        question, so "它" is unambiguous to the model. `rewrite`: a `chat.Rewrite` already made
        for this question (an eval searches with it first). `context`: a line the answer sees
        beside the question (e.g. the previous answer's gist); by default the previous
        answer's gist is given only when no earlier question names a topic, i.e. when the
        follow-up can only point into that answer."""
        from .answer import answer_stream
        from .chat import answer_gist, needs_rewrite, topic

        question = check_question(question, self.settings)
        if level is not None and level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (expected one of {', '.join(LEVELS)})")
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
        search = self.search(standalone, k=max(k or self.settings.retrieval.top_k, self.settings.answer.answer_k),
                             alternates=alternates)
        asked = standalone if not context else \
            standalone + "\n" + CONTEXT["en" if lang == "en" else "zh"].format(context=context)
        from dataclasses import replace

        for ev in answer_stream(asked, search, lambda: self.llm, self.settings, lang=lang,
                                embedder=self.embedder, level=level):
            if ev.kind == "done" and ev.answer is not None:
                a = ev.answer
                if standalone != question or context:
                    a = replace(a, question=question, standalone_question=standalone)
                ev = Event("done", answer=replace(a, suggestions=self.suggestions(question, a, lang), level=level))
            yield ev

    def prepare(self, question: str, k: int | None = None):
        """A single-turn question up to the model call (`answer.Pending`), or its declined
        `Answer` when it is off-topic: what `ask` does before generating, for callers that
        generate many answers in one batch (`answer.answer_batch`)."""
        from .answer import select_evidence

        question = check_question(question, self.settings)
        search = self.search(question, k=max(k or self.settings.retrieval.top_k, self.settings.answer.answer_k))
        return select_evidence(question, search, self.settings, language(question), self.embedder)

    def ask(self, question: str, history: list[tuple[str, str]] | None = None, k: int | None = None,
            lang: str | None = None, rewrite=None, context: str | None = None, level: str | None = None) -> Answer:
        for ev in self.ask_stream(question, history=history, k=k, lang=lang, rewrite=rewrite, context=context,
                                  level=level):
            if ev.kind == "done":
                return ev.answer
        raise RuntimeError("no answer produced")  # pragma: no cover

    # ---- tutor modes: what next, learning path, quiz, grading, progress ------------------------
    @property
    def outline(self):
        """The corpus's heading outline (for suggestions), rebuilt when the index changes."""
        from .suggest import Outline

        index = self.index
        with self._lock:
            if getattr(self, "_outline_for", None) is not index:
                self._outline = Outline.of(index.chunks)
                self._outline_for = index
            return self._outline

    def suggestions(self, question: str, answer: Answer, lang: str | None = None) -> list[str]:
        """2–3 follow-up questions from the headings around the cited passages (the retrieved ones
        when nothing was cited) and the next learning-path topic."""
        from .suggest import suggest

        lang = "en" if (lang or language(question)) == "en" else "zh"
        cited = [c.chunk for c in answer.citations] or [h.chunk for h in answer.sources[:2]]
        if not cited:
            return []
        others = [h.chunk for h in answer.sources if h.chunk not in cited]
        return suggest(question, cited, self.outline, lang, next_topic=self._next_topic(cited), retrieved=others)

    def _next_topic(self, chunks) -> str | None:
        try:
            topics = self._path_topics()
        except (OSError, ValueError, RuntimeError):  # e.g. CorpusError: the corpus folder moved away
            return None
        for i, t in enumerate(topics):
            if any(c.path == t.path and c.start < t.end and c.end > t.start for c in chunks):
                return topics[i + 1].title if i + 1 < len(topics) else None
        return None

    def documents(self, prefixes: tuple[str, ...] | None = None) -> list:
        """The corpus's text documents (notes, d2l-zh; PDFs are not read): for the path and quiz aliases."""
        from .corpus import load_file, scan

        docs = []
        for src in scan(self.settings.paths.corpus_dir):
            if src.path.suffix.lower() == ".pdf" or (prefixes and not src.rel.startswith(prefixes)):
                continue
            try:
                docs.extend(load_file(src)[0])
            except ValueError:
                continue
        return docs

    def _path_topics(self):
        """The learning path's topics without passages (cheap; cached per index generation)."""
        from .path import build

        index = self.index
        with self._lock:
            if getattr(self, "_topics_for", None) is not index:
                self._topics = build(self.documents(), [], []).topics
                self._topics_for = index
            return self._topics

    def learning_path(self, related: bool = True):
        """`path.LearningPath`: the notes' roadmap topics with passages, d2l chapters, papers, done marks."""
        from .path import build, read_manifest

        chunks = self.index.chunks
        search = None
        if related:
            def search(query: str):
                return [h.chunk for h in self.search(query, k=8).hits]
        return build(self.documents(), chunks, read_manifest(self.settings.paths.corpus_dir),
                     self.progress_db.done(), related=search)

    @property
    def progress_db(self):
        """The learner's progress database (`progress.Progress`) in the data dir."""
        from .progress import Progress

        with self._lock:
            if getattr(self, "_progress_db", None) is None:
                self._progress_db = Progress.of(self.settings)
            return self._progress_db

    def quiz(self, topic: str | None = None, n: int = 5, seed: int = 0, lang: str | None = None,
             use_llm: bool | None = None):
        """`quiz.Quiz` of up to n questions on `topic`: a learning-path topic (its number or title),
        any search query, or (None) the study notes as a whole."""
        from .quiz import make_quiz

        if n < 1:
            raise ValueError("a quiz needs at least one question (-n 1)")
        chunks = self.index.chunks
        title = topic or ""
        if topic:
            found = None
            if topic.strip().isdigit() or len(topic) <= 60:
                try:
                    found = self.learning_path(related=False).find(topic)
                except (OSError, ValueError, RuntimeError):  # no corpus folder: search the index
                    found = None
            if found is not None:
                title = found.title
                own = [c for c in chunks if c.path == found.path and c.start < found.end and c.end > found.start]
                related = [h.chunk for h in self.search(found.query, k=8).hits]
                pool = own + [c for c in related if c not in own]
            else:
                pool = [h.chunk for h in self.search(topic, k=12).hits]
        else:
            pool = [c for c in chunks if not c.path.startswith(("d2l-zh/", "papers/")) and c.page is None]
        paths = {c.path for c in pool}
        docs = {d.path: d.text for d in self.documents() if d.path in paths}
        llm_on = self.settings.quiz.llm_phrasing if use_llm is None else use_llm
        llm = self.llm if llm_on else None
        return make_quiz(title, pool, n=n, seed=seed, lang=lang, llm=llm, documents=docs)

    def grade(self, question: dict, answer: str, record: bool = True, topic: str = ""):
        """`grading.Grade` of a learner's answer; stored in the progress database when `record`."""
        from .grading import grade
        from .progress import Attempt

        llm = self.llm if self.settings.quiz.llm_grader and question.get("kind") == "explain" else None
        g = grade(question, answer, llm=llm)
        if record:
            src = question.get("source") or {}
            where = heading_path(src.get("file", ""), src.get("section", ""))
            if src.get("page") is not None:
                where += f" (p. {src['page']})"
            self.progress_db.record(Attempt(question.get("id", ""), question.get("kind", ""), question.get("question", ""),
                                            question.get("answer_key", ""), where, answer, g.verdict, g.score,
                                            topic or question.get("topic", ""), g.decided_by))
        return g
