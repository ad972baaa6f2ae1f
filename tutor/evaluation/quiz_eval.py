"""`tutor eval --quiz FILE`: how often the quiz grader agrees with hand verdicts.

Three classes (correct / partial / wrong): accuracy, Cohen's κ, the confusion counts, the same per
`split` (labels tuned on vs the held-aside check set), `kind` and `lang`, and the disagreements.
Format: evals/QUIZ_SCHEMA.md.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from ..grading import grade
from .. import jsonl
from ..errors import DatasetError

VERDICTS = ("correct", "partial", "wrong")
REQUIRED = ("id", "kind", "question", "answer_key", "answer", "verdict")


def load(path: Path | str) -> list[dict]:
    rows = []
    seen: set[str] = set()

    def bad(problem: str) -> DatasetError:
        return DatasetError(str(path), [f"{path}: {problem}"])

    for n, row in enumerate(jsonl.read(path), start=1):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise bad(f"label {n}: missing {', '.join(missing)}")
        if row["verdict"] not in VERDICTS:
            raise bad(f"label {n}: verdict must be one of {', '.join(VERDICTS)}")
        if row["kind"] not in ("recall", "cloze", "explain"):
            raise bad(f"label {n}: kind must be recall, cloze or explain")
        if row["id"] in seen:
            raise bad(f"label {n}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        raise bad("no labels")
    return rows


def kappa(truth: list[str], pred: list[str]) -> float | None:
    """Cohen's κ over any number of classes; None when chance agreement is total."""
    n = len(truth)
    if not n:
        return None
    po = sum(t == p for t, p in zip(truth, pred)) / n
    ct, cp = Counter(truth), Counter(pred)
    pe = sum(ct[c] * cp[c] for c in set(ct) | set(cp)) / (n * n)
    return None if pe == 1 else (po - pe) / (1 - pe)


def stats(truth: list[str], pred: list[str]) -> dict:
    n = len(truth)
    k = kappa(truth, pred)
    return {"n": n, "accuracy": round(sum(t == p for t, p in zip(truth, pred)) / n, 3) if n else None,
            "kappa": None if k is None else round(k, 3),
            "confusion": {t: {p: sum(1 for a, b in zip(truth, pred) if a == t and b == p) for p in VERDICTS}
                          for t in VERDICTS}}


def with_context(rows: list[dict], corpus_dir: Path | None) -> list[dict]:
    """Each row with its source note's text as `context` (where the note spells out the key's
    other names), as a quiz question made by `tutor quiz` carries its `aliases`."""
    if corpus_dir is None:
        return rows
    out, cache = [], {}
    for r in rows:
        rel = (r.get("source") or {}).get("path")
        if rel and "context" not in r:
            if rel not in cache:
                p = Path(corpus_dir) / rel
                cache[rel] = p.read_text(encoding="utf-8") if p.is_file() and p.suffix != ".pdf" else ""
            r = {**r, "context": cache[rel]}
        out.append(r)
    return out


def evaluate(rows: list[dict], llm=None, corpus_dir: Path | None = None) -> dict:
    rows = with_context(rows, corpus_dir)
    t0 = time.perf_counter()
    graded = [grade(r, r["answer"], llm=llm) for r in rows]
    secs = time.perf_counter() - t0
    truth = [r["verdict"] for r in rows]
    pred = [g.verdict for g in graded]
    out = {**stats(truth, pred), "ms_per_answer": round(1000 * secs / len(rows), 2)}
    for field in ("split", "kind", "lang"):
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(str(r.get(field, "-")), []).append(i)
        out[f"by_{field}"] = {g: {k: v for k, v in stats([truth[i] for i in ix], [pred[i] for i in ix]).items()
                                  if k != "confusion"} for g, ix in sorted(groups.items())}
    out["decided_by"] = dict(Counter(g.decided_by for g in graded))
    out["disagreements"] = [{"id": r["id"], "answer": r["answer"], "label": t, "grader": p,
                             "missing": g.missing}
                            for r, g, t, p in zip(rows, graded, truth, pred) if t != p]
    return out


def report_md(out: dict) -> str:
    lines = [f"**quiz grader vs hand verdicts** ({out['n']} answers): accuracy {out['accuracy']}, "
             f"κ {out['kappa']}, {out['ms_per_answer']} ms/answer, decided by {out['decided_by']}", ""]
    for field in ("split", "kind", "lang"):
        lines.append(f"| {field} | n | accuracy | κ |")
        lines.append("|---|---:|---:|---:|")
        for g, s in out[f"by_{field}"].items():
            lines.append(f"| {g} | {s['n']} | {s['accuracy']} | {s['kappa']} |")
        lines.append("")
    lines.append("| label \\ grader | " + " | ".join(VERDICTS) + " |")
    lines.append("|---|" + "---:|" * len(VERDICTS))
    for t in VERDICTS:
        lines.append(f"| {t} | " + " | ".join(str(out["confusion"][t][p]) for p in VERDICTS) + " |")
    if out["disagreements"]:
        lines += ["", "disagreements:", ""]
        lines += [f"- `{d['id']}` {d['answer']!r}: label {d['label']}, grader {d['grader']}"
                  for d in out["disagreements"]]
    return "\n".join(lines)
