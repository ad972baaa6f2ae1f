"""The `TutorError` hierarchy: each error's line and fix, and the builtin bases older `except`
sites rely on."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tutor import errors
from tutor.config import ConfigError
from tutor.corpus import CorpusError
from tutor.evaluation.dataset import DatasetError
from tutor.index import IndexError_
from tutor.llm import LLMError, NoLogprobs
from tutor.llm.probe import crashed
from tutor.models import ModelError
from tutor.progress import ProgressError
from tutor.retrieval import QuestionTooLong


def test_old_names_are_the_hierarchy_classes():
    assert (ConfigError, CorpusError, DatasetError, IndexError_, LLMError, NoLogprobs, ModelError, ProgressError,
            QuestionTooLong) == (errors.ConfigError, errors.CorpusError, errors.DatasetError, errors.IndexError_,
                                 errors.LLMError, errors.NoLogprobs, errors.ModelError, errors.ProgressError,
                                 errors.QuestionTooLong)


@pytest.mark.parametrize("cls, base", [
    (errors.EmptyQuestion, ValueError), (errors.QuestionTooLong, ValueError), (errors.ConfigError, ValueError),
    (errors.DatasetError, ValueError), (errors.JsonlError, ValueError), (errors.CorpusError, RuntimeError),
    (errors.IndexMissing, errors.IndexError_), (errors.IndexDamaged, errors.IndexError_),
    (errors.EmbedderMismatch, errors.IndexError_), (errors.IndexError_, RuntimeError),
    (errors.ContextOverflow, errors.LLMError), (errors.BackendUnreachable, errors.LLMError),
    (errors.ModelNotServed, errors.LLMError), (errors.ModelCrashed, errors.LLMError),
    (errors.LLMError, RuntimeError), (errors.ModelError, RuntimeError), (errors.ProgressError, RuntimeError),
    (errors.RunError, RuntimeError),
])
def test_every_error_keeps_its_builtin_base(cls, base):
    assert issubclass(cls, errors.TutorError) and issubclass(cls, base)


def test_lines_and_fixes():
    e = errors.EmptyQuestion()
    assert str(e) == 'empty question: ask something, e.g. tutor ask "什么是残差连接？"'
    assert (e.problem, e.fix) == ("empty question", 'ask something, e.g. tutor ask "什么是残差连接？"')
    e = errors.QuestionTooLong(2500, 2000)
    assert str(e) == ("question too long: 2,500 characters, the limit is 2,000 "
                      "(ask about one thing at a time, or raise max_question_chars)")
    assert (e.length, e.limit) == (2500, 2000)
    assert str(errors.IndexMissing(Path("idx"))) == "no index in idx/ yet: run `tutor ingest` first"
    e = errors.IndexDamaged(Path("idx/gen-1/chunks.jsonl"), "bad row")
    assert str(e) == f"idx/gen-1/chunks.jsonl is damaged (bad row): {errors.INGEST_FIX}"
    assert e.problem == "idx/gen-1/chunks.jsonl is damaged (bad row)"
    assert str(errors.LLMError("a\n  multi-line\tfailure")) == "a multi-line failure"


def test_crash_line_splits_into_problem_and_fix():
    e = crashed(Path("/m/model.gguf"), 4)
    assert str(e) == f"{e.problem} Fix: {e.fix}"
    assert "SIGILL" in e.problem and e.fix.startswith("CMAKE_ARGS=")


def test_dataset_error_lists_each_problem():
    e = errors.DatasetError("dev.jsonl", ["dev.jsonl:3: bad", "dev.jsonl:9: worse"])
    assert str(e) == "2 problems in dev.jsonl\ndev.jsonl:3: bad\ndev.jsonl:9: worse"
    assert e.problems == ["dev.jsonl:3: bad", "dev.jsonl:9: worse"]


@pytest.mark.parametrize("lines, problem", [
    (['{"id": "q1"}'], "label 1: missing kind, question"),
    ([], "no labels"),
])
def test_quiz_labels_errors_are_dataset_errors(tmp_path, lines, problem):
    from tutor.evaluation.quiz_eval import load

    (tmp_path / "labels.jsonl").write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    with pytest.raises(DatasetError, match=problem) as e:
        load(tmp_path / "labels.jsonl")
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f"{tmp_path / 'labels.jsonl'}: {problem}")


def test_a_locked_progress_database_is_told_by_its_error_code(tmp_path):
    from tutor.config import Settings
    from tutor.progress import Progress

    db = Progress.of(Settings().replace(data_dir=tmp_path))
    db.topics()  # creates and migrates the file
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        import tutor.progress as progress

        old, progress.BUSY_MS = progress.BUSY_MS, 50
        try:
            with pytest.raises(ProgressError, match="stayed locked by another writer"):
                db.mark_done("ResNet", True)
        finally:
            progress.BUSY_MS = old
    finally:
        holder.execute("ROLLBACK")
        holder.close()
