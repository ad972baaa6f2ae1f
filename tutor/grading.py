"""Grade a learner's answer to a quiz question against its answer key, with feedback.

Deterministic first, because a 0.5B model cannot be trusted to say whether "6710亿" is "671B":
- a key that is a figure is compared by value (text core `figures`: 万/亿/K/M/B, %, full-width),
  rounded to the precision the learner wrote ("约560万美元" answers "$5.576M");
- a key that is a term is matched after normalising (case, width, spacing), through its zh/en
  pairs (the glossary, and the note's own "低秩适配（Low-Rank Adaptation, LoRA）"), forgiving one
  typo in a long Latin word;
- an explanation is graded by how many of the reference's key points (its clauses) the answer
  covers, counting words in either language.
The LLM is asked only when the settings say the configured model is strong enough
(`quiz_llm_grader`), and only for explanations; `decided_by` says which one decided.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import asdict, dataclass, field

from .text import compact, figures, normalise, terms

CORRECT, PARTIAL, WRONG = "correct", "partial", "wrong"
FULL_COVERAGE = 0.6  # share of key points an explanation must cover to be correct
SOME_COVERAGE = 0.3  # ... to be partly right
POINT_COVERED = 0.5
CLOSE = 0.15  # a figure this close to the key (relative) is partly right  # share of a key point's words the answer must hold to cover it


@dataclass(frozen=True)
class Grade:
    verdict: str  # correct | partial | wrong
    score: float  # 0..1
    missing: list[str] = field(default_factory=list)  # key points / the key the answer lacks
    decided_by: str = "match"  # match | coverage | llm
    feedback: str = ""  # what to tell the learner, quoting the source
    quote: str = ""  # the source passage, key highlighted with 【】

    def to_dict(self) -> dict:
        return asdict(self)


# ---- figures -------------------------------------------------------------------------------------

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
_ZH_NUM = re.compile(r"[零〇一二两三四五六七八九十百千万亿点]+")


def _zh_int(s: str) -> int | None:
    """"三百七十" → 370 (no 万/亿 inside)."""
    total, digit = 0, None
    for ch in s:
        if ch in _ZH_DIGITS:
            digit = _ZH_DIGITS[ch]
        elif ch in _ZH_UNITS:
            total += (1 if digit is None else digit) * _ZH_UNITS[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def zh_numerals(text: str) -> str:
    """Chinese numerals written out ("百分之十五点三", "三百七十亿") as digits ("15.3%", "370亿"), so
    the one figure parser reads them."""
    def one(m: re.Match) -> str:
        s = m.group(0)
        if not any(c in _ZH_DIGITS for c in s):
            return s
        intpart, _, frac = s.partition("点")
        scale = ""
        for unit in ("亿", "万"):
            if intpart.endswith(unit):
                intpart, scale = intpart[:-1], unit
                break
        if "万" in intpart or "亿" in intpart:
            return s
        whole = _zh_int(intpart) if intpart else 0
        if whole is None or (frac and not all(c in _ZH_DIGITS for c in frac)):
            return s
        digits = str(whole) + ("." + "".join(str(_ZH_DIGITS[c]) for c in frac) if frac else "")
        return digits + scale
    text = re.sub(r"百分之([零〇一二两三四五六七八九十百点]+)", lambda m: one(re.match(_ZH_NUM, m.group(1))) + "%", text)
    return _ZH_NUM.sub(one, text)


def is_figure_key(key: str) -> bool:
    """A key that is a figure with at most a unit word beside it ("15.3%", "671B", "2048 GPU")."""
    figs = figures(key)
    if len(figs) != 1:
        return False
    rest = key[:figs[0].start] + key[figs[0].end:]
    return len(re.sub(r"[\s$¥€,，()（）]", "", rest)) <= 8


def _sig_round(x: float, digits: int) -> float:
    return float(f"{x:.{max(1, digits)}g}")


def _significant(number_text: str) -> int:
    """Significant digits the learner wrote: "560" → 2, "5.576" → 4, "15" → 2."""
    digits = re.sub(r"[^\d.]", "", number_text)
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0")) or 1
    return len(digits.lstrip("0").rstrip("0")) or 1


def grade_figure(key: str, answer: str) -> tuple[str, float, str]:
    """(verdict, score, why) for a figure key. Same value, or the key rounded to the learner's
    precision: correct. The right digits without the key's scale ("671" for "671B"), or within
    `CLOSE`: partial."""
    k = figures(key)[0]
    text = unicodedata.normalize("NFKC", zh_numerals(answer))
    best = (WRONG, 0.0, "no matching figure")
    for f in figures(text):
        raw = text[f.start:f.end]
        if f.value == k.value or (f.value != 0 and abs(f.value - k.value) <= 1e-9 * abs(k.value)):
            return CORRECT, 1.0, "same value"
        if _sig_round(k.value, _significant(raw)) == f.value and f.value != 0:
            return CORRECT, 1.0, "same value, rounded"
        plain = float(re.sub(r"[^\d.]", "", raw) or "nan")
        key_plain = float(re.sub(r"[^\d.]", "", key[k.start:k.end]) or "nan")
        if plain == key_plain and f.value != k.value and not re.search(r"[万亿kmbtKMBT]|thousand|million|billion",
                                                                       raw):
            best = max(best, (PARTIAL, 0.5, "right digits, scale missing"), key=lambda b: b[1])
        elif k.value and abs(f.value - k.value) / abs(k.value) <= CLOSE:
            best = max(best, (PARTIAL, 0.5, "close, but not the figure"), key=lambda b: b[1])
    return best


# ---- terms ---------------------------------------------------------------------------------------

def aliases(key: str, source: str = "") -> set[str]:
    """The key's other names: glossary pairs, and "中文（English, ABBR）" written around it in the
    source passage or anywhere in the note it came from."""
    from .glossary import PAIRS

    out = {key}
    low = key.lower()
    for en, zh in PAIRS:
        if en.lower() == low:
            out.add(zh)
        elif zh == key:
            out.add(en)
    # "低秩适配（Low-Rank Adaptation, LoRA）", "残差网络（ResNet）", "Transformer（变换器）"
    for m in re.finditer(r"([\u3400-\u9fff]{2,12}|[A-Za-z][\w\- ]{1,40})\s*[（(]([^（）()]{1,60})[）)]", source):
        zh, inner = m.group(1), m.group(2)
        names = [x.strip() for x in re.split(r"[,，/、;；]", inner)
                 if len(compact(x)) >= 2 and not compact(x).isdigit()]
        group = {zh.strip(), *names}
        if any(compact(g) == compact(key) for g in group):
            out |= group
    return out


def _typo_match(a: str, b: str) -> bool:
    """One slip in a longish Latin word ("Transfomer", "Droput")."""
    if len(b) < 5 or not re.fullmatch(r"[a-z0-9\-]+", b):
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.85 and abs(len(a) - len(b)) <= 2


def grade_term(key: str, answer: str, source: str = "", extra: list[str] | tuple[str, ...] = ()) -> tuple[str, float, str]:
    ans = compact(answer)
    if not ans:
        return WRONG, 0.0, "empty answer"
    for name in sorted(aliases(key, source) | set(extra), key=len, reverse=True):
        n = compact(name)
        if not n:
            continue
        if n == ans or (n in ans and len(ans) <= len(n) + 6):
            return CORRECT, 1.0, "same term" if name == key else f"same term ({name})"
        words = re.findall(r"[a-z0-9\-]+", normalise(answer))
        if any(_typo_match(w, n) for w in words) or _typo_match(ans, n):
            return CORRECT, 1.0, "same term, misspelt"
        if n in ans:
            return CORRECT, 0.9, "term in a longer answer"
    # a Chinese phrase as key (a table cell: "生成逼真样本"): the same words, glue words aside
    plain_key = re.sub(r"[的了地之]", "", compact(key))
    if len(plain_key) >= 4 and re.search(r"[\u3400-\u9fff]", plain_key):
        kb, ab = terms(plain_key), terms(re.sub(r"[的了地之]", "", compact(answer)))
        share = len(kb & ab) / len(kb) if kb else 0.0
        if share >= 0.75 and len(ans) <= 2 * len(plain_key) + 4:
            return CORRECT, 0.9, "same words"
        if share >= 0.5:
            return PARTIAL, 0.5, "some of the words"
    return WRONG, 0.0, "another term"


# ---- explanations --------------------------------------------------------------------------------

_CLAUSE = re.compile(r"[，,；;、。.!?！？:：（）()]|\s+(?:and|while|so|which)\s+|并且|同时|而且|从而|使得|所以")
# words that carry no point of their own in a reference ("有效缓解了…", "这种方法能够…")
FILLER = frozenset("首次 大规模 有效 显著 能够 可以 进行 利用 使用 这种 方法 问题 过程 成为 通过 因为 由于 一种 "
                   "或 甚至 保证 实现 其 中 了 的 等".split())
# explanation verbs and adverbs a learner words differently (zh and en); the glossary holds the
# nouns. A word of a group counts as any other.
SYNONYMS: list[frozenset[str]] = [frozenset(g.split()) for g in (
    "加快 更快 加速 提速 快 faster speed speeds sped accelerate accelerates",
    "减少 降低 更少 少 减小 削减 fewer less reduce reduces reduced cut cuts lower",
    "缓解 解决 减轻 避免 mitigate mitigates alleviate alleviates solve solves avoid avoids ease eases",
    "直接 directly direct",
    "传播 回传 传回 传递 流动 propagate propagates flow flows pass passes",
    "提升 提高 改善 improve improves boost boosts",
    "保持 维持 不降 keep keeps keeping maintain maintains preserve preserves",
    "可能 可行 possible feasible",
    "更深 更深层 deeper",
    "新增 新加 额外 new added extra adds",
    "大模型 大型模型 large model big model",
    "参数量 参数 parameters parameter params",
)]


def _words(text: str) -> list[str]:
    """Content words of a key point: jieba words (Latin words whole), fillers and stopwords out."""
    from .lexical import _get_jieba
    from .text import STOPWORDS

    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for w in _get_jieba().cut(text):
        w = w.strip()
        if not w or not re.search(r"\w", w) or w in STOPWORDS or w in FILLER:
            continue
        if len(w) == 1 and not re.match(r"[\u3400-\u9fff\d]", w):
            continue
        out.append(w)
    return out


def _expanded(answer: str) -> str:
    """The answer, normalised, with its glossary translations and synonym groups added."""
    from .glossary import translate_terms
    from .lexical import stem

    text = zh_numerals(answer)
    base = unicodedata.normalize("NFKC", f"{text} {translate_terms(text)}").lower()
    stems = {stem(w) for w in re.findall(r"[a-z]+", base)}
    extra = [" ".join(g) for g in SYNONYMS
             if any((w in base if not w.isascii() else stem(w) in stems) for w in g)]
    return base + " " + " ".join(extra) + " " + " ".join(stems)


def _covered(word: str, expanded: str, stems: set[str]) -> bool:
    from .glossary import translate_terms
    from .lexical import stem

    if word.isascii():
        return stem(word) in stems or word in expanded
    if word in expanded or word in expanded.replace(" ", ""):
        return True
    return any(stem(t) in stems for t in re.findall(r"[a-z]+", translate_terms(word).lower()))


def key_points(reference: str) -> list[str]:
    """The reference's clauses with some content (a point is what a learner must say)."""
    out = []
    for part in _CLAUSE.split(reference):
        part = (part or "").strip(" 【】\"'“”")
        if len(_words(part)) >= 1 and len(part) >= 3:
            out.append(part)
    return out or [reference.strip()]


