"""Support judges: does a set of passages support a claim? The input of every citation metric.

A judge has a `name`, a `kind` ("heuristic" or "llm") and `supported(claim, passages, lang)`;
every report names the judge it used and how well it agrees with hand labels, because citation
recall / precision and faithfulness are only as good as the judge behind them. Verdicts are cached
per (claim, passages), since ALCE precision asks about the same sentence several times.

- `LexicalJudge` — deterministic, instant, no model: a heuristic (numbers gate + term coverage).
- `LLMJudge` — a strict yes/no entailment question to any configured LLM backend.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from tutor.config import Settings
    from tutor.llm import LLM

JUDGES = ("claims", "lexical", "llm", "likelihood")


class Judge:
    """Base class: caching and the batch method; subclasses implement `_judge`."""

    name = ""
    kind = ""

    def __init__(self) -> None:
        self._cache: dict[tuple, bool] = {}
        self._lock = threading.Lock()

    def supported(self, claim: str, passages: list[str], lang: str | None = None,
                  question: str | None = None) -> bool:
        """`question`: the question the sentence answers, when known — a fragment ("33%")
        is read as its answer, and a sentence that only restates it asserts nothing."""
        passages = [p for p in passages if p and p.strip()]
        if not passages:
            return False  # nothing cited, nothing supports
        key = (claim, tuple(passages), question or None)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        verdict = bool(self._judge(claim, passages, lang, question or None))
        with self._lock:
            self._cache[key] = verdict
        return verdict

    def supported_many(self, cases: Iterable[tuple]) -> list[bool]:
        """Cases are (claim, passages, lang) or (claim, passages, lang, question)."""
        return [self.supported(*case) for case in cases]

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind}

    def _judge(self, claim: str, passages: list[str], lang: str | None,
               question: str | None = None) -> bool:
        raise NotImplementedError


# ---- numbers ---------------------------------------------------------------------------------
_SCALE = {"%": 1, "‰": 1, "k": 1e3, "thousand": 1e3, "千": 1e3, "万": 1e4, "m": 1e6, "million": 1e6,
          "百万": 1e6, "亿": 1e8, "b": 1e9, "billion": 1e9, "十亿": 1e9, "t": 1e12, "trillion": 1e12,
          "万亿": 1e12}
_UNITS = "|".join(sorted((re.escape(u) for u in _SCALE), key=len, reverse=True))
_NUMBER = re.compile(r"(?<![\d.A-Za-z])(?<![A-Za-z]-)(\d+(?:\.\d+)?)(?:\s*(" + _UNITS + r"))?(?![a-z])", re.I)


def extract_numbers(text: str) -> list[tuple[float, float, int, int]]:
    """(scaled value, plain value, start, end) of each number: "60M", "60 million" and "6000万"
    all scale to 6e7, so notes and papers that write one figure differently still agree. Digits
    inside names ("V3", "GPT-3", "top-5") belong to the name, which is checked as a term."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # 1,000 → 1000 (same length: spans stay)
    out = []
    for m in _NUMBER.finditer(text):
        plain = float(m.group(1))
        unit = (m.group(2) or "").lower()
        out.append((_round(plain * _SCALE.get(unit, 1)), _round(plain), m.start(), m.end()))
    return out


def _round(x: float) -> float:
    return float(f"{x:.6g}") if x and math.isfinite(x) else x


# ---- words -------------------------------------------------------------------------------------
_LATIN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-+'][A-Za-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u9fff]")
_EN_STOP = frozenset(
    "a an the of to in on for and or is are was were be been being what which who whom how why "
    "does do did it its this that these those with by as at from about into than then there their "
    "they them he she we you i me my our your his her can could would should will shall may might "
    "must has have had not no yes so such also only just very more most much many some any all each "
    "both either neither other another same own if but because while when where after before over "
    "under between through during up down out off again further once here s t don isn aren wasn "
    "according note notes source sources passage passages document documents mentioned mention says "
    "say said states stated roughly approximately around about answer question however therefore "
    "thus e g i e etc".split())
