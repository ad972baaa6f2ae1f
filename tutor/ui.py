"""The Gradio web UI over `Tutor`: streamed chat with clickable citations, a sources panel, feedback.

One `Tutor` serves every browser session; each session's conversation lives in a `gr.State`.
This module lays out the page and wires events to handlers; what the page shows is made by
gradio-free modules: strings (ui_text), markup (ui_render), one answer turn's messages (ui_turn),
the session and its queue (ui_session), feedback storage (feedback). Rendering rules:
- the final `Answer` replaces the streamed preview (tokens are only a preview);
- the model's reasoning goes into a collapsed "thinking" message, never into the answer;
- each valid [n] in an answer becomes a link `#src-<turn>-<n>`; a small page script
  (static/cite.js) catches clicks on those links and shows, opens, highlights and scrolls to card n
  of that turn in the sources panel, where the passage sentences the answer drew on are <mark>ed;
- errors the user can act on (no index, model server down, empty question) become one chat line.
"""
from __future__ import annotations

import html
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no usage pings

import gradio as gr  # noqa: E402

from .config import Settings  # noqa: E402
from .errors import IndexError_  # noqa: E402
from .feedback import FEEDBACK_COMMENT_MAX, append_feedback, feedback_record  # noqa: E402
from .masking import install_log_redaction, public_message  # noqa: E402
from .retrieval import check_question  # noqa: E402
from .ui_modes import mode_tabs  # noqa: E402
from .ui_render import error_message, render_sources_panel, safe_markdown  # noqa: E402
from .ui_session import Session  # noqa: E402
from .ui_text import EXAMPLES, LANG_CHOICES, t, ui_lang  # noqa: E402
from .ui_turn import TurnView, stop_mark  # noqa: E402

log = logging.getLogger("tutor.ui")


def _static(name: str) -> str:
    """A file of tutor/static (package data, so an installed package finds it too)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


CSS = _static("ui.css")
# runs once on page load: citation clicks open source cards; the copy button copies the answer only
CITE_JS = _static("cite.js")
# the counter under the question box ("123 / 2,000"; red past the limit)
COUNTER_JS = _static("counter.js")

# answer workers shared by all sessions (each session holds at most one: see Session), and how
# many events may wait for one before new ones are turned away
ANSWER_WORKERS = 4
QUEUE_MAX = 64


def _theme():
    sys_font = ["ui-sans-serif", "system-ui", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei", "sans-serif"]
    # local fonts only: the app must work offline (no Google Fonts request)
    return gr.themes.Soft(font=sys_font, font_mono=["ui-monospace", "Consolas", "monospace"])


class SettingsInfo:
    """The sidebar's backend / model / index lines (the index may be built after the server starts)."""

    def __init__(self, tutor) -> None:
        self.tutor = tutor
        s: Settings = tutor.settings
        # a GGUF given as a path is shown by its file name: web users need no local paths
        local_gguf = ("/" in s.llm.model or "\\" in s.llm.model) and s.llm.backend == "llamacpp"
        self.model_name = Path(s.llm.model).name if local_gguf else s.llm.model

    def index_status(self, lang: str) -> str:
        try:
            n = len(self.tutor.index.chunks)
        except IndexError_:
            return t(lang, "index_none")
        except Exception as e:  # a damaged index must not stop the page from loading
            log.warning("index not usable: %s", e)
            return html.escape(public_message(str(e), self.tutor.settings)[:200])
        return t(lang, "index_ok", n=n)

    def markdown(self, lang: str) -> str:
        return (f"**{t(lang, 'backend')}**: `{self.tutor.settings.llm.backend}`  \n"
                f"**{t(lang, 'model')}**: `{self.model_name}`  \n**{t(lang, 'index')}**: {self.index_status(lang)}")


