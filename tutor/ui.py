"""The Gradio web UI over `Tutor`: streamed chat with clickable citations, a sources panel, feedback.

One `Tutor` serves every browser session; each session's conversation lives in a `gr.State`.
Rendering rules:
- the final `Answer` replaces the streamed preview (tokens are only a preview);
- the model's reasoning goes into a collapsed "thinking" message, never into the answer;
- each valid [n] in an answer becomes a link `#src-<turn>-<n>`; a small page script (CITE_JS)
  catches clicks on those links and shows, opens, highlights and scrolls to card n of that turn
  in the sources panel, where the passage sentences the answer drew on are <mark>ed;
- errors the user can act on (no index, model server down, empty question) become one chat line.
"""
from __future__ import annotations

import fcntl
import html
import logging
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage pings

import gradio as gr  # noqa: E402

from . import jsonl
from .config import Settings
from .errors import EmptyQuestion, IndexError_, IndexMissing, LLMError, ModelError, QuestionTooLong
from .glossary import language
from .masking import install_log_redaction, public_message
from .retrieval import check_question
from .text import lines as _text_lines
from .text import citations_in, clip, sentence_spans, split_sentences, strip_citations, terms
from .records import Answer, Evidence, Hit
from .ui_modes import mode_tabs

log = logging.getLogger("tutor.ui")

# ---- UI text -------------------------------------------------------------------------------------

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "用AI学AI · AI 助教",
        "subtitle": "根据学习笔记和论文回答深度学习与大模型问题，每句话都注明出处。点击答案里的 [n] 查看原文。",
        "placeholder": "输入你的问题，例如：ResNet 的残差连接解决了什么问题？（Enter 发送）",
        "send": "发送",
        "stop": "停止",
        "clear": "新对话",
        "sources": "来源",
        "sources_empty": "提问后，这里会列出答案引用的原文段落。点击答案中的 [n] 跳到对应段落。",
        "sources_for": "问题",
        "cited": "已引用",
        "not_cited": "检索到，未引用",
        "page": "第 {p} 页",
        "backend": "后端",
        "model": "模型",
        "index": "索引",
        "index_none": "还没有索引：请先运行 `tutor ingest`",
        "index_ok": "{n} 个段落",
        "topk": "检索段落数（top-k）",
        "lang": "界面语言",
        "examples": "试试这些问题",
        "about": "关于资料库",
        "about_md": (
            "答案只来自以下资料：\n\n"
            "- **五篇中文学习笔记**（“用AI学AI”）\n"
            "- **DeepSeek 论文**：DeepSeek-V2、V3、R1、DeepSeekMoE（MIT 许可）\n"
            "- **World Models**，David Ha 与 Jürgen Schmidhuber，https://worldmodels.github.io（CC BY 4.0）\n"
            "- **《动手学深度学习》d2l-zh 的 10 章**，作者 Aston Zhang、Zachary C. Lipton、Mu Li、"
            "Alexander J. Smola，https://zh.d2l.ai（文字以 CC BY-SA 4.0 许可）\n\n"
            "资料里没有的内容，助教会直说不知道。"
        ),
        "fb_label": "反馈（可选评论）",
        "fb_placeholder": "写下评论，再点答案下方的 👍 / 👎；或点完后在这里补充并点“提交评论”",
        "fb_send": "提交评论",
        "fb_thanks_up": "谢谢！已记录 👍",
        "fb_thanks_down": "谢谢！已记录 👎，我们会改进。",
        "fb_comment_saved": "评论已记录，谢谢！",
        "fb_none": "还没有可以评价的回答。",
        "fb_removed": "已取消评价。",
        "stage_rewriting": "理解追问…",
        "stage_retrieving": "检索笔记…",
        "stage_thinking": "思考中…",
        "thinking": "💭 思考过程",
        "rewritten": "↪ 追问理解为：{q}",
        "evidence": "📌 证据（回答依据的原文）",
        "stopped": "⏹ 已停止",
        "err_no_index": "⚠️ 还没有索引：请先运行 `tutor ingest`。",
        "err_index": "⚠️ 索引不可用：{e}",
        "err_llm": "⚠️ 模型出错：{e}",
        "err_model": "⚠️ 模型不可用：{e}",
        "err_empty": "⚠️ 请输入一个问题，例如：ResNet 的残差连接解决了什么问题？",
        "err_too_long": "⚠️ 问题太长了（{n} 字），上限是 {limit} 字：请一次只问一件事。",
        "err_busy": "⚠️ 还在回答前面的问题（已有 {n} 个在排队）：请稍候，或点“停止”。",
        "err_other": "⚠️ 出错了（{t}）：{e}",
        "ungrounded": "（这个回答没有可核对的引用，请谨慎参考。）",
        "simpler": "更简单", "deeper": "更深入",
        "level_beginner": "（更简单）", "level_advanced": "（更深入）",
    },
    "en": {
        "title": "Learn AI with AI · AI tutor",
        "subtitle": "Answers about deep learning and LLMs from study notes and papers, with a source for each "
                    "claim. Click an [n] in an answer to see the passage.",
        "placeholder": "Ask a question, e.g. What is Mixture of Experts? (Enter to send)",
        "send": "Send",
        "stop": "Stop",
        "clear": "New chat",
        "sources": "Sources",
        "sources_empty": "After you ask, the passages the answer cites are listed here. Click an [n] in the "
                         "answer to jump to its passage.",
        "sources_for": "Question",
        "cited": "cited",
        "not_cited": "retrieved, not cited",
        "page": "p. {p}",
        "backend": "Backend",
        "model": "Model",
        "index": "Index",
        "index_none": "no index yet: run `tutor ingest` first",
        "index_ok": "{n} passages",
        "topk": "Passages to retrieve (top-k)",
        "lang": "Interface language",
        "examples": "Try these questions",
        "about": "About the corpus",
        "about_md": (
            "Answers come only from:\n\n"
            "- **Five Chinese study notes** (\"Learn AI with AI\")\n"
            "- **DeepSeek papers**: DeepSeek-V2, V3, R1 and DeepSeekMoE (MIT license)\n"
            "- **World Models** by David Ha and Jürgen Schmidhuber, https://worldmodels.github.io (CC BY 4.0)\n"
            "- **10 chapters of 动手学深度学习 (d2l-zh, Dive into Deep Learning)** by Aston Zhang, "
            "Zachary C. Lipton, Mu Li and Alexander J. Smola, https://zh.d2l.ai (text under CC BY-SA 4.0)\n\n"
            "When the answer is not in these sources, the tutor says so."
        ),
        "fb_label": "Feedback (optional comment)",
        "fb_placeholder": "Write a comment, then click 👍 / 👎 under the answer — or rate first, then add a "
                          "comment here and press “Send comment”",
        "fb_send": "Send comment",
        "fb_thanks_up": "Thanks! Recorded 👍",
        "fb_thanks_down": "Thanks! Recorded 👎 — we'll improve.",
        "fb_comment_saved": "Comment recorded, thank you!",
        "fb_none": "There is no answer to rate yet.",
        "fb_removed": "Rating removed.",
        "stage_rewriting": "reading the follow-up…",
        "stage_retrieving": "searching the notes…",
        "stage_thinking": "thinking…",
        "thinking": "💭 Thinking",
        "rewritten": "↪ Follow-up read as: {q}",
        "evidence": "📌 Evidence (what the answer stands on)",
        "stopped": "⏹ stopped",
        "err_no_index": "⚠️ No index yet: run `tutor ingest` first.",
        "err_index": "⚠️ The index is not usable: {e}",
        "err_llm": "⚠️ The model failed: {e}",
        "err_model": "⚠️ The model is not available: {e}",
        "err_empty": "⚠️ Please type a question, e.g. What is Mixture of Experts?",
        "err_too_long": "⚠️ That question is too long ({n} characters; the limit is {limit}): please ask about "
                        "one thing at a time.",
        "err_busy": "⚠️ Still answering your earlier questions ({n} waiting): please wait, or press Stop.",
        "err_other": "⚠️ Something went wrong ({t}): {e}",
        "ungrounded": "(This answer has no citation to check it against; treat it with care.)",
        "simpler": "Simpler", "deeper": "Deeper",
        "level_beginner": "(simpler) ", "level_advanced": "(deeper) ",
    },
}

