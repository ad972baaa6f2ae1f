"""Support judges: the lexical heuristic's rules, the LLM judge's prompt / parsing / counting (on
a scripted LLM, plus one slow smoke run on a real tiny model), the factory and agreement."""
from __future__ import annotations

from typing import Iterator

import pytest

from tutor.config import Settings
from tutor.evaluation.judges import (
    LexicalJudge,
    LLMJudge,
    agreement,
    extract_numbers,
    make_judge,
    parse_verdict,
    yes_no_logodds,
)
from tutor.llm import LLM, Delta, GenParams

ALEX = "AlexNet 于 2012 年提出，参数量: 60M，Top-5 错误率为 15.3%，共 5 个卷积层。"


# ---- lexical ----------------------------------------------------------------------------------
def test_numbers_are_scale_aware() -> None:
    vals = {v for v, *_ in extract_numbers("60M, 6000万, 60 million, 62.5 million, 6250万, 1.4T, 3.57%, 1,000")}
    assert vals == {6e7, 6.25e7, 1.4e12, 3.57, 1000.0}
    assert [v for v, *_ in extract_numbers("GPT-3 and V3 and ResNet-152 and top-5")] == []


@pytest.mark.parametrize("claim,supported", [
    ("AlexNet 的 Top-5 错误率为 15.3%。", True),
    ("AlexNet 的 Top-5 错误率为 16.4%。", False),                       # wrong number
    ("AlexNet has about 6000万 parameters.", True),                     # 60M = 6000万, glossary 参数
    ("AlexNet had roughly 60 million parameters.", True),
    ("AlexNet had roughly 70 million parameters.", False),
    ("AlexNet 有 5 个卷积层。", True),
    ("Transformer 使用多头注意力和位置编码。", False),                  # unrelated terms
    ("好的。", True),                                                    # nothing to check
])
def test_lexical_judge(claim: str, supported: bool) -> None:
    assert LexicalJudge().supported(claim, [ALEX]) is supported


def test_lexical_judge_cross_lingual_and_empty_passages() -> None:
    j = LexicalJudge()
    assert j.supported("The residual connection eases optimization of deep networks.",
                       ["残差连接 (residual connection) 让深度网络更容易优化 (optimization)。"])
    assert j.supported("ResNet 使用残差连接。", ["ResNet uses residual connections: y = F(x) + x."])
    assert not j.supported("ResNet 使用残差连接。", [])
    assert not j.supported("ResNet 使用残差连接。", ["   "])


def test_lexical_judge_is_deterministic_and_cached() -> None:
    j = LexicalJudge()
    verdicts = {j.supported("AlexNet 的错误率为 15.3%", [ALEX]) for _ in range(3)}
    assert verdicts == {True} and len(j._cache) == 1
    assert j.supported_many([("AlexNet 的错误率为 15.3%", [ALEX], "zh"), ("错误率 99%", [ALEX], None)]) == [True, False]


# ---- LLM judge on a scripted LLM ---------------------------------------------------------------
class ScriptedLLM(LLM):
    backend, model = "scripted", "scripted-1"

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.seen: list[tuple[list[dict], GenParams | None]] = []

    def stream(self, messages, params=None) -> Iterator[Delta]:
        self.seen.append((messages, params))
        yield Delta(self.replies.pop(0))


@pytest.mark.parametrize("reply,verdict", [
    ("yes", True), ("No.", False), ("**Yes**", True), ("是", True), ("否", False), ("不支持", False),
    ("支持。", True), ("是的，段落明确提到。", True), ("The answer is yes.", True),
    ("I think no", False), ("maybe", None), ("", None), ("yes and no", True), ("Well, yes and no", None),
])
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict


def test_llm_judge_prompt_language_params_and_unparseable_count() -> None:
    llm = ScriptedLLM(["是", "no", "hmm, hard to say"])
    j = LLMJudge(llm=llm)
    assert j.supported("AlexNet 的错误率为 15.3%。", [ALEX], "zh") is True
    assert j.supported("AlexNet had 70M parameters.", [ALEX]) is False
    assert j.supported("Something else.", [ALEX]) is False  # unreadable → unsupported, counted
    assert j.supported("AlexNet 的错误率为 15.3%。", [ALEX], "zh") is True  # cached: no 4th call
    assert j.calls == 3 and j.unparseable == 1 and j.unparseable_examples == ["hmm, hard to say"]
    (zh_msgs, params), (en_msgs, _) = llm.seen[0], llm.seen[1]
    assert "陈述" in zh_msgs[1]["content"] and "[1] AlexNet" in zh_msgs[1]["content"]
    assert "Claim: AlexNet had 70M parameters." in en_msgs[1]["content"]
    assert params.temperature == 0.0 and params.max_tokens == 8
    assert j.describe()["unparseable"] == 1 and j.describe()["model"] == "scripted-1"


