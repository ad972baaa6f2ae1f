"""The web UI's markup: answers with citation links, source cards, evidence lists, error lines.

Pure functions from records to Markdown / HTML strings, so the rendering rules are tested without a
browser. Model output and corpus text are untrusted: everything passes `safe_markdown` or
`html.escape` before it reaches the page.
"""
from __future__ import annotations

import html
import logging
import re

from .config import Settings
from .errors import EmptyQuestion, IndexError_, IndexMissing, LLMError, ModelError, QuestionTooLong
from .masking import public_message
from .records import Answer, Evidence, Hit
from .text import citations_in, clip, sentence_spans, split_sentences, strip_citations, terms
from .text import lines as _text_lines
from .ui_text import t

log = logging.getLogger("tutor.ui")

# ---- citations and sources ---------------------------------------------------------------------

# the citation shapes the answer module normalises to: [1] [1][2]
_CITE = re.compile(r"\[(\d{1,3})\]")


def cited_sentences(answer_text: str) -> dict[int, list[str]]:
    """n → the answer sentences that cite [n] (citations removed)."""
    out: dict[int, list[str]] = {}
    for sent in split_sentences(answer_text):
        for n in citations_in(sent):
            out.setdefault(n, []).append(strip_citations(sent))
    return out


def highlight(chunk_text: str, claims: list[str], min_overlap: float = 0.25) -> str:
    """The chunk as HTML with the sentences that best support `claims` wrapped in <mark>."""
    spans = [sp for pos, line in _text_lines(chunk_text) for sp in sentence_spans(chunk_text, pos, pos + len(line))]
    marked: set[int] = set()
    for claim in claims:
        ct = terms(claim)
        if not ct:
            continue
        scored = []
        for i, (a, b) in enumerate(spans):
            st = terms(chunk_text[a:b])
            if st:
                scored.append((len(ct & st) / len(ct), i))
        scored.sort(reverse=True)
        if scored and scored[0][0] >= min_overlap:
            best = scored[0][0]
            marked |= {i for s, i in scored[:3] if s >= max(min_overlap, best * 0.8)}
    out, pos = [], 0
    for i, (a, b) in enumerate(spans):
        if i in marked:
            out.append(html.escape(chunk_text[pos:a]))
            out.append(f"<mark>{html.escape(chunk_text[a:b])}</mark>")
            pos = b
    out.append(html.escape(chunk_text[pos:]))
    return "".join(out)


def mark_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` as HTML with the given [start, end) spans wrapped in <mark class="evidence">."""
    out, pos = [], 0
    for a, b in sorted(spans):
        a, b = max(a, pos), min(b, len(text))
        if b <= a:
            continue
        out.append(html.escape(text[pos:a]))
        out.append(f'<mark class="evidence">{html.escape(text[a:b])}</mark>')
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def render_evidence(units: list[Evidence], turn: int) -> str:
    """The evidence units as a short list in the chat, each linking to its source card (the
    quotes are corpus text: made safe like model output)."""
    rows = []
    for u in units:
        quote = clip(u.prompt_text(), 160)
        rows.append(f'- <a class="cite" href="#src-{turn}-{u.n}">[{u.n}]</a> {safe_markdown(quote)}')
    return "\n".join(rows)


# Model output (and the corpus text it may copy) is rendered as Markdown: it must not load
# remote images (a tracking pixel) nor offer links to arbitrary hosts (phishing). Code spans and
# blocks are left alone (nothing in them renders); outside them raw HTML is escaped, images become
# their alt text, links their text, and bare URLs / e-mail addresses inline code (readable, not
# clickable). Our own citation links are added after this, by `render_answer`.
_MD_CODE = re.compile(r"(```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)|`[^`\n]+`)")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\s*(?:\([^)]*\)?|\[[^\]]*\])")
_MD_LINK = re.compile(r"\[([^\]]*)\]\s*\(([^)]*)\)")
# a link reference definition may open a line, a quote ("> [x]: url") or a list item ("- [x]: url"):
# the colon of every "[label]:" becomes an entity, so none of them defines anything
_MD_REF_DEF = re.compile(r"\[([^\]\n]+)\]:")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_URL = re.compile(r"\b(?:https?|ftps?|file|data|javascript|vbscript|mailto):[^\s<>()\[\]`]+"
                     r"|\bwww\.[^\s<>()\[\]`]+|[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+", re.I)


def safe_markdown(text: str) -> str:
    """`text` as Markdown that loads nothing remote and links nowhere (see above)."""
    parts = _MD_CODE.split(text or "")
    for i in range(0, len(parts), 2):  # even parts are outside code
        s = _MD_TAG.sub("&lt;", parts[i])
        s = _MD_IMAGE.sub(lambda m: m.group(1), s)
        s = _MD_LINK.sub(lambda m: f"[{m.group(1)}]" if m.group(1).strip().isdigit() else m.group(1), s)
        s = _MD_REF_DEF.sub(r"[\1]&#58;", s)
        parts[i] = _MD_URL.sub(lambda m: f"`{m.group(0)}`", s)
    return "".join(parts)


