"""The OpenAI-compatible backend against a real llama-cpp-python server (SmolLM2-135M)."""
from __future__ import annotations

import time

import pytest
from openai.types.chat.chat_completion_chunk import ChoiceDelta

from tutor.config import Settings
from tutor.llm import Delta, GenParams, LLMError, make_llm
from tutor.llm.openai_compat import OpenAICompatLLM, _reasoning_of

try:
    from tests.llm_server import LlamaServer, free_port
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from llm_server import LlamaServer, free_port  # type: ignore[no-redef]

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
SHORT = GenParams(max_tokens=16)


def settings_for(server: LlamaServer, **kw: object) -> Settings:
    base = dict(backend="openai", model=server.model, base_url=server.base_url,
                timeout_s=60.0, retries=0)
    return Settings().replace(**{**base, **kw})  # type: ignore[arg-type]


def test_stream(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server))
    assert isinstance(llm, OpenAICompatLLM) and llm.backend == "openai"
    deltas = list(llm.stream(HELLO, SHORT))
    assert len(deltas) > 1, "expected several streamed pieces"
    assert all(isinstance(d, Delta) and d for d in deltas)
    assert "".join(d.text for d in deltas).strip()
    assert llm.served == [llm_server.model]
    assert llm.context_window is None  # llama-cpp-python's /v1/models has no max_model_len
    llm.close()


def test_complete_and_defaults(llm_server: LlamaServer) -> None:
    with make_llm(settings_for(llm_server, max_tokens=8)) as llm:
        text, reasoning = llm.complete(HELLO)  # params=None: model defaults (greedy, 8 tokens)
        assert text.strip() and reasoning == ""
        again, _ = llm.complete(HELLO)
        assert again == text  # temperature 0 is deterministic


def test_default_model_name_picks_the_only_served_model(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server), model="default")
    llm.check()
    assert llm.model == llm_server.model


def test_wrong_model_name_lists_served_models(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server, model="no-such-model"))
    with pytest.raises(LLMError) as e:
        llm.complete(HELLO, SHORT)
    msg = str(e.value)
    assert "no-such-model" in msg and llm_server.model in msg and "\n" not in msg


def test_server_down_fails_fast_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    llm = make_llm(Settings().replace(backend="openai", model="x", base_url=url, retries=1, timeout_s=2))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="cannot reach the LLM server") as e:
        llm.complete(HELLO, SHORT)
    assert url in str(e.value) and "2×" in str(e.value)
    assert time.monotonic() - t0 < 5


def test_tiny_timeout(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server, timeout_s=0.001, retries=2))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match=r"within 0\.001 s"):
        llm.complete(HELLO, SHORT)
    assert time.monotonic() - t0 < 2  # timeouts are not retried


def test_timeout_while_the_model_works(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server, timeout_s=0.05))
    llm.check()  # /v1/models answers within milliseconds
    prompt = [{"role": "user", "content": "Summarise: " + "the cat sat on the mat. " * 40}]
    with pytest.raises(LLMError, match=r"within 0\.05 s"):
        llm.complete(prompt, SHORT)  # ~300 prompt tokens take longer than that to read in


def test_context_overflow(llm_server: LlamaServer) -> None:
    llm = make_llm(settings_for(llm_server))
    huge = [{"role": "user", "content": "word " * (3 * llm_server.n_ctx)}]
    with pytest.raises(LLMError, match="too long for the context") as e:
        llm.complete(huge, SHORT)
    assert "\n" not in str(e.value)
    # the server is still fine afterwards
    assert llm.complete(HELLO, SHORT)[0].strip()


def test_reasoning_fields_of_vllm_deltas() -> None:
    # real openai types as vLLM's reasoning parsers fill them (old and new field name)
    assert _reasoning_of(ChoiceDelta(content=None, reasoning_content="hmm")) == "hmm"  # type: ignore[call-arg]
    assert _reasoning_of(ChoiceDelta(content=None, reasoning="hm")) == "hm"  # type: ignore[call-arg]
    assert _reasoning_of(ChoiceDelta(content="answer")) == ""
