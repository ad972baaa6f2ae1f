"""In-process vLLM answers an eval in ONE batch: the runner retrieves for every pending item
first, then hands all answerable prompts to `vllm.LLM.chat` at once, each with its own sampling.
No GPU here, so the vLLM engine is replaced at `VLLMLocal`'s seam by a recorder that replies from
the notes; everything else (index, embeddings, evidence, checks, scoring, resume) is real."""
from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from tutor.api import Tutor
from tutor.answer import Pending
from tutor.evaluation.answers import make_answer_row, make_batch_answer
from tutor.evaluation.judges import make_judge
from tutor.evaluation.runner import EvalOptions, run
from tutor.index import ingest
from tutor.llm.base import GenParams
from tutor.llm.vllm import VLLMLocal

REPLIES = {  # question marker → what the "model" says (sentences of the notes, cited)
    "ResNet-152": "ResNet-152 在 ImageNet 上的 top-5 错误率为 3.57%[1]。",
    "multi-head": "Multi-head attention runs several heads in parallel and concatenates them [1].",
    "MoE": "MoE 用门控网络为每个 token 选择 top-k 个专家[1]。",
}
ITEMS = [
    {"id": "v1", "question": "ResNet-152 在 ImageNet 上的 top-5 错误率是多少？", "type": "factoid", "lang": "zh",
     "answer": "3.57%", "must_include": ["3.57"],
     "evidence": [{"file": "resnet.md", "quote": "top-5 错误率为 3.57%", "hop": 1}]},
    {"id": "v2", "question": "What does multi-head attention do?", "type": "explain", "lang": "en",
     "answer": "Runs heads in parallel.", "must_include": ["parallel"],
     "evidence": [{"file": "attention.md", "quote": "Multi-head attention runs several heads in parallel", "hop": 1}]},
    {"id": "v3", "question": "今天北京的天气怎么样？", "type": "unanswerable", "lang": "zh",
     "answer": "NOT_IN_CORPUS", "must_include": [], "evidence": []},
    {"id": "v4", "question": "MoE 的门控网络做什么？", "type": "explain", "lang": "zh",
     "answer": "为每个 token 选择 top-k 个专家。", "must_include": ["专家"],
     "evidence": [{"file": "moe.txt", "quote": "MoE 用门控网络为每个 token 选择 top-k 个专家", "hop": 1}]},
]


@dataclass
class Sampling:  # the fields tutor passes to vllm.SamplingParams
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list | None = None
    logprobs: int | None = None


class RecordingEngine:
    """`vllm.LLM` at the seam: records each `chat` call and replies per conversation."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, object]] = []

    def chat(self, conversations, sampling_params, use_tqdm=True):
        self.calls.append((conversations, sampling_params))
        out = []
        for conv in conversations:
            user = conv[-1]["content"]  # the evidence may hold every note: match on the question
            question = next((it["question"] for it in ITEMS if it["question"] in user), "")
            text = next((r for key, r in REPLIES.items() if key in question), "NOT_IN_CORPUS")
            out.append(SimpleNamespace(outputs=[SimpleNamespace(text=text, token_ids=list(range(len(text) // 2)))]))
        return out


@pytest.fixture(scope="module")
def env(tmp_path_factory, base_settings, embedder, write_notes):
    root = tmp_path_factory.mktemp("vllm")
    corpus = write_notes(root / "corpus")
    s = base_settings.replace(corpus_dir=corpus, index_dir=root / "index", backend="vllm",
                              model="Qwen/Qwen2.5-7B-Instruct", judge="lexical")
    ingest(s, embedder=embedder)
    dataset = root / "d.jsonl"
    dataset.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ITEMS), encoding="utf-8")
    return root, s, dataset


def _tutor(s, engine) -> Tutor:
    t = Tutor(s)
    t._llm = VLLMLocal(s, engine=engine, sampling_params=Sampling)
    return t


def test_eval_hands_all_prompts_to_vllm_in_one_call(env):
    root, s, dataset = env
    engine = RecordingEngine()
    tutor = _tutor(s, engine)
    answerable = [it["id"] for it in ITEMS
                  if isinstance(p := tutor.prepare(it["question"]), Pending) and p.verdict.answerable]
    assert {"v1", "v2", "v4"} <= set(answerable) and "v3" not in answerable
    out = root / "run"
    opts = EvalOptions(dataset=dataset, out=out, concurrency=8, judge="lexical")
    report = run(tutor, opts, answer_row=make_answer_row(make_judge(s, "lexical")), batch_answer=make_batch_answer(make_judge(s, "lexical")))

    assert len(engine.calls) == 1, "one LLM.chat call for the whole eval"
    conversations, sampling = engine.calls[0]
    assert len(conversations) == len(answerable)
    assert isinstance(sampling, list) and len(sampling) == len(answerable)  # per-item sampling params
    assert all(sp.temperature == 0.0 and sp.max_tokens >= 16 for sp in sampling)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["v1", "v2", "v3", "v4"]  # item order, though declines came first
    by_id = {r["id"]: r for r in rows}
    for i in ("v1", "v2", "v4"):  # each reply went back to its own item
        assert by_id[i]["scores"]["correct"] is True, by_id[i]["answer"]
        assert by_id[i]["timings_ms"]["batch"] == len(answerable) and by_id[i]["backend"] == "vllm"
        assert by_id[i]["citations"]
    assert by_id["v3"]["refused"] is True and by_id["v3"]["scores"]["refused_ok"] is True
    assert report["answers"]["overall"]["n"] == 4

    # resume: a lost row is answered again, alone, in a batch of one
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    (out / "results.jsonl").write_text("\n".join(x for x in lines if '"id": "v2"' not in x) + "\n", encoding="utf-8")
    run(tutor, opts, answer_row=make_answer_row(make_judge(s, "lexical")), batch_answer=make_batch_answer(make_judge(s, "lexical")))
    assert len(engine.calls) == 2 and len(engine.calls[1][0]) == 1
    assert "multi-head" in engine.calls[1][0][0][-1]["content"]
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["v1", "v2", "v3", "v4"]


def test_generate_batch_sampling_and_reasoning(env):
    _, s, _ = env
    engine = RecordingEngine()
    r1 = VLLMLocal(s.replace(model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"), engine=engine, sampling_params=Sampling)
    engine.chat = lambda convs, sp, use_tqdm=True: (engine.calls.append((convs, sp)) or [  # type: ignore[method-assign]
        SimpleNamespace(outputs=[SimpleNamespace(text="想一想…</think>答案 [1]", token_ids=[1, 2, 3])]) for _ in convs])
    convs = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
    gens = r1.generate_batch(convs, [GenParams(max_tokens=8), GenParams(max_tokens=64, temperature=0.6)])
    assert [(g.text, g.reasoning, g.tokens) for g in gens] == [("答案 [1]", "想一想…", 3)] * 2
    assert [sp.max_tokens for sp in engine.calls[0][1]] == [8, 64]
    single = r1.generate_batch(convs)  # no params: the R1 defaults, one SamplingParams for all
    assert single and engine.calls[1][1].temperature == 0.6 and engine.calls[1][1].top_p == 0.95
    with pytest.raises(ValueError):
        r1.generate_batch(convs, [GenParams()])
