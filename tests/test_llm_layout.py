"""The llm package's layout: `base` imports no backend, `make_llm` lives in the package, and
each backend decides once whether its model reasons (`LLM.reasoning`), which then sets the
sampling, the think splitting and the system prompt."""
from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from tutor.answer import Pending, prompt_for
from tutor.config import Settings
from tutor.llm import LLM, make_llm
from tutor.llm.params import GenParams
from tutor.llm.think import Delta

R1 = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"


def test_base_imports_no_backend():
    code = ("import sys, tutor.llm.base, tutor.llm; "
            "print(sorted(m for m in sys.modules if m.startswith('tutor.llm.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['tutor.llm.base', 'tutor.llm.params', 'tutor.llm.think']"


def test_openai_backend_decides_reasoning_from_the_served_name():
    assert make_llm(Settings().replace(backend="openai", model=R1)).reasoning
    assert not make_llm(Settings().replace(backend="openai", model="qwen2.5-coder-0.5b")).reasoning


def test_vllm_backend_decides_reasoning_at_construction():
    from tutor.llm.vllm import VLLMLocal

    assert VLLMLocal(Settings().replace(model=R1), engine=object(), sampling_params=dict).reasoning
    assert not VLLMLocal(Settings().replace(model="Qwen/Qwen2.5-7B-Instruct"), engine=object(), sampling_params=dict).reasoning


class _Fixed(LLM):
    backend, model = "fixed", "a-name-that-says-nothing"

    def __init__(self, reasoning: bool):
        self.reasoning = reasoning

    def stream(self, messages, params=None):
        yield Delta("ok")


def test_the_answer_prompt_follows_the_flag_not_the_name():
    s = Settings().replace(max_tokens=300)
    p = Pending("什么是残差连接？", "zh", [], [], SimpleNamespace(answerable=True, best=None), {})
    messages, params = prompt_for(p, _Fixed(reasoning=True), s)
    assert params == GenParams(300, 0.6, 0.95) and messages[0]["role"] != "system"
    messages, params = prompt_for(p, _Fixed(reasoning=False), s)
    assert params == GenParams(300, 0.0, 1.0) and messages[0]["role"] == "system"
