"""Evidence selection and answerability, measured without the LLM (fast; for tuning defaults).

For each item of the datasets: retrieve as `tutor ask` does, select evidence units, assess
answerability. Reports, per setting:
- evidence recall: answerable items whose selected units contain a must_include string (the
  fact reached the prompt), also when the top-k chunks contained it (the selection's own loss);
- declines: answerable items declined (false refusals) and unanswerable items declined;
- evidence size (tokens) and selection time.

    python evals/evidence_sweep.py evals/datasets/dev.jsonl evals/datasets/check.jsonl \
        [--coverage 0.2,0.34,0.5] [--budget 200,260,360] [--out evals/runs/evidence.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tutor.api import Tutor  # noqa: E402
from tutor.config import load_settings  # noqa: E402
from tutor.evaluation.dataset import load_dataset  # noqa: E402
from tutor.evidence import Selector, approx_tokens  # noqa: E402
from tutor.text import normalise  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--coverage", default="0.34")
    ap.add_argument("--budget", default="260")
    ap.add_argument("--dense", default="0.5")
    ap.add_argument("--units", type=int)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--show", action="store_true", help="print every declined/missed item")
    ap.add_argument("--cache", type=Path, help="hits + unit cosines from evals/evidence_cache.py (no model)")
    a = ap.parse_args()
    s = load_settings()
    searches = []
    if a.cache:
        import pickle
        from types import SimpleNamespace

        emb = None
        for r in pickle.loads(a.cache.read_bytes()):
            res = SimpleNamespace(hits=r["hits"], similarity=r["similarity"], dense=r["dense"])
            searches.append((r["set"], r["item"], res))
    else:
        tutor = Tutor(s)
        emb = tutor.embedder
        for path in a.datasets:
            for item in load_dataset(path):
                res = tutor.search(item.question, k=max(s.retrieval.top_k, s.answer.answer_k))
                searches.append((path.stem, item, res))
    rows = []
    for cov in [float(x) for x in a.coverage.split(",")]:  # noqa: C901
        for budget in [int(x) for x in a.budget.split(",")]:
            for dw in [float(x) for x in a.dense.split(",")]:
                sel = Selector(emb and (lambda q: emb.queries([q])[0]), emb and emb.passages, budget,
                               a.units or s.answer.evidence_units, dw)
                stats: dict[str, dict] = {}
                for name, item, res in searches:
                    st = stats.setdefault(name, {"answerable": 0, "unanswerable": 0, "recall": 0,
                                                 "chunk_recall": 0, "false_decline": 0, "declined_unans": 0,
                                                 "tokens": [], "ms": [], "misses": []})
                    hits = res.hits[: s.answer.answer_k]
                    gated = res.similarity is None or res.similarity < s.retrieval.relevance_threshold
                    t0 = time.perf_counter()
                    q, scored = sel.score(item.question, hits, getattr(res, "dense", None))
                    units = sel.select(scored)
                    verdict = sel.assess(q, scored, cov, s.answer.min_evidence_score)
                    st["ms"].append((time.perf_counter() - t0) * 1000)
                    st["tokens"].append(sum(approx_tokens(u.prompt_text()) for u in units))
                    declined = gated or not verdict.answerable
                    if item.type == "unanswerable":
                        st["unanswerable"] += 1
                        st["declined_unans"] += declined
                        if not declined:
                            st["misses"].append(f"ANSWERED {item.id} {item.question} | best: "
                                                f"{verdict.best.text[:80] if verdict.best else None}")
                        continue
                    st["answerable"] += 1
                    keys = [normalise(m) for m in item.must_include]
                    ev = normalise(" ".join(u.prompt_text() for u in units))
                    ch = normalise(" ".join(h.chunk.text for h in hits))
                    st["recall"] += any(k in ev for k in keys)
                    st["chunk_recall"] += any(k in ch for k in keys)
                    st["false_decline"] += declined
                    if declined:
                        st["misses"].append(f"DECLINED {item.id} ({'gate' if gated else verdict.reason}) "
                                            f"{item.question} | missing {verdict.missing}")
                    elif any(k in ch for k in keys) and not any(k in ev for k in keys):
                        st["misses"].append(f"LOST {item.id} {item.question}")
                for name, st in stats.items():
                    row = {"set": name, "coverage": cov, "budget": budget, "dense": dw,
                           "evidence_recall": round(st["recall"] / max(st["answerable"], 1), 3),
                           "chunk_recall": round(st["chunk_recall"] / max(st["answerable"], 1), 3),
                           "false_refusal": round(st["false_decline"] / max(st["answerable"], 1), 3),
                           "unanswerable_declined": round(st["declined_unans"] / max(st["unanswerable"], 1), 3)
                           if st["unanswerable"] else None,
                           "tokens_p50": statistics.median(st["tokens"]),
                           "select_ms_p50": round(statistics.median(st["ms"]), 1),
                           "n": st["answerable"] + st["unanswerable"]}
                    rows.append(row)
                    print(json.dumps(row, ensure_ascii=False))
                    if a.show:
                        for m in st["misses"]:
                            print("   ", m)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
