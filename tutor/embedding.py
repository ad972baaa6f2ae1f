"""The embedder: a sentence-transformers model with the right query/passage prompts.

Loading is lazy and happens once per process; an index records `identity()` so a query is never
embedded with a model other than the one that built the index.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from .config import Settings
from .models import EMBEDDER_PRESETS, ModelError, Progress, resolve_embedder


def _default_prompts(spec: str) -> tuple[str, str]:
    if spec in EMBEDDER_PRESETS:
        return EMBEDDER_PRESETS[spec][1], EMBEDDER_PRESETS[spec][2]
    if "e5" in spec.lower():  # every e5 family model expects these prefixes
        return "query: ", "passage: "
    return "", ""


class Embedder:
    def __init__(self, settings: Settings, progress: Progress | None = None):
        self.spec = settings.embedder
        self.batch_size = settings.embed_batch_size
        q, p = _default_prompts(self.spec)
        self.query_prompt = settings.query_prompt if settings.query_prompt is not None else q
        self.passage_prompt = settings.passage_prompt if settings.passage_prompt is not None else p
        self._home = settings.home
        self._progress = progress
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
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

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        return int(get())

    def identity(self) -> dict:
        return {"spec": self.spec, "dim": self.dim, "query_prompt": self.query_prompt,
                "passage_prompt": self.passage_prompt}

    def _encode(self, texts: list[str], prompt: str, show_progress: bool = False) -> np.ndarray:
        vecs = self.model.encode(texts, prompt=prompt or None, batch_size=self.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=show_progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

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
                self.model.encode(texts, prompt=self.passage_prompt or None, batch_size=bs,
                                  convert_to_numpy=True, show_progress_bar=False)
                rate = n / (time.perf_counter() - t0)
            except RuntimeError:  # CUDA out of memory
                break
            if rate > best_rate:
                best, best_rate = bs, rate
        self.batch_size = best
        return best

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prompt)

    def queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt)


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


def _device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover - torch is a dependency
        return "cpu"
