"""Cache retrieval hits and unit embeddings for dev + check once, so evidence selection and
answerability rules can be tuned offline (evals/evidence_sweep.py re-embeds every time).

    python evals/evidence_cache.py evals/datasets/dev.jsonl evals/datasets/check.jsonl --out /tmp/ev.pkl
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tutor.api import Tutor  # noqa: E402
from tutor.config import load_settings  # noqa: E402
from tutor.evaluation.dataset import load_dataset  # noqa: E402
from tutor.evidence import Selector, candidates  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    s = load_settings()
    t = Tutor(s)
    rows = []
    for path in a.datasets:
        for item in load_dataset(path):
            res = t.search(item.question, k=max(s.retrieval.top_k, s.answer.answer_k))
            hits = res.hits[: s.answer.answer_k]
            # as in production: only the best `max_dense` units by lexical score + rank are embedded
            sel = Selector(max_dense=s.answer.evidence_dense_units)
            q, lex_scored = sel.score(item.question, hits)
            cands = candidates(hits)
            dense = [0.0] * len(cands)
            if cands:
                order = sorted(range(len(cands)), key=lambda i: -lex_scored[i].score)[: sel.max_dense]
                qv = t.embedder.queries([item.question])[0]
                pv = t.embedder.passages([cands[i].prompt_text() for i in order])
                for i, v in zip(order, (pv @ qv).tolist()):
                    dense[i] = v
            rows.append({"set": path.stem, "item": item, "hits": hits, "similarity": res.similarity,
                         "dense": dense})
            print(item.id, len(cands), flush=True)
    a.out.write_bytes(pickle.dumps(rows))


if __name__ == "__main__":
    main()
