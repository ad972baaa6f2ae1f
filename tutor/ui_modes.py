"""The web UI's 测验 / Quiz and 学习路线 / Path tabs: thin shells over `Tutor.quiz`, `Tutor.grade`,
`Tutor.learning_path` and the progress database.

Everything shown is rendered here as escaped HTML (source passages are corpus text, answers are
learner text); the answer key is highlighted with <mark> in the quoted source.
"""
from __future__ import annotations

import html
import logging

import gradio as gr

from .records import heading_path
from .ui_text import t as tx  # `t` is a loop variable here

log = logging.getLogger("tutor.ui")


def marked(text: str) -> str:
    """Escaped text with the 【key】 highlight turned into <mark>."""
    return html.escape(text).replace("【", '<mark class="quiz-key">').replace("】", "</mark>")


def render_question(quiz: dict | None, i: int, lang: str) -> str:
    if not quiz:
        return f"<p>{html.escape(tx(lang, 'none'))}</p>"
    qs = quiz["questions"]
    if not qs:
        return f"<p>{html.escape(tx(lang, 'no_questions'))}</p>"
    if i >= len(qs):
        return ""
    q = qs[i]
    src = q["source"]
    where = heading_path(src.get("file", ""), src.get("section", ""))
    return (f'<div class="quiz-q" data-kind="{html.escape(q["kind"])}"><p class="quiz-count">'
            f'{html.escape(tx(lang, "q_of", i=i + 1, n=len(qs)))} · {html.escape(q["kind"])}</p>'
            f'<p class="quiz-text"><b>{html.escape(q["question"])}</b></p>'
            f'<p class="quiz-where"><small>{html.escape(where)}</small></p></div>')


def render_grade(g, q: dict, lang: str) -> str:
    parts = [f'<div class="quiz-verdict" data-verdict="{g.verdict}"><b>{html.escape(tx(lang, g.verdict))}</b> '
             f'<small>(score {g.score:.2f}, {html.escape(g.decided_by)})</small></div>']
    if g.missing and g.verdict != "correct":
        parts.append(f'<p class="quiz-missing">{html.escape(tx(lang, "missing"))}{html.escape("；".join(g.missing))}</p>')
    if g.verdict != "correct":
        parts.append(f'<p class="quiz-answer-key">{html.escape(tx(lang, "key"))}: {html.escape(q["answer_key"])}</p>')
    parts.append(f'<blockquote class="quiz-source">{html.escape(tx(lang, "source"))}: {marked(g.quote)}</blockquote>')
    return "\n".join(parts)


def render_progress(db, lang: str) -> str:
    try:
        topics = db.topics()
    except Exception as e:  # noqa: BLE001 - a damaged database is shown, never replaced
        return f"<p>{html.escape(tx(lang, 'err', e=e))}</p>"
    if not topics:
        return f"<p>{html.escape(tx(lang, 'no_progress'))}</p>"
    head = "".join(f"<th>{html.escape(tx(lang, k))}</th>" for k in ("topic_col", "attempts", "right", "score", "done"))
    rows = "".join(f"<tr><td>{html.escape(t.topic or '—')}</td><td>{t.attempts}</td><td>{t.correct}</td>"
                   f"<td>{t.score:.2f}</td><td>{'✓' if t.done else ''}</td></tr>" for t in topics)
    return f'<h4>{html.escape(tx(lang, "progress"))}</h4><table class="progress-table"><tr>{head}</tr>{rows}</table>'


def render_path(path, lang: str) -> str:
    rows = []
    track = None
    for t in path.topics:
        if t.track != track:
            rows.append(f'<tr class="path-track"><td colspan="5"><b>{html.escape(t.track)}</b></td></tr>')
            track = t.track
        d2l = "<br>".join(html.escape(d["title"]) for d in t.d2l)
        papers = "<br>".join(
            (f'<a href="{html.escape(p["url"])}" target="_blank" rel="noopener noreferrer">{html.escape(p["title"])}</a>'
             if p["url"] else html.escape(p["title"])) for p in t.papers[:6])
        first = t.passages[0]["text"] if t.passages else ""
        snippet = html.escape(" ".join(first.split())[:140])
        rows.append(f'<tr class="path-topic" data-order="{t.order}"><td>{t.order}</td>'
                    f'<td><b>{html.escape(t.title)}</b><br><small>{snippet}</small></td>'
                    f"<td>{d2l}</td><td>{papers}</td><td>{'✓' if t.done else ''}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#", html.escape(tx(lang, "topic_col")), html.escape(tx(lang, "d2l")),
                                             html.escape(tx(lang, "papers")), html.escape(tx(lang, "done"))))
    return (f"<p>{html.escape(tx(lang, 'path_intro'))}</p><table id=\"path-table\" class=\"path-table\">"
            f"<tr>{head}</tr>{''.join(rows)}</table>")


