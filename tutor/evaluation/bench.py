"""`tutor bench`: answer throughput and latency of a served model at several concurrency levels.

One command for a GPU box: it answers a dataset through the full tutor pipeline (retrieval,
evidence, the model over the OpenAI API, checks, scoring) with 1, 8, 32 … questions in flight and
reports answers/s, output tokens/s, time to first token and end-to-end latency (p50/p95),
thinking vs answer tokens (R1 distills), peak GPU memory (nvidia-smi, when present) and the
answer metrics, so speed and quality are read together. Each level is printed when it finishes
and `bench.json` / `bench.md` are rewritten after every level, so an interrupted bench keeps what
it measured. On CPU the same code runs against llama.cpp's server (which answers one request at
a time: concurrency there only queues).

Token counts are streamed pieces (vLLM and llama.cpp send one token per piece); the concurrency-1
level uses the first `serial_limit` items only, since a serial pass over 100 items of a reasoning
model would take most of the time budget and its latencies need fewer samples.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import jsonl
from .answers import make_answer_row
from .dataset import EvalItem
from .judges import make_judge
from .metrics import aggregate, percentile
from .tables import fmt, md_table

BENCH_JSON, BENCH_MD = "bench.json", "bench.md"
METRICS = ("correct", "false_refusal", "refused_ok", "citation_recall", "faithfulness")


@dataclass
class LevelResult:
    concurrency: int
    items: int
    wall_s: float
    answers_per_s: float
    generated: int  # answers the model wrote (declines need no model call)
    output_tokens: int
    output_tokens_per_s: float
    reasoning_tokens: int
    answer_tokens: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    errors: int
    gpu_mem_peak_mb: float | None
    metrics: dict = field(default_factory=dict)


class GpuMemory:
    """Peak GPU memory in use (MiB, summed over GPUs) while the block runs, from nvidia-smi every
    half second; None without nvidia-smi (CPU machines, or the driver tools not installed)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.exe = shutil.which("nvidia-smi")
        self.interval_s = interval_s
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> float | None:
        if not self.exe:
            return None
        try:
            out = subprocess.run([self.exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5).stdout
            return sum(float(x) for x in out.split())
        except (OSError, ValueError, subprocess.SubprocessError):
            return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            v = self.sample()
            if v is not None:
                self.peak = max(self.peak or 0.0, v)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "GpuMemory":
        if self.exe:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def gpu_info() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


def _base_row(item: EvalItem) -> dict:
    return {"id": item.id, "question": item.question, "type": item.type, "lang": item.lang, "tags": item.tags}


def level_result(concurrency: int, items: list[EvalItem], rows: list[dict], wall_s: float,
                 gpu_peak: float | None) -> LevelResult:
    ok = [r for r in rows if not r.get("error")]
    gen = [r for r in ok if (r.get("timings_ms") or {}).get("tokens")]
    t = [r["timings_ms"] for r in gen]
    tokens = sum(int(x.get("tokens") or 0) for x in t)
    thinking = sum(int(x.get("reasoning_tokens") or 0) for x in t)
    e2e = [x for r in ok if (x := (r.get("timings_ms") or {}).get("total")) is not None]
    ttft = [x["first_token"] for x in t if x.get("first_token") is not None]
    per = {r["id"]: {m: (r.get("scores") or {}).get(m) for m in METRICS} for r in ok}
    overall = aggregate(items, per, answerable_only=False).get("overall", {})
    r2 = lambda v: round(v, 2) if v is not None else None  # noqa: E731
    return LevelResult(
        concurrency=concurrency, items=len(rows), wall_s=round(wall_s, 2),
        answers_per_s=round(len(ok) / wall_s, 3) if wall_s else 0.0, generated=len(gen),
        output_tokens=tokens, output_tokens_per_s=round(tokens / wall_s, 1) if wall_s else 0.0,
        reasoning_tokens=thinking, answer_tokens=tokens - thinking,
        ttft_ms_p50=r2(percentile(ttft, 50)), ttft_ms_p95=r2(percentile(ttft, 95)),
        e2e_ms_p50=r2(percentile(e2e, 50)), e2e_ms_p95=r2(percentile(e2e, 95)),
        errors=len(rows) - len(ok), gpu_mem_peak_mb=gpu_peak,
        metrics={k: v for k, v in overall.items() if k in ("n", *METRICS)})


def run_level(tutor, items: list[EvalItem], concurrency: int, answer_row: Callable,
              say: Callable[[str], None], every: int = 10) -> tuple[list[dict], float, float | None]:
    """Answer `items` with `concurrency` in flight; (rows in item order, wall seconds, GPU peak)."""
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    with GpuMemory() as gpu, ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(answer_row, tutor, it, _base_row(it)): it for it in items}
        for fut in as_completed(futures):
            row = fut.result()
            rows[row["id"]] = row
            if len(rows) % every == 0 and len(rows) < len(items):
                dt = time.perf_counter() - t0
                say(f"  c={concurrency}: {len(rows)}/{len(items)} answered, {len(rows) / dt:.2f} answers/s so far")
    return [rows[it.id] for it in items], time.perf_counter() - t0, gpu.peak


