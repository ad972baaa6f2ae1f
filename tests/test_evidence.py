"""Evidence-first answers over a real index (two of the study notes, real e5 embeddings, FAISS,
BM25): which units are selected, their offsets, answerability of near-miss questions, and the
`evidence` field of `tutor ask --json` with the shipped SmolLM2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutor.api import Tutor
from tutor.cli import app
from tutor.config import Settings
from tutor.corpus import read_text_file
from tutor.evidence import Query, Selector
from tutor.index import ingest

REPO = Path(__file__).resolve().parents[1]
NOTES = ("000_f27da241194530d4.txt", "002_92979c50d744eab0.txt")


@pytest.fixture(scope="module")
def notes_tutor(tmp_path_factory, embedder) -> Tutor:
    root = tmp_path_factory.mktemp("evidence")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in NOTES:
        shutil.copy(REPO / "corpus" / "notes" / name, corpus / name)
    s = Settings().replace(corpus_dir=corpus, index_dir=root / "index", backend="llamacpp", model="smollm2-135m",
                 max_tokens=48, n_ctx=2048, home=embedder._home)
    ingest(s, embedder=embedder)
    t = Tutor(s)
    t._embedder = embedder
    return t


def _select(t: Tutor, question: str):
    s = t.settings
    hits = t.search(question, k=max(s.top_k, s.answer_k)).hits[: s.answer_k]
    emb = t.embedder
    sel = Selector(lambda q: emb.queries([q])[0], emb.passages, s.evidence_tokens, s.evidence_units,
                   s.evidence_dense_weight)
    q, scored = sel.score(question, hits)
    return sel.select(scored), sel.assess(q, scored, s.min_coverage, s.min_evidence_score)


@pytest.mark.parametrize("question, fact", [
    ("DeepSeek-V3 激活了多少参数？", "激活参数: 37B"),
    ("What was AlexNet's top-5 error rate on ImageNet?", "15.3%"),
    ("ResNet-152 的 Top-5 错误率是多少？", "3.57%"),
    ("How much did it cost to train DeepSeek-V3?", "$5.576M"),
    # a short nested list item is read with the item it hangs under ("2. **World Models** (2018)")
    ("笔记里 World Models 论文的作者是谁？", "David Ha, Jürgen Schmidhuber"),
])
def test_selection_keeps_the_unit_that_holds_the_fact(notes_tutor: Tutor, question: str, fact: str) -> None:
    units, verdict = _select(notes_tutor, question)
    assert any(fact in u.prompt_text() for u in units), [u.prompt_text() for u in units]
    assert verdict.answerable, verdict
    assert sum(len(u.prompt_text()) for u in units) < 900  # a few units, not whole chunks


@pytest.mark.parametrize("question, fact", [
    # a code block's lines read with the line that introduces it ("3. **GRU (2014) - 简化版**:")
    ("GRU 的参数少多少？", "参数少 33%"),
    # "哪几个" asks which, not how many
    ("LSTM 有哪几个门？", "输出门"),
])
def test_code_lines_carry_their_lead_line_and_which_questions_need_no_count(notes_tutor: Tutor, question: str,
                                                                           fact: str) -> None:
    units, verdict = _select(notes_tutor, question)
    assert verdict.answerable, verdict
    assert any(fact in u.prompt_text() for u in units), [u.prompt_text() for u in units]
    assert Query.of("LSTM 有哪几个门？").quantity is False and Query.of("LSTM 有几个门？").quantity


def test_units_point_at_their_source_text_and_rows_keep_their_header(notes_tutor: Tutor) -> None:
    units, _ = _select(notes_tutor, "LSTM 是哪一年提出的？核心贡献是什么？")
    row = next(u for u in units if u.kind == "row" and "LSTM" in u.text)
    assert row.context.startswith("| 节点 | 核心贡献")
    assert "1997" in row.prompt_text() and "门控机制" in row.prompt_text()
    corpus = notes_tutor.settings.corpus_dir
    for u in units:
        text, _ = read_text_file(corpus / u.hit.chunk.path)
        assert text[u.start:u.end] == u.text  # offsets into the source text
        assert u.hit.chunk.start <= u.start < u.end <= u.hit.chunk.end


@pytest.mark.parametrize("near_miss, twin", [
    ("AlexNet 在 ImageNet 上的 top-1 错误率是多少？", "AlexNet 在 ImageNet 上的 top-5 错误率是多少？"),
    ("How many parameters does ResNet-152 have?", "How many parameters does AlexNet have?"),
    ("DeepSeek-V3 训练用了多少块 H100？", "DeepSeek-V3 激活了多少参数？"),
    # the block's label names ResNet-50, but "参数量减少 70%" is a share, not a parameter count
    ("How many parameters does ResNet-50 have?", "How much does the ResNet-50 bottleneck cut parameters, in percent?"),
    # the list number of a block's label ("4. Sora (2024):") is no figure of its lines
    ("Sora 模型有多少参数？", "ResNet-152 的 Top-5 错误率是多少？"),
])
def test_answerability_declines_the_near_miss_and_accepts_its_twin(notes_tutor: Tutor, near_miss: str,
                                                                  twin: str) -> None:
    _, bad = _select(notes_tutor, near_miss)
    _, good = _select(notes_tutor, twin)
    assert not bad.answerable, bad
    assert good.answerable, good


def test_near_miss_is_declined_without_the_model_and_quotes_what_the_notes_say(notes_tutor: Tutor) -> None:
    t = Tutor(notes_tutor.settings)
    t._embedder = notes_tutor.embedder
    a = t.ask("AlexNet 在 ImageNet 上的 top-1 错误率是多少？")
    assert a.refused and a.decline_reason and t._llm is None  # decided from the evidence
    assert "没有给出" in a.text and a.citations and a.evidence
    assert " ".join(a.evidence[0].text.split())[:12] in a.text


def test_query_reads_what_is_asked() -> None:
    q = Query.of("How many parameters did AlexNet have?")
    assert q.names == ["AlexNet"] and q.quantity and not q.year
    assert any("参数" in s for s in q.attr_sets)  # the zh form, for a Chinese note
    assert Query.of("LSTM 是哪一年提出的？").year and Query.of("When was LSTM proposed?").year
    # "when" as a conjunction asks no date
    assert not Query.of("Why didn't DeepSeek use a neural reward model when training R1-Zero?").year


@pytest.mark.slow
def test_ask_json_carries_the_evidence(notes_tutor: Tutor, monkeypatch) -> None:
    s = notes_tutor.settings
    monkeypatch.chdir(s.corpus_dir.parent)
    r = CliRunner().invoke(app, ["ask", "ResNet-152 的 Top-5 错误率是多少？", "--json", "--model", "smollm2-135m"],
                           env={"TUTOR_CORPUS_DIR": str(s.corpus_dir), "TUTOR_INDEX_DIR": str(s.index_dir),
                                "TUTOR_HOME": str(s.home), "TUTOR_MAX_TOKENS": "48"})
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {"question", "answer", "refused", "citations", "sources", "reasoning", "model", "backend",
            "timings_ms", "evidence", "grounded", "standalone_question"} <= set(out)
    ev = out["evidence"]
    assert ev and {"n", "chunk_id", "file", "start", "end", "text", "score"} <= set(ev[0])
    assert any("3.57" in e["text"] for e in ev)
    assert not out["refused"] and "3.57" in out["answer"]  # the model's words, or the quoted unit
    assert out["timings_ms"]["select"] > 0  # reported (targets live in the eval reports, not here)


def test_units_that_say_nothing_on_their_own_are_not_candidates():
    """A figure the model cannot see, a bold label and a bare d2l role take a prompt slot and teach
    nothing: they are never candidates; the sentence beside them is."""
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit
    from tutor.text import citations_in

    text = ("![多头注意力：多个头连结然后线性变换](../img/mha.svg)\n:label:`fig_mha`\n\n"
            "**残差连接 (Residual Connection)**:\n\n<div style=\"text-align: center;\">\nmargin: auto;\n"
            "<img class=\"b-lazy\" src=data:image/gif;base64,R0lGODlh\n</div>\n\n"
            "每一个注意力汇聚都被称作一个头（head）。")
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    got = [u.text for u in candidates([hit])]
    assert got == ["每一个注意力汇聚都被称作一个头（head）。"]
    assert citations_in("卷积窗口是 11×11 [资料1]，见资料[2]。") == [1, 2]


def test_a_short_nested_item_carries_the_item_it_hangs_under():
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit
    from tutor.text import parent_item

    text = ("经典论文:\n\n1. **Dyna** (1990)\n   - Richard Sutton\n\n2. **World Models** (2018)\n"
            "   - David Ha, Jürgen Schmidhuber\n   - 引用: 2,000+\n\n**优点**:\n- 快\n\n一段正文。\n- 顶层条目")
    parent = lambda key: (lambda sp: sp and text[sp[0]:sp[1]])(parent_item(text, text.index(key)))  # noqa: E731
    assert parent("David") == parent("引用") == "2. **World Models** (2018)"
    assert parent("Richard") == "1. **Dyna** (1990)" and parent("快") == "**优点**:"
    assert parent("一段正文") is None and parent("顶层条目") is None  # prose; an item under prose
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    by_text = {u.text: u.context for u in candidates([hit])}
    assert by_text["- David Ha, Jürgen Schmidhuber"] == "2. **World Models** (2018)"
    assert by_text["一段正文。"] == ""


def _assess(question: str, text: str, section: str = "s"):
    from tutor.records import Chunk, Hit

    hit = Hit(Chunk("c1", "a.md", "a.md", "t", section, None, 0, len(text), text), 1.0, 1)
    sel = Selector(dense_weight=0.0)
    q, scored = sel.score(question, [hit])
    return sel.assess(q, scored, 0.0, 0.0)


def test_a_unit_that_names_the_subject_itself_answers_before_one_under_its_heading():
    """In a note's comparison list, the line that names Chinchilla holds Chinchilla's figures; the
    rule above it stands under the Chinchilla heading but is about every model."""
    text = ("2. **最优比例**:\n   - 每 1B 参数 → 20B tokens 数据\n\n对比:\n"
            "- GPT-3 (175B, 300B tokens): 数据太少\n- Chinchilla (70B, 1.4T tokens): 最优\n")
    verdict = _assess("Chinchilla 训练了多少 token？", text, section="Chinchilla 缩放定律")
    assert verdict.answerable and "Chinchilla (70B" in verdict.best.text
    assert [u.text for u in verdict.answering] == ["- Chinchilla (70B, 1.4T tokens): 最优"]


def test_a_list_item_under_another_subject_does_not_answer_for_the_heading():
    """"- 作者: Jonathan Ho" under "**DDPM 突破**:" is DDPM's author, in whatever section it stands."""
    text = ("**DDPM 突破**:\n- 作者: Jonathan Ho et al.\n- 引用: 10,000+\n\n"
            "2. **World Models** (2018)\n   - David Ha, Jürgen Schmidhuber\n")
    verdict = _assess("World Models 的作者是谁？", text, section="7. World Models")
    assert all("Jonathan Ho" not in u.text for u in verdict.answering), verdict.answering
    assert any("David Ha" in u.text for u in verdict.answering), verdict.answering


