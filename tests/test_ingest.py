"""tutor.index: incremental ingest, atomic generations, rebuilds — real FAISS, bm25s, embeddings.

One small corpus (three short notes) is ingested once per module; each test copies that corpus
and its index to its own folder and works on the copy.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import tutor.index as index_mod
import tutor.manifest as manifest_mod
from tutor.embedding import Embedder
from tutor.index import (CURRENT, IndexError_, ingest, live_generation, load_index, read_manifest)
from tutor.retrieval import Retriever

REPO = Path(__file__).resolve().parents[1]
QUERY = "残差连接为什么能训练很深的网络"


@pytest.fixture(scope="module")
def built(ingest_notes):
    """(settings, report) of a first ingest of the three notes."""
    return ingest_notes("ingest-base")


@pytest.fixture
def work(tmp_path, built):
    """A private copy of the built corpus + index: (settings, corpus dir, index dir)."""
    s, _ = built
    shutil.copytree(s.corpus_dir, tmp_path / "corpus")
    shutil.copytree(s.index_dir, tmp_path / "index")
    return s.replace(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"), tmp_path / "corpus", \
        tmp_path / "index"


def search_ids(s, embedder, query=QUERY, k=3):
    r = Retriever(load_index(s.index_dir), embedder, s)
    return [h.chunk.id for h in r.search(query, k=k).hits]


def vectors_by_id(index_dir: Path) -> dict[str, np.ndarray]:
    data = load_index(index_dir)
    vecs = data.dense.reconstruct_n(0, data.dense.ntotal)
    return {c.id: vecs[i] for i, c in enumerate(data.chunks)}


def test_first_ingest(built):
    s, report = built
    rels = ["notes/attention.md", "notes/moe.txt", "notes/resnet.md"]
    assert sorted(report.added) == rels and not report.changed and not report.removed
    assert report.rebuild_reason is None and not report.noop
    data = load_index(s.index_dir)
    assert report.chunks == report.embedded == len(data.chunks) == data.dense.ntotal > 3
    assert data.manifest.chunker["chunk_size"] == s.chunk_size
    assert data.manifest.embedder["spec"] == "multilingual-e5-small" and data.manifest.embedder["dim"] == 384
    assert {c.path for c in data.chunks} == set(rels)
    assert sum(f["chunks"] for f in data.manifest.files.values()) == len(data.chunks)
    titles = {c.path: c.title for c in data.chunks}
    assert titles == {"notes/attention.md": "Attention notes", "notes/moe.txt": "moe", "notes/resnet.md": "ResNet 笔记"}
    # vectors are unit-norm rows of the shipped model, aligned with chunks.jsonl
    vecs = data.dense.reconstruct_n(0, data.dense.ntotal)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # no temp leftovers; only the writer lock file
    assert [p.name for p in s.index_dir.iterdir() if p.name.startswith(".")] == [index_mod.LOCK]


def test_search_finds_the_right_note(built, embedder):
    s, _ = built
    data = load_index(s.index_dir)
    hits = Retriever(data, embedder, s).search(QUERY, k=3).hits
    assert hits[0].chunk.path == "notes/resnet.md"
    hits = Retriever(data, embedder, s).search("How does multi-head attention work?", k=3).hits
    assert hits[0].chunk.path == "notes/attention.md"


def test_reingest_is_a_noop(work, base_settings):
    s, _, index_dir = work
    before = (index_dir / CURRENT).read_text()
    gen = live_generation(index_dir)
    stamp = (gen / "manifest.json").stat().st_mtime_ns
    fresh = Embedder(s)  # a no-op must not even load the model
    report = ingest(s, embedder=fresh)
    assert report.noop and report.embedded == 0 and report.unchanged == 3
    assert fresh._model is None
    assert (index_dir / CURRENT).read_text() == before and live_generation(index_dir) == gen
    assert (gen / "manifest.json").stat().st_mtime_ns == stamp
    assert report.chunks == len(load_index(index_dir).chunks)


def test_changed_file_reembeds_only_its_chunks(work, embedder):
    s, corpus, index_dir = work
    old = vectors_by_id(index_dir)
    old_gen = live_generation(index_dir)
    with (corpus / "notes/resnet.md").open("a", encoding="utf-8") as f:
        f.write("\n## 瓶颈结构\n\n更深的 ResNet 用 1×1 卷积组成瓶颈块来减少计算量。\n")
    report = ingest(s, embedder=embedder)
    assert report.changed == ["notes/resnet.md"] and not report.added and not report.removed
    assert report.unchanged == 2 and report.rebuild_reason is None and not report.noop
    data = load_index(index_dir)
    resnet = [c for c in data.chunks if c.path == "notes/resnet.md"]
    assert report.embedded == len(resnet) and report.chunks == len(data.chunks)
    assert any("瓶颈" in c.text for c in resnet)
    new = vectors_by_id(index_dir)
    for c in data.chunks:
        if c.path != "notes/resnet.md":
            assert np.array_equal(new[c.id], old[c.id]), "unchanged files keep their vectors"
    assert live_generation(index_dir) != old_gen and not old_gen.exists()  # old generation cleaned up
    assert read_manifest(index_dir).files["notes/resnet.md"]["chunks"] == len(resnet)
    assert search_ids(s, embedder, "ResNet 的瓶颈块怎么减少计算量", k=1)[0] in {c.id for c in resnet}


def test_removed_file_is_dropped(work, embedder):
    s, corpus, index_dir = work
    (corpus / "notes/moe.txt").unlink()
    report = ingest(s, embedder=embedder)
    assert report.removed == ["notes/moe.txt"] and report.embedded == 0 and not report.noop
    data = load_index(index_dir)
    assert "notes/moe.txt" not in {c.path for c in data.chunks}
    assert "notes/moe.txt" not in data.manifest.files
    hits = Retriever(data, embedder, s).search("混合专家模型的门控网络", k=5).hits
    assert all(h.chunk.path != "notes/moe.txt" for h in hits)


def test_added_file_and_chunk_size_change(work, embedder):
    s, corpus, index_dir = work
    (corpus / "notes/new.md").write_text("# Dropout\n\nDropout randomly zeroes activations.\n", encoding="utf-8")
    report = ingest(s, embedder=embedder)
    assert report.added == ["notes/new.md"] and report.unchanged == 3
    assert report.embedded == len([c for c in load_index(index_dir).chunks if c.path == "notes/new.md"]) == 1
    total = report.chunks

    small = s.replace(chunk_size=60, chunk_overlap=10)
    report = ingest(small, embedder=embedder)
    assert report.rebuild_reason and "chunker settings changed" in report.rebuild_reason
    data = load_index(index_dir)
    assert report.embedded == report.chunks == len(data.chunks) > total
    assert data.manifest.chunker == {"version": manifest_mod.CHUNKER_VERSION, "chunk_size": 60, "chunk_overlap": 10,
                                        "tokenizer": index_mod.TOKENIZER_VERSION}
    assert ingest(small, embedder=embedder).noop
    # a retriever over the old settings' index still loads the new one fine
    assert search_ids(small, embedder, k=1)


def test_rebuild_flag_and_prompt_change(work, embedder):
    s, _, index_dir = work
    n = len(load_index(index_dir).chunks)
    report = ingest(s, embedder=embedder, rebuild=True)
    assert report.rebuild_reason == "--rebuild" and report.embedded == n
    other = Embedder(s.replace(passage_prompt="passage:  "))
    other._model = embedder.model  # same weights, other prompt: no second load
    report = ingest(s.replace(passage_prompt="passage:  "), embedder=other)
    assert report.rebuild_reason and report.rebuild_reason.startswith("embedder changed")
    assert report.embedded == n


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("where", ["embedding", "bm25_save", "pointer_swap"])
def test_failed_ingest_leaves_previous_index_live(work, embedder, monkeypatch, where):
    s, corpus, index_dir = work
    before_pointer = (index_dir / CURRENT).read_text()
    before_gen = live_generation(index_dir)
    before_hits = search_ids(s, embedder)
    before_files = sorted(p.name for p in index_dir.iterdir())

    with (corpus / "notes/resnet.md").open("a", encoding="utf-8") as f:
        f.write("\n## 新的一节\n\n残差网络的又一个细节。\n")
    (corpus / "notes/extra.md").write_text("# Extra\n\nBatch norm normalises activations.\n", encoding="utf-8")

    if where == "embedding":  # dies after the first batch was embedded
        real = embedder.passages

        def passages(texts, on_batch=None):
            def first_then_die(n):
                if on_batch:
                    on_batch(n)
                raise Boom("embedder died")
            return real(texts, on_batch=first_then_die)
        monkeypatch.setattr(embedder, "passages", passages)
    elif where == "bm25_save":  # dies while the new generation is half written
        import bm25s

        def save(self, *a, **k):
            raise Boom("disk full")
        monkeypatch.setattr(bm25s.BM25, "save", save)
    else:  # dies at the commit point: the new generation is complete but CURRENT not swapped
        real_replace = index_mod.os.replace

        def replace(src, dst):
            if Path(dst).name == CURRENT:
                raise Boom("power cut")
            return real_replace(src, dst)
        monkeypatch.setattr(index_mod.os, "replace", replace)

    with pytest.raises(Boom):
        ingest(s, embedder=embedder)
    monkeypatch.undo()

    assert (index_dir / CURRENT).read_text() == before_pointer
    assert live_generation(index_dir) == before_gen
    assert sorted(p.name for p in index_dir.iterdir()) == before_files, "no half-written leftovers"
    assert search_ids(s, embedder) == before_hits
    assert "notes/extra.md" not in {c.path for c in load_index(index_dir).chunks}

    report = ingest(s, embedder=embedder)  # and the next ingest picks the changes up
    assert sorted(report.changed + report.added) == ["notes/extra.md", "notes/resnet.md"]
    assert "notes/extra.md" in {c.path for c in load_index(index_dir).chunks}


def test_load_index_without_an_index(tmp_path):
    with pytest.raises(IndexError_, match=r"run `tutor ingest`"):
        load_index(tmp_path)
    (tmp_path / CURRENT).write_text("gen-missing\n")  # a pointer to nothing
    with pytest.raises(IndexError_, match=r"run `tutor ingest`"):
        load_index(tmp_path)
    with pytest.raises(IndexError_, match=r"run `tutor ingest`"):
        load_index(tmp_path / "does-not-exist")


def test_damaged_index_says_rebuild(work):
    s, _, index_dir = work
    (live_generation(index_dir) / "dense.faiss").write_bytes(b"not faiss")
    with pytest.raises(IndexError_, match=r"--rebuild"):
        load_index(index_dir)


def test_retriever_with_another_embedder_is_refused(built, base_settings, tmp_path):
    s, _ = built
    data = load_index(s.index_dir)
    other = base_settings.replace(embedder=str(tmp_path / "some-other-model"))
    with pytest.raises(IndexError_, match=r"built with embedder 'multilingual-e5-small'.*run `tutor ingest`"):
        Retriever(data, Embedder(other), other)
    prompt = base_settings.replace(query_prompt="Represent this question: ")
    with pytest.raises(IndexError_, match="embedder"):
        Retriever(data, Embedder(prompt), prompt)


def test_bad_files_are_skipped_and_remembered(work, embedder, make_pdf):
    s, corpus, index_dir = work
    make_pdf(corpus / "papers" / "gating.pdf",
             [["Sparse gating picks the top-k experts", "for every token."], ["Load balancing loss."]],
             title="Gating Paper")
    (corpus / "papers" / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    report = ingest(s, embedder=embedder)
    assert report.skipped == ["papers/broken.pdf"]
    assert len(report.warnings) == 1 and report.warnings[0].startswith("broken.pdf: unreadable PDF")
    assert sorted(report.added) == ["papers/broken.pdf", "papers/gating.pdf"]
    data = load_index(index_dir)
    pages = sorted(c.page for c in data.chunks if c.path == "papers/gating.pdf")
    assert pages == [1, 2] and {c.title for c in data.chunks if c.file == "gating.pdf"} == {"Gating Paper"}
    assert report.embedded == 2
    assert data.manifest.skipped == ["papers/broken.pdf"]
    assert "skipped" in data.manifest.files["papers/broken.pdf"]
    again = ingest(s, embedder=embedder)  # unchanged bad file: same warning, still a no-op
    assert again.noop and again.skipped == ["papers/broken.pdf"] and again.warnings == report.warnings


def test_manifest_is_valid_json_with_corpus_version(built):
    s, _ = built
    manifest = json.loads((live_generation(s.index_dir) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == manifest_mod.FORMAT_VERSION
    assert len(manifest["corpus_version"]) == 16 and manifest["chunk_count"] > 0


def test_index_folder_holding_only_its_readme(tmp_path, built, embedder):
    """The repository keeps index/ with a README.md in it: that is still "no index" (with the
    fix), and ingest builds beside it, leaving the README alone."""
    from tutor.api import Tutor
    from tutor.doctor import check_index
    from tutor.errors import IndexMissing

    s, _ = built
    readme = REPO / "index" / "README.md"
    (tmp_path / "index").mkdir()
    shutil.copy(readme, tmp_path / "index" / "README.md")
    s = s.replace(index_dir=tmp_path / "index")
    with pytest.raises(IndexMissing, match=r"no index in .*index/ yet: run `tutor ingest` first"):
        load_index(s.index_dir)
    assert read_manifest(s.index_dir) is None and not check_index(s).ok
    tutor = Tutor(s)
    tutor._embedder = embedder
    with pytest.raises(IndexMissing):
        tutor.search(QUERY)
    report = ingest(s, embedder=embedder)
    assert report.rebuild_reason is None and report.warnings == [] and len(report.added) == 3
    assert (s.index_dir / "README.md").read_bytes() == readme.read_bytes()
    assert tutor.search(QUERY).hits[0].chunk.path == "notes/resnet.md"
    assert ingest(s, embedder=embedder).noop  # the README does not make the index look changed or damaged
    assert check_index(s).ok


def test_bm25_parameters_are_used_at_ingest_and_a_change_rebuilds_only_bm25(work, embedder):
    """k1/b reach the stored BM25 (recorded in the manifest), so a search loads it instead of
    rebuilding BM25 in memory; changing them rebuilds BM25 from the chunks, vectors kept."""
    s, _, _ = work
    before = vectors_by_id(s.index_dir)
    t = s.replace(bm25_k1=1.2, bm25_b=0.6)
    report = ingest(t, embedder=embedder)
    assert report.repaired == ["bm25/"] and report.repair_reason == "BM25 k1/b changed"
    assert report.embedded == 0 and report.rebuild_reason is None and not report.noop
    data = load_index(s.index_dir)
    assert data.manifest.bm25 == {"k1": 1.2, "b": 0.6}
    assert (data.bm25.k1, data.bm25.b) == (1.2, 0.6)
    assert Retriever(data, embedder, t).bm25 is data.bm25  # the stored one, not rebuilt at load
    assert Retriever(data, embedder, s).bm25 is not data.bm25  # other parameters: rebuilt in memory
    after = vectors_by_id(s.index_dir)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in after)
    assert ingest(t, embedder=embedder).noop


def test_pdfs_read_in_worker_processes_index_like_the_sequential_reading(work, embedder, monkeypatch):
    """Past PARALLEL_PDF_BYTES the PDFs' pages are read by worker processes; the chunks are those
    of reading them in-process, and a PDF the workers cannot read is still skipped with its warning."""
    from tutor.chunking import chunk_document
    from tutor.corpus import SourceFile, load_file

    s, corpus, _ = work
    moe = REPO / "corpus/papers/deepseekmoe_2024.pdf"
    shutil.copy(moe, corpus / "moe.pdf")
    (corpus / "broken.pdf").write_bytes(moe.read_bytes()[:50_000])
    calls = []
    real = index_mod.read_pdf_pages

    def spy(paths, workers):
        out = real(paths, workers)
        calls.append((sorted(p.name for p in paths), sorted(p.name for p in out)))
        return out
    monkeypatch.setattr(index_mod, "read_pdf_pages", spy)
    monkeypatch.setattr(index_mod, "PARALLEL_PDF_BYTES", 0)
    monkeypatch.setattr(index_mod.os, "cpu_count", lambda: 2)
    report = ingest(s, embedder=embedder)
    assert calls == [(["broken.pdf", "moe.pdf"], ["moe.pdf"])]
    assert [w for w in report.warnings if w.startswith("broken.pdf:")] and "moe.pdf" in report.added
    docs, _ = load_file(SourceFile(corpus / "moe.pdf", "moe.pdf", ""))
    sequential = [c.text for d in docs for c in chunk_document(d, s.chunk_size, s.chunk_overlap)]
    assert [c.text for c in load_index(s.index_dir).chunks if c.path == "moe.pdf"] == sequential