def run_bench(tutor, items: list[EvalItem], levels: list[int], out: Path, *, judge: str = "claims",
              serial_limit: int | None = 20, info: dict | None = None,
              say: Callable[[str], None] = print) -> dict:
    """Warm up once, then each level in turn; returns the bench report (also written to `out`)."""
    out.mkdir(parents=True, exist_ok=True)
    answer_row = make_answer_row(make_judge(tutor.settings, judge))
    report = {"info": {**(info or {}), "items": len(items), "levels": levels, "judge": judge,
                       "gpus": gpu_info(), "cpus": os.cpu_count(), "load_avg_start": _load()},
              "levels": []}
    say("warm-up: one answer (loads the embedder and index, checks the server)")
    t0 = time.perf_counter()
    warm = answer_row(tutor, items[0], _base_row(items[0]))
    report["info"]["warmup_s"] = round(time.perf_counter() - t0, 2)
    if warm.get("error"):
        say(f"warm-up failed: {warm['error']}")
    for c in levels:
        batch = items[:serial_limit] if c == 1 and serial_limit else items
        say(f"concurrency {c}: {len(batch)} questions…")
        rows, wall, gpu = run_level(tutor, batch, c, answer_row, say)
        (out / f"results-c{c}.jsonl").write_text("".join(jsonl.dumps(r) + "\n" for r in rows), encoding="utf-8")
        res = level_result(c, batch, rows, wall, gpu)
        report["levels"].append(asdict(res))
        say(level_line(res))
        report["info"]["load_avg_end"] = _load()
        write_bench(out, report)
    return report


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def level_line(r: LevelResult) -> str:
    m = r.metrics
    return (f"c={r.concurrency}: {r.items} items in {r.wall_s:.1f} s → {r.answers_per_s:.2f} answers/s, "
            f"{r.output_tokens_per_s:.0f} output tok/s; TTFT p50/p95 {fmt(r.ttft_ms_p50)}/{fmt(r.ttft_ms_p95)} ms; "
            f"end-to-end p50/p95 {fmt(r.e2e_ms_p50)}/{fmt(r.e2e_ms_p95)} ms; thinking/answer tokens "
            f"{r.reasoning_tokens}/{r.answer_tokens}; correct {fmt(m.get('correct'))}, "
            f"errors {r.errors}" + (f"; GPU peak {r.gpu_mem_peak_mb:.0f} MiB" if r.gpu_mem_peak_mb else ""))


def write_bench(out: Path, report: dict) -> None:
    (out / BENCH_JSON).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    info = report["info"]
    cols = ["concurrency", "items", "answers/s", "output tok/s", "TTFT p50 ms", "TTFT p95 ms", "e2e p50 ms",
            "e2e p95 ms", "thinking tok", "answer tok", "GPU peak MiB", "correct", "false refusal",
            "unanswerable refused", "errors"]
    rows = [[r["concurrency"], r["items"], r["answers_per_s"], r["output_tokens_per_s"], r["ttft_ms_p50"],
             r["ttft_ms_p95"], r["e2e_ms_p50"], r["e2e_ms_p95"], r["reasoning_tokens"], r["answer_tokens"],
             r["gpu_mem_peak_mb"], r["metrics"].get("correct"), r["metrics"].get("false_refusal"),
             r["metrics"].get("refused_ok"), r["errors"]] for r in report["levels"]]
    md = [f"# tutor bench — {info.get('model')} ({info.get('server')})\n",
          f"Dataset `{info.get('dataset')}`, {info.get('items')} items (concurrency 1: the first "
          f"{info.get('serial_limit') or 'all'}); judge {info.get('judge')}; GPUs: "
          f"{', '.join(info.get('gpus') or []) or 'none visible'}; {info.get('cpus')} CPUs, load average "
          f"{info.get('load_avg_start')} at start, {info.get('load_avg_end')} at the end.\n",
          md_table(cols, rows),
          "\nTokens are streamed pieces (one token each from vLLM and llama.cpp). TTFT is from the "
          "request to the first piece, after retrieval; end-to-end includes retrieval and the checks. "
          "Declined questions need no model call and count in answers/s but not in TTFT or tokens."]
    (out / BENCH_MD).write_text("\n".join(md) + "\n", encoding="utf-8")
