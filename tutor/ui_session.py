"""One browser session's conversation and its answer queue, kept server-side (no Gradio here)."""
from __future__ import annotations

import threading
from typing import Callable

from .records import Answer
from .ui_turn import TurnView, content_text


class Session:
    """One browser session's conversation, kept server-side in a `gr.State` (never shared).

    `chat` is the truth for the chatbot (handlers render it and never trust the browser's copy).
    One answer runs at a time per session, in one answer worker: `busy` holds the `version` of the
    running answer. A question sent meanwhile is queued in `pending` (at most MAX_PENDING, more are
    declined with a hint) and its event returns at once: the running worker answers it next, so a
    tab that fires many questions holds one worker, never all of them. Stop / New chat bump
    `version` and drop the queue; the running answer stops writing at its next event. The
    condition is never held across a yield, so an abandoned answer cannot block the session."""

    MAX_PENDING = 3

    def __init__(self) -> None:
        self.chat: list[dict] = []
        self.history: list[tuple[str, str]] = []  # (question, answer text) for follow-up rewriting
        self.turns: list[dict] = []  # question, answer (Answer), hits, top_k
        self.msg_turn: dict[int, int] = {}  # chat index of a finished assistant message → its turn
        self.last_rated: dict | None = None
        self.version = 0
        self.busy: int | None = None
        self.pending: list[tuple] = []  # questions waiting for the running answer's worker
        self.live: TurnView | None = None  # the answer being streamed
        self.unrendered = False  # messages added while an answer streams, not yet sent by it
        self._cond = threading.Condition()

    def __deepcopy__(self, memo: dict) -> "Session":  # gr.State deep-copies the initial value
        return Session()

    def begin(self, version: int, item: tuple, user_msg: dict | None = None,
              declined_msg: Callable[[int], dict] | None = None) -> str:
        """"run": the caller answers `item` now (and then the queue); "queued": the running
        worker will; "full": declined (`declined_msg(n_waiting)` goes into the chat); "stale":
        Stop / New chat happened. `user_msg` goes into the chat under the same lock, so it always
        precedes its answer; a running worker renders what was added here (see `post`)."""
        with self._cond:
            if self.version != version:
                return "stale"
            if self.busy is None or self.busy != version:  # free, or only an abandoned answer runs
                self.busy = version
                if user_msg is not None:
                    self.chat.append(user_msg)
                return "run"
            if len(self.pending) >= self.MAX_PENDING:
                if declined_msg is not None:
                    self.chat.append(declined_msg(len(self.pending)))
                    self.unrendered = True
                return "full"
            self.pending.append(item)
            if user_msg is not None:
                self.chat.append(user_msg)
            self.unrendered = True
            return "queued"

    def post(self, messages: list[dict]) -> bool:
        """Add messages to the chat. True when an answer is streaming in this session: its worker
        shows them with its next update. Only that worker writes the chatbot while it runs —
        Gradio streams each event's output as diffs against what that event sent last, so a
        second writer would make the browser apply them to the wrong base."""
        with self._cond:
            self.chat.extend(messages)
            if self.busy is not None and self.busy == self.version:
                self.unrendered = True
                return True
            return False

    def next_pending(self, version: int) -> tuple[tuple | None, bool]:
        """(next queued question for the worker running `version`, None), or (None, whether the
        chat got messages since the worker's last update): then the session is free (atomically,
        so a question sent just now is either returned here or runs itself)."""
        with self._cond:
            if self.version == version and self.pending:
                return self.pending.pop(0), False
            if self.busy == version:
                self.busy = None
            unrendered, self.unrendered = self.unrendered, False
            self._cond.notify_all()
            return None, unrendered

    def release(self, version: int) -> None:
        with self._cond:
            if self.busy == version:
                self.busy = None
                if self.version != version:
                    self.pending.clear()
            self._cond.notify_all()

    def interrupt(self, timeout: float = 3.0) -> int:
        """Stop the running answer and drop the queue (returns how many questions it held); give
        the answer a moment to make its last write (woken by `release`, no polling)."""
        with self._cond:
            old, self.version = self.version, self.version + 1
            dropped = len(self.pending)
            self.pending.clear()
            self._cond.wait_for(lambda: self.busy != old, timeout)
            return dropped

    def reset(self) -> None:
        self.interrupt()
        self.chat, self.history, self.turns, self.msg_turn, self.last_rated = [], [], [], {}, None
        self.live = None

    def record(self, view: TurnView, answer: Answer, top_k: int) -> None:
        """A finished turn: kept for the sources panel, follow-up rewriting and feedback."""
        self.turns.append({"question": view.question, "answer": answer, "hits": list(answer.sources),
                           "top_k": top_k})
        self.history.append((view.question, answer.text))
        for i in view.messages():  # rewrite / evidence / thinking / answer messages
            self.msg_turn[i] = view.turn

    def mark_stopped(self, mark: str, dropped: int) -> None:
        """After `interrupt`: close pending thinking, mark the unfinished answer, and say "stopped"
        when Stop came before an answer began or dropped queued questions."""
        for m in self.chat:
            md = m.get("metadata") or {}
            if md.get("status") == "pending":
                m["metadata"] = {**md, "status": "done"}
        if self.live is not None:
            self.live.stop(mark)
            self.live = None
        if self.chat and (dropped or self.chat[-1].get("role") == "user") and content_text(self.chat[-1]) != mark:
            self.chat.append({"role": "assistant", "content": mark})
