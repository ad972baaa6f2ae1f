"""Quiz questions from corpus passages: candidates found by rule, phrased by template or the LLM.

Why rules first: a question is only useful if its answer key is really in the notes. So every
candidate is cut out of a passage deterministically with the shared text core (`text.units`,
`text.figures`): a "label: figure" line or a table cell (recall), a definition sentence or a bold
term with its description (cloze on the term), a "A 通过 B 让 C" sentence or a bold term's role
(explain). The key is a slice of the passage, so it is an exact substring of `source.text` by
construction, and it is checked again. The LLM may only rephrase the template question; its
rephrasing is rejected when it gives the answer away, drops the blank, the names or the figures
the template had, or adds figures — then the template stands (the tiny test model always falls
back, and the quiz still works).

Same seed, same passages → same quiz: candidates come in passage order, are shuffled by
`random.Random(seed)`, then taken round-robin over the kinds, without repeating a question or
a key.
"""
from __future__ import annotations

import hashlib
import random
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

from .glossary import language
from .text import Span, figures, names, normalise, sentence_spans, units
from .records import Chunk

KINDS = ("recall", "cloze", "explain")


@dataclass(frozen=True)
class Source:
    """The passage a key was taken from (a chunk: offsets into its document)."""

    file: str
    path: str
    section: str
    page: int | None
    start: int
    end: int
    text: str

    @staticmethod
    def of(chunk: Chunk) -> "Source":
        return Source(chunk.file, chunk.path, chunk.section, chunk.page, chunk.start, chunk.end, chunk.text)


@dataclass(frozen=True)
class Candidate:
    """A question before phrasing: its kind, its key (a slice of `source.text`) and the parts a
    template needs."""

    kind: str
    key: str
    key_at: int  # offset of the key in source.text
    source: Source
    unit: str  # the sentence / row / line the key sits in
    parts: dict = field(default_factory=dict)  # subject, label, blanked, term, goal …


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    question: str
    answer_key: str
    source: Source
    lang: str = "zh"
    unit: str = ""
    key_start: int = 0  # offsets of the key in the source's document
    key_end: int = 0
    aliases: tuple[str, ...] = ()
    phrased_by: str = "template"  # template | llm
    template: str = ""

    def to_dict(self) -> dict:
        s = self.source
        return {"id": self.id, "kind": self.kind, "question": self.question, "answer_key": self.answer_key,
                "source": {"file": s.file, "path": s.path, "section": s.section, "page": s.page,
                           "start": s.start, "end": s.end, "text": s.text},
                "lang": self.lang, "unit": self.unit, "key_start": self.key_start, "key_end": self.key_end,
                "aliases": list(self.aliases), "phrased_by": self.phrased_by}


@dataclass(frozen=True)
class Quiz:
    topic: str
    seed: int
    questions: list[Question]
    lang: str = "zh"
    timings_ms: dict = field(default_factory=dict)
    candidates: int = 0

    def to_dict(self) -> dict:
        return {"topic": self.topic, "seed": self.seed, "lang": self.lang,
                "questions": [{**q.to_dict(), "topic": self.topic} for q in self.questions],
                "candidates": self.candidates,
                "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()}}


# ---- candidates --------------------------------------------------------------------------------

_EMOJI = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
_MD = re.compile(r"\*\*|__|`|~~")
# "label: value" (a code line, a list item, a table-free line); the label is short
_LABELLED = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,2}[.)、]\s*)?(?P<label>[^:：\n|]{1,32}?)\s*[:：]\s*(?P<value>\S.*)$")
# a figure's unit word right after it: "128K tokens", "2048 GPU", "8 层", "2个月"
_UNIT_AFTER = re.compile(r"\s?(?:tokens?|GPUs?|TPUs?|layers?|heads?|experts?|个月|小时|个|块|层|天|年|倍|篇|张|万|亿)")
_CURRENCY_BEFORE = re.compile(r"[$¥€]$|约$|~$")
# "X 是一种…", "X 是指…", "X is a …": a definition sentence starts with its term
_DEFINES = re.compile(r"^(?P<term>[A-Za-z][A-Za-z0-9\-.+]{1,30}(?:\s[A-Z][A-Za-z0-9\-]+)?|[\u4e00-\u9fff]{2,10})"
                      r"\s*(?:[（(][^）)]{1,40}[）)])?\s*(?P<verb>是一种|是一类|是指|指的是|是|即|is an?\b|refers to\b)\s*\S")
