"""The in-process llama.cpp backend on SmolLM2-135M."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from tutor.config import Settings
from tutor.llm import LLM, Delta, GenParams, LLMError, make_llm
from tutor.llm.llamacpp import LlamaCppLLM

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
SHORT = GenParams(max_tokens=16)


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLM]:
    settings = Settings().replace(backend="llamacpp", model="smollm2-135m", n_ctx=512,
                        home=tmp_path_factory.mktemp("home"))
    seen: list[str] = []
    model = make_llm(settings, progress=seen.append)
    assert seen and "SmolLM2" in seen[-1]
    yield model
    model.close()


def test_streams_text(llm: LLM) -> None:
    assert isinstance(llm, LlamaCppLLM) and llm.backend == "llamacpp"
    assert llm.context_window == 512
    deltas = list(llm.stream(HELLO, SHORT))
    assert len(deltas) > 1 and all(isinstance(d, Delta) and d for d in deltas)
    text = "".join(d.text for d in deltas)
    assert text.strip()
    assert llm.complete(HELLO, SHORT) == (text, "")  # greedy: same reply again


def test_two_threads_are_serialised(llm: LLM) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            results[i] = llm.complete([{"role": "user", "content": f"Count to {i + 3}."}], SHORT)[0]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 2 and all(r.strip() for r in results.values())
    # each thread got the reply it would have got alone
    assert results[0] == llm.complete([{"role": "user", "content": "Count to 3."}], SHORT)[0]


def test_a_system_prompt_switched_back_to_reads_from_its_snapshot(llm: LLM) -> None:
    """zh, en, zh: the third call restores the zh system prompt's KV snapshot instead of reading
    it again, and answers exactly as it would have with no English question in between."""
    zh = {"role": "system", "content": "你是学习助教。只根据资料，用中文简洁地回答问题，在句末标注来源编号。"}
    en = {"role": "system", "content": "You are a study tutor. Answer briefly from the sources only, citing [1]."}
    first = [zh, {"role": "user", "content": "什么是残差连接？"}]
    third = [zh, {"role": "user", "content": "什么是注意力机制？"}]
    settings = Settings().replace(backend="llamacpp", model="smollm2-135m", n_ctx=512,
                                  home=llm.settings.paths.home)
    switched, direct = make_llm(settings), make_llm(settings)
    restored: list[str] = []
    real = switched._restore

    def spy(head: str, messages) -> None:
        restored.append(head)
        real(head, messages)

    switched._restore = spy  # type: ignore[method-assign]
    try:
        switched.complete(first, SHORT)
        switched.complete([en, {"role": "user", "content": "What is dropout?"}], SHORT)
        got = switched.complete(third, SHORT)
        assert restored == [zh["content"]] and set(switched._heads) == {zh["content"], en["content"]}
        direct.complete(first, SHORT)
        assert direct.complete(third, SHORT) == got
        # the same prompt again, after another: read afresh, as a repeated question always is
        switched.complete([en, {"role": "user", "content": "What is dropout?"}], SHORT)
        assert switched.complete(third, SHORT) == direct.complete(third, SHORT)
    finally:
        switched.close()
        direct.close()


def test_abandoned_stream_releases_the_model(llm: LLM) -> None:
    gen = llm.stream(HELLO, GenParams(max_tokens=32))
    next(gen)
    gen.close()
    assert llm.complete(HELLO, GenParams(max_tokens=4))[0]


def test_context_overflow(llm: LLM) -> None:
    huge = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(LLMError, match="too long for the context") as e:
        llm.complete(huge, SHORT)
    assert "512" in str(e.value) and "\n" not in str(e.value)
    assert llm.complete(HELLO, GenParams(max_tokens=4))[0]  # still usable


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="neither a preset"):
        make_llm(Settings().replace(model=str(tmp_path / "nope.gguf"), home=tmp_path))


def test_unknown_backend() -> None:
    with pytest.raises(LLMError, match="unknown LLM backend"):
        make_llm(Settings(), backend="nonsense")


def test_vllm_backend_explains_itself_without_vllm() -> None:
    import tutor.llm.vllm  # importable without vllm  # noqa: F401
    with pytest.raises(LLMError, match=r"pip install 'tutor\[gpu\]'"):
        make_llm(Settings().replace(backend="vllm", model="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"))