_ZH_STOP = frozenset(
    "笔记 记录 根据 提到 资料 来源 文档 说明 显示 指出 表示 认为 介绍 描述 提供 其中 以及 因此 所以 但是 而且 "
    "并且 非常 主要 大约 左右 比较 相关 这个 那个 这些 那些 一个 一种 可以 能够 就是 还是 或者 以上 如下 "
    "什么 怎么 如何 哪些 为什么 多少 是否 我们 你们 他们 它们 没有 不是 通过 进行 使用 具体 上述 总之 答案 问题 "
    "段落 文中 原文 资料中 笔记中".split())


def _stop(word: str) -> bool:
    from tutor.lexical import STOPWORDS

    return word in STOPWORDS or word in _EN_STOP or word in _ZH_STOP


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


@lru_cache(maxsize=4096)
def _passage_view(passage: str) -> tuple[str, str, frozenset[float]]:
    """(lower text, lower text without whitespace, number values) of one passage, cached: the
    same sources are judged again for every sentence and every citation subset."""
    low = unicodedata.normalize("NFKC", passage).lower()
    nums = set()
    for scaled, plain, _, _ in extract_numbers(passage):
        nums.update((scaled, plain))
    return low, re.sub(r"\s+", "", low), frozenset(nums)


def _latin_present(word: str, low: str) -> bool:
    """Word-start match, so "parameter" finds "parameters"; crude plural / -ed / -ing stems."""
    stems = {word}
    for suf in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suf) and len(word) - len(suf) >= 4:
            stems.add(word[: -len(suf)])
    return any(re.search(r"(?<![a-z0-9])" + re.escape(s), low) for s in stems)


def _cjk_coverage(word: str, flat: str) -> float:
    """1 if the word occurs; else the share of its character bigrams that do (3+ characters),
    so "传统方法" still counts mostly against "传统的方法"."""
    if word in flat:
        return 1.0
    if len(word) < 3:
        return 0.0
    grams = [word[i:i + 2] for i in range(len(word) - 1)]
    return sum(g in flat for g in grams) / len(grams)


def _translations(term: str) -> list[str]:
    from tutor.glossary import translate_terms

    return [t for t in translate_terms(term).lower().split() if t]


class LexicalJudge(Judge):
    """Heuristic support check — no model, deterministic, instant; treat it as a proxy.

    1. Numbers gate: every number in the claim must occur in the passages (scale-aware: "60M" =
       "6000万" = "60 million"; a plain "15.3" matches "15.3%"). A wrong figure is the commonest
       unsupported claim, and this catches it reliably.
    2. Term coverage: Latin words (names, CamelCase, acronyms weigh 2, other words 1) and Chinese
       content words (jieba; 2+ characters) of the claim, stopwords removed, must be covered by
       the passages — directly or through their zh↔en glossary translation — to at least
       `threshold` of the total weight.

    It cannot see paraphrase beyond the glossary, negation or wrong relations between right words
    ("A beat B" vs "B beat A"); its agreement with hand labels is reported next to its scores.
    """

    name = "lexical"
    kind = "heuristic"

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def terms(self, claim: str) -> list[tuple[str, float, bool]]:
        """(term, weight, is_latin) of the claim's checkable words."""
        text = unicodedata.normalize("NFKC", claim)
        out: list[tuple[str, float, bool]] = []
        seen: set[str] = set()
        first = True
        for m in _LATIN.finditer(text):
            w = re.sub(r"'s$", "", m.group(0))
            low = w.lower()
            if len(low) < 2 or _stop(low) or low in seen:
                first = False
                continue
            seen.add(low)
            entity = any(c.isupper() for c in w[1:]) or any(c.isdigit() for c in w) or \
                (w[0].isupper() and not first)
            out.append((low, 2.0 if entity else 1.0, True))
            first = False
        for chunk in re.findall(r"[\u3400-\u9fff]+", text):
            for w in _jieba().lcut(chunk):
                if len(w) >= 2 and not _stop(w) and w not in seen:
                    seen.add(w)
                    out.append((w, 1.0, False))
        return out

    def coverage(self, claim: str, passages: list[str]) -> float | None:
        """Weighted share of the claim's terms the passages cover; 0 if a number is missing;
        None if the claim has nothing to check (a heading, "好的。")."""
        views = [_passage_view(p) for p in passages]
        low = "\n".join(v[0] for v in views)
        flat = "".join(v[1] for v in views)
        nums = frozenset().union(*(v[2] for v in views))
        claim_nums = extract_numbers(claim)
        if any(scaled not in nums for scaled, _, _, _ in claim_nums):
            return 0.0
        terms = self.terms(claim)
        if not terms and not claim_nums:
            return None
        total = sum(w for _, w, _ in terms) + 2.0 * len(claim_nums)
        got = 2.0 * len(claim_nums)
        for term, w, latin in terms:
            if latin:
                hit = 1.0 if _latin_present(term, low) else 0.0
            else:
                hit = _cjk_coverage(term, flat)
            if hit < 1.0:
                tr = _translations(term)
                if any((_cjk_coverage(t, flat) == 1.0) if _CJK.search(t) else _latin_present(t, low)
                       for t in tr):
                    hit = 1.0
            got += w * hit
        return got / total

    def _judge(self, claim: str, passages: list[str], lang: str | None,
               question: str | None = None) -> bool:
        cov = self.coverage(claim, passages)
        return True if cov is None else cov >= self.threshold