# a sentence opening that is no term ("如果目标函数是…", "也就是说", "一个简单的例子是")
_NOT_TERM = re.compile(r"^(?:如果|也|一个|一种|下面|上面|这|那|我们|你|他|它|其|但|而|因|所以|可|幸|对于|当|在|从|例|"
                       r"此|该|每|所有|任何|很|最|更|就|还|只|都|并|又|与|和|或)")
# "**term**：description" — a bold term and what it does
_BOLD_TERM = re.compile(r"^\s*(?:[-*+•]\s+|\d{1,2}[.)、]\s*)?(?:✅\s*)?\*\*(?P<term>[^*\n]{1,24})\*\*\s*[:：]\s*(?P<desc>\S.*)$")
# "A 通过 B(，)让/使/使得/从而/来 C"
_BY_MEANS = re.compile(r"^(?P<a>[^，,。；]{1,20}?)\s*通过\s*(?P<b>[^，,。；]{2,40}?)\s*[，,]?\s*(?:让|使得|使|从而|来|以)"
                       r"(?P<c>[^。；]{3,40})")
# "残差网络的核心思想是：…", "X 的目的在于…"
_ASPECT_IS = re.compile(r"^(?P<a>[^，,。；：:]{2,20}?)的(?P<b>核心思想|关键思想|关键|目的|作用|优点|缺点|思想|本质|原理|意义|动机|"
                        r"主要贡献|贡献|好处)(?:是|在于)\s*[：:，,]?\s*(?P<y>[^。；]{6,120})")
# "何恺明等人提出了*残差网络*（ResNet）", "Vaswani et al. proposed the Transformer"
_PROPOSED = re.compile(r"(?P<who>[\u4e00-\u9fff]{2,4}等人|[A-Z][a-z]+ et al\.?)\s*(?:在\d{4}年)?(?:提出了?|proposed)\s*"
                       r"(?P<what>[^，,。；]{2,40})")
# "因为 X，所以 Y。" / "由于 X，因此 Y。" / "X，所以 Y。": why Y? — X
_BECAUSE = re.compile(r"^(?:但是|而且|而)?(?:(?:因为|由于)(?P<x>[^，,。；]{4,60})[，,]\s*(?:所以|因此|因而)?|"
                      r"(?P<x2>[^，,。；]{6,60})[，,]\s*(?:所以|因此|因而))(?P<y>[^。；]{4,60})[。；]?$")
# "这个过程称为一个周期 (Epoch)", "…被称为残差网络": cloze on the named term
_CALLED = re.compile(r"(?:被称为|也称为|称为|叫做|称作)\s*(?:一个|一种)?\s*[“\"*]?(?P<term>[\u4e00-\u9fff]{2,8}|[A-Za-z][\w\-]{1,20})"
                     r"[”\"*]?\s*(?=[（(。，,；]|$)")
_GENERIC_LABELS = re.compile(r"^(?:例|例如|注|注意|note|e\.g|原因|观察|问题|输入|输出|结果|来源|作者|发表|引用|链接|参考|"
                             r"https?|python|#.*|.*arxiv.*|.*preprint.*|width|height|style|src|alt|href|class|id|"
                             r"figure|fig|table|eq|equation|doi|isbn|url)$", re.I)
_ROLE_LABELS = re.compile(r"优势|作用|目的|意义|好处|核心思想|思想|原理|缺点|局限|解决|贡献|创新|特点|问题")
_YEARISH = re.compile(r"^(?:19|20)\d\d(?:\.\d{1,2})?$")


def heading_name(section: str, title: str = "") -> str:
    """The subject a section is about: its last heading, without numbering, emoji, markup,
    years and taglines ("1.2 ResNet (2015) - 残差革命" → "ResNet")."""
    for part in reversed([p for p in section.split(" › ") if p] or [title]):
        if _EMOJI.match(part.strip()):
            continue  # the notes mark their generic sub-headings with an emoji (✨ 核心贡献, 🎨 重大应用)
        s = _MD.sub("", _EMOJI.sub("", part)).strip()
        s = re.sub(r"^(?:\d+(?:\.\d+)*\.?|[一二三四五六七八九十]+、|阶段\s*\d+[:：])\s*", "", s)
        s = re.split(r"\s+[-—–]\s+|[，,：:]|（\d|\(\d", s)[0]
        s = re.sub(r"\s*[（(][^）)]*[）)]\s*$", "", s).strip(" -—")
        if s and not re.fullmatch(r"核心问题|核心贡献|核心突破|核心创新|核心思想|历史地位|历史意义|历史脉络|论文|局限性|"
                                  r"性能飞跃|目录|总结|关键论文|核心论文|解决的核心问题|后续影响|.*总结", s):
            return s
    return ""


