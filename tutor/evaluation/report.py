"""Run folder → `report.json` + a readable `report.md` (+ PNG plots for full runs)."""
from __future__ import annotations

import json
from pathlib import Path

from .dataset import EvalItem
from .tables import md_table

RET_COLS = ("hit@1", "hit@3", "hit@5", "hit@10", "mrr")


def retrieval_md(report: dict) -> str:
    parts = ["## Retrieval (answerable items; EVAL_SCHEMA hit@k / MRR)\n"]
    ret = report["retrieval"]
    overall = [[m, ret[m].get("overall", {}).get("n")] + [ret[m].get("overall", {}).get(c) for c in RET_COLS]
               for m in ret]
    parts.append(md_table(["mode", "n", *RET_COLS], overall))
    primary = report["signature"].get("retrieval_mode", "hybrid")
    slices = [s for s in ret.get(primary, {}) if s != "overall"]
    if slices:
        parts.append(f"\n### By slice ({primary}; dense / bm25 hit@5 alongside)\n")
        rows = []
        for s in slices:
            r = ret[primary][s]
            rows.append([s, r.get("n")] + [r.get(c) for c in RET_COLS] +
                        [ret.get("dense", {}).get(s, {}).get("hit@5"), ret.get("bm25", {}).get(s, {}).get("hit@5")])
        parts.append(md_table(["slice", "n", *RET_COLS, "dense hit@5", "bm25 hit@5"], rows))
    return "\n".join(parts)


def misses_md(items: list[EvalItem], rows: list[dict], mode: str) -> str:
    by_id = {r["id"]: r for r in rows}
    lines = [f"\n## Retrieval misses ({mode}: evidence not in the top 5)\n"]
    for it in items:
        r = by_id.get(it.id)
        if not r or it.type == "unanswerable":
            continue
        rank = r["ranks"].get(mode)
        if rank is None or rank > 5:
            top = ", ".join(f"{h['file']}" + (f" p{h['page']}" if h.get("page") else "") for h in r["hits"][:3])
            want = "; ".join(f"{e.file}: “{e.quote[:40]}”" for e in it.evidence)
            lines.append(f"- **{it.id}** ({it.type}, {it.lang}) {it.question} — rank {rank or '>10'}; "
                         f"wanted {want}; got {top}")
    return "\n".join(lines) if len(lines) > 1 else ""


def write_reports(out: Path, report: dict, items: list[EvalItem], rows: list[dict]) -> None:
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    sig = report["signature"]
    md = [f"# Eval report — {Path(sig['dataset']).name}\n",
          f"{report['n_items']} items; wall time {report['wall_time_s']} s"
          + (f" ({report['resumed_items']} resumed)" if report.get("resumed_items") else "") + ".\n",
          "Settings: " + ", ".join(f"`{k}={v}`" for k, v in sig.items() if v is not None) + "\n"]
    if "answers" in report:
        from .answer_md import answers_md

        md.append(answers_md(report, items, rows))
    if "multiturn" in report:
        from .multiturn import multiturn_md

        md.append(multiturn_md(report["multiturn"], rows))
    md.append(retrieval_md(report))
    lat = report.get("latency_ms", {}).get("search", {})
    if lat.get("p50") is not None:
        md.append(f"\nSearch latency: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms.\n")
    md.append(misses_md(items, rows, sig.get("retrieval_mode", "hybrid")))
    if "answers" in report:
        from .plots import write_plots

        write_plots(out, report, rows)
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
