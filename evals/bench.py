"""Benchmarks for the README/issue notes (not timed tests), for every embedder backend in one run:
full ingest from scratch, chunks/s, no-op re-ingest, search latency, peak RSS, model load time,
retrieval quality (dev + check, each against an index built with that backend), the cosine gate
(ONNX vs torch over 300 corpus chunks + 100 questions) and time to first answer token.

    python evals/bench.py [--backends onnx,torch] [--index /tmp/bench-index] [--ask N] [--out evals/bench.json]

Each measurement runs in its own child process, so peak RSS and cold start are per backend, and an
ONNX export that is still missing is made (and timed) before anything else is. The machine's load
average is recorded next to every timing: figures taken while other work runs are flagged.
Search latency is over the dev + check questions, each asked for the first time (`search_ms`,
query embedding included, the number the targets apply to), then asked again (`search_repeat_ms`:
query vectors from the LRU cache).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout: this checkout's `tutor`
    sys.path.insert(0, str(ROOT))

from tutor.config import load_settings  # noqa: E402
from tutor.evaluation.dataset import load_dataset  # noqa: E402
from tutor.evaluation.metrics import percentile  # noqa: E402

DATASETS = (Path("evals/datasets/dev.jsonl"), Path("evals/datasets/check.jsonl"))
GATE_CHUNKS, GATE_QUESTIONS = 300, 100


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def _questions() -> list[str]:
    return [it.question for ds in DATASETS for it in load_dataset(ds)]


def _stats(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1)}


# ---- children: one measurement each, in a fresh process --------------------------------------------
def child_prepare(backend: str, index: Path) -> dict:
    """Make sure the model is in the cache (an ONNX export is made here, once) and time a load."""
    from tutor.embedding import Embedder
    from tutor.models import backend_id, export_folder
    from tutor.onnx_backend import RUNTIMES

    s = load_settings(embed_backend=backend)
    res: dict = {}
    target = RUNTIMES.get(backend_id(backend), ("torch",))[0]
    if target != "torch" and not (export_folder(s.embedding.model, s.paths.home, target) / "export.json").is_file():
        t0 = time.perf_counter()
        Embedder(s, progress=lambda m: print(m, file=sys.stderr)).model
        res["export_s"] = round(time.perf_counter() - t0, 1)
    return res


def child_ingest(backend: str, index: Path) -> dict:
    from tutor.api import Tutor

    s = load_settings(index_dir=index, embed_backend=backend)
    shutil.rmtree(index, ignore_errors=True)
    load0 = _load()
    t0 = time.perf_counter()
    report = Tutor(s).ingest()  # cold: model load included
    res = {"ingest_s": round(time.perf_counter() - t0, 1), "ingest_chunks": report.chunks,
           "ingest_stages_s": {k: round(v, 1) for k, v in report.seconds.items()},
           "chunks_per_s_embed": round(report.chunks / max(report.seconds.get("embed", 1e-9), 1e-9), 1),
           "peak_rss_mb_ingest": _rss_mb()}
    t0 = time.perf_counter()
    noop = Tutor(s).ingest()
    res["noop_reingest_s"] = round(time.perf_counter() - t0, 2)
    res["noop"] = noop.noop
    res["load_avg_ingest"] = [load0, _load()]
    return res


def child_search(backend: str, index: Path, ask: int) -> dict:
    from tutor.api import Tutor

    s = load_settings(index_dir=index, embed_backend=backend)
    load0 = _load()
    res: dict = {}
    t0 = time.perf_counter()
    tutor = Tutor(s)
    tutor.embedder.model
    res["model_load_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    tutor.index
    res["index_load_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    tutor.search("什么是残差连接？")
    res["first_search_ms"] = round((time.perf_counter() - t0) * 1000, 1)  # BM25 check, first forward pass
    tutor.search("warm up: how does multi-head attention work?")
    questions = _questions()
    new, embed, again = [], [], []
    for q in questions:
        t0 = time.perf_counter()
        r = tutor.search(q)
        new.append((time.perf_counter() - t0) * 1000)
        embed.append(r.timings_ms.get("embed", 0.0))
    for q in questions:
        t0 = time.perf_counter()
        tutor.search(q)
        again.append((time.perf_counter() - t0) * 1000)
    res["search_ms"] = _stats(new)
    res["search_embed_ms"] = _stats(embed)
    res["search_repeat_ms"] = _stats(again)
    res["peak_rss_mb_search"] = _rss_mb()
    res["load_avg_search"] = [load0, _load()]
    res["retrieval"] = _retrieval_quality(tutor, backend)
    if ask:
        res["ask"] = _ask(tutor, ask)
        res["peak_rss_mb_with_llm"] = _rss_mb()
    return res


def _retrieval_quality(tutor, backend: str) -> dict:
    """`tutor eval --retrieval-only` on dev and check, in-process, against this backend's index."""
    from tutor.evaluation.runner import EvalOptions, run

    out = {}
    for ds in DATASETS:
        folder = Path("evals/runs") / f"bench-{backend}-{ds.stem}"
        shutil.rmtree(folder, ignore_errors=True)
        report = run(tutor, EvalOptions(dataset=ds, out=folder, retrieval_only=True))
        out[ds.stem] = {mode: {k: report["retrieval"][mode]["overall"].get(k) for k in ("n", "hit@5", "mrr")}
                        for mode in report["retrieval"]}
    return out


