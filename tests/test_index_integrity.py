"""Damaged and concurrently written indexes, odd file names and encodings — on real indexes on
disk (real FAISS, bm25s, the shipped embedder), with real processes for the lock and the CLI.

Each test works on its own copy of one small built index (three short notes).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tutor.index as index_mod
import tutor.manifest as manifest_mod
from tutor.index import CURRENT, IndexError_, ingest, live_generation, load_index, read_manifest
from tutor.retrieval import Retriever

ROOT = Path(__file__).resolve().parents[1]
QUERY = "残差连接为什么能训练很深的网络"


@pytest.fixture(scope="module")
def built(ingest_notes):
    return ingest_notes("integrity-base")[0]


@pytest.fixture
def work(tmp_path, built):
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    shutil.copytree(built.index_dir, tmp_path / "index")
    return built.replace(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def search_ids(s, embedder, query=QUERY, k=3):
    return [h.chunk.id for h in Retriever(load_index(s.index_dir), embedder, s).search(query, k=k).hits]


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m tutor.cli ARGS` in a real process (this checkout's tutor first on the path)."""
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("TUTOR_") or k == "TUTOR_HOME"},
                "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "tutor.cli", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


# ---- an unreadable manifest ----------------------------------------------------------------------

def test_unreadable_manifest_names_the_file_and_plain_ingest_rebuilds(work, embedder):
    gen = live_generation(work.index_dir)
    (gen / "manifest.json").write_text('{"format_version": 2, "files": {', encoding="utf-8")
    with pytest.raises(IndexError_, match=r"manifest\.json is damaged .*run `tutor ingest`"):
        load_index(work.index_dir)
    report = ingest(work, embedder=embedder)
    assert report.rebuild_reason and "manifest.json is unreadable" in report.rebuild_reason
    assert report.embedded == report.chunks > 0 and not report.noop
    assert search_ids(work, embedder)  # usable again
    assert ingest(work, embedder=embedder).noop


def test_unreadable_manifest_with_rebuild_flag_in_the_cli(work):
    gen = live_generation(work.index_dir)
    (gen / "manifest.json").write_bytes(b"\xff\xfe not json")
    search = cli("search", QUERY, cwd=work.index_dir.parent,
                 env={"TUTOR_INDEX_DIR": str(work.index_dir), "TUTOR_CORPUS_DIR": str(work.corpus_dir)})
    assert search.returncode == 1 and "manifest.json is damaged" in search.stderr and "tutor ingest" in search.stderr
    out = cli("ingest", str(work.corpus_dir), "--index", str(work.index_dir), "--rebuild", cwd=work.index_dir.parent)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "indexed 3 files" in out.stdout
    assert read_manifest(work.index_dir).format_version == manifest_mod.FORMAT_VERSION


def test_pointer_to_nothing_rebuilds_with_a_message(work, embedder):
    (work.index_dir / CURRENT).write_text("gen-gone\n")
    report = ingest(work, embedder=embedder)
    assert report.rebuild_reason and "names no usable generation" in report.rebuild_reason
    assert search_ids(work, embedder)


# ---- damaged data files --------------------------------------------------------------------------