# ---- claims judge ------------------------------------------------------------------------------
class ClaimsJudge(Judge):
    """Claims, not bags of words (claims.py): every clause's names and numbers must occur
    together in one evidence window of the passages — a sentence, a table row with its header, a
    code line with its block's lead — units normalised and zh↔en names matched through the
    judge's own alias table, and its other content words mostly covered there (`threshold`).
    A question, or a sentence that only restates the question, asserts nothing: unsupported.
    Deterministic, no model; `explain()` says why a sentence failed."""

    name = "claims"
    kind = "heuristic"

    def __init__(self, threshold: float = 0.5, corpus_dir: "str | Path | None" = None) -> None:
        super().__init__()
        self.threshold = threshold
        self.corpus_dir = str(corpus_dir) if corpus_dir else None

    def explain(self, claim: str, passages: list[str], question: str | None = None):
        from .aliases import base_aliases
        from .claims import assess

        aliases = base_aliases(self.corpus_dir).extended(passages)
        return assess(claim, passages, aliases, self.threshold, question)

    def _judge(self, claim: str, passages: list[str], lang: str | None,
               question: str | None = None) -> bool:
        return self.explain(claim, passages, question).supported


# ---- LLM judge ---------------------------------------------------------------------------------
_PROMPTS = {
    "en": ("You check whether a claim is supported by the given passages. Reply with one word: "
           "yes or no.",
           "Passages:\n{passages}\n\nClaim: {claim}\n\nIs every part of the claim stated in, or "
           "directly implied by, the passages above? Numbers and names must match exactly. "
           "Reply with one word: yes or no."),
    "zh": ("你负责判断一个陈述是否得到给定段落的支持。只回答一个字：是 或 否。",
           "段落：\n{passages}\n\n陈述：{claim}\n\n这个陈述的每一部分是否都能在上面的段落中找到或直接推出？"
           "数字和名称必须完全一致。只回答一个字：是 或 否。"),
}
_YES, _NO = "yes", "no"
_START = re.compile(r"^[\s*_`\"'“「(（]*(yes|no|是|否|不是|不支持|支持|对|不对|正确|错误)", re.I)
_START_MAP = {"yes": _YES, "no": _NO, "是": _YES, "否": _NO, "不是": _NO, "不支持": _NO, "支持": _YES,
              "对": _YES, "不对": _NO, "正确": _YES, "错误": _NO}