def _ask(tutor, n: int) -> dict:
    ft, total, tps = [], [], []
    questions = ["ResNet 的残差连接解决了什么问题？", "What is Mixture of Experts?", "DeepSeek-V3 有多少参数？",
                 "AlexNet 的 Top-5 错误率是多少？", "Why does the Transformer use multi-head attention?"]
    tutor.ask(questions[0])  # load the model once (excluded: one-time materialisation + load)
    for q in questions[1:1 + n]:
        a = tutor.ask(q)
        if a.refused:
            continue
        ft.append(a.timings_ms.get("first_token", 0))
        total.append(a.timings_ms.get("total", 0))
        gen_s = (a.timings_ms.get("generate", 0) - a.timings_ms.get("first_token", 0)) / 1000
        if gen_s > 0 and a.timings_ms.get("tokens", 0) > 1:
            tps.append((a.timings_ms["tokens"] - 1) / gen_s)
    return {"model": tutor.settings.llm.model, "n": len(ft),
            "first_token_ms_median": round(statistics.median(ft)) if ft else None,
            "total_ms_median": round(statistics.median(total)) if total else None,
            "tokens_per_s_median": round(statistics.median(tps), 1) if tps else None}


def child_gate(backends: list[str]) -> dict:
    """Cosine of each ONNX backend's vectors against torch fp32: 300 corpus chunks (evenly spread
    over the corpus in ingest order) and 100 questions (dev, then check)."""
    import numpy as np

    from tutor.chunking import chunk_document, searchable_text
    from tutor.corpus import load_file, scan
    from tutor.embedding import Embedder

    s = load_settings()
    chunks = []
    for f in scan(s.paths.corpus_dir):
        try:
            docs, _ = load_file(f)
        except ValueError:
            continue
        emb = s.embedding
        chunks += [searchable_text(c) for d in docs for c in chunk_document(d, emb.chunk_size, emb.chunk_overlap)]
    picked = [chunks[int(i)] for i in np.linspace(0, len(chunks) - 1, GATE_CHUNKS)]
    questions = _questions()[:GATE_QUESTIONS]
    ref = Embedder(s.replace(embed_backend="torch"))
    ref_p, ref_q = ref.passages(picked), ref.queries(questions)
    out = {"chunks": len(picked), "questions": len(questions)}
    for b in backends:
        if b == "torch":
            continue
        e = Embedder(s.replace(embed_backend=b))
        cp = np.sum(e.passages(picked) * ref_p, axis=1)
        cq = np.sum(np.vstack([e.queries([q]) for q in questions]) * ref_q, axis=1)
        out[e.backend] = {"min": round(float(min(cp.min(), cq.min())), 6),
                          "chunks_min": round(float(cp.min()), 6), "chunks_mean": round(float(cp.mean()), 6),
                          "questions_min": round(float(cq.min()), 6), "questions_mean": round(float(cq.mean()), 6)}
    return out


# ---- the parent: children in turn, one JSON ---------------------------------------------------------
def _child(*args: str) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench child {' '.join(args)} failed (exit {p.returncode})")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="openvino,openvino-bf16,onnx,torch", help="comma-separated embed_backend values")
    ap.add_argument("--index", type=Path, default=Path("/tmp/bench-index"), help="one sub-folder per backend")
    ap.add_argument("--ask", type=int, default=3, help="questions to time end to end with the LLM (first backend)")
    ap.add_argument("--out", type=Path, default=Path("evals/runs/bench.json"))
    ap.add_argument("--skip-ingest", action="store_true", help="reuse the indexes of an earlier run")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "gate":
            res = child_gate(rest[0].split(","))
        elif kind == "search":
            res = child_search(rest[0], Path(rest[1]), int(rest[2]))
        else:
            res = {"prepare": child_prepare, "ingest": child_ingest}[kind](rest[0], Path(rest[1]))
        print(json.dumps(res, ensure_ascii=False))
        return

    from tutor.models import backend_id

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    res: dict = {"cpus": os.cpu_count(), "load_avg_start": _load(), "backends": {}}
    for i, b in enumerate(backends):
        index = args.index / backend_id(b)
        one = _child("prepare", b, str(index))
        if not args.skip_ingest:
            one.update(_child("ingest", b, str(index)))
        one.update(_child("search", b, str(index), str(args.ask if i == 0 else 0)))
        res["backends"][backend_id(b)] = one
        print(json.dumps({backend_id(b): one}, ensure_ascii=False), file=sys.stderr)
    if any(b != "torch" for b in backends) and "torch" in backends:
        res["cosine_vs_torch"] = _child("gate", ",".join(backends))
    res["load_avg_end"] = _load()
    first = res["backends"][backend_id(backends[0])]  # the earlier flat shape, for the first backend
    for key in ("ingest_s", "ingest_chunks", "ingest_stages_s", "chunks_per_s_embed", "noop_reingest_s", "noop",
                "search_ms", "ask"):
        if key in first:
            res[key] = first[key]
    res["peak_rss_mb_after_ingest"] = first.get("peak_rss_mb_ingest")
    res["peak_rss_mb"] = first.get("peak_rss_mb_with_llm", first.get("peak_rss_mb_search"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n")
    print(json.dumps(res, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
