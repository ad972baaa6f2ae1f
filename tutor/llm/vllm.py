"""In-process vLLM for batch work (evals) on a CUDA machine; optional extra `tutor[gpu]`.

vLLM is imported only in the constructor so this module imports anywhere. For interactive
use prefer `vllm serve` + the `openai` backend; offline `LLM.generate` does not stream, so
`stream()` yields the whole reply at once.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

from tutor.llm.base import (LLM, Delta, GenParams, LLMError, Messages, default_params,
                            is_reasoning_model, split_think)

if TYPE_CHECKING:
    from tutor.config import Settings


class VLLMLocal(LLM):
    backend = "vllm"

    def __init__(self, settings: "Settings") -> None:
        try:
            import vllm
        except ImportError:
            raise LLMError("the vllm backend needs vLLM: pip install 'tutor[gpu]' on a CUDA "
                           "machine (or run `vllm serve` there and use --backend openai)") from None
        self._vllm = vllm
        self.settings = settings
        self.model = settings.model
        try:
            self._llm = vllm.LLM(model=settings.model, max_model_len=settings.n_ctx)
        except Exception as e:  # noqa: BLE001 - CUDA/model errors come in many types
            raise LLMError(f"vLLM could not load {settings.model!r}: {e}") from None
        self.context_window = settings.n_ctx
        self._lock = threading.Lock()

    def _sampling(self, params: GenParams | None) -> Any:
        p = params or default_params(self.model, self.settings)
        return self._vllm.SamplingParams(max_tokens=p.max_tokens, temperature=p.temperature,
                                         top_p=p.top_p, stop=p.stop)

    def generate_batch(self, conversations: list[Messages],
                       params: GenParams | None = None) -> list[tuple[str, str]]:
        """(answer, reasoning) per conversation; vLLM batches them on the GPU."""
        if not conversations:
            return []
        try:
            with self._lock:
                outputs = self._llm.chat(conversations, self._sampling(params), use_tqdm=False)
        except ValueError as e:  # vLLM reports over-long prompts as ValueError
            raise LLMError(f"vLLM rejected the request (prompt too long for the context of "
                           f"{self.context_window} tokens?): {e}") from None
        in_think = is_reasoning_model(self.model)
        return [split_think(o.outputs[0].text, in_think) for o in outputs]

    def first_token_logprobs(self, messages: Messages, top: int = 20) -> dict[str, float]:
        sp = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=top)
        with self._lock:
            out = self._llm.chat([messages], sp, use_tqdm=False)[0].outputs[0]
        first = (out.logprobs or [{}])[0]
        return {lp.decoded_token: float(lp.logprob) for lp in first.values() if lp.decoded_token is not None}

    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        (text, reasoning), = self.generate_batch([messages], params)
        if text or reasoning:
            yield Delta(text, reasoning)

    def close(self) -> None:
        self._llm = None
