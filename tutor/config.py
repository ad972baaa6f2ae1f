"""The one settings object: defaults in code → `tutor.toml` → `TUTOR_*` env vars → CLI flags.

This is the only module that reads the environment; everything else receives a `Settings`.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, get_type_hints

import platformdirs

from .errors import ConfigError

ENV_PREFIX = "TUTOR_"
CONFIG_FILE = "tutor.toml"
JUDGE_LABELS = Path("evals/datasets/judge_labels.jsonl")


def _flat(default: Any, flat: str) -> Any:
    """A grouped field whose flat name (TUTOR_* env, CLI flag, old tutor.toml key) differs."""
    return field(default=default, metadata={"flat": flat})


@dataclass(frozen=True)
class PathSettings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    home: Path = Path(platformdirs.user_cache_dir("tutor"))  # model cache; TUTOR_HOME overrides
    data_dir: Path = Path(platformdirs.user_data_dir("tutor"))  # learner progress (progress.db); TUTOR_DATA overrides


@dataclass(frozen=True)
class EmbeddingSettings:
    # a preset name, a local sentence-transformers folder or a hub id
    model: str = _flat("multilingual-e5-small", "embedder")
    query_prompt: str | None = None  # None: the model folder's own prompt, else the preset's (embed_prompts.py)
    passage_prompt: str | None = None
    # texts per forward pass on the CPU (a GPU measures its own: `tutor eval`): measured on 2 cores
    # over the corpus, 2 beats 8 on every backend (torch 19 vs 13 chunks/s; openvino 38.5 vs 29):
    # chunks differ in length, and a small batch pads less
    batch_size: int = _flat(2, "embed_batch_size")
    # "openvino" (fp32) | "openvino-bf16" (bf16 on CPUs with AMX: faster, ranks a little differently)
    # | "openvino-int8" (NNCF static int8: weights and activations) | "onnx" (ONNX Runtime, int8
    # weights): these run an export made once into the model cache and verified against torch
    # | "torch" (sentence-transformers; use it on a GPU). Chosen by README "Numbers"; a change
    # re-embeds the corpus.
    backend: str = _flat("openvino", "embed_backend")
    # chunking (characters); chosen on the dev set, see README "Numbers"
    chunk_size: int = 500
    chunk_overlap: int = 80


@dataclass(frozen=True)
class RetrievalSettings:
    """Defaults chosen on the dev set + a private check set: see tutor/retrieval.py."""
    # questions: longer ones are refused with a clear error (the UI textbox counts towards it)
    max_question_chars: int = 2000
    mode: str = _flat("hybrid", "retrieval_mode")  # hybrid | dense | bm25
    top_k: int = 5
    candidates: int = 30  # per retriever list, before fusion
    rrf_k: int = 60
    cross_lingual: bool = True  # bilingual query expansion (zh↔en glossary)
    translated_weight: float = 1.0  # RRF weight of the glossary-expanded question's lists
    original_weight: float = 0.0  # RRF weight of the bare question's lists when it was expanded
    split_parts: bool = True  # also search each part of a multi-part question ("X？Y？")
    max_query_parts: int = 4  # at most this many parts get their own search (a list of 50 "?" would fan out)
    part_weight: float = 0.5  # RRF weight of each part's lists
    standalone_weight: float = 1.0  # RRF weight of a follow-up's other standalone form (chat.Rewrite)
    dense_weight: float = 0.5  # RRF weight of dense lists in hybrid mode (BM25 lists: bm25_weight)
    bm25_weight: float = 1.0
    source_boost: float = 0.5  # score boost for the folder a question points at ("my notes", "d2l")
    heading_boost: float = 0.2  # score boost for chunks whose title/section names the question's names
    file_cap: int = 2  # at most this many chunks of one file per top_k places (0: no cap)
    lead_bonus: int = 1  # ... except the top hit's file, which may have this many more
    bm25_k1: float = 1.5  # used at ingest (recorded in the manifest); a change rebuilds BM25 only
    bm25_b: float = 0.75
    # best dense cosine of the hits; below it we decline without calling the LLM. 0.86: on the dev set
    # no answerable item falls below it (lowest 0.864) while off-topic questions do (0.82–0.855)
    relevance_threshold: float = 0.86


@dataclass(frozen=True)
class LLMSettings:
    backend: str = "llamacpp"  # llamacpp | openai | vllm
    model: str = "qwen2.5-coder-0.5b"  # preset name, GGUF path, or served model name
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str = "EMPTY"
    timeout_s: float = 120.0
    retries: int = 2
    max_tokens: int = 512
    temperature: float | None = None  # None: model default (0 for most, 0.6 for R1 distills)
    top_p: float | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    # run llama.cpp once in a child process per (library build, model) before loading it in-process,
    # so a library built for instructions this CPU lacks is a clear error, not a segfault
    llama_probe: bool = True
    # llama.cpp flash attention: reads the prompt ~10 % faster on 2 cores (451-token prompt 3.7 s vs
    # 4.2 s, 0.5B), and prompt reading is most of the time to the first token
    flash_attn: bool = True


@dataclass(frozen=True)
class AnswerSettings:
    """Evidence-first answers (tutor/evidence.py); chosen on dev + check, see README "Numbers"."""
    # retrieved chunks the evidence units are selected from: the unit budget, not this, sizes the
    # prompt. 0.5B dev / check correct: 4 → 53/81, 11/24 · 6 → 58, 12 · 8 → 59, 14
    answer_k: int = 8
    evidence_tokens: int = 360  # token budget of the selected units in the prompt
    evidence_units: int = 8
    evidence_dense_weight: float = 0.5  # weight of unit–question cosine beside lexical coverage
    # units (the best by lexical score and rank) whose cosine with the question is computed: each
    # costs an embedding (~19 ms on 2 cores) before the evidence can show. 12 vs 24 on dev + check:
    # correct 45/81 and 12/24 vs 45/81 and 11/24, selection p50 334 ms vs 503 ms
    evidence_dense_units: int = 12
    min_coverage: float = 0.0  # share of the asked-for attribute's words one unit's window must hold (0: off — it cost
    # false refusals on dev + check at every level tried, 0.1–0.5, while names/figure/measure rules catch the near misses)
    min_evidence_score: float = 0.0  # best unit's score below this: decline


@dataclass(frozen=True)
class JudgeSettings:
    """The evals' judge, configured apart from the answering model."""
    name: str = _flat("claims", "judge")  # claims | lexical | llm | likelihood
    mode: str = _flat("logprob", "judge_mode")  # llm judge: logprob (yes/no log-odds vs a calibrated threshold) | text
    threshold: float | None = _flat(None, "judge_threshold")  # llm judge log-odds cut; None: calibrated for the model
    backend: str = _flat("llamacpp", "judge_backend")
    model: str = _flat("qwen2.5-coder-0.5b", "judge_model")
    base_url: str = _flat("http://127.0.0.1:8000/v1", "judge_base_url")
    labels: Path = _flat(JUDGE_LABELS, "judge_labels")  # hand labels the report measures the judge's agreement with


