"""Measure generated quiz questions on the real index: keys found in their sources, questions that
give their answer away, duplicates, kinds, how often the LLM's phrasing was kept, seconds per
question; and write a seeded sample for the hand check (is each answerable from its source alone?).

    python evals/quiz_bench.py [--llm] [--out evals/runs/quiz-bench] [--sample 30]

Topics: every learning-path topic, a few learner queries, and the notes as a whole (no topic),
five questions each with seed 0. With --llm the configured model phrases the questions
(Qwen2.5-Coder-0.5B on the CPU default); without, the templates stand.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tutor.api import Tutor  # noqa: E402
from tutor.config import load_settings  # noqa: E402
from tutor.quiz import gives_away  # noqa: E402
from tutor.text import normalise  # noqa: E402

QUERIES = ["ResNet 的残差连接", "DeepSeek-V3 的参数和训练成本", "Transformer 自注意力", "知识蒸馏", "Mixture of Experts",
           "LSTM 门控", "梯度下降", "CLIP 对比学习"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", action="store_true", help="let the configured model phrase the questions")
    ap.add_argument("--out", type=Path, default=Path("evals/runs/quiz-bench"))
    ap.add_argument("--sample", type=int, default=30)
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--topics", type=int, default=None, help="only the first N topics (a quick run)")
    args = ap.parse_args()

    tutor = Tutor(load_settings())
    tutor.search("warm up", k=1)
    if args.llm:
        tutor.llm  # noqa: B018 - load before timing
    topics = [str(t.order) for t in tutor.learning_path(related=False).topics] + QUERIES + [None]
    if args.topics:
        topics = topics[: args.topics]
    rows, per_quiz = [], []
    for topic in topics:
        t0 = time.perf_counter()
        quiz = tutor.quiz(topic, n=args.n, seed=0, use_llm=args.llm)
        secs = time.perf_counter() - t0
        qs = quiz.to_dict()["questions"]
        per_quiz.append({"topic": quiz.topic or "(notes)", "questions": len(qs), "seconds": round(secs, 2),
                         "duplicates": len(qs) - len({normalise(q["question"]) for q in qs})})
        rows += qs
        print(f"{quiz.topic or '(notes)'}: {len(qs)} questions in {secs:.1f}s", file=sys.stderr)
    n = len(rows)
    total_s = sum(q["seconds"] for q in per_quiz)
    report = {
        "llm": args.llm, "model": tutor.settings.llm.model if args.llm else None, "quizzes": len(per_quiz),
        "questions": n,
        "key_in_source": sum(q["answer_key"] in q["source"]["text"] for q in rows) / n,
        "gives_answer_away": sum(gives_away(q["question"], q["answer_key"]) for q in rows),
        "duplicates_within_quiz": sum(q["duplicates"] for q in per_quiz),
        "kinds": dict(Counter(q["kind"] for q in rows)),
        "phrased_by": dict(Counter(q["phrased_by"] for q in rows)),
        "seconds_per_question": round(total_s / n, 3),
        "short_quizzes": [q for q in per_quiz if q["questions"] < args.n],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "questions.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in rows),
                                             encoding="utf-8")
    sample = random.Random(0).sample(rows, min(args.sample, n))
    (args.out / "hand_check.jsonl").write_text(
        "".join(json.dumps({"id": q["id"], "kind": q["kind"], "question": q["question"], "answer_key": q["answer_key"],
                            "unit": q["unit"], "source": {k: q["source"][k] for k in ("path", "section", "start", "end")},
                            "answerable": None, "note": ""}, ensure_ascii=False) + "\n" for q in sample),
        encoding="utf-8")
    (args.out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
