"""The embedder's backends: the exports for OpenVINO and ONNX Runtime int8 (made once into the model
cache, verified, reused), their agreement with torch, the backend as part of the index identity,
length-sorted batches and the query LRU cache."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tutor import onnx_backend
from tutor.config import Settings, load_settings
from tutor.embedding import Embedder
from tutor.index import IndexError_, ingest, load_index
from tutor.manifest import Manifest
from tutor.models import ModelError, _source_fingerprint, export_folder, resolve_embedder, resolve_exported_embedder
from tutor.retrieval import Retriever

TEXTS = ["残差连接让深层网络可以训练。", "How does multi-head attention work?",
         "DeepSeekMoE 把专家切得更细，并隔离出共享专家。", "Dropout randomly zeroes activations during training."]


@pytest.fixture(scope="module")
def torch_embedder(base_settings):
    e = Embedder(base_settings.replace(embed_backend="torch"))
    e.model
    return e


@pytest.fixture(scope="module")
def onnx_embedder(base_settings):
    """ONNX Runtime int8 (exported into the model cache on first use: ~1 min once per machine)."""
    e = Embedder(base_settings.replace(embed_backend="onnx"))
    e.model
    return e


SETTING = {"openvino": "openvino", "openvino-bf16": "openvino-bf16", "openvino-int8": "openvino-int8",
           "onnx-int8": "onnx"}  # id → setting


@pytest.fixture(scope="module")
def bf16_embedder(base_settings, embedder):
    """OpenVINO in bf16: the same export as the default backend, computed at another precision."""
    e = Embedder(base_settings.replace(embed_backend="openvino-bf16"))
    e.model
    return e


@pytest.fixture(scope="module")
def ov_int8_embedder(base_settings):
    """OpenVINO static int8 (NNCF, calibrated on the shipped texts: ~2 min once per machine)."""
    e = Embedder(base_settings.replace(embed_backend="openvino-int8"))
    e.model
    return e


@pytest.fixture(params=list(SETTING))
def exported(request, embedder, bf16_embedder, ov_int8_embedder, onnx_embedder):
    return {"openvino": embedder, "openvino-bf16": bf16_embedder, "openvino-int8": ov_int8_embedder,
            "onnx-int8": onnx_embedder}[request.param]


def test_default_backend_is_openvino(embedder):
    assert Settings().embed_backend == "openvino"
    assert embedder.backend == "openvino" and embedder.identity()["backend"] == "openvino"
    assert load_settings(env={"TUTOR_EMBED_BACKEND": "torch"}).embed_backend == "torch"


def test_unknown_backend_is_one_clear_error(base_settings):
    with pytest.raises(ModelError, match=r"unknown embed_backend 'tensorrt' \(expected one of openvino, openvino-bf16, openvino-int8, onnx, torch\)"):
        Embedder(base_settings.replace(embed_backend="tensorrt"))


def test_export_is_verified_and_reused(exported, base_settings):
    """The embedder exported the model into the cache (first run) or found it there; a second
    resolve reuses it without touching torch."""
    home = Path(base_settings.home)
    target, precision = onnx_backend.RUNTIMES[exported.backend]
    folder = export_folder("multilingual-e5-small", home, target)
    meta = json.loads((folder / onnx_backend.META).read_text(encoding="utf-8"))
    assert meta["target"] == target and meta["export_version"] == onnx_backend.EXPORT_VERSION
    assert meta["verify"][exported.backend] >= onnx_backend.MIN_COSINE[precision]
    assert meta["source"] == _source_fingerprint(resolve_embedder("multilingual-e5-small", home))
    weights = sorted(folder.glob("model.*"))
    assert sum(w.stat().st_size for w in weights) < 250_000_000  # int8 / fp16: far below the 470 MB fp32
    stamps = [w.stat().st_mtime_ns for w in weights]

    def no_torch(_location):
        raise AssertionError("an up-to-date export must not load the torch model")
    again = resolve_exported_embedder("multilingual-e5-small", home, target, no_torch, ("query: ", "passage: "))
    assert again == folder and [w.stat().st_mtime_ns for w in weights] == stamps
    assert not list(folder.parent.glob(".tmp-export-*"))


def test_verify_rejects_an_export_that_disagrees(onnx_embedder, torch_embedder):
    """verify() is the gate an export must pass: it measures, and refuses below the threshold."""
    prompts = ("query: ", "passage: ")
    worst = onnx_backend.verify(torch_embedder.model, onnx_embedder.model, prompts, 0.99, texts=TEXTS)
    assert 0.99 <= worst < 1.0
    with pytest.raises(onnx_backend.ExportError, match=r"disagrees with the torch model: cosine 0\.9\d+ < 1\.01"):
        onnx_backend.verify(torch_embedder.model, onnx_embedder.model, prompts, 1.01, texts=TEXTS)


def test_exported_backends_agree_with_torch(exported, torch_embedder):
    floor = {"openvino": 0.9999, "openvino-bf16": 0.999, "openvino-int8": 0.99, "onnx-int8": 0.99}[exported.backend]
    for vecs, ref in ((exported.passages(TEXTS), torch_embedder.passages(TEXTS)),
                      (exported.queries(TEXTS), torch_embedder.queries(TEXTS))):
        assert vecs.shape == ref.shape == (len(TEXTS), 384) and vecs.dtype == np.float32
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
        cos = np.sum(vecs * ref, axis=1)
        assert cos.min() >= floor, cos


def test_length_sorted_batches_keep_the_input_order(exported, base_settings):
    """Texts are embedded longest first in batches; the result rows still follow the input."""
    texts = ["短", TEXTS[2] * 3, TEXTS[1], TEXTS[0] * 2, "x y"]
    small = Embedder(base_settings.replace(embed_backend=SETTING[exported.backend], embed_batch_size=2))
    small._model = exported.model
    seen: list[int] = []
    batched = small.passages(texts, on_batch=seen.append)
    assert seen == [2, 2, 1]
    alone = np.vstack([exported.passages([t]) for t in texts])
    cos = batched @ alone.T
    assert (np.argmax(cos, axis=1) == np.arange(len(texts))).all()
    # padding and batch-wide int8 / bf16 scales move a vector a little: close, not bit-equal
    assert np.diag(cos).min() > 0.99


def test_query_cache_returns_identical_vectors_and_batches_the_misses(embedder, base_settings, monkeypatch):
    e = Embedder(base_settings)
    e._model = embedder.model
    calls: list[list[str]] = []
    real = e._forward

    def forward(texts):
        calls.append(list(texts))
        return real(texts)
    monkeypatch.setattr(e, "_forward", forward)
    first = e.queries(["什么是残差连接？", "What is a residual connection?", "残差 residual"])
    assert len(calls) == 1 and len(calls[0]) == 3  # a question's variants: one batch
    again = e.queries(["What is a residual connection?", "什么是残差连接？", "什么是残差连接？"])
    assert len(calls) == 1  # all from the cache
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    assert np.array_equal(again[2], first[0])
    again[0][:] = 0  # the caller's copy: the cache is not changed through it
    assert np.array_equal(e.queries(["What is a residual connection?"])[0], first[1])
    e.queries(["什么是残差连接？", "a new question"])
    assert calls[-1] == ["query: a new question"]  # only the miss goes through the model


def test_query_cache_is_bounded(embedder, base_settings, monkeypatch):
    import tutor.embedding as emb

    monkeypatch.setattr(emb, "VECTOR_CACHE_SIZE", 3)
    e = Embedder(base_settings)
    e._model = embedder.model
    for q in ["q1", "q2", "q3", "q4"]:
        e.queries([q])
    assert list(e._cache) == [("query", "q2"), ("query", "q3"), ("query", "q4")]


def test_unit_vectors_are_passage_vectors_and_cached_apart_from_queries(embedder, base_settings, monkeypatch):
    e = Embedder(base_settings)
    e._model = embedder.model
    text = "残差连接把输入直接加到输出上：y = F(x) + x。"
    unit = e.units([text])
    assert np.allclose(unit[0], e.passages([text])[0], atol=1e-5)  # the passage prompt, not the query one
    assert not np.allclose(unit[0], e.queries([text])[0], atol=1e-3)  # same text, other side: its own entry
    calls: list[list[str]] = []
    monkeypatch.setattr(e, "_forward", lambda texts: calls.append(texts) or embedder.model.encode(texts))
    assert np.array_equal(e.units([text])[0], unit[0]) and not calls


def test_why_rebuild_knows_the_backend():
    prompts = SimpleNamespace(query="query: ", passage="passage: ")
    onnx = SimpleNamespace(spec="multilingual-e5-small", backend="openvino", prompts=prompts)
    torch = SimpleNamespace(spec="multilingual-e5-small", backend="torch", prompts=prompts)
    chunker = {"version": 1}
    recorded = {"spec": "multilingual-e5-small", "dim": 384, "query_prompt": "query: ", "passage_prompt": "passage: "}
    old_torch = Manifest(embedder=recorded, chunker=chunker)  # written before backends were recorded
    assert old_torch.why_rebuild(torch, chunker) is None
    assert old_torch.why_rebuild(onnx, chunker) == \
        "embedder backend changed (torch → openvino): re-embedding the whole corpus"
    assert Manifest(embedder={**recorded, "backend": "openvino"}, chunker=chunker).why_rebuild(onnx, chunker) is None
    assert old_torch.why_rebuild(torch, {"version": 2}).startswith("chunker settings changed")
    other_prompts = SimpleNamespace(spec="multilingual-e5-small", backend="torch",
                                    prompts=SimpleNamespace(query="", passage=""))
    assert "prompts" in old_torch.why_rebuild(other_prompts, chunker)


def test_backend_switch_is_refused_then_rebuilt(tmp_path, base_settings, embedder, torch_embedder, write_notes):
    corpus = write_notes(tmp_path / "corpus")
    s = base_settings.replace(corpus_dir=corpus, index_dir=tmp_path / "index")
    ingest(s, embedder=embedder)
    assert load_index(s.index_dir).manifest.embedder["backend"] == "openvino"

    t = s.replace(embed_backend="torch")
    with pytest.raises(IndexError_, match=r"backend 'openvino' but backend 'torch' is configured: run `tutor ingest`"):
        Retriever(load_index(s.index_dir), torch_embedder, t)
    report = ingest(t, embedder=torch_embedder)  # same files, other backend: not a no-op
    assert report.rebuild_reason == "embedder backend changed (openvino → torch): re-embedding the whole corpus"
    assert report.embedded == report.chunks > 0
    data = load_index(s.index_dir)
    assert data.manifest.embedder["backend"] == "torch"
    hits = Retriever(data, torch_embedder, t).search("残差连接为什么能训练很深的网络", k=1).hits
    assert hits[0].chunk.path == "notes/resnet.md"
    assert ingest(t, embedder=torch_embedder).noop


@pytest.mark.slow
def test_damaged_export_is_exported_again(tmp_path, base_settings, embedder):
    """A cached export whose model file is garbage: the embedder exports the model again (the
    whole OpenVINO export: ~30 s on 2 cores) and then embeds like the good one."""
    home = tmp_path / "home"
    good_st = resolve_embedder("multilingual-e5-small", Path(base_settings.home))
    # the torch folder as hard links: same files, same fingerprint, no 470 MB copy
    shutil.copytree(good_st, home / "models" / good_st.name, copy_function=os.link)
    good = export_folder("multilingual-e5-small", Path(base_settings.home), "openvino")
    bad = export_folder("multilingual-e5-small", home, "openvino")
    shutil.copytree(good, bad, ignore=shutil.ignore_patterns("model.xml"))
    (bad / "model.xml").write_text("<net>not a graph", encoding="utf-8")

    messages: list[str] = []
    e = Embedder(base_settings.replace(home=home), progress=messages.append)
    vecs = e.passages(TEXTS)
    assert any("exporting it again" in m for m in messages), messages
    assert any(m.startswith("openvino export verified") for m in messages), messages
    assert (bad / "model.bin").stat().st_size > 100_000_000 and (bad / "model.xml").stat().st_size > 100_000
    assert not list(bad.parent.glob(".tmp-export-*")) and not list(bad.parent.glob(".old-*"))
    assert np.sum(vecs * embedder.passages(TEXTS), axis=1).min() > 0.999


def test_calibration_texts_are_shipped_with_both_prompts():
    """The int8 export measures activation ranges on package data: zh and en, queries and passages,
    each with its own prompt — present in an installed package, not only in a checkout."""
    texts = onnx_backend.calibration_texts(("query: ", "passage: "))
    assert len(texts) >= 200
    queries = [t for t in texts if t.startswith("query: ")]
    passages = [t for t in texts if t.startswith("passage: ")]
    assert len(queries) >= 50 and len(passages) >= 150 and len(queries) + len(passages) == len(texts)
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in passages)
    assert any(re.fullmatch(r"passage: [\x00-\x7f]+", t) for t in passages)
