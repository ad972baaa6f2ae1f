"""The answer side of an eval's report.md: headline and slice tables, refusal, latency, the
judge and how far to trust it, injection, and what went wrong on which item."""
from __future__ import annotations

from ..config import JUDGE_LABELS
from ..text import clip
from .dataset import EvalItem
from .injection import injected_claim
from .plots import LATENCY_PNG, SCORES_PNG  # written next to report.md by plots.write_plots
from .tables import fmt, md_table

LOW_RECALL = 0.5  # below this an answer is listed under "what went wrong"
_COLS = ("correct", "false_refusal", "refused_ok", "citation_recall", "citation_precision",
         "faithfulness", "has_valid_citation")


def answers_md(report: dict, items: list[EvalItem], rows: list[dict]) -> str:
    """Headline, per-type and per-language tables, refusal, latency, judge, injection, and what
    went wrong on which item."""
    ans = report["answers"]
    parts = ["## Answers\n", md_table(["slice", "n", *_COLS], [[s, ans[s].get("n"), *(ans[s].get(c) for c in _COLS)]
                                                            for s in ans if s == "overall"])]
    if report.get("errors", {}).get("n"):
        parts.append(f"\n**{report['errors']['n']} item(s) failed** (LLM error; left out of these scores).")
    typed = [s for s in ans if s.startswith(("type:", "lang:"))]
    if typed:
        parts += ["\n### By type and language\n",
                  md_table(["slice", "n", *_COLS], [[s, ans[s].get("n"), *(ans[s].get(c) for c in _COLS)] for s in typed])]
    tags = [s for s in ans if s.startswith("tag:")]
    if tags:
        parts += ["\n### By tag\n",
                  md_table(["slice", "n", *_COLS], [[s, ans[s].get("n"), *(ans[s].get(c) for c in _COLS)] for s in tags])]
    pngs = [f"![scores by type]({SCORES_PNG})"] if any(s.startswith("type:") for s in ans) else []
    if report["latency_ms"].get("total", {}).get("p50") is not None:
        pngs.append(f"![latency]({LATENCY_PNG})")
    if pngs:
        parts.append("\n" + " ".join(pngs) + "\n")
    ref = report["refusal"]
    parts += ["\n### Refusal (positive = refused, truth = unanswerable)\n",
              md_table(["precision", "recall", "f1", "tp", "fp", "fn"],
                       [[ref[k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")]])]
    lat = report["latency_ms"]
    parts += ["\n### Latency and speed\n",
              md_table(["stage", "p50 ms", "p95 ms"], [[k, lat[k].get("p50"), lat[k].get("p95")]
                                                       for k in ("search", "retrieve", "first_token", "total") if k in lat]),
              f"\nDecode speed p50: {fmt(report.get('tokens_per_s'))} tokens/s. "
              f"Throughput: {fmt(report.get('throughput_qpm'))} questions/min ({report.get('throughput_basis') or 'n/a'})."]
    parts.append(_judge_md(report["judge"]))
    inj = report.get("injection") or {}
    if inj.get("n"):
        parts += ["\n### Injection\n",
                  f"{inj['n']} injection items: canary leaked in {inj['canary_leaks']} of {inj['canary_checked']} "
                  f"checked; legitimate part answered correctly {fmt(inj['answered_legit'])}; planted claim stated "
                  f"in {inj['injected_claim_stated']} of {inj['injected_claim_checked']} checkable."]
    parts.append(what_went_wrong(items, rows))
    return "\n".join(parts) + "\n"


def _judge_md(j: dict) -> str:
    who = j["name"] + (f" ({j.get('backend')}/{j.get('model')})" if j.get("model") else "")
    lines = [f"\n### Judge: {who} — {j['kind']}\n"]
    if j.get("name") == "claims":
        lines.append("Citation and faithfulness scores come from the claims judge: a sentence counts as supported "
                     "only when its names and numbers occur together in one passage sentence / table row, "
                     "with its other words mostly there. A heuristic without a model: read its agreement below.")
    elif j.get("kind") == "heuristic":
        lines.append("Citation and faithfulness scores come from a lexical heuristic (numbers + term overlap), "
                     "not from a model: read them as a proxy.")
    if j.get("unparseable"):
        lines.append(f"{j['unparseable']} of {j.get('calls')} judge replies were unreadable and counted as unsupported.")
    a = j.get("agreement")
    if not a:
        lines.append(f"No agreement measured (no hand labels at `{JUDGE_LABELS}`).")
        return "\n".join(lines)
    k = a.get("kappa")
    verdict = ("poor — do not trust its citation / faithfulness numbers" if k is None or k < 0.4 else
               "moderate" if k < 0.6 else "good" if k < 0.8 else "very good")
    lines.append(f"Agreement with {a['n']} hand labels: accuracy {fmt(a['accuracy'])}, Cohen's κ {fmt(k)} "
                 f"(**{verdict}**); tp {a['tp']}, fp {a['fp']}, fn {a['fn']}, tn {a['tn']}"
                 + (f"; “unsupported” precision {fmt(a.get('unsupported_precision'))}, "
                    f"recall {fmt(a.get('unsupported_recall'))}" if "unsupported_recall" in a else "") + ".")
    h = j.get("agreement_heldout")
    if j.get("cv_kappa") is not None:  # fitted on both label files: only its cross-validated figure is out of sample
        lines.append(f"The judge was fitted on these labels and the held-out file; its cross-validated κ, "
                     f"{fmt(j['cv_kappa'])}, is the figure to trust.")
    elif h:
        hk = h.get("kappa")
        lines.append(f"On {h['n']} held-out labels the judge was never tuned on: accuracy {fmt(h['accuracy'])}, "
                     f"Cohen's κ {fmt(hk)} — the figure to trust"
                     + (" (**poor**: read citation / faithfulness scores as rough)" if hk is None or hk < 0.4 else "")
                     + ".")
    for d in a.get("disagreements", [])[:5]:
        lines.append(f"- {d['id']}: label {fmt(d['label'])}, judge {fmt(d['judge'])}: “{d['claim']}”")
    return "\n".join(lines)


def _cites(row: dict) -> str:
    cs = row.get("citations") or []
    if not cs:
        return "none"
    return ", ".join(f"[{c['n']}] {c['file']}" + (f" p{c['page']}" if c.get("page") else "") for c in cs)


def item_problems(item: EvalItem, row: dict) -> list[str]:
    """Plain-language problems of one answered item (empty if nothing went wrong)."""
    if row.get("error"):
        return [f"error: {row['error']}"]
    s, out = row.get("scores") or {}, []
    rank = (row.get("ranks") or {}).get(row.get("mode"))
    where = f"evidence rank {rank or '>10'} ({row.get('mode')})"
    if s.get("false_refusal"):
        out.append(f"false refusal — {where}")
    elif s.get("correct") is False:
        out.append(f"wrong answer — expected one of {item.must_include}; {where}; cited {_cites(row)}; "
                   f"answer: “{clip(row.get('answer'), 200)}”")
    if s.get("refused_ok") is False:
        out.append(f"answered an unanswerable question: “{clip(row.get('answer'), 200)}”")
    empty = row.get("refused") is False and not row.get("judged")
    if empty:
        out.append(f"empty answer (no sentence to judge): “{clip(row.get('answer'), 80)}”")
    rec = s.get("citation_recall")
    if rec is not None and rec < LOW_RECALL and not empty:
        bad = [d["sentence"] for d in row.get("judged") or [] if not d.get("supported")]
        out.append(f"low citation recall {rec:.2f}; unsupported: " + " / ".join(f"“{clip(b, 100)}”" for b in bad[:3]))
    inj = s.get("injection") or {}
    if inj.get("canary_leaked"):
        out.append("LEAKED the system-prompt canary")
    if inj.get("injected_claim_stated"):
        out.append(f"stated the planted claim “{injected_claim(item)}”")
    return out


def what_went_wrong(items: list[EvalItem], rows: list[dict]) -> str:
    by_id = {r["id"]: r for r in rows}
    lines = ["\n## What went wrong, item by item\n"]
    for it in items:
        row = by_id.get(it.id)
        probs = item_problems(it, row) if row else []
        if probs:
            lines.append(f"- **{it.id}** ({it.type}, {it.lang}) {clip(it.question, 120)}")
            lines += [f"  - {p}" for p in probs]
    if len(lines) == 1:
        lines.append("Nothing: every answer was correct, refusals were right and citations supported.")
    return "\n".join(lines)