def coverage(reference: str, answer: str, question: str = "") -> tuple[float, list[str]]:
    """(share of key points covered, the points not covered). A point is covered when the
    answer holds at least half of its content words, in either language; words the question
    already gives (its subject) are not asked of the learner."""
    from .lexical import stem

    asked = set(_words(question))
    expanded = _expanded(answer)
    stems = {stem(w) for w in re.findall(r"[a-z]+", expanded)}
    points, missing = key_points(reference), []
    for p in points:
        words = [w for w in _words(p) if w not in asked] or _words(p)
        got = sum(_covered(w, expanded, stems) for w in words)
        if got / len(words) < POINT_COVERED:
            missing.append(p)
    return (len(points) - len(missing)) / len(points), missing


# ---- the entry point -------------------------------------------------------------------------------

def highlight(passage: str, key: str) -> str:
    """The source passage with the key marked 【like this】 (plain text: terminal, JSON, UI)."""
    i = passage.find(key)
    return passage if i < 0 else f"{passage[:i]}【{key}】{passage[i + len(key):]}"


def quote_of(question: dict, width: int = 120) -> str:
    """What the feedback quotes: the sentence / row the key sits in (`unit`), else the words around
    the key in the passage, with the key highlighted."""
    key = question["answer_key"]
    unit = question.get("unit") or ""
    if key in unit:
        return highlight(unit.strip(), key)
    text = (question.get("source") or {}).get("text", "")
    i = text.find(key)
    if i < 0:
        return text[: 2 * width]
    a, b = max(0, i - width), min(len(text), i + len(key) + width)
    return ("…" if a else "") + highlight(text[a:b], key) + ("…" if b < len(text) else "")


