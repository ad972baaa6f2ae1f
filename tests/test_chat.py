"""Follow-up rewriting (tutor/chat.py): the rejection rules on the bad rewrites the 0.5B model
really produced (issue 10), the rule-built standalone form, topic changes left alone, and the
whole rewrite with a real model (SmolLM2 in-process)."""
from __future__ import annotations

import pytest

from tutor.chat import (Rewrite, answer_gist, check_rewrite, clean_rewrite, kept_share, needs_rewrite, rewrite,
                        rule_rewrite, topic)
from tutor.prompts import rewrite_messages

V3 = [("DeepSeek-V3 的训练成本是多少？",
       "DeepSeek-V3 的训练成本是 $5.576M [1]，总参数 671B，激活参数 37B [1]。")]
FOLLOW = "它激活了多少参数？"


def _check(raw: str, history=V3, question=FOLLOW) -> str | None:
    text, labelled = clean_rewrite(raw)
    return check_rewrite(question, text, history, labelled, topic(history))


# ---- the rejection rules, on what the model actually returned (issue 10) -------------------------

def test_turn_one_verbatim_is_rejected():
    assert _check("DeepSeek-V3 的训练成本是多少？") == "repeats_history"


def test_turn_one_with_the_history_label_is_rejected():
    assert _check("学习者：DeepSeek-V3 的训练成本是多少？") == "history_label"
    assert _check("Learner: What did DeepSeek-V3 cost to train?", [("What did DeepSeek-V3 cost to train?", "")],
                  "How many parameters does it activate?") == "history_label"


def test_an_answer_sentence_is_rejected():
    assert _check("DeepSeek-V3 激活了 37B 参数。") == "statement"
    assert _check("DeepSeek-V3 的训练成本是 $5.576M。") == "statement"


def test_a_question_carrying_the_answers_figures_is_rejected():
    assert _check("DeepSeek-V3 激活的 37B 参数是什么意思？") == "answer_figures"


def test_a_rewrite_that_contains_the_history_question_is_rejected():
    assert _check("DeepSeek-V3 的训练成本是多少？它激活了多少参数？") == "repeats_history"


def test_a_rewrite_that_drops_the_followups_question_is_rejected():
    assert _check("DeepSeek-V3 有什么特点？") == "dropped_question"
    assert kept_share(FOLLOW, "DeepSeek-V3 有什么特点？") < 0.5


def test_a_rewrite_without_the_topic_is_rejected():
    assert _check("激活了多少参数？") == "lost_topic"


@pytest.mark.parametrize("good", ["DeepSeek-V3 激活了多少参数？", "独立问题：DeepSeek-V3 激活了多少参数？",
                                  "DeepSeek-V3 的激活参数是多少？", "“DeepSeek-V3 每个 token 激活多少参数？”"])
def test_good_rewrites_pass(good):
    assert _check(good) is None


def test_english_rules():
    hist = [("What was DeepSeek-V3's training cost?", "About $5.576M [1].")]
    q = "How many parameters does it activate?"
    assert _check("What was DeepSeek-V3's training cost?", hist, q) == "repeats_history"
    assert _check("DeepSeek-V3 activates 37B parameters.", hist, q) == "statement"
    assert _check("What is DeepSeek-V3?", hist, q) == "dropped_question"
    assert _check("How many parameters are activated in DeepSeek-V3?", hist, q) is None


# ---- the rule-built standalone form -----------------------------------------------------------------

def test_pronoun_is_replaced_by_the_topic():
    assert rule_rewrite(FOLLOW, V3) == "DeepSeek-V3 激活了多少参数？"
    assert rule_rewrite("What was its top-5 error rate?", [("Who proposed ResNet?", "")]) == \
        "What was ResNet's top-5 error rate?"
    assert rule_rewrite("它是谁提出的？", [("残差连接解决了什么问题？", "")]) == "残差连接是谁提出的？"


