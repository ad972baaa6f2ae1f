"""The 测验 / Quiz and 学习路线 / Path tabs of the real app (`python app.py`, SmolLM2-135M, a real
index of two study notes) in headless Chromium: take a quiz question, see the verdict and the
highlighted source; the path lists the notes' roadmap topics in order; progress is stored."""
from __future__ import annotations

import os
import shutil
import sqlite3
from types import SimpleNamespace

import pytest

from tutor.config import Settings

try:
    from ui_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, AppProcess
except ImportError:  # pragma: no cover - when tests/ is imported as a package
    from tests.ui_helpers import CHROMIUM, CHROMIUM_ARGS, ROOT, AppProcess  # type: ignore

pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

NOTES = ("000_f27da241194530d4.txt", "001_e443e33483cd28de.txt")  # AlexNet facts; the study plan 一…五


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from tutor.index import ingest

    tmp = tmp_path_factory.mktemp("ui-modes")
    for name in NOTES:
        dst = tmp / "corpus" / "notes" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "corpus" / "notes" / name, dst)
    shutil.copy(ROOT / "corpus" / "papers.tsv", tmp / "corpus" / "papers.tsv")  # the papers manifest
    home = Settings().replace(home=os.environ.get("TUTOR_HOME")).home
    ingest(Settings().replace(corpus_dir=tmp / "corpus", index_dir=tmp / "index", home=home))
    app = AppProcess({"TUTOR_CORPUS_DIR": str(tmp / "corpus"), "TUTOR_INDEX_DIR": str(tmp / "index"),
                      "TUTOR_DATA": str(tmp / "data"), "TUTOR_BACKEND": "llamacpp", "TUTOR_MODEL": "smollm2-135m",
                      "TUTOR_MAX_TOKENS": "48", "TUTOR_N_THREADS": "1",
                      # template questions: the phrasing model is exercised in test_modes.py
                      "TUTOR_QUIZ_LLM_PHRASING": "0", "TUTOR_FEEDBACK_PATH": str(tmp / "fb.jsonl")},
                     tmp / "app.log")
    try:
        app.wait(180)
        yield SimpleNamespace(url=app.url, data=tmp / "data", log=app.log_path)
    finally:
        app.stop()


@pytest.fixture(scope="module")
def page(app_url):
    from playwright import sync_api

    assert os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver"
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = b.new_context(viewport={"width": 1400, "height": 900}).new_page()
        pg.set_default_timeout(120_000)
        pg.goto(app_url.url, wait_until="load")
        pg.wait_for_selector("#question textarea", state="visible")
        yield pg
        b.close()


@pytest.mark.slow
def test_quiz_tab_grades_and_highlights_the_source(page, app_url):
    page.get_by_role("tab", name="测验 / Quiz").click()
    page.fill("#quiz-topic textarea", "AlexNet")
    page.click("#quiz-start")
    page.wait_for_selector("#quiz-question .quiz-text")
    asked = page.locator("#quiz-question .quiz-text").inner_text().strip()
    assert asked and "1 / 3" in page.locator("#quiz-question").inner_text()

    page.fill("#quiz-answer textarea", "完全不知道")
    page.click("#quiz-check")
    page.wait_for_selector("#quiz-feedback .quiz-verdict")
    assert page.locator("#quiz-feedback .quiz-verdict").get_attribute("data-verdict") == "wrong"
    mark = page.locator("#quiz-feedback .quiz-source mark.quiz-key")
    key = page.locator("#quiz-feedback .quiz-answer-key").inner_text().split(":", 1)[1].strip()
    assert mark.inner_text().strip() == key  # the key is highlighted in the quoted source

    page.fill("#quiz-answer textarea", key)
    page.click("#quiz-check")
    page.wait_for_function("document.querySelector('#quiz-feedback .quiz-verdict')"
                           "?.getAttribute('data-verdict') === 'correct'")
    assert page.locator("#quiz-feedback mark.quiz-key").inner_text().strip() == key
    page.wait_for_selector("#quiz-progress .progress-table")
    assert "AlexNet" in page.locator("#quiz-progress").inner_text()

    page.click("#quiz-next")
    page.wait_for_function("document.querySelector('#quiz-question')?.innerText.includes('2 / 3')")
    assert page.locator("#quiz-question .quiz-text").inner_text().strip() != asked

    con = sqlite3.connect(app_url.data / "progress.db")  # the attempts are in the learner's database
    verdicts = [r[0] for r in con.execute("SELECT verdict FROM attempts ORDER BY id")]
    con.close()
    assert verdicts == ["wrong", "correct"]


@pytest.mark.slow
def test_path_tab_lists_the_roadmap_in_order(page):
    page.get_by_role("tab", name="学习路线 / Path").click()
    page.wait_for_selector("#path-list #path-table")
    rows = page.locator("#path-list tr.path-topic").all_inner_texts()
    titles = [r.split("\t")[1].split("\n")[0].strip() if "\t" in r else r for r in rows]
    expected = ["一、基础准备", "二、深度学习进阶", "三、大模型专项学习", "四、实践项目", "五、持续学习与社区"]
    assert [next((e for e in expected if e in r), None) for r in rows] == expected, titles
    # the papers the plan names link to arXiv
    assert page.locator("#path-list a[href^='https://arxiv.org/abs/']").count() >= 1
    page.locator("#path-pick input").click()
    page.get_by_role("option", name="2. 二、深度学习进阶").click()
    page.click("#path-done")
    page.wait_for_function("[...document.querySelectorAll('#path-list tr.path-topic')]"
                           ".some(r => r.dataset.order === '2' && r.innerText.includes('✓'))")
    page.click("#path-quiz")  # a 3-question quiz on the chosen topic, in the Quiz tab
    page.wait_for_function("document.querySelector('#quiz-topic textarea')?.value.includes('深度学习进阶')")
    page.wait_for_selector("#quiz-question .quiz-text")