@dataclass(frozen=True)
class UISettings:
    host: str = "127.0.0.1"
    port: int = 7860
    feedback_path: Path = Path("feedback/feedback.jsonl")
    auth: str | None = None  # "user:password" for the web UI (required to serve beyond loopback)


@dataclass(frozen=True)
class QuizSettings:
    # let the LLM rephrase template questions (checked; the template stands on failure). Off by default:
    # with Qwen2.5-Coder-0.5B on 2 cores 9 of 39 rephrasings passed the checks, most unchanged, at ~17 s/question
    llm_phrasing: bool = _flat(False, "quiz_llm_phrasing")
    llm_grader: bool = _flat(False, "quiz_llm_grader")  # ask the LLM for explanation verdicts (a strong model only)


@dataclass(frozen=True)
class Settings:
    """Grouped settings (`[retrieval] top_k = 8` in tutor.toml). Every setting also has one flat
    name — `top_k`, `embed_backend`, `judge_model` — which `TUTOR_*` env vars, CLI flags,
    `replace()` and flat tutor.toml keys use, so scripts written before the groups keep working."""
    paths: PathSettings = field(default_factory=PathSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    ui: UISettings = field(default_factory=UISettings)
    quiz: QuizSettings = field(default_factory=QuizSettings)

    def replace(self, **changes: Any) -> "Settings":
        """Apply overrides by flat name (e.g. CLI flags), ignoring those left as None."""
        by_group: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if value is None:
                continue
            group, attr = _where(name)
            by_group.setdefault(group, {})[attr] = _coerce(name, value)
        return dataclasses.replace(self, **{g: dataclasses.replace(getattr(self, g), **kv)
                                            for g, kv in by_group.items()})

    def __getattr__(self, name: str) -> Any:
        """Read a setting by its flat name (`settings.top_k`), as scripts did before the groups."""
        if name.startswith("__") or name not in FLAT:
            raise AttributeError(name)
        group, attr = FLAT[name]
        return getattr(getattr(self, group), attr)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by flat name (the keys run signatures and `tutor models --json` use)."""
        return {name: (str(v) if isinstance(v := getattr(getattr(self, g), a), Path) else v)
                for name, (g, a) in FLAT.items()}

    def grouped(self) -> dict[str, dict[str, Any]]:
        """Every setting by group and field, as tutor.toml writes them."""
        return regroup(self.as_dict())


GROUPS = [f.name for f in fields(Settings)]
_GROUP_TYPES = {f.name: f.default_factory for f in fields(Settings)}  # type: ignore[misc]
# flat name → (group, field)
FLAT: dict[str, tuple[str, str]] = {f.metadata.get("flat", f.name): (g, f.name)
                                    for g, cls in _GROUP_TYPES.items() for f in fields(cls)}
_HINTS = {flat: get_type_hints(_GROUP_TYPES[g])[a] for flat, (g, a) in FLAT.items()}


def regroup(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Values keyed by flat name (`as_dict`, or a masked copy of it) → by group and field."""
    out: dict[str, dict[str, Any]] = {}
    for name, (group, attr) in FLAT.items():
        out.setdefault(group, {})[attr] = flat[name]
    return out


def _where(flat: str) -> tuple[str, str]:
    if flat not in FLAT:
        raise ConfigError(f"unknown setting {flat!r}")
    return FLAT[flat]


def _coerce(name: str, value: Any) -> Any:
    if name not in _HINTS:
        raise ConfigError(f"unknown setting {name!r}")
    hint = str(_HINTS[name]).replace("<class '", "").replace("'>", "").replace("pathlib.", "")
    if value is None or (isinstance(value, str) and value == "" and "None" in hint):
        return None
    try:
        if isinstance(value, (list, dict)):  # a TOML array / table where one value belongs
            raise TypeError
        if "Path" in hint:
            return Path(value).expanduser()
        if "bool" in hint:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError
            return word in _TRUE
        if ("int" in hint or "float" in hint) and isinstance(value, bool):
            raise TypeError
        if "int" in hint and "float" not in hint:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if "float" in hint:
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r}: cannot read {value!r} as {hint}") from None
    return str(value) if not isinstance(value, str) else value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def load_settings(config_file: Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the effective settings. `env` defaults to os.environ (tests pass their own)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    named = config_file is not None or f"{ENV_PREFIX}CONFIG" in env  # asked for: must exist
    path = config_file or (Path(env[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in env
                           else Path(CONFIG_FILE))
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        if isinstance(data.get("tutor"), dict):  # a [tutor] table, maybe beside top-level keys
            data = {**{k: v for k, v in data.items() if k != "tutor"}, **data["tutor"]}
        for k, v in _flatten(data, path).items():
            try:
                values[k] = _coerce(k, v)
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
    elif named:
        raise ConfigError(f"config file not found: {path}")
    if f"{ENV_PREFIX}DATA" in env and env[f"{ENV_PREFIX}DATA"].strip():  # the documented short name of data_dir
        values["data_dir"] = _coerce("data_dir", env[f"{ENV_PREFIX}DATA"])
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG":
            name = key[len(ENV_PREFIX):].lower()
            if name in FLAT and raw.strip() != "":  # `TUTOR_HOME=` means unset, not "."
                try:
                    values[name] = _coerce(name, raw)
                except ConfigError as e:
                    raise ConfigError(f"{key}: {e}") from None
    return Settings().replace(**values).replace(**overrides)


def _flatten(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """tutor.toml's keys by flat name: `[retrieval] top_k = 8` and a flat `top_k = 8` alike."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _GROUP_TYPES and isinstance(value, dict):
            by_attr = {a: flat for flat, (g, a) in FLAT.items() if g == key}
            for attr, v in value.items():
                if attr not in by_attr:
                    raise ConfigError(f"{path}: unknown setting {attr!r} in [{key}] "
                                      f"(known: {', '.join(sorted(by_attr))})")
                out[by_attr[attr]] = v
        else:
            out[key] = value
    return out