def _clean(s: str) -> str:
    s = re.sub(r"[│├└┌┐┘┴┬┼─]+", " ", _MD.sub("", _EMOJI.sub("", s)))
    return s.strip(" \t-*•✅")


def _figure_key(text: str, at: int) -> tuple[int, int] | None:
    """(start, end) in `text` of the first figure at or after `at`, with its currency sign before
    and its unit word after; None for a bare year."""
    seg = text[at:]
    for f in figures(seg):
        a, b = at + f.start, at + f.end
        if text[a:b] != unicodedata.normalize("NFKC", text[a:b]) and len(text[a:b]) != f.end - f.start:
            continue  # offsets are approximate after NFKC changed the length: skip
        if _YEARISH.match(text[a:b].strip()) and not text.startswith("年", b):
            return None
        if _CURRENCY_BEFORE.search(text[:a]) and text[a - 1] in "$¥€":
            a -= 1
        m = _UNIT_AFTER.match(text, b)
        if m:
            b = m.end()
        return a, b
    return None


def _unit_candidates(chunk: Chunk, span: Span, subject: str) -> list[Candidate]:
    text = chunk.text
    unit = text[span.start:span.end]
    src = Source.of(chunk)
    out: list[Candidate] = []
    context = text[span.context[0]:span.context[1]].strip().rstrip(":：") if span.context else ""
    if span.kind == "row" and span.context:
        out += _row_candidates(chunk, span, src)
        return out
    if span.kind in ("heading", "header", "formula"):
        return out
    bold = _BOLD_TERM.match(unit)
    if bold:
        term = _clean(bold.group("term"))
        desc_at = span.start + bold.start("desc")
        desc = text[desc_at:span.end]
        if len(desc) >= 12 and not desc.startswith("http"):
            thing = bool(names(term)) or _glossary_term(term)
            role = "作用" if thing and not _ROLE_LABELS.search(term) else ""
            out.append(Candidate("explain", desc, desc_at, src, unit,
                                 {"subject": subject, "term": term, "role": role}))
        name = (names(term) or [term])[0]
        if (re.fullmatch(r"[A-Za-z][\w\-.+]*", name) or len(name) <= 6) and name in unit:
            at = span.start + unit.find(name)
            out.append(Candidate("cloze", name, at, src, unit, {"blanked": _blank(unit, name)}))
        return out
    lab = _LABELLED.match(unit) if chunk.page is None else None  # a PDF's "x: y" lines are references, headers
    if lab and not _GENERIC_LABELS.match(_clean(lab.group("label"))):
        label = _clean(lab.group("label"))
        value_at = span.start + lab.start("value")
        lead = re.match(r"[$¥€~约≈]?\s*", text[value_at:span.end])
        fig = _figure_key(text, value_at)
        if fig and fig[0] - value_at <= (lead.end() if lead else 0) + 1 \
                and not re.fullmatch(r"\d", text[fig[0]:fig[1]].strip()):
            key = text[fig[0]:fig[1]]
            out.append(Candidate("recall", key, fig[0], src, unit,
                                 {"subject": subject, "label": label, "context": context}))
            return out
        if _ROLE_LABELS.search(label) and len(label) <= 8 and span.end - value_at >= 8:
            item = _item_above(text, span.start)  # "1. **RNN (1986) - 顺序建模**:" names whose 优势 this is
            out.append(Candidate("explain", text[value_at:span.end].strip(), value_at, src, unit,
                                 {"subject": item or subject, "term": label, "role": ""}))
            return out
    if span.kind != "sentence" or "$" in unit:
        return out
    m = _ASPECT_IS.match(unit)
    if m:
        out.append(Candidate("explain", m.group("y").strip(), span.start + m.start("y"), src, unit,
                             {"subject": _clean(m.group("a")), "term": m.group("b"), "role": None}))
    m = _PROPOSED.search(unit)
    if m:
        what = re.sub(r"[*]|\s*:cite:.*$", "", m.group("what")).strip()
        if what:
            out.append(Candidate("recall", m.group("who"), span.start + m.start("who"), src, unit,
                                 {"who": True, "what": what}))
    body = _MD.sub("", unit)
    if body != unit:  # offsets of markup-free text would drift: only plain sentences below
        return out
    m = _BECAUSE.match(unit)
    if m and not _BY_MEANS.match(unit):
        g = "x" if m.group("x") else "x2"
        out.append(Candidate("explain", m.group(g).strip(), span.start + m.start(g), src, unit,
                             {"subject": subject, "why": m.group("y").strip(" ，,")}))
    m = _CALLED.search(unit)
    if m and len(unit) >= 15 and m.start() >= 4:
        term = m.group("term")
        out.append(Candidate("cloze", term, span.start + m.start("term"), src, unit, {"blanked": _blank(unit, term)}))
    m = _BY_MEANS.match(unit)
    if m:
        b_at = span.start + m.start("b")
        out.append(Candidate("explain", m.group("b"), b_at, src, unit,
                             {"subject": re.sub(r"(?:是|就是|则)$", "", m.group("a").strip()),
                              "goal": re.sub(r"^(?:以|来|从而)", "", m.group("c").strip(" ，,"))}))
    d = _DEFINES.match(unit)
    if d and len(unit) >= 15 and "$" not in unit and not re.search(r"[?？]$", unit) and _is_term(d.group("term"), d.group("verb")):
        term = d.group("term")
        out.append(Candidate("cloze", term, span.start, src, unit, {"blanked": _blank(unit, term)}))
    fig = _figure_key(text, span.start)
    if fig and fig[1] <= span.end and fig[0] > span.start and 20 <= len(unit) <= 220 and "$" not in unit and not re.search(r"[?？]$", unit) \
            and re.match(r"[A-Z0-9\u4e00-\u9fff\"“(（]", unit) and len(figures(unit)) <= 3 \
            and not re.fullmatch(r"(?:19|20)\d\d[a-z]", text[fig[0]:fig[1]]):
        key = text[fig[0]:fig[1]]
        if re.search(r"[%万亿KMBkmbt]|[\u4e00-\u9fff]$|[a-z]$", key.strip()):  # a figure with a unit
            out.append(Candidate("recall", key, fig[0], src, unit,
                                 {"blanked": _blank(unit, key, fig[0] - span.start), "fill": True}))
    return out


