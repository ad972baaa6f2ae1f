"""The learning path: the notes' own roadmap headings, in their order, with what to read for each.

Topics are never invented: they are headings the notes wrote as a plan.
- a roadmap section ("研究路线图" › "学习顺序建议", "学习路线", "roadmap"): its child headings,
  in order ("阶段 1: 基础夯实" … "阶段 7: 综合项目");
- a numbered series of notes ("AI 基础知识从-1到0.1" … "从 0.6 到 0.7"): ordered by their numbers;
- a study-plan note ("AI学习笔记": "一、基础准备" … "五、持续学习与社区"): its ordinal headings.
Tracks come in the order basics series → study plan → research roadmap (the series starts at
"-1", the roadmap ends in research projects); inside a track the notes' order stands.

For each topic: its own passages (the chunks of its section) and the closest other note passages,
the d2l-zh chapters whose name the topic text uses, and the papers of the corpus manifest
(`papers.tsv`) the topic names, with arXiv links.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .text import FENCE, HEADING, normalise
from .records import Chunk, Document

ROADMAP = re.compile(r"学习顺序建议|学习顺序|学习路线|研究路线图|路线图|学习计划|roadmap|learning path", re.I)
SERIES = re.compile(r"从\s*(-?\d+(?:\.\d+)?)\s*到\s*(-?\d+(?:\.\d+)?)")
STUDY_PLAN = re.compile(r"学习笔记|学习计划|study notes|study plan", re.I)
ORDINAL = re.compile(r"^[一二三四五六七八九十]+、")
TRACK_ORDER = {"series": 0, "plan": 1, "roadmap": 2}


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # markup stripped
    start: int  # offset of the heading line
    end: int  # end of its section (next heading of the same or a higher level)


@dataclass(frozen=True)
class Topic:
    order: int
    title: str
    track: str  # the note it comes from (its title)
    kind: str  # series | plan | roadmap
    file: str
    path: str
    start: int
    end: int
    text: str  # the section text
    passages: list[dict] = field(default_factory=list)
    d2l: list[dict] = field(default_factory=list)
    papers: list[dict] = field(default_factory=list)
    done: bool = False

    @property
    def query(self) -> str:
        """What to search (and quiz) for this topic: its title and first items, short (one search each)."""
        title = re.sub(r"\s*[（(][^）)]*[）)]\s*$", "", self.title)  # "(2-3 周)"
        items = " ".join(re.sub(r"^\d+[.、]\s*", "", i) for i in _items(self.text)[:3])
        return f"{title} {items}"[:100]

    def to_dict(self) -> dict:
        return {"order": self.order, "title": self.title, "track": self.track, "kind": self.kind,
                "file": self.file, "path": self.path, "start": self.start, "end": self.end,
                "items": _items(self.text), "passages": self.passages, "d2l": self.d2l, "papers": self.papers,
                "done": self.done}


@dataclass(frozen=True)
class LearningPath:
    topics: list[Topic]

    def to_dict(self) -> dict:
        return {"topics": [t.to_dict() for t in self.topics]}

    def find(self, ref: str) -> Topic | None:
        """A topic by its order number or (part of) its title."""
        ref = ref.strip()
        if ref.isdigit():
            return next((t for t in self.topics if t.order == int(ref)), None)
        n = normalise(ref)
        return next((t for t in self.topics if normalise(t.title) == n), None) or \
            next((t for t in self.topics if n and n in normalise(t.title)), None)


def _strip(s: str) -> str:
    return re.sub(r"[*_`]+", "", re.sub(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]", "", s)).strip()


def headings(text: str) -> list[Heading]:
    """Markdown headings outside code fences, each with the end of its section."""
    found: list[tuple[int, str, int]] = []
    pos, in_code = 0, False
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if FENCE.match(body):
            in_code = not in_code
        elif not in_code:
            m = HEADING.match(body)
            if m:
                found.append((len(m.group(1)), _strip(m.group(2)), pos))
        pos += len(line)
    out = []
    for i, (level, head, start) in enumerate(found):
        end = next((s for lv, _, s in found[i + 1:] if lv <= level), len(text))
        out.append(Heading(level, head, start, end))
    return out


def _items(section: str) -> list[str]:
    """The first-level items of a topic's section ("1. 深度学习基础", "├─ AlexNet 论文精读" …)."""
    out = []
    for line in section.splitlines()[1:]:
        s = _strip(re.sub(r"^[\s│├└─-]+", "", line))
        if s and not s.startswith(("```", "#", "http", "+ http")) and len(s) <= 60:
            out.append(s)
        if len(out) >= 12:
            break
    return out


