"""Write tutor/data/calibration.jsonl: the texts the `openvino-int8` embedder export measures its
activation ranges on (tutor/onnx_backend.py).

Why shipped and not read from the user's corpus: the export is made once per embedder into the
model cache, before and apart from any corpus. The texts are paragraphs of d2l-zh (CC BY-SA 4.0)
and of the World Models article (CC BY 4.0), both redistributed in corpus/ already, as passages,
and their section headings and first clauses as short query-like texts: zh and en, prose, formulas
and code, like what the tutor embeds. No eval question is used (the retrieval gate is measured on
those). Deterministic: re-running writes the same file.

    python evals/make_calibration.py
"""
from __future__ import annotations

import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tutor import jsonl  # noqa: E402

SOURCES = {  # folder or file → credit written beside each text
    "corpus/d2l-zh": "d2l-zh (动手学深度学习), Zhang, Lipton, Li, Smola — CC BY-SA 4.0",
    "corpus/papers/world_models_2018.md": "World Models, Ha & Schmidhuber (2018) — CC BY 4.0",
}
N_PASSAGES, N_QUERIES, MAX_CHARS = 200, 100, 600
OUT = ROOT / "tutor" / "data" / "calibration.jsonl"


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if 40 <= len(p.strip())]


def _query_like(paragraph: str) -> str | None:
    """A heading, or the first clause of a prose paragraph: short like a learner's question."""
    line = paragraph.splitlines()[0].strip()
    if line.startswith("#"):
        return line.lstrip("# ").strip() or None
    if line.startswith(("```", "|", ":", "!", "$")):
        return None
    clause = re.split(r"[。？！；.?!;]", line)[0].strip()
    return clause if 6 <= len(clause) <= 80 else None


def main() -> None:
    passages, queries = [], []
    for where, credit in SOURCES.items():
        path = ROOT / where
        for f in sorted([path] if path.is_file() else path.rglob("*.md")):
            for p in _paragraphs(f.read_text(encoding="utf-8")):
                passages.append((p[:MAX_CHARS], credit))
                q = _query_like(p)
                if q:
                    queries.append((q, credit))
    rng = random.Random(0)
    chosen = [("passage", *x) for x in rng.sample(passages, min(N_PASSAGES, len(passages)))]
    chosen += [("query", *x) for x in rng.sample(queries, min(N_QUERIES, len(queries)))]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    jsonl.write(OUT, [{"kind": kind, "text": text, "source": credit} for kind, text, credit in chosen])
    print(f"{OUT.relative_to(ROOT)}: {len(chosen)} texts ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
