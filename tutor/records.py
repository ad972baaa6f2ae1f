"""The small frozen records that travel between pipeline stages, and the events of an answer.

Every stage hands the next one these (never dicts), so the `--json` shapes of the CLI, the eval
`results.jsonl` and the UI's feedback log all come from one place: the `to_dict` methods below.
(Named `records`, not `types`, so it never shadows the standard library's `types`.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .credits import Credit
from .text import visible


HEADING_SEP = " › "  # between a title and its headings, and between nested headings


def heading_path(*parts: str) -> str:
    """The non-empty parts joined by " › ": "title › section" as every view writes it."""
    return HEADING_SEP.join(p for p in parts if p)


@dataclass(frozen=True)
class Document:
    """One unit of source text: a whole note, or one page of a PDF (page is 1-based)."""

    file: str  # base name as it stands in the corpus, e.g. "002_92979c50d744eab0.txt"
    path: str  # path relative to the corpus dir
    title: str
    text: str
    page: int | None = None


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage. `start`/`end` are character offsets into its Document's text."""

    id: str
    file: str
    path: str
    title: str
    section: str  # heading path, e.g. "AI 研究计划 › 1. 深度学习基础 › 1.2 ResNet"
    page: int | None
    start: int
    end: int
    text: str

    @property
    def label(self) -> str:
        """Title and heading path: "AI 研究计划 › 1. 深度学习基础 › 1.2 ResNet"."""
        return heading_path(self.title, self.section)

    @property
    def short_label(self) -> str:
        """Title and the last heading only: enough to tell whose passage it is."""
        return heading_path(self.title, self.section.split(HEADING_SEP)[-1] if self.section else "")


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int  # 1-based
    retriever: str = "hybrid"
    credit: Credit | None = None  # authors, link, licence of the chunk's file (the corpus manifests)

    def to_dict(self) -> dict:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "chunk_id": c.id,
            "file": c.file,
            "path": c.path,
            "title": c.title,
            "section": c.section,
            "page": c.page,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "credit": self.credit.to_dict() if self.credit else None,
        }


@dataclass(frozen=True)
class Citation:
    n: int  # the [n] the answer used, 1-based into Answer.sources
    chunk: Chunk

    def to_dict(self) -> dict:
        c = self.chunk
        return {"n": self.n, "chunk_id": c.id, "file": c.file, "page": c.page,
                "section": c.section, "text": c.text}


@dataclass(frozen=True)
class Evidence:
    """One evidence unit the answer stands on (a sentence, table row or code line of a hit):
    `text` is the hit's document text [start:end] (offsets into the source, as for chunks)."""

    n: int  # the source number the answer cites: [n] → Answer.sources[n-1]
    hit: Hit
    start: int
    end: int
    text: str
    kind: str  # sentence | row | code | formula
    context: str = ""  # shown with it: a table row's header, a code line's label line
    score: float = 0.0
    order: int = 0  # position among its chunk's units (document order)

    def prompt_text(self) -> str:
        """As a reader sees it (no roles, image targets or cell tags), after its context."""
        return f"{visible(self.context)} … {visible(self.text)}" if self.context else visible(self.text)

    def to_dict(self) -> dict:
        c = self.hit.chunk
        return {"n": self.n, "chunk_id": c.id, "file": c.file, "path": c.path, "section": c.section,
                "page": c.page, "start": self.start, "end": self.end, "text": self.text,
                "kind": self.kind, "context": self.context, "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    lang: str = "zh"
    similarity: float | None = None  # best dense cosine of the hits: the relevance gate's input

    def to_dict(self) -> dict:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits],
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    refused: bool
    citations: list[Citation]
    sources: list[Hit]
    reasoning: str | None = None
    model: str = ""
    backend: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    grounded: bool = True  # False when the answer carries no valid citation
    invalid_citations: list[int] = field(default_factory=list)
    standalone_question: str | None = None  # set when chat rewrote a follow-up
    evidence: list[Evidence] = field(default_factory=list)  # the units the answer was written from
    decline_reason: str | None = None  # why the evidence does not answer (refused answers)
    suggestions: list[str] = field(default_factory=list)  # what to ask next (tutor/suggest.py)
    level: str | None = None  # beginner | advanced when asked at a level

    def to_dict(self) -> dict:
        """The one complete serialisation of an answer: `ask --json`, eval rows, UI feedback.
        Each source also says its number `n`, the [n] the answer cites it by."""
        return {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "sources": [{**h.to_dict(), "n": n} for n, h in enumerate(self.sources, start=1)],
            "reasoning": self.reasoning,
            "model": self.model,
            "backend": self.backend,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "grounded": self.grounded,
            "invalid_citations": list(self.invalid_citations),
            "standalone_question": self.standalone_question,
            "evidence": [e.to_dict() for e in self.evidence],
            "decline_reason": self.decline_reason,
            "suggestions": list(self.suggestions),
            "level": self.level,
        }


# what happened while answering, in order: stage (rewriting | retrieving | thinking) → rewritten
# (a follow-up's standalone form) → sources → evidence → reasoning / token pieces → done (the Answer)
EventKind = Literal["stage", "rewritten", "sources", "evidence", "token", "reasoning", "done"]


@dataclass(frozen=True)
class Event:
    """One thing that happened while answering; which fields are set depends on `kind`: `text`
    for stage, rewritten, token and reasoning; `hits` for sources; `evidence` for evidence;
    `answer` for done."""

    kind: EventKind
    text: str = ""
    hits: tuple[Hit, ...] = ()
    answer: Answer | None = None
    evidence: tuple[Evidence, ...] = ()
