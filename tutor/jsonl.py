"""JSON Lines, written and read one way for the whole project.

Records are split on "\\n" only. `str.splitlines()` also splits on U+2028, U+2029, U+0085 and a
few control characters, which `json.dumps(..., ensure_ascii=False)` leaves raw inside strings: a
learner's comment or a model's answer holding one would cut its record in two. We escape those
characters when writing as well, so older readers and other tools see whole lines too.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from .errors import JsonlError

# characters str.splitlines() treats as line ends that json.dumps(ensure_ascii=False) keeps raw
_SPLITTERS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085", "\x1c": "\\u001c",
              "\x1d": "\\u001d", "\x1e": "\\u001e"}


def dumps(record: object) -> str:
    """One record as one line of text (no trailing newline), safe for any line splitter."""
    line = json.dumps(record, ensure_ascii=False)
    for ch, esc in _SPLITTERS.items():
        if ch in line:
            line = line.replace(ch, esc)
    return line


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of every non-blank line, split on "\\n" only."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield lineno, line


def read(path: Path | str, skip_bad: bool = False) -> list:
    """Every record of a JSONL file. A line that is not JSON raises `JsonlError` naming the file
    and line, or is dropped with `skip_bad` (a line cut short by an interrupted writer)."""
    path = Path(path)
    out = []
    for lineno, line in lines(path.read_text(encoding="utf-8")):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if not skip_bad:
                raise JsonlError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    return out


def write(path: Path | str, records: list) -> None:
    """Write every record, one per line (the caller decides about atomicity)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for r in records:
            f.write(dumps(r) + "\n")
