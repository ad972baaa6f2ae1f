"""`tutor eval`: run a dataset through the tutor, write `results.jsonl`, `report.json`, `report.md`.

A run folder is resumable: each finished item is appended to `results.jsonl` at once, and a
re-run with the same folder skips the ids already there (as long as the run settings match).
A multi-turn file (evals/MULTITURN_SCHEMA.md, detected by its "turns") runs conversation by
conversation (multiturn.py); a conversation is skipped on resume only when all its scored turns
are in, else it is run again whole, since its later turns need its earlier answers.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import jsonl
from ..errors import RunError
from .dataset import EvalItem, is_multiturn, load_conversations, load_dataset
from .metrics import aggregate, first_hit_rank, latency_summary, retrieval_scores
from .signature import differences, run_signature

if TYPE_CHECKING:
    from .judges import Judge

RESULTS, REPORT_JSON, REPORT_MD, RUN_JSON = "results.jsonl", "report.json", "report.md", "run.json"
MODES = ("dense", "bm25", "hybrid")
TOP_N = 10


@dataclass
class EvalOptions:
    dataset: Path
    out: Path
    retrieval_only: bool = False
    limit: int | None = None
    concurrency: int = 1
    judge: str = "claims"
    pipeline: dict | None = None  # another pipeline's settings (a baseline): its signature instead


def _read_results(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.is_file():
        for row in jsonl.read(path, skip_bad=True):  # a line cut by an interruption: redo that item
            if isinstance(row, dict) and "id" in row and "error" not in row:  # an item that failed (e.g. server down) is retried on resume
                done[row["id"]] = row
    return done


def retrieval_row(tutor, item: EvalItem, query: str | None = None, alternates: tuple[str, ...] = ()) -> dict:
    """Search the item in every mode; keep the configured mode's hits as the item's `hits`.
    `query` / `alternates`: what to search instead of the item's question (a follow-up's
    standalone forms)."""
    primary = tutor.settings.retrieval.mode
    ranks, hits_by_mode, timings = {}, {}, {}
    for mode in MODES:
        res = tutor.search(query or item.question, k=TOP_N, mode=mode, alternates=alternates)
        hits = [h.to_dict() for h in res.hits]
        hits_by_mode[mode] = hits
        timings[mode] = res.timings_ms.get("total")
        ranks[mode] = first_hit_rank(item, hits) if item.type != "unanswerable" else None
    return {"id": item.id, "question": item.question, "type": item.type, "lang": item.lang,
            "tags": item.tags, "mode": primary, "hits": hits_by_mode[primary], "ranks": ranks,
            "search_ms": timings}


def run(tutor, opts: EvalOptions, progress: Callable[[int, int], None] | None = None,
        answer_row: Callable | None = None, retrieval: Callable | None = None,
        batch_answer: Callable | None = None, judge: Judge | None = None) -> dict:
    """Run (or resume) an eval; returns the report dict. `answer_row(tutor, item, row)` adds the
    answer-side fields and scores (the full eval); retrieval-only runs leave it None.
    `retrieval(tutor, item)` makes an item's retrieval row (default: the tutor's, every mode).
    `batch_answer(tutor, [(item, row), ...])` (a batching backend, single-turn datasets): the
    retrieval rows of all pending items are made first, then it yields the finished rows, its
    model call being one batch; rows are written as they come and put in item order at the end.
    `judge`: the one the answer callables score with (the report measures that very instance)."""
    retrieval = retrieval or retrieval_row
    convs = None
    if is_multiturn(opts.dataset):
        convs = load_conversations(opts.dataset, tutor.settings.paths.corpus_dir)[: opts.limit or None]
        items = [it for c in convs for it in c.items]
    else:
        items = load_dataset(opts.dataset, tutor.settings.paths.corpus_dir)[: opts.limit or None]
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    sig = run_signature(tutor.settings, opts.dataset, opts.retrieval_only, opts.judge, opts.pipeline)
    run_file = out / RUN_JSON
    if run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8")).get("signature") or {}
        diff = differences(old, sig)
        if diff and (out / RESULTS).is_file():
            raise RunError(f"{out} holds a run with other settings ({', '.join(diff)}): use another --out")
    run_file.write_text(json.dumps({"signature": sig, "started": time.strftime("%Y-%m-%dT%H:%M:%S")},
                                   ensure_ascii=False, indent=1), encoding="utf-8")
    results_path = out / RESULTS
    done = _read_results(results_path)
    if convs is not None:
        from .multiturn import conversation_rows

        units: list = []
        for c in convs:
            if not all(it.id in done for it in c.items):
                units.append(c)
                for it in c.items:
                    done.pop(it.id, None)

        def work(conv) -> list[dict]:
            return conversation_rows(tutor, conv, answer_row, retrieval_row)
    else:
        units = [it for it in items if it.id not in done]

        def work(item: EvalItem) -> list[dict]:
            row = retrieval(tutor, item)
            if answer_row is not None:
                row = answer_row(tutor, item, row)
            return [row]
    todo = [it for it in items if it.id not in done]
    total, finished = len(items), len(items) - len(todo)
    if progress:
        progress(finished, total)
    t0 = time.perf_counter()

    # rewrite the file without any half-written tail, then append as items finish
    with results_path.open("w", encoding="utf-8") as f:
        for it in items:
            if it.id in done:
                f.write(jsonl.dumps(done[it.id]) + "\n")
    written = [it.id for it in items if it.id in done]
    with results_path.open("a", encoding="utf-8") as f, \
            ThreadPoolExecutor(max_workers=max(1, opts.concurrency)) as pool:
        if batch_answer is not None and convs is None and units:
            retrieved = list(pool.map(lambda it: retrieval(tutor, it), units))
            batches = [batch_answer(tutor, list(zip(units, retrieved)))]
        else:
            batches = pool.map(work, units)
        for unit_rows in batches:
            for row in unit_rows:
                f.write(jsonl.dumps(row) + "\n")
                f.flush()
                done[row["id"]] = row
                written.append(row["id"])
                finished += 1
                if progress:
                    progress(finished, total)
    wall = time.perf_counter() - t0
    rows = [done[it.id] for it in items]
    if written != [it.id for it in items]:  # resumed or batched rows came first: put the file in item order
        tmp = results_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(jsonl.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(results_path)
    report = build_report(items, rows, sig, wall_s=wall, resumed=total - len(todo), judge=judge,
                          labels=tutor.settings.judge.labels)
    from .report import write_reports

    write_reports(out, report, items, rows)
    return report


def build_report(items: list[EvalItem], rows: list[dict], sig: dict, wall_s: float, resumed: int,
                 judge: Judge | None = None, labels: Path | None = None) -> dict:
    report: dict = {"signature": sig, "n_items": len(items), "resumed_items": resumed,
                    "wall_time_s": round(wall_s, 2), "retrieval": {}}
    seen = {m for r in rows for m in r.get("ranks") or {}}
    for mode in [m for m in MODES if m in seen or not rows] + sorted(seen - set(MODES)):
        per = {r["id"]: retrieval_scores(r["ranks"].get(mode)) for r in rows}
        report["retrieval"][mode] = aggregate(items, per)
    search_ms = [r["search_ms"].get(r["mode"]) for r in rows if r.get("search_ms")]
    report["latency_ms"] = {"search": latency_summary([x for x in search_ms if x is not None])}
    if rows and "scores" in rows[0]:
        from .answer_report import answer_report

        report.update(answer_report(items, rows, wall_s=wall_s, resumed=resumed, labels_path=labels, judge=judge))
    if rows and "turn" in rows[0]:
        from .multiturn import multiturn_report

        report["multiturn"] = multiturn_report(rows, report)
    return report
