"""The claims judge on real passages (chunks of the shipped notes and d2l chapters, made by the
real chunker): it must catch each hard kind of invented claim and pass supported ones; plus the
agreement machinery (κ on a known confusion matrix, cross-validated thresholds, the command)."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tutor.chunking import chunk_document
from tutor.cli import app
from tutor.corpus import load_file, scan
from tutor.evaluation.aliases import mine
from tutor.evaluation.claims import parse_claim
from tutor.evaluation.judge_eval import (LabelsError, best_threshold, check_labels, cross_validate, report,
                                         stats)
from tutor.evaluation.judges import ClaimsJudge, make_judge
from tutor.evaluation.metrics import cohen_kappa

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
NOTES = "002_92979c50d744eab0.txt"  # the research-plan note: AlexNet, ResNet, DeepSeek-V3 blocks


@lru_cache(maxsize=None)
def _chunks(name: str) -> tuple[str, ...]:
    src = next(s for s in scan(CORPUS) if s.rel.endswith(name))
    docs, _ = load_file(src)
    return tuple(c.text for d in docs for c in chunk_document(d))


def passage(name: str, anchor: str) -> str:
    """The real chunk of corpus file `name` that contains `anchor`."""
    found = [c for c in _chunks(name) if anchor in c]
    assert found, f"no chunk of {name} contains {anchor!r}"
    return found[0]


ALEX = (NOTES, "AlexNet:  15.3% (↓ 10.9%)")
RESNET_TABLE = (NOTES, "ResNet-152:      3.57%")
V3 = (NOTES, "总参数: 671B")
D2L_RESNET = ("resnet.md", "何恺明等人提出了")

CASES = [
    # kind, claim, passage, question, supported
    ("verbatim", "AlexNet 在 ImageNet 上的 Top-5 错误率是 15.3%，传统方法是 26.2%。", ALEX, None, True),
    ("invented_number", "AlexNet 的 Top-5 错误率是 15.3%，比传统方法低 12.5%。", ALEX, None, False),
    ("swapped_entity", "VGG-19 在 ImageNet 上的 Top-5 错误率是 3.57%。", RESNET_TABLE, None, False),
    ("swapped_entity", "AlexNet's top-5 error on ImageNet was 7.3%.", RESNET_TABLE, None, False),
    ("supported", "ResNet-152 的 Top-5 错误率为 3.57%。", RESNET_TABLE, None, True),
    ("paraphrase", "DeepSeek-V3 has 671B total parameters, with 37B activated.", V3, None, True),
    ("partial_compound", "DeepSeek-V3 总参数 671B，上下文长度 256K tokens。", V3, None, False),
    ("absent_fact", "ResNet 获得了 CVPR 2016 最佳论文奖。", D2L_RESNET, None, False),
    ("absent_fact", "残差网络由何恺明和 Yann LeCun 提出。", D2L_RESNET, None, False),
    ("paraphrase", "ResNet was proposed by 何恺明 and colleagues.", D2L_RESNET, None, True),
    ("absent_fact", "残差网络由何恺明等人提出，在 2015 年的 ImageNet 挑战赛夺魁。", D2L_RESNET, None, False),
    ("restated_question", "DeepSeek-V3 的总参数是多少？", V3, None, False),
    ("restated_question", "关于 DeepSeek-V3 的总参数：", V3, "DeepSeek-V3 的总参数是多少？", False),
    ("fragment", "671B", V3, "DeepSeek-V3 的总参数是多少？", True),
    ("fragment", "256", V3, "DeepSeek-V3 有多少个专家？", True),
    ("fragment", "37B", V3, "DeepSeek-V3 有多少个专家？", False),
    # extractive answers: each quote is judged; a quoted heading / link / label states nothing
    ("quote", 'The sources say: "ResNet-152:      3.57% ⭐" [1].', RESNET_TABLE, "What was ResNet-152's error?", True),
    ("quote", '资料中的原文：“总参数: 671B” [1]；', V3, "DeepSeek-V3 的总参数是多少？", True),
    ("quote", '“总参数: 999B” [1]。', V3, "DeepSeek-V3 的总参数是多少？", False),
    ("quote_heading", "“# 标准 Residual Block (ResNet-18/34)” [1]。", RESNET_TABLE, "Bottleneck 能减少多少参数？", False),
    ("quote_link", 'The sources say: "(https://example.com/a?b=1)" [1].', V3, "How many parameters?", False),
    ("reference_only", "资料[1]  资料[2]", V3, "DeepSeek-V3 的总参数是多少？", False),
    ("reference_only", "[3] (DeepSeek-V3 Technical Report (p.", V3, "How many parameters?", False),
    ("source_label", "[1] (笔记 › DeepSeek-V3): 总参数: 671B", V3, "DeepSeek-V3 的总参数是多少？", True),
    # a measure word of the other language that no alias maps is no evidence against the figure
    ("cross_lingual", "DeepSeek-V3 was trained on 14.8T tokens of data.", V3, None, True),
    # the question's own words prove nothing: the claim's added words must be in the passage
    ("adds_unsupported", "Bottleneck 设计能把参数量减少 70%，因为它能更精确地捕捉到细节和纹理。", RESNET_TABLE,
     "Bottleneck 设计能把参数量减少多少？", False),
]


@pytest.mark.parametrize("kind,claim,where,question,supported", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_claims_judge_on_real_passages(kind, claim, where, question, supported) -> None:
    j = ClaimsJudge(corpus_dir=CORPUS)
    verdict = j.explain(claim, [passage(*where)], question)
    assert verdict.supported is supported, verdict.why


def test_claims_judge_needs_names_and_numbers_together() -> None:
    """Both numbers are in the table, but 15.3% sits on AlexNet's row, not VGG-19's."""
    table = passage(*RESNET_TABLE)
    j = ClaimsJudge()
    assert j.supported("AlexNet 的 Top-5 错误率是 15.3%。", [table])
    assert j.supported("VGG-19 的 Top-5 错误率是 7.3%。", [table])
    assert not j.supported("VGG-19 的 Top-5 错误率是 15.3%。", [table])
    why = j.explain("VGG-19 的 Top-5 错误率是 15.3%。", [table]).why
    assert "15.3%" in why or "together" in why
    assert not j.supported("AlexNet 的 Top-5 错误率是 15.3%。", [])  # nothing cited, nothing supports


def test_a_quote_is_supported_when_it_stands_in_the_passage_and_a_splice_is_not() -> None:
    """A quote copied from a passage (a label and its line joined by "…") states what the passage
    states; a header spliced onto the line of another section does not."""
    p = ("AIME 2024 (数学竞赛):\n- R1: 79.8%\n- o1: 79.2%\n\nMATH-500:\n- R1: 97.3%\n\n"
         "Codeforces (编程竞赛):\n- R1: ~1450 Elo (超越 90% 人类)\n")
    j = ClaimsJudge()
    assert j.supported("“Codeforces (编程竞赛): … - R1: ~1450 Elo (超越 90% 人类)” [1]。", [p])
    assert not j.supported("“AIME 2024 (数学竞赛): … R1: ~1450 Elo (超越 90% 人类)” [1]。", [p])
    assert not j.supported("资料中的原文：“Discussion Amount of SFT Data.” [1]", ["Discussion Amount of SFT Data. We"])
    assert not j.supported("**规模提升**: ..[1]", ["**规模提升**:\n- 总参数: 671B"])  # a lead-in asserts nothing


def test_inflections_meet_and_question_sources_need_not_repeat() -> None:
    from tutor.evaluation.claims import _stem
    assert _stem("reproduces") == _stem("reproduce") == _stem("reproduced")
    # the question names the book; the passage never repeats "d2l": the clause is about the passage
    j = ClaimsJudge()
    p = "例如，当学习率为$\\eta=1.1$时，$x$超出了最优解$x=0$并逐渐发散。"
    assert j.supported("当学习率为1.1时，$x$超出了最优解$x=0$并逐渐发散[1]。", [p], None,
                       "d2l 梯度下降的例子里，学习率设成 1.1 时会发生什么？")
    assert not j.supported("当学习率为1.5时，$x$超出了最优解[1]。", [p], None,
                           "d2l 梯度下降的例子里，学习率设成 1.5 时会发生什么？")


def test_claim_reading() -> None:
    c = parse_claim("DeepSeek-V3 有 671B 参数，每个 token 激活 37B。")
    assert [cl.names for cl in c.clauses] == [["DeepSeek-V3"], []]
    assert c.clauses[1].inherited == ["DeepSeek-V3"]  # the 37B is V3's too
    assert [(n.value, n.measure) for cl in c.clauses for n in cl.numbers] == [(6.71e11, "参数"), (3.7e10, "激活")]
    assert parse_claim("AlexNet had five convolutional layers.").clauses[0].numbers[0].value == 5
    assert not parse_claim("What is MoE?").asserts


def test_aliases_are_mined_from_the_corpus_text() -> None:
    pairs = set(mine("针对这一问题，何恺明等人提出了残差网络（ResNet）。称为循环神经网络（RNN）。"
                     "3. 低秩适配（Low-Rank Adaptation, LoRA）"))
    assert {("resnet", "残差网络"), ("rnn", "循环神经网络"), ("lora", "低秩适配")} <= pairs


def test_claims_judge_shares_nothing_with_the_answer_side() -> None:
    """The judge must not grade itself: judging (claims, and the llm judge's prompt) never loads
    the answer side's attribution / evidence checks or its glossary."""
    code = ("import sys; from tutor.config import Settings; from tutor.evaluation.judges import make_judge, LLMJudge\n"
            "j = make_judge(Settings(), 'claims'); j.supported('ResNet-152 的错误率是 3.57%。', ['ResNet-152: 3.57%'], None, '多少？')\n"
            "LLMJudge(Settings()).messages('ResNet-152 的错误率是 3.57%。', ['ResNet-152: 3.57%'], None, 'q')\n"
            "print(sorted(m for m in sys.modules if m in ('tutor.answer', 'tutor.evidence', 'tutor.glossary')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- agreement ------------------------------------------------------------------------------------
def test_kappa_on_a_known_confusion_matrix() -> None:
    # tp 20, fp 5, fn 10, tn 15: p_o = 0.7, p_e = 0.6*0.5 + 0.4*0.5 = 0.5, κ = 0.4
    truth = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    pred = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    assert cohen_kappa(truth, pred) == pytest.approx(0.4)
    s = stats(truth, pred)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (20, 5, 10, 15)
    assert s["accuracy"] == 0.7 and s["kappa"] == 0.4
    assert s["unsupported_recall"] == 0.75 and s["unsupported_precision"] == 0.6  # 15/20, 15/25


def test_cross_validated_threshold() -> None:
    labels = [{"id": f"x{i}", "claim": "c", "passages": ["p"], "supported": i % 2 == 0} for i in range(40)]
    scores = [(1.0 if d["supported"] else -1.0) + (i % 5) * 0.01 for i, d in enumerate(labels)]
    cv = cross_validate(labels, scores, k=5)
    assert cv["kappa"] == 1.0 and -1.0 < cv["threshold"] < 1.0 and len(cv["fold_thresholds"]) == 5
    assert best_threshold([0.1, 0.2, 0.9], [False, False, True]) == pytest.approx(0.55)


def test_report_by_language_and_kind() -> None:
    labels = [{"id": "a", "claim": "AlexNet 错误率 15.3%", "passages": ["p"], "supported": True, "kind": "verbatim"},
              {"id": "b", "claim": "AlexNet error 20%", "passages": ["p"], "supported": False,
               "kind": "invented_number"},
              {"id": "c", "claim": "VGG error 15.3%", "passages": ["p"], "supported": False, "kind": "swapped_entity"}]
    out = report(labels, [True, False, True], seconds=0.3)
    assert out["by_lang"]["zh"]["n"] == 1 and out["by_lang"]["en"]["n"] == 2
    assert out["by_kind"]["swapped_entity"]["unsupported_recall"] == 0.0
    assert out["invented_unsupported_recall"] == 0.5 and out["invented_n"] == 2
    assert out["ms_per_claim"] == 100.0 and [d["id"] for d in out["disagreements"]] == ["c"]


def test_labels_are_validated() -> None:
    with pytest.raises(LabelsError, match="has no 'supported'"):
        check_labels([{"id": "a", "claim": "x", "passages": []}])
    with pytest.raises(LabelsError, match="duplicate id"):
        check_labels([{"id": "a", "claim": "x", "passages": [], "supported": True}] * 2)
    with pytest.raises(LabelsError, match="'supported' must be bool"):
        check_labels([{"id": "a", "claim": "x", "passages": [], "supported": "yes"}])


def _labels_file(tmp_path: Path) -> Path:
    alex, table = passage(*ALEX), passage(*RESNET_TABLE)
    rows = [
        {"id": "t1", "claim": "AlexNet 的 Top-5 错误率是 15.3%。", "passages": [alex], "supported": True, "lang": "zh",
         "kind": "verbatim"},
        {"id": "t2", "claim": "VGG-19 的 Top-5 错误率是 15.3%。", "passages": [table], "supported": False,
         "lang": "zh", "kind": "swapped_entity"},
        {"id": "t3", "claim": "ResNet-152's top-5 error is 3.57%.", "passages": [table], "supported": True,
         "lang": "en"},
        {"id": "t4", "claim": "ResNet-152's top-5 error is 4.5%.", "passages": [table], "supported": False,
         "lang": "en", "kind": "invented_number"},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_judge_command_json_and_text(tmp_path: Path) -> None:
    path = _labels_file(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "judge", "--labels", str(path), "--judge", "claims", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["judge"]["name"] == "claims" and out["n"] == 4 and out["labels"] == str(path)
    for key in ("accuracy", "kappa", "unsupported_precision", "unsupported_recall", "tp", "fp", "fn", "tn",
                "by_lang", "by_kind", "disagreements", "ms_per_claim", "invented_unsupported_recall"):
        assert key in out
    assert out["kappa"] == 1.0 and set(out["by_lang"]) == {"zh", "en"}
    res = runner.invoke(app, ["eval", "judge", "--labels", str(path), "--judge", "lexical"])
    assert res.exit_code == 0 and "κ" in res.output and "By language" in res.output


def test_eval_judge_command_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "judge", "--labels", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 1 and "labels file not found" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "claim": "x"}\n', encoding="utf-8")
    res = runner.invoke(app, ["eval", "judge", "--labels", str(bad)])
    assert res.exit_code == 1 and "has no 'passages'" in res.output
    res = runner.invoke(app, ["eval", "judge", "--labels", str(_labels_file(tmp_path)), "--judge", "claims",
                              "--calibrate"])
    assert res.exit_code == 1 and "no score to calibrate" in res.output


def test_default_judge_is_claims() -> None:
    from tutor.config import Settings

    assert make_judge(Settings()).name == "claims"


@pytest.mark.slow
def test_eval_judge_command_calibrates_the_llm_judge(tmp_path: Path) -> None:
    """`--judge llm --calibrate` on a real (tiny) model: log-odds scored, threshold fitted per fold."""
    path = _labels_file(tmp_path)
    res = CliRunner().invoke(app, ["eval", "judge", "--labels", str(path), "--judge", "llm", "--judge-model",
                                   "smollm2-135m", "--calibrate", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["judge"]["mode"] == "logprob" and out["judge"]["calls"] == 4 and "fallback" not in out["judge"]
    cv = out["cross_validated"]
    assert cv["folds"] == 5 and isinstance(cv["threshold"], float) and cv["tp"] + cv["fp"] + cv["fn"] + cv["tn"] == 4