@dataclass
class Page:
    """The components the handlers read and write (laid out by `_layout`)."""

    settings_box: gr.Markdown
    topk: gr.Slider
    lang_choice: gr.Radio
    examples_hdr: gr.Markdown
    ex_buttons: list[gr.Button]
    about_acc: gr.Accordion
    about_md: gr.Markdown
    header: gr.Markdown
    chatbot: gr.Chatbot
    msg: gr.Textbox
    send: gr.Button
    stop: gr.Button
    comment: gr.Textbox
    fb_send: gr.Button
    clear: gr.Button
    fb_status: gr.Markdown
    sugg_btns: list[gr.Button]
    simpler: gr.Button
    deeper: gr.Button
    sources_hdr: gr.Markdown
    sources: gr.HTML

    def labels(self, info: SettingsInfo) -> dict[Any, Callable[[str, Session], Any]]:
        """Each language-dependent component → its value or update in a language (see `relabel`)."""
        return {
            self.settings_box: lambda lang, _: info.markdown(lang),
            self.topk: lambda lang, _: gr.update(label=t(lang, "topk")),
            self.lang_choice: lambda lang, _: gr.update(label=t(lang, "lang")),
            self.examples_hdr: lambda lang, _: f"**{t(lang, 'examples')}**",
            self.about_acc: lambda lang, _: gr.update(label=t(lang, "about")),
            self.about_md: lambda lang, _: t(lang, "about_md"),
            self.header: lambda lang, _: f"## {t(lang, 'title')}\n{t(lang, 'subtitle')}",
            self.msg: lambda lang, _: gr.update(placeholder=t(lang, "placeholder")),
            self.send: lambda lang, _: gr.update(value=t(lang, "send")),
            self.stop: lambda lang, _: gr.update(value=t(lang, "stop")),
            self.comment: lambda lang, _: gr.update(label=t(lang, "fb_label"), placeholder=t(lang, "fb_placeholder")),
            self.fb_send: lambda lang, _: gr.update(value=t(lang, "fb_send")),
            self.clear: lambda lang, _: gr.update(value=t(lang, "clear")),
            self.sources_hdr: lambda lang, _: f"### {t(lang, 'sources')}",
            self.sources: lambda lang, sess_v: render_sources_panel(sess_v.turns, lang),
        }


def _layout(tutor, info: SettingsInfo, lang_now: gr.State) -> Page:
    """The sidebar and the Ask / Quiz / Path tabs, labelled in Chinese until a language is known."""
    s: Settings = tutor.settings
    limit = max(s.retrieval.max_question_chars, 0)  # the question cap the API enforces; the textbox counts to it
    with gr.Sidebar(label="设置 / Settings", open=True, position="left"):
        settings_box = gr.Markdown(info.markdown("zh"), elem_id="settings-info")
        topk = gr.Slider(1, 20, value=s.retrieval.top_k, step=1, label=t("zh", "topk"), elem_id="topk")
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
                    sources = gr.HTML(render_sources_panel([], "zh"), elem_id="sources-panel", js_on_load=None)
        mode_tabs(tutor, lang_now, tabs)
    return Page(settings_box, topk, lang_choice, examples_hdr, ex_buttons, about_acc, about_md, header, chatbot,
                msg, send, stop, comment, fb_send, clear, fb_status, sugg_btns, simpler, deeper, sources_hdr,
                sources)


def build_app(tutor) -> gr.Blocks:
    """The Blocks app. Launch it with `launch()` (which adds the theme, CSS and citation script)."""
    info = SettingsInfo(tutor)
    with gr.Blocks(title="用AI学AI · AI tutor", analytics_enabled=False, fill_height=False) as demo:
        sess = gr.State(Session)
        lang_now = gr.State("zh")  # the resolved UI language of this session
        page = _layout(tutor, info, lang_now)
        labels = page.labels(info)
        relabel_outputs = [lang_now, *labels]

        def relabel(lang: str, sess_v: Session) -> dict:
            return {lang_now: lang, **{c: label(lang, sess_v) for c, label in labels.items()}}

        _wire_language(demo, page, info, sess, lang_now, relabel, relabel_outputs)
        events = _wire_asking(tutor, page, sess, lang_now)
        _wire_after_answer(page, sess, lang_now, events, relabel, relabel_outputs)
        _wire_stop_and_clear(page, sess, lang_now, events)
        _wire_feedback(tutor.settings, page, sess, lang_now)
    return demo


def _wire_language(demo: gr.Blocks, page: Page, info: SettingsInfo, sess: gr.State, lang_now: gr.State,
                   relabel: Callable, relabel_outputs: list) -> None:
    """The language toggle relabels the page; the settings lines are refreshed on load."""
    def on_lang(choice: str, sess_v: Session):
        last_q = sess_v.turns[-1]["question"] if sess_v.turns else ""
        return relabel(ui_lang(choice, last_q), sess_v)

    page.lang_choice.change(on_lang, [page.lang_choice, sess], relabel_outputs, queue=False)
    # the index may have been built after the server started
    demo.load(info.markdown, [lang_now], page.settings_box, queue=False)


