"""`tutor eval --baseline llamaindex`: llama-index's default pipeline (SentenceSplitter, FAISS,
the same e5 embedder, as_query_engine) over the same corpus and dataset, scored by the same code
and shown beside the tutor. Real FAISS, real embeddings, real HTTP to the llama.cpp server."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("llama_index.core")

from typer.testing import CliRunner  # noqa: E402

from tutor.api import Tutor  # noqa: E402
from tutor.cli import app  # noqa: E402
from tutor.evaluation import baseline as bl  # noqa: E402
from tutor.evaluation.answers import ANSWER_FIELDS  # noqa: E402
from tutor.evaluation.runner import EvalOptions, run  # noqa: E402
from tutor.index import ingest  # noqa: E402

ITEMS = [
    {"id": "b1", "question": "ResNet-152 在 ImageNet 上的 top-5 错误率是多少？", "type": "factoid", "lang": "zh",
     "answer": "3.57%", "must_include": ["3.57"],
     "evidence": [{"file": "resnet.md", "quote": "ResNet-152 在 ImageNet 上的 top-5 错误率为 3.57%", "hop": 1}]},
    {"id": "b2", "question": "What does multi-head attention do?", "type": "explain", "lang": "en",
     "answer": "Runs several heads in parallel and concatenates them.", "must_include": ["parallel"],
     "evidence": [{"file": "attention.md", "quote": "Multi-head attention runs several heads in parallel", "hop": 1}]},
    {"id": "b3", "question": "What GPU did the authors of the notes buy in 2023?", "type": "unanswerable",
     "lang": "en", "answer": "NOT_IN_CORPUS", "must_include": [], "evidence": []},
]


@pytest.fixture(scope="module")
def env(tmp_path_factory, base_settings, embedder, write_notes):
    """The three short notes: each is one default-sized node, so an answer is one LLM call."""
    root = tmp_path_factory.mktemp("baseline")
    corpus = write_notes(root / "corpus")
    s = base_settings.replace(corpus_dir=corpus, index_dir=root / "index", judge="lexical")
    ingest(s, embedder=embedder)
    dataset = root / "tiny.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ITEMS), encoding="utf-8")
    return root, s, dataset


def test_refusal_wording():
    assert bl.looks_refused("The context does not mention which GPU the authors bought.")
    assert bl.looks_refused("笔记中没有提到作者购买的 GPU。")
    assert bl.looks_refused("Empty Response")
    assert not bl.looks_refused("AlexNet was proposed by Alex Krizhevsky et al. in 2012.")


def test_cli_retrieval_baseline_beside_the_tutor(env, monkeypatch):
    root, s, dataset = env
    monkeypatch.chdir(root)
    for key in list(os.environ):
        if key.startswith("TUTOR_") and key != "TUTOR_HOME":
            monkeypatch.delenv(key)
    monkeypatch.setenv("TUTOR_CORPUS_DIR", str(s.corpus_dir))
    monkeypatch.setenv("TUTOR_INDEX_DIR", str(s.index_dir))
    out = root / "run"
    res = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--retrieval-only",
                                   "--baseline", "llamaindex", "--out", str(out)])
    assert res.exit_code == 0, res.output
    base = out / "baseline-llamaindex"
    rows = [json.loads(x) for x in (base / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    tutor_rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in tutor_rows] == ["b1", "b2", "b3"]
    assert set(tutor_rows[0]) <= set(rows[0])  # the same shape, fields only added
    assert all(r["mode"] == "llamaindex" and set(r["ranks"]) == {"llamaindex"} for r in rows)
    b1 = next(r for r in rows if r["id"] == "b1")
    assert b1["hits"][0]["file"] == "resnet.md" and "3.57%" in b1["hits"][0]["text"]
    assert b1["ranks"]["llamaindex"] == 1 and len(b1["hits"]) == 3  # one node per short note
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["baseline"]["pipeline"] == "llamaindex"
    assert rep["baseline"]["headline"]["retrieval hit@5"] is not None
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Beside the baseline: llamaindex" in md and "| retrieval hit@5 |" in md
    # the FAISS index was persisted beside the tutor's, by corpus fingerprint
    assert len(list((s.index_dir / "baselines").glob("llamaindex-*/default__vector_store.json"))) == 1
    cmp = CliRunner().invoke(app, ["eval", "compare", str(out), str(base)])
    assert cmp.exit_code == 0 and "retrieval hit@5" in cmp.output and "llamaindex" in cmp.output


@pytest.mark.slow
def test_baseline_answers_through_openai_like(env, llm_server):
    root, s, dataset = env
    # (on long notes llama-index packs the top-2 prompt by tiktoken counts, and SmolLM2's tokenizer
    # needs 2-3× as many for Chinese: past 2048 the server answers HTTP 400, recorded as the row's error)
    s = s.replace(backend="openai", base_url=llm_server.base_url, model=llm_server.model, max_tokens=24,
                  n_ctx=llm_server.n_ctx, timeout_s=600.0)
    index = bl.load_or_build_index(s)
    with bl.baseline_llm(s, root) as (llm, name):
        pipe = bl.LlamaIndexBaseline(index, llm, name, "lexical", s)
        opts = EvalOptions(dataset=dataset, out=root / "answers", judge="lexical",
                           pipeline=bl.signature(s, False))
        report = run(Tutor(s), opts, retrieval=pipe.retrieval_row, answer_row=pipe.make_answer_row())
    rows = [json.loads(x) for x in (root / "answers" / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["b1", "b2", "b3"]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert set(ANSWER_FIELDS) <= set(r) and isinstance(r["answer"], str)
        assert r["citations"] == [] and 1 <= len(r["sources"]) <= 2  # as_query_engine(): top 2, no citations
        assert r["timings_ms"]["total"] > 0 and "llamaindex" in r["backend"]
        assert set(r["scores"]) >= {"correct", "false_refusal", "refused_ok", "citation_recall"}
    assert report["answers"]["overall"]["n"] == 3
    assert report["signature"]["pipeline"] == "llamaindex" and "hit@5" in report["retrieval"]["llamaindex"]["overall"]
