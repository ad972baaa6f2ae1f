"""The answer side of `tutor eval`: ask, then score each answer (EVAL_SCHEMA.md rules).

Scores per item: correctness by `must_include`, refusal by the tutor's own refusal signal, ALCE
citation recall / precision and faithfulness from the judge it is given (citations.py), and
injection checks (injection.py). Rows keep the `ask --json` fields, so a run folder can be re-read
or re-scored later without asking again; answer_report.py aggregates them, answer_md.py explains.
"""
from __future__ import annotations

from typing import Callable

from .citations import citation_scores, faithfulness
from .dataset import EvalItem
from .injection import canary_leaked, injected_claim_stated
from .judges import Judge, LLMJudge
from .metrics import is_correct, round4

ANSWER_FIELDS = ("answer", "refused", "citations", "sources", "reasoning", "model", "backend",
                 "timings_ms", "grounded", "invalid_citations", "evidence", "decline_reason", "standalone_question")
METRICS = ("correct", "false_refusal", "refused_ok", "citation_recall", "citation_precision",
           "faithfulness", "has_valid_citation")


def score_answer(item: EvalItem, ans: dict, judge: Judge) -> tuple[dict, list[dict]]:
    """Scores of one answer in its `ask --json` shape, plus per-sentence judge details."""
    refused = bool(ans.get("refused"))
    text = ans.get("answer") or ""
    scores: dict = {
        "correct": (not refused and is_correct(item, text)) if item.answerable else None,
        "refused_ok": refused if not item.answerable else None,
        "false_refusal": refused if item.answerable else None,
        "citation_recall": None, "citation_precision": None, "faithfulness": None,
        "has_valid_citation": None,
    }
    details: list[dict] = []
    if not refused:
        sources = [s.get("text", "") for s in ans.get("sources") or []]
        cit = citation_scores(text, sources, judge, item.question)
        faith, verdicts = faithfulness(text, sources, judge, item.question)
        if cit["recall"] is None:  # nothing but markers / punctuation: no claim is supported
            cit["recall"] = cit["precision"] = 0.0
        scores.update(citation_recall=round4(cit["recall"]), citation_precision=round4(cit["precision"]),
                      faithfulness=round4(faith), has_valid_citation=bool(ans.get("citations")))
        details = [{**d, "faithful": v} for d, v in zip(cit["sentences"], verdicts)]
    if item.type == "injection":
        scores["injection"] = {"canary_leaked": canary_leaked(ans), "answered_legit": scores["correct"],
                               "injected_claim_stated": injected_claim_stated(item, text)}
    return scores, details


def make_answer_row(judge: Judge) -> Callable[[object, EvalItem, dict], dict]:
    """The runner's `answer_row(tutor, item, row[, history, rewrite])`: ask (a multi-turn turn
    with its conversation's history and its standalone rewrite), then add the answer fields and
    scores.

    An LLMError (server down, timeout) is recorded as the row's `error` and the run goes on;
    such rows are left out of the answer metrics and listed in the report. Safe to call from
    several threads: the closure holds no state but the judge, whose cache is locked."""
    from tutor.llm import LLMError

    def answer_row(tutor, item: EvalItem, row: dict, history: list | None = None, rewrite=None) -> dict:
        try:
            turn = {"history": history, "rewrite": rewrite} if history is not None or rewrite is not None else {}
            answer = tutor.ask(item.question, **turn)
        except LLMError as e:
            return dict(row, judge=judge.name, error=f"answer: {e}", scores=_empty_scores(item))
        return scored_row(tutor, item, row, answer, judge)

    return answer_row


def scored_row(tutor, item: EvalItem, row: dict, answer, judge: Judge) -> dict:
    """The retrieval row plus an `Answer`'s fields and its scores (a judge error is the row's error)."""
    from tutor.llm import LLMError

    row = dict(row, judge=judge.name)
    ans = answer.to_dict()
    row.update({k: ans.get(k) for k in ANSWER_FIELDS})
    if isinstance(judge, LLMJudge) and (llm := getattr(tutor, "llm", None)) is not None:
        judge.share_llm(llm)  # same model as the answers: no second copy
    try:
        row["scores"], row["judged"] = score_answer(item, ans, judge)
    except LLMError as e:
        row.update(error=f"judge: {e}", scores=_empty_scores(item))
    return row


def make_batch_answer(judge: Judge) -> Callable:
    """The runner's `batch_answer(tutor, [(item, row), ...])` for a batching backend (in-process
    vLLM): evidence for every item first, declines scored at once, then ONE generate call for
    all answerable prompts (`answer.answer_batch`). Yields finished rows; a failed batch makes
    every row of it an error row, retried on resume."""
    from tutor.answer import Pending, answer_batch
    from tutor.llm import LLMError

    def batch_answer(tutor, pairs: list[tuple[EvalItem, dict]]):
        waiting: list[tuple[EvalItem, dict, Pending]] = []
        for item, row in pairs:
            p = tutor.prepare(item.question)
            if isinstance(p, Pending) and p.verdict.answerable:
                waiting.append((item, row, p))
            else:
                yield scored_row(tutor, item, row, p if not isinstance(p, Pending) else p.declined(tutor.settings), judge)
        if not waiting:
            return
        try:
            answers = answer_batch([p for _, _, p in waiting], tutor.llm, tutor.settings, tutor.embedder)
        except LLMError as e:
            for item, row, _ in waiting:
                yield dict(row, judge=judge.name, error=f"answer: {e}", scores=_empty_scores(item))
            return
        for (item, row, _), answer in zip(waiting, answers):
            yield scored_row(tutor, item, row, answer, judge)

    return batch_answer


def _empty_scores(item: EvalItem) -> dict:
    out = {m: None for m in METRICS}
    if item.type == "injection":
        out["injection"] = {"canary_leaked": None, "answered_legit": None, "injected_claim_stated": None}
    return out
