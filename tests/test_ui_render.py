"""The chat's event → messages rendering (tutor/ui_turn.py, tutor/ui_session.py), without a browser."""
from __future__ import annotations

import re
from pathlib import Path

from tutor.records import Answer, Chunk, Citation, Event, Evidence, Hit
from tutor.ui_render import render_answer, render_sources_panel
from tutor.ui_session import Session
from tutor.ui_text import t
from tutor.ui_turn import ANSWER_MARK, TurnView, stage_text, stop_mark

TEXT = "Residual connections let deep networks train. The gradient flows through the identity."


def _hit(i: int, text: str = TEXT) -> Hit:
    chunk = Chunk(id=f"c{i}", file="resnet.md", path=f"notes/resnet{i}.md", title="ResNet", section="s",
                  page=None, start=0, end=len(text), text=text)
    return Hit(chunk, 1.0 - i / 10, i)


HITS = (_hit(1), _hit(2))


def _answer(text: str = "Deep networks train with residual connections [1].", reasoning: str = "",
            grounded: bool = True) -> Answer:
    return Answer(question="q", text=text, refused=False, citations=[Citation(1, HITS[0].chunk)],
                  sources=list(HITS), reasoning=reasoning, grounded=grounded)


def _view(chat: list[dict] | None = None, lang: str = "en") -> TurnView:
    chat = chat if chat is not None else [{"role": "user", "content": "q"}]
    return TurnView.start(chat, 0, "q", lang)


def test_a_turn_starts_with_the_searching_placeholder() -> None:
    view = _view()
    assert view.chat[-1] == {"role": "assistant", "content": stage_text("en", "retrieving")}
    assert (view.first, view.answer_i, view.state) == (1, 1, "stage")
    assert stage_text("en", "retrieving") == f"_⏳ {t('en', 'stage_retrieving')}_"
    assert stage_text("en", "unknown-stage") == "_⏳ unknown-stage_"


def test_events_become_evidence_thinking_and_the_final_answer_in_order() -> None:
    view = _view()
    assert view.apply(Event("stage", text="thinking")) is None
    assert view.chat[1]["content"] == stage_text("en", "thinking")
    live = view.apply(Event("sources", hits=HITS))
    assert live is not None and 'id="src-0-1"' in live and view.hits == list(HITS)
    unit = Evidence(n=1, hit=HITS[0], start=0, end=45, text=TEXT[:45], kind="sentence")
    live = view.apply(Event("evidence", evidence=(unit,)))
    assert live is not None and '<mark class="evidence">' in live
    assert view.chat[1]["metadata"]["title"] == t("en", "evidence")
    assert 'href="#src-0-1"' in view.chat[1]["content"]
    view.apply(Event("reasoning", text="Let me "))
    view.apply(Event("reasoning", text="check."))
    assert view.chat[2]["metadata"] == {"title": t("en", "thinking"), "status": "pending"}
    assert view.chat[2]["content"] == "Let me check."
    view.apply(Event("token", text="Deep "))
    assert view.state == "preview" and view.chat[3]["content"] == "Deep "
    assert view.skips(Event("stage", text="thinking"))  # the preview stays
    view.apply(Event("done", answer=_answer(reasoning="Let me check.")))
    assert view.state == "done" and not view.live
    assert [m["role"] for m in view.chat] == ["user", "assistant", "assistant", "assistant"]
    assert view.chat[2]["metadata"]["status"] == "done"
    final = view.chat[3]["content"]
    assert final.startswith(ANSWER_MARK) and '<a class="cite" href="#src-0-1"' in final
    assert list(view.messages()) == [1, 2, 3]


def test_a_rewritten_follow_up_goes_before_the_answer() -> None:
    view = _view()
    view.apply(Event("rewritten", text="What is ResNet? and why"))
    assert view.chat[1]["metadata"]["title"] == t("en", "rewritten", q="What is ResNet? and why")
    assert view.answer_i == 2 and view.chat[2]["content"] == stage_text("en", "retrieving")