def test_a_charts_axis_ticks_are_no_evidence():
    """A PDF's text layer runs a chart's ticks into its legend: model names, a measure and figures
    that state nothing ("Mixtral 8x7B 有多少激活参数" is not answered by it)."""
    from tutor.evidence import candidates, chart_ticks
    from tutor.records import Chunk, Hit

    axis = ("0 20 40 60 80 100 Activated Parameters (Billions) 55 60 65 70 75 80Performance (MMLU) "
            "DeepSeek-V2 Mixtral 8x7B LLaMA 2 70B")
    assert chart_ticks(axis) and not chart_ticks("DeepSeek-V2 42.5 93.3 5.76 7.1 80.2")  # a table row stays
    assert not chart_ticks("训练了 1 2 3 4 轮") and not chart_ticks("layers 2 2 2 2 2")
    text = axis + "\n\nMixtral 8x7B has 47B total parameters."
    hit = Hit(Chunk("c1", "p.pdf", "p.pdf", "t", "s", None, 0, len(text), text), 1.0, 1)
    assert [u.text for u in candidates([hit])] == ["Mixtral 8x7B has 47B total parameters."]


def test_a_who_question_is_answered_by_a_unit_that_names_a_person():
    """"谁提出了 GAN？" is not answered by the GAN line that only holds a year; the author line is."""
    from tutor.evidence import names_person

    text = "**GAN 起源**:\n- 发表: NeurIPS 2014\n- 作者: Ian Goodfellow et al.\n- 引用: 50,000+\n"
    verdict = _assess("GAN 是谁提出的？", text, section="3.1 GAN")
    assert verdict.answerable and [u.text for u in verdict.answering] == ["- 作者: Ian Goodfellow et al."]
    both = _assess("Who proposed GANs, and in what year?", text, section="3.1 GAN")  # either line answers
    assert {u.text for u in both.answering} == {"- 发表: NeurIPS 2014", "- 作者: Ian Goodfellow et al."}
    assert not _assess("GAN 是谁提出的？", "**GAN 起源**:\n- 发表: NeurIPS 2014\n", section="3.1 GAN").answerable
    assert names_person("- David Ha, Jürgen Schmidhuber", []) and not names_person("2. **World Models** (2018)",
                                                                                   ["World Models"])