def grade(question: dict, answer: str, llm=None) -> Grade:
    """Grade `answer` to `question` (the `tutor quiz --json` question shape: kind, answer_key,
    source.text). `llm`: a model strong enough to judge explanations (None: coverage decides)."""
    key = question["answer_key"]
    kind = question.get("kind", "recall")
    source = (question.get("source") or {}).get("text", "")
    quote = quote_of(question)
    lang = "en" if (question.get("lang") == "en") else "zh"
    if not answer.strip():
        return Grade(WRONG, 0.0, [key], "match", _feedback(WRONG, [key], quote, lang), quote)
    if kind != "explain" and is_figure_key(key):
        verdict, score, _ = grade_figure(key, answer)
        decided = "match"
        missing = [] if verdict == CORRECT else [key]
    elif kind != "explain":
        context = source + "\n" + question.get("context", "")
        verdict, score, _ = grade_term(key, answer, context, question.get("aliases", ()))
        decided = "match"
        missing = [] if verdict == CORRECT else [key]
    else:
        share, missing = coverage(key, answer, question.get("question", ""))
        score = round(share, 3)
        verdict = CORRECT if share >= FULL_COVERAGE else PARTIAL if share >= SOME_COVERAGE else WRONG
        decided = "coverage"
        if llm is not None:
            said = llm_verdict(llm, question.get("question", ""), key, answer)
            if said is not None:
                verdict, decided = said, "llm"
                score = {CORRECT: 1.0, PARTIAL: 0.5, WRONG: 0.0}[said]
    return Grade(verdict, score, missing, decided, _feedback(verdict, missing, quote, lang), quote)


