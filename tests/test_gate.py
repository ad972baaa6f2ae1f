"""The relevance gate with the SHIPPED threshold (`Settings.relevance_threshold`), over a real
index of three of the study notes embedded by the shipped e5-small, in every retrieval mode.

Every other real-model test sets the threshold to 0; here it is the default. The gate's input is
the dense cosine between the question and the returned chunks — computed in bm25 mode too (it
used to be None there, so bm25 mode declined every question). Past the gate, `answer_stream`
announces the sources; a declined question ends at once and no model is ever loaded.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tutor.api import Tutor
from tutor.config import Settings
from tutor.index import ingest

ROOT = Path(__file__).resolve().parents[1]
NOTES = ("000_f27da241194530d4.txt", "001_e443e33483cd28de.txt", "004_f44a088fa554e5cf.txt")
OFF_TOPIC = ["今天天气怎么样？", "How do I bake bread?", "What's the capital of France?"]
ON_TOPIC = ["AlexNet 是什么？", "What math do I need to learn AI?", "GAN 是什么？"]


@pytest.fixture(scope="module")
def gate_index(tmp_path_factory, base_settings, embedder):
    root = tmp_path_factory.mktemp("gate")
    for name in NOTES:
        (root / "corpus" / "notes").mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "corpus" / "notes" / name, root / "corpus" / "notes" / name)
    s = base_settings.replace(corpus_dir=root / "corpus", index_dir=root / "index")
    assert s.relevance_threshold == Settings().relevance_threshold  # the shipped value, untouched
    ingest(s, embedder=embedder)
    return s


def gate(settings: Settings, embedder, question: str, mode: str) -> tuple[bool, float | None, Tutor]:
    """(passed the gate?, the gate's input) for `question` answered in retrieval `mode`."""
    tutor = Tutor(settings.replace(retrieval_mode=mode))
    tutor._embedder = embedder  # loaded once per test session
    stream = tutor.ask_stream(question)
    try:
        for ev in stream:
            if ev.kind == "sources":  # only past the gate
                return True, tutor.search(question).similarity, tutor
            if ev.kind == "done":
                assert ev.answer.refused
                return False, tutor.search(question).similarity, tutor
    finally:
        stream.close()
    raise AssertionError("no answer event")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_off_topic_questions_are_declined_by_the_gate(gate_index, embedder, mode):
    for q in OFF_TOPIC:
        passed, sim, tutor = gate(gate_index, embedder, q, mode)
        assert not passed, f"{q!r} passed the gate in {mode} mode (similarity {sim})"
        assert tutor._llm is None, "a declined question must not load the model"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_on_topic_questions_pass_the_gate(gate_index, embedder, mode):
    for q in ON_TOPIC:
        passed, sim, _ = gate(gate_index, embedder, q, mode)
        assert sim is not None, f"no gate signal in {mode} mode"
        assert passed, f"{q!r} was declined in {mode} mode (similarity {sim:.4f} < {gate_index.relevance_threshold})"


@pytest.mark.slow
def test_bm25_mode_computes_the_same_calibrated_signal(gate_index, embedder):
    """In bm25 mode the gate reads the dense cosine of the question with BM25's own hits."""
    t = Tutor(gate_index)
    t._embedder = embedder
    res = t.search("AlexNet 是什么？", mode="bm25")
    assert res.similarity is not None and res.similarity >= gate_index.relevance_threshold
    assert "gate_embed" in res.timings_ms and res.hits and all(h.retriever == "bm25" for h in res.hits)
    for q in ON_TOPIC + OFF_TOPIC:  # the same decision as dense mode: the corpus is about it, or not
        assert (t.search(q, mode="bm25").similarity >= gate_index.relevance_threshold) == \
            (t.search(q, mode="dense").similarity >= gate_index.relevance_threshold)