def test_units_under_one_lead_show_the_lead_once_in_the_prompt():
    from tutor.evidence import candidates
    from tutor.prompts import format_evidence

    text = ("2. **World Models** (2018)\n   - David Ha, Jürgen Schmidhuber\n   - 引用: 2,000+\n\n一段正文。")
    from tutor.records import Chunk, Hit
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    units = [u for u in candidates([hit]) if u.context]
    assert len(units) == 2
    prompt = format_evidence(units, "zh")
    assert prompt.count("World Models") == 1
    assert "David Ha" in prompt and "2,000+" in prompt
    one = format_evidence(units[:1], "en")
    assert "World Models" in one and "David Ha" in one  # a lone unit keeps its lead inline


def test_an_html_table_row_is_one_unit_under_its_header_row():
    """Converted papers keep HTML tables, a cell per line: a row must stay whole with its header,
    or "867" reaches the model as a bare number with no model name and no column."""
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit

    text = ("4. Evolve Controller (C).\n\n<img src=\"a.png\" style=\"display: block;\nwidth: 100%;\"/>\n"
            "<table style=\"text-align:left;width:320px;\">\n  <tr>\n"
            "    <th>Model</th>\n    <th>Parameter Count</th>\n  </tr>\n  <tr>\n    <td>VAE</td>\n"
            "    <td>4,348,547</td>\n  </tr>\n  <tr><td>Controller</td><td>867</td></tr>\n</table>\n")
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    rows = [u for u in candidates([hit]) if u.kind == "row"]
    assert [u.prompt_text() for u in rows] == ["Model | Parameter Count … VAE | 4,348,547",
                                               "Model | Parameter Count … Controller | 867"]
    assert all(text[u.start:u.end].startswith("<tr") and text[u.start:u.end].endswith("</tr>") for u in rows)
    assert [u.text for u in candidates([hit]) if u.kind != "row"] == ["Evolve Controller (C)."]
    from tutor.text import visible
    assert visible('as in <dt-cite key="es">Evolving Stable Strategies</dt-cite>, a <b>64</b> <mask>') == \
        "as in Evolving Stable Strategies, a 64 <mask>"  # named tags go, a literal token stays