# "1. **RNN (1986) - 顺序建模**:" or a bare "1. 标准微调（Standard Fine-tuning）" line
_ITEM = re.compile(r"^\s*\d{1,2}\.\s*(?:\*\*(?P<name>[^*\n]{2,40})\*\*|(?P<bare>[^*\n:：。，]{2,40}?)\s*[:：]?\s*$)", re.M)


def _item_above(text: str, at: int) -> str:
    """The numbered bold item a line sits under ("2. **LSTM (1997) - 门控机制**:" → "LSTM"), if no
    heading comes between them."""
    before = text[:at]
    last = None
    for m in _ITEM.finditer(before):
        last = m
    if last is None or re.search(r"^\s*#{1,6}\s", before[last.end():], re.M) and \
            not re.search(r"^```", before[last.end():], re.M):
        return ""
    return heading_name(last.group("name") or last.group("bare"))


def _glossary_term(term: str) -> bool:
    from .glossary import PAIRS

    return any(zh in term or en in term.lower() for en, zh in PAIRS if len(zh) >= 2)


def _is_term(term: str, verb: str) -> bool:
    """A definition's subject is a term: a name, a glossary term, or a Chinese noun before a
    defining verb (是一种 / 是指 …, not a bare 是) that does not open like an ordinary sentence."""
    from .glossary import PAIRS

    if names(term):
        return True
    if any(term == zh or term.lower() == en for en, zh in PAIRS):
        return verb not in ("是", "即") or len(term) >= 3
    return verb not in ("是", "即", "is a", "is an") and re.match(r"[\u4e00-\u9fff]", term) is not None \
        and not _NOT_TERM.match(term)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _row_candidates(chunk: Chunk, span: Span, src: Source) -> list[Candidate]:
    text = chunk.text
    row = text[span.start:span.end]
    header = _cells(text[span.context[0]:span.context[1]])
    cells = _cells(row)
    if len(cells) != len(header) or len(cells) < 2 or re.search(r"<[a-z/]|\$", row):
        return []  # an HTML / KaTeX table (the World Models article) is no question
    name = _clean(cells[0])
    out = []
    pos = row.find("|", row.find(cells[0]) + len(cells[0])) if row.lstrip().startswith("|") else 0
    for j in range(1, len(cells)):
        cell = cells[j]
        at = row.find(cell, pos)
        pos = at + len(cell) if at >= 0 else pos
        plain = _clean(cell)
        label = _clean(header[j])
        if at < 0 or not plain or plain in ("-", "—", "✓", "✗", "✅", "❌") or not re.search(r"[^\W\d_]", label):
            continue
        key_at = span.start + at + cell.find(plain) if plain in cell else -1
        if key_at < span.start:
            continue
        fig = _figure_key(text, key_at)
        is_fig = bool(fig and fig[0] == key_at and fig[1] - key_at >= len(plain) - 2)
        kind = "recall" if is_fig or (len(plain) <= 20 and not re.search(r"[+、,，;；/&]|\s\S+\s", plain)) \
            else "explain"
        out.append(Candidate(kind, plain, key_at, src, row, {"subject": name, "label": _clean(header[j])}))
    return out


