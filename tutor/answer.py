"""Hits → numbered sources → LLM → reasoning/answer split → validated citations → `Answer`.

`answer_stream` yields events as they happen (the UI and `tutor ask` render them live);
`Answer` at the end is the single source of truth — the streamed text is only a preview.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from .config import Settings
from .glossary import language
from .llm.base import LLM, GenParams, LLMError, default_params, is_reasoning_model, repair_late_close
from .lexical import STOPWORDS
from .prompts import CANARY, REFUSAL, REFUSAL_TEXT, build_messages
from .types import Answer, Citation, Hit, SearchResult

# [1]  [1,2]  [1, 3]  [1-3]  【2】  [^4]  [来源1] — every shape small models actually produce
_CITE = re.compile(r"[\[【]\s*(?:\^|来源|source\s*)?\s*(\d{1,3}(?:\s*[,，、\-–~]\s*\d{1,3})*)\s*[\]】]", re.I)
_SCAFFOLD = re.compile(r"</?(?:sources?|question)\b[^>]*>", re.I)
# lines where a small model echoes our prompt layout instead of answering
_ECHO_LINE = re.compile(r"^\s*(?:问题[:：]|question:|资料\s*\[\d+\]|source \[\d+\]|请根据以上资料|using the sources above)",
                        re.I | re.M)
_SENTENCE = re.compile(r"[^。！？；!?\n]+?(?:[。！？；!?]+|(?<=[a-z0-9%)])\.(?=\s|$)|\n|$)", re.I)
_TERMS = re.compile(r"[\u4e00-\u9fff]|[a-z0-9][a-z0-9.\-%]*", re.I)
ATTRIBUTION_MIN = 0.35


@dataclass(frozen=True)
class Event:
    """One thing that happened while answering: stage | sources | token | reasoning | done."""

    kind: str
    text: str = ""
    hits: tuple[Hit, ...] = ()
    answer: Answer | None = None


def parse_citations(text: str, n_sources: int) -> tuple[list[int], list[int]]:
    """All cited numbers in order of first use: (valid ones, invalid ones)."""
    valid: list[int] = []
    invalid: list[int] = []
    for m in _CITE.finditer(text):
        for n in _expand(m.group(1)):
            target = valid if 1 <= n <= n_sources else invalid
            if n not in target:
                target.append(n)
    return valid, invalid


def _expand(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,，、]\s*", group.strip()):
        rng = re.split(r"\s*[\-–~]\s*", part)
        if len(rng) == 2 and rng[0].isdigit() and rng[1].isdigit() and int(rng[0]) <= int(rng[1]) <= int(rng[0]) + 10:
            out.extend(range(int(rng[0]), int(rng[1]) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def normalise_citations(text: str, n_sources: int) -> str:
    """Rewrite every citation shape as [n][m]; drop numbers that point at no source."""
    def repl(m: re.Match) -> str:
        ns = [n for n in _expand(m.group(1)) if 1 <= n <= n_sources]
        return "".join(f"[{n}]" for n in ns)

    return _CITE.sub(repl, text)


def clean_answer(text: str, question: str = "") -> str:
    text = text.replace(CANARY, "[redacted]")
    q = question.strip()
    if q and text.lstrip().startswith(q):  # small models often restate the question first
        text = text.lstrip()[len(q):]
    text = _SCAFFOLD.sub("", text)
    text = "\n".join(ln for ln in text.splitlines() if not _ECHO_LINE.match(ln))
    text = re.sub(r"^\s*(?:assistant|助教|回答|answer)\s*(?:[:：]\s*|\s+)", "", text, flags=re.I)
    text = text.replace("[编号]", "").replace("[n]", "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _terms(text: str) -> set[str]:
    """CJK character bigrams plus Latin words/numbers: a language-neutral overlap unit."""
    toks = [t.lower().rstrip(".-") for t in _TERMS.findall(text)]
    out = {t for t in toks if t and not ("\u4e00" <= t[0] <= "\u9fff") and t not in STOPWORDS}
    cjk = [t for t in toks if "\u4e00" <= t[0] <= "\u9fff"]
    out |= {a + b for a, b in zip(cjk, cjk[1:])}
    return out


def attribute(text: str, source_texts: list[str]) -> str:
    """Post-hoc attribution: a sentence the model left uncited gets the source that covers most
    of its words, when that coverage is at least ATTRIBUTION_MIN. Small models answer well from
    the sources but cite unreliably; this ties each claim to its passage instead of leaving it
    unsupported. Sentences with no good match stay uncited (and count against citation recall)."""
    src_terms = [_terms(t) for t in source_texts]
    out = []
    for m in _SENTENCE.finditer(text):
        sent = m.group(0)
        if not sent.strip():
            out.append(sent)
            continue
        if _CITE.search(sent) or len(sent.strip()) < 6:
            out.append(sent)
            continue
        terms = _terms(_CITE.sub("", sent))
        if not terms:
            out.append(sent)
            continue
        numbers = {t for t in terms if t[0].isdigit()}
        scores = [len(terms & st) / len(terms) for st in src_terms]
        if numbers:  # a figure quoted in another language: the numbers carry the match
            scores = [max(sc, ATTRIBUTION_MIN) if numbers <= st and len(terms & st) > len(numbers) else sc
                      for sc, st in zip(scores, src_terms)]
        best = max(range(len(scores)), key=scores.__getitem__) if scores else None
        if best is None or scores[best] < ATTRIBUTION_MIN:
            out.append(sent)
            continue
        body, tail = sent.rstrip("\n"), sent[len(sent.rstrip("\n")):]
        mark = f"[{best + 1}]"
        out.append(f"{body[:-1]}{mark}{body[-1]}{tail}" if body[-1:] in "。！？；!?." else f"{body}{mark}{tail}")
    return "".join(out)


def is_refusal(text: str) -> bool:
    """The model's explicit signal: REFUSAL with (almost) nothing else beside it."""
    if REFUSAL not in text.upper().replace(" ", "_"):
        return False
    rest = _CITE.sub("", re.sub(REFUSAL, "", text, flags=re.I)).strip(" \n.。:：-*`\"'")
    return len(rest) < 40