# ---- factory and agreement -----------------------------------------------------------------
def test_make_judge() -> None:
    j = make_judge(Settings().replace(judge="lexical"))
    assert isinstance(j, LexicalJudge) and j.name == "lexical"
    llm_j = make_judge(Settings(), "llm")  # no model loaded until the first question
    assert isinstance(llm_j, LLMJudge) and llm_j._llm is None and llm_j.describe()["kind"] == "llm"
    with pytest.raises(ValueError, match="unknown judge 'nli'"):
        make_judge(Settings(), "nli")


def test_agreement_counts() -> None:
    labels = [{"id": "a", "claim": "AlexNet 错误率 15.3%", "passages": [ALEX], "supported": True, "source": "s1"},
              {"id": "b", "claim": "AlexNet 错误率 20%", "passages": [ALEX], "supported": False, "source": "s1"},
              {"id": "c", "claim": "AlexNet 错误率 20%", "passages": [ALEX], "supported": True, "source": "s2"}]
    a = agreement(LexicalJudge(), labels)
    assert a["n"] == 3 and a["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (1, 0, 1, 1)
    assert a["by_source"] == {"s1": {"n": 2, "accuracy": 1.0}, "s2": {"n": 1, "accuracy": 0.0}}
    assert [d["id"] for d in a["disagreements"]] == ["c"]


@pytest.mark.slow
def test_llm_judge_on_a_real_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Plumbing only (SmolLM2-135M is no judge): the configured backend loads lazily and every
    verdict is a bool, unreadable replies counted rather than raised."""
    s = Settings().replace(judge_backend="llamacpp", judge_model="smollm2-135m", n_ctx=1024,
                 home=tmp_path_factory.mktemp("home"))
    j = make_judge(s, "llm")
    got = [j.supported("AlexNet 的 Top-5 错误率为 15.3%。", [ALEX]),
           j.supported("AlexNet was proposed in 2012.", [ALEX])]
    assert all(isinstance(v, bool) for v in got) and j.calls == 2
    assert j.describe()["backend"] == "llamacpp"
    j.llm.close()


def test_llm_judge_shares_the_answering_model_only_when_identical() -> None:
    answering = ScriptedLLM([])
    same = LLMJudge(Settings().replace(backend="llamacpp", model="m", judge_backend="llama.cpp", judge_model="m"))
    same.share_llm(answering)
    assert same._llm is answering
    other = LLMJudge(Settings().replace(backend="llamacpp", model="m", judge_backend="llamacpp", judge_model="big"))
    other.share_llm(answering)
    assert other._llm is None
    remote = LLMJudge(Settings().replace(backend="openai", model="m", base_url="http://a/v1", judge_backend="openai",
                               judge_model="m", judge_base_url="http://b/v1"))
    remote.share_llm(answering)
    assert remote._llm is None


# ---- LLM judge from yes/no log-probabilities -----------------------------------------------------
@pytest.mark.parametrize("top,sign", [
    ({"Yes": -0.2, "No": -2.0, " yes": -3.0}, 1), ({"否": -0.1, "是": -2.5}, -1),
    ({"No": -0.7, "no": -1.0, "Yes": -0.9}, -1), ({"The": -0.1, "yes": -3.0}, 1),  # "no" absent: floor below
])
def test_yes_no_logodds(top: dict, sign: int) -> None:
    assert (yes_no_logodds(top) > 0) == (sign > 0)


def test_yes_no_logodds_sums_each_family() -> None:
    import math

    v = yes_no_logodds({"Yes": math.log(0.3), "yes": math.log(0.1), "No": math.log(0.4)})
    assert v == pytest.approx(math.log(0.4) - math.log(0.4))


class LogprobLLM(ScriptedLLM):
    """Scripted first-token distributions, to check the threshold logic (the real model below)."""

    def __init__(self, tops: list[dict]) -> None:
        super().__init__([])
        self.tops = list(tops)

    def first_token_logprobs(self, messages, top=20):
        self.seen.append((messages, None))
        return self.tops.pop(0)


def test_llm_judge_logprob_mode_uses_the_threshold() -> None:
    llm = LogprobLLM([{"yes": -1.2, "no": -0.4}, {"yes": -3.0, "no": -0.1}])
    j = LLMJudge(llm=llm, threshold=-1.0)  # calibrated cut: "no" may win and still pass
    assert j.supported("AlexNet 的错误率为 15.3%。", [ALEX], "zh") is True  # -0.8 >= -1.0
    assert j.supported("AlexNet had 70M parameters.", [ALEX], None, "How many?") is False  # -2.9
    assert j.calls == 2 and j.describe()["mode"] == "logprob" and j.describe()["threshold"] == -1.0
    assert "How many?" in llm.seen[1][0][1]["content"]  # the question goes into the prompt
    assert j.score("AlexNet had 70M parameters.", [ALEX], None, "How many?") == pytest.approx(-2.9)  # cached
    assert j.calls == 2


def test_llm_judge_falls_back_to_text_without_logprobs() -> None:
    j = LLMJudge(llm=ScriptedLLM(["yes"]))
    assert j.supported("AlexNet 的错误率为 15.3%。", [ALEX]) is True
    assert j.fallback and "no log-probabilities" in j.describe()["fallback"]
    with pytest.raises(ValueError, match="unknown judge mode"):
        LLMJudge(llm=ScriptedLLM([]), mode="vibes")


@pytest.mark.slow
def test_llamacpp_first_token_logprobs_match_llama_cpp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The logits read inside the sampler are llama.cpp's own: same top tokens and log-probs as
    `create_chat_completion(logprobs=True)` on a model loaded with logits_all."""
    from llama_cpp import Llama

    from tutor.llm.llamacpp import LlamaCppLLM

    s = Settings().replace(model="smollm2-135m", n_ctx=1024, home=tmp_path_factory.mktemp("home"))
    msgs = [{"role": "user", "content": "Is the sky blue? Answer yes or no."}]
    with LlamaCppLLM(s) as llm:
        mine = llm.first_token_logprobs(msgs, 5)
        ref = Llama(model_path=str(llm.path), n_ctx=1024, logits_all=True, flash_attn=s.flash_attn, verbose=False)
    r = ref.create_chat_completion(messages=msgs, max_tokens=1, temperature=0, logprobs=True, top_logprobs=5)
    theirs = {t["token"]: t["logprob"] for t in r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]}
    ref.close()
    assert list(mine) == list(theirs)
    assert all(mine[t] == pytest.approx(theirs[t], abs=1e-4) for t in theirs)


