"""ThinkSplitter, reasoning-model detection and default sampling parameters."""
from __future__ import annotations

import pytest

from tutor.config import Settings
from tutor.llm.params import GenParams, default_params, is_reasoning_model
from tutor.llm.think import Delta, ThinkSplitter, repair_late_close, split_think


def run(chunks: list[str], in_think: bool = False) -> tuple[str, str, list[Delta]]:
    sp = ThinkSplitter(in_think)
    deltas = [sp.feed(c) for c in chunks] + [sp.finish()]
    return ("".join(d.text for d in deltas), "".join(d.reasoning for d in deltas),
            [d for d in deltas if d])


# (raw model output, in_think, expected answer, expected reasoning)
CASES = [
    ("The answer is 42.", False, "The answer is 42.", ""),
    ("<think>Let me see.\nSix times seven.</think>\n\nThe answer is 42.", False,
     "The answer is 42.", "Let me see.\nSix times seven."),
    ("\n <think>\nhmm\n</think>  42", False, "42", "hmm"),
    ("<think></think>42", False, "42", ""),
    ("<think>\n\n</think>\n\n42", False, "42", ""),  # Qwen3 with thinking switched off
    # R1 distill: the chat template already opened the block
    ("Six times seven.\n</think>\n\nThe answer is 42.", True, "The answer is 42.",
     "Six times seven."),
    ("<think>\nSix times seven.</think>42", True, "42", "Six times seven."),  # older template
    # unclosed think block at the end (e.g. max_tokens hit while thinking)
    ("<think>I am still thinking about", False, "", "I am still thinking about"),
    ("still thinking", True, "", "still thinking"),
    # tags quoted inside an answer stay in the answer
    ("R1 wraps reasoning in <think> and </think> tags.", False,
     "R1 wraps reasoning in <think> and </think> tags.", ""),
    ("<think>r</think>Use <think>…</think> tags.", False, "Use <think>…</think> tags.", "r"),
    # near-misses of tags are text
    ("<thinking>x</thinking>", False, "<thinking>x</thinking>", ""),
    ("<thi", False, "<thi", ""),
    ("<think>a </thin", False, "", "a </thin"),
    ("a < b and c </ d", True, "", "a < b and c </ d"),
    # whitespace inside each part is kept, around them trimmed
    ("<think>  a\n\n  b  </think>\n\n  x\n\ny  \n", False, "x\n\ny", "a\n\n  b"),
    ("   \n  ", False, "", ""),
    ("", True, "", ""),
    ("中文<think>不是</think>答案", False, "中文<think>不是</think>答案", ""),
    ("<think>想一想</think>答案是四十二。", False, "答案是四十二。", "想一想"),
]


@pytest.mark.parametrize("raw,in_think,answer,reasoning", CASES)
def test_whole(raw: str, in_think: bool, answer: str, reasoning: str) -> None:
    text, think, _ = run([raw], in_think)
    assert (text, think) == (answer, reasoning)


@pytest.mark.parametrize("raw,in_think,answer,reasoning", CASES)
def test_char_by_char(raw: str, in_think: bool, answer: str, reasoning: str) -> None:
    text, think, _ = run(list(raw), in_think)
    assert (text, think) == (answer, reasoning)


@pytest.mark.parametrize("raw,in_think,answer,reasoning", CASES)
def test_every_two_and_three_way_split(raw: str, in_think: bool, answer: str,
                                       reasoning: str) -> None:
    n = len(raw)
    for i in range(n + 1):
        assert run([raw[:i], raw[i:]], in_think)[:2] == (answer, reasoning), i
        for j in range(i, min(n, i + 9) + 1):  # tags are ≤ 8 chars
            assert run([raw[:i], raw[i:j], raw[j:]], in_think)[:2] == (answer, reasoning), (i, j)


def test_streams_incrementally_and_holds_only_tag_prefixes() -> None:
    sp = ThinkSplitter()
    assert sp.feed("<thi") == Delta()          # could be a tag: held
    assert sp.feed("nk>Hmm") == Delta(reasoning="Hmm")
    assert sp.feed(", ok </th") == Delta(reasoning=", ok")  # trailing blank and tag prefix held
    assert sp.feed("ink>\n\nYes") == Delta(text="Yes")
    assert sp.feed(" it is") == Delta(text=" it is")
    assert sp.feed(" ") == Delta()              # trailing blank held …
    assert sp.feed("true.") == Delta(text=" true.")  # … and released with the next text
    assert sp.finish() == Delta()


def test_plain_answer_is_not_delayed() -> None:
    sp = ThinkSplitter()
    assert sp.feed("Hello") == Delta(text="Hello")
    assert sp.feed(" <think>") == Delta(text=" <think>")  # not at the start: literal text


def test_answer_only_when_server_splits_reasoning() -> None:
    sp = ThinkSplitter(in_think=True)  # an R1 model, but vLLM's parser sent the reasoning apart
    sp.answer_only()
    assert sp.feed("\n\nThe answer") == Delta(text="The answer")
    assert sp.finish() == Delta()


def test_late_close_repaired_for_unrecognised_reasoning_model() -> None:
    # streaming cannot take back text, but the final split can
    text, think, _ = run(["Thinking hard.</think>", "\n\n42"], in_think=False)
    assert text == "Thinking hard.</think>\n\n42" and think == ""
    assert repair_late_close(text, think) == ("42", "Thinking hard.")
    assert split_think("Thinking hard.</think>\n\n42") == ("42", "Thinking hard.")
    # a quoted pair, or reasoning already found, is left alone
    assert repair_late_close("use <think>x</think> tags", "") == ("use <think>x</think> tags", "")
    assert repair_late_close("a</think>b", "r") == ("a</think>b", "r")


@pytest.mark.parametrize("name", [
    "deepseek-r1", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Llama-8B",
    "/models/deepseek-r1-distill-qwen-1.5b-q4_k_m.gguf", "deepseek-r1:7b", "Qwen/QwQ-32B",
    "qwq", "deepseek-reasoner", "my-r1-distill", "R1",
])
def test_reasoning_models(name: str) -> None:
    assert is_reasoning_model(name)


@pytest.mark.parametrize("name", [
    "qwen2.5-coder-0.5b", "smollm2-135m", "Qwen/Qwen2.5-7B-Instruct", "default", "",
    "gpt-4o-mini", "llama-3.1-8b", "r10-model", "mr1x", "deepseek-v3", "/models/r1x/model.gguf",
])
def test_ordinary_models(name: str) -> None:
    assert not is_reasoning_model(name)


def test_default_params() -> None:
    s = Settings().replace(max_tokens=300)
    assert default_params("qwen2.5-coder-0.5b", s) == GenParams(300, 0.0, 1.0)
    assert default_params("DeepSeek-R1-Distill-Qwen-7B", s) == GenParams(300, 0.6, 0.95)
    s = Settings().replace(temperature=0.2, top_p=0.9)
    assert default_params("DeepSeek-R1-Distill-Qwen-7B", s) == GenParams(512, 0.2, 0.9)
    assert default_params("smollm2-135m", Settings().replace(temperature=0.0)).temperature == 0.0
    assert default_params("qwq", Settings().replace(top_p=0.5)) == GenParams(512, 0.6, 0.5)
