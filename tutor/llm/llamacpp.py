"""In-process llama.cpp on a local GGUF: the default CPU backend, no server needed.

The chat template comes from the GGUF itself, so each model is prompted the way it was trained.
One `Llama` object is not thread-safe, hence the lock: concurrent callers (UI sessions) queue.
"""
from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Iterator

from tutor.errors import ContextOverflow, LLMError, ModelError
from tutor.llm.base import LLM, Messages, Progress
from tutor.llm.params import GenParams, is_reasoning_model, sampling
from tutor.llm.think import Delta, ThinkSplitter
from tutor.models import resolve_gguf

if TYPE_CHECKING:
    from tutor.config import Settings

_OVERFLOW = re.compile(r"exceed context window|context window|n_ctx", re.I)
_MAX_HEADS = 8  # zh / en × levels, the judge's prompts


def _system_of(messages: Messages) -> str | None:
    return messages[0]["content"] if messages and messages[0].get("role") == "system" else None


def load_llama(model: str, settings: "Settings", n_ctx: int, progress: Progress | None = None, **options):
    """(path, llama_cpp.Llama) for a preset name or GGUF path: assembled and verified, probed in a
    child process first (a native crash becomes a clear error), loaded with `options`. The
    answering backend and the likelihood judge both load through here."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise LLMError("the llamacpp backend needs llama-cpp-python",
                       "pip install 'llama-cpp-python==0.3.36'") from None
    try:
        path = resolve_gguf(model, settings.paths.home, progress)
    except ModelError as e:
        raise LLMError(str(e)) from None
    if settings.llm.llama_probe:
        from tutor.llm.probe import probe

        # cached after the first time
        probe(path, settings.paths.home, settings.llm.n_threads, progress=progress)
    if progress:
        progress(f"loading {path.name}…")
    try:
        return path, Llama(model_path=str(path), n_ctx=n_ctx, n_threads=settings.llm.n_threads or os.cpu_count(),
                           verbose=False, **options)
    except (ValueError, RuntimeError) as e:
        raise LLMError(f"llama.cpp could not load {path}: {e}") from None


class LlamaCppLLM(LLM):
    backend = "llamacpp"

    def __init__(self, settings: "Settings", progress: Progress | None = None) -> None:
        self.settings = settings
        self.model = settings.llm.model
        self.path, self._llm = load_llama(settings.llm.model, settings, settings.llm.n_ctx, progress,
                                          flash_attn=settings.llm.flash_attn)
        self.context_window = self._llm.n_ctx()
        # a preset name says nothing about reasoning; the file name might
        self.reasoning = is_reasoning_model(self.model) or is_reasoning_model(self.path.name)
        self._lock = threading.Lock()
        self._last: Messages | None = None
        self._head: str | None = None  # the system prompt whose tokens open the KV cache now
        self._heads: dict[str, tuple] = {}  # KV snapshots, one per system prompt

    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        p = params or sampling(self.settings, self.reasoning)
        splitter = ThinkSplitter(in_think=self.reasoning)
        with self._lock:  # held until the generator finishes or is closed
            if self._llm is None:
                raise LLMError("this llama.cpp model was closed")
            # llama.cpp reuses the KV cache of the longest common prefix with the last call
            # (a real saving: prompt reading is the slow part here). When the whole prompt is
            # cached it re-reads only its last token, and those numerics flip greedy choices
            # of small models: reset so that asking the same again gives the same answer.
            head = _system_of(messages)
            if messages == self._last:
                self._llm.reset()
            elif head is not None and head != self._head and head in self._heads:
                self._restore(head, messages)
            self._last = [dict(m) for m in messages]
            self._head = head
            try:
                chunks = self._llm.create_chat_completion(
                    messages=messages, stream=True, max_tokens=p.max_tokens,  # type: ignore[arg-type]
                    temperature=p.temperature, top_p=p.top_p, stop=p.stop)
                for chunk in chunks:
                    content = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
                    if content and (d := splitter.feed(content)):
                        yield d
            except ValueError as e:
                if _OVERFLOW.search(str(e)):  # llama.cpp says so only in words
                    raise self._overflow(e, "; raise n_ctx or send fewer sources") from None
                raise LLMError(f"llama.cpp failed: {e}") from None
            finally:
                if head is not None:
                    self._snapshot(head)
        if d := splitter.finish():
            yield d

    # The prefix reuse above keeps only the last prompt's tokens: a question in the other language
    # (another system prompt), a follow-up's rewrite or a judge call in between made the next answer
    # re-read its whole system prompt (~120 tokens, ~1.3 s with the 1.5B on 2 cores). So the KV cache
    # is snapshotted after each call, one snapshot per system prompt, and restored when the prompt
    # switches back (~2 ms, a few MB): the answer is then exactly the one it would have been had
    # no other prompt come between. llama-cpp-python's LlamaRAMCache would also copy the logits
    # of every prompt token (≈60 MB and 0.3 s per load).
    def _snapshot(self, head: str) -> None:
        import ctypes

        import llama_cpp

        ctx = self._llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_get_data(ctx, buf, size) != size:
            self._heads.pop(head, None)
            return
        self._heads.pop(head, None)
        if len(self._heads) >= _MAX_HEADS:
            self._heads.pop(next(iter(self._heads)))
        self._heads[head] = (buf, [int(t) for t in self._llm.input_ids[:self._llm.n_tokens]], self._last)

    def _restore(self, head: str, messages: Messages) -> None:
        import llama_cpp

        buf, ids, asked = self._heads[head]
        if messages == asked:  # the same prompt again: read it afresh, as the rule above says
            self._llm.reset()
            return
        if llama_cpp.llama_state_set_data(self._llm._ctx.ctx, buf, len(buf)) != len(buf):
            self._llm.reset()
            return
        self._llm.input_ids[:len(ids)] = ids
        self._llm.n_tokens = len(ids)
        self._llm._requires_eval = True  # the logits are stale: the next decode refreshes them

    def first_token_logprobs(self, messages: Messages, top: int = 20) -> dict[str, float]:
        """Read the first token's logits inside the sampler (a logits processor sees the whole
        vocabulary), so no `logits_all` buffer of n_ctx × vocabulary floats is needed."""
        import numpy as np

        seen: list[np.ndarray] = []

        def capture(_ids, logits):  # called once per sampled token; one token here
            if not seen:
                seen.append(np.array(logits, dtype=np.float64))
            return logits

        with self._lock:
            if self._llm is None:
                raise LLMError("this llama.cpp model was closed")
            self._llm.reset()  # a fresh context: the same question always gets the same numbers
            self._last = self._head = None
            try:
                self._llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0,
                                                 logits_processor=[capture])  # type: ignore[list-item]
            except ValueError as e:
                if _OVERFLOW.search(str(e)):
                    raise self._overflow(e) from None
                raise LLMError(f"llama.cpp failed: {e}") from None
            if not seen or seen[0].shape[0] != self._llm.n_vocab():
                raise LLMError("llama.cpp gave no first-token logits")
            logits = seen[0]
            logp = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            best = np.argsort(-logp)[:top]
            out: dict[str, float] = {}
            for i in best:
                tok = self._llm.detokenize([int(i)]).decode("utf-8", errors="replace")
                out[tok] = float(np.logaddexp(out[tok], logp[i])) if tok in out else float(logp[i])
            return out

    def _overflow(self, e: ValueError, advice: str = "") -> ContextOverflow:
        problem = f"the prompt is too long for the context of model {self.model!r} ({self.context_window} tokens"
        return ContextOverflow(f"{problem})", "raise n_ctx or send fewer sources",
                               line=f"{problem}{advice}): {e}")

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
