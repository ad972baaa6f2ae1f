"""The prompts the embedder puts before queries and passages, decided once per model.

sentence-transformers keeps a model's prompts in its folder (config_sentence_transformers.json,
"prompts"): `encode_query` uses "query", `encode_document` the first of "document", "passage",
"corpus". The exported backends (tutor/onnx_backend.py) do not run sentence-transformers, so the
prompts are resolved here from that same file and every backend prepends the same strings. Order:
a setting (query_prompt / passage_prompt), then the model's own prompt, then the preset's — a
preset only fills in what its model folder lacks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ST_CONFIG = "config_sentence_transformers.json"
QUERY_NAMES = ("query",)
DOCUMENT_NAMES = ("document", "passage", "corpus")  # sentence-transformers' encode_document order


@dataclass(frozen=True)
class EmbedPrompts:
    query: str = ""
    passage: str = ""


def model_prompts(location: Path | str) -> dict[str, str]:
    """The prompts a model folder configures; for a hub id, those of its copy in the local cache
    (nothing is fetched). Empty when there is no such file or it cannot be read."""
    if isinstance(location, Path):
        path: Path | None = location / ST_CONFIG
    else:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, ST_CONFIG)
        path = Path(cached) if isinstance(cached, str) else None
    if path is None or not path.is_file():
        return {}
    try:
        prompts = json.loads(path.read_text(encoding="utf-8")).get("prompts") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in prompts.items() if isinstance(v, str)} if isinstance(prompts, dict) else {}


def resolve_prompts(own: dict[str, str], preset: EmbedPrompts | None = None,
                    query: str | None = None, passage: str | None = None) -> EmbedPrompts:
    """The prompts to use: `query` / `passage` when set, else the model's `own` (by the names
    sentence-transformers looks for), else the `preset`'s, else none."""
    preset = preset or EmbedPrompts()

    def pick(setting: str | None, names: tuple[str, ...], fallback: str) -> str:
        if setting is not None:
            return setting
        return next((own[n] for n in names if n in own), fallback)

    return EmbedPrompts(query=pick(query, QUERY_NAMES, preset.query),
                        passage=pick(passage, DOCUMENT_NAMES, preset.passage))