@pytest.mark.slow
def test_llm_judge_logprobs_over_the_openai_api(llm_server) -> None:
    """`--judge-backend openai`: the server's top_logprobs give the verdict (vLLM does the same)."""
    s = Settings().replace(judge_backend="openai", judge_model=llm_server.model, judge_base_url=llm_server.base_url,
                 timeout_s=60.0, retries=0)
    j = make_judge(s, "llm")
    v = j.score("AlexNet 的 Top-5 错误率为 15.3%。", [ALEX], "zh")
    assert isinstance(v, float) and j.calls == 1 and j.fallback is None
    top = j.llm.first_token_logprobs(j.messages("AlexNet had 60M parameters.", [ALEX]), 5)
    assert 1 <= len(top) <= 5 and all(lp <= 0.0 for lp in top.values())
    assert isinstance(j.supported("AlexNet had 60M parameters.", [ALEX]), bool)
    j.llm.close()


@pytest.mark.slow
def test_likelihood_judge_finds_a_copied_claim_likelier_than_an_invented_one(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Even SmolLM2-135M expects to read, after a passage, a sentence the passage holds: the copy
    scores above the same sentence with its figures and name swapped. Only llama.cpp in process
    gives the per-token log-probabilities it reads; another backend is a one-line error."""
    from tutor.errors import LLMError
    from tutor.evaluation.likelihood import FEATURES, LikelihoodJudge

    s = Settings().replace(judge_backend="llamacpp", judge_model="smollm2-135m", home=tmp_path_factory.mktemp("home"))
    j = make_judge(s, "likelihood")
    passage = "AlexNet won the ImageNet challenge in 2012 with a top-5 error of 15.3%, using two GPUs."
    copied = j.features("AlexNet won the ImageNet challenge in 2012 with a top-5 error of 15.3%.", [passage])
    invented = j.features("LeNet won the CIFAR challenge in 1998 with a top-1 error of 42.7%.", [passage])
    assert copied is not None and invented is not None and len(copied) == len(FEATURES)
    assert copied[0] > invented[0] and copied[1] > invented[1]  # likelier after the passage, and gaining more
    assert isinstance(j.supported("AlexNet used two GPUs.", [passage]), bool) and j.calls == 3
    assert j.features("[1]", [passage]) is None and j.describe()["name"] == "likelihood"
    # a figure no passage states is invented however likely it reads; scales agree (60M = 6000万)
    assert not j.supported("AlexNet won the ImageNet challenge in 2012 with a top-5 error of 12.1%.", [passage])
    assert j.supported('The sources say: "AlexNet won the ImageNet challenge in 2012 with a top-5 error" [1]', [passage])
    assert j.calls == 3  # both decided without the model
    # what was read is kept on disk: another judge on the same model answers without loading it
    again = make_judge(s, "likelihood")
    assert again.features("AlexNet won the ImageNet challenge in 2012 with a top-5 error of 15.3%.", [passage]) == copied
    assert again.calls == 0 and again._llm is None
    from tutor.evaluation.likelihood import missing_figure
    assert not missing_figure("AlexNet 有 6000万 个参数。", ["AlexNet has 60M parameters."])
    assert not missing_figure("ResNet-152 的错误率是 3.57%。", ["ResNet-152: 3.57%"], "ResNet-152 的错误率？")
    with pytest.raises(LLMError, match="llamacpp"):
        LikelihoodJudge(Settings().replace(judge_backend="openai")).llm


def test_a_statement_copied_from_the_passages_is_recognised_without_a_model() -> None:
    """Quoted fallbacks ("原文：“…” [n]") read as unlikely text to a language model (the framing, the
    ellipses), yet a copy is what the passages say. A copy must be long enough to assert something,
    quote the passages piece by piece, keep their names, and say little beside the quote."""
    from tutor.evaluation.likelihood import copied_statement

    p = ["ImageNet Top-5 错误率:\nAlexNet (2012): 15.3%\nVGG-19  (2014):  7.3%\nResNet-152:      3.57% ⭐\n人类水平: ~5%",
         "To predict a masked token without cheating, replace it with a special “&lt;mask&gt;” token "
         "(see :numref:`sec_bert`), 80% of the time."]
    assert copied_statement("资料中的原文：“ImageNet Top-5 错误率: … VGG-19 (2014): 7.3% … ResNet-152: 3.57% ⭐” [1]；", p)
    assert copied_statement('The sources say: "replace it with a special <mask> token, 80% of the time." [2]', p)
    assert copied_statement("To predict a masked token without cheating, replace it with a special <mask> token.", p)
    assert not copied_statement("To predict a masked token without cheating, replace it with a special [CLS] token.", p)
    assert not copied_statement("ImageNet Top-5 错误率: AlexNet (2012)", p)  # too short to assert anything
    assert not copied_statement("To predict a masked token without cheating, replace it with a special <mask> token?", p)
    assert not copied_statement('BERT proves that masking beats every other pre-training objective, because the notes say: '
                                '"replace it with a special <mask> token" [2]', p)  # an assertion beside the quote
    assert not copied_statement("To predict a masked token without cheating, replace it with a special <mask> token.", [])


def test_likelihood_features_read_the_one_surprising_token_and_what_the_claim_adds() -> None:
    import numpy as np

    from tutor.evaluation.likelihood import FEATURES, features_of

    cond, unc = np.array([-0.1, -6.0, -0.2]), np.array([-2.0, -3.0, -4.0])
    f = features_of(cond, unc, "ResNet-152 does reach 3.57% [1]", ["ResNet-152: 3.57%"], "What does ResNet-152 reach?")
    assert len(f) == len(FEATURES)
    assert f[0] == pytest.approx(-6.3 / 3) and f[2] == -6.0 and f[3] == -3.0  # means and minima
    assert f[4] == 1.0  # everything the claim adds to the question ("3.57%") is in the passages
    restated = features_of(cond, unc, "What does ResNet-152 reach?", ["ResNet-152: 3.57%"], "What does ResNet-152 reach?")
    assert restated[4] == 0.0 and restated[5] == 1.0  # adds nothing: no new term held, all asked
