"""Benchmarks for the README/issue notes (not timed tests): ingest from scratch, no-op re-ingest,
warm search latency, peak RSS, and time to first answer token.

    python evals/bench.py [--index /tmp/bench-index] [--ask N] [--out evals/runs/bench.json]

Every figure is printed and written as JSON so reports can quote it.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import time
from pathlib import Path

from tutor.api import Tutor
from tutor.config import load_settings
from tutor.evaluation.dataset import load_dataset
from tutor.evaluation.metrics import percentile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=Path("/tmp/bench-index"))
    ap.add_argument("--dataset", type=Path, default=Path("evals/datasets/dev.jsonl"))
    ap.add_argument("--ask", type=int, default=3, help="questions to time end to end with the LLM")
    ap.add_argument("--out", type=Path, default=Path("evals/runs/bench.json"))
    ap.add_argument("--skip-ingest", action="store_true")
    args = ap.parse_args()
    res: dict = {}
    s = load_settings(index_dir=args.index)
    if not args.skip_ingest:
        shutil.rmtree(args.index, ignore_errors=True)
        t0 = time.perf_counter()
        tutor = Tutor(s)
        report = tutor.ingest()
        res["ingest_s"] = round(time.perf_counter() - t0, 1)
        res["ingest_chunks"] = report.chunks
        res["ingest_stages_s"] = {k: round(v, 1) for k, v in report.seconds.items()}
        res["chunks_per_s_embed"] = round(report.chunks / max(report.seconds.get("embed", 1e-9), 1e-9), 1)
        res["peak_rss_mb_after_ingest"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        t0 = time.perf_counter()
        noop = Tutor(s).ingest()
        res["noop_reingest_s"] = round(time.perf_counter() - t0, 2)
        res["noop"] = noop.noop
    tutor = Tutor(s)
    items = load_dataset(args.dataset)
    tutor.search("warm up")
    lat = []
    for it in items:
        t0 = time.perf_counter()
        tutor.search(it.question)
        lat.append((time.perf_counter() - t0) * 1000)
    res["search_ms"] = {"n": len(lat), "p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1)}
    if args.ask:
        ft, total, tps = [], [], []
        questions = ["ResNet 的残差连接解决了什么问题？", "What is Mixture of Experts?", "DeepSeek-V3 有多少参数？",
                     "AlexNet 的 Top-5 错误率是多少？", "Why does the Transformer use multi-head attention?"]
        tutor.ask(questions[0])  # load the model once (excluded: one-time materialisation + load)
        for q in questions[1:1 + args.ask]:
            a = tutor.ask(q)
            if a.refused:
                continue
            ft.append(a.timings_ms.get("first_token", 0))
            total.append(a.timings_ms.get("total", 0))
            gen_s = (a.timings_ms.get("generate", 0) - a.timings_ms.get("first_token", 0)) / 1000
            if gen_s > 0 and a.timings_ms.get("tokens", 0) > 1:
                tps.append((a.timings_ms["tokens"] - 1) / gen_s)
        res["ask"] = {"model": s.model, "n": len(ft),
                      "first_token_ms_median": round(statistics.median(ft)) if ft else None,
                      "total_ms_median": round(statistics.median(total)) if total else None,
                      "tokens_per_s_median": round(statistics.median(tps), 1) if tps else None}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, ensure_ascii=False, indent=1))
    print(json.dumps(res, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
