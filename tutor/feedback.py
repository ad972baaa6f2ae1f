"""The learners' ratings and comments: one JSON line each in `settings.feedback_path`.

Kept apart from the UI so the record's shape (the whole answer as `ask --json` gives it, plus the
config) is defined once and can be read back by tools without importing Gradio.
"""
from __future__ import annotations

import fcntl
import threading
from datetime import datetime, timezone
from pathlib import Path

from . import jsonl
from .config import Settings
from .records import Answer

_FEEDBACK_LOCK = threading.Lock()
FEEDBACK_COMMENT_MAX = 2000  # characters; the textbox stops there too


def append_feedback(path: Path | str, record: dict) -> None:
    """Append one JSON line; safe across threads (lock) and processes (flock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = jsonl.dumps(record) + "\n"
    with _FEEDBACK_LOCK, open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def feedback_record(settings: Settings, turn: dict, rating: str | None, comment: str, fid: str) -> dict:
    """A rating and/or comment beside the whole answer as `ask --json` gives it, and the config."""
    ans: Answer = turn["answer"]
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "feedback_id": fid,
        "rating": rating,  # "up" | "down" | None (comment only)
        "comment": (comment or "").strip()[:FEEDBACK_COMMENT_MAX],
        **ans.to_dict(),
        "question": turn["question"],
        "config": {"backend": settings.llm.backend, "model": ans.model or settings.llm.model, "top_k": turn["top_k"],
                   "retrieval_mode": settings.retrieval.mode, "embedder": settings.embedding.model},
    }
