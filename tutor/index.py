"""Chunks → `index/`: FAISS vectors, BM25, chunk metadata and a manifest, written atomically.

Layout: `index/CURRENT` names the live generation folder `index/gen-*/`, which holds
`manifest.json`, `chunks.jsonl` (row i ↔ vector i), `dense.faiss`, `tokens.jsonl` and `bm25/`.
A new generation is written completely and fsynced, then `CURRENT` is swapped with `os.replace`;
an ingest that dies half-way leaves the previous generation live and untouched, and its leftovers
are removed by the next ingest.

One writer at a time: an ingest holds `index/.lock` (the `filelock` package: flock on POSIX,
msvcrt on Windows) from reading the old manifest to the swap; a second ingest waits, saying so.
Readers take no lock: they load whatever `CURRENT` names and retry if a swap removed it meanwhile.

The manifest records each data file's size and sha256: ingest checks the live generation against
them (about 20 ms for the full corpus) and rebuilds what is damaged instead of saying "up to
date"; `load_index` checks them too, so a damaged file is named in the error, with the fix.

We keep FAISS and bm25s directly rather than through llama-index's FaissVectorStore: that store
persists only the vectors (no per-file incremental update, no deletes on a flat index, no atomic
swap), and the row ↔ chunk mapping is all we need.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from . import jsonl
from .chunking import chunk_document, searchable_text
from .config import Settings
from .corpus import PDF_SUFFIXES, load_file, scan
from .embedding import Embedder
from .errors import IndexChanging, IndexDamaged, IndexError_, IndexMissing
from .manifest import CHUNKER_VERSION, Manifest
from .lexical import TOKENIZER_VERSION, bm25_index, chunk_tokens
from .pdf_pages import read_pdf_pages
from .records import Chunk

CURRENT = "CURRENT"
# PDFs to parse, in bytes, from which their pages are read in several processes: below it, starting
# the processes (~0.5 s) costs more than it saves
PARALLEL_PDF_BYTES = 2_000_000
LOCK = ".lock"
_GEN_NAME = re.compile(r"gen-[0-9A-Za-z_-]+")
# files a generation can rebuild from chunks.jsonl alone (no re-embedding)
_DERIVED = ("tokens.jsonl", "bm25/")


@dataclass
class IngestReport:
    files_total: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    rebuild_reason: str | None = None
    repaired: list[str] = field(default_factory=list)  # index files rebuilt from the chunks (vectors kept)
    repair_reason: str = ""  # why they were: damaged, or BM25 parameters changed
    seconds: dict[str, float] = field(default_factory=dict)
    index_path: str = ""

    @property
    def noop(self) -> bool:
        return not (self.added or self.changed or self.removed or self.rebuild_reason or self.repaired)


class Reporter:
    """How ingest talks to its caller (rich progress in the CLI; nothing in tests)."""

    def status(self, message: str) -> None: ...
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def warn(self, message: str) -> None: ...


@dataclass
class IndexData:
    """A loaded generation. `load_index` owns its files: nothing else opens them."""
    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    dense: object  # faiss.Index
    bm25: object  # bm25s.BM25 as stored (None for an empty index)
    tokens_current: bool = True  # stored BM25 tokens match today's tokeniser (a sample is compared)

    def bm25_for(self, k1: float, b: float):
        """The stored BM25 when it was built with `k1`, `b` and today's tokeniser, else one rebuilt
        in memory (~3 s): an index from before a tokeniser change still searches correctly, and
        `tutor ingest` (which records the parameters) makes it fast to load again."""
        if not self.chunks:
            return None
        if self.bm25 is not None and self.tokens_current and \
                all(abs(float(getattr(self.bm25, n, -1)) - v) < 1e-9 for n, v in (("k1", k1), ("b", b))):
            return self.bm25
        return bm25_index([chunk_tokens(c) for c in self.chunks], k1=k1, b=b)


def chunker_settings(s: Settings) -> dict:
    return {"version": CHUNKER_VERSION, "chunk_size": s.embedding.chunk_size,
            "chunk_overlap": s.embedding.chunk_overlap, "tokenizer": TOKENIZER_VERSION}


def bm25_settings(s: Settings) -> dict:
    return {"k1": s.retrieval.bm25_k1, "b": s.retrieval.bm25_b}


def live_generation(index_dir: Path) -> Path | None:
    """The generation folder `CURRENT` names, or None (no index, or a pointer to nothing)."""
    pointer = Path(index_dir) / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not _GEN_NAME.fullmatch(name):  # garbage, or a path that would leave the folder
        return None
    gen = Path(index_dir) / name
    return gen if (gen / "manifest.json").is_file() else None


def read_manifest(index_dir: Path) -> Manifest | None:
    """The live generation's manifest; None without an index; IndexDamaged when unreadable."""
    gen = live_generation(index_dir)
    return Manifest.read(gen) if gen else None


