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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__, jsonl
from .chunking import chunk_document, searchable_text
from .config import Settings
from .corpus import load_file, scan
from .embedding import Embedder
from .errors import IndexChanging, IndexDamaged, IndexError_, IndexMissing
from .lexical import TOKENIZER_VERSION, bm25_index, chunk_tokens
from .records import Chunk

FORMAT_VERSION = 2  # 2: per-file sizes and checksums in the manifest ("integrity")
CHUNKER_VERSION = 4  # 3: keeps `#@tab all` d2l cells, code indentation; 4: block spans end before the line break
CURRENT = "CURRENT"
LOCK = ".lock"
EMBED_BATCH = 64
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
    repaired: list[str] = field(default_factory=list)  # damaged index files rebuilt (vectors kept)
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
    path: Path
    manifest: dict
    chunks: list[Chunk]
    dense: object  # faiss.Index
    bm25: object  # bm25s.BM25


def chunker_settings(s: Settings) -> dict:
    return {"version": CHUNKER_VERSION, "chunk_size": s.chunk_size, "chunk_overlap": s.chunk_overlap,
            "tokenizer": TOKENIZER_VERSION}


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


def _read_manifest_file(gen: Path) -> dict:
    path = gen / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexDamaged(path, f"{type(e).__name__}: {e}") from None
    if not isinstance(manifest, dict):
        raise IndexDamaged(path, "not a JSON object")
    return manifest


def read_manifest(index_dir: Path) -> dict | None:
    """The live generation's manifest; None without an index; IndexError_ when unreadable."""
    gen = live_generation(index_dir)
    return _read_manifest_file(gen) if gen else None


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


def verify_generation(gen: Path, manifest: dict) -> list[str]:
    """The data files of `gen` that are missing or differ from the manifest's sizes and
    checksums (sizes first: a truncated file costs no hashing). An index written before
    checksums existed (format 1) is not checked here; its files are still parsed on load."""
    recorded = manifest.get("integrity")
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

    manifest = _read_manifest_file(gen)
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
    return IndexData(gen, manifest, chunks, dense, bm25)


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


def _embedder_of(manifest: dict) -> dict:
    """The manifest's embedder identity; indexes from before backends were recorded ran on torch."""
    return {"backend": "torch", **manifest.get("embedder", {})}


def _why_rebuild(old: dict | None, embedder_id: dict, chunker: dict) -> str | None:
    if old is None:
        return None
    if old.get("format_version") != FORMAT_VERSION:
        return "index format changed"
    before = _embedder_of(old)
    if before != embedder_id:
        if before.get("backend") != embedder_id.get("backend") and before.get("spec") == embedder_id["spec"]:
            return (f"embedder backend changed ({before.get('backend')} → {embedder_id.get('backend')}): "
                    "re-embedding the whole corpus")
        return (f"embedder changed ({before.get('spec')} → {embedder_id['spec']}): "
                "re-embedding the whole corpus")
    if old.get("chunker") != chunker:
        return "chunker settings changed: re-chunking and re-embedding the whole corpus"
    return None


def ingest(settings: Settings, reporter: Reporter | None = None, rebuild: bool = False,
           embedder: Embedder | None = None) -> IngestReport:
    """Bring `settings.index_dir` up to date with `settings.corpus_dir`.

    Only new or changed files are parsed and embedded; a no-op leaves the index untouched. The
    whole ingest holds the index's writer lock (a second one waits). An unreadable manifest means
    "no usable old index" (rebuild, saying why); damaged data files are rebuilt: tokens.jsonl and
    bm25/ from the chunks (vectors kept), chunks.jsonl or dense.faiss by re-embedding.
    Every warning (a skipped file, an odd encoding) reaches the reporter exactly once.
    """
    rep = reporter or Reporter()
    scan_warnings: list[str] = []
    files = scan(settings.corpus_dir, warnings=scan_warnings)  # a bad corpus fails before index/ exists
    index_dir = Path(settings.index_dir)
    with writing(index_dir, rep):
        return _ingest_locked(settings, rep, rebuild, embedder, files, scan_warnings, index_dir)


