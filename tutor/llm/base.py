"""The one small streaming interface every LLM backend implements.

Backends differ in transport (in-process llama.cpp, an OpenAI-compatible HTTP server, in-process
vLLM), but all of them yield `Delta`s whose answer text and reasoning ("thinking") are already
separated (`think.py`), say once whether their model reasons inline (`LLM.reasoning`), and fail
with an `LLMError` (tutor/errors.py) whose message can be shown to a user as is. The factory
that picks a backend is `tutor.llm.make_llm`; this module imports none of them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Iterator

from tutor.errors import LLMError, NoLogprobs  # noqa: F401 - LLMError re-exported: every backend's failure
from tutor.llm.params import GenParams
from tutor.llm.think import Delta, repair_late_close

Messages = list[dict]
Progress = Callable[[str], None]

# the backend names `make_llm` accepts → the backend they mean
BACKENDS = {
    "llamacpp": "llamacpp", "llama.cpp": "llamacpp", "llama-cpp": "llamacpp",
    "openai": "openai", "openai-compat": "openai", "openai_compat": "openai", "server": "openai",
    "vllm": "vllm",
}


def backend_kind(name: str) -> str | None:
    """The backend (llamacpp, openai or vllm) a name as a user may write it means; None if unknown."""
    return BACKENDS.get(name.strip().lower())


class LLM(ABC):
    backend: str = ""
    model: str = ""
    context_window: int | None = None
    # the model thinks inline before answering (R1 distills): set once, when the backend knows
    # its model; it decides the default sampling, the think splitting and the system prompt
    reasoning: bool = False

    @abstractmethod
    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        """Yield the reply piece by piece; `params=None` means this model's defaults
        (`params.sampling(settings, self.reasoning)`)."""

    def check(self) -> None:
        """Fail early (LLMError) if requests cannot work, e.g. the server is down. In-process
        backends already failed in their constructor, so for them this does nothing."""

    def complete(self, messages: Messages, params: GenParams | None = None) -> tuple[str, str]:
        """The whole reply as (answer text, reasoning)."""
        text: list[str] = []
        reasoning: list[str] = []
        for d in self.stream(messages, params):
            text.append(d.text)
            reasoning.append(d.reasoning)
        return repair_late_close("".join(text), "".join(reasoning))

    def first_token_logprobs(self, messages: Messages, top: int = 20) -> dict[str, float]:
        """Log-probabilities of the likeliest first tokens of the reply (token text → logprob,
        greedy context): a yes/no verdict read from the distribution, not from sampled text."""
        raise NoLogprobs(f"the {self.backend} backend gives no log-probabilities")

    def close(self) -> None:
        """Release the model or connection; the instance is unusable afterwards."""

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.backend} model={self.model!r}>"
