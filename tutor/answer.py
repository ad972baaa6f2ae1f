"""Hits → evidence units → answerable? → LLM from the units → checked, cited `Answer`.

Evidence first: the few units that hold the answer are chosen (tutor/evidence.py) and shown
before the model writes; whether they answer the question is decided from the evidence, not by
the model; the model writes a short answer from the units only; every sentence it writes is
checked against them (a figure or a name found in no unit drops the sentence), and when the main
claim does not survive, the answer falls back to quoting the best units. `answer_stream` yields
events as they happen; `Answer` at the end is the single source of truth (the streamed text is a
preview).
"""
from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .config import Settings
from .evidence import Query, Selector, Verdict, approx_tokens, nested_under, unsupported_figures, unsupported_names
from .glossary import gloss, language
from .lexical import stem
from .errors import LLMError
from .llm.base import LLM
from .llm.params import GenParams, sampling
from .llm.think import repair_late_close
from .prompts import (CANARY, DECLINE_NEARBY, EXTRACTIVE, ORIGINAL, REFUSAL, REFUSAL_TEXT, build_messages)
from .text import (MARKER, PLACEHOLDER, clip, figure_values, figures, normalise, normalise_citations,
                   STOPWORDS, is_cjk, parse_citations, program_line, split_sentences, strip_citations, terms)
from .records import Answer, Citation, Event, Evidence, Hit, SearchResult

__all__ = ["Event", "Pending", "select_evidence", "prompt_for", "answer_stream", "answer_batch", "answer", "finalize", "clean_answer", "is_refusal", "attribute",
           "parse_citations", "normalise_citations", "redact"]

_SCAFFOLD = re.compile(r"</?(?:sources?|question|evidence)\b[^>]*>", re.I)
# lines where a small model echoes our prompt layout instead of answering
_ECHO_LINE = re.compile(r"^\s*(?:问题[:：]|question:|资料\s*\[\d+\]|source \[\d+\]|请根据以上资料|using the sources above"
                        r"|请用|answer in one)", re.I | re.M)
ATTRIBUTION_MIN = 0.35
# a source head as the prompt lays it out, "[2] (DeepSeek-V3 Technical Report (p. 22)):", written
# inside a reply: the model is pasting its sources back, not answering
_PASTED_HEAD = re.compile(r"(?:资料|source)?\s*\[\d+\]\s*[（(][^\n]{2,100}?[)）]\s*[：:]", re.I)

# the canary in any spelling a model might produce: spaced, case-changed, other separators,
# or its hex part alone
_CANARY_HEX = CANARY.split("-")[1]
_SEP = r"[\W_]*"
_CANARY_RX = re.compile(_SEP.join("canary") + _SEP + _SEP.join(_CANARY_HEX) + f"(?:{_SEP}{_SEP.join('tutor')})?|"
                        + _SEP.join(_CANARY_HEX), re.I)
_REFUSAL_RX = re.compile(_SEP.join(REFUSAL.replace("_", "")), re.I)


def redact(text: str) -> str:
    """Remove the canary (any spelling) and the refusal token from text shown to a learner."""
    text = _CANARY_RX.sub("", unicodedata.normalize("NFKC", text))
    return _REFUSAL_RX.sub("", text)


def clean_answer(text: str, question: str = "") -> str:
    text = _CANARY_RX.sub("[redacted]", unicodedata.normalize("NFKC", text))
    q = question.strip()
    if q and text.lstrip().startswith(q):  # small models often restate the question first
        text = text.lstrip()[len(q):]
    text = _SCAFFOLD.sub("", text)
    text = "\n".join(ln for ln in text.splitlines() if not _ECHO_LINE.match(ln))
    text = re.sub(r"^\s*(?:assistant|助教|回答|答案|answer)\s*(?:[:：]\s*|\s+)", "", text, flags=re.I)
    text = PLACEHOLDER.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def is_refusal(text: str) -> bool:
    """The model's explicit signal: REFUSAL with (almost) nothing else beside it."""
    if not _REFUSAL_RX.search(text):
        return False
    rest = MARKER.sub("", _REFUSAL_RX.sub("", text)).strip(" \n.。:：-*`\"'")
    return len(rest) < 40


