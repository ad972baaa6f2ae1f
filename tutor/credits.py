"""Who wrote a corpus file and under which licence, read from the corpus's own manifests.

A folder's `MANIFEST.tsv` (tab-separated, a header row) describes its files: `file` (a path relative to the
folder, or `*` for every file of the folder and below), `license`, and any of `title`, `authors`, `url`,
`source_repo` (→ its GitHub page), `arxiv_id` (→ its arXiv page). The nearest manifest up from a
file that names it (or has a `*` row) gives its credit, so a learner's own folder can carry one
too; a file no manifest names has none.
"""
from __future__ import annotations

import csv
import html
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

MANIFEST = "MANIFEST.tsv"


@dataclass(frozen=True)
class Credit:
    license: str
    authors: str = ""
    title: str = ""
    url: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def html(self) -> str:
        """One line for a source card: authors · link · licence (escaped)."""
        parts = [html.escape(p) for p in (self.authors,) if p]
        if self.url:
            shown = self.url.split("://", 1)[-1].rstrip("/")
            parts.append(f'<a href="{html.escape(self.url, quote=True)}" target="_blank" rel="noopener">'
                         f"{html.escape(shown)}</a>")
        parts.append(html.escape(self.license))
        return " · ".join(parts)


def _row_credit(row: dict[str, str]) -> Credit | None:
    licence = (row.get("license") or "").strip()
    if not licence:
        return None
    url = (row.get("url") or "").strip()
    if not url and (row.get("arxiv_id") or "").strip():
        url = f"https://arxiv.org/abs/{row['arxiv_id'].strip()}"
    if not url and (row.get("source_repo") or "").strip():
        url = f"https://github.com/{row['source_repo'].strip()}"
    return Credit(licence, (row.get("authors") or "").strip(), (row.get("title") or "").strip(), url)


def manifest_rows(folder: Path) -> dict[str, dict[str, str]]:
    """The rows of `folder/MANIFEST.tsv` by their `file` column ({} without one). Also where
    ingest reads a PDF's title from (corpus.py)."""
    path = Path(folder) / MANIFEST
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _rows(path, mtime)


@lru_cache(maxsize=64)
def _rows(path: Path, mtime_ns: int) -> dict[str, dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return {row["file"].strip(): row for row in rows if (row.get("file") or "").strip()}


class Credits:
    """Credits of the files of one corpus folder (re-read when a manifest changes)."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = Path(corpus_dir)

    def of(self, rel_path: str) -> Credit | None:
        rel = PurePosixPath(rel_path.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            return None
        for folder in [rel.parent, *rel.parent.parents]:
            rows = manifest_rows(self.corpus_dir / folder)
            row = rows.get(rel.relative_to(folder).as_posix()) or rows.get("*")
            credit = _row_credit(row) if row else None
            if credit:
                return credit
        return None
