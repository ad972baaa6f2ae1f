"""Any OpenAI-compatible chat server: `vllm serve`, llama.cpp's server, llama-cpp-python's server.

A thin layer over the `openai` client rather than llama-index's OpenAILike: that integration
drops the separate `reasoning_content` / `reasoning` delta fields vLLM sends and has no streaming
`<think>` splitting, and we want our own retry policy and one-line errors.
"""
from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import httpx
import openai

from tutor.errors import BackendUnreachable, ContextOverflow, EmptyReply, LLMError, ModelNotServed, NoLogprobs
from tutor.llm.base import LLM, Messages
from tutor.llm.params import GenParams, is_reasoning_model, sampling
from tutor.llm.think import Delta, ThinkSplitter

if TYPE_CHECKING:
    from tutor.config import Settings

T = TypeVar("T")

_CONTEXT = re.compile(r"context[ _-]?(length|size|window)|maximum context|too long|exceeds? the "
                      r"(available|max)|prompt is longer", re.I)
_MAX_LEN = re.compile(r"maximum context length is (\d+)")
BACKOFF_S = 0.5  # first retry delay; doubles each time


class OpenAICompatLLM(LLM):
    backend = "openai"

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.model = settings.llm.model
        self.reasoning = is_reasoning_model(self.model)
        self.base_url = settings.llm.base_url.rstrip("/")
        self.timeout_s = settings.llm.timeout_s
        self.retries = max(0, settings.llm.retries)
        self.context_window = None
        self.served: list[str] = []
        # max_retries=0: the client would also retry timeouts and 5xx; we retry connection errors only
        self._client = openai.OpenAI(base_url=self.base_url, api_key=settings.llm.api_key or "EMPTY",
                                     timeout=settings.llm.timeout_s, max_retries=0)
        self._checked = False
        self._check_lock = threading.Lock()

    def check(self) -> None:
        """Once per instance: is the server up, and does it serve our model? (llama.cpp servers
        answer to any model name, so a typo would otherwise go unnoticed.)"""
        with self._check_lock:
            if self._checked:
                return
            models = self._call(lambda: list(self._client.models.list()))
            self.served = [m.id for m in models]
            if self.model in ("", "default") and len(self.served) == 1:
                self.model = self.served[0]  # now the model is known: decide reasoning from its name
                self.reasoning = is_reasoning_model(self.model)
            if self.model not in self.served:
                listed = ", ".join(self.served) or "none"
                raise ModelNotServed(f"model {self.model!r} is not served at {self.base_url} (served: {listed})",
                                     "set --model to one of these", line=f"model {self.model!r} is not served at "
                                     f"{self.base_url} (served: {listed}); set --model to one of these")
            entry = next(m for m in models if m.id == self.model)
            max_len = getattr(entry, "max_model_len", None)  # vLLM reports it; llama.cpp doesn't
            self.context_window = int(max_len) if isinstance(max_len, (int, float)) else None
            self._checked = True

    def stream(self, messages: Messages, params: GenParams | None = None) -> Iterator[Delta]:
        self.check()
        p = params or sampling(self.settings, self.reasoning)
        chunks = self._call(lambda: self._client.chat.completions.create(
            model=self.model, messages=messages, stream=True,  # type: ignore[arg-type]
            max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, stop=p.stop))
        splitter = ThinkSplitter(in_think=self.reasoning)
        replied = False  # any content, reasoning or finish_reason at all
        try:
            for chunk in chunks:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                replied = replied or choice.finish_reason is not None
                reasoning = _reasoning_of(choice.delta)
                if reasoning:
                    replied = True
                    splitter.answer_only()  # the server parses the think block for us
                    yield Delta(reasoning=reasoning)
                if choice.delta.content:
                    replied = True
                    if d := splitter.feed(choice.delta.content):
                        yield d
        except (httpx.TimeoutException, openai.APITimeoutError):
            raise self._timeout() from None
        except (httpx.HTTPError, openai.APIError) as e:
            raise LLMError(f"the LLM server at {self.base_url} failed mid-answer: "
                           f"{_message_of(e)}") from None
        finally:
            chunks.close()
        if not replied:
            self._diagnose_empty(messages)
        if d := splitter.finish():
            yield d

    def first_token_logprobs(self, messages: Messages, top: int = 20) -> dict[str, float]:
        """The OpenAI API's `logprobs` / `top_logprobs` of the first reply token (vLLM gives up
        to 20; llama-cpp-python's server only when started with `--logits_all True`)."""
        self.check()
        resp = self._call(lambda: self._client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=1, temperature=0.0,  # type: ignore[arg-type]
            logprobs=True, top_logprobs=min(top, 20)))
        try:
            first = resp.choices[0].logprobs.content[0]
        except (AttributeError, IndexError, TypeError):
            raise NoLogprobs(f"the LLM server at {self.base_url} returned no log-probabilities "
                           f"(llama-cpp-python's server needs --logits_all True)") from None
        out: dict[str, float] = {}
        for t in first.top_logprobs or [first]:
            out[t.token] = max(out.get(t.token, float("-inf")), float(t.logprob))
        return out

    def _diagnose_empty(self, messages: Messages) -> None:
        """llama-cpp-python's server fails a streamed request *after* sending HTTP 200 (e.g. a
        prompt longer than n_ctx gives an empty stream); the same request unstreamed with one
        token gets the real error."""
        # that server also resets the connection, which the pool may hand out again: retry once
        self._call(lambda: self._client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=1),  # type: ignore[arg-type]
            retries=max(1, self.retries))
        raise EmptyReply(f"the LLM server at {self.base_url} sent an empty reply", "see its log",
                         line=f"the LLM server at {self.base_url} sent an empty reply; see its log")

    def close(self) -> None:
        self._client.close()

    def _call(self, fn: Callable[[], T], retries: int | None = None) -> T:
        """Run a request; retry with exponential backoff on connection errors only."""
        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return fn()
            except openai.APITimeoutError:  # subclass of APIConnectionError: never retried
                raise self._timeout() from None
            except openai.APIConnectionError:
                if attempt == retries:
                    problem = f"cannot reach the LLM server at {self.base_url}"
                    raise BackendUnreachable(problem, "is `vllm serve` running?",
                                             line=f"{problem} — is `vllm serve` running? (tried {attempt + 1}×)") from None
                time.sleep(BACKOFF_S * 2 ** attempt)
            except openai.APIStatusError as e:
                raise self._status_error(e) from None
        raise AssertionError("unreachable")

    def _status_error(self, e: openai.APIStatusError) -> LLMError:
        msg = _message_of(e)
        if e.status_code in (400, 413) and _CONTEXT.search(msg):
            if self.context_window is None and (m := _MAX_LEN.search(msg)):
                self.context_window = int(m.group(1))
            limit = f" ({self.context_window} tokens)" if self.context_window else ""
            problem = f"the prompt is too long for the context of model {self.model!r}{limit}"
            return ContextOverflow(problem, "raise the server's context or send fewer sources",
                                   line=f"{problem}: {msg}")
        if e.status_code in (401, 403):
            return LLMError(f"the LLM server at {self.base_url} rejected the API key "
                            f"(HTTP {e.status_code})")
        if e.status_code == 404:
            return ModelNotServed(f"model {self.model!r} or the endpoint is unknown at {self.base_url}",
                                  "check --model and --base-url",
                                  line=f"model {self.model!r} or the endpoint is unknown at {self.base_url}: {msg}")
        return LLMError(f"the LLM server at {self.base_url} answered HTTP {e.status_code}: {msg}")

    def _timeout(self) -> BackendUnreachable:
        problem = f"the LLM server at {self.base_url} did not answer within {self.timeout_s:g} s (timeout_s)"
        return BackendUnreachable(problem, "it may be overloaded or the model too slow",
                                  line=f"{problem}; it may be overloaded or the model too slow")


def _reasoning_of(delta: Any) -> str:
    """vLLM's reasoning parsers put thinking in `reasoning_content` (older) or `reasoning`."""
    extra = getattr(delta, "model_extra", None) or {}
    for key in ("reasoning_content", "reasoning"):
        value = getattr(delta, key, None) or extra.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _message_of(e: BaseException) -> str:
    """The server's own error text, whatever shape its JSON body has."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("detail"):
            return str(body["detail"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(e, "message", None) or e) or type(e).__name__
