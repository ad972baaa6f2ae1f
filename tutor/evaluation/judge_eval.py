"""How far to trust a judge: its agreement with hand labels (evals/JUDGE_LABELS.md format).

Accuracy alone flatters a judge that says "supported" to everything on a set that is mostly
supported, so the numbers are Cohen's κ, precision / recall of "unsupported" (the verdict that
catches invented answers), the confusion counts, the same per language and per hard kind, and
the first disagreements to read. A judge with a continuous score (the LLM's yes/no log-odds) is
calibrated here: its threshold is fitted on k-1 folds and applied to the held-out fold, and only
that cross-validated agreement is reported — never the in-sample one.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

from .metrics import cohen_kappa, round4

REQUIRED = {"id": str, "claim": str, "passages": list, "supported": bool}
OPTIONAL = {"question": str, "lang": str, "kind": str, "source": str, "origin": str, "note": str}
# the kinds an invented answer takes: the judge must catch these (recall of "unsupported")
INVENTED_KINDS = ("invented_number", "swapped_entity", "absent_fact", "partial_compound")


class LabelsError(ValueError):
    """A labels file that cannot be read as JUDGE_LABELS.md describes."""


def check_labels(rows: list[dict], path: Path | str = "labels") -> list[dict]:
    """Validate rows read from a labels file; one clear message on the first bad row."""
    if not rows:
        raise LabelsError(f"{path}: no labels")
    seen: set[str] = set()
    for i, d in enumerate(rows, start=1):
        if not isinstance(d, dict):
            raise LabelsError(f"{path}: label {i} is not a JSON object")
        for key, typ in REQUIRED.items():
            if key not in d:
                raise LabelsError(f"{path}: label {i} ({d.get('id', '?')}) has no {key!r}")
            if not isinstance(d[key], typ):
                raise LabelsError(f"{path}: label {i} ({d.get('id', '?')}): {key!r} must be {typ.__name__}")
        if not all(isinstance(p, str) for p in d["passages"]):
            raise LabelsError(f"{path}: label {i} ({d['id']}): passages must be strings")
        for key, typ in OPTIONAL.items():
            if d.get(key) is not None and not isinstance(d[key], typ):
                raise LabelsError(f"{path}: label {i} ({d['id']}): {key!r} must be {typ.__name__}")
        if d["id"] in seen:
            raise LabelsError(f"{path}: duplicate id {d['id']!r}")
        seen.add(d["id"])
    return rows


def lang_of(d: dict) -> str:
    lang = (d.get("lang") or "").lower()
    if lang.startswith("zh"):
        return "zh"
    if lang:
        return lang
    return "zh" if any("\u3400" <= ch <= "\u9fff" for ch in d["claim"]) else "en"


def stats(truth: list[bool], pred: list[bool]) -> dict:
    """Accuracy, κ, confusion (positive = supported) and precision / recall of "unsupported"."""
    n = len(truth)
    tp = sum(t and p for t, p in zip(truth, pred))
    fp = sum(p and not t for t, p in zip(truth, pred))
    fn = sum(t and not p for t, p in zip(truth, pred))
    tn = n - tp - fp - fn
    prec = tn / (tn + fn) if tn + fn else None
    rec = tn / (tn + fp) if tn + fp else None
    return {"n": n, "accuracy": round4((tp + tn) / n) if n else None, "kappa": round4(cohen_kappa(truth, pred)),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "unsupported_precision": round4(prec), "unsupported_recall": round4(rec),
            "unsupported_f1": round4(2 * prec * rec / (prec + rec)) if prec and rec else (0.0 if prec is not None
                                                                                        and rec is not None else None)}


def report(labels: list[dict], pred: list[bool], seconds: float | None = None,
           why: Callable[[dict], str | None] | None = None, n_disagreements: int = 10) -> dict:
    """The agreement report of given verdicts (`pred`, one per label)."""
    truth = [bool(d["supported"]) for d in labels]
    out = stats(truth, pred)
    by_source: dict[str, list[bool]] = {}
    for d, t, p in zip(labels, truth, pred):
        by_source.setdefault(d.get("source") or "?", []).append(t == p)
    out["by_source"] = {s: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for s, v in by_source.items()}
    out["by_lang"] = _group(labels, truth, pred, lang_of)
    out["by_kind"] = _group(labels, truth, pred, lambda d: d.get("kind") or "unlabelled")
    inv = [i for i, d in enumerate(labels) if d.get("kind") in INVENTED_KINDS and not truth[i]]
    out["invented_unsupported_recall"] = round4(sum(not pred[i] for i in inv) / len(inv)) if inv else None
    out["invented_n"] = len(inv)
    out["ms_per_claim"] = round4(seconds * 1000 / len(labels)) if seconds is not None and labels else None
    dis = []
    for d, t, p in zip(labels, truth, pred):
        if t != p and len(dis) < n_disagreements:
            row = {"id": d.get("id"), "claim": d["claim"][:120], "label": t, "judge": p}
            if d.get("kind"):
                row["kind"] = d["kind"]
            if why is not None and (reason := why(d)):
                row["why"] = reason
            dis.append(row)
    out["disagreements"] = dis
    return out


def _group(labels, truth, pred, key) -> dict:
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(labels):
        groups.setdefault(key(d), []).append(i)
    out = {}
    for g, idx in sorted(groups.items()):
        s = stats([truth[i] for i in idx], [pred[i] for i in idx])
        if len({truth[i] for i in idx}) < 2:
            s["kappa"] = None  # one class only (e.g. every paraphrase is supported): κ says nothing
        out[g] = {k: s[k] for k in ("n", "accuracy", "kappa", "unsupported_recall", "tp", "fp", "fn", "tn")}
    return out


def run_judge(judge, labels: list[dict]) -> tuple[list[bool], float]:
    """The judge's verdicts on the labels, and the seconds they took."""
    t0 = time.perf_counter()
    pred = [judge.supported(d["claim"], list(d["passages"]), d.get("lang"), d.get("question")) for d in labels]
    return pred, time.perf_counter() - t0