def _blank(unit: str, key: str, at: int | None = None) -> str:
    """The unit with the key blanked — every occurrence of a term, or the one figure at `at` (so
    "5 万" does not eat into "2.5 万"; a repeat elsewhere makes the question give itself away) —
    list marker and markup dropped."""
    marked = unit[:at] + "\x00" + unit[at + len(key):] if at is not None else unit.replace(key, "\x00")
    shown = re.sub(r"^\s*(?:[-*+•]\s+|\d{1,2}[.)、]\s*)", "", marked)
    return _MD.sub("", _EMOJI.sub("", shown)).replace("\x00", "____").strip()


_CODE_LIKE = re.compile(r"[=(){}\[\]<>]|^\s*(?:def|import|from|class|return|for|if|#)\b")


def _spans(text: str) -> list[Span]:
    """The passage's units; a "code" line that is Chinese prose (notes that fence their prose in
    ``` blocks) is read as the sentences it holds."""
    out: list[Span] = []
    for span in units(text):
        line = text[span.start:span.end]
        if span.kind == "code" and len(re.findall(r"[\u4e00-\u9fff]", line)) >= 10 and not _CODE_LIKE.search(line) \
                and re.search(r"[。！？；]", line):
            out += [Span(a, b, "sentence") for a, b in sentence_spans(text, span.start, span.end)]
        else:
            out.append(span)
    return out


def candidates(chunk: Chunk) -> list[Candidate]:
    """Every question candidate of one passage, in passage order, keys checked against it."""
    subject = heading_name(chunk.section, chunk.title)
    out = []
    for span in _spans(chunk.text):
        for c in _unit_candidates(chunk, span, subject):
            key = c.key.strip()
            if len(key) < 1 or chunk.text[c.key_at:c.key_at + len(key)] != key:
                continue  # a key must be exactly where it says it is
            out.append(c if key == c.key else Candidate(c.kind, key, c.key_at, c.source, c.unit, c.parts))
    return out


# ---- phrasing ----------------------------------------------------------------------------------

TEMPLATES = {
    "zh": {
        "recall": "{subject}的{label}是多少？",
        "recall_named": "{subject}中，{label}对应的数值是多少？",
        "recall_context": "{label}的{context}是多少？（见“{subject}”一节）",
        "recall_row": "在资料的表格中，“{subject}”这一行的“{label}”是什么？",
        "fill": "填空（根据资料）：{blanked}",
        "who": "根据资料，是谁提出了{what}？",
        "cloze": "填空：{blanked}",
        "explain_role": "{subject}中的{term}有什么{role}？",
        "explain_term": "{subject}的{term}是什么？",
        "explain_said": "资料里关于{subject}的“{term}”是怎么说的？",
        "explain_goal": "{subject}是通过什么{goal}的？",
        "explain_why": "（{subject}）为什么{why}？",
        "explain_row": "{subject}的“{label}”是什么？请简要说明。",
    },
    "en": {
        "recall": "According to the sources, what is the {label} of {subject}?",
        "recall_named": "According to the sources ({subject}), what figure goes with {label}?",
        "recall_context": "According to the sources (\"{subject}\"), what is the {context} of {label}?",
        "recall_row": "In the sources' table, what is the \"{label}\" in the row \"{subject}\"?",
        "fill": "Fill in the blank (from the sources): {blanked}",
        "who": "According to the sources, who proposed {what}?",
        "cloze": "Fill in the blank: {blanked}",
        "explain_role": "According to the sources, what does {term} do in {subject}?",
        "explain_term": "According to the sources, what is the {term} of {subject}?",
        "explain_said": "What do the sources say about \"{term}\" ({subject})?",
        "explain_goal": "According to the sources, how does {subject} achieve this: \"{goal}\"?",
        "explain_why": "({subject}) According to the sources, why is it that \"{why}\"?",
        "explain_row": "According to the sources, what is the \"{label}\" of {subject}? Explain briefly.",
    },
}


