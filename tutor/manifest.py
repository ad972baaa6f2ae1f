"""`manifest.json` of an index generation, and the one test of whether an index fits the settings.

The manifest says what built a generation (embedder, chunker, BM25 parameters), from which corpus
files, and each data file's size and checksum. Ingest, the retriever and `tutor doctor` all ask
it the same questions through `embedder_change` / `why_rebuild`, so "is this index usable with
this embedder?" has one answer everywhere.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import __version__
from .errors import IndexDamaged

FORMAT_VERSION = 2  # 2: per-file sizes and checksums in the manifest ("integrity")
CHUNKER_VERSION = 4  # 3: keeps `#@tab all` d2l cells, code indentation; 4: block spans end before the line break
FILE = "manifest.json"


@dataclass(frozen=True)
class EmbedderKey:
    """What an index records about its embedder that must match for vectors to be comparable."""
    spec: str
    backend: str
    query_prompt: str | None
    passage_prompt: str | None


@dataclass
class Manifest:
    embedder: dict = field(default_factory=dict)  # spec, dim, query_prompt, passage_prompt, backend
    chunker: dict = field(default_factory=dict)  # version, chunk_size, chunk_overlap, tokenizer
    bm25: dict = field(default_factory=dict)  # k1, b the stored BM25 was built with ({}: 1.5, 0.75)
    files: dict[str, dict] = field(default_factory=dict)  # rel → sha256, chunks[, skipped]
    chunk_count: int = 0
    corpus_dir: str = ""
    format_version: int = FORMAT_VERSION
    tutor_version: str = __version__
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    corpus_version: str = ""
    skipped: list[str] = field(default_factory=list)
    integrity: dict[str, dict] | None = None  # data file → size, sha256 (None: written before format 2)

    def __post_init__(self) -> None:
        if not self.corpus_version:
            self.corpus_version = corpus_version(self.files)
        if not self.skipped:
            self.skipped = [k for k, v in self.files.items() if v.get("skipped")]

    # ---- file ------------------------------------------------------------------------------------
    @classmethod
    def read(cls, gen: Path) -> "Manifest":
        path = Path(gen) / FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise IndexDamaged(path, f"{type(e).__name__}: {e}") from None
        if not isinstance(data, dict):
            raise IndexDamaged(path, "not a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, AttributeError) as e:
            raise IndexDamaged(path, f"unexpected field: {e}") from None

    def to_dict(self) -> dict:
        return asdict(self)

    def write(self, gen: Path) -> None:
        (Path(gen) / FILE).write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")

    # ---- compatibility: the one check ---------------------------------------------------------------
    @property
    def embedder_key(self) -> EmbedderKey:
        e = self.embedder or {}
        # indexes from before backends were recorded ran on torch
        return EmbedderKey(e.get("spec", ""), e.get("backend", "torch"), e.get("query_prompt"), e.get("passage_prompt"))

    def embedder_change(self, embedder) -> str | None:
        """Why vectors of this index cannot be searched or extended with `embedder` (an
        `Embedder`: spec, backend, prompts), or None. Names and backends are compared first, so a
        configured model that does not exist is reported as "another embedder", not looked up."""
        have = self.embedder_key
        if have.spec != embedder.spec:
            return f"embedder changed ({have.spec} → {embedder.spec})"
        if have.backend != embedder.backend:
            return f"embedder backend changed ({have.backend} → {embedder.backend})"
        if (have.query_prompt, have.passage_prompt) != (embedder.prompts.query, embedder.prompts.passage):
            return f"embedder changed ({have.spec}: other query/passage prompts)"
        return None

    def why_rebuild(self, embedder, chunker: dict) -> str | None:
        """Why ingest must re-chunk and re-embed the whole corpus, or None."""
        if self.format_version != FORMAT_VERSION:
            return "index format changed"
        change = self.embedder_change(embedder)
        if change:
            return f"{change}: re-embedding the whole corpus"
        if self.chunker != chunker:
            return "chunker settings changed: re-chunking and re-embedding the whole corpus"
        return None

    def bm25_params(self) -> tuple[float, float]:
        return float(self.bm25.get("k1", 1.5)), float(self.bm25.get("b", 0.75))


def corpus_version(files: dict[str, dict]) -> str:
    """A short hash of the corpus files' names and contents: equal corpora, equal versions."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]['sha256']}\n".encode())
    return h.hexdigest()[:16]