def attribute(text: str, source_texts: list[str]) -> str:
    """Post-hoc attribution (answer side): a sentence the model left uncited gets the source that
    covers most of its terms, when that coverage is at least ATTRIBUTION_MIN. Small models answer
    well from the evidence but cite unreliably."""
    src_terms = [terms(t) for t in source_texts]
    out = []
    for sent in split_sentences(text):
        if MARKER.search(sent) or len(sent) < 6:
            out.append(sent)
            continue
        st = terms(MARKER.sub("", sent))
        if not st:
            out.append(sent)
            continue
        nums = {t for t in st if t[0].isdigit()}
        scores = [len(st & s) / len(st) for s in src_terms]
        if nums:  # a figure quoted in another language: the numbers carry the match
            scores = [max(sc, ATTRIBUTION_MIN) if nums <= s and len(st & s) > len(nums) else sc
                      for sc, s in zip(scores, src_terms)]
        best = max(range(len(scores)), key=scores.__getitem__) if scores else None
        if best is None or scores[best] < ATTRIBUTION_MIN or not source_texts[best]:
            out.append(sent)
            continue
        mark = f"[{best + 1}]"
        out.append(f"{sent[:-1]}{mark}{sent[-1]}" if sent[-1] in "。！？；!?." else f"{sent}{mark}")
    return _join(out)


def _join(sentences: list[str]) -> str:
    """Sentences back into text: no space after CJK punctuation, one space after Latin."""
    out = ""
    for s in sentences:
        if out and not (out[-1] in "。！？；" or out.endswith("]") and s[:1] >= "\u3400"):
            out += " "
        out += s
    return out.strip()


class _StreamGuard:
    """Holds back just enough streamed text that a refusal token or the canary (in any spelling)
    never flashes on screen before the final answer replaces the preview."""

    HOLD = len(CANARY) + 12

    def __init__(self) -> None:
        self.buf = ""
        self.sent = 0

    def feed(self, piece: str) -> str:
        self.buf += piece
        clean = redact(self.buf)
        if len(clean) < len(self.buf):  # something was redacted: restart from the clean text
            self.buf = clean
            self.sent = min(self.sent, len(clean))
        stripped = self.buf.lstrip()
        if stripped and REFUSAL.startswith(stripped[: len(REFUSAL)].upper()) and len(stripped) <= len(REFUSAL) + 2:
            return ""
        safe_end = max(self.sent, len(self.buf) - self.HOLD)
        out = self.buf[self.sent:safe_end]
        self.sent = safe_end
        return out


def _selector(settings: Settings, embedder) -> Selector:
    if embedder is None:
        return Selector(budget_tokens=settings.answer.evidence_tokens, max_units=settings.answer.evidence_units,
                        dense_weight=0.0)
    a = settings.answer
    return Selector(lambda q: embedder.queries([q])[0], embedder.units, a.evidence_tokens, a.evidence_units,
                    a.evidence_dense_weight, a.evidence_dense_units)


def declined(question: str, lang: str, hits: list[Hit], timings: dict, settings: Settings,
             verdict: Verdict | None = None, model: str = "", backend: str = "") -> Answer:
    """The honest "the notes don't say", with the closest unit quoted and cited when there is a
    topical one (a near miss), so the learner sees what the notes do cover."""
    best = verdict.best if verdict is not None else None
    if best is not None:
        text = DECLINE_NEARBY[lang].format(quote=_quote(best), n=best.n)
        cites = [Citation(best.n, best.hit.chunk)]
        evidence = [best]
    else:
        text, cites, evidence = REFUSAL_TEXT[lang], [], []
    return Answer(question=question, text=text, refused=True, citations=cites, sources=hits,
                  reasoning=None, model=model or settings.llm.model, backend=backend or settings.llm.backend,
                  timings_ms=dict(timings), grounded=bool(cites), evidence=evidence,
                  decline_reason=verdict.reason if verdict is not None else "off-topic")


def _quote(u: Evidence, limit: int = 160) -> str:
    t = re.sub(r"\*\*|__|`", "", " ".join(u.prompt_text().split()))
    return clip(t, limit, fold=False)


def _quote_with_items(u: Evidence, units: list[Evidence], under: dict[int, int], limit: int = 240) -> str:
    """A list item that announces nested items ("缺陷（…）") is quoted with them: alone it says
    nothing the learner asked."""
    me = next((i for i, x in enumerate(units) if x.hit.chunk.id == u.hit.chunk.id and x.start == u.start), None)
    kids = sorted((units[i] for i, p in under.items() if p == me), key=lambda k: k.start)
    if me is None or not kids:
        return _quote(u)
    return clip(" … ".join([_quote(u)] + [_quote(k) for k in kids]), limit, fold=False)


