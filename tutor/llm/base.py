"""The one small streaming interface every LLM backend implements, and the pieces they share.

Backends differ in transport (in-process llama.cpp, an OpenAI-compatible HTTP server, in-process
vLLM), but all of them yield `Delta`s whose answer text and reasoning ("thinking") are already
separated, and all of them fail with one `LLMError` whose message can be shown to a user as is.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from tutor.errors import LLMError, ModelCrashed, NoLogprobs  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from tutor.config import Settings

Messages = list[dict]
Progress = Callable[[str], None]

OPEN, CLOSE = "<think>", "</think>"


@dataclass
class GenParams:
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] | None = None


@dataclass(frozen=True)
class Delta:
    """One streamed piece: answer text and/or reasoning text."""
    text: str = ""
    reasoning: str = ""

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning)


class LLM(ABC):
    backend: str = ""
    model: str = ""
    context_window: int | None = None

    @abstractmethod
    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        """Yield the reply piece by piece; `params=None` means this model's defaults."""

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


class ThinkSplitter:
    """Separate inline `<think>…</think>` reasoning from the answer while streaming.

    Tags may be split across chunks ("<thi" + "nk>"), so a possible tag prefix is held back until
    the next chunk decides it. `<think>` only counts at the very start of the output (after
    whitespace) and `</think>` only closes an open think block: tutor answers about DeepSeek-R1
    may quote the tags literally and must keep them. With `in_think=True` (R1 distills, whose chat
    template already opens the block) the output starts as reasoning and a leading `<think>` is
    dropped; an unclosed block at the end is all reasoning. Whitespace around both parts is
    trimmed (trailing whitespace is held back until more text arrives).
    """

    def __init__(self, in_think: bool = False) -> None:
        self._think = in_think
        self._lead = True  # nothing but whitespace seen yet: a `<think>` may still open
        self._buf = ""
        self._pending = ""  # held trailing whitespace of the current part
        self._started = {"text": False, "reasoning": False}

    @property
    def in_think(self) -> bool:
        return self._think

    def answer_only(self) -> None:
        """The server splits reasoning itself (vLLM --reasoning-parser): content is all answer."""
        if self._think:
            self._pending = ""
        self._think = False
        self._lead = False

    def feed(self, chunk: str) -> Delta:
        self._buf += chunk
        out = {"text": [], "reasoning": []}
        while self._buf:
            if self._lead:
                s = self._buf.lstrip()
                if not s:
                    self._buf = ""
                    break
                if s.startswith(OPEN):
                    self._buf, self._think, self._lead = s[len(OPEN):], True, False
                    continue
                if OPEN.startswith(s):
                    self._buf = s  # maybe the start of `<think>`: wait for more
                    break
                self._buf, self._lead = s, False
            if self._think:
                i = self._buf.find(CLOSE)
                if i >= 0:
                    self._emit("reasoning", self._buf[:i], out)
                    self._buf, self._think, self._pending = self._buf[i + len(CLOSE):], False, ""
                    continue
                keep = _held_prefix(self._buf, CLOSE)
                self._emit("reasoning", self._buf[:len(self._buf) - keep], out)
                self._buf = self._buf[len(self._buf) - keep:]
                break
            self._emit("text", self._buf, out)
            self._buf = ""
        return Delta("".join(out["text"]), "".join(out["reasoning"]))

    def finish(self) -> Delta:
        """Flush what was held back (a tag prefix that never completed); drop trailing blanks."""
        rest, self._buf = self._buf, ""
        out = {"text": [], "reasoning": []}
        if self._lead:
            rest = rest.lstrip()
            self._lead = False
        self._emit("reasoning" if self._think else "text", rest, out)
        self._pending = ""
        return Delta("".join(out["text"]), "".join(out["reasoning"]))

    def _emit(self, kind: str, s: str, out: dict[str, list[str]]) -> None:
        if not self._started[kind]:
            s = s.lstrip()
        if not s:
            return
        body = s.rstrip()
        if body:
            out[kind].append(self._pending + body)
            self._started[kind] = True
            self._pending = s[len(body):]
        else:
            self._pending += s


def _held_prefix(s: str, tag: str) -> int:
    """Length of the longest suffix of `s` that is a proper prefix of `tag`."""
    for n in range(min(len(tag) - 1, len(s)), 0, -1):
        if s.endswith(tag[:n]):
            return n
    return 0


def split_think(text: str, in_think: bool = False) -> tuple[str, str]:
    """Non-streaming split of a whole reply into (answer, reasoning)."""
    sp = ThinkSplitter(in_think)
    a, b = sp.feed(text), sp.finish()
    return repair_late_close(a.text + b.text, a.reasoning + b.reasoning)


def repair_late_close(text: str, reasoning: str) -> tuple[str, str]:
    """A reply with a stray `</think>` and no reasoning at all is an R1-style reply whose model
    was not recognised as a reasoning model: a stream cannot take back what it already showed as
    answer, but the final result can put the part before the tag where it belongs."""
    if reasoning or CLOSE not in text:
        return text, reasoning
    head, tail = text.split(CLOSE, 1)
    if OPEN in head:  # the answer quotes a whole think block: leave it alone
        return text, reasoning
    return tail.strip(), head.strip()


_REASONING = re.compile(r"(?<![a-z0-9])(r1|qwq|deepseek-reasoner)(?![a-z0-9])|r1-distill")


def is_reasoning_model(model_name: str) -> bool:
    """R1 distills and friends think inline before answering and want sampling, not greedy."""
    name = model_name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower().replace("_", "-")
    return bool(_REASONING.search(name))


def default_params(model_name: str, settings: "Settings") -> GenParams:
    """Deterministic for ordinary models; DeepSeek's recommended 0.6/0.95 for R1 distills
    (greedy decoding makes them loop). Explicit settings always win."""
    reasoning = is_reasoning_model(model_name)
    return GenParams(
        max_tokens=settings.max_tokens,
        temperature=settings.temperature if settings.temperature is not None
        else (0.6 if reasoning else 0.0),
        top_p=settings.top_p if settings.top_p is not None else (0.95 if reasoning else 1.0),
    )


BACKENDS = {
    "llamacpp": "llamacpp", "llama.cpp": "llamacpp", "llama-cpp": "llamacpp",
    "openai": "openai", "openai-compat": "openai", "openai_compat": "openai", "server": "openai",
    "vllm": "vllm",
}


def make_llm(settings: "Settings", *, backend: str | None = None, model: str | None = None,
             base_url: str | None = None, progress: Progress | None = None) -> LLM:
    """Build the configured backend; heavy imports (llama_cpp, openai, vllm) happen only here."""
    settings = settings.replace(model=model, base_url=base_url)
    name = (backend or settings.backend).strip().lower()
    kind = BACKENDS.get(name)
    if kind == "llamacpp":
        from tutor.llm.llamacpp import LlamaCppLLM
        return LlamaCppLLM(settings, progress=progress)
    if kind == "openai":
        from tutor.llm.openai_compat import OpenAICompatLLM
        return OpenAICompatLLM(settings)
    if kind == "vllm":
        from tutor.llm.vllm import VLLMLocal
        return VLLMLocal(settings)
    raise LLMError(f"unknown LLM backend {name!r}: choose llamacpp, openai or vllm")