def test_streamed_thinking_that_was_not_reasoning_is_removed() -> None:
    view = _view()
    view.apply(Event("reasoning", text="maybe"))
    view.apply(Event("done", answer=_answer()))
    assert len(view.chat) == 2 and view.chat[1]["content"].startswith(ANSWER_MARK)
    assert list(view.messages()) == [1]


def test_an_answer_without_citations_to_check_says_so() -> None:
    view = _view()
    view.apply(Event("done", answer=_answer(text="No citation here.", grounded=False)))
    assert view.chat[1]["content"].endswith(f"_{t('en', 'ungrounded')}_")


def test_stop_marks_the_placeholder_or_the_streamed_text_once() -> None:
    mark = stop_mark("en")
    view = _view()
    view.stop(mark)
    assert view.chat[1]["content"] == mark and view.state == "stopped"
    view = _view()
    view.apply(Event("token", text="Deep nets"))
    view.stop(mark)
    view.stop(mark)
    assert view.chat[1]["content"] == "Deep nets\n\n" + mark


def test_stop_leaves_a_finished_answer_or_an_error_alone() -> None:
    view = _view()
    view.apply(Event("done", answer=_answer()))
    done = dict(view.chat[1])
    view.stop(stop_mark("en"))
    assert view.chat[1] == done
    view = _view()
    view.apply(Event("reasoning", text="hmm"))
    view.fail("⚠️ The model failed: boom")
    assert view.chat[1]["metadata"]["status"] == "done"
    assert view.chat[2]["content"] == "⚠️ The model failed: boom" and view.state == "error"
    view.stop(stop_mark("en"))
    assert view.chat[2]["content"] == "⚠️ The model failed: boom"


def test_the_session_records_finished_turns_and_marks_a_stop() -> None:
    sess = Session()
    sess.chat.append({"role": "user", "content": "q"})
    view = TurnView.start(sess.chat, 0, "q", "en")
    view.apply(Event("reasoning", text="thinking"))
    view.apply(Event("done", answer=_answer(reasoning="thinking")))
    sess.record(view, _answer(), 5)
    assert sess.msg_turn == {1: 0, 2: 0} and sess.history == [("q", _answer().text)]
    assert sess.turns[0]["top_k"] == 5 and 'id="turn-0"' in render_sources_panel(sess.turns, "en")
    # Stop right after the next question was sent: "stopped" follows it, once
    sess.chat.append({"role": "user", "content": "next"})
    sess.mark_stopped(stop_mark("en"), dropped=0)
    sess.mark_stopped(stop_mark("en"), dropped=1)
    assert [m["content"] for m in sess.chat[-2:]] == ["next", stop_mark("en")]


def test_stop_while_streaming_closes_pending_thinking_and_marks_the_answer() -> None:
    sess = Session()
    sess.chat.append({"role": "user", "content": "q"})
    sess.live = TurnView.start(sess.chat, 0, "q", "en")
    sess.live.apply(Event("reasoning", text="thinking"))
    sess.live.apply(Event("token", text="Deep"))
    sess.mark_stopped(stop_mark("en"), dropped=0)
    assert sess.live is None
    assert sess.chat[1]["metadata"]["status"] == "done"
    assert sess.chat[2]["content"] == "Deep\n\n" + stop_mark("en") and len(sess.chat) == 3


def test_static_page_files_are_package_data() -> None:
    import tomllib

    from tutor import ui

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert set(data["tutor"]) >= {"static/*.css", "static/*.js"}
    assert ".src-card" in ui.CSS and "tutorShowSource" in ui.CITE_JS and "q-counter" in ui.COUNTER_JS


def test_rendered_markdown_loads_and_links_nothing_outside_the_page():
    """Model text through `render_answer`, then through a CommonMark renderer (markdown-it, which
    Gradio's stack installs): no src or href leaves the page — reference definitions hidden in a
    quote, a list item or both included."""
    from markdown_it import MarkdownIt

    from ui_helpers import HOSTILE_TEXT

    html = MarkdownIt("commonmark").render(render_answer(HOSTILE_TEXT.format(url="//tracker.invalid"), 0, 2))
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and all(link.startswith("#src-0-") for link in links), links
    assert "[q]:" in html and "[l]:" in html  # the definitions are shown as text, defining nothing
