"""`tutor eval compare RUN_A RUN_B`: two run folders side by side, then what changed per item.

A headline number moving by 0.02 says little on ~100 items; the per-item lists (which questions
flipped from right to wrong, whose evidence moved in the ranking) say what actually changed.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import jsonl
from ..text import clip
from .tables import fmt, md_table
from .signature import differences

# (label, path into report.json; "{mode}" = the run's primary retrieval mode)
HEADLINE = (
    ("retrieval hit@5", ("retrieval", "{mode}", "overall", "hit@5")),
    ("retrieval MRR", ("retrieval", "{mode}", "overall", "mrr")),
    ("answer correct", ("answers", "overall", "correct")),
    ("false refusal rate", ("answers", "overall", "false_refusal")),
    ("refusal precision", ("refusal", "precision")),
    ("refusal recall", ("refusal", "recall")),
    ("citation recall", ("answers", "overall", "citation_recall")),
    ("citation precision", ("answers", "overall", "citation_precision")),
    ("faithfulness", ("answers", "overall", "faithfulness")),
    ("unanswerable refused", ("answers", "overall", "refused_ok")),
    ("answer latency p50 ms", ("latency_ms", "total", "p50")),
    ("answer latency p95 ms", ("latency_ms", "total", "p95")),
    ("throughput questions/min", ("throughput_qpm",)),
    ("search latency p50 ms", ("latency_ms", "search", "p50")),
)


def _run_dir(p: Path | str) -> Path:
    p = Path(p)
    if p.is_file() and p.name == "report.json":
        p = p.parent
    if not (p / "report.json").is_file():
        raise ValueError(f"{p}: no report.json here — pass a run folder such as evals/runs/<name>")
    return p


def load_run(path: Path | str) -> tuple[dict, dict[str, dict]]:
    """(report.json, results rows by id) of a run folder."""
    d = _run_dir(path)
    report = json.loads((d / "report.json").read_text(encoding="utf-8"))
    rows: dict[str, dict] = {}
    res = d / "results.jsonl"
    if res.is_file():
        for r in jsonl.read(res, skip_bad=True):
            if isinstance(r, dict) and "id" in r:
                rows[r["id"]] = r
    return report, rows


def _get(report: dict, path: tuple[str, ...]):
    mode = report.get("signature", {}).get("retrieval_mode", "hybrid")
    cur = report
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key.format(mode=mode))
    return cur if isinstance(cur, (int, float)) and not isinstance(cur, bool) else None


def _delta(a, b) -> str:
    if a is None or b is None:
        return "–"
    d = b - a
    return f"{d:+.3f}" if isinstance(d, float) else f"{d:+d}"


def _rank(row: dict) -> int | None:
    return (row.get("ranks") or {}).get(row.get("mode"))


def item_changes(rows_a: dict[str, dict], rows_b: dict[str, dict]) -> dict[str, list]:
    """Items that flipped between the runs (over ids present in both)."""
    common = [i for i in rows_a if i in rows_b]
    out: dict[str, list] = {"gained": [], "lost": [], "newly_refused": [], "no_longer_refused": [], "ranks": []}
    for i in common:
        a, b = rows_a[i], rows_b[i]
        ca, cb = (a.get("scores") or {}).get("correct"), (b.get("scores") or {}).get("correct")
        if ca is False and cb is True:
            out["gained"].append(i)
        elif ca is True and cb is False:
            out["lost"].append(i)
        if "refused" in a and "refused" in b and bool(a["refused"]) != bool(b["refused"]):
            out["newly_refused" if b["refused"] else "no_longer_refused"].append(i)
        ra, rb = _rank(a), _rank(b)
        if ra != rb and a.get("type") != "unanswerable":
            out["ranks"].append((i, ra, rb))
    # biggest moves first; None (not in the top 10) counts as rank 11
    out["ranks"].sort(key=lambda t: -abs((t[1] or 11) - (t[2] or 11)))
    return out


def compare_runs(run_a: Path | str, run_b: Path | str) -> str:
    """Markdown: settings that differ, headline metrics A | B | Δ, then the per-item changes."""
    (rep_a, rows_a), (rep_b, rows_b) = load_run(run_a), load_run(run_b)
    name_a, name_b = Path(run_a).name or str(run_a), Path(run_b).name or str(run_b)
    parts = [f"# Compare {name_a} (A) → {name_b} (B)\n"]
    sa, sb = rep_a.get("signature", {}), rep_b.get("signature", {})
    diff = differences(sa, sb)
    if diff:
        parts.append(md_table(["setting", "A", "B"], [[k, sa.get(k), sb.get(k)] for k in diff]))
    else:
        parts.append("Same settings.")
    if sa.get("dataset") != sb.get("dataset"):
        parts.append("\n**Different datasets**: headline numbers are not comparable; items are matched by id.")
    ja, jb = (rep_a.get("judge") or {}).get("name"), (rep_b.get("judge") or {}).get("name")
    if ja and jb and ja != jb:
        parts.append(f"\n**Different judges** ({ja} vs {jb}): citation and faithfulness scores are not comparable.")
    if rows_a and rows_b and set(rows_a) != set(rows_b):
        parts.append(f"\n**Different item sets** (A {len(rows_a)}, B {len(rows_b)}, {sum(i in rows_b for i in rows_a)} "
                     "shared): the headline covers each run's own items; the per-item lists only shared ones.")
    parts += ["\n## Headline\n", headline_md(rep_a, rep_b)]
    ch = item_changes(rows_a, rows_b)
    n_common = sum(i in rows_b for i in rows_a)
    parts.append(f"\n## Per item ({n_common} items in both runs)\n")
    q = {i: (rows_b.get(i) or rows_a.get(i) or {}).get("question", "") for i in set(rows_a) | set(rows_b)}
    for key, title in (("gained", "Correct in B, wrong in A"), ("lost", "Correct in A, wrong in B"),
                       ("newly_refused", "Refused in B only"), ("no_longer_refused", "Refused in A only")):
        if ch[key]:
            parts.append(f"**{title}** ({len(ch[key])}):")
            parts += [f"- {i}: {clip(q[i], 90)}" for i in ch[key]]
            parts.append("")
    if ch["ranks"]:
        up = sum((rb or 11) < (ra or 11) for _, ra, rb in ch["ranks"])
        parts.append(f"**Evidence rank changes** ({len(ch['ranks'])}: {up} better, {len(ch['ranks']) - up} worse; "
                     f"'>10' = not in the top 10):")
        parts += [f"- {i}: {fmt(ra) if ra else '>10'} → {fmt(rb) if rb else '>10'}  {clip(q[i], 70)}"
                  for i, ra, rb in ch["ranks"][:40]]
        if len(ch["ranks"]) > 40:
            parts.append(f"- … and {len(ch['ranks']) - 40} more")
    if not any(ch.values()):
        parts.append("No item changed.")
    only = sorted(set(rows_a) ^ set(rows_b))
    if only:
        parts.append(f"\n{len(only)} item(s) in only one run: {', '.join(only[:20])}" + (" …" if len(only) > 20 else ""))
    return "\n".join(parts) + "\n"


def headline_md(rep_a: dict, rep_b: dict, names: tuple[str, str] = ("A", "B")) -> str:
    rows = [[label, _get(rep_a, p), _get(rep_b, p), _delta(_get(rep_a, p), _get(rep_b, p))] for label, p in HEADLINE]
    rows = [r for r in rows if r[1] is not None or r[2] is not None]
    return md_table(["metric", *names, f"Δ ({names[1]} − {names[0]})"], rows)


BASELINE_MARK = "\n## Beside the baseline"


def append_baseline(run_dir: Path, base_dir: Path) -> None:
    """Put a baseline run's headline beside the tutor's in the tutor run's report.md / .json."""
    (rep, _), (base, _) = load_run(run_dir), load_run(base_dir)
    name = base.get("signature", {}).get("pipeline", base_dir.name)
    rep["baseline"] = {"pipeline": name, "run": str(base_dir), "signature": base.get("signature"),
                       "headline": {label: _get(base, p) for label, p in HEADLINE}}
    (run_dir / "report.json").write_text(json.dumps(rep, ensure_ascii=False, indent=1), encoding="utf-8")
    md_path = run_dir / "report.md"
    md = md_path.read_text(encoding="utf-8").split(BASELINE_MARK)[0].rstrip("\n")
    note = (f"{BASELINE_MARK}: {name}\n\nSame dataset and scoring; the baseline's own run folder is "
            f"`{base_dir}` (`tutor eval compare {run_dir} {base_dir}` lists what changed per item).\n\n")
    md_path.write_text(md + "\n" + note + headline_md(rep, base, ("tutor", name)) + "\n", encoding="utf-8")