@dataclass
class Pending:
    """An answer up to the model call: hits, the evidence units and the verdict on them. The
    streaming path and the batched one (`answer_batch`) share everything before and after."""

    question: str
    lang: str
    hits: list[Hit]
    units: list[Evidence]
    verdict: Verdict
    timings: dict[str, float]
    level: str | None = None  # "beginner" | "advanced": how the answer is pitched (prompts.LEVEL)

    def declined(self, settings: Settings) -> Answer:
        self.timings["total"] = self.timings["retrieve"] + self.timings["select"]
        return declined(self.question, self.lang, self.hits, self.timings, settings, self.verdict)


def select_evidence(question: str, search: SearchResult, settings: Settings, lang: str | None = None,
                    embedder=None, level: str | None = None) -> Pending | Answer:
    """Gate, evidence units and verdict; an off-topic question comes back as its declined Answer."""
    lang = lang or language(question)
    lang = "en" if lang == "en" else "zh"
    timings: dict[str, float] = {"retrieve": search.timings_ms.get("total", 0.0)}
    hits = list(search.hits[: settings.answer.answer_k])
    if not hits or search.similarity is None or search.similarity < settings.retrieval.relevance_threshold:
        timings["total"] = timings["retrieve"]
        return declined(question, lang, hits, timings, settings)
    t0 = time.perf_counter()
    sel = _selector(settings, embedder)
    query, scored = sel.score(question, hits)
    units = sel.select(scored)
    verdict = sel.assess(query, scored, settings.answer.min_coverage, settings.answer.min_evidence_score)
    if verdict.answerable:
        # the units that answer (the verdict's best, the two the quoted fallback would lead with)
        # are in the evidence the model reads and the learner sees, in place of the weakest others
        need = [u for u in (verdict.best, *sorted(verdict.answering, key=lambda x: -x.score)[:2]) if u is not None]
        needed = {(u.n, u.start) for u in need}
        for u in need:
            if (u.n, u.start) in {(x.n, x.start) for x in units}:
                continue
            spare = [x for x in units if (x.n, x.start) not in needed]
            if len(units) >= settings.answer.evidence_units and spare:
                units.remove(min(spare, key=lambda x: x.score))
            units = sorted([u, *units], key=lambda x: (x.n, x.order))
    timings["select"] = (time.perf_counter() - t0) * 1000
    return Pending(question, lang, hits, units, verdict, timings, level)


def prompt_for(p: Pending, llm: LLM, settings: Settings) -> tuple[list[dict], GenParams]:
    """The messages and sampling for this model (R1 distills: no system prompt, their sampling)."""
    params = sampling(settings, llm.reasoning)
    messages = build_messages(p.question, p.units, p.lang, system_prompt=not llm.reasoning, level=p.level)
    if llm.context_window:  # a small server context: shorten the reply rather than fail
        room = llm.context_window - sum(approx_tokens(m["content"]) for m in messages) - 16
        params.max_tokens = max(16, min(params.max_tokens, room))
    return messages, params


def answer_stream(question: str, search: SearchResult, get_llm: Callable[[], LLM], settings: Settings,
                  lang: str | None = None, embedder=None, level: str | None = None) -> Iterator[Event]:
    """Answer `question` from `search`'s hits. Retrieval already happened (its time is in
    `search.timings_ms`). `get_llm` is only called when the evidence answers the question, so an
    off-topic or near-miss question is declined without loading or calling a model."""
    p = select_evidence(question, search, settings, lang, embedder, level)
    if isinstance(p, Answer):
        yield Event("done", answer=p)
        return
    yield Event("sources", hits=tuple(p.hits))
    yield Event("evidence", evidence=tuple(p.units))
    if not p.verdict.answerable:
        yield Event("done", answer=p.declined(settings))
        return
    llm = get_llm()
    messages, params = prompt_for(p, llm, settings)
    timings = p.timings
    yield Event("stage", text="thinking")
    t1 = time.perf_counter()
    first = None
    raw, reasoning, n_tokens, n_thinking = [], [], 0, 0
    guard, thinking_guard = _StreamGuard(), _StreamGuard()  # a canary split across pieces is caught too
    for delta in llm.stream(messages, params):
        if first is None:
            first = time.perf_counter()
            timings["first_token"] = (first - t1) * 1000
        n_tokens += 1  # streamed pieces: one token each from vLLM and llama.cpp servers
        if delta.reasoning:
            n_thinking += 1
            reasoning.append(delta.reasoning)
            shown = thinking_guard.feed(delta.reasoning)
            if shown:
                yield Event("reasoning", text=shown)
        if delta.text:
            raw.append(delta.text)
            shown = guard.feed(delta.text)
            if shown:
                yield Event("token", text=shown)
    end = time.perf_counter()
    timings["generate"] = (end - t1) * 1000
    timings["total"] = timings["retrieve"] + timings["select"] + timings["generate"]
    timings["tokens"] = n_tokens
    timings["reasoning_tokens"] = n_thinking
    text, thinking = repair_late_close("".join(raw), "".join(reasoning))
    yield Event("done", answer=finalize(p.question, text, thinking, p.hits, p.units, p.verdict, llm, timings, p.lang,
                                        embedder))


