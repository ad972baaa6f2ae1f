"""A judge that reads how likely the model finds the claim after the passages, not what it says.

A 0.5B model asked "is this claim supported? yes / no" answers no better than chance (κ −0.06 on
the project's labels; 1.5B κ 0.12). The same model is a fair reader of likelihood: a claim the
passages state is one it expects to read after them — log P(claim | passages) is high, and higher
than log P(claim) without them — while an invented figure or a swapped name is a surprise. Two
features, the claim tokens' mean log-probability after the passages and its mean gain over no
passages (pointwise mutual information), go through a logistic model fitted on
evals/datasets/judge_labels.jsonl (417 labels; 5-fold cross-validated κ 0.40) and measured on the
held-out file it never saw (κ 0.47, where the `claims` rules reach 0.34). See JUDGE_LABELS.md.
A figure the claim states that no passage holds makes it unsupported whatever its likelihood: the
model finds an invented number next to real ones as likely as the real one.

It needs the model's per-token log-probabilities of a given text, which the in-process llama.cpp
backend gives (`logits_all`); two forward passes per claim (~2.4 s with the 0.5B on 2 cores).
"""
from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING

import numpy as np

from tutor.text import figure_values, figures, strip_citations

from .judges import Judge, focus

if TYPE_CHECKING:
    from tutor.config import Settings

# logistic model over (mean log P(claim | passages), mean PMI), fitted on judge_labels.jsonl with
# the 0.5B preset; supported when the log-odds ≥ 0
COEF = (0.615, 0.295)
INTERCEPT = 0.245
_CTX_TOKENS = 1024
_PASSAGE_CHARS, _TOTAL_CHARS = 400, 1200
_FRAMES = {"zh": ("资料：\n", "\n\n根据资料：", "根据资料："),
           "en": ("Passages:\n", "\n\nAccording to the passages: ", "According to the passages: ")}


class LikelihoodJudge(Judge):
    name = "likelihood"
    kind = "llm"

    def __init__(self, settings: "Settings", llm=None) -> None:
        super().__init__()
        self._settings = settings
        self._llm = llm  # a llama_cpp.Llama made with logits_all=True (tests may hand one in)
        self._llm_lock = threading.Lock()
        self._eval_lock = threading.Lock()
        self.calls = 0

    @property
    def llm(self):
        with self._llm_lock:
            if self._llm is None:
                self._llm = self._load()
            return self._llm

    def _load(self):
        from tutor.errors import LLMError
        from tutor.llm.llamacpp import load_llama

        s = self._settings
        if s.judge.backend.strip().lower() not in ("llamacpp", "llama.cpp", "llama_cpp"):
            # over HTTP it would need the prompt's echoed log-probabilities; llama-cpp-python 0.3.36's
            # server returns wrong ones (a copied "2012." at -4…-14 per token, -0.0…-0.4 in process)
            raise LLMError(f"the likelihood judge reads token log-probabilities in process: it needs "
                           f"judge_backend llamacpp, not {s.judge.backend!r}")
        return load_llama(s.judge.model, s, _CTX_TOKENS, logits_all=True, flash_attn=False)[1]

    def describe(self) -> dict:
        s = self._settings
        return {"name": self.name, "kind": self.kind, "backend": s.judge.backend, "model": s.judge.model,
                "mode": "likelihood", "calls": self.calls, "coef": list(COEF), "intercept": INTERCEPT}

    def _logprobs(self, prefix: str, claim: str) -> list[float]:
        """log P of each claim token after `prefix` (the prefix cut from the left to fit)."""
        llm = self.llm
        p = llm.tokenize(prefix.encode(), add_bos=False, special=False)
        c = llm.tokenize(claim.encode(), add_bos=False, special=False)[: _CTX_TOKENS // 2]
        p = p[max(0, len(p) + len(c) - (_CTX_TOKENS - 24)):]
        toks = p + c
        llm.reset()
        llm.eval(toks)
        first = max(len(p), 1)
        rows = np.asarray(llm.scores[first - 1: len(toks) - 1], dtype=np.float64)  # logits before each token
        top = rows.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
        return (rows[np.arange(len(rows)), toks[first:]] - log_z).tolist()

    def features(self, claim: str, passages: list[str]) -> tuple[float, float] | None:
        """(mean log P(claim | passages), mean PMI) per claim token; None for an empty claim."""
        claim = strip_citations(claim).strip()
        if not claim:
            return None
        ctx = "\n".join(focus(p, claim, _PASSAGE_CHARS) for p in passages)[:_TOTAL_CHARS]
        head, tail, bare = _FRAMES["zh" if any("\u4e00" <= ch <= "\u9fff" for ch in claim) else "en"]
        with self._eval_lock:  # one llama.cpp context: the two passes of a claim run alone
            cond = self._logprobs(head + ctx + tail, claim)
            unc = self._logprobs(bare, claim)
        n = min(len(cond), len(unc))
        if n == 0:
            return None
        with self._lock:
            self.calls += 1
        mean_c = sum(cond[:n]) / n
        return mean_c, mean_c - sum(unc[:n]) / n

    def log_odds(self, claim: str, passages: list[str]) -> float:
        f = self.features(claim, passages)
        if f is None:
            return -math.inf
        return COEF[0] * f[0] + COEF[1] * f[1] + INTERCEPT

    def _judge(self, claim: str, passages: list[str], lang: str | None, question: str | None = None) -> bool:
        if missing_figure(claim, passages, question):
            return False  # a likely-sounding figure that no passage states is still invented
        return self.log_odds(claim, passages) >= 0.0


def missing_figure(claim: str, passages: list[str], question: str | None = None) -> bool:
    """A figure of the claim (scale-normalised, "60M" = 6000万) that no passage states and the
    question did not write either."""
    have = set().union(*(figure_values(p) for p in passages)) if passages else set()
    asked = figure_values(question or "")
    return any(f.value not in asked and f.value not in have for f in figures(strip_citations(claim)))