_PASSAGE_CHARS, _TOTAL_CHARS = 450, 1800  # per passage / in all: the sentences nearest the claim, fast on a CPU


def focus(passage: str, claim: str, budget: int = _PASSAGE_CHARS) -> str:
    """The part of a passage a verdict depends on: its units (sentences, rows, lines) that
    share the most terms with the claim, in reading order, within `budget` characters. A small
    model reads a short prompt faster and gets lost less; the whole passage when it fits."""
    from tutor.text import terms, units

    text = " ".join(passage.split()) if len(passage) <= budget else passage
    if len(text) <= budget:
        return text
    want = terms(claim)
    spans = units(passage)
    scored = sorted(range(len(spans)), key=lambda i: -len(want & terms(passage[spans[i].start:spans[i].end])))
    keep: list[int] = []
    used = 0
    for i in scored:
        piece = passage[spans[i].start:spans[i].end]
        if used + len(piece) > budget and keep:
            continue
        keep.append(i)
        used += len(piece) + 3
        if used >= budget:
            break
    out, prev = [], None
    for i in sorted(keep):
        if prev is not None and i != prev + 1:
            out.append("…")
        out.append(" ".join(passage[spans[i].start:spans[i].end].split())[:budget])
        prev = i
    return " ".join(out)


def parse_verdict(text: str) -> bool | None:
    """True / False from a yes-no reply, None if it cannot be read (then the claim counts as
    unsupported, and the judge counts the failure)."""
    t = unicodedata.normalize("NFKC", text or "").strip().lower()
    m = _START.match(t)
    if m:
        return _START_MAP[m.group(1)] == _YES
    found = set()
    if re.search(r"\byes\b", t) or re.search(r"(?:答案|回答|结论)[是为:]*\s*是", t):
        found.add(_YES)
    if re.search(r"\bno\b", t) or "否" in t or "不支持" in t:
        found.add(_NO)
    return (found.pop() == _YES) if len(found) == 1 else None


def claim_lang(claim: str, lang: str | None = None) -> str:
    """zh or en for the prompt: the item's lang if it says, else the claim's script."""
    if lang and lang.lower().startswith("zh"):
        return "zh"
    if lang == "en":
        return "en"
    # the judge's own script test (not the answer side's glossary.language)
    cjk = sum("\u3400" <= ch <= "\u9fff" for ch in claim)
    latin = sum(ch.isascii() and ch.isalpha() for ch in claim)
    return "zh" if cjk and cjk * 2 >= latin * 0.5 else "en"


# yes / no thresholds on the log-odds log P(yes) - log P(no), fitted on the project labels
# (`tutor eval judge --labels evals/datasets/judge_labels.jsonl --judge llm --calibrate`; the
# cross-validated agreement is in README). A model not listed gets 0: "yes" more likely than "no".
CALIBRATED: dict[str, float] = {
    # 64 labels (32/32), 5-fold cross-validated κ −0.06: the 0.5B model's yes/no odds carry no
    # signal here (it leans to "no" whatever the claim); kept so its report is at least honest
    "qwen2.5-coder-0.5b": -1.19,
    # 82 fresh labels, 5-fold cross-validated κ 0.12: a weak signal at ≈15 s/claim on 2 cores
    "qwen2.5-coder-1.5b": 3.01,
}
_YES_TOKENS = frozenset("yes y true 是 对 支持 正确 有".split())
_NO_TOKENS = frozenset("no n false 否 不 不是 不对 不支持 错误 没有 无".split())


def yes_no_logodds(top: dict[str, float]) -> float:
    """log P(yes-family) - log P(no-family) from first-token log-probabilities ("Yes", " yes",
    "是" all count as yes). A family absent from the list gets just under the smallest listed."""
    yes, no = [], []
    for tok, lp in top.items():
        t = unicodedata.normalize("NFKC", tok).strip().strip("*_`\"'“”.,:：。").lower()
        if t in _YES_TOKENS:
            yes.append(lp)
        elif t in _NO_TOKENS:
            no.append(lp)
    floor = (min(top.values()) if top else 0.0) - 1.0
    return _logsumexp(yes or [floor]) - _logsumexp(no or [floor])


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