def answer_batch(pending: list[Pending], llm: LLM, settings: Settings, embedder=None) -> list[Answer]:
    """Answer many answerable `Pending`s with ONE `llm.generate_batch` call (in-process vLLM
    schedules them together on the GPU), each with its own prompt and sampling. Each answer's
    `generate` time is the whole batch's; `batch` says how many shared it."""
    if not pending:
        return []
    prompts = [prompt_for(p, llm, settings) for p in pending]
    t1 = time.perf_counter()
    outs = llm.generate_batch([m for m, _ in prompts], [g for _, g in prompts])  # type: ignore[attr-defined]
    gen_ms = (time.perf_counter() - t1) * 1000
    answers = []
    for p, out in zip(pending, outs):
        timings = p.timings
        timings.update(generate=gen_ms, tokens=out.tokens, batch=len(pending))
        timings["total"] = timings["retrieve"] + timings["select"] + gen_ms
        text, thinking = repair_late_close(out.text, out.reasoning)
        answers.append(finalize(p.question, text, thinking, p.hits, p.units, p.verdict, llm, timings, p.lang, embedder))
    return answers


def finalize(question: str, text: str, thinking: str, hits: list[Hit], units: list[Evidence],
             verdict: Verdict, llm: LLM, timings: dict, lang: str, embedder=None) -> Answer:
    """Clean the reply, check each sentence against the evidence, cite, or fall back to quoting;
    a reply that translated its evidence shows the original sentence too."""
    text = clean_answer(text, question)
    thinking = redact(clean_answer(thinking)) or None
    evidence_text = "\n".join(u.prompt_text() for u in units)
    checked = "" if is_refusal(text) else check_sentences(redact(text), evidence_text, question)
    q = Query.of(question)
    needs_figure = q.quantity or q.year
    if not checked or adds_nothing(checked, question, evidence_text) or bare_figure(checked) or \
            _PASTED_HEAD.search(checked) or \
            (needs_figure and not answers_figure(MARKER.sub("", checked), question, verdict)):
        # the model refused, invented, pasted its sources back, or missed the figure
        checked = extractive(units, verdict, lang, figure=needs_figure)
        timings["extractive"] = 1
    else:  # facts as the sources write them: "60000" not "60,000"; "loss functions (损失函数)"
        checked = gloss(source_forms(checked, evidence_text), evidence_text)
    n_src = len(hits)
    valid, invalid = parse_citations(checked, n_src)
    checked = normalise_citations(checked, n_src)
    if not timings.get("extractive"):  # quotes carry their own source; "“3. 潜在空间插值…" is no sentence end
        per_source = ["\n".join(u.prompt_text() for u in units if u.n == i) for i in range(1, n_src + 1)]
        checked = attribute(checked, per_source)
        checked = with_original(checked, question, units, embedder)
    valid, _ = parse_citations(checked, n_src)
    citations = [Citation(n, hits[n - 1].chunk) for n in valid]
    return Answer(question, checked, False, citations, hits, thinking, llm.model, llm.backend, timings,
                  grounded=bool(citations), invalid_citations=invalid, evidence=list(units))


def with_original(text: str, question: str, units: list[Evidence], embedder) -> str:
    """`text` and, when the unit nearest it in meaning is in another language (an English answer
    from Chinese notes, a Chinese one from an English paper), that unit quoted and cited: a
    translation loses the notes' own words, which the learner reads, searches and checks the
    answer against. Nearest by the retrieval embedder, because across languages the words
    themselves do not overlap; an answer that states a figure is shown the unit that holds it."""
    body = strip_citations(text)
    lang = language(body)
    pool = [u for u in units if quotable(u)]
    stated = {f.value for f in new_figures(body, question)}
    if stated:
        pool = [u for u in pool if stated & figure_values(f"{u.context} {u.text}")]
    if embedder is None or all(language(u.prompt_text()) == lang for u in pool):
        return text  # nothing in another language to show: no embedding on the common path
    vectors = embedder.units([u.prompt_text() for u in pool])
    best = pool[int(np.argmax(vectors @ embedder.queries([body])[0]))]
    if language(best.prompt_text()) == lang:
        return text
    quote = _quote_with_items(best, units, nested_under(units))
    return text.rstrip() + ORIGINAL[lang].format(quote=quote, n=best.n)


