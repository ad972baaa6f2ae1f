"""Start an OpenAI-compatible server as a child process and wait until it answers.

`tutor bench --serve MODEL` and the llama-index baseline need a server they own: `vllm serve` for
a hub model on a GPU box, llama-cpp-python's server for a GGUF (a preset name or a path) on CPU.
Both speak the same API, so everything after start-up is the same code.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from ..errors import LLMError
from .params import is_reasoning_model


@dataclass(frozen=True)
class Served:
    base_url: str  # ends in /v1
    model: str  # the name to send as `model`
    kind: str  # "vllm" | "llama.cpp"
    log_path: Path
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_gguf(model: str) -> bool:
    """A preset the tutor ships as GGUF, or a .gguf file: llama.cpp serves it, not vLLM."""
    from ..models import GGUF_PRESETS

    return model in GGUF_PRESETS or model.lower().endswith(".gguf")


def llama_cpp_command(gguf: Path, port: int, alias: str, n_ctx: int, n_threads: int | None) -> list[str]:
    # --interrupt_requests False: by default this server aborts a running request when the next
    # arrives; vLLM queues and batches them, and concurrent runs need the same
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", str(n_ctx), "--interrupt_requests", "False",
            "--n_threads", str(n_threads or os.cpu_count() or 1), "--model_alias", alias]


def vllm_command(model: str, port: int, n_ctx: int | None, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """`vllm serve`, with DeepSeek's reasoning parser for R1 distills unless `extra` names one."""
    cmd = ["vllm", "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    if n_ctx:
        cmd += ["--max-model-len", str(n_ctx)]
    if is_reasoning_model(model) and not any(a.startswith("--reasoning-parser") for a in extra):
        cmd += ["--reasoning-parser", "deepseek_r1"]
    return cmd + list(extra)


@contextlib.contextmanager
def serve(model: str, log_path: Path, *, home: Path, n_ctx: int = 4096, n_threads: int | None = None,
          extra: list[str] | tuple[str, ...] = (), timeout_s: float | None = None) -> Iterator[Served]:
    """Run a server for `model` until the block ends. GGUF → llama.cpp (served under the name
    `model`, with `n_ctx`), anything else → `vllm serve` (which loads from the hub or a local folder, so its
    start-up may take minutes: the default wait is 15 min there, 2 min for llama.cpp)."""
    port = free_port()
    if is_gguf(model):
        from ..models import resolve_gguf

        alias = Path(model).stem if model.lower().endswith(".gguf") else model
        cmd, kind = llama_cpp_command(resolve_gguf(model, home), port, alias, n_ctx, n_threads), "llama.cpp"
        wait = timeout_s or 120.0
    else:
        # no --max-model-len: the model's own (32k for Qwen2.5) leaves room for R1's long
        # thinking; vLLM's paged KV cache does not reserve it per sequence
        alias, kind, wait = model, "vllm", timeout_s or 900.0
        cmd = vllm_command(model, port, None, extra)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise LLMError(f"cannot start {cmd[0]!r}: not installed (pip install -e '.[gpu]' for vLLM)") from None
    served = Served(f"http://127.0.0.1:{port}/v1", alias, kind, log_path, proc.pid)
    try:
        wait_ready(proc, served.base_url, log_path, wait, served.kind)
        yield served
    finally:
        stop(proc)


def wait_ready(proc: subprocess.Popen, base_url: str, log_path: Path, timeout_s: float, kind: str,
               poll_s: float = 0.5) -> None:
    """Until the server started as `proc` lists its models; LLMError (with its log's tail) when
    it exits first or does not answer within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise LLMError(f"the {kind} server exited with code {proc.returncode}: {tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise LLMError(f"the {kind} server did not answer within {timeout_s:g} s; see {log_path}")
        time.sleep(poll_s)


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Terminate a server process, killing it when it does not exit within `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
