"""How well an answer's sentences stand on its sources: ALCE citation recall / precision and
RAGAS-style faithfulness, each sentence's support decided by a judge (`judges.py`)."""
from __future__ import annotations

from ..text import citations_in, split_sentences, strip_citations
from .judges import Judge


def citation_scores(answer: str, sources: list[str], judge: Judge, question: str | None = None) -> dict:
    """ALCE (Gao et al. 2023) per answer, over its sentences.

    recall: share of sentences whose cited passages (together) support them; a sentence without
    a citation, or citing a number that is not a source, is unsupported.
    precision: share of citations that are needed. In a supported sentence a citation is not
    needed when it alone does not support the sentence AND the other cited passages still do; in
    an unsupported sentence no citation is needed (all are irrelevant). No citations at all → 0.
    `question` lets the judge read a fragment as its answer and see a restated question.
    """
    details, supported, needed, total = [], 0, 0, 0
    sents = split_sentences(answer)
    for sent in sents:
        claim, cites = strip_citations(sent), citations_in(sent)
        total += len(cites)
        valid = bool(cites) and all(1 <= n <= len(sources) for n in cites)
        ok = valid and judge.supported(claim, [sources[n - 1] for n in cites], None, question)
        supported += ok
        n_needed = 0
        if ok and len(cites) == 1:
            n_needed = 1
        elif ok:
            for n in cites:
                alone = judge.supported(claim, [sources[n - 1]], None, question)
                rest = [sources[m - 1] for m in cites if m != n]
                n_needed += alone or not judge.supported(claim, rest, None, question)
        needed += n_needed
        details.append({"sentence": sent, "cites": cites, "supported": ok, "needed": n_needed})
    return {"recall": supported / len(sents) if sents else None,
            "precision": (needed / total if total else 0.0) if sents else None,
            "sentences": details}


def faithfulness(answer: str, sources: list[str], judge: Judge,
                 question: str | None = None) -> tuple[float | None, list[bool]]:
    """RAGAS-style: share of answer sentences supported by all retrieved sources together —
    whether or not the answer cited them; it asks "did the model make things up?"."""
    claims = [strip_citations(s) for s in split_sentences(answer)]
    verdicts = [judge.supported(c, sources, None, question) for c in claims]
    return (sum(verdicts) / len(verdicts) if verdicts else None), verdicts
