"""In-process vLLM for batch work (evals) on a CUDA machine; optional extra `tutor[gpu]`.

vLLM is imported only in the constructor so this module imports anywhere. Its point is
`generate_batch`: every prompt of an eval in one `LLM.chat` call, each with its own sampling, so
vLLM's scheduler batches them (the eval runner retrieves for all items first, then calls it
once). For interactive use prefer `vllm serve` + the `openai` backend; offline `LLM.chat` does
not stream, so `stream()` yields the whole reply at once.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from tutor.errors import ContextOverflow, LLMError
from tutor.llm.base import LLM, Messages
from tutor.llm.params import GenParams, is_reasoning_model, sampling
from tutor.llm.think import Delta, split_think

if TYPE_CHECKING:
    from tutor.config import Settings


@dataclass(frozen=True)
class Generation:
    """One reply of a batch: answer text, reasoning (R1 thinking) and generated token count."""
    text: str
    reasoning: str
    tokens: int


class VLLMLocal(LLM):
    backend = "vllm"
    batched = True  # the eval runner hands this backend all prompts at once

    def __init__(self, settings: "Settings", engine: Any = None, sampling_params: Any = None) -> None:
        """`engine` / `sampling_params`: an already built `vllm.LLM` and the `vllm.SamplingParams`
        class (both None: import vLLM and load `settings.model`). The seam lets the batching be
        tested without a GPU."""
        self.settings = settings
        self.model = settings.llm.model
        self.reasoning = is_reasoning_model(self.model)
        self.context_window = settings.llm.n_ctx
        self._lock = threading.Lock()  # vllm.LLM is not thread-safe; one call at a time
        if engine is not None:
            self._llm, self._sampling_cls = engine, sampling_params
            return
        try:
            import vllm
        except ImportError:
            raise LLMError("the vllm backend needs vLLM: pip install 'tutor[gpu]' on a CUDA "
                           "machine (or run `vllm serve` there and use --backend openai)") from None
        self._sampling_cls = vllm.SamplingParams
        try:
            self._llm = vllm.LLM(model=settings.llm.model, max_model_len=settings.llm.n_ctx)
        except Exception as e:  # noqa: BLE001 - CUDA/model errors come in many types
            raise LLMError(f"vLLM could not load {settings.llm.model!r}: {e}") from None

    def _sampling(self, params: GenParams | None) -> Any:
        p = params or sampling(self.settings, self.reasoning)
        return self._sampling_cls(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, stop=p.stop)

    def generate_batch(self, conversations: Sequence[Messages],
                       params: GenParams | Sequence[GenParams] | None = None) -> list[Generation]:
        """One `LLM.chat` call for all conversations (vLLM batches them on the GPU); `params` is
        one for all or one per conversation. Replies come back in input order."""
        if not conversations:
            return []
        if isinstance(params, (list, tuple)):
            if len(params) != len(conversations):
                raise ValueError(f"{len(params)} sampling params for {len(conversations)} conversations")
            sampling: Any = [self._sampling(p) for p in params]
        else:
            sampling = self._sampling(params)  # type: ignore[arg-type]
        try:
            with self._lock:
                outputs = self._llm.chat(list(conversations), sampling, use_tqdm=False)
        except ValueError as e:  # vLLM reports over-long prompts as ValueError
            problem = f"vLLM rejected the request (prompt too long for the context of {self.context_window} tokens?)"
            raise ContextOverflow(problem, "raise n_ctx or send fewer sources", line=f"{problem}: {e}") from None
        out = []
        for o in outputs:
            first = o.outputs[0]
            text, reasoning = split_think(first.text, self.reasoning)
            out.append(Generation(text, reasoning, len(getattr(first, "token_ids", None) or ())))
        return out

    def first_token_logprobs(self, messages: Messages, top: int = 20) -> dict[str, float]:
        sp = self._sampling_cls(max_tokens=1, temperature=0.0, logprobs=top)
        with self._lock:
            out = self._llm.chat([messages], sp, use_tqdm=False)[0].outputs[0]
        first = (out.logprobs or [{}])[0]
        return {lp.decoded_token: float(lp.logprob) for lp in first.values() if lp.decoded_token is not None}

    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        g, = self.generate_batch([messages], params)
        if g.text or g.reasoning:
            yield Delta(g.text, g.reasoning)

    def close(self) -> None:
        self._llm = None
