"""Chunks → `index/`: FAISS vectors, BM25, chunk metadata and a manifest, written atomically.

Layout: `index/CURRENT` names the live generation folder `index/gen-*/`, which holds
`manifest.json`, `chunks.jsonl` (row i ↔ vector i), `dense.faiss`, `tokens.jsonl` and `bm25/`.
A new generation is written completely, then `CURRENT` is swapped with `os.replace`; an ingest
that dies half-way leaves the previous generation live and untouched.

We keep FAISS and bm25s directly rather than through llama-index's FaissVectorStore: that store
persists only the vectors (no per-file incremental update, no deletes on a flat index, no atomic
swap), and the row ↔ chunk mapping is all we need.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .chunking import chunk_document, searchable_text
from .config import Settings
from .corpus import load_file, scan
from .embedding import Embedder
from .lexical import TOKENIZER_VERSION, bm25_index, chunk_tokens
from .types import Chunk

FORMAT_VERSION = 1
CHUNKER_VERSION = 4  # 3: keeps `#@tab all` d2l cells, code indentation; 4: block spans end before the line break
CURRENT = "CURRENT"
EMBED_BATCH = 64


class IndexError_(RuntimeError):
    """The index is missing, damaged or does not match the configured embedder."""


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
    seconds: dict[str, float] = field(default_factory=dict)
    index_path: str = ""

    @property
    def noop(self) -> bool:
        return not (self.added or self.changed or self.removed or self.rebuild_reason)


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
    pointer = Path(index_dir) / CURRENT
    if not pointer.is_file():
        return None
    gen = Path(index_dir) / pointer.read_text().strip()
    return gen if (gen / "manifest.json").is_file() else None


def read_manifest(index_dir: Path) -> dict | None:
    gen = live_generation(index_dir)
    return json.loads((gen / "manifest.json").read_text(encoding="utf-8")) if gen else None


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_index(index_dir: Path) -> IndexData:
    import bm25s
    import faiss

    gen = live_generation(index_dir)
    if gen is None:
        raise IndexError_(f"no index in {index_dir}/ yet: run `tutor ingest` first")
    try:
        manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        chunks = [Chunk(**row) for row in _read_jsonl(gen / "chunks.jsonl")]
        dense = faiss.read_index(str(gen / "dense.faiss"))
        bm25 = bm25s.BM25.load(str(gen / "bm25"), show_progress=False, verbosity=0) if chunks else None
    except Exception as e:
        raise IndexError_(f"index in {gen} is damaged ({type(e).__name__}): run `tutor ingest --rebuild`") from e
    if dense.ntotal != len(chunks):
        raise IndexError_(f"index in {gen} is inconsistent: run `tutor ingest --rebuild`")
    if faiss.get_num_gpus() > 0:  # faiss-gpu installed and a GPU visible
        dense = faiss.index_cpu_to_all_gpus(dense)
    return IndexData(gen, manifest, chunks, dense, bm25)


def _why_rebuild(old: dict | None, embedder_id: dict, chunker: dict) -> str | None:
    if old is None:
        return None
    if old.get("format_version") != FORMAT_VERSION:
        return "index format changed"
    if old.get("embedder") != embedder_id:
        return (f"embedder changed ({old.get('embedder', {}).get('spec')} → {embedder_id['spec']}): "
                "re-embedding the whole corpus")
    if old.get("chunker") != chunker:
        return "chunker settings changed: re-chunking and re-embedding the whole corpus"
    return None


def ingest(settings: Settings, reporter: Reporter | None = None, rebuild: bool = False,
           embedder: Embedder | None = None) -> IngestReport:
    """Bring `settings.index_dir` up to date with `settings.corpus_dir`.

    Only new or changed files are parsed and embedded; a no-op leaves the index untouched.
    """
    rep = reporter or Reporter()
    report = IngestReport()
    t0 = time.perf_counter()
    files = scan(settings.corpus_dir)
    report.files_total = len(files)
    index_dir = Path(settings.index_dir)
    old_gen = live_generation(index_dir)
    old = read_manifest(index_dir) if old_gen else None
    chunker = chunker_settings(settings)
    embedder = embedder or Embedder(settings, progress=rep.status)

    # cheap no-op check before loading any model: same files, same hashes, same settings
    old_files = (old or {}).get("files", {})
    current = {f.rel: f.sha256 for f in files}
    same_settings = old is not None and old.get("chunker") == chunker and \
        old.get("embedder", {}).get("spec") == settings.embedder and \
        old.get("format_version") == FORMAT_VERSION and \
        old.get("embedder", {}).get("query_prompt") == embedder.query_prompt and \
        old.get("embedder", {}).get("passage_prompt") == embedder.passage_prompt
    if not rebuild and same_settings and {k: v["sha256"] for k, v in old_files.items()} == current:
        report.unchanged = len(files)
        report.chunks = old.get("chunk_count", 0)
        report.skipped = [k for k, v in old_files.items() if v.get("skipped")]
        report.warnings = [v["skipped"] for v in old_files.values() if v.get("skipped")]
        report.index_path = str(old_gen)
        report.seconds["total"] = time.perf_counter() - t0
        return report

    t_model = time.perf_counter()
    embedder_id = embedder.identity()
    report.seconds["model_load"] = time.perf_counter() - t_model
    report.rebuild_reason = "--rebuild" if (rebuild and old) else _why_rebuild(old, embedder_id, chunker)
    reuse = old is not None and report.rebuild_reason is None

    old_rows: dict[str, list[int]] = {}
    old_chunks: list[dict] = []
    old_tokens: list[list[str]] = []
    old_vectors = None
    if reuse:
        import faiss

        old_chunks = _read_jsonl(old_gen / "chunks.jsonl")
        old_tokens = [r["t"] for r in _read_jsonl(old_gen / "tokens.jsonl")]
        idx = faiss.read_index(str(old_gen / "dense.faiss"))
        old_vectors = idx.reconstruct_n(0, idx.ntotal) if idx.ntotal else np.zeros((0, embedder_id["dim"]), np.float32)
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
                report.skipped.append(f.rel)
                report.warnings.append(prev["skipped"])
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
            report.warnings.append(str(e))
            report.skipped.append(f.rel)
            manifest_files[f.rel] = {"sha256": f.sha256, "chunks": 0, "skipped": str(e)}
            rep.warn(str(e))
            rep.advance(1)
            continue
        if warning:
            report.warnings.append(warning)
            rep.warn(warning)
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
        "skipped": report.skipped,
        "chunk_count": len(chunks),
    }
    matrix = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, embedder_id["dim"]), np.float32)
    report.index_path = str(_write_generation(index_dir, manifest, chunks, tokens, matrix))
    report.chunks = len(chunks)
    report.seconds["write"] = time.perf_counter() - t_write
    report.seconds["total"] = time.perf_counter() - t0
    return report


def _corpus_version(files: dict[str, dict]) -> str:
    import hashlib

    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel]['sha256']}\n".encode())
    return h.hexdigest()[:16]


def _write_generation(index_dir: Path, manifest: dict, chunks: list[Chunk],
                      tokens: list[list[str]], matrix: np.ndarray) -> Path:
    import bm25s
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    tmp = index_dir / f".tmp-{name}"
    final = index_dir / name
    pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
        with (tmp / "tokens.jsonl").open("w", encoding="utf-8") as f:
            for t in tokens:
                f.write(json.dumps({"t": t}, ensure_ascii=False) + "\n")
        dense = faiss.IndexFlatIP(matrix.shape[1])
        if len(matrix):
            dense.add(matrix)
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        if chunks:
            bm25 = bm25_index(tokens)
            bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, final)
        pointer_tmp.write_text(name + "\n")
        os.replace(pointer_tmp, index_dir / CURRENT)  # the commit point
    except BaseException:  # CURRENT still names the previous generation: drop every trace of this one
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        pointer_tmp.unlink(missing_ok=True)
        raise
    for old in index_dir.glob("gen-*"):  # older generations are no longer referenced
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    for stale in index_dir.glob(".tmp-gen-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final
