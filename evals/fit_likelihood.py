"""Fit the likelihood judge's logistic model on hand labels and report its cross-validated agreement.

The judge (tutor/evaluation/likelihood.py) turns a claim's token log-probabilities into FEATURES and
those into a verdict with COEF / INTERCEPT. This script is where those constants come from:

    python evals/fit_likelihood.py                       # both label files, the 0.5B default
    python evals/fit_likelihood.py --labels a.jsonl --labels b.jsonl --folds 5 --repeats 5

It reads every label's per-token log-probabilities through the judge itself (which caches them
on disk, so a refit costs seconds once they are read), then reports agreement
of models fitted on the other folds only — overall, on each labels file's own folds (the held-out
file is the figure to compare with other judges), and the "unsupported" recall on the invented
kinds — and last prints the constants fitted on all labels, to paste into likelihood.py.
Stratified folds keep each file's share of supported labels in every fold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tutor.config import Settings  # noqa: E402
from tutor.evaluation.judges import load_labels  # noqa: E402
from tutor.evaluation.likelihood import (FEATURES, LikelihoodJudge, copied_statement, features_of,  # noqa: E402
                                         missing_figure)
from tutor.evaluation.metrics import cohen_kappa  # noqa: E402

LABELS = [ROOT / "evals/datasets/judge_labels.jsonl", ROOT / "evals/datasets/judge_labels_heldout.jsonl"]
INVENTED = {"invented_number", "swapped_entity", "absent_fact"}


def logprobs(judge: LikelihoodJudge, rows: list[dict]) -> dict[str, tuple | None]:
    """Per-token log P(claim | passages) and log P(claim) for each label, through the judge (which
    keeps them in its on-disk cache, so a refit reads the model only for new labels)."""
    out = {}
    for i, row in enumerate(rows):
        ps = [p for p in row["passages"] if p.strip()]
        out[row["id"]] = judge.token_logprobs(row["claim"], ps) if ps else None
        if i % 50 == 0:
            print(f"  {i + 1}/{len(rows)} claims read", file=sys.stderr)
    return out


def fit(X: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression on standardised features (Newton's method; scikit-learn
    is no dependency of the project for one 6-feature model). Returns raw-scale (coef, intercept)."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.hstack([np.ones((len(X), 1)), (X - mu) / sd])
    w = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-Z @ w))
        g = Z.T @ (p - y) + reg * w
        H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg)
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = w[1:] / sd
    return coef, float(w[0] - coef @ mu)


def folds(y: np.ndarray, strata: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    assign = np.empty(len(y), int)
    for s in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == s))
        assign[idx] = np.arange(len(idx)) % k
    return [np.flatnonzero(assign == f) for f in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", action="append", type=Path, help="labels file (repeatable); default: both project files")
    ap.add_argument("--model", default=None, help="judge model (default: the configured judge_model)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--l2", type=float, default=1.0)
    a = ap.parse_args()
    settings = Settings().replace(judge_backend="llamacpp", **({"judge_model": a.model} if a.model else {}))
    judge = LikelihoodJudge(settings)
    files = a.labels or LABELS
    rows, src = [], []
    for i, f in enumerate(files):
        got = load_labels(f)
        rows += got
        src += [i] * len(got)
    src = np.asarray(src)
    lp = logprobs(judge, rows)
    y = np.asarray([bool(r["supported"]) for r in rows])
    veto, copied, X, ok = [], [], [], []
    for r in rows:
        ps = [p for p in r["passages"] if p.strip()]
        veto.append(bool(ps) and missing_figure(r["claim"], ps, r.get("question")))
        copied.append(not veto[-1] and copied_statement(r["claim"], ps))
        ok.append(lp[r["id"]] is not None and not copied[-1])  # a copy is decided before the model
        X.append(features_of(*lp[r["id"]], r["claim"], ps, r.get("question")) if ok[-1] else (0.0,) * len(FEATURES))
    veto, copied, X, ok = np.asarray(veto), np.asarray(copied), np.asarray(X), np.asarray(ok)
    kinds = np.asarray([r.get("kind") or "" for r in rows])

    kappas, per_file, inv = [], {i: [] for i in range(len(files))}, []
    for rep in range(a.repeats):
        pred = np.zeros(len(y), bool)
        for te in folds(y, src * 2 + y, a.folds, rep):
            tr = np.setdiff1d(np.flatnonzero(ok), te)
            coef, b = fit(X[tr], y[tr].astype(float), a.l2)
            pred[te] = copied[te] | ((X[te] @ coef + b >= 0) & ok[te] & ~veto[te])
        kappas.append(cohen_kappa(list(y), list(pred)))
        for i in per_file:
            m = src == i
            per_file[i].append(cohen_kappa(list(y[m]), list(pred[m])))
        m = np.isin(kinds, list(INVENTED)) & ~y
        inv.append(float((~pred[m]).mean()) if m.any() else float("nan"))
    print(f"{len(y)} labels, {int(y.sum())} supported; {a.folds}-fold CV × {a.repeats}, model {settings.judge.model}")
    print(f"copied statements (no model): {int(copied.sum())}, of them supported {int(y[copied].sum())}")
    print(f"cross-validated κ {np.mean(kappas):.3f} (± {np.std(kappas):.3f} over repeats)")
    for i, f in enumerate(files):
        print(f"  on {f.name}'s own folds: κ {np.mean(per_file[i]):.3f}")
    print(f"  'unsupported' recall on the invented kinds: {np.nanmean(inv):.3f}")
    coef, b = fit(X[ok], y[ok].astype(float), a.l2)
    print("fitted on all labels:")
    print(f"COEF = ({', '.join(f'{c:.4g}' for c in coef)})  # {', '.join(FEATURES)}")
    print(f"INTERCEPT = {b:.4g}")


if __name__ == "__main__":
    main()