# ---- calibration --------------------------------------------------------------------------------
def folds_of(labels: list[dict], k: int) -> list[int]:
    """A stable fold per label (hash of its id), stratified by label: rerunning gives the same split."""
    out = [0] * len(labels)
    for want in (True, False):
        idx = [i for i, d in enumerate(labels) if bool(d["supported"]) is want]
        idx.sort(key=lambda i: hashlib.sha1(str(labels[i]["id"]).encode()).hexdigest())
        for j, i in enumerate(idx):
            out[i] = j % k
    return out


def best_threshold(scores: list[float], truth: list[bool]) -> float:
    """The cut (supported iff score >= cut) with the best κ on these scores; ties → the middle."""
    cands = sorted(set(scores))
    cuts = [cands[0] - 1.0] + [(a + b) / 2 for a, b in zip(cands, cands[1:])] + [cands[-1] + 1.0]
    best: list[float] = []
    best_k = -2.0
    for c in cuts:
        k = cohen_kappa(truth, [s >= c for s in scores])
        k = -1.0 if k is None else k
        if k > best_k + 1e-12:
            best_k, best = k, [c]
        elif abs(k - best_k) <= 1e-12:
            best.append(c)
    return best[len(best) // 2]


def cross_validate(labels: list[dict], scores: list[float], k: int = 5) -> dict:
    """Fit the threshold on k-1 folds, predict the held-out fold; report the pooled held-out
    agreement and the threshold fitted on all labels (the one to ship)."""
    truth = [bool(d["supported"]) for d in labels]
    fold = folds_of(labels, k)
    pred = [False] * len(labels)
    cuts = []
    for f in range(k):
        train = [i for i in range(len(labels)) if fold[i] != f]
        test = [i for i in range(len(labels)) if fold[i] == f]
        if not test or not train:
            continue
        cut = best_threshold([scores[i] for i in train], [truth[i] for i in train])
        cuts.append(cut)
        for i in test:
            pred[i] = scores[i] >= cut
    return {"folds": k, "threshold": round4(best_threshold(scores, truth)),
            "fold_thresholds": [round4(c) for c in cuts], "pred": pred, **stats(truth, pred)}


def load(path: Path | str) -> list[dict]:
    from .judges import load_labels

    p = Path(path)
    if not p.is_file():
        raise LabelsError(f"labels file not found: {p}")
    try:
        rows = load_labels(p)
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise LabelsError(f"{p}: not JSON lines ({e})") from None
    except UnicodeDecodeError:
        raise LabelsError(f"{p}: not UTF-8 text") from None
    return check_labels(rows, p)




# ---- the command ---------------------------------------------------------------------------------
def evaluate(settings, name: str | None, labels: list[dict], calibrate: bool = False) -> dict:
    """`tutor eval judge`: the named judge's agreement with `labels`; with `calibrate`, its
    threshold fitted and the agreement cross-validated (judges with a score: llm)."""
    from .judges import agreement, make_judge

    judge = make_judge(settings, name)
    if calibrate and not hasattr(judge, "score"):
        raise ValueError(f"the {judge.name} judge has no score to calibrate (the llm judge does)")
    out: dict = {"judge": judge.describe()}
    out.update(agreement(judge, labels))
    out["judge"] = judge.describe()  # after the run: calls, fallbacks
    if calibrate:
        scores = [judge.score(d["claim"], d["passages"], d.get("lang"), d.get("question"))
                  if any(p.strip() for p in d["passages"]) else -1e9 for d in labels]
        cv = cross_validate(labels, scores)
        cv.pop("pred")
        out["cross_validated"] = cv
    return out


def agreement_md(out: dict) -> str:
    from .tables import fmt, md_table

    j = out["judge"]
    who = j["name"] + (f" ({j.get('backend')}/{j.get('model')}, {j.get('mode')})" if j.get("model") else "")
    parts = [f"## Judge {who} — {j['kind']} — on {out['n']} labels ({out.get('labels', '')})\n",
             md_table(["accuracy", "κ", "unsupported P", "unsupported R", "tp", "fp", "fn", "tn", "ms / claim"],
                      [[out["accuracy"], out["kappa"], out["unsupported_precision"], out["unsupported_recall"],
                        out["tp"], out["fp"], out["fn"], out["tn"], out.get("ms_per_claim")]]),
             "\n(positive = supported; P / R of “unsupported”: of the claims it rejected, how many the labels "
             "reject; of the claims the labels reject, how many it caught.)"]
    if j.get("cv_kappa") is not None:
        parts.append(f"\nIts model was fitted on the project's two label files (cross-validated κ {fmt(j['cv_kappa'])}): "
                     "on those files the agreement above is in-sample.")
    if j.get("fallback"):
        parts.append(f"\n**No log-probabilities** ({j['fallback']}): verdicts were read from the reply text.")
    for title, key, col in (("By language", "by_lang", "lang"), ("By kind", "by_kind", "kind")):
        groups = out.get(key) or {}
        if groups:
            parts += [f"\n### {title}\n", md_table([col, "n", "accuracy", "κ", "unsupported R", "tp", "fp", "fn", "tn"],
                                                 [[g, v["n"], v["accuracy"], v["kappa"], v["unsupported_recall"],
                                                   v["tp"], v["fp"], v["fn"], v["tn"]] for g, v in groups.items()])]
    if out.get("invented_n"):
        parts.append(f"\nInvented-claim kinds ({', '.join(INVENTED_KINDS)}): recall of “unsupported” "
                     f"{fmt(out['invented_unsupported_recall'])} on {out['invented_n']} unsupported claims.")
    cv = out.get("cross_validated")
    if cv:
        parts += [f"\n### Cross-validated ({cv['folds']} folds: threshold fitted on the others, applied to each)\n",
                  md_table(["accuracy", "κ", "unsupported P", "unsupported R", "tp", "fp", "fn", "tn", "threshold (all labels)"],
                           [[cv["accuracy"], cv["kappa"], cv["unsupported_precision"], cv["unsupported_recall"],
                             cv["tp"], cv["fp"], cv["fn"], cv["tn"], cv["threshold"]]])]
    dis = out.get("disagreements") or []
    if dis:
        parts.append("\n### First disagreements\n")
        for d in dis:
            kind = f" ({d['kind']})" if d.get("kind") else ""
            why = f" — {d['why']}" if d.get("why") else ""
            parts.append(f"- {d['id']}{kind}: label {fmt(d['label'])}, judge {fmt(d['judge'])}: “{d['claim']}”{why}")
    return "\n".join(parts) + "\n"
