"""A judge that reads how likely the model finds the claim after the passages, not what it says.

A 0.5B model asked "is this claim supported? yes / no" answers no better than chance (κ −0.06 on
the project's labels; 1.5B κ 0.12). The same model is a fair reader of likelihood: a claim the
passages state is one it expects to read after them — log P(claim | passages) is high, and higher
than log P(claim) without them — while an invented figure or a swapped name is a surprise. FEATURES
(the claim tokens' mean and minimum log-probability after the passages and gain over no passages,
and how much of what the claim adds to the question the passages hold) go through a logistic model
that evals/fit_likelihood.py fits on both label files (615 labels; 5-fold cross-validated κ 0.53;
see JUDGE_LABELS.md). Two checks come first, without the model: a figure the claim states that no
passage holds makes it unsupported (the model finds an invented number next to real ones as likely
as the real one), and a statement copied from the passages is supported (a quote's framing and
ellipses read as unlikely text).

It needs the model's per-token log-probabilities of a given text, which the in-process llama.cpp
backend gives (`logits_all`); two forward passes per claim (~2.2 s with the 0.5B on 2 cores).
"""
from __future__ import annotations

import hashlib
import html
import json
import math
import re
import threading
from difflib import SequenceMatcher
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tutor import jsonl
from tutor.text import compact, figure_values, figures, names, strip_citations, terms, visible

from .judges import Judge, focus

if TYPE_CHECKING:
    from tutor.config import Settings