def _approx_tokens(text: str) -> int:
    """Conservative across tokenizers: Qwen spends ~0.7 tokens on a Chinese character, byte-level
    English tokenizers (SmolLM2) 2–3; over-estimating only drops a source, under-estimating fails."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return int(cjk * 1.5) + (len(text) - cjk) // 3


def fit_sources(hits: list[Hit], budget_tokens: int) -> tuple[list[Hit], list[str]]:
    """Keep the best sources that fit the model's context; cut the last one short if needed."""
    kept, texts, used = [], [], 0
    for h in hits:
        t = h.chunk.text
        need = _approx_tokens(t) + 30
        if used + need > budget_tokens:
            room = budget_tokens - used - 30
            if room > 80:
                cut = t[: max(1, int(len(t) * room / max(need, 1)))]
                kept.append(h)
                texts.append(cut + "…")
            break
        kept.append(h)
        texts.append(t)
        used += need
    return kept, texts


class _StreamGuard:
    """Holds back just enough streamed text that a refusal token or the canary never flashes
    on screen before the final answer replaces the preview."""

    def __init__(self) -> None:
        self.buf = ""
        self.sent = 0

    def feed(self, piece: str) -> str:
        # a canary completes only inside the held-back tail, so redacting there is enough
        self.buf = self.buf[: self.sent] + (self.buf[self.sent:] + piece).replace(CANARY, "")
        stripped = self.buf.lstrip()
        if REFUSAL.startswith(stripped[: len(REFUSAL)].upper()) and len(stripped) <= len(REFUSAL) + 2:
            return ""
        safe_end = max(self.sent, len(self.buf) - len(CANARY))
        out = self.buf[self.sent:safe_end]
        self.sent = safe_end
        return out


def refused_answer(question: str, lang: str, hits: list[Hit], timings: dict, model: str,
                   backend: str, why: str) -> Answer:
    return Answer(question=question, text=REFUSAL_TEXT[lang], refused=True, citations=[], sources=hits,
                  reasoning=None, model=model, backend=backend, timings_ms=dict(timings),
                  grounded=False)