def _read_jsonl(path: Path) -> list[dict]:
    try:
        return jsonl.read(path)
    except (OSError, UnicodeDecodeError, jsonl.JsonlError) as e:
        raise IndexDamaged(path, f"{type(e).__name__}: {e}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _data_files(gen: Path) -> list[str]:
    """Every file of a generation but its manifest, relative, sorted (bm25/ holds several)."""
    return sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*")
                  if p.is_file() and p.name != "manifest.json")


def _integrity(gen: Path) -> dict[str, dict]:
    return {rel: {"size": (gen / rel).stat().st_size, "sha256": _sha256(gen / rel)} for rel in _data_files(gen)}


def verify_generation(gen: Path, manifest: Manifest) -> list[str]:
    """The data files of `gen` that are missing or differ from the manifest's sizes and
    checksums (sizes first: a truncated file costs no hashing). An index written before
    checksums existed (format 1) is not checked here; its files are still parsed on load."""
    recorded = manifest.integrity
    if not isinstance(recorded, dict):
        return []
    bad = []
    for rel, want in sorted(recorded.items()):
        path = gen / rel
        try:
            if not path.is_file() or path.stat().st_size != want.get("size") or _sha256(path) != want.get("sha256"):
                bad.append(rel)
        except (OSError, AttributeError):
            bad.append(rel)
    return bad


def load_index(index_dir: Path) -> IndexData:
    """The live generation, verified. Retries when an ingest swapped generations mid-load."""
    for _ in range(3):
        gen = live_generation(index_dir)
        if gen is None:
            raise IndexMissing(index_dir)
        try:
            return _load_generation(gen)
        except IndexError_:
            if live_generation(index_dir) == gen:  # not a swap: really damaged
                raise
    raise IndexChanging(index_dir)


def _load_generation(gen: Path) -> IndexData:
    import bm25s
    import faiss

    manifest = Manifest.read(gen)
    bad = verify_generation(gen, manifest)
    if bad:
        raise IndexDamaged(gen / bad[0], "size or checksum differs from manifest.json"
                       + (f"; also {', '.join(bad[1:])}" if len(bad) > 1 else ""))
    rows = _read_jsonl(gen / "chunks.jsonl")
    try:
        chunks = [Chunk(**row) for row in rows]
    except TypeError as e:
        raise IndexDamaged(gen / "chunks.jsonl", f"unexpected row: {e}") from None
    try:
        dense = faiss.read_index(str(gen / "dense.faiss"))
    except Exception as e:  # noqa: BLE001 - faiss raises RuntimeError with a C++ trace
        raise IndexDamaged(gen / "dense.faiss", type(e).__name__) from None
    bm25 = None
    if chunks:
        try:
            bm25 = bm25s.BM25.load(str(gen / "bm25"), show_progress=False, verbosity=0)
        except Exception as e:  # noqa: BLE001
            raise IndexDamaged(gen / "bm25", type(e).__name__) from None
    if dense.ntotal != len(chunks):
        raise IndexDamaged(gen / "dense.faiss", f"{dense.ntotal} vectors for {len(chunks)} chunks in chunks.jsonl")
    if faiss.get_num_gpus() > 0:  # faiss-gpu installed and a GPU visible
        dense = faiss.index_cpu_to_all_gpus(dense)
    return IndexData(gen, manifest, chunks, dense, bm25, _tokens_current(gen / "tokens.jsonl", chunks))


def _tokens_current(path: Path, chunks: list[Chunk], sample: int = 24) -> bool:
    """Whether the stored BM25 tokens match today's tokeniser, on a sample of chunks."""
    if not chunks:
        return True
    if not path.is_file():
        return False
    want = {int(i) for i in np.linspace(0, len(chunks) - 1, num=min(sample, len(chunks)))}
    try:
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i in want and json.loads(line)["t"] != chunk_tokens(chunks[i]):
                    return False
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise IndexDamaged(path, f"{type(e).__name__}: {e}") from None
    return True


# ---- one writer at a time ------------------------------------------------------------------------

def index_lock(index_dir: Path):
    """The index folder's writer lock (one object per folder and process, re-entrant in a thread)."""
    import filelock

    Path(index_dir).mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(Path(index_dir).resolve() / LOCK), is_singleton=True)


