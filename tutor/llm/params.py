"""Sampling parameters, and which models want which: decided from a model's name.

`LLM.reasoning` is set once by each backend from `is_reasoning_model` (of the name it serves or
the file it loaded); everything downstream reads that flag, never the name again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tutor.config import Settings


@dataclass
class GenParams:
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] | None = None


_REASONING = re.compile(r"(?<![a-z0-9])(r1|qwq|deepseek-reasoner)(?![a-z0-9])|r1-distill")


def is_reasoning_model(model_name: str) -> bool:
    """R1 distills and friends think inline before answering and want sampling, not greedy."""
    name = model_name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower().replace("_", "-")
    return bool(_REASONING.search(name))


def sampling(settings: "Settings", reasoning: bool) -> GenParams:
    """Deterministic for ordinary models; DeepSeek's recommended 0.6/0.95 for reasoning models
    (greedy decoding makes R1 distills loop). Explicit settings always win."""
    return GenParams(
        max_tokens=settings.llm.max_tokens,
        temperature=settings.llm.temperature if settings.llm.temperature is not None
        else (0.6 if reasoning else 0.0),
        top_p=settings.llm.top_p if settings.llm.top_p is not None else (0.95 if reasoning else 1.0),
    )


def default_params(model_name: str, settings: "Settings") -> GenParams:
    """`sampling` for a model known only by its name (a server the tutor does not talk to itself)."""
    return sampling(settings, is_reasoning_model(model_name))
