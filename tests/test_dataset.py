"""Tests for the eval dataset loader/validator (tutor.evaluation.dataset)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tutor.evaluation.dataset import (
    TYPES,
    DatasetError,
    EvalItem,
    Evidence,
    load_dataset,
    normalize,
    normalize_for_chunk,
)

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "evals" / "datasets" / "dev.jsonl"
CORPUS = ROOT / "corpus"

NOTE_TEXT = (
    "# 残差网络\n\nResNet 的核心是残差连接：y = F(x) + x。\n\n"
    "| 模型 | 错误率 |\n|---|---|\n| **ResNet-152** | 3.57% |\n"
)


def good(id_="t-1", **over) -> dict:
    item = {
        "id": id_, "question": "ResNet 的核心是什么？", "type": "factoid",
        "answer": "残差连接 y = F(x) + x。", "must_include": ["残差"],
        "evidence": [{"file": "note.md", "quote": "ResNet 的核心是残差连接", "hop": 1}],
        "lang": "zh", "tags": [],
    }
    item.update(over)
    return item


def write(tmp_path: Path, lines: list) -> Path:
    """Each entry is a dict (dumped as JSON) or a raw string (written as is)."""
    path = tmp_path / "set.jsonl"
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus" / "notes"
    d.mkdir(parents=True)
    (d / "note.md").write_text(NOTE_TEXT, encoding="utf-8")
    return tmp_path / "corpus"


# ------------------------------------------------------------------ the real dev set

def test_dev_set_loads_and_validates_against_corpus():
    items = load_dataset(DEV, CORPUS)
    assert len(items) >= 90
    assert {i.type for i in items} == set(TYPES)
    assert len({i.id for i in items}) == len(items)
    assert all(isinstance(e, Evidence) for i in items for e in i.evidence)
    for i in items:
        if i.answerable:
            assert i.must_include and i.evidence, i.id
        else:
            assert i.answer == "NOT_IN_CORPUS" and not i.must_include and not i.evidence, i.id
    multi = [i for i in items if i.type == "multi_hop"]
    assert multi and all(len({e.hop for e in i.evidence}) >= 2 for i in multi)
    cross = [i for i in items if "cross_lingual" in i.tags]
    assert len(cross) >= 0.25 * len(items)


# ------------------------------------------------------------------ well-formed input

def test_valid_items_parse_with_defaults(tmp_path, tiny_corpus):
    unans = {"id": "t-2", "question": "ResNet-152 有多少参数？", "type": "unanswerable",
             "answer": "NOT_IN_CORPUS", "must_include": [], "evidence": [],
             "distractors": [{"file": "note.md", "quote": "**ResNet-152** | 3.57%"}]}
    no_hop = good("t-3", evidence=[{"file": "note.md", "quote": "y = F(x) + x"}], lang=None)
    del no_hop["tags"]
    path = write(tmp_path, [good(), "", "   ", unans, no_hop])  # blank lines are skipped
    items = load_dataset(path, tiny_corpus)
    assert [i.id for i in items] == ["t-1", "t-2", "t-3"]
    assert isinstance(items[0], EvalItem)
    assert items[1].distractors[0]["file"] == "note.md" and not items[1].answerable
    assert items[2].evidence == [Evidence("note.md", "y = F(x) + x", 1)]
    assert items[2].tags == [] and items[2].lang is None and items[2].note is None


def test_quote_matching_ignores_whitespace_case_and_width(tmp_path, tiny_corpus):
    quote = "ｒｅｓｎｅｔ　的核心是\n残差连接：Y=F(X)+X"  # full-width, U+3000, newline, case
    path = write(tmp_path, [good(evidence=[{"file": "note.md", "quote": quote}])])
    assert load_dataset(path, tiny_corpus)[0].evidence[0].quote == quote


# ------------------------------------------------------------------ one bad line each

BAD_LINES = [
    pytest.param({k: v for k, v in good("t-9").items() if k != "answer"},
                 "missing required field 'answer'", id="missing-field"),
    pytest.param(good("t-9", type="factiod"), "unknown type 'factiod' (expected one of factoid,",
                 id="unknown-type"),
    pytest.param('{"id": "t-9", "question": "x", ', "invalid JSON", id="bad-json"),
    pytest.param(good("t-1"), "duplicate id 't-1' (first used on line 1)", id="duplicate-id"),
    pytest.param(good("t-9", must_include="残差"), "field 'must_include' must be a list",
                 id="wrong-type"),
    pytest.param(good("t-9", question="  "), "empty 'question'", id="empty-question"),
    pytest.param(good("t-9", must_include=[]), "'must_include' is empty", id="no-must-include"),
    pytest.param(good("t-9", evidence=[]), "'evidence' is empty", id="no-evidence"),
    pytest.param(good("t-9", evidence=[{"file": "note.md", "quote": "残差", "hop": 0}]),
                 "'hop' must be a positive integer", id="bad-hop"),
    pytest.param(good("t-9", type="unanswerable", must_include=[], evidence=[]),
                 "must have answer 'NOT_IN_CORPUS'", id="unanswerable-answer"),
    pytest.param(["not", "an", "object"], "expected a JSON object", id="not-object"),
]


@pytest.mark.parametrize("bad, message", BAD_LINES)
def test_bad_line_is_reported_with_its_line_number(tmp_path, bad, message):
    path = write(tmp_path, [good("t-1"), "", bad])  # the bad item sits on line 3
    with pytest.raises(DatasetError) as exc:
        load_dataset(path)
    err = exc.value
    assert len(err.problems) == 1, err.problems
    assert err.problems[0].startswith("set.jsonl:3: ")
    assert message in err.problems[0]
    assert str(err).splitlines()[0] == "1 problem in set.jsonl"


def test_quote_not_found_names_line_and_file(tmp_path, tiny_corpus):
    missing = [{"file": "note.md", "quote": "DenseNet 的核心是稠密连接"}]
    path = write(tmp_path, [good(), good("t-2", evidence=missing)])
    with pytest.raises(DatasetError) as exc:
        load_dataset(path, tiny_corpus)
    (problem,) = exc.value.problems
    assert problem.startswith("set.jsonl:2: evidence[0]: quote not found in note.md")


def test_unknown_corpus_file_is_reported(tmp_path, tiny_corpus):
    path = write(tmp_path, [good(evidence=[{"file": "notes.md", "quote": "ResNet 的核心是残差连接"}])])
    with pytest.raises(DatasetError) as exc:
        load_dataset(path, tiny_corpus)
    (problem,) = exc.value.problems
    assert problem.startswith("set.jsonl:1: evidence[0]: file 'notes.md' is not in the corpus")
    assert "did you mean 'note.md'" in problem


def test_corpus_is_not_checked_without_corpus_dir(tmp_path):
    path = write(tmp_path, [good(evidence=[{"file": "nowhere.md", "quote": "anything at all"}])])
    assert len(load_dataset(path)) == 1


def test_all_problems_are_collected_in_one_error(tmp_path, tiny_corpus):
    path = write(tmp_path, [
        good("t-1"),
        "{broken",
        good("t-3", type="factiod"),
        good("t-1"),
        good("t-5", evidence=[{"file": "note.md", "quote": "这句话不在笔记里面"}]),
        {k: v for k, v in good("t-6").items() if k != "question"},
    ])
    with pytest.raises(DatasetError) as exc:
        load_dataset(path, tiny_corpus)
    err = exc.value
    lines = str(err).splitlines()
    assert lines[0] == "5 problems in set.jsonl"
    assert [p.split(":")[1] for p in err.problems] == ["2", "3", "4", "5", "6"]  # file order
    assert lines[1:] == err.problems


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no items"):
        load_dataset(path)


def test_pdf_quote_from_raw_pypdf_text_also_validates(tmp_path):
    """A quote copied from raw `page.extract_text()` keeps the hyphenated line break that the
    corpus cleaner joins ("combina-\\ntion" → "combination"); it must still validate."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "papers" / "deepseekmoe_2024.pdf", corpus)
    ev = lambda q: [{"file": "deepseekmoe_2024.pdf", "quote": q}]  # noqa: E731
    path = write(tmp_path, [
        good("raw", evidence=ev("more flexible and adaptable combina-\ntion of activated experts")),
        good("clean", evidence=ev("more flexible and adaptable combination of activated experts")),
    ])
    assert [i.id for i in load_dataset(path, corpus)] == ["raw", "clean"]
    path = write(tmp_path, [good("bad", evidence=ev("a quote that is on no page of this paper"))])
    with pytest.raises(DatasetError, match="quote not found in deepseekmoe_2024.pdf"):
        load_dataset(path, corpus)