LANG_CHOICES = [("自动 / Auto", "auto"), ("中文", "zh"), ("English", "en")]

EXAMPLES = [
    "ResNet 的残差连接解决了什么问题？",
    "What is Mixture of Experts?",
    "DeepSeek-V3 有多少参数？",
    "Transformer 的自注意力是怎么计算的？",
    "What is a world model?",
]


def ui_lang(choice: str | None, text: str = "") -> str:
    """The interface language: the toggle, or in "auto" the learner's language (Chinese by default)."""
    if choice in ("zh", "en"):
        return choice
    return language(text) if text and text.strip() else "zh"


def t(lang: str, key: str, **kw: Any) -> str:
    s = TEXT.get(lang, TEXT["zh"])[key]
    return s.format(**kw) if kw else s


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
_MD_REF_DEF = re.compile(r"^( {0,3})\[([^\]]+)\]:", re.M)
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
        s = _MD_REF_DEF.sub(r"\1\\[\2]:", s)
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


def _credit(path: str) -> str:
    p = path.replace("\\", "/")
    if p.startswith("d2l-zh/") or "/d2l-zh/" in p:
        return ("《动手学深度学习》d2l-zh · Aston Zhang, Zachary C. Lipton, Mu Li, Alexander J. Smola · "
                '<a href="https://zh.d2l.ai" target="_blank" rel="noopener">zh.d2l.ai</a> · CC BY-SA 4.0')
    if "world_models" in p:
        return ("David Ha, Jürgen Schmidhuber · "
                '<a href="https://worldmodels.github.io" target="_blank" rel="noopener">worldmodels.github.io</a>'
                " · CC BY 4.0")
    if "deepseek" in p.lower():
        return "DeepSeek-AI · MIT"
    return ""


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
        credit = _credit(c.path or c.file)
        if credit:
            meta.append(credit)
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


def render_sources_panel(sess: "Session", lang: str, live: str | None = None) -> str:
    """Every turn's sources (only the latest visible; citation clicks switch turns client-side)."""
    blocks = [render_turn_sources(i, tr["question"], tr["hits"], lang, tr.get("answer"), visible=False)
              for i, tr in enumerate(sess.turns) if tr.get("hits")]
    if live is not None:
        blocks.append(live)
    if not blocks:
        return f'<div class="tutor-sources"><p class="src-empty">{t(lang, "sources_empty")}</p></div>'
    # the latest block is visible
    last = blocks[-1].replace(' style="display:none"', "", 1)
    return '<div class="tutor-sources">' + "".join(blocks[:-1]) + last + "</div>"


