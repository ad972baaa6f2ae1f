"""PNG charts for a full eval run: scores per question type and the answer latency spread.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch), so it
works headless and from any thread, and never disturbs a UI process that also uses matplotlib.
"""
from __future__ import annotations

from pathlib import Path

SCORES = ("correct", "refused_ok", "citation_recall", "citation_precision", "faithfulness")
SCORES_PNG, LATENCY_PNG = "scores_by_type.png", "latency.png"


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def scores_by_type(report: dict, path: Path) -> Path | None:
    """Grouped bars: one group per question type, one bar per score (missing scores left out)."""
    ans = report.get("answers") or {}
    types = [s for s in ans if s.startswith("type:")]
    if not types:
        return None
    fig = _figure(max(6.0, 1.4 * len(types) + 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(SCORES)
    for j, score in enumerate(SCORES):
        xs = [i + (j - (len(SCORES) - 1) / 2) * width for i in range(len(types))]
        ys = [ans[t].get(score) for t in types]
        keep = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if keep:
            ax.bar([x for x, _ in keep], [y for _, y in keep], width, label=score.replace("_", " "))
    ax.set_xticks(range(len(types)), [f"{t[5:]}\n(n={ans[t].get('n')})" for t in types], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean score")
    ax.set_title(f"Scores by question type (judge: {(report.get('judge') or {}).get('name', '?')})")
    ax.legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def latency_hist(rows: list[dict], path: Path) -> Path | None:
    """Histograms of time to first token and total answer time, in seconds."""
    series = {key: [t[key] / 1000 for r in rows if not r.get("error")
                    and (t := r.get("timings_ms") or {}).get(key) is not None]
              for key in ("first_token", "total")}
    if not any(series.values()):
        return None
    fig = _figure(6.5, 3.6)
    ax = fig.add_subplot()
    every = [v for vals in series.values() for v in vals]
    n_bins = min(30, max(5, len(series["total"]) // 3))
    lo, hi = min(every), max(every)
    bins = [lo + (hi - lo) * i / n_bins for i in range(n_bins + 1)] if hi > lo else n_bins  # shared bins
    for key, vals in series.items():
        if vals:
            ax.hist(vals, bins=bins, alpha=0.6, label=key.replace("_", " "))
    ax.set_xlabel("seconds")
    ax.set_ylabel("items")
    ax.set_title(f"Answer latency ({len(series['total'])} answers)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_plots(out: Path, report: dict, rows: list[dict]) -> list[Path]:
    """Write the PNGs into the run folder; returns the files written (none for retrieval-only)."""
    out = Path(out)
    if "answers" not in report:
        return []
    made = [scores_by_type(report, out / SCORES_PNG), latency_hist(rows, out / LATENCY_PNG)]
    return [p for p in made if p is not None]
