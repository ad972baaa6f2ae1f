"""tutor.chunking: properties over generated markdown-ish notes (hypothesis), plus hand examples.

The generator builds a document from blocks (headings, zh/en prose, fenced code, tables, blank
lines, long unpunctuated runs) and remembers where every code line / table row and every whole
block sits, so the properties can be checked against the real layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor.chunking import chunk_document, searchable_text
from tutor.records import HEADING_SEP as SEP
from tutor.records import Document

# ---- generator ----------------------------------------------------------------------------------

ZH = "深度学习模型的训练需要大量数据和计算资源残差连接让梯度更容易传播注意力机制"
EN_WORDS = ["the", "model", "learns", "residual", "gradient", "attention", "layer", "data",
            "Transformer", "loss", "batch", "norm", "expert", "token"]
ZH_END = ["。", "！", "？", "；", "。”", "）。"]
EN_END = [".", "!", "?", ";", ".)", '."']


@dataclass
class Doc:
    text: str = ""
    lines: list[tuple[int, int]] = field(default_factory=list)  # code lines / table rows, no "\n"
    blocks: list[tuple[int, int, str]] = field(default_factory=list)  # whole fences / tables

    def add(self, s: str) -> int:
        pos = len(self.text)
        self.text += s
        return pos


zh_sentence = st.builds(lambda n, off, end: (ZH * 4)[off:off + n] + end,
                        st.integers(1, 40), st.integers(0, len(ZH) - 1), st.sampled_from(ZH_END))
en_sentence = st.builds(lambda ws, end: " ".join(ws).capitalize() + end,
                        st.lists(st.sampled_from(EN_WORDS), min_size=1, max_size=14), st.sampled_from(EN_END))
# long runs with no sentence end at all: one "word" of hundreds of letters, a long unpunctuated
# Chinese run, and long English without a full stop but with spaces/commas to cut at
long_run = st.one_of(
    st.builds(lambda n: "x" * n, st.integers(50, 700)),
    st.builds(lambda n: (ZH * 30)[:n], st.integers(50, 700)),
    st.builds(lambda ws: ", ".join(ws), st.lists(st.sampled_from(EN_WORDS), min_size=20, max_size=120)),
)
prose_line = st.lists(st.one_of(zh_sentence, en_sentence, long_run), min_size=1, max_size=6).map(
    lambda ss: " ".join(ss))
heading_text = st.one_of(st.sampled_from(["1. 深度学习基础", "1.2 ResNet", "Attention", "MoE 架构", "小结",
                                          "**Scaling Law**", "`code` heading"]),
                         st.text(alphabet="abcdef 学习模型", min_size=1, max_size=20).map(str.strip)
                         .filter(bool))
code_line = st.one_of(
    st.sampled_from(["import torch", "x = torch.randn(2, 3)", "# 注释：这是代码。", "return x.sum()",
                     "def f(x):", "## not a heading", "| not a table |", "", "print('a. b! c? d;')"]),
    st.builds(lambda n: "y = " + "a + " * n + "0", st.integers(20, 200)),  # long unbreakable line
)
table_row = st.builds(lambda cells: "| " + " | ".join(cells) + " |",
                      st.lists(st.one_of(st.sampled_from(["AlexNet", "15.3%", "残差", "ResNet-152", "3.57%", "---"]),
                                         st.builds(lambda n: "数" * n, st.integers(1, 300))),
                               min_size=1, max_size=5))


@st.composite
def documents(draw) -> Doc:
    doc = Doc()
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["heading", "prose", "prose", "code", "table", "blank"]))
        if kind == "heading":
            doc.add("#" * draw(st.integers(1, 6)) + " " + draw(heading_text) + "\n")
        elif kind == "prose":
            doc.add(draw(prose_line) + "\n")
        elif kind == "blank":
            doc.add("\n" * draw(st.integers(1, 3)))
        elif kind == "code":
            indent = draw(st.sampled_from(["", "    ", "  "]))
            body = [indent + ln if ln else ln for ln in draw(st.lists(code_line, min_size=1, max_size=10))]
            fence = draw(st.sampled_from(["```", "~~~"]))
            lang = draw(st.sampled_from(["", "python", "bash"]))
            start = len(doc.text)
            for ln in [fence + lang, *body, fence]:
                p = doc.add(ln + "\n")
                doc.lines.append((p, p + len(ln)))
            doc.blocks.append((start, len(doc.text) - 1, "code"))
        else:  # table
            start = len(doc.text)
            for ln in draw(st.lists(table_row, min_size=1, max_size=8)):
                p = doc.add(ln + "\n")
                doc.lines.append((p, p + len(ln)))
            doc.blocks.append((start, len(doc.text) - 1, "table"))
            doc.add("\n")  # two tables in a row would be one table
        if draw(st.booleans()):
            doc.add("\n")
    return doc


sizes = st.sampled_from([(60, 0), (60, 20), (120, 40), (200, 80), (500, 80), (500, 0)])
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunk(doc: Doc, size: int, overlap: int):
    return chunk_document(Document("n.md", "notes/n.md", "Notes", doc.text), size, overlap)


# ---- properties ---------------------------------------------------------------------------------

@SETTINGS
@given(documents(), sizes)
def test_offsets_point_at_the_text(doc, so):
    d = Document("n.md", "notes/n.md", "Notes", doc.text)
    for c in chunk_document(d, *so):
        assert d.text[c.start:c.end] == c.text
        assert c.text.strip(), "no blank chunks"
        assert (c.file, c.path, c.title, c.page) == ("n.md", "notes/n.md", "Notes", None)


@SETTINGS
@given(documents(), sizes)
def test_no_text_lost_or_reordered(doc, so):
    chunks = chunk(doc, *so)
    covered = bytearray(len(doc.text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    lost = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not lost, f"characters not in any chunk: {doc.text[lost[0]:lost[0] + 40]!r}"
    starts = [c.start for c in chunks]
    ends = [c.end for c in chunks]
    assert starts == sorted(starts) and ends == sorted(ends)
    # consecutive chunks overlap by at most `overlap` characters
    for a, b in zip(chunks, chunks[1:]):
        assert a.end - b.start <= so[1]
    assert len({c.id for c in chunks}) == len(chunks)


@SETTINGS
@given(documents(), sizes)
def test_size_bound_except_single_unbreakable_line(doc, so):
    size = so[0]
    for c in chunk(doc, *so):
        if len(c.text) <= size:
            continue
        # the only allowed oversize chunk: exactly one code line / table row longer than size
        assert any(s <= c.start and c.end <= e and e - s > size for s, e in doc.lines), \
            f"chunk of {len(c.text)} > {size} chars: {c.text[:80]!r}"


@SETTINGS
@given(documents(), sizes)
def test_never_cut_inside_code_line_or_table_row(doc, so):
    for c in chunk(doc, *so):
        for s, e in doc.lines:
            content = doc.text[s:e]
            ce = s + len(content.rstrip())  # trailing blanks of a line may be dropped
            assert not (s < c.start < e), f"chunk starts inside {content!r}"
            assert not (s < c.end < ce), f"chunk ends inside {content!r}"


@SETTINGS
@given(documents(), sizes)
def test_blocks_that_fit_stay_whole(doc, so):
    size = so[0]
    chunks = chunk(doc, *so)
    for s, e, kind in doc.blocks:
        if e - s <= size:
            assert any(c.start <= s and e <= c.end for c in chunks), \
                f"{kind} block of {e - s} chars split: {doc.text[s:e][:60]!r}"


# ---- hand examples ------------------------------------------------------------------------------

PLAN = """# AI 研究计划