def mode_tabs(tutor, lang_now: gr.State, tabs: gr.Tabs) -> None:
    """Add the Quiz and Path tabs; call inside `with gr.Tabs() as tabs:`."""
    quiz_state = gr.State(None)  # the quiz dict of this session
    pos = gr.State(0)  # index of the current question
    total = gr.State(0.0)  # score so far

    with gr.Tab(tx("zh", "quiz_tab"), id="quiz", elem_id="tab-quiz"):
        with gr.Row():
            topic = gr.Textbox(label=tx("zh", "topic"), scale=5, elem_id="quiz-topic")
            n = gr.Number(value=3, minimum=1, maximum=10, precision=0, label=tx("zh", "n"), scale=1, elem_id="quiz-n")
            seed = gr.Number(value=0, precision=0, label=tx("zh", "seed"), scale=1, elem_id="quiz-seed")
            start = gr.Button(tx("zh", "start"), variant="primary", scale=1, elem_id="quiz-start")
        question = gr.HTML(render_question(None, 0, "zh"), elem_id="quiz-question")
        with gr.Row():
            answer = gr.Textbox(label=tx("zh", "answer"), scale=6, elem_id="quiz-answer")
            check = gr.Button(tx("zh", "check"), variant="primary", scale=1, elem_id="quiz-check")
            nxt = gr.Button(tx("zh", "next"), scale=1, elem_id="quiz-next")
        feedback = gr.HTML("", elem_id="quiz-feedback")
        progress = gr.HTML("", elem_id="quiz-progress")

    with gr.Tab(tx("zh", "path_tab"), id="path", elem_id="tab-path") as path_tab:
        with gr.Row():
            pick = gr.Dropdown(choices=[], label=tx("zh", "pick"), scale=5, elem_id="path-pick")
            done_btn = gr.Button(tx("zh", "mark_done"), scale=1, elem_id="path-done")
            quiz_btn = gr.Button(tx("zh", "quiz_topic"), scale=1, elem_id="path-quiz")
            refresh = gr.Button(tx("zh", "refresh"), scale=1, elem_id="path-refresh")
        path_html = gr.HTML("", elem_id="path-list")

    def new_quiz(topic_v: str, n_v: float, seed_v: float, lang: str):
        try:
            quiz = tutor.quiz((topic_v or "").strip() or None, n=int(n_v or 3), seed=int(seed_v or 0)).to_dict()
        except Exception as e:  # noqa: BLE001 - one line for the learner
            log.warning("quiz failed: %s", e)
            return None, 0, 0.0, f"<p>{html.escape(tx(lang, 'err', e=e))}</p>", "", ""
        return quiz, 0, 0.0, render_question(quiz, 0, lang), "", ""

    start.click(new_quiz, [topic, n, seed, lang_now], [quiz_state, pos, total, question, feedback, answer],
                concurrency_limit=2, concurrency_id="quiz")

    def on_check(quiz: dict | None, i: int, score: float, reply: str, lang: str):
        if not quiz or i >= len(quiz["questions"]):
            return gr.update(), score, gr.update()
        q = quiz["questions"][i]
        try:
            g = tutor.grade(q, reply or "", topic=quiz.get("topic") or "")
        except Exception as e:  # noqa: BLE001
            return f"<p>{html.escape(tx(lang, 'err', e=e))}</p>", score, gr.update()
        return render_grade(g, q, lang), score + g.score, render_progress(tutor.progress_db, lang)

    check.click(on_check, [quiz_state, pos, total, answer, lang_now], [feedback, total, progress])
    answer.submit(on_check, [quiz_state, pos, total, answer, lang_now], [feedback, total, progress])

    def on_next(quiz: dict | None, i: int, score: float, lang: str):
        if not quiz:
            return i, gr.update(), gr.update(), gr.update()
        i += 1
        if i >= len(quiz["questions"]):
            return i, f"<p><b>{html.escape(tx(lang, 'done_quiz', s=score, n=len(quiz['questions'])))}</b></p>", "", ""
        return i, render_question(quiz, i, lang), "", ""

    nxt.click(on_next, [quiz_state, pos, total, lang_now], [pos, question, feedback, answer], queue=False)

    def show_path(lang: str):
        try:
            path = tutor.learning_path(related=False)
        except Exception as e:  # noqa: BLE001 - e.g. no index yet
            return gr.update(), f"<p>{html.escape(tx(lang, 'err', e=e))}</p>"
        choices = [(f"{t.order}. {t.title}", str(t.order)) for t in path.topics]
        return gr.update(choices=choices), render_path(path, lang) + render_progress(tutor.progress_db, lang)

    path_tab.select(show_path, [lang_now], [pick, path_html])
    refresh.click(show_path, [lang_now], [pick, path_html])

    def on_done(order: str | None, lang: str):
        if order:
            path = tutor.learning_path(related=False)
            t = path.find(str(order))
            if t is not None:
                tutor.progress_db.mark_done(t.title)
        return show_path(lang)

    done_btn.click(on_done, [pick, lang_now], [pick, path_html])

    def quiz_topic(order: str | None, lang: str):
        if not order:
            return (gr.skip(),) * 7
        quiz, i, score, qhtml, fb, ans = new_quiz(str(order), 3, 0, lang)
        return gr.Tabs(selected="quiz"), (quiz or {}).get("topic", str(order)), quiz, i, score, qhtml, fb

    quiz_btn.click(quiz_topic, [pick, lang_now], [tabs, topic, quiz_state, pos, total, question, feedback],
                   concurrency_limit=2, concurrency_id="quiz")
