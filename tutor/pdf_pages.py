"""Raw page texts of several PDFs, read in parallel worker processes (ingest).

pypdf is pure Python, and the PDFs of the default corpus take ~5 s of one core: with the pages dealt
out to one process per core, two cores read them in about half. Workers are plain
`python -m tutor.pdf_pages` children rather than a multiprocessing pool, whose spawned workers
re-import the parent's main module (the Gradio app, a notebook, stdin) and whose forked ones would
copy the embedder's running threads. Anything that fails here is left to the caller's in-process
reading, which reports it as usual: this module only ever makes ingest faster.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .corpus import open_pdf


def read_pdf_pages(paths: list[Path], workers: int, timeout_s: float = 600.0) -> dict[Path, list[str]]:
    """{path: its pages' raw texts} for the PDFs every worker could read."""
    if not paths or workers < 2:
        return {}
    root = str(Path(__file__).resolve().parent.parent)  # this checkout's `tutor`, installed or not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "tutor.pdf_pages", str(workers)]
    try:
        procs = [subprocess.Popen([*cmd, str(k), *map(str, paths)], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env) for k in range(workers)]
    except OSError:
        return {}
    slices: list[dict[str, list[str] | None]] = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout_s)
            slices.append(json.loads(out) if p.returncode == 0 else {})
        except (subprocess.TimeoutExpired, ValueError):
            p.kill()
            slices.append({})
    pages: dict[Path, list[str]] = {}
    for path in paths:
        parts = [s.get(str(path)) for s in slices]
        if any(part is None for part in parts):
            continue
        texts = [""] * sum(len(part) for part in parts)
        for k, part in enumerate(parts):
            texts[k::workers] = part
        pages[path] = texts
    return pages


def _slice(path: str, k: int, n: int) -> list[str] | None:
    """Pages k, k+n, k+2n… of one PDF; None when it cannot be read."""
    try:
        reader = open_pdf(Path(path))
        return [reader.pages[i].extract_text() or "" for i in range(k, len(reader.pages), n)]
    except Exception:
        return None


if __name__ == "__main__":  # worker: N K PATH… → {path: [page texts] | null} on stdout
    n, k, *files = sys.argv[1:]
    sys.stdout.write(json.dumps({f: _slice(f, int(k), int(n)) for f in files}, ensure_ascii=False))