开篇的说明文字。

## 1. 深度学习基础

### 1.1 CNN

卷积神经网络用卷积核提取局部特征。

### 1.2 ResNet

ResNet 引入残差连接，让很深的网络也能训练。

#### 论文

He et al. 2016.

## 2. Transformer

Attention is all you need.
"""


def test_heading_paths_exclude_the_title():
    doc = Document("plan.md", "notes/plan.md", "AI 研究计划", PLAN)
    chunks = chunk_document(doc, size=500, overlap=80)
    by_text = {c.text.splitlines()[0]: c for c in chunks}
    assert by_text["# AI 研究计划"].section == ""
    assert by_text["### 1.1 CNN"].section == "1. 深度学习基础 › 1.1 CNN"
    resnet = by_text["### 1.2 ResNet"]
    # "#### 论文" is deeper than break_level: it travels with its parent section
    assert "He et al. 2016." in resnet.text and "#### 论文" in resnet.text
    assert resnet.section == SEP.join(["1. 深度学习基础", "1.2 ResNet"])
    assert by_text["## 2. Transformer"].section == "2. Transformer"
    assert searchable_text(resnet).startswith("AI 研究计划 › 1. 深度学习基础 › 1.2 ResNet\n")


def test_heading_path_keeps_h1_that_differs_from_title():
    doc = Document("plan.md", "notes/plan.md", "Another title", PLAN)
    resnet = next(c for c in chunk_document(doc) if c.text.startswith("### 1.2 ResNet"))
    assert resnet.section == "AI 研究计划 › 1. 深度学习基础 › 1.2 ResNet"


def test_heading_markup_is_cleaned_and_code_comments_are_not_headings():
    text = "# T\n\n## **Scaling** `Law`\n\n```python\n# not a heading\nx = 1\n```\n\nEnd.\n"
    chunks = chunk_document(Document("a.md", "a.md", "T", text), size=500)
    assert [c.section for c in chunks] == ["", "Scaling Law"]
    assert "# not a heading" in chunks[1].text


def test_long_section_split_with_overlap_in_same_section():
    sents = [f"第{i}句话讲的是残差网络的一个细节。" for i in range(40)]
    text = "## 残差\n\n" + "".join(sents) + "\n"
    chunks = chunk_document(Document("a.md", "a.md", "T", text), size=120, overlap=40)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert 0 < a.end - b.start <= 40, "consecutive chunks share their last sentence"
        assert b.text.startswith("第") and a.text.endswith("。")
    assert all(c.section == "残差" for c in chunks)


def test_long_code_block_split_line_by_line_keeps_indentation():
    body = "\n".join(f"        value_{i} = compute(value_{i - 1}, weight={i})" for i in range(30))
    text = f"## Code\n\n```python\ndef f():\n{body}\n```\n"
    chunks = chunk_document(Document("a.md", "a.md", "T", text), size=200, overlap=0)
    code = [c for c in chunks if "value_" in c.text]
    assert len(code) > 2
    for c in code:
        for ln in c.text.splitlines():
            if "value_" in ln:
                assert ln.startswith("        value_"), f"line cut or de-indented: {ln!r}"


def test_d2l_other_framework_tabs_are_skipped():
    text = ("## 代码\n\n"
            "```{.python .input}\n#@tab mxnet\nfrom mxnet import np\n```\n\n"
            "```{.python .input}\n#@tab pytorch\nimport torch\n```\n\n"
            "```{.python .input}\n#@tab tensorflow\nimport tensorflow as tf\n```\n\n"
            "```{.python .input}\n#@tab all\nx = 1\n```\n\n"
            "```{.python .input}\nfrom mxnet import autograd\n```\n")
    joined = "\n".join(c.text for c in chunk_document(Document("a.md", "a.md", "T", text)))
    assert "import torch" in joined
    assert "x = 1" in joined, "`#@tab all` cells are shared by pytorch: kept"
    assert "mxnet" not in joined and "tensorflow" not in joined


def test_pdf_page_chunks_carry_the_page():
    doc = Document("p.pdf", "papers/p.pdf", "Paper", "Mixture of experts. " * 60, page=7)
    chunks = chunk_document(doc, size=200, overlap=40)
    assert len(chunks) > 3 and all(c.page == 7 and c.section == "" for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
