"""Every failure a user can act on, as one `TutorError` hierarchy.

Each error carries the user-facing line (`str(e)`) and, apart, what it is about (`problem`) and
what to do (`fix`). The API raises these; the CLI (`cli.print_error`) and the web UI
(`ui.error_message`) each render them in one place and decide by type, never by the words of a
message. Each class also keeps the builtin base it had before the hierarchy existed
(`ValueError`, `RuntimeError`), so older `except` sites keep catching them.
"""
from __future__ import annotations

from pathlib import Path

INGEST_FIX = "run `tutor ingest` to repair it (`tutor ingest --rebuild` rebuilds everything)"


class TutorError(Exception):
    """One line for the user: `problem`, then `fix` after ": " (or the whole `line` as given)."""

    def __init__(self, problem: str, fix: str = "", *, line: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(line if line is not None else (f"{problem}: {fix}" if fix else problem))


# ---- questions -----------------------------------------------------------------------------------

class EmptyQuestion(TutorError, ValueError):
    """The question is empty or blank."""

    def __init__(self) -> None:
        super().__init__("empty question", 'ask something, e.g. tutor ask "什么是残差连接？"')


class QuestionTooLong(TutorError, ValueError):
    """The question is over `Settings.max_question_chars`; the message says the limit."""

    def __init__(self, length: int, limit: int) -> None:
        problem = f"question too long: {length:,} characters, the limit is {limit:,}"
        fix = "ask about one thing at a time, or raise max_question_chars"
        super().__init__(problem, fix, line=f"{problem} ({fix})")
        self.length, self.limit = length, limit


# ---- settings, corpus, index ---------------------------------------------------------------------

class ConfigError(TutorError, ValueError):
    """A bad setting: shown to the user as one line."""


class CorpusError(TutorError, RuntimeError):
    """The corpus as a whole is unusable (missing, empty)."""


class IndexError_(TutorError, RuntimeError):
    """The index is missing, damaged or does not match the configured embedder."""


class IndexMissing(IndexError_):
    """No generation is live in the index folder: nothing was ingested yet."""

    def __init__(self, index_dir: Path | str) -> None:
        super().__init__(f"no index in {index_dir}/ yet", "run `tutor ingest` first")


class IndexDamaged(IndexError_):
    """A file of the live generation cannot be read or differs from its manifest."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"{path} is damaged ({detail})", INGEST_FIX)
        self.path = path


class IndexChanging(IndexError_):
    """Ingests kept swapping generations while this process tried to load one."""

    def __init__(self, index_dir: Path | str) -> None:
        super().__init__(f"the index in {index_dir}/ kept changing while loading (ingests running?)", "try again")


class EmbedderMismatch(IndexError_):
    """The index was embedded by another model or backend than the configured one."""


# ---- models and LLM backends ---------------------------------------------------------------------

class ModelError(TutorError, RuntimeError):
    """A model cannot be found, materialised or verified: one line for the user."""


class LLMError(TutorError, RuntimeError):
    """Any LLM failure, as one user-readable line (no traceback needed to act on it)."""

    def __init__(self, problem: str, fix: str = "", *, line: str | None = None) -> None:
        super().__init__(_one_line(problem), _one_line(fix), line=None if line is None else _one_line(line))


class ContextOverflow(LLMError):
    """The prompt does not fit the model's context window."""


class BackendUnreachable(LLMError):
    """The LLM server cannot be reached, or did not answer in time."""


class ModelNotServed(LLMError):
    """The server is up but does not serve the configured model (or endpoint)."""


class EmptyReply(LLMError):
    """The server accepted the request and sent nothing back."""


class ModelCrashed(LLMError):
    """The native library died on a signal running the model (see tutor/llm/probe.py)."""


class NoLogprobs(LLMError):
    """This backend (or server) cannot return token log-probabilities."""


# ---- learner data and evals ----------------------------------------------------------------------

class ProgressError(TutorError, RuntimeError):
    """The progress database cannot be used (damaged, or from a newer tutor): one line to show."""


class JsonlError(TutorError, ValueError):
    """A line of a JSONL file is not valid JSON; names the file and the line."""


class DatasetError(TutorError, ValueError):
    """The dataset file is unusable; `problems` holds one `FILE:LINE: message` string each."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        head = f"{len(problems)} {noun} in {file}"
        super().__init__(head, "fix the lines named", line="\n".join([head, *problems]))


class RunError(TutorError, RuntimeError):
    """An eval run folder cannot take this run (it holds one with other settings)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
