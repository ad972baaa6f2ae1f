"""Conversation history and follow-up rewriting.

A follow-up ("它的参数量呢？") is rewritten into a standalone question before retrieval, so the
retriever sees the topic. The LLM does the rewrite; its output is checked, and when it is unusable
(small models sometimes answer instead of rewriting) we fall back to prefixing the previous
question, which keeps the topic words for retrieval.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .glossary import language
from .llm.base import LLM, GenParams, LLMError
from .prompts import rewrite_messages

_FOLLOWUP = re.compile(
    r"(它|他们|她|这个|那个|这些|那些|该|其|上述|前者|后者|呢[？?]?\s*$|\b(it|its|they|them|their|this|that|"
    r"these|those|he|she|the former|the latter)\b|^(and|what about|how about|why)\b)", re.I)


@dataclass
class Conversation:
    """One learner's history: (question, answer) pairs, newest last. Per session, never shared."""

    turns: list[tuple[str, str]] = field(default_factory=list)

    def add(self, question: str, answer: str) -> None:
        self.turns.append((question, answer))

    def reset(self) -> None:
        self.turns.clear()


def needs_rewrite(question: str, history: list[tuple[str, str]]) -> bool:
    return bool(history) and (len(question) <= 12 or bool(_FOLLOWUP.search(question)))


def standalone_question(question: str, history: list[tuple[str, str]], llm: LLM | None) -> str:
    """The follow-up as a standalone question (unchanged when no rewrite is needed)."""
    if not needs_rewrite(question, history):
        return question
    fallback = f"{history[-1][0]} {question}"
    if llm is None:
        return fallback
    lang = language(question)
    try:
        text, _ = llm.complete(rewrite_messages(question, history, lang),
                               GenParams(max_tokens=64, temperature=0.0))
    except LLMError:
        return fallback
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    text = re.sub(r"^(独立问题|standalone question)\s*[:：]\s*", "", text, flags=re.I).strip("\"'“”「」 ")
    prev_words = set(re.findall(r"[A-Za-z][\w\-.]+|[\u4e00-\u9fff]{2,}", history[-1][0]))
    keeps_topic = any(w in text for w in prev_words)
    if not text or len(text) > 3 * len(question) + 80 or not keeps_topic:
        return fallback
    return text
