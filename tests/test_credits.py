"""tutor.credits: a source's authors, link and licence come from the corpus's MANIFEST.tsv files."""
from __future__ import annotations

from pathlib import Path

from tutor.credits import Credits

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_corpus_credits_its_sources():
    credits = Credits(REPO / "corpus")
    d2l = credits.of("d2l-zh/chapter_attention-mechanisms/attention-cues.md")
    assert d2l and "CC BY-SA 4.0" in d2l.license and "Mu Li" in d2l.authors and d2l.url == "https://zh.d2l.ai"
    wm = credits.of("papers/world_models_2018.md")
    assert wm and wm.license == "CC-BY-4.0" and "Schmidhuber" in wm.authors and "worldmodels.github.io" in wm.url
    v3 = credits.of("papers/deepseek_v3_2024.pdf")
    assert v3 and v3.license == "MIT" and v3.url == "https://github.com/deepseek-ai/DeepSeek-V3"
    assert credits.of("notes/000_f27da241194530d4.txt") is None  # the learner's own notes: no manifest


def test_nearest_manifest_wins_and_paths_stay_inside(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "MANIFEST.tsv").write_text(
        "file\tlicense\tauthors\tarxiv_id\n*\tCC0\tAll\t\nb/x.md\tMIT\tX <Y>\t1234.5678\n", encoding="utf-8")
    (tmp_path / "a" / "b" / "MANIFEST.tsv").write_text("file\tlicense\nz.md\tApache-2.0\n", encoding="utf-8")
    c = Credits(tmp_path)
    assert c.of("a/b/z.md").license == "Apache-2.0"
    x = c.of("a/b/x.md")
    assert (x.license, x.url) == ("MIT", "https://arxiv.org/abs/1234.5678")
    assert "X &lt;Y&gt;" in x.html() and "<Y>" not in x.html()  # escaped for the source card
    assert c.of("a/other.md").license == "CC0"
    assert c.of("elsewhere.md") is None and c.of("../a/b/z.md") is None and c.of("/etc/passwd") is None
    # a changed manifest is read again
    (tmp_path / "a" / "b" / "MANIFEST.tsv").write_text("file\tlicense\nz.md\tBSD-3-Clause\n", encoding="utf-8")
    import os
    os.utime(tmp_path / "a" / "b" / "MANIFEST.tsv", ns=(1, 1))
    assert c.of("a/b/z.md").license == "BSD-3-Clause"


def test_search_hits_carry_their_credit(ingest_notes, embedder):
    """`Tutor.search` (hence `tutor search --json`, `ask --json` and the UI's source cards) gives each hit
    the credit of its file, read at search time from the corpus the index was built from."""
    from tutor.api import Tutor

    s, _ = ingest_notes("credits")
    (s.paths.corpus_dir / "notes" / "MANIFEST.tsv").write_text(
        "file\tlicense\tauthors\turl\nresnet.md\tCC BY 4.0\tA. Author\thttps://example.org/resnet\n", encoding="utf-8")
    tutor = Tutor(s)
    tutor._embedder = embedder
    hits = tutor.search("残差连接为什么能训练很深的网络", k=3).hits
    by_path = {h.chunk.path: h for h in hits}
    assert by_path["notes/resnet.md"].credit.license == "CC BY 4.0"
    assert by_path["notes/resnet.md"].to_dict()["credit"] == {
        "license": "CC BY 4.0", "authors": "A. Author", "title": "", "url": "https://example.org/resnet"}
    assert all(h.credit is None for h in hits if h.chunk.path != "notes/resnet.md")
