"""Inline `<think>…</think>` reasoning apart from the answer, while streaming and after.

Backends whose server does not split reasoning itself (llama.cpp, vLLM offline, most OpenAI-
compatible servers) feed their raw text through a `ThinkSplitter` and yield its `Delta`s.
"""
from __future__ import annotations

from dataclasses import dataclass

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Delta:
    """One streamed piece: answer text and/or reasoning text."""
    text: str = ""
    reasoning: str = ""

    def __bool__(self) -> bool:
        return bool(self.text or self.reasoning)


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
