"""Multi-turn eval files (evals/MULTITURN_SCHEMA.md): the loader, its error messages, and the
real dev set `evals/datasets/dev_multiturn.jsonl`, whose every quote must be in the corpus."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor.chat import needs_rewrite, rule_rewrite
from tutor.evaluation.dataset import (FIRST_TURN_TAG, FOLLOWUP_TAG, DatasetError, is_multiturn, load_conversations,
                                      load_dataset)

ROOT = Path(__file__).resolve().parents[1]
DEV_MT = ROOT / "evals" / "datasets" / "dev_multiturn.jsonl"
CORPUS = ROOT / "corpus"
NOTE = "# 残差网络\n\nResNet 由何恺明等人在 2015 年提出。ResNet-152 的 top-5 错误率为 3.57%。\n"


def conv(cid="c1", **over) -> dict:
    c = {"id": cid, "turns": [
        {"question": "ResNet 是谁提出的？"},
        {"question": "它的 top-5 错误率是多少？", "must_include": ["3.57"],
         "evidence": [{"file": "note.md", "quote": "ResNet-152 的 top-5 错误率为 3.57%", "hop": 1}], "lang": "zh"}]}
    c.update(over)
    return c


def write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "mt.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "note.md").write_text(NOTE, encoding="utf-8")
    return tmp_path / "corpus"


def test_conversation_parses_into_scored_turns(tmp_path, corpus):
    path = write(tmp_path, [conv()])
    assert is_multiturn(path)
    (c,) = load_conversations(path, corpus)
    assert [t.question for t in c.turns] == ["ResNet 是谁提出的？", "它的 top-5 错误率是多少？"]
    assert c.turns[0].item is None  # no must_include: asked, not scored
    (item,) = c.items
    assert item.id == "c1:2" and item.type == "factoid" and item.answer == ""
    assert FOLLOWUP_TAG in item.tags and item.lang == "zh"


def test_single_turn_files_are_not_multiturn(tmp_path):
    path = tmp_path / "single.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "q"}) + "\n", encoding="utf-8")
    assert not is_multiturn(path)
    assert not is_multiturn(ROOT / "evals" / "datasets" / "dev.jsonl")


@pytest.mark.parametrize("bad, message", [
    pytest.param({"turns": [{"question": "q"}]}, "missing or empty 'id'", id="no-id"),
    pytest.param({"id": "c9", "turns": []}, "'turns' must be a non-empty list", id="no-turns"),
    pytest.param({"id": "c9", "turns": [{"question": "a"}, {"question": "b"}]}, "no scored turn", id="unscored"),
    pytest.param({"id": "c9", "turns": [{"question": "a"}, {"must_include": ["x"]}]},
                 "turns[1]: must be an object with a non-empty 'question'", id="turn-no-question"),
    pytest.param(conv("c9", turns=[{"question": "a"}, {"question": "b", "must_include": ["x"], "evidence": [],
                                                       "type": "factoid"}]),
                 "turns[1]: 'evidence' is empty", id="turn-no-evidence"),
    pytest.param(conv("c9", turns=[{"question": "b", "must_include": ["x"], "type": "trivia",
                                    "evidence": [{"file": "note.md", "quote": "ResNet"}]}]),
                 "turns[0]: unknown type 'trivia'", id="turn-bad-type"),
    pytest.param(conv("c1"), "duplicate id 'c1' (first used on line 1)", id="duplicate"),
    pytest.param('{"id": "c9", "turns": [', "invalid JSON", id="bad-json"),
])
def test_bad_conversation_names_its_line(tmp_path, bad, message):
    path = write(tmp_path, [conv(), bad])
    with pytest.raises(DatasetError) as e:
        load_conversations(path)
    assert len(e.value.problems) == 1, e.value.problems
    assert e.value.problems[0].startswith("mt.jsonl:2: ") and message in e.value.problems[0]


def test_quote_not_in_corpus_names_line_and_turn(tmp_path, corpus):
    bad = conv("c2")
    bad["turns"][1]["evidence"][0]["quote"] = "DenseNet 的错误率为 1%"
    with pytest.raises(DatasetError) as e:
        load_conversations(write(tmp_path, [conv(), bad]), corpus)
    assert e.value.problems == ["mt.jsonl:2: turns[1]: evidence[0]: quote not found in note.md: "
                                "'DenseNet 的错误率为 1%'"]


# ---- the real multi-turn dev set ------------------------------------------------------------------

def test_dev_multiturn_set_validates_against_the_corpus():
    """Every quote is a substring of its corpus file (EVAL_SCHEMA normalisation: NFKC,
    lower-case, whitespace removed; PDF pages as indexed or as pypdf reads them)."""
    convs = load_conversations(DEV_MT, CORPUS)
    assert len(convs) >= 25
    items = [it for c in convs for it in c.items]
    ups = [it for it in items if FOLLOWUP_TAG in it.tags]
    assert len(ups) >= 25 and len({it.id for it in items}) == len(items)
    assert {it.lang for it in ups} == {"zh", "en"}
    tags = {t for it in ups for t in it.tags}
    assert {"pronoun", "what_about", "topic_change", "chain"} <= tags
    assert any(len(c.turns) >= 3 for c in convs)
    assert any(FIRST_TURN_TAG in it.tags for it in items)
    for it in items:
        assert it.must_include and it.evidence, it.id
        assert all(10 <= len(e.quote) <= 80 for e in it.evidence), it.id


def test_dev_multiturn_followups_are_follow_ups_and_topic_changes_are_not():
    """The set's labels agree with the rewriter's view: every follow-up (pronoun, what-about,
    chain) needs a rewrite, and every topic change does not."""
    for c in load_conversations(DEV_MT):
        history = []
        for n, turn in enumerate(c.turns, start=1):
            if turn.item is not None and n > 1:
                if "topic_change" in turn.item.tags:
                    assert not needs_rewrite(turn.question, history), turn.item.id
                else:
                    assert needs_rewrite(turn.question, history), turn.item.id
                    assert rule_rewrite(turn.question, history) != turn.question, turn.item.id
            history.append((turn.question, ""))


def test_single_turn_loader_refuses_a_multiturn_file_clearly():
    with pytest.raises(DatasetError) as e:
        load_dataset(DEV_MT)
    assert "missing required field 'question'" in str(e.value)