def _damage(gen: Path, part: str) -> None:
    if part == "bm25/":
        target = sorted((gen / "bm25").iterdir())[0]
        target.write_bytes(b"garbage" + target.read_bytes()[7:])
    elif part == "chunks.jsonl":
        data = (gen / part).read_bytes()
        (gen / part).write_bytes(data[: len(data) // 2])  # cut mid-record
    else:
        target = gen / part
        target.write_bytes(b"\x00" * target.stat().st_size)  # same size, other bytes: only the checksum sees it


@pytest.mark.parametrize("part,reembeds", [("tokens.jsonl", False), ("bm25/", False),
                                           ("chunks.jsonl", True), ("dense.faiss", True)])
def test_damaged_file_is_named_and_ingest_repairs_it(work, embedder, part, reembeds):
    before = search_ids(work, embedder)
    gen = live_generation(work.index_dir)
    n = len(load_index(work.index_dir).chunks)
    _damage(gen, part)
    with pytest.raises(IndexError_) as err:
        load_index(work.index_dir)
    msg = str(err.value)
    assert part.rstrip("/") in msg and "damaged" in msg and "run `tutor ingest`" in msg
    report = ingest(work, embedder=embedder)
    assert not report.noop, "a damaged index must not be reported as up to date"
    if reembeds:
        assert report.rebuild_reason and part in report.rebuild_reason and report.embedded == n
    else:
        assert report.repaired == [part] and report.embedded == 0 and report.rebuild_reason is None
    assert search_ids(work, embedder) == before
    assert ingest(work, embedder=embedder).noop


def test_damaged_tokens_in_an_index_without_checksums_names_the_file(work, embedder):
    """An index written before checksums (format 1): the damage is found when tokens are read."""
    gen = live_generation(work.index_dir)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    del manifest["integrity"]
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (gen / "tokens.jsonl").write_text("not json\n" * 40, encoding="utf-8")
    with pytest.raises(IndexError_, match=r"tokens\.jsonl is damaged .*run `tutor ingest`"):
        Retriever(load_index(work.index_dir), embedder, work)


def test_damaged_tokens_in_the_cli_is_one_line_naming_the_file(work):
    gen = live_generation(work.index_dir)
    (gen / "tokens.jsonl").write_text("\n" + (gen / "tokens.jsonl").read_text(encoding="utf-8")[1:], encoding="utf-8")
    env = {"TUTOR_INDEX_DIR": str(work.index_dir), "TUTOR_CORPUS_DIR": str(work.corpus_dir)}
    out = cli("search", QUERY, cwd=work.index_dir.parent, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "tokens.jsonl is damaged" in out.stderr and "tutor ingest" in out.stderr
    fix = cli("ingest", cwd=work.index_dir.parent, env=env)
    assert fix.returncode == 0 and "repaired" in fix.stderr and "tokens.jsonl" in fix.stderr, fix.stderr
    assert cli("search", QUERY, "--json", cwd=work.index_dir.parent, env=env).returncode == 0


# ---- writes: lock, fsync, leftovers --------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from tutor.index import _write_generation, load_index
    from tutor.manifest import Manifest
    from tutor.records import Chunk
    index_dir, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(abs(hash(who)) % 1000)
    for i in range(n):
        chunks = [Chunk(f"{who}-{i}-{j}", "a.md", "a.md", "t", "s", None, 0, 5, f"{who} text {j}") for j in range(20)]
        m = rng.standard_normal((20, 8)).astype(np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        _write_generation(index_dir, Manifest(chunk_count=20), chunks,
                          [[who, "text", str(j)] for j in range(20)], m)
    print("ok")
""")

READER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tutor.index import IndexError_, load_index
    index_dir, seconds = Path(sys.argv[1]), float(sys.argv[2])
    ok = bad = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data = load_index(index_dir)
            assert len(data.chunks) == data.dense.ntotal == 20
            ok += 1
        except IndexError_ as e:
            if "no index" in str(e):
                continue  # before the first generation
            bad += 1
            print("reader saw:", e, file=sys.stderr)
    print(ok, bad)
""")


@pytest.mark.slow
def test_two_writer_processes_never_lose_the_live_generation(tmp_path):
    """Two processes write 12 generations each into one folder while a third keeps loading it.
    Without the lock, writers deleted each other's fresh generation (CURRENT named nothing)."""
    index_dir = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(index_dir), "25"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(index_dir), who, "12"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    for w in writers:
        out, errs = w.communicate(timeout=300)
        assert w.returncode == 0 and out.strip() == "ok", errs
    gen = live_generation(index_dir)
    assert gen is not None and gen.is_dir(), "CURRENT names a generation that does not exist"
    assert sorted(p.name for p in index_dir.iterdir()) == sorted([CURRENT, index_mod.LOCK, gen.name])
    assert len(load_index(index_dir).chunks) == 20
    out, errs = reader.communicate(timeout=120)
    ok, bad = map(int, out.split())
    assert bad == 0 and ok > 0, errs


def test_a_second_ingest_waits_for_the_first_and_says_so(work):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from pathlib import Path
            from tutor.index import writing
            with writing(Path(sys.argv[1])):
                print("locked", flush=True)
                time.sleep(4)
        """), str(work.index_dir)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    out = cli("ingest", str(work.corpus_dir), "--index", str(work.index_dir), cwd=work.index_dir.parent)
    waited = time.monotonic() - t0
    holder.wait(timeout=30)
    assert out.returncode == 0, out.stderr
    assert "another ingest is writing" in out.stderr and "waiting" in out.stderr
    assert "up to date" in out.stdout and waited > 1.0


def test_generation_files_folder_and_pointer_are_fsynced(work, embedder, monkeypatch):
    synced: list[str] = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)
    monkeypatch.setattr(index_mod.os, "fsync", fsync)
    ingest(work, embedder=embedder, rebuild=True)
    monkeypatch.undo()
    gen = live_generation(work.index_dir)
    tmp_name = f".tmp-{gen.name}"
    names = {Path(p).name for p in synced}
    for rel in ["chunks.jsonl", "tokens.jsonl", "dense.faiss", "manifest.json", "bm25"]:
        assert rel in names, f"{rel} not fsynced"
    assert any(Path(p).name in (tmp_name, gen.name) for p in synced), "generation folder not fsynced"
    assert any(Path(p).name.startswith(f".{CURRENT}.") for p in synced), "CURRENT not fsynced before the swap"
    assert synced.count(str(work.index_dir.resolve())) >= 2, "index folder not fsynced after the renames"


def test_leftovers_of_interrupted_ingests_are_cleaned(work, embedder):
    idx = work.index_dir
    live = live_generation(idx)
    (idx / ".tmp-gen-20200101T000000-dead").mkdir()
    (idx / ".tmp-gen-20200101T000000-dead" / "chunks.jsonl").write_text("{}\n")
    (idx / f".{CURRENT}.abc123").write_text("gen-x\n")
    shutil.copytree(live, idx / "gen-20200101T000000-old")
    report = ingest(work, embedder=embedder)
    assert report.noop
    assert sorted(p.name for p in idx.iterdir()) == sorted([CURRENT, index_mod.LOCK, live.name])


# ---- file names and encodings --------------------------------------------------------------------

def test_non_utf8_file_name_is_skipped_with_one_warning(work, make_pdf):
    corpus = work.corpus_dir
    bad = os.fsencode(corpus / "notes") + b"/caf\xe9-notes.md"  # a Latin-1 file name
    with open(bad, "wb") as f:
        f.write("# Dropout\n\nDropout randomly zeroes activations during training.\n".encode())
    (corpus / "papers").mkdir()
    (corpus / "papers" / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    make_pdf(corpus / "papers" / "gating.pdf", [["Sparse gating picks the top-k experts."]], title="Gating")
    out = cli("ingest", str(corpus), "--index", str(work.index_dir), cwd=work.index_dir.parent)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "codec" not in out.stderr
    name_warnings = [ln for ln in out.stderr.splitlines() if "caf\\xe9-notes.md" in ln]
    assert len(name_warnings) == 1 and "not valid UTF-8" in name_warnings[0], out.stderr
    pdf_warnings = [ln for ln in out.stderr.splitlines() if "broken.pdf" in ln]
    assert len(pdf_warnings) == 1, out.stderr  # printed once, not twice
    data = load_index(work.index_dir)
    assert "papers/gating.pdf" in {c.path for c in data.chunks}
    assert not any("caf" in c.path for c in data.chunks)
    again = cli("ingest", str(corpus), "--index", str(work.index_dir), "--json", cwd=work.index_dir.parent)
    assert again.returncode == 0, again.stderr
    rep = json.loads(again.stdout)
    assert "notes/caf\\xe9-notes.md" in rep["skipped"] and "papers/broken.pdf" in rep["skipped"]


def test_latin1_note_is_read_right_not_as_gb18030_mojibake(work, embedder):
    text = ("# Über Residualnetze\n\nDie Größe des Modells wächst, aber Residualnetze lösen das Problem: die "
            "Rückwärtsübertragung läuft über die Abkürzung. Schätzung der Gewichte.\n")
    raw = text.encode("latin-1")
    assert "Gr鲞e" in raw.decode("gb18030")  # the trap: these bytes are valid GB18030, as mojibake
    (work.corpus_dir / "notes" / "de.md").write_bytes(raw)
    report = ingest(work, embedder=embedder)
    assert report.added == ["notes/de.md"]
    assert [w for w in report.warnings if w.startswith("de.md")] == ["de.md: not UTF-8, read as CP1252"]
    chunks = [c for c in load_index(work.index_dir).chunks if c.path == "notes/de.md"]
    assert chunks and "Die Größe des Modells wächst" in chunks[0].text and chunks[0].title == "Über Residualnetze"


def test_gb18030_note_still_reads_as_chinese(tmp_path):
    from tutor.corpus import read_text_file

    p = tmp_path / "zh.txt"
    p.write_bytes("残差连接让深层网络可以训练，梯度沿着恒等映射回传。".encode("gb18030"))
    assert read_text_file(p) == ("残差连接让深层网络可以训练，梯度沿着恒等映射回传。", "zh.txt: not UTF-8, read as GB18030")
    p.write_bytes("Остаточные связи помогают обучать глубокие сети. Это работает.".encode("cp1251"))
    text, warning = read_text_file(p)
    assert text.startswith("Остаточные связи") and "cp1251" in warning