def test_the_subjects_own_line_answers_though_a_rule_under_its_heading_has_more_asked_words():
    """"每 1B 参数 → 20B tokens" has both asked-for words (参数, token) but is the rule for every
    model; the line naming Chinchilla holds Chinchilla's figures, and the quoted fallback leads with it."""
    from tutor.answer import extractive
    from tutor.records import Chunk, Hit

    text = ("2. **最优比例**:\n   - 每 1B 参数 → 20B tokens 数据\n\n对比:\n"
            "- GPT-3 (175B, 300B tokens): 数据太少\n- Chinchilla (70B, 1.4T tokens): 最优\n")
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "Chinchilla 缩放定律", None, 0, len(text), text), 1.0, 1)
    sel = Selector(dense_weight=0.0)
    q, scored = sel.score("Chinchilla 有多少参数，训练了多少 token？", [hit])
    verdict = sel.assess(q, scored, 0.0, 0.0)
    assert [u.text for u in verdict.answering] == ["- Chinchilla (70B, 1.4T tokens): 最优"]
    quoted = extractive(sel.select(scored), verdict, "zh")
    assert quoted.index("1.4T") < quoted.index("[1]")


def test_a_figure_or_table_number_is_no_figure_that_answers():
    """"What exact figures does the paper report?" asks for figures; "Figure 3" is a pointer, so
    the sentence with 93.3% answers and the one pointing at Figure 3 does not."""
    text = ("Figure 3 intuitively illustrates how the KV joint compression in MLA reduces the KV cache. "
            "DeepSeek-V2 reduces the KV cache by 93.3% and boosts the maximum generation throughput to 5.76 times.")
    q = "What exact figures does the DeepSeek-V2 paper report for the KV cache?"
    from tutor.evidence import Query
    assert Query.of(q).quantity
    verdict = _assess(q, text, section="DeepSeek-V2")
    assert verdict.answerable and [u.text[:11] for u in verdict.answering] == ["DeepSeek-V2"]