def test_what_about_switch_asks_the_previous_question_about_the_new_subject():
    hist = [("AlexNet 在 ImageNet 上的 Top-5 错误率是多少？", "15.3%")]
    assert rule_rewrite("那 ResNet-152 呢？", hist) == "ResNet-152 在 ImageNet 上的 Top-5 错误率是多少？"
    assert rule_rewrite("What about GPT-2?", [("How many parameters did GPT-3 have?", "175B")]) == \
        "How many parameters did GPT-2 have?"
    # a thing of its own that is not a bare name takes the subject's place too (dev multi-turn mt-23)
    world = [("What score did the full World Model agent get on Car Racing?", "906")]
    out = rule_rewrite("What about the V model alone?", world)
    assert "V model alone" in out and "score" in out and "Car Racing" in out and "World Model" not in out


def test_three_turn_chain_keeps_the_first_topic():
    hist = V3 + [(FOLLOW, "激活参数 37B。")]
    assert needs_rewrite("那总参数呢？", hist)
    assert rule_rewrite("那总参数呢？", hist) == "DeepSeek-V3 总参数呢？"
    hist = [("DeepSeek-V3 的 MMLU 分数是多少？", "88.5%"), ("那 DeepSeek-V2 呢？", "78.5%")]
    assert rule_rewrite("它的训练成本呢？", hist) == "DeepSeek-V2 的训练成本呢？"  # the switched subject


def test_plural_pronoun_takes_every_name():
    hist = [("AlexNet 和 ResNet 分别是哪年提出的？", "")]
    assert rule_rewrite("它们有什么区别？", hist) == "AlexNet 和 ResNet 有什么区别？"


def test_subject_beats_a_unit_name():
    assert topic([("How many GPUs did DeepSeek-V3 use?", "")]) == "DeepSeek-V3"
    assert topic([("Transformer 相比 RNN 有哪些优势？", "")]) == "Transformer"


@pytest.mark.parametrize("question", ["GAN 的生成器和判别器分别做什么？", "Who proposed LSTM, and in which year?",
                                      "什么是蒸馏？", "What is LoRA?", "Transformer 的位置编码用的是什么函数？"])
def test_a_topic_change_is_left_alone(question):
    assert not needs_rewrite(question, V3)
    r = rewrite(question, V3, None)
    assert r == Rewrite(question, question) and not r.rewritten and r.alternates == ()


def test_no_history_no_rewrite():
    assert not needs_rewrite(FOLLOW, [])
    assert rewrite(FOLLOW, [], None).standalone == FOLLOW


def test_without_a_model_the_rule_form_is_used():
    r = rewrite(FOLLOW, V3, None)
    assert r.standalone == r.rule == "DeepSeek-V3 激活了多少参数？"
    assert r.model is None and r.rejected is None and r.alternates == ()


def test_rewrite_prompt_has_no_answers_and_no_speaker_labels():
    content = rewrite_messages(FOLLOW, V3, "zh")[0]["content"]
    assert "DeepSeek-V3 的训练成本是多少？" in content and FOLLOW in content
    assert "5.576" not in content and "学习者" not in content and "助教" not in content


def test_answer_gist_is_the_first_sentence_without_markers():
    assert answer_gist(V3[0][1]) == "DeepSeek-V3 的训练成本是 $5.576M，总参数 671B，激活参数 37B。"


# ---- with a real model ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smol(base_settings):
    from tutor.llm import make_llm

    llm = make_llm(base_settings.replace(backend="llamacpp", model="smollm2-135m", n_ctx=2048))
    yield llm
    llm.close()


@pytest.mark.slow
@pytest.mark.parametrize("question, history", [
    (FOLLOW, V3),
    ("How many parameters does it activate?", [("What was DeepSeek-V3's training cost?", "About $5.576M [1].")]),
    ("那 ResNet-152 呢？", [("AlexNet 在 ImageNet 上的 Top-5 错误率是多少？", "15.3% [1]")]),
])
def test_whatever_the_model_says_the_standalone_keeps_topic_and_question(smol, question, history):
    r = rewrite(question, history, smol)
    assert r.rewritten and r.model is not None
    assert r.standalone == (r.rule if r.rejected else r.model)
    assert check_rewrite(question, r.standalone, history, False, topic(history)) is None or r.standalone == r.rule
    assert kept_share(question, r.standalone) >= 0.5
    assert all(r.standalone.strip("？?") != q.strip("？?") for q, _ in history)
    if not r.rejected and r.standalone != r.rule:
        assert r.alternates == (r.rule,)  # both forms are searched
