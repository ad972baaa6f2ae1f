"""The run signature is derived from the settings: every setting that can change results is in
it, resuming with one changed is refused, and a signature written before a setting existed still
matches a run at that setting's default."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tutor.config import FLAT, Settings
from tutor.errors import RunError
from tutor.evaluation.runner import EvalOptions, run
from tutor.evaluation.signature import ANSWER_ONLY, NOT_RESULTS, differences, run_signature

ITEM = {"id": "u1", "question": "What GPU did the authors of the notes buy in 2023?", "type": "unanswerable",
        "lang": "en", "answer": "NOT_IN_CORPUS", "must_include": [], "evidence": []}


def test_every_setting_is_classified_and_the_answer_knobs_count():
    names = set(FLAT)
    assert NOT_RESULTS <= names and ANSWER_ONLY <= names
    full = run_signature(Settings(), "d.jsonl", False, "claims")
    for key in ("temperature", "top_p", "max_tokens", "n_ctx", "flash_attn", "bm25_k1", "bm25_b",
                "evidence_tokens", "evidence_units", "evidence_dense_weight", "min_coverage", "judge_model"):
        assert key in full, key
    assert not (NOT_RESULTS & set(full))
    retrieval = run_signature(Settings(), "d.jsonl", True, "claims")
    assert "bm25_k1" in retrieval and "temperature" not in retrieval and "judge" not in retrieval


def test_server_addresses_are_masked_and_only_count_for_servers():
    s = Settings().replace(backend="openai", base_url="http://user:secret@gpu:8000/v1")
    sig = run_signature(s, "d.jsonl", False, "claims")
    assert "secret" not in json.dumps(sig) and sig["base_url"] and sig["judge_base_url"] is None


def test_a_new_setting_missing_from_an_old_signature_counts_as_its_default():
    new = run_signature(Settings(), "d.jsonl", True, "claims")
    old = {k: v for k, v in new.items() if k not in ("bm25_k1", "bm25_b")}
    assert differences(old, new) == []
    assert differences(old, run_signature(Settings().replace(bm25_b=0.5), "d.jsonl", True, "claims")) == ["bm25_b"]


class _NoSearch:
    """A tutor whose retrieval must not run: resuming is refused before any item is asked."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def search(self, *a, **kw):
        raise AssertionError("searched")


def test_resuming_with_another_temperature_is_refused(tmp_path):
    dataset = tmp_path / "d.jsonl"
    dataset.write_text(json.dumps(ITEM) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "note.md").write_text("# ResNet\n\n残差连接。\n", encoding="utf-8")
    s = Settings().replace(corpus_dir=tmp_path / "corpus")
    sig = run_signature(s, dataset, False, "lexical")
    (out / "run.json").write_text(json.dumps({"signature": sig}), encoding="utf-8")
    (out / "results.jsonl").write_text(json.dumps({"id": "u1"}) + "\n", encoding="utf-8")
    opts = EvalOptions(dataset=dataset, out=out, judge="lexical")
    with pytest.raises(RunError, match=r"other settings \(temperature\)"):
        run(_NoSearch(s.replace(temperature=0.7)), opts, answer_row=lambda *a: SimpleNamespace())