FEEDBACK = {
    "zh": {CORRECT: "回答正确。", PARTIAL: "部分正确。", WRONG: "不对。", "missing": "还缺：{m}。",
           "source": "资料原文：{q}"},
    "en": {CORRECT: "Correct.", PARTIAL: "Partly right.", WRONG: "Not quite.", "missing": "Missing: {m}.",
           "source": "The source says: {q}"},
}


def _feedback(verdict: str, missing: list[str], quote: str, lang: str) -> str:
    f = FEEDBACK[lang]
    parts = [f[verdict]]
    if missing and verdict != CORRECT:
        parts.append(f["missing"].format(m="；".join(missing) if lang == "zh" else "; ".join(missing)))
    parts.append(f["source"].format(q=quote))
    return " ".join(parts)


_LLM_GRADE = ("Reference answer: {key}\nQuestion: {question}\nLearner's answer: {answer}\n"
              "Does the learner's answer say what the reference says? Reply with one word: correct, partial or wrong.")


def llm_verdict(llm, question: str, key: str, answer: str) -> str | None:
    """The model's one-word verdict on an explanation, or None when it says something else."""
    from .llm.base import GenParams

    msgs = [{"role": "user", "content": _LLM_GRADE.format(key=key, question=question, answer=answer)}]
    try:
        text = "".join(d.text for d in llm.stream(msgs, GenParams(max_tokens=4, temperature=0.0)))
    except Exception:  # a failed judge call leaves the coverage verdict in place
        return None
    word = re.findall(r"[a-z]+", text.lower())
    return word[0] if word and word[0] in (CORRECT, PARTIAL, WRONG) else None