def new_figures(text: str, question: str) -> list:
    """Figures of `text` that the question did not already write, even inside a name: "ResNet-152
    的错误率是 152 层" repeats the question's number and answers nothing."""
    asked = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", unicodedata.normalize("NFKC", question))}
    asked |= figure_values(question)  # scaled too: "DeepSeekMoE 16B" asked is 16e9 stated
    return [f for f in figures(text) if f.value not in asked]


def source_forms(text: str, evidence_text: str) -> str:
    """A figure the reply writes with thousands separators ("60,000") in the evidence's form when
    the evidence writes that very number without them ("60000个手写数字")."""
    def same(m: re.Match) -> str:
        plain = m.group(0).replace(",", "")
        return plain if re.search(rf"(?<![\d.,]){plain}(?![\d,])", evidence_text) and m.group(0) not in evidence_text \
            else m.group(0)
    return re.sub(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])", same, text)


def bare_figure(text: str) -> bool:
    """A reply that is only a number ("3.", "100", "671B"): without its subject and unit a learner
    cannot tell what it counts, and a 0.5B model writes one when it lost the thread — quote instead."""
    body = MARKER.sub(" ", text)
    return bool(figures(body)) and not re.search(r"[^\W\d_]{2,}", re.sub(r"\d[\d.,]*\s*[A-Za-z%]{0,2}\b", " ", body))


def adds_nothing(text: str, question: str, evidence_text: str) -> bool:
    """True when the reply says nothing beyond the question: a restated question ("Transformer
    里用层规范化而不是批量规范化[1]。", "LoRA is a method that fine-tunes a model…") or a bare source
    label ("资料[1]"). A reply whose new words are in another language than the evidence (an
    English answer from Chinese notes) cannot be matched word for word: only the echo counts."""
    body = MARKER.sub(" ", text)
    q_terms = terms(question)
    new = terms(body) - q_terms
    if new & terms(evidence_text):
        return False
    return _novelty(new, q_terms, body, question) <= 1 or language(body) == language(evidence_text)


_STOP_CHARS = frozenset(w for w in STOPWORDS if len(w) == 1 and is_cjk(w))


def _stems(term: str) -> str:
    """lexical.stem on each part of a compound ("fine-tunes" → "fine-tune"), which it leaves whole."""
    return "-".join(stem(p) for p in term.split("-"))


def _novelty(new: set[str], q_terms: set[str], body: str, question: str) -> int:
    """Roughly how many words `body` adds to the question (`new`: its terms the question lacks):
    Latin words whose stem the question lacks, plus new Chinese characters two to a word. Counted
    in characters, not bigrams, because "…的训练方式有显著的区别" re-cuts the question's characters
    into new bigrams."""
    q_stems = {_stems(t) for t in q_terms if not is_cjk(t[0])}
    words = {t for t in new if not is_cjk(t[0]) and _stems(t) not in q_stems}
    q_chars = set(unicodedata.normalize("NFKC", question))
    chars = {c for c in unicodedata.normalize("NFKC", body) if is_cjk(c) and c not in q_chars and c not in _STOP_CHARS}
    return len(words) + (len(chars) + 1) // 2


_BOUNDED = re.compile(r"准确率|错误率|正确率|比例|百分比|占比|accuracy|error rate|percentage|MMLU|BLEU|pass@|top-?[15]", re.I)
_UNBOUNDED = re.compile(r"\belo\b|rating|评分|多少倍|how many times", re.I)


def answers_figure(text: str, question: str, verdict: Verdict) -> bool:
    """Does `text` state a figure the question asks for? A new figure (not the question's own),
    and — when the evidence has units that answer on their own (subject named, figure next to
    the asked-for thing) — one of theirs: the 0.5B model often copies the figure of a neighbouring
    table row or model ("DeepSeekMoE 16B 有 236B 总参数", V2's row)."""
    stated = new_figures(text, question)
    if _BOUNDED.search(question) and not _UNBOUNDED.search(question):
        # a rate, accuracy or benchmark score is at most 100: "MMLU 分数是 67B" copied a model's size
        stated = [f for f in stated if f.percent or f.value <= 100]
    if not stated or not verdict.answering:
        return bool(stated)
    allowed = set().union(*(figure_values(f"{u.context} {u.text}") for u in verdict.answering))
    return any(f.value in allowed for f in stated)