class LLMJudge(Judge):
    """A strict yes/no entailment question per (claim, passages), in the claim's language, at
    temperature 0, to any backend (`judge_backend` / `judge_model` / `judge_base_url`). The model
    loads on first use.

    Mode `logprob` (default) reads the verdict from the first token's log-probabilities: the
    log-odds of yes vs no against a threshold calibrated on hand labels (`CALIBRATED`, or
    `judge_threshold`) — a small model that says "no" to everything still ranks claims, and the
    threshold puts the cut where the labels do. Mode `text` (or a backend without
    log-probabilities) parses the reply instead; unreadable replies count as "not supported" and
    are counted in `unparseable`, so a judge that ignores the format shows up in the report."""

    name = "llm"
    kind = "llm"

    def __init__(self, settings: "Settings | None" = None, llm: "LLM | None" = None,
                 mode: str | None = None, threshold: float | None = None) -> None:
        super().__init__()
        if settings is None and llm is None:
            raise ValueError("LLMJudge needs settings or an llm")
        self._settings = settings
        self._llm = llm
        self._llm_lock = threading.Lock()
        self.mode = (mode or (settings.judge.mode if settings else "logprob")).strip().lower()
        if self.mode not in ("logprob", "text"):
            raise ValueError(f"unknown judge mode {self.mode!r}: choose logprob or text")
        self._threshold = threshold if threshold is not None else (settings.judge.threshold if settings else None)
        self.calls = 0
        self.unparseable = 0
        self.unparseable_examples: list[str] = []
        self.fallback: str | None = None  # why logprob mode fell back to text, if it did
        self._scores: dict[tuple, float] = {}

    @property
    def threshold(self) -> float:
        if self._threshold is not None:
            return self._threshold
        model = self._llm.model if self._llm is not None else (self._settings.judge.model if self._settings else "")
        return CALIBRATED.get(model, 0.0)

    @property
    def llm(self) -> "LLM":
        with self._llm_lock:
            if self._llm is None:
                from tutor.llm import make_llm

                s = self._settings
                self._llm = make_llm(s, backend=s.judge.backend, model=s.judge.model,
                                     base_url=s.judge.base_url)
            return self._llm

    def share_llm(self, answering: "LLM") -> None:
        """Reuse the answering model when the judge is configured as the very same one, instead
        of loading a second in-process copy (llama.cpp / vLLM serialise calls anyway)."""
        s = self._settings
        if s is None or self._llm is not None:
            return
        from tutor.llm.base import BACKENDS

        same = (BACKENDS.get(s.judge.backend.strip().lower()) == BACKENDS.get(s.llm.backend.strip().lower())
                and s.judge.model == s.llm.model
                and (BACKENDS.get(s.llm.backend.strip().lower()) != "openai" or s.judge.base_url == s.llm.base_url))
        if same:
            with self._llm_lock:
                self._llm = self._llm or answering

    def describe(self) -> dict:
        s = self._settings
        model = self._llm.model if self._llm is not None else (s.judge.model if s else "")
        backend = self._llm.backend if self._llm is not None else (s.judge.backend if s else "")
        out = {"name": self.name, "kind": self.kind, "backend": backend, "model": model,
               "calls": self.calls, "unparseable": self.unparseable, "mode": self.mode}
        if self.mode == "logprob":
            out["threshold"] = round(self.threshold, 4)
        if self.fallback:
            out["fallback"] = self.fallback
        return out

    def messages(self, claim: str, passages: list[str], lang: str | None = None,
                 question: str | None = None) -> list[dict]:
        lang = claim_lang(claim, lang)
        system, user = _PROMPTS[lang]
        if question:
            claim = (f"{claim}\n（这是对问题“{question}”的回答）" if lang == "zh"
                     else f"{claim}\n(an answer to the question: {question})")
        budget, parts = _TOTAL_CHARS, []
        for i, p in enumerate(passages, start=1):
            p = focus(p, claim, min(_PASSAGE_CHARS, budget))
            budget -= len(p)
            parts.append(f"[{i}] {p}")
            if budget <= 0:
                break
        return [{"role": "system", "content": system},
                {"role": "user", "content": user.format(passages="\n".join(parts), claim=claim)}]

    def score(self, claim: str, passages: list[str], lang: str | None = None,
              question: str | None = None) -> float:
        """log P(yes) - log P(no) of the verdict's first token (cached)."""
        passages = [p for p in passages if p and p.strip()]
        key = (claim, tuple(passages), question or None)
        with self._lock:
            if key in self._scores:
                return self._scores[key]
        top = self.llm.first_token_logprobs(self.messages(claim, passages, lang, question), top=20)
        value = yes_no_logodds(top)
        with self._lock:
            self.calls += 1
            self._scores[key] = value
        return value

    def _judge(self, claim: str, passages: list[str], lang: str | None,
               question: str | None = None) -> bool:
        from tutor.llm import NoLogprobs

        if self.mode == "logprob" and self.fallback is None:
            try:
                return self.score(claim, passages, lang, question) >= self.threshold
            except NoLogprobs as e:
                self.fallback = str(e)  # this backend cannot: read the text reply from now on
        return self._text_verdict(claim, passages, lang, question)

    def _text_verdict(self, claim: str, passages: list[str], lang: str | None,
                      question: str | None) -> bool:
        from tutor.llm import GenParams

        llm = self.llm
        # a reasoning model thinks before its verdict; an ordinary one needs a few tokens only
        max_tokens = max(self._settings.llm.max_tokens, 1024) if self._settings and \
            getattr(llm, "reasoning", False) else 8
        text, _ = llm.complete(self.messages(claim, passages, lang, question),
                               GenParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0))
        verdict = parse_verdict(text)
        with self._lock:
            self.calls += 1
            if verdict is None:
                self.unparseable += 1
                if len(self.unparseable_examples) < 5:
                    self.unparseable_examples.append(text[:80])
        return bool(verdict)


