"""The answer-side sections of an eval's report.json: scores by slice, refusal, latency and
speed, the judge and its agreement with hand labels, injection, figures not in the evidence."""
from __future__ import annotations

from pathlib import Path

from ..text import MARKER, figure_values, figures
from .answers import METRICS
from .dataset import EvalItem
from .injection import injection_section
from .judges import Judge, agreement, load_labels, make_judge
from .metrics import aggregate, latency_summary, percentile, refusal_prf, round4


def answer_report(items: list[EvalItem], rows: list[dict], wall_s: float | None = None,
                  resumed: int = 0, labels_path: Path | None = None, judge: Judge | None = None) -> dict:
    """Answer-side sections of report.json. `wall_s` / `resumed` (from the runner) give the real
    throughput; without them it is estimated from the rows' own timings as if run one by one.
    `judge` is the instance that scored the rows (its agreement with the hand labels at
    `labels_path` is measured, and an LLM judge's call counts reported); without it, a heuristic
    judge of the rows' judge name is made (it holds no state)."""
    by_item = {it.id: it for it in items}
    ok = [r for r in rows if not r.get("error") and r["id"] in by_item]
    per = {r["id"]: {m: r["scores"].get(m) for m in METRICS} for r in ok}
    report: dict = {"answers": aggregate(items, per, answerable_only=False)}
    report["refusal"] = {k: round4(v) if isinstance(v, float) else v for k, v in refusal_prf(
        [not by_item[r["id"]].answerable for r in ok], [bool(r.get("refused")) for r in ok]).items()}
    report["latency_ms"] = _latency(rows)
    report["tokens_per_s"] = round4(percentile([t for r in ok if (t := _decode_rate(r)) is not None], 50))
    report.update(_throughput(rows, wall_s, resumed))
    report["judge"] = _judge_section(rows, labels_path, judge)
    report["injection"] = injection_section(ok)
    report["evidence_check"] = _evidence_check(items, ok)
    errors = [r for r in rows if r.get("error")]
    report["errors"] = {"n": len(errors), "items": [{"id": r["id"], "error": r["error"]} for r in errors]}
    return report


def _evidence_check(items: list[EvalItem], rows: list[dict]) -> dict:
    """Figures an answer shows that its own evidence does not hold (target 0), and how long the
    answers are. Written here, apart from the answer side's post-check, so it can catch it."""
    by_item = {it.id: it for it in items}
    bad, lengths = [], []
    for r in rows:
        if r.get("refused") or not r.get("answer"):
            continue
        lengths.append(len(MARKER.sub("", r["answer"])))
        ev = " ".join(f"{e.get('context', '')} {e.get('text', '')}" for e in r.get("evidence") or [])
        have = figure_values(ev) | figure_values(by_item[r["id"]].question)
        shown = [f for f in figures(MARKER.sub(" ", r["answer"])) if f.value not in have]
        if shown:
            bad.append({"id": r["id"], "figures": [f.value for f in shown]})
    return {"answers": len(lengths), "with_figure_not_in_evidence": len(bad), "items": bad[:20],
            "answer_chars_p50": percentile(lengths, 50) if lengths else None}


def _latency(rows: list[dict]) -> dict:
    """Answer timings plus the search latency the runner reports (this dict replaces its)."""
    out = {"search": latency_summary([x for r in rows if (x := (r.get("search_ms") or {}).get(r.get("mode")))
                                      is not None])}
    for key in ("retrieve", "select", "first_token", "total"):
        vals = [x for r in rows if (x := (r.get("timings_ms") or {}).get(key)) is not None and not r.get("error")]
        out[key] = {"p50": round4(percentile(vals, 50)), "p95": round4(percentile(vals, 95))}
    return out


def _decode_rate(row: dict) -> float | None:
    """Generated tokens per second after the first token: (tokens - 1) / (total - first_token)."""
    t = row.get("timings_ms") or {}
    tokens, first, total = t.get("tokens"), t.get("first_token"), t.get("total")
    if not tokens or tokens < 2 or first is None or total is None or total <= first:
        return None
    return (tokens - 1) / ((total - first) / 1000)


def _throughput(rows: list[dict], wall_s: float | None, resumed: int) -> dict:
    new = len(rows) - resumed
    if wall_s and new > 0:
        return {"throughput_qpm": round4(new / wall_s * 60), "throughput_basis": "wall time"}
    per_item = [sum(v for v in (r.get("search_ms") or {}).values() if v) + ((r.get("timings_ms") or {}).get("total") or 0)
                for r in rows]
    spent = sum(per_item)
    if not spent:
        return {"throughput_qpm": None, "throughput_basis": None}
    return {"throughput_qpm": round4(len(rows) / (spent / 60000)), "throughput_basis": "row timings, sequential"}


def _judge_section(rows: list[dict], labels_path: Path | None, judge: Judge | None) -> dict:
    name = next((r["judge"] for r in rows if r.get("judge")), "claims")
    if judge is None or judge.name != name:
        judge = make_judge(None, name) if name in ("lexical", "claims") else None
    out = judge.describe() if judge else {"name": name, "kind": "llm" if name in ("llm", "likelihood") else "heuristic"}
    path = Path(labels_path) if labels_path else None
    out["labels"] = str(path) if path and path.is_file() else None
    out["agreement"] = None
    if judge and out["labels"]:
        out["agreement"] = agreement(judge, load_labels(path))
        # labels the judge's rules were never tuned on, kept beside the project's: the figure to trust
        held = path.with_name(path.stem + "_heldout" + path.suffix)
        if held.is_file():
            out["agreement_heldout"] = agreement(judge, load_labels(held))
        out.update({k: v for k, v in judge.describe().items() if k in ("calls", "unparseable")})
    return out