def check_sentences(text: str, evidence_text: str, question: str) -> str:
    """The reply without its unsupported sentences (a figure or a name found in neither the
    evidence nor the question). Empty when the first sentence — the main claim — fails."""
    kept = []
    for i, sent in enumerate(split_sentences(text)):
        bad = unsupported_figures(sent, evidence_text, question) or unsupported_names(sent, evidence_text, question)
        if bad:
            if i == 0:
                return ""
            continue
        kept.append(sent)
    return _join(kept)


_NOT_PROSE = re.compile(r"https?://\S+|:\w+:`[^`]*`|:\w+:\S+|[*_`#>|\\$]|\[[^\]]*\]\([^)]*\)")


# every word of three or more letters capitalised, no verb-like lower-case word: a title
_TITLE_RUN = re.compile(r"(?:(?:[A-Z][\w-]*|[a-z]{1,3}|\d[\w.]*)[\s,:]+)*(?:[A-Z][\w-]*|\d[\w.]*)[.:]?")


def quotable(u: Evidence) -> bool:
    """Worth quoting to a learner on its own: some words left (with the unit's table header or
    code-block label) once links, d2l/markdown markup and numbering are gone — "2.1.", a bare URL
    or `blk(X).shape` teach nothing; "ImageNet Top-5 错误率: … ResNet-152: 3.57%" does."""
    t = _NOT_PROSE.sub(" ", u.prompt_text())
    cjk = len(re.findall(r"[\u3400-\u9fff]", t))
    words = len(re.findall(r"[A-Za-z]{2,}", t))
    figs = len([f for f in figures(t) if f.percent or f.value >= 10 or not float(f.value).is_integer()])
    program = u.kind == "code" or (u.kind == "sentence" and not cjk and program_line(u.text))
    if program and not (cjk and figs):  # a program line, not a listed result
        return False
    if not cjk and not figs and _TITLE_RUN.fullmatch(t.strip()):
        return False  # a paper's section title run into its text ("Discussion Amount of SFT Data.")
    return cjk + 2 * words + 2 * figs >= 10


def _overlaps(a: str, b: str) -> bool:
    """One text holds the other (or its last sentence): the same words quoted twice."""
    na, nb = normalise(a), normalise(b)
    short, long_ = sorted((na, nb), key=len)
    return bool(short) and (short in long_ or len(short) >= 12 and short[-12:] in long_)


def extractive(units: list[Evidence], verdict: Verdict, lang: str, max_units: int = 2,
               figure: bool = True) -> str:
    """An answer made of the best unit(s), quoted and cited: what the tutor says when the model's
    own words do not hold up against the evidence. For a `figure` question the units that answer on
    their own lead (the asked-for figure next to its subject); otherwise the best-scored units do.
    Units with nothing to read are passed over when others have."""
    # the units that answer on their own (subject named by the unit, figure beside the asked-for
    # words) are the ones whose figures a generated answer may state: the quote takes them too
    lead = sorted(verdict.answering, key=lambda x: -x.score) if figure else []
    if figure and not lead and verdict.best is not None:
        lead = [verdict.best]
    ranked = lead + sorted(units, key=lambda x: -x.score)
    pool = [u for u in ranked if quotable(u)] or ranked
    best: list[Evidence] = []
    for u in pool:
        if len(best) >= max_units:
            break
        if best and (any(b.hit is u.hit and b.start == u.start or _overlaps(b.text, u.text) for b in best)
                     or u.score < 0.6 * best[0].score):
            continue  # the same sentence twice (d2l repeats itself across pages, overlapping chunks
            # cut it at other line breaks) teaches nothing more
        best.append(u)
    under = nested_under(units)
    quotes = [EXTRACTIVE["quote"][lang].format(quote=_quote_with_items(u, units, under), n=u.n) for u in best]
    return EXTRACTIVE["lead"][lang] + ("；" if lang == "zh" else "; ").join(quotes) + \
        ("。" if lang == "zh" else ".")


def answer(question: str, search: SearchResult, llm: LLM, settings: Settings, embedder=None) -> Answer:
    for ev in answer_stream(question, search, lambda: llm, settings, embedder=embedder):
        if ev.kind == "done":
            return ev.answer  # type: ignore[return-value]
    raise LLMError("the model returned no answer")
