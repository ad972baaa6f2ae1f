"""Scoring rules of EVAL_SCHEMA.md, as pure functions (hand-checked in tests).

Retrieval hit, answer correctness, refusal, and aggregation by type / lang / tag.
"""
from __future__ import annotations

import math
from collections import defaultdict
from statistics import median
from typing import Iterable, Mapping

import numpy as np

from .dataset import EvalItem, normalize, normalize_for_chunk

KS = (1, 3, 5, 10)


def quote_in_chunk(quote: str, chunk_text: str) -> bool:
    """The chunk holds the normalised quote, or (a boundary cut it) a prefix or suffix of at least
    half its length — checking exactly half suffices, since a longer one contains it."""
    q, c = normalize_for_chunk(quote), normalize_for_chunk(chunk_text)
    if not q:
        return False
    if q in c:
        return True
    half = math.ceil(len(q) / 2)
    return q[:half] in c or q[-half:] in c


def first_hit_rank(item: EvalItem, hits: list[Mapping]) -> int | None:
    """Smallest k such that every hop is found in the top k (None if not within the list).

    `hits` are in the search `--json` shape (dicts with file and text), best first.
    """
    hops: dict[int, list] = defaultdict(list)
    for ev in item.evidence:
        hops[ev.hop].append(ev)
    if not hops:
        return None
    worst = 0
    for evs in hops.values():
        rank = next((i for i, h in enumerate(hits, start=1)
                     if any(h["file"] == ev.file and quote_in_chunk(ev.quote, h["text"]) for ev in evs)),
                    None)
        if rank is None:
            return None
        worst = max(worst, rank)
    return worst


def retrieval_scores(rank: int | None) -> dict[str, float]:
    out = {f"hit@{k}": float(rank is not None and rank <= k) for k in KS}
    out["mrr"] = 1.0 / rank if rank else 0.0
    return out


def is_correct(item: EvalItem, answer: str) -> bool:
    a = normalize(answer)
    return any(normalize(m) in a for m in item.must_include if normalize(m))


def mean(xs: Iterable[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def round4(x: float | None) -> float | None:
    """A figure as reports show it: four decimals (None stays None)."""
    return round(x, 4) if x is not None else None


def percentile(xs: list[float | None], p: float) -> float | None:
    """numpy's (linearly interpolated) percentile of the values that are not None; None if none are."""
    xs = [x for x in xs if x is not None]
    return float(np.percentile(xs, p)) if xs else None


def slices(item: EvalItem) -> list[str]:
    """The groups an item is reported in."""
    out = ["overall", f"type:{item.type}", f"lang:{item.lang or 'unknown'}"]
    out += [f"tag:{t}" for t in item.tags]
    return out


def aggregate(items: list[EvalItem], per_item: dict[str, dict[str, float | None]],
              answerable_only: bool = True) -> dict[str, dict[str, float | int]]:
    """Mean of each score per slice. Retrieval scores are over answerable items only."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    for it in items:
        if answerable_only and it.type == "unanswerable":
            continue
        scores = per_item.get(it.id)
        if scores is None:
            continue
        for s in slices(it):
            counts[s] += 1
            for name, v in scores.items():
                if v is not None:
                    groups[s][name].append(float(v))
    out: dict[str, dict[str, float | int]] = {}
    for s in sorted(groups, key=_slice_order):
        out[s] = {"n": counts[s], **{k: round(sum(v) / len(v), 4) for k, v in groups[s].items() if v}}
    return out


def _slice_order(s: str) -> tuple[int, str]:
    return ({"overall": 0}.get(s, 1 if s.startswith("type:") else 2 if s.startswith("lang:") else 3), s)


def latency_summary(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95),
            "mean": mean(values), "median": median(values) if values else None}


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Agreement of two binary raters beyond chance: (p_o - p_e) / (1 - p_e). None when chance
    agreement is already total (both raters said the same one label throughout)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return None if pe == 1 else (po - pe) / (1 - pe)


def refusal_prf(unanswerable: list[bool], refused: list[bool]) -> dict[str, float | int | None]:
    """Refusal as a detector: positive = the tutor refused, truth = the item is unanswerable."""
    tp = sum(u and r for u, r in zip(unanswerable, refused))
    fp = sum(r and not u for u, r in zip(unanswerable, refused))
    fn = sum(u and not r for u, r in zip(unanswerable, refused))
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
