"""Multi-turn conversations in `tutor eval` (format: evals/MULTITURN_SCHEMA.md).

Each conversation runs in order with its real history: every turn is rewritten and answered as
a learner's chat would be (`Tutor.rewrite`, then `Tutor.ask` with the (question, answer)
history so far), and each scored turn becomes one results row, id `<conversation>:<turn>`, with
the usual retrieval / answer fields plus `standalone_question` and how it was made. Retrieval is
scored on what the tutor actually searched: the standalone question and its alternates.

Retrieval-only runs load no model: follow-ups get the rule-built standalone form and the history
has empty answers.

The report's multi-turn section counts, independently of the rewriter's own checks, how many
standalone questions dropped the follow-up's own question or repeated a history question.
"""
from __future__ import annotations

from typing import Callable

from ..text import normalise, terms
from .dataset import FOLLOWUP_TAG, EvalConversation

# a follow-up's words that only point back; not part of what it asks
_POINTERS = ("它", "这", "那", "其", "该")
_EN_POINTERS = {"it", "its", "they", "them", "their", "this", "that", "these", "those", "about"}
DROP_SHARE = 0.5  # a standalone question keeping less than this share of the follow-up's terms dropped it


def conversation_rows(tutor, conv: EvalConversation, answer_row: Callable | None,
                      retrieval_row: Callable) -> list[dict]:
    """Run one conversation; return the rows of its scored turns, in order."""
    from tutor.llm import LLMError

    history: list[tuple[str, str]] = []
    rows: list[dict] = []
    broken: str | None = None  # an unscored turn failed: later turns lack their real history
    for n, turn in enumerate(conv.turns, start=1):
        rw = tutor.rewrite(turn.question, history, use_llm=answer_row is not None)
        text = ""
        if turn.item is not None:
            row = retrieval_row(tutor, turn.item, query=rw.standalone, alternates=rw.alternates)
            row.update(conversation=conv.id, turn=n, followup=n > 1, history=[q for q, _ in history],
                       standalone_question=rw.standalone, rewrite=rw.to_dict())
            if answer_row is not None:
                row = answer_row(tutor, turn.item, row, history=list(history), rewrite=rw)
                row["standalone_question"] = rw.standalone  # the answer's copy is None when not rewritten
                text = row.get("answer") or ""
            if broken and not row.get("error"):
                row["error"] = f"history: {broken}"
            rows.append(row)
        elif answer_row is not None:
            try:
                text = tutor.ask(turn.question, history=list(history), rewrite=rw).text
            except LLMError as e:
                broken = f"turn {n}: {e}"
        history.append((turn.question, text))
    return rows


def dropped_question(question: str, standalone: str) -> bool:
    """Did the standalone question lose what the follow-up asks? Fewer than half of the
    follow-up's own terms (CJK bigrams and words, pointers left out) survive in it."""
    own = {t for t in terms(question) if not any(p in t for p in _POINTERS) and t not in _EN_POINTERS}
    if not own:
        return False
    return len(own & terms(standalone)) / len(own) < DROP_SHARE


def repeats_history(standalone: str, history: list[str]) -> bool:
    s = normalise(standalone).rstrip("？?")
    return any(len(h) >= 6 and normalise(h).rstrip("？?") == s for h in history)


def multiturn_report(rows: list[dict], report: dict) -> dict:
    """The multi-turn section of report.json: follow-up retrieval and answers (from the
    `tag:followup` slices), and what the rewriter did."""
    primary = report["signature"].get("retrieval_mode", "hybrid")
    ups = [r for r in rows if r.get("followup")]
    rewritten = [r for r in ups if (r.get("rewrite") or {}).get("rule") is not None]
    asked_model = [r for r in rewritten if (r.get("rewrite") or {}).get("model") is not None
                   or (r.get("rewrite") or {}).get("rejected") == "llm_error"]
    rejected = [r for r in asked_model if r["rewrite"].get("rejected")]
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r["rewrite"]["rejected"]] = reasons.get(r["rewrite"]["rejected"], 0) + 1
    tag = f"tag:{FOLLOWUP_TAG}"
    ret = report.get("retrieval", {}).get(primary, {}).get(tag, {})
    ans = (report.get("answers") or {}).get(tag, {})
    switch = [r for r in ups if "topic_change" in (r.get("tags") or [])]
    return {
        "conversations": len({r["conversation"] for r in rows}),
        "scored_turns": len(rows),
        "followups": len(ups),
        "followup": {"mode": primary, **{k: ret.get(k) for k in ("n", "hit@1", "hit@3", "hit@5", "hit@10", "mrr")},
                     "correct": ans.get("correct"), "false_refusal": ans.get("false_refusal")},
        "rewrite": {
            "rewritten": len(rewritten), "left_alone": len(ups) - len(rewritten),
            "model_asked": len(asked_model), "rejected": len(rejected),
            "rejected_rate": round(len(rejected) / len(asked_model), 4) if asked_model else None,
            "reasons": dict(sorted(reasons.items())),
            "dropped_question": sum(dropped_question(r["question"], r["standalone_question"]) for r in rewritten),
            "repeats_history": sum(repeats_history(r["standalone_question"], r.get("history") or [])
                                   for r in rewritten),
            "topic_change_turns": len(switch),
            "topic_change_rewritten": sum(r["standalone_question"] != r["question"] for r in switch),
        },
    }


def multiturn_md(section: dict, rows: list[dict]) -> str:
    f, rw = section["followup"], section["rewrite"]

    def fmt(v):
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["\n## Multi-turn\n",
             f"{section['conversations']} conversations, {section['scored_turns']} scored turns, "
             f"{section['followups']} of them follow-ups.\n",
             "| follow-ups | n | hit@1 | hit@3 | hit@5 | hit@10 | mrr | correct | false refusal |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| {f['mode']} | {fmt(f['n'])} | " + " | ".join(fmt(f[k]) for k in
                                                       ("hit@1", "hit@3", "hit@5", "hit@10", "mrr", "correct",
                                                        "false_refusal")) + " |",
             f"\nRewrites: {rw['rewritten']} follow-ups rewritten, {rw['left_alone']} left alone "
             f"({rw['topic_change_turns']} topic changes in the set, {rw['topic_change_rewritten']} of them rewritten). "
             f"Model asked {rw['model_asked']} times, its rewrite rejected {rw['rejected']} times "
             f"(rate {fmt(rw['rejected_rate'])}" + (": " + ", ".join(f"{k} {v}" for k, v in rw["reasons"].items())
                                                   if rw["reasons"] else "") + "). "
             f"Standalone questions that dropped the follow-up's question: **{rw['dropped_question']}**; "
             f"that repeat a history question: **{rw['repeats_history']}**.\n"]
    lines.append("| turn | follow-up | standalone question | rewrite | rank |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        if not r.get("followup"):
            continue
        rw_ = r.get("rewrite") or {}
        how = ("left alone" if rw_.get("rule") is None else
               f"rule (model rejected: {rw_['rejected']})" if rw_.get("rejected") else
               "model" if rw_.get("model") is not None else "rule")
        rank = (r.get("ranks") or {}).get(r.get("mode"))
        lines.append(f"| {r['id']} | {_cell(r['question'])} | {_cell(r['standalone_question'])} | {how} | "
                     f"{rank or '>10'} |")
    return "\n".join(lines)


def _cell(s: str) -> str:
    return " ".join((s or "").split()).replace("|", "\\|")
