"""Shared fixtures: the real embedder (loaded once per session), a few short notes, tiny PDFs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tutor.config import Settings

# one real OpenAI-compatible llama.cpp server (SmolLM2) per session, shared by every test module
try:
    from tests.llm_server import llm_server  # noqa: F401
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from llm_server import llm_server  # type: ignore[no-redef]  # noqa: F401

# three short notes (zh, en, mixed) — a handful of chunks, so an ingest embeds in a second or two
NOTES = {
    "notes/resnet.md": (
        "# ResNet 笔记\n\n"
        "## 残差连接\n\n"
        "ResNet 通过残差连接 y = F(x) + x 让 152 层的网络也能训练。梯度可以沿着恒等映射直接回传。\n\n"
        "## 结果\n\n"
        "ResNet-152 在 ImageNet 上的 top-5 错误率为 3.57%，赢得了 ILSVRC 2015。\n"),
    "notes/attention.md": (
        "---\ntitle: Attention notes\n---\n\n"
        "## Scaled dot-product attention\n\n"
        "Attention weights are softmax(QK^T / sqrt(d_k)). Multi-head attention runs several heads "
        "in parallel and concatenates them.\n"),
    "notes/moe.txt": (
        "混合专家模型（MoE）\n\n"
        "MoE 用门控网络为每个 token 选择 top-k 个专家，只激活一部分参数。"
        "DeepSeekMoE 把专家切得更细，并隔离出共享专家。\n"),
}


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """Defaults, except the model cache, which follows TUTOR_HOME when CI sets it."""
    return Settings().replace(home=os.environ.get("TUTOR_HOME"))


@pytest.fixture(scope="session")
def embedder(base_settings):
    """The shipped multilingual-e5-small, loaded once (a few seconds) for every test that embeds."""
    from tutor.embedding import Embedder

    e = Embedder(base_settings)
    e.model  # load now, so the first test that uses it is not billed for it
    return e


@pytest.fixture(scope="session")
def write_notes():
    """write_notes(dir, notes=NOTES) → the corpus dir with the notes written under it."""
    def write(root: Path, notes: dict[str, str] | None = None) -> Path:
        for rel, text in (NOTES if notes is None else notes).items():
            p = Path(root) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        return Path(root)
    return write


@pytest.fixture(scope="session")
def ingest_notes(tmp_path_factory, base_settings, embedder, write_notes):
    """ingest_notes(name) → (settings, ingest report) of the notes ingested into a fresh folder."""
    from tutor.index import ingest

    def build(name: str):
        root = tmp_path_factory.mktemp(name)
        s = base_settings.replace(corpus_dir=write_notes(root / "corpus"), index_dir=root / "index")
        return s, ingest(s, embedder=embedder)
    return build


def _pdf_bytes(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal, valid PDF: one Helvetica text line per string, top to bottom, per page."""
    objs: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, lines in enumerate(pages):
        esc = [ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for ln in lines]
        ops = "BT /F1 11 Tf 14 TL 50 780 Td " + " ".join(f"({ln}) Tj T*" for ln in esc) + " ET"
        stream = ops.encode("latin-1")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] "
                     f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    info_id = None
    if title is not None:
        objs.append(f"<< /Title ({title}) >>".encode("latin-1"))
        info_id = len(objs)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for k, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = f"<< /Size {len(objs) + 1} /Root 1 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.fixture
def make_pdf():
    """make_pdf(path, pages=[[line, ...], ...], title=None) writes a small real PDF (pypdf reads it)."""
    def make(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_pdf_bytes(pages, title))
        return path
    return make