def test_a_chunk_cut_inside_a_code_block_reads_its_closing_fence_as_closing():
    """Chunks are cut by length, so one may begin mid-program; its bare ``` closes that program,
    and the prose after it stays prose (quotable), the program lines stay code (not quoted)."""
    from tutor.answer import quotable
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit

    text = ("    blk.append(Residual(input_channels, num_channels,\n                         use_1x1conv=True, strides=2))\n"
            "    return blk\n```\n\n残差块让输入可通过跨层数据线路更快地向前传播。\n")
    hit = Hit(Chunk("c1", "resnet.md", "resnet.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    kinds = {u.text: (u.kind, quotable(u)) for u in candidates([hit])}
    assert kinds["残差块让输入可通过跨层数据线路更快地向前传播。"] == ("sentence", True)
    assert kinds["blk.append(Residual(input_channels, num_channels,"] == ("code", False)
    notes = "```\nImageNet Top-5 错误率:\nAlexNet: 15.3%\n```\n"  # a block opened in the chunk is unchanged
    hit = Hit(Chunk("c2", "n.txt", "n.txt", "t", "s", None, 0, len(notes), notes), 1.0, 1)
    assert {u.kind for u in candidates([hit])} == {"code"}


def test_imports_and_notebook_directives_are_no_evidence():
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit

    text = "```{.python .input}\n#@tab pytorch\nfrom d2l import torch as d2l\nimport torch\nX = torch.ones(3)\n```\n"
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    assert [u.text for u in candidates([hit])] == ["X = torch.ones(3)"]


def test_a_sentence_wrapped_over_lines_is_one_unit_and_reads_as_one_line():
    """d2l's sources wrap a sentence at a comma or mid-phrase: the wrapped lines are one unit,
    shown without the line breaks; a list item, a figure line or a finished sentence ends it."""
    from tutor.evidence import candidates
    from tutor.records import Chunk, Hit

    text = ("如果遗忘门始终为$1$且输入门始终为$0$，\n则过去的记忆元$\\mathbf{C}_{t-1}$\n将随时间被保存。\n"
            "引入这种设计是为了缓解梯度消失问题，\n并更好地捕获长距离依赖关系。\n"
            "![图](a.svg)\n:label:`fig`\n\n- The queue is\n  decoupled from the batch size\n- 第二项\n")
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    units = candidates([hit])
    assert [u.prompt_text() for u in units] == [
        "如果遗忘门始终为$1$且输入门始终为$0$，则过去的记忆元$\\mathbf{C}_{t-1}$将随时间被保存。",
        "引入这种设计是为了缓解梯度消失问题，并更好地捕获长距离依赖关系。",
        "- The queue is decoupled from the batch size", "- 第二项"]
    assert all(text[u.start:u.end] == u.text for u in units)  # offsets still point at the source


def test_the_items_nested_under_a_matching_item_are_what_it_announces():
    """"What weaknesses do my notes list": the line that matches is the announcing item ("缺陷"),
    the weaknesses are the items under it — they rank with it, above unrelated lines."""
    from tutor.records import Chunk, Hit

    text = ("* RNN（循环神经网络）：适合连续输入\n    * 缺陷（可以尝试用 Transformer 解决部分问题）\n"
            "        * 难并行，训练效率低：需要按顺序处理每个元素\n        * 编码长度固定，影响信息质量\n"
            "* 训练网络需要大量数据。\n")
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    q, scored = Selector(dense_weight=0.0).score("What weaknesses of RNN can Transformer help with?", [hit])
    score = {u.text.strip("* ")[:3]: u.score for u in scored}
    assert score["难并行"] > score["训练网"] and score["编码长"] > score["训练网"]
    _, flat = Selector(dense_weight=0.0, child_share=0.0).score(q.text, [hit])
    assert max(u.score for u in flat if "难并行" in u.text) < score["难并行"]
    # quoted, the announcing item brings its items: alone it names no weakness
    from tutor.answer import extractive

    sel = Selector(dense_weight=0.0)
    quoted = extractive(sel.select(scored), sel.assess(q, scored, 0.0, 0.0), "en", figure=False)
    assert "缺陷" in quoted and "难并行" in quoted and quoted.index("难并行") < quoted.index("[1]")


def test_a_count_written_in_chinese_words_answers_a_how_many_question():
    """"五个卷积层" is the count "几个卷积层" asks for, as much as "4096个输出" is a figure: it ranks
    above the same words without a count."""
    from tutor.records import Chunk, Hit

    text = "AlexNet由多层组成：若干卷积层和全连接层。\n\nAlexNet由八层组成：五个卷积层和三个全连接层。\n"
    hit = Hit(Chunk("c1", "a.md", "a.md", "t", "s", None, 0, len(text), text), 1.0, 1)
    _, scored = Selector(dense_weight=0.0).score("AlexNet 有几个卷积层？", [hit])
    score = {u.text[:10]: u.score for u in scored}
    assert score["AlexNet由八层"] > score["AlexNet由多层"] + 0.1