def answer_stream(question: str, search: SearchResult, get_llm: Callable[[], LLM], settings: Settings,
                  lang: str | None = None) -> Iterator[Event]:
    """Answer `question` from `search`'s hits. Retrieval already happened (its time is in
    `search.timings_ms`). `get_llm` is only called past the relevance gate, so an off-topic
    question is declined without loading or calling a model."""
    lang = lang or language(question)
    timings: dict[str, float] = {"retrieve": search.timings_ms.get("total", 0.0)}
    hits = list(search.hits[: settings.answer_k])
    if not hits or search.similarity is None or search.similarity < settings.relevance_threshold:
        timings["total"] = timings["retrieve"]
        ans = refused_answer(question, lang, hits, timings, settings.model, settings.backend, "gate")
        yield Event("done", answer=ans)
        return
    llm = get_llm()
    all_hits = hits
    budget = (llm.context_window or settings.n_ctx) - settings.max_tokens - 400
    reasoning_model = is_reasoning_model(llm.model)
    params = default_params(llm.model, settings)
    params = GenParams(max_tokens=settings.max_tokens, temperature=params.temperature, top_p=params.top_p,
                       stop=params.stop)
    for attempt in range(3):
        hits, texts = fit_sources(all_hits, budget)
        messages = build_messages(question, hits, lang, system_prompt=not reasoning_model, texts=texts)
        t0 = time.perf_counter()
        first = None
        raw, reasoning, n_tokens = [], [], 0
        guard = _StreamGuard()
        yield Event("sources", hits=tuple(hits))
        yield Event("stage", text="thinking")
        try:
            for delta in llm.stream(messages, params):
                if first is None:
                    first = time.perf_counter()
                    timings["first_token"] = (first - t0) * 1000
                n_tokens += 1
                if delta.reasoning:
                    reasoning.append(delta.reasoning)
                    yield Event("reasoning", text=delta.reasoning)
                if delta.text:
                    raw.append(delta.text)
                    shown = guard.feed(delta.text)
                    if shown:
                        yield Event("token", text=shown)
            break
        except LLMError as e:
            # the server's context is smaller than we assumed (llama.cpp's server may just send an
            # empty reply then): retry with fewer source tokens
            if first is not None or attempt == 2 or not any(
                    s in str(e) for s in ("too long", "empty reply")):
                raise
            window = llm.context_window or (budget + settings.max_tokens + 400) // 2
            budget = min(budget // 2, window - settings.max_tokens - 400)
    end = time.perf_counter()
    timings["generate"] = (end - t0) * 1000
    timings["total"] = timings["retrieve"] + timings["generate"]
    timings["tokens"] = n_tokens
    text, thinking = repair_late_close("".join(raw), "".join(reasoning))
    yield Event("done", answer=finalize(question, text, thinking, hits, llm, timings, lang))


def finalize(question: str, text: str, thinking: str, hits: list[Hit], llm: LLM,
             timings: dict, lang: str) -> Answer:
    text = clean_answer(text, question)
    thinking = clean_answer(thinking) or None
    if is_refusal(text) or not text:
        return Answer(question, REFUSAL_TEXT[lang], True, [], hits, thinking, llm.model, llm.backend, timings,
                      grounded=False)
    valid, invalid = parse_citations(text, len(hits))
    text = normalise_citations(text, len(hits))
    text = attribute(text, [h.chunk.text for h in hits])
    valid, _ = parse_citations(text, len(hits))
    citations = [Citation(n, hits[n - 1].chunk) for n in valid]
    return Answer(question, text, False, citations, hits, thinking, llm.model, llm.backend, timings,
                  grounded=bool(citations), invalid_citations=invalid)


def answer(question: str, search: SearchResult, llm: LLM, settings: Settings) -> Answer:
    for ev in answer_stream(question, search, lambda: llm, settings):
        if ev.kind == "done":
            return ev.answer  # type: ignore[return-value]
    raise LLMError("the model returned no answer")
