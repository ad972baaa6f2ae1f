"""What to ask next: 2–3 follow-up questions drawn from the corpus's own headings.

After an answer, the learner sees questions about the headings next to what was cited: a child
heading of a cited passage (go deeper), a sibling (go sideways), and the next topic of the
learning path when the passage belongs to one. Headings are the corpus's own, so every
suggestion is about something the notes cover; no model is called.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .quiz import heading_name
from .records import HEADING_SEP as SEP
from .records import Chunk
from .text import normalise

_EMOJI = re.compile(r"^[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\s]+")
# headings that name an aspect, not a subject: asked about their parent ("ResNet 的核心贡献是什么？")
_ASPECT = re.compile(r"核心|历史|贡献|意义|局限|问题|影响|论文|地位|创新|思想|原理|发现|突破|应用|总结|对比|优势|特点|"
                     r"练习|小结|结果|实验|背景|动机|summary|exercise|result|background", re.I)
_SKIP = re.compile(r"^(?:目录|.*总结|.*小结|练习|参考|references?|exercises?|summary|table of contents|🎉.*)$", re.I)


@dataclass(frozen=True)
class Outline:
    """Every section path of every file, in document order (from the index's chunks)."""

    sections: dict[str, list[tuple[str, ...]]]

    @staticmethod
    def of(chunks: list[Chunk]) -> "Outline":
        out: dict[str, list[tuple[str, ...]]] = {}
        for c in sorted(chunks, key=lambda c: (c.path, c.page or 0, c.start)):
            if not c.section:
                continue
            parts = tuple(p for p in c.section.split(SEP) if p)
            lst = out.setdefault(c.path, [])
            for i in range(1, len(parts) + 1):  # parents too: a chunk may sit deep in one
                if parts[:i] not in lst:
                    lst.append(parts[:i])
        return Outline(out)

    def children(self, path: str, section: tuple[str, ...]) -> list[tuple[str, ...]]:
        n = len(section)
        return [s for s in self.sections.get(path, []) if len(s) == n + 1 and s[:n] == section]

    def siblings(self, path: str, section: tuple[str, ...]) -> list[tuple[str, ...]]:
        if not section:
            return []
        after = [s for s in self.sections.get(path, []) if len(s) == len(section) and s[:-1] == section[:-1]
                 and s != section]
        mine = self.sections.get(path, []).index(section) if section in self.sections.get(path, []) else -1
        # the next sections first (what comes after in the notes), then the earlier ones, nearest first
        later = [s for s in after if self.sections[path].index(s) > mine]
        return later + [s for s in reversed(after) if s not in later]


def _plain(h: str) -> str:
    return re.sub(r"[*_`\[\]]+", "", _EMOJI.sub("", h)).strip()


def question_for(section: tuple[str, ...], lang: str, title: str = "") -> str | None:
    """A question a heading invites: "什么是 X？" for a subject, "P 的 X 是什么？" for an aspect,
    "P 中的“X”讲了什么？" for a bare word ("训练", "模型")."""
    last = _plain(section[-1]) if section else ""
    if not last or _SKIP.match(last):
        return None
    parent = heading_name(SEP.join(section[:-1])) if len(section) > 1 else ""
    parent = _plain(parent or title)
    aspect = _EMOJI.match(section[-1]) is not None or _ASPECT.search(last) and len(last) <= 8
    if aspect:
        if not parent:
            return None
        return f"{parent} 的{last}是什么？" if lang != "en" else f"What about the {last} of {parent}?"
    name = _plain(heading_name(SEP.join(section)))
    if not name or len(name) > 40:
        return None
    if re.fullmatch(r"[\u4e00-\u9fff]{1,2}", name):
        if not parent or parent == name:
            return None
        return f"{parent}中的“{name}”讲了什么？" if lang != "en" else f"What do the sources say about {name} in {parent}?"
    return f"什么是{name}？" if lang != "en" else f"What is {name}?"


def suggest(question: str, cited: list[Chunk], outline: Outline, lang: str = "zh",
            next_topic: str | None = None, limit: int = 3, retrieved: list[Chunk] | None = None) -> list[str]:
    """Up to `limit` follow-ups: a child heading, a sibling heading (of the cited passages, then of
    the other retrieved ones), the next learning-path topic, then the parent's siblings (a last
    section of its file has neither children nor siblings); none that repeats the question."""
    asked = normalise(question)
    out: list[str] = []
    cores: list[str] = []

    def core_of(q: str) -> str:
        q = re.sub(r"^什么是|是什么？$|讲了什么？$|^What is |^What about the |^What do the sources say about |\?$|？$", "", q)
        return normalise(re.sub(r"^学习路线的下一步“|”要学什么$|^What does the next step, \"|\", cover$", "", q))

    def add(q: str | None) -> None:
        if not q or len(out) >= limit:
            return
        core = core_of(q)
        bare = re.sub(r"^[一二三四五六七八九十]+、", "", core)
        if q in out or not core or core in asked or asked in normalise(q):
            return
        if any(bare in c or c in bare for c in cores):  # "什么是大模型专项学习？" and the next step "三、大模型专项学习"
            return
        cores.append(bare)
        out.append(q)

    def around(chunks: list[Chunk]) -> tuple[list, list, list]:
        kids, sibs, uncles = [], [], []
        for c in chunks:
            sec = tuple(p for p in c.section.split(SEP) if p)
            kids += [question_for(s, lang, c.title) for s in outline.children(c.path, sec)]
            sibs += [question_for(s, lang, c.title) for s in outline.siblings(c.path, sec)]
            if len(sec) > 1:
                for u in outline.siblings(c.path, sec[:-1]):
                    uncles += [question_for(x, lang, c.title) for x in [*outline.children(c.path, u), u]]
        return [k for k in kids if k], [s for s in sibs if s], [u for u in uncles if u]

    kids, sibs, uncles = around(cited)
    for q in kids[:1] + sibs[:1]:
        add(q)
    if next_topic:
        add(f"学习路线的下一步“{next_topic}”要学什么？" if lang != "en" else f"What does the next step, \"{next_topic}\", cover?")
    more = around(retrieved or [])
    for q in kids[1:] + sibs[1:] + uncles + more[0] + more[1] + more[2]:
        add(q)
    return out