def template(c: Candidate, lang: str) -> str:
    t = TEMPLATES["en" if lang == "en" else "zh"]
    p = {k: v for k, v in c.parts.items()}
    subject = p.get("subject") or ("笔记" if lang != "en" else "the notes")
    if c.kind == "recall":
        if p.get("who"):
            return t["who"].format(what=p["what"])
        if p.get("fill"):
            return t["fill"].format(blanked=p["blanked"])
        if c.unit.lstrip().startswith("|"):
            return t["recall_row"].format(subject=subject, label=p["label"])
        if p.get("context"):
            return t["recall_context"].format(subject=subject, context=p["context"], label=p["label"])
        if normalise(subject) in normalise(p["label"]):
            return t["recall"].format(subject="", label=p["label"]).lstrip("的 ")
        if names(p["label"]) or re.match(r"[A-Z]", p["label"]):  # the label names a model: "LLaMA (2023): 7B"
            return t["recall_named"].format(subject=subject, label=p["label"])
        return t["recall"].format(subject=subject, label=p["label"])
    if c.kind == "cloze":
        return t["cloze"].format(blanked=p["blanked"])
    if c.unit.lstrip().startswith("|"):
        return t["explain_row"].format(subject=subject, label=p["label"])
    if p.get("goal"):
        return t["explain_goal"].format(subject=subject, goal=p["goal"])
    if p.get("why"):
        return t["explain_why"].format(subject=subject, why=p["why"])
    if p.get("role"):
        return t["explain_role"].format(subject=subject, term=p["term"], role=p["role"] if lang != "en" else "")
    if "role" in p and p["role"] is not None and not _ROLE_LABELS.search(p["term"]):
        return t["explain_said"].format(subject=subject, term=p["term"])
    return t["explain_term"].format(subject=subject, term=p["term"])


def gives_away(question: str, key: str) -> bool:
    """A question that contains its own answer (the key, or for an explanation most of it)."""
    q, k = normalise(question), normalise(key)
    if not k:
        return True
    if k in q:
        return True
    key_figs = figures(key)
    if len(key_figs) == 1 and len(key) <= 16:  # "ResNet-34 是多少？" → "34 层": the name gives it away
        digits = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", unicodedata.normalize("NFKC", question))}
        plain = re.sub(r"[^\d.]", "", key[key_figs[0].start:key_figs[0].end])
        if plain and float(plain) in digits:
            return True
    if len(key) >= 16:  # an explanation: a long stretch of it copied into the question
        from difflib import SequenceMatcher

        m = SequenceMatcher(None, q, k).find_longest_match(0, len(q), 0, len(k))
        return m.size >= max(10, 0.6 * len(k))
    return False


PHRASE = {
    "zh": "把下面这道测验题改写得自然、简洁。不要给出答案，不要添加新内容，保留“____”和所有名称、数字。只输出改写后的题目。\n题目：{q}\n改写：",
    "en": "Rewrite this quiz question so it reads naturally and briefly. Do not give the answer, add nothing new, "
          "keep any \"____\" and every name and number. Output only the rewritten question.\nQuestion: {q}\nRewritten:",
}


def check_phrasing(new: str, tmpl: str, key: str) -> str | None:
    """Why the model's phrasing is rejected (None: accepted)."""
    new = new.strip()
    if not new or "\n" in new or len(new) > 2 * len(tmpl) + 20:
        return "empty, several lines or too long"
    if gives_away(new, key):
        return "gives the answer away"
    if "____" in tmpl and "____" not in new:
        return "dropped the blank"
    if "____" not in tmpl and not re.search(r"[?？]\s*$", new):
        return "not a question"
    if any(n.lower() not in new.lower() for n in names(tmpl)):
        return "dropped a name"
    old_f = {f.value for f in figures(tmpl)}
    new_f = {f.value for f in figures(new)}
    if new_f != old_f:
        return "changed the figures"
    return None