def _ingest_locked(settings: Settings, rep: Reporter, rebuild: bool, embedder: Embedder | None,
                   files: list, scan_warnings: list[str], index_dir: Path) -> IngestReport:
    report = IngestReport()
    t0 = time.perf_counter()

    def warn(message: str, rel: str | None = None) -> None:
        report.warnings.append(message)
        if rel is not None:
            report.skipped.append(rel)
        rep.warn(message)

    for w in scan_warnings:
        warn(w, w.split(": ", 1)[0])
    report.files_total = len(files)
    pointer_exists = (index_dir / CURRENT).exists()
    old_gen = live_generation(index_dir)
    _clean_leftovers(index_dir, old_gen)
    old: dict | None = None
    unusable: str | None = None  # why the old index cannot be used at all
    if old_gen is not None:
        try:
            old = _read_manifest_file(old_gen)
        except IndexDamaged as e:
            unusable = f"{old_gen / 'manifest.json'} is unreadable: rebuilding the index from scratch"
            rep.status(e.problem)
    elif pointer_exists:
        unusable = f"{index_dir / CURRENT} names no usable generation: rebuilding the index from scratch"
    damaged = verify_generation(old_gen, old) if old is not None else []
    chunker = chunker_settings(settings)
    embedder = embedder or Embedder(settings, progress=rep.status)

    # cheap no-op check before loading any model: same files, same hashes, same settings, intact
    old_files = (old or {}).get("files", {})
    current = {f.rel: f.sha256 for f in files}
    same_settings = old is not None and old.get("chunker") == chunker and \
        old.get("embedder", {}).get("spec") == settings.embedder and \
        _embedder_of(old).get("backend") == embedder.backend and \
        old.get("format_version") == FORMAT_VERSION and \
        old.get("embedder", {}).get("query_prompt") == embedder.prompts.query and \
        old.get("embedder", {}).get("passage_prompt") == embedder.prompts.passage
    if not rebuild and not damaged and same_settings and \
            {k: v["sha256"] for k, v in old_files.items()} == current:
        report.unchanged = len(files)
        report.chunks = old.get("chunk_count", 0)
        for k, v in old_files.items():
            if v.get("skipped"):
                warn(v["skipped"], k)
        report.index_path = str(old_gen)
        report.seconds["total"] = time.perf_counter() - t0
        return report

    t_model = time.perf_counter()
    embedder_id = embedder.identity()
    report.seconds["model_load"] = time.perf_counter() - t_model
    if rebuild and (old or unusable):
        report.rebuild_reason = "--rebuild"
    elif unusable:
        report.rebuild_reason = unusable
    else:
        report.rebuild_reason = _why_rebuild(old, embedder_id, chunker)
    lost = [d for d in damaged if not d.startswith(_DERIVED)]
    if report.rebuild_reason is None and lost:
        report.rebuild_reason = (f"damaged index files in {old_gen}: {', '.join(lost)} — "
                                 "re-chunking and re-embedding the whole corpus")
    reuse = old is not None and report.rebuild_reason is None
    if reuse and damaged:  # only tokens.jsonl / bm25/: rebuilt below from the chunks
        report.repaired = sorted({d.split("/")[0] + ("/" if "/" in d else "") for d in damaged})
        rep.status(f"damaged index files in {old_gen}: {', '.join(report.repaired)} — rebuilding them "
                   "from the chunks (vectors kept)")

    old_rows: dict[str, list[int]] = {}
    old_chunks: list[dict] = []
    old_tokens: list[list[str]] = []
    old_vectors = None
    if reuse:
        import faiss

        old_chunks = _read_jsonl(old_gen / "chunks.jsonl")
        if "tokens.jsonl" in damaged:
            old_tokens = [chunk_tokens(Chunk(**row)) for row in old_chunks]
        else:
            old_tokens = [r["t"] for r in _read_jsonl(old_gen / "tokens.jsonl")]
        try:
            idx = faiss.read_index(str(old_gen / "dense.faiss"))
        except Exception as e:  # noqa: BLE001
            raise IndexDamaged(old_gen / "dense.faiss", type(e).__name__) from None
        old_vectors = idx.reconstruct_n(0, idx.ntotal) if idx.ntotal else np.zeros((0, embedder_id["dim"]), np.float32)
        if not (len(old_chunks) == len(old_tokens) == len(old_vectors)):
            raise IndexDamaged(old_gen, f"{len(old_chunks)} chunks, {len(old_tokens)} token rows, "
                                    f"{len(old_vectors)} vectors")
        for i, row in enumerate(old_chunks):
            old_rows.setdefault(row["path"], []).append(i)

    chunks: list[Chunk] = []
    tokens: list[list[str]] = []
    vectors: list[np.ndarray] = []
    to_embed: list[int] = []  # positions in `chunks` that need new vectors
    manifest_files: dict[str, dict] = {}
    rep.start("parsing & chunking", len(files))
    t_parse = time.perf_counter()
    for f in files:
        prev = old_files.get(f.rel)
        if reuse and prev and prev["sha256"] == f.sha256:
            if prev.get("skipped"):  # known-bad file, unchanged: skip again, same warning
                warn(prev["skipped"], f.rel)
                manifest_files[f.rel] = prev
                rep.advance(1)
                continue
            rows = old_rows.get(f.rel, [])
            for i in rows:
                chunks.append(Chunk(**old_chunks[i]))
                tokens.append(old_tokens[i])
                vectors.append(old_vectors[i])
            manifest_files[f.rel] = {"sha256": f.sha256, "chunks": len(rows)}
            report.unchanged += 1
            rep.advance(1)
            continue
        (report.changed if prev else report.added).append(f.rel)
        try:
            docs, warning = load_file(f)
        except ValueError as e:
            warn(str(e), f.rel)
            manifest_files[f.rel] = {"sha256": f.sha256, "chunks": 0, "skipped": str(e)}
            rep.advance(1)
            continue
        if warning:
            warn(warning)
        new = [c for d in docs for c in chunk_document(d, settings.chunk_size, settings.chunk_overlap)]
        for c in new:
            to_embed.append(len(chunks))
            chunks.append(c)
            tokens.append(chunk_tokens(c))
            vectors.append(None)  # type: ignore[arg-type]
        manifest_files[f.rel] = {"sha256": f.sha256, "chunks": len(new)}
        rep.advance(1)
    report.removed = sorted(set(old_files) - set(current))
    report.seconds["parse_chunk"] = time.perf_counter() - t_parse

    t_embed = time.perf_counter()
    if to_embed:
        rep.start("embedding", len(to_embed))
        # longest first: every batch holds chunks of similar length (least padding)
        to_embed.sort(key=lambda i: -len(searchable_text(chunks[i])))
        for b in range(0, len(to_embed), EMBED_BATCH):
            batch = to_embed[b:b + EMBED_BATCH]
            vecs = embedder.passages([searchable_text(chunks[i]) for i in batch])
            for i, v in zip(batch, vecs):
                vectors[i] = v
            rep.advance(len(batch))
    report.embedded = len(to_embed)
    report.seconds["embed"] = time.perf_counter() - t_embed

    t_write = time.perf_counter()
    manifest = {
        "format_version": FORMAT_VERSION,
        "tutor_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embedder": embedder_id,
        "chunker": chunker,
        "corpus_dir": str(settings.corpus_dir),
        "corpus_version": _corpus_version(manifest_files),
        "files": manifest_files,
        "skipped": [k for k, v in manifest_files.items() if v.get("skipped")],
        "chunk_count": len(chunks),
    }
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, embedder_id["dim"]), np.float32)
    report.index_path = str(_write_generation(index_dir, manifest, chunks, tokens, matrix))
    report.chunks = len(chunks)
    report.seconds["write"] = time.perf_counter() - t_write
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _corpus_version(files: dict[str, dict]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]['sha256']}\n".encode())
    return h.hexdigest()[:16]


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


def _write_generation(index_dir: Path, manifest: dict, chunks: list[Chunk],
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
                bm25 = bm25_index(tokens)
                bm25.save(str(tmp / "bm25"), show_progress=False)
            manifest = {**manifest, "integrity": _integrity(tmp)}
            (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
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