def _wire_asking(tutor, page: Page, sess: gr.State, lang_now: gr.State) -> list:
    """Questions from the box, Send, the examples, the suggestions and the level buttons; returns
    the answering events (Stop and New chat cancel them)."""
    s: Settings = tutor.settings

    def answer_turn(sess_v: Session, v0: int, question: str, k: int, lang: str, level: str | None = None):
        """Stream one answer into sess_v.chat; yields (chatbot, textbox, sources, fb_status)."""
        view = TurnView.start(sess_v.chat, len(sess_v.turns), question, lang)
        sess_v.live = view
        yield view.chat, gr.update(), gr.update(), gr.update()
        stream = tutor.ask_stream(question, history=list(sess_v.history), k=k,
                                  **({"level": level} if level else {}))
        try:
            for ev in stream:
                if sess_v.version != v0:
                    return  # Stop / New chat: the finally below closes the model stream
                if view.skips(ev):
                    continue
                live = view.apply(ev)
                sources_out: Any = gr.update()
                if ev.kind == "done":
                    sess_v.record(view, ev.answer, k)
                    sources_out = render_sources_panel(sess_v.turns, lang)
                elif live is not None:
                    sources_out = render_sources_panel(sess_v.turns, lang, live=live)
                sess_v.live = None if ev.kind == "done" else view
                yield view.chat, gr.update(), sources_out, gr.update()
        except Exception as e:  # noqa: BLE001 - shown to the learner as one line
            if sess_v.version != v0:
                return
            view.fail(error_message(e, lang, s))
            sess_v.live = None
            yield view.chat, gr.update(), gr.update(), gr.update()
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

    def at_level(level: str):
        def run(sess_v: Session, k: float, choice: str, cur_lang: str):
            q = sess_v.turns[-1]["question"] if sess_v.turns else ""
            yield from respond(q, sess_v, k, choice, cur_lang, level)
        return run

    # the counter under the question box follows every change of its value (typing, sending)
    page.msg.change(None, [page.msg], None, js=COUNTER_JS, queue=False, show_progress="hidden")

    ask_inputs = [page.msg, sess, page.topk, page.lang_choice, lang_now]
    ask_outputs = [page.chatbot, page.msg, page.sources, page.fb_status]
    # "multiple": a question sent while an answer streams is queued (Session.begin), not dropped
    ask_kw = dict(concurrency_limit=ANSWER_WORKERS, concurrency_id="ask", trigger_mode="multiple")
    events = [page.msg.submit(respond, ask_inputs, ask_outputs, **ask_kw),
              page.send.click(respond, ask_inputs, ask_outputs, **ask_kw)]
    for b, q in zip(page.ex_buttons, EXAMPLES):
        events.append(b.click(lambda q=q: q, None, page.msg, queue=False).then(respond, ask_inputs, ask_outputs,
                                                                               **ask_kw))
    for b in page.sugg_btns:
        events.append(b.click(lambda q: q, [b], page.msg, queue=False).then(respond, ask_inputs, ask_outputs,
                                                                            **ask_kw))
    for b, level in ((page.simpler, "beginner"), (page.deeper, "advanced")):
        events.append(b.click(at_level(level), [sess, page.topk, page.lang_choice, lang_now], ask_outputs,
                              **ask_kw))
    return events


def _next_buttons(page: Page) -> tuple[Callable, list]:
    """The handler showing what to ask next and the same question simpler / deeper (buttons under
    the chat, hidden until an answer offers them), with its outputs."""
    def show_next(sess_v: Session, cur_lang: str):
        last = sess_v.turns[-1]["answer"] if sess_v.turns else None
        sugg = list(last.suggestions) if last is not None else []
        btns = [gr.update(value=sugg[i], visible=True) if i < len(sugg) else gr.update(visible=False)
                for i in range(len(page.sugg_btns))]
        can = last is not None and not last.refused
        return (*btns, gr.update(visible=can, value=t(cur_lang, "simpler")),
                gr.update(visible=can, value=t(cur_lang, "deeper")))

    return show_next, [*page.sugg_btns, page.simpler, page.deeper]