@contextmanager
def writing(index_dir: Path, reporter: "Reporter | None" = None) -> Iterator[None]:
    """Hold the writer lock; when another process holds it, say so and wait for it."""
    import filelock

    lock = index_lock(index_dir)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        (reporter or Reporter()).status(f"another ingest is writing {index_dir}/ — waiting for it to finish…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _clean_leftovers(index_dir: Path, keep: Path | None) -> list[str]:
    """Remove what interrupted ingests left: temp generations, temp pointers, generations that
    `CURRENT` no longer names. Only ever called under the writer lock."""
    gone = []
    for p in list(index_dir.glob(".tmp-gen-*")) + list(index_dir.glob(f".{CURRENT}.*")) + \
            [g for g in index_dir.glob("gen-*") if keep is None or g.name != keep.name]:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        gone.append(p.name)
    return gone


def ingest(settings: Settings, reporter: Reporter | None = None, rebuild: bool = False,
           embedder: Embedder | None = None) -> IngestReport:
    """Bring `settings.index_dir` up to date with `settings.corpus_dir`: plan → collect → embed → write.

    Only new or changed files are parsed and embedded; a no-op leaves the index untouched. The
    whole ingest holds the index's writer lock (a second one waits). An unreadable manifest means
    "no usable old index" (rebuild, saying why); damaged data files are rebuilt: tokens.jsonl and
    bm25/ from the chunks (vectors kept), chunks.jsonl or dense.faiss by re-embedding.
    Every warning (a skipped file, an odd encoding) reaches the reporter exactly once.
    """
    rep = reporter or Reporter()
    scan_warnings: list[str] = []
    files = scan(settings.paths.corpus_dir, warnings=scan_warnings)  # a bad corpus fails before index/ exists
    index_dir = Path(settings.paths.index_dir)
    with writing(index_dir, rep):
        t0 = time.perf_counter()
        report = IngestReport(files_total=len(files))
        for w in scan_warnings:
            _warn(report, rep, w, w.split(": ", 1)[0])
        embedder = embedder or Embedder(settings, progress=rep.status)
        plan = _plan(settings, files, index_dir, embedder, rebuild, rep)
        if plan.noop:
            report.unchanged = len(files)
            report.chunks = plan.old.chunk_count
            for rel, v in plan.old.files.items():
                if v.get("skipped"):
                    _warn(report, rep, v["skipped"], rel)
            report.index_path = str(plan.old_gen)
        else:
            t = time.perf_counter()
            embedder_id = embedder.identity()  # loads the model
            report.seconds["model_load"] = time.perf_counter() - t
            report.rebuild_reason = plan.rebuild_reason
            report.repaired, report.repair_reason = plan.repaired, plan.repair_reason
            t = time.perf_counter()
            batch = _collect(plan, files, settings, report, rep, embedder_id["dim"])
            report.seconds["parse_chunk"] = time.perf_counter() - t
            t = time.perf_counter()
            _embed(batch, embedder, rep)
            report.embedded = len(batch.to_embed)
            report.seconds["embed"] = time.perf_counter() - t
            t = time.perf_counter()
            manifest = Manifest(embedder=embedder_id, chunker=plan.chunker, bm25=bm25_settings(settings),
                                files=batch.manifest_files, chunk_count=len(batch.chunks),
                                corpus_dir=str(settings.paths.corpus_dir))
            report.index_path = str(_write_generation(index_dir, manifest, batch.chunks, batch.tokens,
                                                      np.vstack(batch.vectors).astype(np.float32) if batch.vectors
                                                      else np.zeros((0, embedder_id["dim"]), np.float32)))
            report.chunks = len(batch.chunks)
            report.seconds["write"] = time.perf_counter() - t
        report.seconds["total"] = time.perf_counter() - t0
        return report


def _warn(report: IngestReport, rep: Reporter, message: str, rel: str | None = None) -> None:
    report.warnings.append(message)
    if rel is not None:
        report.skipped.append(rel)
    rep.warn(message)


@dataclass
class _Plan:
    """What ingest will do, decided from the old generation before any model is loaded."""
    chunker: dict
    old_gen: Path | None = None
    old: Manifest | None = None
    noop: bool = False
    rebuild_reason: str | None = None  # set: re-chunk and re-embed everything
    repaired: list[str] = field(default_factory=list)  # derived files rebuilt from the chunks
    repair_reason: str = ""
    damaged: list[str] = field(default_factory=list)

    @property
    def reuse(self) -> bool:
        """Whether unchanged files keep their chunks and vectors from the old generation."""
        return self.old is not None and self.rebuild_reason is None


def _plan(settings: Settings, files: list, index_dir: Path, embedder: Embedder, rebuild: bool,
          rep: Reporter) -> _Plan:
    plan = _Plan(chunker=chunker_settings(settings))
    pointer_exists = (index_dir / CURRENT).exists()
    plan.old_gen = live_generation(index_dir)
    _clean_leftovers(index_dir, plan.old_gen)
    unusable: str | None = None  # why the old index cannot be used at all
    if plan.old_gen is not None:
        try:
            plan.old = Manifest.read(plan.old_gen)
        except IndexDamaged as e:
            unusable = f"{plan.old_gen / 'manifest.json'} is unreadable: rebuilding the index from scratch"
            rep.status(e.problem)
    elif pointer_exists:
        unusable = f"{index_dir / CURRENT} names no usable generation: rebuilding the index from scratch"
    old = plan.old
    plan.damaged = verify_generation(plan.old_gen, old) if old is not None else []

    if rebuild and (old or unusable):
        plan.rebuild_reason = "--rebuild"
    elif unusable:
        plan.rebuild_reason = unusable
    elif old is not None:
        plan.rebuild_reason = old.why_rebuild(embedder, plan.chunker)
    lost = [d for d in plan.damaged if not d.startswith(_DERIVED)]
    if plan.rebuild_reason is None and lost:
        plan.rebuild_reason = (f"damaged index files in {plan.old_gen}: {', '.join(lost)} — "
                               "re-chunking and re-embedding the whole corpus")
    if not plan.reuse:
        return plan
    if plan.damaged:  # only tokens.jsonl / bm25/: rebuilt from the chunks
        plan.repaired = sorted({d.split("/")[0] + ("/" if "/" in d else "") for d in plan.damaged})
        plan.repair_reason = "damaged"
        rep.status(f"damaged index files in {plan.old_gen}: {', '.join(plan.repaired)} — rebuilding them "
                   "from the chunks (vectors kept)")
    elif old.bm25_params() != (settings.retrieval.bm25_k1, settings.retrieval.bm25_b):
        plan.repaired, plan.repair_reason = ["bm25/"], "BM25 k1/b changed"
        rep.status("BM25 parameters changed: rebuilding BM25 from the chunks (vectors kept)")
    same_files = {k: v["sha256"] for k, v in old.files.items()} == {f.rel: f.sha256 for f in files}
    plan.noop = same_files and not plan.repaired
    return plan


@dataclass
class _Batch:
    """The new generation's rows: reused ones carry their vectors, new ones wait in `to_embed`."""
    chunks: list[Chunk] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    vectors: list = field(default_factory=list)
    to_embed: list[int] = field(default_factory=list)  # positions in `chunks` that need new vectors
    manifest_files: dict[str, dict] = field(default_factory=dict)


def _old_rows(plan: _Plan, dim: int) -> tuple[list[dict], list[list[str]], np.ndarray]:
    """The old generation's chunk rows, tokens and vectors, checked to line up."""
    import faiss

    gen = plan.old_gen
    old_chunks = _read_jsonl(gen / "chunks.jsonl")
    if "tokens.jsonl" in plan.damaged:
        old_tokens = [chunk_tokens(Chunk(**row)) for row in old_chunks]
    else:
        old_tokens = [r["t"] for r in _read_jsonl(gen / "tokens.jsonl")]
    try:
        idx = faiss.read_index(str(gen / "dense.faiss"))
    except Exception as e:  # noqa: BLE001
        raise IndexDamaged(gen / "dense.faiss", type(e).__name__) from None
    vectors = idx.reconstruct_n(0, idx.ntotal) if idx.ntotal else np.zeros((0, dim), np.float32)
    if not (len(old_chunks) == len(old_tokens) == len(vectors)):
        raise IndexDamaged(gen, f"{len(old_chunks)} chunks, {len(old_tokens)} token rows, {len(vectors)} vectors")
    return old_chunks, old_tokens, vectors


def _collect(plan: _Plan, files: list, settings: Settings, report: IngestReport, rep: Reporter,
             dim: int) -> _Batch:
    """Rows of unchanged files from the old generation; new and changed files parsed and chunked."""
    out = _Batch()
    old_files = plan.old.files if plan.old else {}
    by_file: dict[str, list[int]] = {}
    if plan.reuse:
        old_chunks, old_tokens, old_vectors = _old_rows(plan, dim)
        for i, row in enumerate(old_chunks):
            by_file.setdefault(row["path"], []).append(i)

    def unchanged(f) -> bool:
        prev = old_files.get(f.rel)
        return bool(plan.reuse and prev and prev["sha256"] == f.sha256)

    pdfs = [f.path for f in files if f.path.suffix.lower() in PDF_SUFFIXES and not unchanged(f)]
    workers = min(os.cpu_count() or 1, 4)
    pdf_pages = {}
    if workers > 1 and sum(p.stat().st_size for p in pdfs) >= PARALLEL_PDF_BYTES:
        rep.status(f"reading {len(pdfs)} PDF{'s' if len(pdfs) > 1 else ''} in {workers} processes…")
        pdf_pages = read_pdf_pages(pdfs, workers)
    rep.start("parsing & chunking", len(files))
    for f in files:
        prev = old_files.get(f.rel)
        if unchanged(f):
            if prev.get("skipped"):  # known-bad file, unchanged: skip again, same warning
                _warn(report, rep, prev["skipped"], f.rel)
                out.manifest_files[f.rel] = prev
            else:
                rows = by_file.get(f.rel, [])
                for i in rows:
                    out.chunks.append(Chunk(**old_chunks[i]))
                    out.tokens.append(old_tokens[i])
                    out.vectors.append(old_vectors[i])
                out.manifest_files[f.rel] = {"sha256": f.sha256, "chunks": len(rows)}
                report.unchanged += 1
            rep.advance(1)
            continue
        (report.changed if prev else report.added).append(f.rel)
        try:
            docs, warning = load_file(f, pdf_pages.get(f.path))
        except ValueError as e:
            _warn(report, rep, str(e), f.rel)
            out.manifest_files[f.rel] = {"sha256": f.sha256, "chunks": 0, "skipped": str(e)}
            rep.advance(1)
            continue
        if warning:
            _warn(report, rep, warning)
        emb = settings.embedding
        new = [c for d in docs for c in chunk_document(d, emb.chunk_size, emb.chunk_overlap)]
        for c in new:
            out.to_embed.append(len(out.chunks))
            out.chunks.append(c)
            out.tokens.append(chunk_tokens(c))
            out.vectors.append(None)
        out.manifest_files[f.rel] = {"sha256": f.sha256, "chunks": len(new)}
        rep.advance(1)
    report.removed = sorted(set(old_files) - {f.rel for f in files})
    return out


def _embed(batch: _Batch, embedder: Embedder, rep: Reporter) -> None:
    """Vectors for the new rows, longest first: every batch holds chunks of similar length."""
    if not batch.to_embed:
        return
    rep.start("embedding", len(batch.to_embed))
    rows = batch.to_embed
    vectors = embedder.passages([searchable_text(batch.chunks[i]) for i in rows], on_batch=rep.advance)
    for i, v in zip(rows, vectors):
        batch.vectors[i] = v


def _fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk; folders cannot be opened on Windows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (IsADirectoryError, PermissionError):  # pragma: no cover - Windows folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_generation(index_dir: Path, manifest: Manifest, chunks: list[Chunk],
                      tokens: list[list[str]], matrix: np.ndarray) -> Path:
    """Write a complete generation beside the live one, fsync it, then swap `CURRENT` to it.
    Holds the writer lock (re-entrant: `ingest` already holds it)."""
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    with writing(index_dir):
        name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = index_dir / f".tmp-{name}"
        final = index_dir / name
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        try:
            jsonl.write(tmp / "chunks.jsonl", [asdict(c) for c in chunks])
            jsonl.write(tmp / "tokens.jsonl", [{"t": t} for t in tokens])
            dense = faiss.IndexFlatIP(matrix.shape[1])
            if len(matrix):
                dense.add(matrix)
            faiss.write_index(dense, str(tmp / "dense.faiss"))
            if chunks:
                bm25 = bm25_index(tokens, *manifest.bm25_params())
                bm25.save(str(tmp / "bm25"), show_progress=False)
            replace(manifest, integrity=_integrity(tmp)).write(tmp)
            for p in sorted(tmp.rglob("*"), key=lambda p: -len(p.parts)):  # files, then their folders
                _fsync(p)
            _fsync(tmp)
            os.replace(tmp, final)
            _fsync(index_dir)
            with pointer_tmp.open("w", encoding="utf-8") as f:
                f.write(name + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(pointer_tmp, index_dir / CURRENT)  # the commit point
            _fsync(index_dir)
        except BaseException:  # CURRENT still names the previous generation: drop every trace of this one
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            pointer_tmp.unlink(missing_ok=True)
            raise
        _clean_leftovers(index_dir, final)  # older generations are no longer referenced
    return final