def _topics_of(doc: Document) -> list[tuple[str, list[Heading]]]:
    """(kind, topic headings) for each plan this note holds."""
    hs = headings(doc.text)
    plans: list[tuple[str, list[Heading]]] = []
    # a roadmap section: the children of the innermost roadmap heading
    roads = [h for h in hs if ROADMAP.search(h.text)]
    for r in roads:
        inner = [h for h in roads if h is not r and r.start < h.start < r.end]
        if inner:
            continue
        kids = [h for h in hs if r.start < h.start < r.end]
        if kids:
            top = min(h.level for h in kids)
            plans.append(("roadmap", [h for h in kids if h.level == top]))
    # a numbered series: "从 0.1 到 0.2", ordered by its numbers
    series = [(float(m.group(1)), h) for h in hs if (m := SERIES.search(h.text))]
    if len(series) >= 3:
        plans.append(("series", [h for _, h in sorted(series, key=lambda x: x[0])]))
    # a study plan: ordinal headings of a note titled as one
    if STUDY_PLAN.search(doc.title):
        ords = [h for h in hs if ORDINAL.match(h.text)]
        if len(ords) >= 3:
            plans.append(("plan", ords))
    return plans


# ---- what to read ---------------------------------------------------------------------------------

def _d2l_names(doc: Document) -> list[str]:
    """Names a d2l chapter goes by: its title ("残差网络（ResNet）" → 残差网络, ResNet), its file name."""
    title = doc.title
    out = [re.split(r"[（(]", title)[0].strip()]
    out += re.findall(r"[（(]([^）)]+)[）)]", title)
    stem = Path(doc.path).stem
    if stem != "index":
        out.append(stem.replace("-", " "))
    return [n for n in out if len(n) >= 2 and n not in ("引言", "index")]


def _mentions(name: str, text_low: str) -> int:
    name = name.lower()
    if re.fullmatch(r"[a-z0-9 \-]+", name):
        return len(re.findall(r"(?<![a-z0-9])" + re.escape(name) + r"(?![a-z0-9])", text_low))
    return text_low.count(name)


def match_d2l(topic_text: str, d2l_docs: list[Document], limit: int = 3) -> list[dict]:
    low = topic_text.lower()
    scored = []
    for d in d2l_docs:
        n = sum(_mentions(name, low) for name in _d2l_names(d))
        if n:
            scored.append((n, d))
    scored.sort(key=lambda x: (-x[0], x[1].path))
    return [{"title": d.title, "file": d.file, "path": d.path, "mentions": n} for n, d in scored[:limit]]


def read_manifest(corpus_dir: Path) -> list[dict]:
    """The papers manifest: corpus/papers.tsv (every paper the notes name), else papers/MANIFEST.tsv."""
    for rel in ("papers.tsv", "papers/MANIFEST.tsv"):
        p = Path(corpus_dir) / rel
        if p.is_file():
            with p.open(encoding="utf-8", newline="") as f:
                return list(csv.DictReader(f, delimiter="\t"))
    return []


def _tokens(text: str) -> set[str]:
    """Latin words, hyphens dropped inside ("GPT-4" → gpt4), and adjacent pairs joined ("LLaMA 2" → llama2)."""
    words = [w.replace("-", "").replace(".", "") for w in re.findall(r"[a-z0-9][a-z0-9\-.]*", text.lower())]
    words = [w for w in words if w]
    return set(words) | {a + b for a, b in zip(words, words[1:])}


