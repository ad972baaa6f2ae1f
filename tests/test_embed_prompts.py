"""The embedder's prompts: a setting, else the model folder's own, else the preset's (tutor/embed_prompts.py)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tutor.config import Settings
from tutor.e5convert import PROMPTS as E5_FOLDER_PROMPTS
from tutor.embed_prompts import ST_CONFIG, EmbedPrompts, model_prompts, resolve_prompts
from tutor.embedding import Embedder
from tutor.models import EMBEDDER_PRESETS

PRESET = EmbedPrompts(query="query: ", passage="passage: ")


def _folder(tmp_path: Path, name: str, config: object) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / ST_CONFIG).write_text(text, encoding="utf-8")
    return folder


def test_settings_then_the_model_then_the_preset() -> None:
    own = {"query": "Represent the question: ", "document": "Represent the passage: "}
    assert resolve_prompts(own, PRESET) == EmbedPrompts("Represent the question: ", "Represent the passage: ")
    assert resolve_prompts(own, PRESET, query="q> ") == EmbedPrompts("q> ", "Represent the passage: ")
    assert resolve_prompts(own, PRESET, passage="") == EmbedPrompts("Represent the question: ", "")
    assert resolve_prompts({"query": "Q: "}, PRESET) == EmbedPrompts("Q: ", "passage: ")  # the preset fills in
    assert resolve_prompts({}, None) == EmbedPrompts("", "")


def test_document_prompt_names_in_sentence_transformers_order() -> None:
    assert resolve_prompts({"corpus": "c: ", "passage": "p: "}).passage == "p: "
    assert resolve_prompts({"corpus": "c: ", "passage": "p: ", "document": "d: "}).passage == "d: "
    assert resolve_prompts({"corpus": "c: "}).passage == "c: "


def test_model_prompts_read_the_folder_config(tmp_path: Path) -> None:
    good = _folder(tmp_path, "good", {"prompts": {"query": "q: ", "passage": "p: ", "bad": 3}})
    assert model_prompts(good) == {"query": "q: ", "passage": "p: "}
    assert model_prompts(_folder(tmp_path, "broken", "{not json")) == {}
    assert model_prompts(_folder(tmp_path, "none", {"prompts": None})) == {}
    assert model_prompts(tmp_path / "missing") == {}


def test_a_non_preset_model_uses_its_own_prompts_and_no_name_guess(tmp_path: Path) -> None:
    own = _folder(tmp_path, "bge-like", {"prompts": {"query": "Represent this sentence: "}})
    assert Embedder(Settings().replace(embedder=str(own), home=tmp_path)).prompts == EmbedPrompts("Represent this sentence: ", "")
    named_e5 = _folder(tmp_path, "my-e5-model", {"prompts": {}})  # "e5" in a name no longer means e5 prefixes
    assert Embedder(Settings().replace(embedder=str(named_e5), home=tmp_path)).prompts == EmbedPrompts("", "")
    base = Settings().replace(embedder=str(own), home=tmp_path)
    overridden = Embedder(dataclasses.replace(base, embedding=dataclasses.replace(base.embedding, query_prompt="",
                                                                                 passage_prompt="p: ")))
    assert overridden.prompts == EmbedPrompts("", "p: ")


def test_the_e5_preset_matches_what_its_converted_folder_configures() -> None:
    assert EMBEDDER_PRESETS["multilingual-e5-small"][1] == EmbedPrompts(E5_FOLDER_PROMPTS["query"],
                                                                         E5_FOLDER_PROMPTS["passage"])