def phrase(llm, tmpl: str, key: str, lang: str) -> tuple[str, str]:
    """(question, phrased_by): the model's rephrasing when it passes `check_phrasing`."""
    if llm is None:
        return tmpl, "template"
    from .llm.base import GenParams, LLMError

    msgs = [{"role": "user", "content": PHRASE["en" if lang == "en" else "zh"].format(q=tmpl)}]
    try:
        text = "".join(d.text for d in llm.stream(msgs, GenParams(max_tokens=48, temperature=0.0)))
    except LLMError:
        return tmpl, "template"
    text = re.sub(r"^\s*(?:改写|题目|question|rewritten)\s*[:：]\s*", "", text.strip(), flags=re.I).strip()
    text = text.splitlines()[0].strip() if text else ""
    if check_phrasing(text, tmpl, key) is None:
        return text, "llm"
    return tmpl, "template"


# ---- the quiz ----------------------------------------------------------------------------------

def question_id(c: Candidate) -> str:
    return hashlib.sha1(f"{c.source.path}|{c.source.page}|{c.source.start + c.key_at}|{c.kind}|{c.key}"
                        .encode()).hexdigest()[:12]


def pool(chunks: Iterable[Chunk], kinds: tuple[str, ...] = KINDS) -> list[Candidate]:
    """Every candidate of the passages, in passage order, without repeated keys."""
    out, seen = [], set()
    for ch in chunks:
        for c in candidates(ch):
            sig = (c.kind, normalise(c.key), normalise(c.unit))
            if c.kind in kinds and sig not in seen:
                seen.add(sig)
                out.append(c)
    return out


def choose(cands: list[Candidate], n: int, seed: int) -> list[Candidate]:
    """n candidates: shuffled by the seed, then round-robin over the kinds."""
    rng = random.Random(seed)
    order = list(cands)
    rng.shuffle(order)
    by_kind = {k: [c for c in order if c.kind == k] for k in KINDS}
    out: list[Candidate] = []
    keys: set[str] = set()
    used: set[str] = set()  # one question per sentence / row: a cloze and an explain of one line answer each other
    while len(out) < n and any(by_kind.values()):
        for k in KINDS:
            while by_kind[k]:
                c = by_kind[k].pop(0)
                if normalise(c.key) in keys or normalise(c.unit) in used:
                    continue
                keys.add(normalise(c.key))
                used.add(normalise(c.unit))
                out.append(c)
                break
            if len(out) >= n:
                break
    return out


def aliases_of(key: str, document: str) -> tuple[str, ...]:
    from .grading import aliases

    return tuple(sorted(a for a in aliases(key, document) if a != key))


def make_quiz(topic: str, chunks: list[Chunk], n: int = 5, seed: int = 0, lang: str | None = None,
              llm=None, documents: dict[str, str] | None = None) -> Quiz:
    """A quiz of up to `n` questions from `chunks` (the topic's passages, most relevant first)."""
    t0 = time.perf_counter()
    # the notes are Chinese: an English quiz when asked, or when the topic is English words
    lang = lang or ("en" if topic and language(topic) == "en" and len(re.findall(r"[A-Za-z]+", topic)) >= 3 else "zh")
    cands = pool(chunks)
    picked = choose(cands, n * 3, seed)  # spares for questions the checks reject
    questions: list[Question] = []
    seen_q: set[str] = set()
    for c in picked:
        if len(questions) >= n:
            break
        if c.source.text.find(c.key) < 0:
            continue
        tmpl = template(c, lang)
        if gives_away(tmpl, c.key) or normalise(tmpl) in seen_q:
            continue
        text, by = phrase(llm, tmpl, c.key, lang)
        if normalise(text) in seen_q:
            continue
        seen_q.add(normalise(text))
        seen_q.add(normalise(tmpl))
        doc = (documents or {}).get(c.source.path, c.source.text)
        start = c.source.start + c.key_at
        questions.append(Question(question_id(c), c.kind, text, c.key, c.source, lang, c.unit, start,
                                  start + len(c.key), aliases_of(c.key, doc) if c.kind != "explain" else (),
                                  by, tmpl))
    return Quiz(topic, seed, questions, lang, {"total": (time.perf_counter() - t0) * 1000}, len(cands))
