"""LLM backends behind one streaming interface (`base.LLM`), and `make_llm`, which picks one.

The backends import their heavy libraries (llama_cpp, openai, vllm) only when built here, and
only this package module imports them: `base.py` stays free of any backend.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tutor.errors import LLMError, NoLogprobs
from tutor.llm.base import LLM, Progress, backend_kind
from tutor.llm.params import GenParams
from tutor.llm.think import Delta

if TYPE_CHECKING:
    from tutor.config import Settings

__all__ = ["LLM", "Delta", "GenParams", "LLMError", "NoLogprobs", "make_llm"]


def make_llm(settings: "Settings", *, backend: str | None = None, model: str | None = None,
             base_url: str | None = None, progress: Progress | None = None) -> LLM:
    """Build the configured backend; heavy imports (llama_cpp, openai, vllm) happen only here."""
    settings = settings.replace(model=model, base_url=base_url)
    name = backend or settings.llm.backend
    kind = backend_kind(name)
    if kind == "llamacpp":
        from tutor.llm.llamacpp import LlamaCppLLM
        return LlamaCppLLM(settings, progress=progress)
    if kind == "openai":
        from tutor.llm.openai_compat import OpenAICompatLLM
        return OpenAICompatLLM(settings)
    if kind == "vllm":
        from tutor.llm.vllm import VLLMLocal
        return VLLMLocal(settings)
    raise LLMError(f"unknown LLM backend {name.strip().lower()!r}: choose llamacpp, openai or vllm")