# ------------------------------------------------------------------ normalisation

@pytest.mark.parametrize("raw, expected", [
    ("ＡｌｅｘＮｅｔ　１２３", "alexnet123"),          # full-width letters, digits and space
    ("Top-5 错误率:\n  15.3 %\t", "top-5错误率:15.3%"),  # newlines, tabs, spaces
    ("ＧＰＴ－４（２０２３）", "gpt-4(2023)"),           # full-width punctuation
    ("𝑑𝑐 is set to 512", "dcissetto512"),              # math italic letters from PDFs
    ("ﬁne-grained", "fine-grained"),                   # ligature
    ("**ResNet** | `y` #", "**resnet**|`y`#"),          # markdown kept by normalize
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("**ResNet-152** | 3.57% |", "resnet-1523.57%"),
    ("## 1.2 ResNet (2015)", "1.2resnet(2015)"),
    ("`y = F(x) + x`", "y=f(x)+x"),
    ("＃ 标题 ｜ ＊强调＊", "标题强调"),                 # full-width markdown chars too
])
def test_normalize_for_chunk_drops_markdown(raw, expected):
    assert normalize_for_chunk(raw) == expected


def test_chunk_normalisation_makes_table_quote_match_plain_chunk():
    quote = "| **ResNet-152** | 3.57% |"
    chunk = "ResNet-152 3.57%"
    assert normalize(quote) not in normalize(chunk)
    assert normalize_for_chunk(quote) in normalize_for_chunk(chunk)
