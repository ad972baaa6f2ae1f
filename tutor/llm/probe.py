"""A child-process probe of the in-process llama.cpp path: load the model, decode a few tokens.

llama-cpp-python compiles llama.cpp on install, by default with the build machine's native CPU
flags. A library built for instructions the running CPU (or its virtual machine) cannot execute
— seen with AVX-512/AMX builds — dies with a bare "Segmentation fault" on the first decode, and
takes the CLI, the web UI or an eval run down with it. So the first time a given library build
meets a given model file, the load + a short decode run in a child process; a child killed by a
signal becomes one `ModelCrashed` line naming the cause and the fix. The verdict is cached per
(library build, model file), so later runs pay nothing.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import LLMError, ModelCrashed

CACHE_FILE = "llama-probe.json"
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
REINSTALL = (f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --no-cache-dir --force-reinstall '
             "--no-deps llama-cpp-python==0.3.36")


def library_files() -> list[Path]:
    """The shared libraries of the installed llama-cpp-python (what the build produced)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p for p in root.rglob("*") if p.suffix in (".so", ".dylib", ".dll") or ".so." in p.name)


def build_key(model: Path) -> str:
    """Identity of (library build, model file): paths, sizes and modification times. A reinstall
    rewrites the libraries, so it gets a fresh probe."""
    parts = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in library_files()]
    m = model.resolve()
    parts.append([str(m), m.stat().st_size, m.stat().st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _read_cache(home: Path) -> dict:
    try:
        data = json.loads((home / CACHE_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(home: Path, key: str, entry: dict) -> None:
    data = _read_cache(home)
    data[key] = entry
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{CACHE_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, home / CACHE_FILE)


def crashed(model: Path, sig: int) -> ModelCrashed:
    """The one-line error for a child killed by `sig`: the cause, then " Fix: " and the fix."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    problem = (f"llama.cpp crashed ({name}) while running {model.name}: the installed llama-cpp-python "
               f"was built for CPU instructions this machine cannot run (known case: a native build on an "
               f"AVX-512/AMX CPU).")
    fix = f"{REINSTALL} — then run `tutor doctor`. Or use a server: --backend openai --base-url URL"
    return ModelCrashed(problem, fix, line=f"{problem} Fix: {fix}")


def child_command(model: Path, n_threads: int | None) -> list[str]:
    return [sys.executable, "-m", "tutor.llm.probe", str(model), str(n_threads or 0)]


def probe(model: Path, home: Path, n_threads: int | None = None, timeout_s: float = 300.0,
          command: list[str] | None = None, force: bool = False, progress=None) -> dict:
    """Run (or recall) the probe for `model`; return its cache entry, raise `ModelCrashed` when
    the child died on a signal. `command` replaces the child (tests make it crash for real)."""
    key = build_key(model)
    if not force:
        entry = _read_cache(home).get(key)
        if entry and entry.get("ok"):
            return entry
        if entry and entry.get("signal"):
            raise crashed(model, int(entry["signal"]))
    if progress:  # said only when the child really runs: a cached verdict costs nothing, says nothing
        progress(f"checking that llama.cpp runs {model.name} on this CPU…")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(command or child_command(model, n_threads), capture_output=True, text=True,
                           timeout=timeout_s, env={**os.environ, "PYTHONFAULTHANDLER": ""})
    except subprocess.TimeoutExpired:
        raise LLMError(f"llama.cpp did not load {model.name} within {timeout_s:.0f} s "
                       "(machine overloaded, or a hung native build); try again or run `tutor doctor`") from None
    seconds = round(time.perf_counter() - t0, 2)
    if p.returncode < 0:
        _write_cache(home, key, {"ok": False, "signal": -p.returncode, "model": str(model), "seconds": seconds})
        raise crashed(model, -p.returncode)
    if p.returncode != 0:  # an ordinary failure (a bad file…): report it, don't remember it
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        raise LLMError(f"llama.cpp could not load {model.name}: {last}")
    entry = {"ok": True, "model": str(model), "seconds": seconds, "reply": p.stdout.strip()[-80:]}
    _write_cache(home, key, entry)
    return entry


def _child(model: str, n_threads: int) -> None:
    """In the child: load and decode a few tokens (a crash here kills only the child)."""
    from llama_cpp import Llama

    llm = Llama(model_path=model, n_ctx=256, n_threads=n_threads or os.cpu_count(), verbose=False)
    out = llm.create_completion("1, 2, 3,", max_tokens=4, temperature=0.0)
    print(out["choices"][0]["text"])  # type: ignore[index]


if __name__ == "__main__":
    try:
        _child(sys.argv[1], int(sys.argv[2]))
    except Exception as e:  # noqa: BLE001 - one line for the parent
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
