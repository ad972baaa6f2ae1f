"""A whole `tutor eval` run: SmolLM2 behind a real OpenAI-compatible server (llama.cpp), the
lexical judge, concurrent requests, resume after an interruption, and bad dataset lines."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tutor.api import Tutor
from tutor.config import Settings
from tutor.evaluation.answers import make_answer_row
from tutor.evaluation.dataset import DatasetError, load_dataset
from tutor.evaluation.judges import make_judge
from tutor.evaluation.runner import EvalOptions, run
from tutor.index import ingest

try:
    from tests.llm_server import LlamaServer
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from llm_server import LlamaServer  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
NOTE_A, NOTE_B = "000_f27da241194530d4.txt", "001_e443e33483cd28de.txt"
ITEMS = [
    {"id": "t1", "question": "Who proposed AlexNet and when?", "type": "factoid", "lang": "en",
     "answer": "Alex Krizhevsky et al., October 2012.", "must_include": ["Krizhevsky", "2012"],
     "evidence": [{"file": NOTE_A, "quote": "AlexNet 是 2012 年 10 月由 Alex Krizhevsky 等人提出", "hop": 1}]},
    {"id": "t2", "question": "Scaling Law 说明了什么？", "type": "explain", "lang": "zh",
     "answer": "模型越大、数据越多，AI 能力越强。", "must_include": ["模型越大", "数据越多"],
     "evidence": [{"file": NOTE_A, "quote": "在一定范围内，模型越大、数据越多，AI 的能力就越强", "hop": 1}]},
    {"id": "t3", "question": "学大模型需要哪些数学基础？", "type": "factoid", "lang": "zh",
     "answer": "线性代数、概率与统计、微积分。", "must_include": ["线性代数", "微积分"],
     "evidence": [{"file": NOTE_B, "quote": "**线性代数**：矩阵运算、特征值、张量等", "hop": 1}]},
    {"id": "t4", "question": "What GPU did the authors of the notes buy in 2023?", "type": "unanswerable",
     "lang": "en", "answer": "NOT_IN_CORPUS", "must_include": [], "evidence": []},
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _results(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def _answer_run(s: Settings, dataset: Path, out: Path) -> tuple[dict, list[dict]]:
    """Run (or resume) `dataset` into `out`, two questions at a time, lexical judge: (report, rows)."""
    opts = EvalOptions(dataset=dataset, out=out, concurrency=2, judge="lexical")
    judge = make_judge(s, "lexical")
    report = run(Tutor(s), opts, answer_row=make_answer_row(judge), judge=judge)
    return report, _results(out)


@pytest.fixture(scope="module")
def eval_env(tmp_path_factory, llm_server: LlamaServer):
    root = tmp_path_factory.mktemp("evalrun")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in (NOTE_A, NOTE_B):
        shutil.copy(REPO / "corpus" / "notes" / name, corpus / name)
    s = Settings().replace(corpus_dir=corpus, index_dir=root / "index", backend="openai", model=llm_server.model,
                 base_url=llm_server.base_url, max_tokens=32, relevance_threshold=0.0, judge="lexical",
                 timeout_s=600.0, n_ctx=2048)
    ingest(s)
    return root, s, _write(root / "tiny.jsonl", ITEMS)


@pytest.mark.slow
def test_full_eval_run_concurrent_then_resume(eval_env):
    root, s, dataset = eval_env
    out = root / "run"
    report, rows = _answer_run(s, dataset, out)
    assert [r["id"] for r in rows] == ["t1", "t2", "t3", "t4"]
    for r in rows:
        assert {"id", "question", "answer", "refused", "citations", "hits", "scores", "timings_ms"} <= set(r)
        assert len(r["hits"]) <= 10 and all({"rank", "file", "text", "chunk_id"} <= set(h) for h in r["hits"])
    assert report["judge"]["name"] == "lexical"
    assert "refusal" in report and "answers" in report
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Retrieval" in md and "lexical" in md
    assert any(p.suffix == ".png" and p.stat().st_size > 1000 for p in out.iterdir())

    # interruption: drop the last two results and cut a line in half, then resume
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40], encoding="utf-8")
    report2, rows2 = _answer_run(s, dataset, out)
    assert report2["resumed_items"] == 2
    assert [r["id"] for r in rows2] == ["t1", "t2", "t3", "t4"]
    assert rows2[:2] == rows[:2]


def test_bad_dataset_lines_name_the_line(eval_env):
    root, s, _ = eval_env
    bad = [ITEMS[0], {**ITEMS[1], "type": "trivia"}, {k: v for k, v in ITEMS[2].items() if k != "question"},
           {**ITEMS[0], "id": "t9", "evidence": [{"file": NOTE_A, "quote": "这句话不在语料里出现过的引用"}]}]
    path = _write(root / "bad.jsonl", bad)
    with pytest.raises(DatasetError) as e:
        load_dataset(path, s.corpus_dir)
    msg = str(e.value)
    assert "bad.jsonl:2" in msg and "trivia" in msg
    assert "bad.jsonl:3" in msg and "question" in msg
    assert "bad.jsonl:4" in msg


# ---- multi-turn conversations (evals/MULTITURN_SCHEMA.md) ------------------------------------------

CONVERSATIONS = [
    {"id": "c1", "turns": [
        {"question": "AlexNet 是谁提出的？", "must_include": ["Krizhevsky"], "lang": "zh",
         "evidence": [{"file": NOTE_A, "quote": "AlexNet 是 2012 年 10 月由 Alex Krizhevsky 等人提出", "hop": 1}]},
        {"question": "它有多少参数？", "must_include": ["6250万"], "lang": "zh", "tags": ["pronoun"],
         "evidence": [{"file": NOTE_A, "quote": "采用了 8 层神经网络，包括6250万参数", "hop": 1}]}]},
    {"id": "c2", "turns": [
        {"question": "Scaling Law 是哪一年提出的？"},
        {"question": "它说明了什么？", "must_include": ["模型越大"], "lang": "zh", "type": "explain",
         "evidence": [{"file": NOTE_A, "quote": "在一定范围内，模型越大、数据越多，AI 的能力就越强", "hop": 1}]}]},
    {"id": "c3", "turns": [
        {"question": "学大模型需要哪些数学基础？"},
        {"question": "What GPU did the authors of the notes buy in 2023?", "type": "unanswerable", "lang": "en",
         "must_include": [], "evidence": [], "tags": ["topic_change"]}]},
]


@pytest.mark.slow
def test_multiturn_eval_runs_conversations_with_history_then_resumes(eval_env):
    root, s, _ = eval_env
    dataset = _write(root / "conversations.jsonl", CONVERSATIONS)
    out = root / "mt-run"
    report, rows = _answer_run(s, dataset, out)
    assert [r["id"] for r in rows] == ["c1:1", "c1:2", "c2:2", "c3:2"]
    by_id = {r["id"]: r for r in rows}
    for r in rows:
        assert {"answer", "refused", "hits", "ranks", "scores", "standalone_question", "rewrite", "turn",
                "conversation", "history"} <= set(r)
    first, up = by_id["c1:1"], by_id["c1:2"]
    assert first["standalone_question"] == first["question"] and not first["followup"]
    assert up["followup"] and up["history"] == ["AlexNet 是谁提出的？"]
    assert up["rewrite"]["rule"] == "AlexNet 有多少参数？"  # the rule form, whatever the model said
    assert "AlexNet" in up["standalone_question"]
    assert "参数" in up["standalone_question"]  # the follow-up's own question survives
    assert by_id["c2:2"]["history"] == ["Scaling Law 是哪一年提出的？"]  # an unscored turn is still asked
    switch = by_id["c3:2"]
    assert switch["standalone_question"] == switch["question"] and switch["rewrite"]["rule"] is None
    mt = report["multiturn"]
    assert mt["conversations"] == 3 and mt["scored_turns"] == 4 and mt["followups"] == 3
    assert mt["rewrite"]["rewritten"] == 2 and mt["rewrite"]["model_asked"] == 2
    assert mt["rewrite"]["dropped_question"] == 0 and mt["rewrite"]["topic_change_rewritten"] == 0
    assert mt["followup"]["n"] == 2 and "hit@5" in mt["followup"]  # retrieval over answerable follow-ups
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Multi-turn" in md and "c1:2" in md

    # interruption in the middle of c1 (its second turn lost) and a cut last line: c1 runs again
    # whole (its follow-up needs its first answer), c2 is kept, c3 runs again
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "results.jsonl").write_text("\n".join([lines[0], lines[2]]) + "\n" + lines[3][:30], encoding="utf-8")
    report2, rows2 = _answer_run(s, dataset, out)
    assert report2["resumed_items"] == 1
    assert [r["id"] for r in rows2] == ["c1:1", "c1:2", "c2:2", "c3:2"]
    assert rows2[2] == rows[2]
    assert rows2[1]["history"] == ["AlexNet 是谁提出的？"]


@pytest.mark.slow
def test_multiturn_retrieval_only_uses_the_rule_form(eval_env):
    root, s, _ = eval_env
    dataset = _write(root / "conversations-ro.jsonl", CONVERSATIONS)
    out = root / "mt-ro"
    report = run(Tutor(s), EvalOptions(dataset=dataset, out=out, retrieval_only=True))
    rows = {r["id"]: r for r in _results(out)}
    assert rows["c1:2"]["standalone_question"] == "AlexNet 有多少参数？"
    assert rows["c1:2"]["rewrite"]["model"] is None and "answer" not in rows["c1:2"]
    assert rows["c1:2"]["ranks"]["bm25"] is not None  # the note is found through the topic
    assert report["multiturn"]["rewrite"]["model_asked"] == 0