# ---- feedback ----------------------------------------------------------------------------------

_FEEDBACK_LOCK = threading.Lock()
FEEDBACK_COMMENT_MAX = 2000  # characters; the textbox stops there too


def append_feedback(path: Path | str, record: dict) -> None:
    """Append one JSON line; safe across threads (lock) and processes (flock)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = jsonl.dumps(record) + "\n"
    with _FEEDBACK_LOCK, open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def feedback_record(settings: Settings, turn: dict, rating: str | None, comment: str, fid: str) -> dict:
    """A rating and/or comment beside the whole answer as `ask --json` gives it, and the config."""
    ans: Answer = turn["answer"]
    return {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "feedback_id": fid,
        "rating": rating,  # "up" | "down" | None (comment only)
        "comment": (comment or "").strip()[:FEEDBACK_COMMENT_MAX],
        **ans.to_dict(),
        "question": turn["question"],
        "config": {"backend": settings.backend, "model": ans.model or settings.model, "top_k": turn["top_k"],
                   "retrieval_mode": settings.retrieval_mode, "embedder": settings.embedder},
    }


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
    msg = public_message(" ".join(str(e).split()), settings)[:400]
    if isinstance(e, IndexError_):
        return t(lang, "err_index", e=msg)
    if isinstance(e, LLMError):
        return t(lang, "err_llm", e=msg)
    if isinstance(e, ModelError):
        return t(lang, "err_model", e=msg)
    log.exception("unexpected error while answering")  # the log is masked too (RedactingFilter)
    return t(lang, "err_other", t=type(e).__name__, e=msg)


# ---- the app -----------------------------------------------------------------------------------

CSS = """
.tutor-sources { font-size: 0.92em; }
.tutor-sources .src-q { color: var(--body-text-color-subdued); margin: 0.2em 0 0.6em; }
.tutor-sources .src-empty { color: var(--body-text-color-subdued); }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.4em 0.7em;
            margin-bottom: 0.6em; transition: box-shadow .3s, border-color .3s; }