# ---- factory and agreement ------------------------------------------------------------------
def make_judge(settings: "Settings | None", name: str | None = None) -> Judge:
    """The judge called `name` (default: settings.judge). A run makes one and hands it to the
    answer scorers and the report, which measures agreement with that very instance."""
    name = (name or (settings.judge.name if settings else "lexical")).strip().lower()
    if name == "lexical":
        judge: Judge = LexicalJudge()
    elif name == "claims":
        judge = ClaimsJudge(corpus_dir=settings.paths.corpus_dir if settings else None)
    elif name == "llm":
        if settings is None:
            raise ValueError("the llm judge needs settings (judge_backend / judge_model)")
        judge = LLMJudge(settings)
    elif name == "likelihood":
        if settings is None:
            raise ValueError("the likelihood judge needs settings (judge_model)")
        from .likelihood import LikelihoodJudge

        judge = LikelihoodJudge(settings)
    else:
        raise ValueError(f"unknown judge {name!r}: choose {' or '.join(JUDGES)}")
    return judge


def load_labels(path: Path) -> list[dict]:
    """Hand-labelled support cases: {"id", "claim", "passages", "lang", "supported", "source"}."""
    from .. import jsonl

    return jsonl.read(path)


def agreement(judge: Judge, labels: list[dict]) -> dict:
    """Run the judge on each labelled case: accuracy, Cohen's kappa, confusion counts,
    precision / recall of "unsupported", per language / kind / `source`, time per claim and the
    first disagreements (to read, not just count) — see judge_eval.report."""
    from .judge_eval import report, run_judge

    pred, secs = run_judge(judge, labels)
    why = None
    if isinstance(judge, ClaimsJudge):
        def why(d: dict) -> str:
            return judge.explain(d["claim"], [p for p in d["passages"] if p.strip()], d.get("question")).why
    return report(labels, pred, secs, why)
