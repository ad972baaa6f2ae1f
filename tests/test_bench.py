"""`tutor bench` end to end on CPU: it starts llama.cpp's OpenAI-compatible server for the shipped
SmolLM2 itself (`--serve smollm2-135m`, as it starts `vllm serve` on a GPU box), answers a few
items at concurrency 1 and 4 through the real pipeline, prints each level and writes its report."""
from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from tutor.cli import app
from tutor.evaluation.bench import level_result
from tutor.evaluation.dataset import EvalItem
from tutor.index import ingest

ITEMS = [
    {"id": "q1", "question": "ResNet-152 在 ImageNet 上的 top-5 错误率是多少？", "type": "factoid", "lang": "zh",
     "answer": "3.57%", "must_include": ["3.57"],
     "evidence": [{"file": "resnet.md", "quote": "top-5 错误率为 3.57%", "hop": 1}]},
    {"id": "q2", "question": "What does multi-head attention do?", "type": "explain", "lang": "en",
     "answer": "Runs heads in parallel.", "must_include": ["parallel"],
     "evidence": [{"file": "attention.md", "quote": "Multi-head attention runs several heads in parallel", "hop": 1}]},
    {"id": "q3", "question": "MoE 的门控网络做什么？", "type": "explain", "lang": "zh",
     "answer": "为每个 token 选择 top-k 个专家。", "must_include": ["专家"],
     "evidence": [{"file": "moe.txt", "quote": "MoE 用门控网络为每个 token 选择 top-k 个专家", "hop": 1}]},
]


@pytest.mark.slow
def test_bench_serves_smollm2_and_measures_two_levels(tmp_path, monkeypatch, base_settings, embedder, write_notes):
    corpus = write_notes(tmp_path / "corpus")
    s = base_settings.replace(corpus_dir=corpus, index_dir=tmp_path / "index")
    ingest(s, embedder=embedder)
    dataset = tmp_path / "d.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ITEMS), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("TUTOR_") and key != "TUTOR_HOME":
            monkeypatch.delenv(key)
    for key, value in {"CORPUS_DIR": corpus, "INDEX_DIR": tmp_path / "index", "N_CTX": 2048,
                       "RELEVANCE_THRESHOLD": 0.0, "TIMEOUT_S": 600}.items():
        monkeypatch.setenv(f"TUTOR_{key}", str(value))
    out = tmp_path / "bench"
    res = CliRunner().invoke(app, ["bench", "--dataset", str(dataset), "--serve", "smollm2-135m",
                                   "--concurrency", "1,4", "--serial-limit", "2", "--max-tokens", "16",
                                   "--judge", "lexical", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "c=1: 2 items" in res.output and "c=4: 3 items" in res.output  # printed as each level ends
    report = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert report["info"]["server"] == "llama.cpp" and report["info"]["model"] == "smollm2-135m"
    assert [lv["concurrency"] for lv in report["levels"]] == [1, 4]
    for lv in report["levels"]:
        assert lv["errors"] == 0 and lv["answers_per_s"] > 0
        if lv["generated"]:
            assert lv["output_tokens"] > 0 and lv["output_tokens_per_s"] > 0
            assert 0 < lv["ttft_ms_p50"] <= lv["ttft_ms_p95"] and lv["ttft_ms_p50"] < lv["e2e_ms_p95"]
            assert lv["reasoning_tokens"] == 0 and lv["answer_tokens"] == lv["output_tokens"]
        assert lv["metrics"]["n"] == lv["items"] and "correct" in lv["metrics"]
    assert sum(lv["generated"] for lv in report["levels"]) > 0, "SmolLM2 wrote no answer at all"
    rows = [json.loads(x) for x in (out / "results-c4.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and all("scores" in r for r in rows)
    md = (out / "bench.md").read_text(encoding="utf-8")
    assert "| concurrency |" in md and "llama.cpp" in md
    assert "Uvicorn running" in (out / "server.log").read_text(errors="replace")


def test_level_figures_from_rows():
    items = [EvalItem(r["id"], r["question"], r["type"], r["answer"], r["must_include"], [], r["lang"], [], None, [])
             for r in ITEMS]
    rows = [{"id": "q1", "timings_ms": {"first_token": 100.0, "total": 900.0, "tokens": 40, "reasoning_tokens": 30},
             "scores": {"correct": True}},
            {"id": "q2", "timings_ms": {"first_token": 300.0, "total": 1500.0, "tokens": 20, "reasoning_tokens": 0},
             "scores": {"correct": False}},
            {"id": "q3", "timings_ms": {"total": 50.0}, "refused": True, "scores": {"correct": False}}]
    r = level_result(8, items, rows, wall_s=2.0, gpu_peak=None)
    assert (r.answers_per_s, r.generated, r.output_tokens, r.output_tokens_per_s) == (1.5, 2, 60, 30.0)
    assert (r.reasoning_tokens, r.answer_tokens) == (30, 30)
    assert r.ttft_ms_p50 == 200.0 and r.e2e_ms_p50 == 900.0 and r.metrics["correct"] == pytest.approx(1 / 3, abs=1e-3)


def test_vllm_command_adds_the_reasoning_parser_for_r1_only():
    from tutor.llm.launch import is_gguf, vllm_command

    r1 = vllm_command("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 8001, None)
    assert r1[:3] == ["vllm", "serve", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"]
    assert r1[r1.index("--reasoning-parser") + 1] == "deepseek_r1"
    assert "--reasoning-parser" not in vllm_command("Qwen/Qwen2.5-7B-Instruct", 8000, None)
    given = vllm_command("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", 8001, None, ["--reasoning-parser=qwen3"])
    assert [a for a in given if a.startswith("--reasoning-parser")] == ["--reasoning-parser=qwen3"]
    assert is_gguf("smollm2-135m") and is_gguf("/models/x.GGUF") and not is_gguf("Qwen/Qwen2.5-7B-Instruct")
