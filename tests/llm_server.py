"""A real OpenAI-compatible server for tests: llama-cpp-python's server on SmolLM2-135M.

Import the fixture into a test module (`from llm_server import llm_server`) or into conftest.
`start_server` also works outside pytest.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tutor.llm.launch import free_port, stop, wait_ready  # free_port: test_llm_openai imports it from here
from tutor.models import resolve_gguf

ALIAS = "smollm2"
N_CTX = 2048
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    model: str     # the served alias
    n_ctx: int
    model_path: Path
    log_path: Path


@contextlib.contextmanager
def start_server(model_path: Path, log_path: Path, alias: str = ALIAS,
                 n_ctx: int = N_CTX) -> Iterator[LlamaServer]:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path),
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
           # by default llama-cpp-python's server aborts a running request when another arrives;
           # vLLM queues and batches them, which is what concurrent evals need
           "--interrupt_requests", "False",
           "--model_alias", alias]
    server = LlamaServer(f"http://127.0.0.1:{port}/v1", alias, n_ctx, model_path, log_path)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, server.base_url, log_path, START_TIMEOUT_S, "llama_cpp", poll_s=0.2)
        yield server
    finally:
        stop(proc, timeout_s=10)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    tmp = tmp_path_factory.mktemp("llm_server")
    path = resolve_gguf("smollm2-135m", tmp)
    with start_server(path, tmp / "server.log") as server:
        yield server