def _wire_after_answer(page: Page, sess: gr.State, lang_now: gr.State, events: list, relabel: Callable,
                       relabel_outputs: list) -> None:
    """After each answer the language follows the learner ("auto"), and the next buttons update."""
    def follow_lang(choice: str, sess_v: Session, cur: str):
        if choice != "auto" or not sess_v.turns:
            return gr.skip()
        lang = ui_lang(choice, sess_v.turns[-1]["question"])
        return gr.skip() if lang == cur else relabel(lang, sess_v)

    show_next, next_outputs = _next_buttons(page)
    for ev in events:
        ev.then(follow_lang, [page.lang_choice, sess, lang_now], relabel_outputs, queue=False)
        ev.then(show_next, [sess, lang_now], next_outputs, queue=False)


def _wire_stop_and_clear(page: Page, sess: gr.State, lang_now: gr.State, events: list) -> None:
    """Stop ends the running answer (and drops queued questions); New chat forgets the history."""
    def on_stop(sess_v: Session, choice: str, cur_lang: str):
        dropped = sess_v.interrupt()
        asked = [m["content"] for m in sess_v.chat if m.get("role") == "user" and isinstance(m.get("content"), str)]
        lang = choice if choice in ("zh", "en") else ui_lang(choice, asked[-1]) if asked else cur_lang
        sess_v.mark_stopped(stop_mark(lang), dropped)
        return sess_v.chat

    # the chat is sent once more after Stop: a stream message of the cancelled answer that was
    # already on its way must not be the last word
    page.stop.click(on_stop, [sess, page.lang_choice, lang_now], [page.chatbot], cancels=events, queue=False).then(
        lambda sess_v: sess_v.chat, [sess], [page.chatbot], queue=False)

    def on_clear(sess_v: Session, cur_lang: str):
        sess_v.reset()
        return sess_v.chat, render_sources_panel(sess_v.turns, cur_lang), "", ""

    cleared = [page.chatbot, page.sources, page.fb_status, page.comment]
    show_next, next_outputs = _next_buttons(page)
    page.clear.click(on_clear, [sess, lang_now], cleared, cancels=events, queue=False).then(
        show_next, [sess, lang_now], next_outputs, queue=False)
    # the chatbot's own trash button: forget the history too
    page.chatbot.clear(on_clear, [sess, lang_now], cleared, cancels=events, queue=False)


def _wire_feedback(s: Settings, page: Page, sess: gr.State, lang_now: gr.State) -> None:
    """👍 / 👎 under an answer and the comment box: one feedback line each (tutor/feedback.py)."""
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
        append_feedback(s.ui.feedback_path, feedback_record(s, sess_v.turns[turn_no], rating, text or "", fid))
        sess_v.last_rated = {"turn": turn_no, "rating": rating, "id": fid}
        return "", t(cur_lang, "fb_thanks_up" if rating == "up" else "fb_thanks_down")

    def on_comment(text: str, sess_v: Session, cur_lang: str):
        if not (text or "").strip():
            return gr.update(), gr.update()
        if not sess_v.turns:
            return gr.update(), t(cur_lang, "fb_none")
        last = sess_v.last_rated or {"turn": len(sess_v.turns) - 1, "rating": None, "id": uuid.uuid4().hex[:12]}
        append_feedback(s.ui.feedback_path,
                        feedback_record(s, sess_v.turns[last["turn"]], last["rating"], text, last["id"]))
        return "", t(cur_lang, "fb_comment_saved")

    page.chatbot.like(on_like, [page.comment, sess, lang_now], [page.comment, page.fb_status], queue=False)
    page.fb_send.click(on_comment, [page.comment, sess, lang_now], [page.comment, page.fb_status], queue=False)
    page.comment.submit(on_comment, [page.comment, sess, lang_now], [page.comment, page.fb_status], queue=False)


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
    host = host or settings.ui.host
    creds = check_exposure(host, settings.ui.auth, no_auth, share)
    install_log_redaction(settings)
    tutor = tutor or Tutor(settings, progress=lambda m: log.info("%s", m))
    demo = build_app(tutor)
    if warmup:
        threading.Thread(target=warm_up, args=(tutor,), daemon=True, name="tutor-warmup").start()
    demo.queue(default_concurrency_limit=ANSWER_WORKERS, max_size=QUEUE_MAX)
    demo.launch(server_name=host, server_port=port or settings.ui.port, share=share,
                theme=_theme(), css=CSS, js=CITE_JS, footer_links=["api", "settings"], show_error=False,
                auth=creds, **kwargs)
    return demo