def render_answer(text: str, turn: int, n_sources: int) -> str:
    """Answer text, made safe (`safe_markdown`), with each valid [n] as a link to card n of this
    turn's sources."""
    def link(m: re.Match) -> str:
        n = int(m.group(1))
        if not 1 <= n <= n_sources:
            return m.group(0)
        return f'<a class="cite" href="#src-{turn}-{n}" title="source {n}">[{n}]</a>'

    return _CITE.sub(link, safe_markdown(text))


def render_turn_sources(turn: int, question: str, hits: list[Hit], lang: str,
                        answer: Answer | None = None, visible: bool = True,
                        evidence: list[Evidence] | None = None) -> str:
    """One turn's source cards (ids src-<turn>-<n>); cards holding evidence open with exactly the
    evidence units marked (before the answer exists, too); otherwise cited sentences are marked."""
    if evidence is None and answer is not None:
        evidence = answer.evidence
    claims = cited_sentences(answer.text) if answer is not None and not answer.refused else {}
    cited = {c.n for c in answer.citations} if answer is not None else set()
    spans: dict[int, list[tuple[int, int]]] = {}
    for u in evidence or []:
        spans.setdefault(u.n, []).append((u.start - u.hit.chunk.start, u.end - u.hit.chunk.start))
    cards = []
    for n, h in enumerate(hits, start=1):
        c = h.chunk
        head = html.escape(c.label)
        meta = [html.escape(c.file)]
        if c.page is not None:
            meta.insert(0, t(lang, "page", p=c.page))
        if h.credit:
            meta.append(h.credit.html())
        status = ""
        if answer is not None:
            status = (f'<span class="src-badge cited">{t(lang, "cited")}</span>' if n in cited else
                      f'<span class="src-badge">{t(lang, "not_cited")}</span>')
        if n in spans:
            body = mark_spans(c.text, spans[n])
        else:
            body = highlight(c.text, claims.get(n, [])) if n in claims else html.escape(c.text)
        is_open = n in cited or n in spans
        cards.append(
            f'<details class="src-card{" is-cited" if n in cited else ""}" id="src-{turn}-{n}" '
            f'data-turn="{turn}" data-n="{n}"{" open" if is_open else ""}>'
            f'<summary><span class="src-n">[{n}]</span> <span class="src-title">{head}</span> {status}</summary>'
            f'<div class="src-meta">{" · ".join(meta)}</div>'
            f'<div class="src-text">{body}</div></details>')
    style = "" if visible else ' style="display:none"'
    return (f'<div class="src-turn" id="turn-{turn}" data-turn="{turn}"{style}>'
            f'<div class="src-q">{t(lang, "sources_for")}: {html.escape(question)}</div>'
            + "".join(cards) + "</div>")


def render_sources_panel(turns: list[dict], lang: str, live: str | None = None) -> str:
    """Every turn's sources (only the latest visible; citation clicks switch turns client-side)."""
    blocks = [render_turn_sources(i, tr["question"], tr["hits"], lang, tr.get("answer"), visible=False)
              for i, tr in enumerate(turns) if tr.get("hits")]
    if live is not None:
        blocks.append(live)
    if not blocks:
        return f'<div class="tutor-sources"><p class="src-empty">{t(lang, "sources_empty")}</p></div>'
    # the latest block is visible
    last = blocks[-1].replace(' style="display:none"', "", 1)
    return '<div class="tutor-sources">' + "".join(blocks[:-1]) + last + "</div>"


# ---- errors ------------------------------------------------------------------------------------

def error_message(e: BaseException, lang: str, settings: Settings | None = None) -> str:
    """One line the learner can act on; never a stack trace, a secret, a local path or a server
    address (`public_message`: the operator finds those in the log). The one place the web UI
    renders an error, chosen by its type."""
    if isinstance(e, EmptyQuestion):
        return t(lang, "err_empty")
    if isinstance(e, QuestionTooLong):
        return t(lang, "err_too_long", n=f"{e.length:,}", limit=f"{e.limit:,}")
    if isinstance(e, IndexMissing):
        return t(lang, "err_no_index")
    msg = public_message(" ".join(str(e).split()), settings)[:800]  # the crash line + its fix fit
    if isinstance(e, IndexError_):
        return t(lang, "err_index", e=msg)
    if isinstance(e, LLMError):
        return t(lang, "err_llm", e=msg)
    if isinstance(e, ModelError):
        return t(lang, "err_model", e=msg)
    log.exception("unexpected error while answering")  # the log is masked too (RedactingFilter)
    return t(lang, "err_other", t=type(e).__name__, e=msg)
