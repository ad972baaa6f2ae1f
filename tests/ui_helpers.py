"""Helpers for the web UI tests: a scripted fake `Tutor`, the app in a subprocess, a headless browser.

The browser is the system Chromium (Debian: `apt-get install chromium chromium-driver`), driven by
Python playwright without `playwright install`.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import httpx

from tutor.answer import Event
from tutor.config import Settings
from tutor.credits import Credits
from tutor.llm.base import LLMError
from tutor.retrieval import check_question
from tutor.records import Answer, Chunk, Citation, Hit

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("TUTOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text() if log else ''}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {timeout:.0f}s:\n{log.read_text() if log else ''}")


class AppProcess:
    """`python app.py` on a free loopback port, configured through TUTOR_* env vars."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        full_env = {**os.environ, **env, "TUTOR_PORT": str(self.port), "GRADIO_ANALYTICS_ENABLED": "False",
                    "PYTHONUNBUFFERED": "1"}
        self._log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 120.0) -> "AppProcess":
        wait_http(self.url, timeout, self.proc, self.log_path)
        return self

    def wait_log(self, text: str, timeout: float = 180.0) -> float:
        """Wait until `text` appears in the app's log; return the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if text in self.log_path.read_text(encoding="utf-8", errors="replace"):
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        raise TimeoutError(f"{text!r} not in the app log after {timeout:.0f}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


# ---- a scripted Tutor: deterministic, instant, no models ----------------------------------------

def _chunk(i: int, title: str, section: str, text: str, path: str) -> Chunk:
    return Chunk(id=f"c{i}", file=Path(path).name, path=path, title=title, section=section, page=None,
                 start=0, end=len(text), text=text)


FAKE_HITS = tuple(replace(h, credit=Credits(ROOT / "corpus").of(h.chunk.path)) for h in (  # as Tutor.search does
    Hit(_chunk(1, "ResNet 笔记", "残差连接",
               "ResNet 通过残差连接 y = F(x) + x 让 152 层的网络也能训练。梯度可以沿着恒等映射直接回传。",
               "notes/resnet.md"), 0.9, 1),
    Hit(_chunk(2, "残差网络（ResNet）", "7.6.2 残差块",
               "Residual blocks add the input to the output of two convolution layers. "
               "This lets very deep networks train well.", "d2l-zh/chapter_convolutional-modern/resnet.md"),
        0.8, 2),
    Hit(_chunk(3, "Attention notes", "Scaled dot-product attention",
               "Attention weights are softmax(QK^T / sqrt(d_k)).", "notes/attention.md"), 0.5, 3),
))
FAKE_REASONING = "Let me check source one. HIDDEN-REASONING-42"
HOSTILE_TEXT = ("Residual connections help [1]. ![pixel]({url}/pixel.png) Read more at [the official guide]"
                "({url}/phish) or {url}/bare or www.example.invalid/x or mail admin@example.invalid. "
                "<img src=\"{url}/raw.png\"> <a href=\"{url}/raw-link\">raw link</a> "
                "[ref-link][r]\n\n[r]: {url}/ref\n\n> [q]: {url}/quoted.png\n\n![q]\n\nsee [q]\n\n- [l]: {url}/listed\n\n"
                "1. > [n]: {url}/nested.png\n\n![n]\n\nsee [l]\n\nCode stays code: `<b>bold</b>` [1].")
FAKE_TEXT = ("Residual connections let very deep networks train [1]. "
             "A residual block adds the input to the output of two convolution layers [2].")


class FakeTutor:
    """Yields the events `Tutor.ask_stream` yields, from a script chosen by the question."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.index = SimpleNamespace(chunks=[h.chunk for h in FAKE_HITS])
        self.calls: list[dict] = []
        self.stopped = threading.Event()
        self.hostile_url = "http://127.0.0.1:9"  # where the "hostile" script points its images and links

    def ask_stream(self, question: str, history=None, k=None, lang=None) -> Iterator[Event]:
        self.calls.append({"question": question, "history": list(history or []), "k": k})
        q = check_question(question, self.settings)  # the real API's one check (empty, too long)
        if history and len(q) <= 12:  # a follow-up: rewritten as in `tutor chat`
            yield Event("stage", text="rewriting")
            yield Event("rewritten", text=f"{history[-1][0]} {q}")
        yield Event("stage", text="retrieving")
        if "server down" in q:
            raise LLMError("cannot reach the LLM server at http://127.0.0.1:9/v1 — is it running?")
        yield Event("sources", hits=FAKE_HITS)
        yield Event("stage", text="thinking")
        if "slow" in q or "medium" in q:  # 20 s or 1.5 s of tokens
            words = [f"w{i} " for i in range(400 if "slow" in q else 30)]
            try:
                for w in words:
                    time.sleep(0.05)
                    yield Event("token", text=w)
            finally:
                self.stopped.set()
            yield Event("done", answer=Answer(question=q, text="".join(words).strip(), refused=False, citations=[],
                                              sources=list(FAKE_HITS), model="fake-model", backend="fake",
                                              grounded=False))
            return
        if "hostile" in q:  # model output (or corpus text it copies) that tries to reach other hosts
            text = HOSTILE_TEXT.format(url=self.hostile_url)
            for piece in text.split(" "):
                time.sleep(0.01)
                yield Event("token", text=piece + " ")
            yield Event("done", answer=Answer(
                question=q, text=text, refused=False, citations=[Citation(1, FAKE_HITS[0].chunk)],
                sources=list(FAKE_HITS), reasoning=f"see ![r]({self.hostile_url}/reasoning.png)", model="fake-model",
                backend="fake"))
            return
        for piece in FAKE_REASONING.split(" "):
            time.sleep(0.02)
            yield Event("reasoning", text=piece + " ")
        for piece in FAKE_TEXT.split(" "):
            time.sleep(0.03)
            yield Event("token", text=piece + " ")
        yield Event("done", answer=Answer(
            question=q, text=FAKE_TEXT, refused=False,
            citations=[Citation(1, FAKE_HITS[0].chunk), Citation(2, FAKE_HITS[1].chunk)], sources=list(FAKE_HITS),
            reasoning=FAKE_REASONING, model="fake-model", backend="fake", timings_ms={"total": 1.0}))