FEATURES = ("mean log P", "mean gain", "min log P", "min gain", "new terms held", "terms asked")
# logistic model over FEATURES, fitted by evals/fit_likelihood.py on both project label files with
# the 0.5B preset; supported when the log-odds ≥ 0
COEF = (0.681, 0.03699, -0.09582, 0.2108, 1.381, 1.12)
INTERCEPT = -0.6762
CV_KAPPA = 0.53  # 5-fold cross-validated, repeated 5 times, on the 615 labels of both files
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
        self._seen: dict[str, tuple[list[float], list[float]]] | None = None
        self._cache_path: Path | None = None

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
                "mode": "likelihood", "calls": self.calls, "coef": list(COEF), "intercept": INTERCEPT,
                "cv_kappa": CV_KAPPA}

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

    def _cache_file(self) -> Path:
        if self._cache_path is not None:
            return self._cache_path
        model = self._settings.judge.model
        ident = [model]
        if Path(model).is_file():  # a GGUF path: another file there is another model
            st = Path(model).stat()
            ident += [st.st_size, st.st_mtime_ns]
        name = hashlib.sha1(json.dumps(ident).encode()).hexdigest()[:16]
        self._cache_path = self._settings.paths.home / "judge" / f"likelihood-{name}.jsonl"
        return self._cache_path

    def _cached(self) -> dict[str, tuple[list[float], list[float]]]:
        """Token log-probabilities read before. They depend only on the model and the text, and every
        answer report measures its judge on all the project's labels (~14 min on 2 cores the first time)."""
        if self._seen is None:
            f = self._cache_file()
            rows = jsonl.read(f, skip_bad=True) if f.is_file() else []  # a cut last line is skipped
            self._seen = {r["key"]: (r["cond"], r["unc"]) for r in rows if isinstance(r, dict) and "key" in r}
        return self._seen

    def token_logprobs(self, claim: str, passages: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """log P of each claim token after the passages, and without them; None for an empty claim."""
        claim = strip_citations(claim).strip()
        if not claim:
            return None
        ctx = "\n".join(focus(p, claim, _PASSAGE_CHARS) for p in passages)[:_TOTAL_CHARS]
        head, tail, bare = _FRAMES["zh" if any("\u4e00" <= ch <= "\u9fff" for ch in claim) else "en"]
        blob = json.dumps([head + ctx + tail, bare, claim, _CTX_TOKENS], ensure_ascii=False)
        key = hashlib.sha1(blob.encode()).hexdigest()
        with self._eval_lock:  # one llama.cpp context: the two passes of a claim run alone
            seen = self._cached()
            if key in seen:
                cond, unc = seen[key]
            else:
                cond = self._logprobs(head + ctx + tail, claim)
                unc = self._logprobs(bare, claim)
                seen[key] = (cond, unc)
                f = self._cache_file()
                f.parent.mkdir(parents=True, exist_ok=True)
                with f.open("a", encoding="utf-8") as out:
                    out.write(jsonl.dumps({"key": key, "cond": cond, "unc": unc}) + "\n")
                with self._lock:
                    self.calls += 1
        n = min(len(cond), len(unc))
        if n == 0:
            return None
        return np.asarray(cond[:n]), np.asarray(unc[:n])

    def features(self, claim: str, passages: list[str], question: str | None = None) -> tuple[float, ...] | None:
        """FEATURES of the claim; None for an empty claim."""
        lp = self.token_logprobs(claim, passages)
        if lp is None:
            return None
        return features_of(*lp, claim, passages, question)

    def log_odds(self, claim: str, passages: list[str], question: str | None = None) -> float:
        f = self.features(claim, passages, question)
        if f is None:
            return -math.inf
        return float(np.dot(COEF, f)) + INTERCEPT

    def _judge(self, claim: str, passages: list[str], lang: str | None, question: str | None = None) -> bool:
        if missing_figure(claim, passages, question):
            return False  # a likely-sounding figure that no passage states is still invented
        if copied_statement(claim, passages):
            return True  # the framing ("The sources say:", "原文：") and cut quotes read as unlikely text
        return self.log_odds(claim, passages, question) >= 0.0


def features_of(cond: np.ndarray, unc: np.ndarray, claim: str, passages: list[str],
                question: str | None = None) -> tuple[float, ...]:
    """FEATURES from the claim tokens' log-probabilities with (`cond`) and without (`unc`) the
    passages. The means read fluency, the minima the one surprising token (a swapped name or
    figure that the mean dilutes); the coverages are what the model cannot read: how many of the
    terms the claim adds to the question the passages hold, and how much of it only restates the
    question."""
    gain = cond - unc
    claim_terms = terms(strip_citations(claim))
    asked = terms(question or "")
    new = claim_terms - asked
    held = terms("\n".join(passages))
    return (float(cond.mean()), float(gain.mean()), float(cond.min()), float(gain.min()),
            len(new & held) / len(new) if new else 0.0,
            len(claim_terms & asked) / len(claim_terms) if claim_terms else 0.0)


_QUOTED = re.compile(r"[“\"「]([^”\"」]+)[”\"」]")
_ELLIPSIS = re.compile(r"…|\.\.\.")
_COPY_CHARS, _COPY_FRAMING, _COPY_BLOCK, _COPY_COVER = 32, 24, 6, 0.9


def _letters(text: str) -> str:
    """Only the letters and digits a reader sees (markup, entities, punctuation and spaces gone)."""
    return compact(html.unescape(visible(text)))


def copied_statement(claim: str, passages: list[str]) -> bool:
    """The claim copies the passages: its quoted text (or, unquoted, all of it), cut at ellipses, is
    found in them piece by piece with every name it types, is at least 32 letters long and is no
    question; beside a quote only a short framing ("The sources say:", "原文：") may stand. Its
    figures are checked first, by `missing_figure`. The thresholds were chosen on the label files
    (see JUDGE_LABELS.md for what the rule takes and how often it is right)."""
    text = strip_citations(claim).strip()
    if not passages or re.search(r"[?？]\W*$", text):
        return False
    quotes = _QUOTED.findall(text)
    if quotes and len(_letters(_QUOTED.sub("", text))) > _COPY_FRAMING:
        return False  # the claim asserts something beside what it quotes
    pieces = [_letters(x) for q in (quotes or [text]) for x in _ELLIPSIS.split(q)]
    pieces = [x for x in pieces if x]
    if sum(map(len, pieces)) < _COPY_CHARS:
        return False
    hay = _letters("\n".join(passages))
    if any(_letters(n) not in hay for n in names(text)):
        return False  # one swapped name in a copied sentence changes what it says
    for piece in pieces:
        blocks = SequenceMatcher(None, piece, hay, autojunk=False).get_matching_blocks()
        if sum(b.size for b in blocks if b.size >= _COPY_BLOCK) < _COPY_COVER * len(piece):
            return False
    return True


def missing_figure(claim: str, passages: list[str], question: str | None = None) -> bool:
    """A figure of the claim (scale-normalised, "60M" = 6000万) that no passage states and the
    question did not write either."""
    have = set().union(*(figure_values(p) for p in passages)) if passages else set()
    asked = figure_values(question or "")
    return any(f.value not in asked and f.value not in have for f in figures(strip_citations(claim)))

