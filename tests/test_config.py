"""tutor.config: defaults → tutor.toml → TUTOR_* env → explicit overrides; bad values are ConfigErrors."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from tutor.config import FLAT, GROUPS, ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def no_stray_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./tutor.toml is read by default: start from an empty folder


def toml(tmp_path: Path, text: str, name: str = "tutor.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults():
    s = load_settings(env={})
    assert s == Settings()
    assert (s.corpus_dir, s.index_dir, s.embedder) == (Path("corpus"), Path("index"), "multilingual-e5-small")
    assert s.retrieval_mode == "hybrid" and s.backend == "llamacpp" and s.temperature is None
    assert isinstance(s.home, Path) and s.home.name == "tutor"
    d = s.as_dict()
    assert set(d) == set(FLAT) and len(d) == sum(len(fields(getattr(s, g))) for g in GROUPS)
    assert d["corpus_dir"] == "corpus"
    # every default survives the trip through its TUTOR_* variable (what `tutor models` shows is settable)
    env = {f"TUTOR_{k.upper()}": str(v) for k, v in d.items() if v is not None}
    assert load_settings(env=env) == s


def test_toml_top_level_keys(tmp_path):
    toml(tmp_path, 'top_k = 8\nchunk_size = 300\ncorpus_dir = "~/notes"\ncross_lingual = false\n'
                   'temperature = 0.3\nmodel = "smollm2-135m"\n')
    s = load_settings(env={})
    assert (s.top_k, s.chunk_size, s.cross_lingual, s.temperature, s.model) == (8, 300, False, 0.3, "smollm2-135m")
    assert s.corpus_dir == Path("~/notes").expanduser() and s.index_dir == Path("index")


def test_toml_tutor_table_and_mixed(tmp_path):
    toml(tmp_path, '[tutor]\ntop_k = 7\nbackend = "openai"\n')
    s = load_settings(env={})
    assert (s.top_k, s.backend) == (7, "openai")
    # keys above the [tutor] header are top-level; both count (the table wins on a clash)
    toml(tmp_path, 'top_k = 3\nanswer_k = 2\n[tutor]\ntop_k = 9\n')
    s = load_settings(env={})
    assert (s.top_k, s.answer_k) == (9, 2)


def test_explicit_config_file_and_tutor_config_env(tmp_path):
    toml(tmp_path, "top_k = 1\n")  # ./tutor.toml: ignored when another file is named
    other = toml(tmp_path, "top_k = 11\n", "other.toml")
    assert load_settings(other, env={}).top_k == 11
    assert load_settings(env={"TUTOR_CONFIG": str(other)}).top_k == 11
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(env={"TUTOR_CONFIG": str(tmp_path / "missing.toml")})


def test_env_overrides_file_and_overrides_win(tmp_path):
    toml(tmp_path, 'top_k = 8\nbackend = "openai"\nrelevance_threshold = 0.5\n')
    env = {"TUTOR_TOP_K": "12", "TUTOR_CROSS_LINGUAL": "off", "TUTOR_HOME": "/models",
           "TUTOR_N_THREADS": "4", "TUTOR_TEMPERATURE": "", "TUTOR_NOT_A_SETTING": "x", "OTHER": "y"}
    s = load_settings(env=env)
    assert (s.top_k, s.backend, s.relevance_threshold) == (12, "openai", 0.5)
    assert s.cross_lingual is False and s.home == Path("/models") and s.n_threads == 4
    assert s.temperature is None  # empty env var: unset
    s = load_settings(env=env, top_k=3, backend=None, chunk_size="250")
    assert (s.top_k, s.backend, s.chunk_size) == (3, "openai", 250)  # None override: not given


def test_empty_env_var_means_unset():
    s = load_settings(env={"TUTOR_HOME": "", "TUTOR_CORPUS_DIR": "  ", "TUTOR_TOP_K": ""})
    assert s.home == Settings().home and s.corpus_dir == Path("corpus") and s.top_k == 5


@pytest.mark.parametrize("value, expected", [("1", True), ("TRUE", True), ("yes", True), (" on ", True),
                                             ("0", False), ("false", False), ("No", False), ("off", False)])
def test_bool_words(value, expected):
    assert load_settings(env={"TUTOR_SPLIT_PARTS": value}).split_parts is expected


@pytest.mark.parametrize("env, setting", [
    ({"TUTOR_TOP_K": "five"}, "top_k"),
    ({"TUTOR_TOP_K": "2.5"}, "top_k"),
    ({"TUTOR_RELEVANCE_THRESHOLD": "high"}, "relevance_threshold"),
    ({"TUTOR_CROSS_LINGUAL": "maybe"}, "cross_lingual"),
    ({"TUTOR_N_THREADS": "many"}, "n_threads"),
    ({"TUTOR_PORT": "80a"}, "port"),
])
def test_bad_env_value_names_the_setting(env, setting):
    with pytest.raises(ConfigError, match=rf"{next(iter(env))}: setting '{setting}'"):
        load_settings(env=env)


@pytest.mark.parametrize("text, setting", [
    ('top_k = "many"\n', "top_k"),
    ("top_k = 2.5\n", "top_k"),
    ("top_k = true\n", "top_k"),
    ('cross_lingual = "sometimes"\n', "cross_lingual"),
    ("temperature = [0.1]\n", "temperature"),
    ('model = ["a", "b"]\n', "model"),
    ("corpus_dir = 5\n", "corpus_dir"),
    ("[tutor]\nchunk_size = {a = 1}\n", "chunk_size"),
])
def test_bad_toml_value_names_the_setting(tmp_path, text, setting):
    toml(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"tutor\.toml: setting '{setting}'"):
        load_settings(env={})


def test_toml_int_valued_float_is_fine(tmp_path):
    toml(tmp_path, "top_k = 4.0\nrelevance_threshold = 1\n")
    s = load_settings(env={})
    assert s.top_k == 4 and isinstance(s.top_k, int) and s.relevance_threshold == 1.0


@pytest.mark.parametrize("text", ["no_such_setting = 1\n", "[tutor]\nTop_K = 3\n", "[ui]\ntop_k = 1\n",
                                  'tutor = "x"\n'])
def test_unknown_key_in_toml(tmp_path, text):
    toml(tmp_path, text)
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(env={})


def test_invalid_toml(tmp_path):
    toml(tmp_path, "top_k = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={})
    (tmp_path / "tutor.toml").write_bytes(b"model = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={})


def test_unknown_override_and_replace():
    with pytest.raises(ConfigError, match="unknown setting 'nope'"):
        load_settings(env={}, nope=1)
    s = Settings().replace(top_k="3", index_dir="/tmp/i", temperature=None)
    assert s.top_k == 3 and s.index_dir == Path("/tmp/i") and s.temperature is None
    with pytest.raises(ConfigError, match="'chunk_size'"):
        Settings().replace(chunk_size="big")


def test_os_environ_is_the_default_env(monkeypatch):
    monkeypatch.setenv("TUTOR_TOP_K", "6")
    assert load_settings().top_k == 6


def test_grouped_toml_tables_and_grouped_access(tmp_path):
    toml(tmp_path, '[retrieval]\ntop_k = 8\nmode = "bm25"\n[embedding]\nbackend = "torch"\n'
                   '[judge]\nname = "lexical"\nmodel = "big"\n[llm]\nbackend = "openai"\n[ui]\nport = 9000\n')
    s = load_settings(env={})
    assert (s.retrieval.top_k, s.retrieval.mode, s.embedding.backend) == (8, "bm25", "torch")
    assert (s.judge.name, s.judge.model, s.llm.backend, s.ui.port) == ("lexical", "big", "openai", 9000)
    # the flat names read the same values (scripts written before the groups)
    assert (s.top_k, s.retrieval_mode, s.embed_backend, s.judge_model, s.backend) == (8, "bm25", "torch", "big",
                                                                                     "openai")
    # env and flags by flat name beat the file's groups
    s = load_settings(env={"TUTOR_RETRIEVAL_MODE": "dense", "TUTOR_JUDGE": "claims"}, top_k=3)
    assert (s.retrieval.mode, s.judge.name, s.retrieval.top_k) == ("dense", "claims", 3)
    grouped = s.grouped()
    assert set(grouped) == set(GROUPS) and grouped["retrieval"]["top_k"] == 3
    assert grouped["paths"]["corpus_dir"] == "corpus"


def test_bad_key_in_a_group_names_the_group(tmp_path):
    toml(tmp_path, "[retrieval]\ntop_kk = 8\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'top_kk' in \[retrieval\]"):
        load_settings(env={})
    toml(tmp_path, '[retrieval]\ntop_k = "many"\n')
    with pytest.raises(ConfigError, match="'top_k'"):
        load_settings(env={})


def test_flat_names_are_unique_and_every_field_has_one():
    assert len(FLAT) == len(set(FLAT.values()))
    for name, (group, attr) in FLAT.items():
        assert getattr(getattr(Settings(), group), attr) == getattr(Settings(), name) or name == "judge"
    assert Settings().judge.name == "claims"  # `judge` is the group; its flat name reads judge.name


def test_the_cli_reads_no_settings_at_import():
    import subprocess
    import sys

    code = ("import tutor.config as c\n"
            "def boom(*a, **k): raise SystemExit('load_settings called at import')\n"
            "c.load_settings = boom\n"
            "import tutor.cli\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
