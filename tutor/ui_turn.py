"""One answer turn as chatbot messages, built from the `Tutor.ask_stream` events.

The chat list is edited in place (Gradio sends it as diffs), so messages are inserted before the
answer as they arrive: a rewritten follow-up, the evidence, the collapsed thinking. `TurnView`
keeps where its answer message is and what it holds (`state`), so Stop and errors act on that
state instead of guessing from the text on screen. No Gradio here: unit-tested in
tests/test_ui_render.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .records import Answer, Event, Hit
from .text import clip
from .ui_render import render_answer, render_evidence, render_turn_sources, safe_markdown
from .ui_text import TEXT, t

# Starts every final answer (an HTML comment: never rendered, and the markdown after it parses as
# usual). Lets the copy button skip the thinking block grouped into the same bubble (static/cite.js).
ANSWER_MARK = "<!--answer-->\n"

# what the answer message holds: a "⏳ stage" line, streamed tokens, the final answer, an error
# line, or the stop mark
TurnState = Literal["stage", "preview", "done", "error", "stopped"]


def stage_text(lang: str, stage: str) -> str:
    """The placeholder shown while the answer is not streaming yet ("searching the notes…")."""
    key = f"stage_{stage}"
    return f"_⏳ {t(lang, key) if key in TEXT[lang] else stage}_"


def stop_mark(lang: str) -> str:
    return f"_{t(lang, 'stopped')}_"


def content_text(msg: Any) -> str:
    """The text of a chatbot message as Gradio hands it back (str or a list of parts)."""
    content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", "")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _title_line(text: str, n: int = 120) -> str:
    """A short single line for a title (a rewritten follow-up), made safe like an answer."""
    return safe_markdown(clip(text, n))


@dataclass
class TurnView:
    """Turn number `turn`'s messages in `chat`, from `first` to the answer message at `answer_i`."""

    chat: list[dict]
    turn: int
    question: str
    lang: str
    first: int
    answer_i: int
    state: TurnState = "stage"
    hits: list[Hit] = field(default_factory=list)  # the sources shown while answering
    thinking: dict | None = None
    thinking_raw: str = ""
    preview: str = ""

    @classmethod
    def start(cls, chat: list[dict], turn: int, question: str, lang: str) -> "TurnView":
        """Append the turn's answer placeholder ("searching the notes…") to `chat`."""
        chat.append({"role": "assistant", "content": stage_text(lang, "retrieving")})
        return cls(chat, turn, question, lang, first=len(chat) - 1, answer_i=len(chat) - 1)

    @property
    def live(self) -> bool:
        """Whether the answer message is still being written (Stop then marks it)."""
        return self.state in ("stage", "preview")

    def messages(self) -> range:
        """The chat indices of this turn's assistant messages (rewrite, evidence, thinking, answer)."""
        return range(self.first, self.answer_i + 1)

    def skips(self, ev: Event) -> bool:
        """A stage event once tokens stream changes nothing (the preview stays)."""
        return ev.kind == "stage" and bool(self.preview)

    def _insert(self, message: dict) -> None:
        self.chat.insert(self.answer_i, message)
        self.answer_i += 1

    def apply(self, ev: Event) -> str | None:
        """Render one event into the chat. Returns this turn's source cards when they changed
        before the answer is done (the final cards come with the finished turn)."""
        lang = self.lang
        if ev.kind == "stage":
            if not self.skips(ev):
                self.chat[self.answer_i] = {"role": "assistant", "content": stage_text(lang, ev.text)}
        elif ev.kind == "rewritten":
            self._insert({"role": "assistant", "content": safe_markdown(ev.text),
                          "metadata": {"title": t(lang, "rewritten", q=_title_line(ev.text)), "status": "done"}})
        elif ev.kind == "sources":
            self.hits = list(ev.hits)
            return render_turn_sources(self.turn, self.question, self.hits, lang)
        elif ev.kind == "evidence" and ev.evidence:
            # evidence first: the learner reads the source while the model writes
            self._insert({"role": "assistant", "content": render_evidence(list(ev.evidence), self.turn),
                          "metadata": {"title": t(lang, "evidence"), "status": "done"}})
            return render_turn_sources(self.turn, self.question, self.hits, lang, evidence=list(ev.evidence))
        elif ev.kind == "reasoning":
            if self.thinking is None:
                self.thinking = {"role": "assistant", "content": "",
                                 "metadata": {"title": t(lang, "thinking"), "status": "pending"}}
                self._insert(self.thinking)
            self.thinking_raw += ev.text
            self.thinking["content"] = safe_markdown(self.thinking_raw)
        elif ev.kind == "token":
            self.preview += ev.text
            self.chat[self.answer_i] = {"role": "assistant", "content": safe_markdown(self.preview)}
            self.state = "preview"
        elif ev.kind == "done":
            self._finish(ev.answer)
        return None

    def _finish(self, ans: Answer) -> None:
        """The final answer replaces the preview; the thinking message holds the model's reasoning."""
        lang = self.lang
        if ans.reasoning:
            if self.thinking is None:
                self.thinking = {"role": "assistant", "content": ""}
                self._insert(self.thinking)
            self.thinking["content"] = safe_markdown(ans.reasoning)
            self.thinking["metadata"] = {"title": t(lang, "thinking"), "status": "done"}
        elif self.thinking is not None:  # what streamed as thinking was not reasoning
            self.chat.remove(self.thinking)
            self.answer_i -= 1
        text = render_answer(ans.text, self.turn, len(ans.sources))
        if not ans.refused and not ans.grounded:
            text += f"\n\n_{t(lang, 'ungrounded')}_"
        self.chat[self.answer_i] = {"role": "assistant", "content": ANSWER_MARK + text}
        self.state = "done"

    def fail(self, error_line: str) -> None:
        """An error ends the turn: its line replaces the answer; the thinking shown so far stays."""
        if self.thinking is not None and (self.thinking.get("metadata") or {}).get("status") == "pending":
            self.thinking["metadata"] = {"title": t(self.lang, "thinking"), "status": "done"}
        self.chat[self.answer_i] = {"role": "assistant", "content": error_line}
        self.state = "error"

    def stop(self, mark: str) -> None:
        """Stop pressed: a streaming answer keeps its text and gets `mark`; a placeholder becomes it."""
        if not self.live or self.answer_i >= len(self.chat):
            return
        text = content_text(self.chat[self.answer_i]) if self.state == "preview" else ""
        self.chat[self.answer_i] = {"role": "assistant", "content": (text + "\n\n" if text else "") + mark}
        self.state = "stopped"