def match_papers(topic_text: str, manifest: list[dict], limit: int = 12) -> list[dict]:
    """Papers the topic names: by their key's name part (alexnet, scaling_laws_kaplan, deepseek_v2),
    by their title, or by the name the manifest notes quote ('Mistral 技术报告')."""
    toks = _tokens(topic_text)
    low = topic_text.lower()
    out = []
    for row in manifest:
        key = row.get("key") or ""
        stem = re.sub(r"_\d{4}$", "", key)
        parts = [p for p in stem.split("_") if p]
        hit = bool(parts) and (stem.replace("_", "") in toks or all(p in toks for p in parts))
        title = (row.get("title") or "").lower()
        hit = hit or (len(title) > 12 and title in low)
        for alias in re.findall(r"'([^']{3,40})'", row.get("notes") or ""):
            a = alias.lower()
            if re.fullmatch(r"[a-z]+", a):
                continue  # one plain word ('Attention', 'Brook') names no paper by itself
            if re.search(r"(?<![a-z0-9])" + re.escape(a) + r"(?![a-z0-9])", low):
                hit = True
        if hit:
            arxiv = (row.get("arxiv_id") or "").strip()
            out.append({"key": key, "title": row.get("title", ""), "year": row.get("year", ""),
                        "arxiv_id": arxiv or None, "url": f"https://arxiv.org/abs/{arxiv}" if arxiv else None,
                        "in_corpus": (row.get("corpus_status") or "").startswith("copied")})
    return out[:limit]


def _passage(c: Chunk) -> dict:
    return {"file": c.file, "path": c.path, "section": c.section, "page": c.page, "start": c.start,
            "end": c.end, "text": c.text}


def build(documents: list[Document], chunks: list[Chunk], manifest: list[dict], done: set[str] = frozenset(),
          related: Callable[[str], list[Chunk]] | None = None, own_passages: int = 3,
          related_passages: int = 2) -> LearningPath:
    """The path from the corpus documents; `chunks` give the passages, `related(query)` (a search)
    the closest other note passages."""
    notes = [d for d in documents if d.page is None and not d.path.startswith(("d2l-zh/", "papers/"))]
    d2l = [d for d in documents if d.path.startswith("d2l-zh/")]
    found: list[tuple[int, str, Document, list[Heading]]] = []
    for d in sorted(notes, key=lambda d: d.path):
        for kind, hs in _topics_of(d):
            found.append((TRACK_ORDER[kind], kind, d, hs))
    found.sort(key=lambda x: (x[0], x[2].path))
    topics: list[Topic] = []
    by_file: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_file.setdefault(c.path, []).append(c)
    for _, kind, doc, hs in found:
        track = doc.title
        if kind == "series":  # "AI 基础知识从-1到0.1…", "AI 基础知识从0.1到0.2…" → "AI 基础知识"
            track = SERIES.split(hs[0].text)[0].strip() or doc.title
        for h in hs:
            text = doc.text[h.start:h.end]
            own = [c for c in by_file.get(doc.path, []) if c.start < h.end and c.end > h.start][:own_passages]
            passages = [_passage(c) for c in own]
            if related is not None:
                seen = {(c.path, c.start) for c in own}
                t = Topic(0, h.text, track, kind, doc.file, doc.path, h.start, h.end, text)
                for c in related(t.query):
                    if len(passages) >= len(own) + related_passages:
                        break
                    if (c.path, c.start) in seen or c.path.startswith(("d2l-zh/", "papers/")) or \
                            (c.path == doc.path and c.start < h.end and c.end > h.start):
                        continue
                    seen.add((c.path, c.start))
                    passages.append(_passage(c))
            topics.append(Topic(len(topics) + 1, h.text, track, kind, doc.file, doc.path, h.start, h.end, text,
                                passages, match_d2l(text, d2l), match_papers(text, manifest), h.text in done))
    return LearningPath(topics)
