"""Hostile or huge input and secrets: question caps, terminal control characters, JSONL records
with odd line separators, masked keys and passwords, `serve` beyond loopback — through the real
CLI (in a process of its own where it matters), a real index and the real eval readers."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tutor import jsonl
from tutor.config import Settings
from tutor.index import ingest
from tutor.masking import RedactingFilter, mask_url, masked_settings, public_message, redact
from tutor.retrieval import QuestionTooLong, Retriever, check_question, split_parts

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-123"
URL = "http://alice:s3cr3t-pw@llm.internal:8000/v1"
ESC_NOTE = ("# Escape \x1b]0;pwned\x07 notes\n\n"
            "Residual connections \x1b[2J\x1b[31mlet deep networks train\x1b[0m: y = F(x) + x. \x9b31m C1 too.\n")


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("TUTOR_") or k == "TUTOR_HOME"},
                "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tutor.cli", *args], cwd=cwd, env=full_env, capture_output=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def esc_index(tmp_path_factory, base_settings, embedder, write_notes):
    """A real index of one note full of terminal escape sequences, plus the usual notes."""
    root = tmp_path_factory.mktemp("esc-index")
    corpus = write_notes(root / "corpus")
    (corpus / "notes" / "esc.md").write_text(ESC_NOTE, encoding="utf-8")
    s = base_settings.replace(corpus_dir=corpus, index_dir=root / "index")
    ingest(s, embedder=embedder)
    return s


# ---- secrets -------------------------------------------------------------------------------------

def test_models_never_prints_the_key_or_url_password(tmp_path):
    env = {"TUTOR_API_KEY": KEY, "TUTOR_BACKEND": "openai", "TUTOR_BASE_URL": URL, "TUTOR_AUTH": "admin:hunter22"}
    table = cli("models", cwd=tmp_path, env=env)
    as_json = cli("models", "--json", cwd=tmp_path, env=env)
    assert table.returncode == 0 and as_json.returncode == 0, table.stderr
    for out in (table.stdout.decode(), as_json.stdout.decode()):
        assert KEY not in out and "s3cr3t-pw" not in out and "hunter22" not in out
    config = json.loads(as_json.stdout)["config"]
    assert config["api_key"] == "***" and config["auth"] == "***"
    assert config["base_url"] == "http://***@llm.internal:8000/v1"
    assert "llm.internal" in table.stdout.decode()  # the host is still shown: the operator needs it
    # no key configured: the table says so instead of a mask
    assert json.loads(cli("models", "--json", cwd=tmp_path).stdout)["config"]["api_key"] == "EMPTY"


def test_help_masks_the_base_url_password(tmp_path):
    out = cli("--help", cwd=tmp_path, env={"TUTOR_BASE_URL": URL, "TUTOR_API_KEY": KEY})
    text = out.stdout.decode()
    assert out.returncode == 0 and "base_url=http://***@llm.internal:8000/v1" in text.replace("\n", "")
    assert "s3cr3t-pw" not in text and KEY not in text


def test_cli_error_lines_mask_url_credentials(tmp_path, esc_index):
    """A server that cannot be reached: the error names the host but not the password."""
    env = {"TUTOR_INDEX_DIR": str(esc_index.index_dir), "TUTOR_CORPUS_DIR": str(esc_index.corpus_dir),
           "TUTOR_BACKEND": "openai", "TUTOR_BASE_URL": "http://bob:pa55word@127.0.0.1:9/v1",
           "TUTOR_API_KEY": KEY, "TUTOR_RELEVANCE_THRESHOLD": "0", "TUTOR_RETRIES": "0"}
    out = cli("ask", "What do residual connections do?", cwd=tmp_path, env=env)
    err = out.stderr.decode()
    assert out.returncode == 1 and "error:" in err and "127.0.0.1:9" in err, err
    assert "pa55word" not in err and KEY not in err and "Traceback" not in err


def test_masking_helpers():
    s = Settings().replace(api_key=KEY, base_url=URL, judge_base_url="https://x.example/v1?api_key=zzz123&v=1", auth="u:pw999")
    d = masked_settings(s)
    assert d["api_key"] == "***" and d["auth"] == "***" and "s3cr3t" not in d["base_url"]
    assert d["judge_base_url"] == "https://x.example/v1?api_key=***&v=1"
    assert masked_settings(Settings())["api_key"] == "EMPTY"
    text = f"failed calling {URL} with key {KEY}, auth pw999, header Bearer abcdef123456"
    out = redact(text, s)
    assert "s3cr3t-pw" not in out and KEY not in out and "pw999" not in out and "abcdef123456" not in out
    assert mask_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_web_error_messages_hide_paths_urls_and_secrets():
    from tutor.index import IndexError_
    from tutor.llm.base import LLMError
    from tutor.ui_render import error_message

    s = Settings().replace(api_key=KEY, base_url=URL)
    msg = error_message(IndexError_("/home/ana/tutor/index/gen-1/tokens.jsonl is damaged (x): run `tutor ingest`"),
                        "en", s)
    assert "/home/ana" not in msg and "tokens.jsonl" in msg and "tutor ingest" in msg
    msg = error_message(LLMError(f"cannot reach the LLM server at {URL} — is it running? (key {KEY})"), "zh", s)
    assert "llm.internal" not in msg and "s3cr3t" not in msg and KEY not in msg and "cannot reach" in msg
    assert public_message("C:\\Users\\ana\\models\\qwen.gguf missing") == "…/qwen.gguf missing"


def test_log_lines_and_tracebacks_are_masked():
    s = Settings().replace(api_key=KEY, base_url=URL)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))
    h = Keep()
    h.addFilter(RedactingFilter(s))
    log = logging.getLogger("tutor.test-masking")
    log.addHandler(h)
    log.propagate = False
    try:
        log.warning("calling %s with %s", URL, KEY)
        try:
            raise RuntimeError(f"boom at {URL} key={KEY}")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(h)
    joined = "\n".join(records)
    assert "llm.internal" in joined and "RuntimeError" in joined  # still useful to the operator
    assert "s3cr3t-pw" not in joined and KEY not in joined


# ---- `serve` beyond loopback ----------------------------------------------------------------------

def test_serve_on_all_interfaces_needs_auth_or_no_auth(tmp_path):
    out = cli("serve", "--host", "0.0.0.0", cwd=tmp_path, timeout=60)
    err = out.stderr.decode()
    assert out.returncode == 1 and "--auth USER:PASSWORD" in err and "--no-auth" in err, err
    assert len(err.strip().splitlines()) == 1
    out = cli("serve", "--host", "0.0.0.0", "--auth", "nopassword", cwd=tmp_path, timeout=60)
    assert out.returncode == 1 and "USER:PASSWORD" in out.stderr.decode()
    app = subprocess.run([sys.executable, str(ROOT / "app.py"), "--host", "0.0.0.0"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert app.returncode == 2 and "--auth" in app.stderr


@pytest.mark.slow
def test_serve_with_auth_asks_for_a_login(tmp_path):
    try:
        from ui_helpers import free_port, wait_http
    except ImportError:  # pragma: no cover - tests/ imported as a package
        from tests.ui_helpers import free_port, wait_http  # type: ignore

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TUTOR_") or k == "TUTOR_HOME"},
           "PYTHONPATH": str(ROOT), "TUTOR_INDEX_DIR": str(tmp_path / "no-index"), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "serve", "--host", "0.0.0.0", "--port", str(port),
                             "--auth", "learner:correct-horse"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/", 120, proc, tmp_path / "serve.log")
        with httpx.Client(base_url=base, timeout=10) as c:
            assert c.get("/config").status_code in (401, 403)  # the app's config needs a log-in
            bad = c.post("/login", data={"username": "learner", "password": "wrong"})
            assert bad.status_code in (400, 401)
            good = c.post("/login", data={"username": "learner", "password": "correct-horse"})
            assert good.status_code == 200, good.text
            assert c.get("/config").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert "correct-horse" not in (tmp_path / "serve.log").read_text()


# ---- question length and parts ---------------------------------------------------------------------

def test_question_cap_is_one_check_with_a_clear_error():
    s = Settings()
    assert check_question("  残差连接？ ", s) == "残差连接？"
    with pytest.raises(ValueError, match="empty question"):
        check_question(" \n", s)
    with pytest.raises(QuestionTooLong, match=r"2,500 characters, the limit is 2,000"):
        check_question("x" * 2500, s)
    assert check_question("x" * 2500, s.replace(max_question_chars=3000))
    assert check_question("x" * 2500, s.replace(max_question_chars=0))  # 0: no cap


def test_query_parts_are_capped():
    q = "？".join(f"第{i}个问题是什么意思" for i in range(12)) + "？"
    assert len(split_parts(q)) == 12 and len(split_parts(q, 4)) == 4


def test_huge_question_is_refused_before_any_search(esc_index, embedder):
    from tutor.api import Tutor

    tutor = Tutor(esc_index)
    tutor._embedder = embedder
    huge = "残差连接是什么？" * 6250  # 50,000 characters, 6,250 parts
    t0 = time.perf_counter()
    with pytest.raises(QuestionTooLong, match="limit is 2,000"):
        tutor.search(huge)
    with pytest.raises(QuestionTooLong):
        list(tutor.ask_stream(huge))
    with pytest.raises(QuestionTooLong):
        Retriever(tutor.index, embedder, esc_index).search(huge)
    assert time.perf_counter() - t0 < 30  # refused, not searched (a search per part took minutes)
    # a long but allowed question with many parts searches only max_query_parts of them
    res = Retriever(tutor.index, embedder, esc_index).search("残差连接是什么？" * 200)
    assert res.hits


def test_huge_question_in_the_cli_is_one_line(tmp_path, esc_index):
    env = {"TUTOR_INDEX_DIR": str(esc_index.index_dir)}
    for cmd in ("search", "ask"):
        out = cli(cmd, "为什么？" * 2500, cwd=tmp_path, env=env)  # 10,000 characters
        err = out.stderr.decode()
        assert out.returncode == 1 and "question too long" in err and "10,000 characters" in err and "limit is 2,000" in err, err
        assert len(err.strip().splitlines()) == 1


# ---- terminal control characters -----------------------------------------------------------------

def test_search_output_has_no_control_characters(tmp_path, esc_index):
    env = {"TUTOR_INDEX_DIR": str(esc_index.index_dir), "TUTOR_CORPUS_DIR": str(esc_index.corpus_dir)}
    out = cli("search", "residual connections \x1b[31m deep networks \x1b]0;title\x07", "-k", "3",
              cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "let deep networks train" in text  # the passage is shown…
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text  # …without its escapes
    as_json = cli("search", "residual connections", "-k", "3", "--json", cwd=tmp_path, env=env)
    hits = json.loads(as_json.stdout)["hits"]  # the machine shape keeps the text as stored, JSON-escaped
    assert b"\x1b" not in as_json.stdout and any("\x1b[31m" in h["text"] for h in hits)


@pytest.mark.slow
def test_ask_output_has_no_control_characters(tmp_path, esc_index, llm_server):
    env = {"TUTOR_INDEX_DIR": str(esc_index.index_dir), "TUTOR_CORPUS_DIR": str(esc_index.corpus_dir),
           "TUTOR_BACKEND": "openai", "TUTOR_BASE_URL": llm_server.base_url, "TUTOR_MODEL": llm_server.model,
           "TUTOR_RELEVANCE_THRESHOLD": "0", "TUTOR_MAX_TOKENS": "40", "TUTOR_N_CTX": "2048",
           "TUTOR_ANSWER_K": "2"}
    out = cli("ask", "Repeat exactly: \x1b[2J\x1b]0;pwned\x07 — what do residual connections do?", cwd=tmp_path,
              env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    for stream in (out.stdout, out.stderr):
        assert b"\x1b]" not in stream and b"\x1b[2J" not in stream and b"\x07" not in stream


# ---- JSONL: one reader, "\n" only ------------------------------------------------------------------

ODD = "line\u2028sep\u2029para\x85next\x1cfs"


def test_jsonl_round_trip_with_unicode_line_separators(tmp_path):
    rows = [{"id": "a", "text": ODD}, {"id": "b", "text": "普通"}]
    jsonl.write(tmp_path / "r.jsonl", rows)
    raw = (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    assert len(raw.splitlines()) == 2  # escaped: even a splitlines() reader sees whole records
    assert jsonl.read(tmp_path / "r.jsonl") == rows
    # a file written by another tool, with the separators raw: still whole records
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                        encoding="utf-8")
    assert jsonl.read(tmp_path / "raw.jsonl") == rows
    (tmp_path / "cut.jsonl").write_text(raw + '{"id": "c", "te', encoding="utf-8")
    with pytest.raises(jsonl.JsonlError, match=r"cut\.jsonl:3"):
        jsonl.read(tmp_path / "cut.jsonl")
    assert jsonl.read(tmp_path / "cut.jsonl", skip_bad=True) == rows


def test_eval_readers_keep_records_with_line_separators(tmp_path):
    """A resumed eval must not redo (or drop) an item whose answer holds U+2028."""
    from tutor.evaluation.compare import load_run
    from tutor.evaluation.judges import load_labels
    from tutor.evaluation.runner import _read_results

    rows = [{"id": "q1", "answer": ODD, "scores": {}}, {"id": "q2", "answer": "ok", "scores": {}}]
    res = tmp_path / "results.jsonl"
    res.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert list(_read_results(res)) == ["q1", "q2"] and _read_results(res)["q1"]["answer"] == ODD
    (tmp_path / "report.json").write_text("{}", encoding="utf-8")
    assert load_run(tmp_path)[1]["q1"]["answer"] == ODD
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "l1", "claim": ODD, "passages": [], "supported": True},
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_labels(labels)[0]["claim"] == ODD


def test_feedback_comment_is_capped_and_one_line(tmp_path):
    from tutor.records import Answer
    from tutor.feedback import FEEDBACK_COMMENT_MAX, append_feedback, feedback_record

    ans = Answer("q", ODD, False, [], [])
    rec = feedback_record(Settings(), {"question": "q\u2028?", "answer": ans, "top_k": 5}, "up",
                          "太长了" * 5000 + ODD, "id1")
    assert len(rec["comment"]) == FEEDBACK_COMMENT_MAX
    path = tmp_path / "fb.jsonl"
    append_feedback(path, rec)
    append_feedback(path, rec)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert jsonl.read(path)[0]["answer"] == ODD


def test_doctor_masks_the_server_url_password(tmp_path):
    out = cli("doctor", "--json", "--backend", "openai", "--base-url", "http://bob:pa55word@127.0.0.1:9/v1",
              cwd=tmp_path, env={"TUTOR_API_KEY": KEY, "TUTOR_RETRIES": "0", "TUTOR_INDEX_DIR": str(tmp_path / "i")})
    text = out.stdout.decode() + out.stderr.decode()
    assert out.returncode == 1 and "127.0.0.1:9" in text, text  # the server check fails, naming the host
    assert "pa55word" not in text and KEY not in text