.src-card summary { cursor: pointer; }
.src-card.is-cited { border-color: var(--color-accent-soft, #c7d2fe); }
.src-card.active { border-color: var(--color-accent, #f97316);
                   box-shadow: 0 0 0 3px var(--color-accent-soft, #fed7aa); }
.src-n { font-weight: 700; }
.src-badge { font-size: 0.8em; padding: 0 0.4em; border-radius: 4px; background: var(--background-fill-secondary); }
.src-badge.cited { background: var(--color-accent-soft, #fed7aa); }
.src-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 0.3em 0; }
.src-text { white-space: pre-wrap; max-height: 24em; overflow-y: auto; line-height: 1.5; }
.src-text mark { background: #fde68a; color: inherit; padding: 0 1px; }
mark.quiz-key { background: #fde68a; color: inherit; padding: 0 2px; font-weight: 600; }
.quiz-verdict[data-verdict=correct] { color: #15803d; } .quiz-verdict[data-verdict=partial] { color: #a16207; }
.quiz-verdict[data-verdict=wrong] { color: #b91c1c; }
.quiz-source { border-left: 3px solid #fde68a; padding-left: .6em; margin: .4em 0; }
.path-table td, .progress-table td { vertical-align: top; padding: .3em .5em; }
.suggestion { font-size: .9em; }
#q-counter { text-align: right; font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: -0.4em; }
#q-counter .q-count.over { color: var(--error-text-color, #dc2626); font-weight: 600; }
a.cite { font-weight: 600; text-decoration: none; cursor: pointer; }
#sources-panel { max-height: 78vh; overflow-y: auto; }
"""

# Starts every final answer (an HTML comment: never rendered, and the markdown after it parses as
# usual). Lets the copy button skip the thinking block grouped into the same bubble (see CITE_JS).
ANSWER_MARK = "<!--answer-->\n"

# Runs once on page load. A capture-phase listener so the chatbot's own link handling never
# opens "#src-…" as a new tab; works for answers rendered later too (event delegation).
CITE_JS = """
() => {
  if (window.__tutorCites) return;
  window.__tutorCites = true;
  window.tutorShowSource = (id) => {
    const card = document.getElementById(id);
    if (!card) return false;
    const turn = card.closest('.src-turn');
    document.querySelectorAll('.src-turn').forEach(el => { el.style.display = (el === turn) ? '' : 'none'; });
    document.querySelectorAll('.src-card.active').forEach(el => el.classList.remove('active'));
    card.classList.add('active');
    card.open = true;
    card.scrollIntoView({behavior: 'smooth', block: 'start'});
    const mark = card.querySelector('mark');
    if (mark) setTimeout(() => mark.scrollIntoView({behavior: 'smooth', block: 'nearest'}), 350);
    return true;
  };
  document.addEventListener('click', (ev) => {
    const a = ev.target && ev.target.closest ? ev.target.closest('a[href^="#src-"]') : null;
    if (!a) return;
    ev.preventDefault();
    ev.stopPropagation();
    window.tutorShowSource(a.getAttribute('href').slice(1));
  }, true);
  // The chatbot's copy button copies the raw messages of a bubble: keep only the answer (it starts
  // after ANSWER_MARK; the thinking / rewrite blocks before it are dropped) and turn our citation
  // links back into plain [n].
  if (navigator.clipboard && navigator.clipboard.writeText) {
    const write = navigator.clipboard.writeText.bind(navigator.clipboard);
    navigator.clipboard.writeText = (s) => {
      if (typeof s === 'string') {
        const i = s.lastIndexOf('\\x3c!--answer--\\x3e');  // escaped: no comment markers in page JS
        if (i >= 0) s = s.slice(i + 13).replace(/^\\n/, '');
        s = s.replace(/<a class="cite"[^>]*>(\\[\\d+\\])<\\/a>/g, '$1').replace(/&lt;/g, '<');
      }
      return write(s);
    };
  }
}
"""


# Updates the counter under the question box ("123 / 2,000"; red past the limit). Counts code
# points like the server does (a JS string's length counts UTF-16 units).
COUNTER_JS = """
(v) => {
  const c = document.querySelector('#q-counter .q-count');
  if (c) {
    const limit = parseInt(c.dataset.limit || '0', 10);
    const n = [...(v || '')].length;
    c.textContent = n.toLocaleString('en-US') + ' / ' + limit.toLocaleString('en-US');
    c.classList.toggle('over', limit > 0 && n > limit);
  }
  return [];
}
"""


def _theme():
    sys_font = ["ui-sans-serif", "system-ui", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei", "sans-serif"]
    # local fonts only: the app must work offline (no Google Fonts request)
    return gr.themes.Soft(font=sys_font, font_mono=["ui-monospace", "Consolas", "monospace"])


def _one_line(text: str, n: int = 120) -> str:
    """A short single line for a title (a rewritten follow-up), made safe like an answer."""
    return safe_markdown(clip(text, n))


def _content_text(msg: Any) -> str:
    """The text of a chatbot message as Gradio hands it back (str or a list of parts)."""
    content = msg.get("content") if isinstance(msg, dict) else getattr(msg, "content", "")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Session:
    """One browser session's conversation, kept server-side in a `gr.State` (never shared).

    `chat` is the truth for the chatbot (handlers render it and never trust the browser's copy).
    One answer runs at a time per session, in one answer worker: `busy` holds the `version` of the
    running answer. A question sent meanwhile is queued in `pending` (at most MAX_PENDING, more are
    declined with a hint) and its event returns at once: the running worker answers it next, so a
    tab that fires many questions holds one worker, never all of them. Stop / New chat bump
    `version` and drop the queue; the running answer stops writing at its next event. The
    condition is never held across a yield, so an abandoned answer cannot block the session."""

    MAX_PENDING = 3

    def __init__(self) -> None:
        self.chat: list[dict] = []
        self.history: list[tuple[str, str]] = []  # (question, answer text) for follow-up rewriting
        self.turns: list[dict] = []  # question, answer (Answer), hits, top_k
        self.msg_turn: dict[int, int] = {}  # chat index of a finished assistant message → its turn
        self.last_rated: dict | None = None
        self.version = 0
        self.busy: int | None = None
        self.pending: list[tuple] = []  # questions waiting for the running answer's worker
        self.live_i: int | None = None  # chat index of the answer being streamed
        self.unrendered = False  # messages added while an answer streams, not yet sent by it
        self._cond = threading.Condition()

    def __deepcopy__(self, memo: dict) -> "Session":  # gr.State deep-copies the initial value
        return Session()

    def begin(self, version: int, item: tuple, user_msg: dict | None = None,
              declined_msg: Callable[[int], dict] | None = None) -> str:
        """"run": the caller answers `item` now (and then the queue); "queued": the running
        worker will; "full": declined (`declined_msg(n_waiting)` goes into the chat); "stale":
        Stop / New chat happened. `user_msg` goes into the chat under the same lock, so it always
        precedes its answer; a running worker renders what was added here (see `post`)."""
        with self._cond:
            if self.version != version:
                return "stale"
            if self.busy is None or self.busy != version:  # free, or only an abandoned answer runs
                self.busy = version
                if user_msg is not None:
                    self.chat.append(user_msg)
                return "run"
            if len(self.pending) >= self.MAX_PENDING:
                if declined_msg is not None:
                    self.chat.append(declined_msg(len(self.pending)))
                    self.unrendered = True
                return "full"
            self.pending.append(item)
            if user_msg is not None:
                self.chat.append(user_msg)
            self.unrendered = True
            return "queued"

    def post(self, messages: list[dict]) -> bool:
        """Add messages to the chat. True when an answer is streaming in this session: its worker
        shows them with its next update. Only that worker writes the chatbot while it runs —
        Gradio streams each event's output as diffs against what that event sent last, so a
        second writer would make the browser apply them to the wrong base."""
        with self._cond:
            self.chat.extend(messages)
            if self.busy is not None and self.busy == self.version:
                self.unrendered = True
                return True
            return False

    def next_pending(self, version: int) -> tuple[tuple | None, bool]:
        """(next queued question for the worker running `version`, None), or (None, whether the
        chat got messages since the worker's last update): then the session is free (atomically,
        so a question sent just now is either returned here or runs itself)."""
        with self._cond:
            if self.version == version and self.pending:
                return self.pending.pop(0), False
            if self.busy == version:
                self.busy = None
            unrendered, self.unrendered = self.unrendered, False
            self._cond.notify_all()
            return None, unrendered

    def release(self, version: int) -> None:
        with self._cond:
            if self.busy == version:
                self.busy = None
                if self.version != version:
                    self.pending.clear()
            self._cond.notify_all()

    def interrupt(self, timeout: float = 3.0) -> int:
        """Stop the running answer and drop the queue (returns how many questions it held); give
        the answer a moment to make its last write (woken by `release`, no polling)."""
        with self._cond:
            old, self.version = self.version, self.version + 1
            dropped = len(self.pending)
            self.pending.clear()
            self._cond.wait_for(lambda: self.busy != old, timeout)
            return dropped

    def reset(self) -> None:
        self.interrupt()
        self.chat, self.history, self.turns, self.msg_turn, self.last_rated = [], [], [], {}, None
        self.live_i = None


def build_app(tutor) -> gr.Blocks:
    """The Blocks app. Launch it with `launch()` (which adds the theme, CSS and citation script)."""
    s: Settings = tutor.settings

    def index_status(lang: str) -> str:
        try:
            n = len(tutor.index.chunks)
        except IndexError_:
            return t(lang, "index_none")
        except Exception as e:  # a damaged index must not stop the page from loading
            log.warning("index not usable: %s", e)
            return html.escape(public_message(str(e), s)[:200])
        return t(lang, "index_ok", n=n)

    # a GGUF given as a path is shown by its file name: web users need no local paths
    model_name = Path(s.model).name if ("/" in s.model or "\\" in s.model) and s.backend == "llamacpp" else s.model

    def settings_md(lang: str) -> str:
        return (f"**{t(lang, 'backend')}**: `{s.backend}`  \n**{t(lang, 'model')}**: `{model_name}`  \n"
                f"**{t(lang, 'index')}**: {index_status(lang)}")

    limit = max(s.max_question_chars, 0)  # the question cap the API enforces; the textbox counts to it

    with gr.Blocks(title="用AI学AI · AI tutor", analytics_enabled=False, fill_height=False) as demo:
        sess = gr.State(Session)
        lang_now = gr.State("zh")  # the resolved UI language of this session

        with gr.Sidebar(label="设置 / Settings", open=True, position="left"):
            settings_box = gr.Markdown(settings_md("zh"), elem_id="settings-info")
            topk = gr.Slider(1, 20, value=s.top_k, step=1, label=t("zh", "topk"), elem_id="topk")
            lang_choice = gr.Radio(LANG_CHOICES, value="auto", label=t("zh", "lang"), elem_id="lang-toggle")
            examples_hdr = gr.Markdown(f"**{t('zh', 'examples')}**")
            ex_buttons = [gr.Button(q, size="sm", elem_classes=["example-q"]) for q in EXAMPLES]
            with gr.Accordion(t("zh", "about"), open=False, elem_id="about-corpus") as about_acc:
                about_md = gr.Markdown(t("zh", "about_md"))

        with gr.Tabs(elem_id="mode-tabs") as tabs:
            with gr.Tab("问答 / Ask", id="ask", elem_id="tab-ask"):
                header = gr.Markdown(f"## {t('zh', 'title')}\n{t('zh', 'subtitle')}", elem_id="header")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(show_label=False, elem_id="chatbot", height=560,
                                             buttons=["copy"], feedback_options=("Like", "Dislike"),
                                             sanitize_html=True, render_markdown=True, autoscroll=True,
                                             group_consecutive_messages=True)
                        with gr.Row():
                            msg = gr.Textbox(placeholder=t("zh", "placeholder"), show_label=False, scale=6,
                                             lines=1, max_lines=6, elem_id="question", autofocus=True,
                                             max_length=limit or None)
                            send = gr.Button(t("zh", "send"), variant="primary", scale=1, min_width=80, elem_id="send")
                            stop = gr.Button(t("zh", "stop"), variant="stop", scale=1, min_width=80, elem_id="stop")
                        with gr.Row():
                            comment = gr.Textbox(label=t("zh", "fb_label"), placeholder=t("zh", "fb_placeholder"),
                                                 scale=6, lines=1, elem_id="fb-comment", max_length=FEEDBACK_COMMENT_MAX)
                            fb_send = gr.Button(t("zh", "fb_send"), scale=1, min_width=80, elem_id="fb-send")
                            clear = gr.Button(t("zh", "clear"), scale=1, min_width=80, elem_id="clear")
                        gr.HTML(f'<span class="q-count" data-limit="{limit}">0 / {limit:,}</span>',
                                elem_id="q-counter", visible=bool(limit))
                        fb_status = gr.Markdown("", elem_id="fb-status")
                        with gr.Row(elem_id="next-row"):
                            sugg_btns = [gr.Button("", size="sm", visible=False, elem_id=f"suggest-{i}",
                                                   elem_classes=["suggestion"]) for i in range(3)]
                        with gr.Row(elem_id="level-row"):
                            simpler = gr.Button(t("zh", "simpler"), size="sm", visible=False, elem_id="simpler")
                            deeper = gr.Button(t("zh", "deeper"), size="sm", visible=False, elem_id="deeper")
                    with gr.Column(scale=2, min_width=320):
                        sources_hdr = gr.Markdown(f"### {t('zh', 'sources')}")
                        sources = gr.HTML(render_sources_panel(Session(), "zh"), elem_id="sources-panel",
                                          js_on_load=None)
            mode_tabs(tutor, lang_now, tabs)

        # ---- language ------------------------------------------------------------------------
        relabel_outputs = [lang_now, settings_box, topk, lang_choice, examples_hdr, about_acc, about_md, header, msg,
                           send, stop, comment, fb_send, clear, sources_hdr, sources]

        def relabel(lang: str, sess_v: Session):
            return (lang, settings_md(lang), gr.update(label=t(lang, "topk")), gr.update(label=t(lang, "lang")),
                    f"**{t(lang, 'examples')}**", gr.update(label=t(lang, "about")), t(lang, "about_md"),
                    f"## {t(lang, 'title')}\n{t(lang, 'subtitle')}",
                    gr.update(placeholder=t(lang, "placeholder")), gr.update(value=t(lang, "send")),
                    gr.update(value=t(lang, "stop")),
                    gr.update(label=t(lang, "fb_label"), placeholder=t(lang, "fb_placeholder")),
                    gr.update(value=t(lang, "fb_send")), gr.update(value=t(lang, "clear")),
                    f"### {t(lang, 'sources')}", render_sources_panel(sess_v, lang))

        def on_lang(choice: str, sess_v: Session):
            last_q = sess_v.turns[-1]["question"] if sess_v.turns else ""
            return relabel(ui_lang(choice, last_q), sess_v)

        lang_choice.change(on_lang, [lang_choice, sess], relabel_outputs, queue=False)
        # the index may have been built after the server started
        demo.load(lambda cur: settings_md(cur), [lang_now], settings_box, queue=False)

        # ---- asking --------------------------------------------------------------------------
        def stage_text(lang: str, stage: str) -> str:
            key = f"stage_{stage}"
            return f"_⏳ {t(lang, key) if key in TEXT[lang] else stage}_"

        def answer_turn(sess_v: Session, v0: int, question: str, k: int, lang: str, level: str | None = None):
            """Stream one answer into sess_v.chat; yields (chatbot, textbox, sources, fb_status)."""
            chat = sess_v.chat
            turn_no = len(sess_v.turns)
            answer_i = first_i = len(chat)
            chat.append({"role": "assistant", "content": stage_text(lang, "retrieving")})
            sess_v.live_i = answer_i
            yield chat, gr.update(), gr.update(), gr.update()
            thinking: dict | None = None
            thinking_raw = preview = ""
            live_hits: list[Hit] = []
            stream = tutor.ask_stream(question, history=list(sess_v.history), k=k,
                                      **({"level": level} if level else {}))
            try:
                for ev in stream:
                    if sess_v.version != v0:
                        return  # Stop / New chat: the finally below closes the model stream
                    sources_out: Any = gr.update()
                    if ev.kind == "stage":
                        if preview:
                            continue
                        chat[answer_i] = {"role": "assistant", "content": stage_text(lang, ev.text)}
                    elif ev.kind == "rewritten":
                        chat.insert(answer_i, {"role": "assistant", "content": safe_markdown(ev.text),
                                               "metadata": {"title": t(lang, "rewritten", q=_one_line(ev.text)),
                                                            "status": "done"}})
                        answer_i += 1
                    elif ev.kind == "sources":
                        live_hits = list(ev.hits)
                        live = render_turn_sources(turn_no, question, live_hits, lang)
                        sources_out = render_sources_panel(sess_v, lang, live=live)
                    elif ev.kind == "evidence" and ev.evidence:
                        # evidence first: the learner reads the source while the model writes
                        live = render_turn_sources(turn_no, question, live_hits, lang,
                                                   evidence=list(ev.evidence))
                        sources_out = render_sources_panel(sess_v, lang, live=live)
                        chat.insert(answer_i, {"role": "assistant",
                                               "content": render_evidence(list(ev.evidence), turn_no),
                                               "metadata": {"title": t(lang, "evidence"), "status": "done"}})
                        answer_i += 1
                    elif ev.kind == "reasoning":
                        if thinking is None:
                            thinking = {"role": "assistant", "content": "",
                                        "metadata": {"title": t(lang, "thinking"), "status": "pending"}}
                            chat.insert(answer_i, thinking)
                            answer_i += 1
                        thinking_raw += ev.text
                        thinking["content"] = safe_markdown(thinking_raw)
                    elif ev.kind == "token":
                        preview += ev.text
                        chat[answer_i] = {"role": "assistant", "content": safe_markdown(preview)}
                    elif ev.kind == "done":
                        ans: Answer = ev.answer
                        if ans.reasoning:
                            if thinking is None:
                                thinking = {"role": "assistant", "content": ""}
                                chat.insert(answer_i, thinking)
                                answer_i += 1
                            thinking["content"] = safe_markdown(ans.reasoning)
                            thinking["metadata"] = {"title": t(lang, "thinking"), "status": "done"}
                        elif thinking is not None:  # what streamed as thinking was not reasoning
                            chat.remove(thinking)
                            answer_i -= 1
                        text = render_answer(ans.text, turn_no, len(ans.sources))
                        if not ans.refused and not ans.grounded:
                            text += f"\n\n_{t(lang, 'ungrounded')}_"
                        chat[answer_i] = {"role": "assistant", "content": ANSWER_MARK + text}
                        sess_v.turns.append({"question": question, "answer": ans, "hits": list(ans.sources),
                                             "top_k": k})
                        sess_v.history.append((question, ans.text))
                        for i in range(first_i, answer_i + 1):  # rewrite/thinking/answer messages
                            sess_v.msg_turn[i] = turn_no
                        sources_out = render_sources_panel(sess_v, lang)
                    sess_v.live_i = None if ev.kind == "done" else answer_i
                    yield chat, gr.update(), sources_out, gr.update()
            except Exception as e:  # noqa: BLE001 - shown to the learner as one line
                if sess_v.version != v0:
                    return
                if thinking is not None and (thinking.get("metadata") or {}).get("status") == "pending":
                    thinking["metadata"] = {"title": t(lang, "thinking"), "status": "done"}
                chat[answer_i] = {"role": "assistant", "content": error_message(e, lang, s)}
                sess_v.live_i = None
                yield chat, gr.update(), gr.update(), gr.update()
            finally:
                stream.close()  # stops the model when the answer was abandoned

        def respond(message: str, sess_v: Session, k: float, choice: str, cur_lang: str, level: str | None = None):
            """One question from the browser: answered here (then whatever this session queued
            meanwhile), or queued for the answer already running in this session, or declined.
            While an answer runs, only its worker writes the chatbot (see `Session.post`)."""
            question = (message or "").strip()
            lang = ui_lang(choice, question) if question else cur_lang
            v0 = sess_v.version
            try:  # the API's own check (empty, too long): a hint at once, never queued
                check_question(question, s)
            except ValueError as e:
                hint = {"role": "assistant", "content": error_message(e, lang, s)}
                if not sess_v.post([hint]):
                    yield sess_v.chat, gr.update(), gr.update(), gr.update()
                return
            shown = (t(lang, f"level_{level}") if level else "") + question
            user = {"role": "user", "content": safe_markdown(shown)}
            state = sess_v.begin(v0, (question, int(k), lang, level), user,
                                 lambda n: {"role": "assistant", "content": t(lang, "err_busy", n=n)})
            if state in ("queued", "full"):  # the running answer's worker shows it
                yield gr.update(), "" if state == "queued" else gr.update(), gr.update(), gr.update()
            if state != "run":
                return
            item: tuple | None = (question, int(k), lang, level)
            first = True
            try:
                while item is not None:
                    for out in answer_turn(sess_v, v0, *item):
                        if first:  # clear the question box and the feedback line once
                            out, first = (out[0], "", out[2], ""), False
                        yield out
                    if sess_v.version != v0:
                        return
                    item, unrendered = sess_v.next_pending(v0)
                    if item is None and unrendered:
                        yield sess_v.chat, gr.update(), gr.update(), gr.update()
            finally:
                sess_v.release(v0)

        # the counter under the question box follows every change of its value (typing, sending)
        msg.change(None, [msg], None, js=COUNTER_JS, queue=False, show_progress="hidden")

        ask_inputs = [msg, sess, topk, lang_choice, lang_now]
        ask_outputs = [chatbot, msg, sources, fb_status]
        # "multiple": a question sent while an answer streams is queued (Session.begin), not dropped
        ask_kw = dict(concurrency_limit=ANSWER_WORKERS, concurrency_id="ask", trigger_mode="multiple")
        events = [msg.submit(respond, ask_inputs, ask_outputs, **ask_kw),
                  send.click(respond, ask_inputs, ask_outputs, **ask_kw)]
        for b, q in zip(ex_buttons, EXAMPLES):
            events.append(b.click(lambda q=q: q, None, msg, queue=False).then(respond, ask_inputs, ask_outputs,
                                                                              **ask_kw))

        # language follows the learner in "auto" mode once a question was asked
        def follow_lang(choice: str, sess_v: Session, cur: str):
            if choice != "auto" or not sess_v.turns:
                return (gr.skip(),) * len(relabel_outputs)
            lang = ui_lang(choice, sess_v.turns[-1]["question"])
            if lang == cur:
                return (gr.skip(),) * len(relabel_outputs)
            return relabel(lang, sess_v)

        # what to ask next, and the same question simpler / deeper (buttons under the chat)
        next_outputs = [*sugg_btns, simpler, deeper]

        def show_next(sess_v: Session, cur_lang: str):
            last = sess_v.turns[-1]["answer"] if sess_v.turns else None
            sugg = list(last.suggestions) if last is not None else []
            btns = [gr.update(value=sugg[i], visible=True) if i < len(sugg) else gr.update(visible=False)
                    for i in range(len(sugg_btns))]
            can = last is not None and not last.refused
            return (*btns, gr.update(visible=can, value=t(cur_lang, "simpler")),
                    gr.update(visible=can, value=t(cur_lang, "deeper")))

        for b in sugg_btns:
            events.append(b.click(lambda q: q, [b], msg, queue=False).then(respond, ask_inputs, ask_outputs, **ask_kw))

        def at_level(level: str):
            def run(sess_v: Session, k: float, choice: str, cur_lang: str):
                q = sess_v.turns[-1]["question"] if sess_v.turns else ""
                yield from respond(q, sess_v, k, choice, cur_lang, level)
            return run

        for b, level in ((simpler, "beginner"), (deeper, "advanced")):
            events.append(b.click(at_level(level), [sess, topk, lang_choice, lang_now], ask_outputs, **ask_kw))

        for ev in events:
            ev.then(follow_lang, [lang_choice, sess, lang_now], relabel_outputs, queue=False)
            ev.then(show_next, [sess, lang_now], next_outputs, queue=False)

        def on_stop(sess_v: Session, choice: str, cur_lang: str):
            dropped = sess_v.interrupt()
            chat = sess_v.chat
            asked = [m["content"] for m in chat if m.get("role") == "user" and isinstance(m.get("content"), str)]
            lang = choice if choice in ("zh", "en") else ui_lang(choice, asked[-1]) if asked else cur_lang
            mark = f"_{t(lang, 'stopped')}_"
            for m in chat:
                md = m.get("metadata") or {}
                if md.get("status") == "pending":
                    m["metadata"] = {**md, "status": "done"}
            live = sess_v.live_i  # the unfinished answer, if one was streaming
            sess_v.live_i = None
            if live is not None and live < len(chat) and live not in sess_v.msg_turn:
                text = _content_text(chat[live])
                if not text.startswith("⚠️") and mark not in text:
                    text = "" if text.startswith("_⏳") else text
                    chat[live] = {"role": "assistant", "content": (text + "\n\n" if text else "") + mark}
            # stopped before an answer began, or with questions still queued (now dropped)
            if chat and (dropped or chat[-1].get("role") == "user") and _content_text(chat[-1]) != mark:
                chat.append({"role": "assistant", "content": mark})
            return chat

        # the chat is sent once more after Stop: a stream message of the cancelled answer that was
        # already on its way must not be the last word
        stop.click(on_stop, [sess, lang_choice, lang_now], [chatbot], cancels=events, queue=False).then(
            lambda sess_v: sess_v.chat, [sess], [chatbot], queue=False)

        def on_clear(sess_v: Session, cur_lang: str):
            sess_v.reset()
            return sess_v.chat, render_sources_panel(sess_v, cur_lang), "", ""

        clear.click(on_clear, [sess, lang_now], [chatbot, sources, fb_status, comment], cancels=events,
                    queue=False).then(show_next, [sess, lang_now], next_outputs, queue=False)
        # the chatbot's own trash button: forget the history too
        chatbot.clear(on_clear, [sess, lang_now], [chatbot, sources, fb_status, comment], cancels=events,
                      queue=False)

        # ---- feedback ------------------------------------------------------------------------
        def on_like(data: gr.LikeData, text: str, sess_v: Session, cur_lang: str):
            idx = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            turn_no = sess_v.msg_turn.get(int(idx))
            if turn_no is None:
                return gr.update(), t(cur_lang, "fb_none")
            liked = data.liked
            if liked in (None, "", []):  # the learner took the rating back
                sess_v.last_rated = None
                return gr.update(), t(cur_lang, "fb_removed")
            rating = "up" if liked is True or str(liked).lower() in ("like", "true") else "down"
            fid = uuid.uuid4().hex[:12]
            append_feedback(s.feedback_path, feedback_record(s, sess_v.turns[turn_no], rating, text or "", fid))
            sess_v.last_rated = {"turn": turn_no, "rating": rating, "id": fid}
            return "", t(cur_lang, "fb_thanks_up" if rating == "up" else "fb_thanks_down")

        chatbot.like(on_like, [comment, sess, lang_now], [comment, fb_status], queue=False)

        def on_comment(text: str, sess_v: Session, cur_lang: str):
            if not (text or "").strip():
                return gr.update(), gr.update()
            if not sess_v.turns:
                return gr.update(), t(cur_lang, "fb_none")
            last = sess_v.last_rated or {"turn": len(sess_v.turns) - 1, "rating": None,
                                             "id": uuid.uuid4().hex[:12]}
            append_feedback(s.feedback_path,
                            feedback_record(s, sess_v.turns[last["turn"]], last["rating"], text, last["id"]))
            return "", t(cur_lang, "fb_comment_saved")

        fb_send.click(on_comment, [comment, sess, lang_now], [comment, fb_status], queue=False)
        comment.submit(on_comment, [comment, sess, lang_now], [comment, fb_status], queue=False)

    return demo


def warm_up(tutor) -> None:
    """Load the index, the embedder and the model in the background so the first answer is quick.
    Failures are only logged: the chat shows them when a question needs the missing part."""
    t0 = time.perf_counter()
    try:
        tutor.search("warm up", k=1)
        tutor.llm  # noqa: B018 - loads (llamacpp) or checks (servers) the model
    except Exception as e:  # noqa: BLE001
        log.warning("warm-up stopped: %s", " ".join(str(e).split())[:200])
        return
    log.info("warm-up done in %.1fs", time.perf_counter() - t0)


# answer workers shared by all sessions (each session holds at most one: see Session), and how
# many events may wait for one before new ones are turned away
ANSWER_WORKERS = 4
QUEUE_MAX = 64


def launch(settings: Settings | None = None, host: str | None = None, port: int | None = None,
           share: bool = False, warmup: bool = True, tutor=None, no_auth: bool = False,
           **kwargs: Any) -> gr.Blocks:
    """Serve the UI (blocks until the server stops, unless prevent_thread_lock=True is passed; then
    call `.close()` on the returned Blocks). Starts even without an index: the chat says what to do.
    Beyond loopback (or with a share link) a log-in is required: `settings.auth` ("user:password"),
    unless `no_auth` says the network is trusted (tutor/serving.py)."""
    from .api import Tutor
    from .config import load_settings
    from .serving import check_exposure

    settings = settings or load_settings()
    host = host or settings.host
    creds = check_exposure(host, settings.auth, no_auth, share)
    install_log_redaction(settings)
    tutor = tutor or Tutor(settings, progress=lambda m: log.info("%s", m))
    demo = build_app(tutor)
    if warmup:
        threading.Thread(target=warm_up, args=(tutor,), daemon=True, name="tutor-warmup").start()
    demo.queue(default_concurrency_limit=ANSWER_WORKERS, max_size=QUEUE_MAX)
    demo.launch(server_name=host, server_port=port or settings.port, share=share,
                theme=_theme(), css=CSS, js=CITE_JS, footer_links=["api", "settings"], show_error=False,
                auth=creds, **kwargs)
    return demo
