"""`Answer.to_dict` is the one complete serialisation (`ask --json`, eval rows, UI feedback), and
the answer events have a closed set of kinds."""
from __future__ import annotations

import typing
from dataclasses import fields

from tutor.config import Settings
from tutor.records import Answer, Chunk, Citation, Event, EventKind, Hit
from tutor.feedback import feedback_record

CHUNK = Chunk("c1", "resnet.md", "notes/resnet.md", "ResNet", "ResNet › 残差", None, 0, 10, "残差连接让深层网络可以训练。")


def _answer() -> Answer:
    hit = Hit(CHUNK, 0.5, 1)
    return Answer("残差连接？", "残差连接让深层网络可以训练[1]。", False, [Citation(1, CHUNK)], [hit],
                  standalone_question="ResNet 的残差连接？", invalid_citations=[3], grounded=True)


def test_every_answer_field_is_serialised():
    d = _answer().to_dict()
    renamed = {"text": "answer"}
    assert {renamed.get(f.name, f.name) for f in fields(Answer)} == set(d)
    assert d["invalid_citations"] == [3] and d["standalone_question"] == "ResNet 的残差连接？" and d["grounded"]


def test_sources_say_their_citation_number_beside_the_hit_fields():
    src = _answer().to_dict()["sources"][0]
    assert src == {**Hit(CHUNK, 0.5, 1).to_dict(), "n": 1}


def test_feedback_keeps_its_keys_and_carries_the_whole_answer():
    rec = feedback_record(Settings(), {"question": "残差连接？", "answer": _answer(), "top_k": 5}, "up", "好", "f1")
    assert {"timestamp", "feedback_id", "rating", "comment", "question", "standalone_question", "answer",
            "citations", "refused", "grounded", "sources", "timings_ms", "config"} <= set(rec)
    assert set(_answer().to_dict()) <= set(rec)
    assert {"n", "chunk_id", "file", "section", "page"} <= set(rec["sources"][0])


def test_event_kinds_are_a_closed_set():
    assert set(typing.get_args(EventKind)) == {"stage", "rewritten", "sources", "evidence", "token", "reasoning",
                                               "done"}
    assert Event("rewritten", text="ResNet 的残差连接？").text
