"""Conversation history and follow-up rewriting.

A follow-up ("它激活了多少参数？") is rewritten into a standalone question before retrieval, so
the retriever sees the topic. The standalone question must keep BOTH the conversation's topic
(the names / subject of an earlier question) and the follow-up's own question (what it asks:
参数, 错误率, "how many"). Small models often lose the second: measured on Qwen2.5-0.5B they
return the previous question verbatim, the previous question with the history label still on
it, or an answer sentence. So:

- `rule_rewrite` builds a standalone form deterministically: the follow-up with its pronoun
  replaced by the topic; a "what about X" switch as the previous question with its topic
  replaced by X; otherwise topic + follow-up.
- the model's rewrite is checked (`check_rewrite`) and rejected when it equals or contains a
  history question, carries a history label, states instead of asks, carries figures from an
  answer, drops the topic, or drops the follow-up's own words; then the rule form is used.
- retrieval searches both forms (`Rewrite.alternates`), fused like the other query variants,
  so a bad rewrite that slips through cannot lose the evidence.

A question that brings its own topic and no pronoun ("GAN 的判别器做什么？") is a topic change
and is left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .glossary import language
from .llm.base import LLM, GenParams, LLMError
from .prompts import rewrite_messages
from .text import STOPWORDS, clip, figure_values, names, normalise, split_sentences, strip_citations, terms

# pronouns and demonstratives that point back ("它", "这个模型", "its"); 其/该 only as words of
# their own, not inside 其他/尤其/应该
_ZH_PRONOUN = r"它们|它|这个模型|这种模型|这个方法|这种方法|这篇论文|这个|那个|这些|那些|这种|上述|前者|后者|" \
              r"该模型|该方法|(?<!应)该(?!不)|(?<![尤极])其(?![他中实余次])"
# this/that only as a determiner of a generic noun or at the end ("that" also joins clauses)
_EN_PRONOUN = r"\b(?:it|its|they|them|their|the former|the latter)\b|\b(?:this|that|these|those)\b" \
              r"(?=\s+(?:models?|methods?|papers?|approach(?:es)?|ones?|techniques?|architectures?|networks?|" \
              r"ideas?|numbers?|results?)\b|\s*[?.!]?\s*$)"
_PRONOUN = re.compile(f"(?:{_ZH_PRONOUN})|{_EN_PRONOUN}", re.I)
_PLURAL = re.compile(r"它们|这些|那些|\b(?:they|them|their|these|those)\b", re.I)
# "那 ResNet 呢？" / "VGG-19 呢" / "what about ResNet?" / "and BERT?" — the follow-up names a new X
_WHAT_ABOUT_ZH = re.compile(r"^\s*(?:那么?|那|还有)?\s*(?P<x>.+?)\s*(?:呢|怎么样|如何)\s*[？?]?\s*$")
_WHAT_ABOUT_EN = re.compile(r"^\s*(?:(?:and\s+)?(?:what|how)\s+about|and)\s+(?P<x>.+?)\s*\??\s*$", re.I)
# a short question with its own subject is complete: "什么是蒸馏？", "What is LoRA?"
_SELF_CONTAINED = re.compile(r"^\s*(?:什么是|何为)\s*\S{2,}|^\s*\S{2,}?\s*是什么\s*[？?]?\s*$|"
                             r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+\S{2,}", re.I)
_QUESTION_CUE = re.compile(r"[？?]|什么|多少|几|吗|呢|哪|谁|为何|为什么|怎么|怎样|如何|是否|是不是|区别|"
                           r"\b(?:what|which|who|whom|whose|why|when|where|how|does|do|did|is|are|was|"
                           r"were|can|could|should|would|will)\b", re.I)
# history labels: the speakers of a chat transcript and the line labels of the rewrite prompt
# (a model that copies one is echoing the history, not rewriting the follow-up)
_HISTORY_LABEL = re.compile(r"(?:学习者|助教|用户|之前的问题|追问|learner|tutor|user|assistant|earlier question|"
                            r"follow-up)\s*[:：]", re.I)
# the answer slot's own label, which a model may repeat before its rewrite
_SLOT_LABEL = re.compile(r"^\s*(?:独立问题|改写后的问题|改写|standalone question|rewritten question|question)"
                         r"\s*[:：]\s*", re.I)
_LEAD = re.compile(r"^\s*(?:请问|请|那么|那|所以|and|so|then)\s*", re.I)
# where a Chinese question's subject ends: "残差连接|解决了…", "梯度下降|会遇到…"
_ZH_SUBJECT_END = re.compile(r"的|是|有|为什么|为何|怎么|如何|能|会|在|和|与|跟|解决|需要|可以|要|用|[，,？?。、]")
_CAP_RUN = re.compile(r"(?<![\w-])[A-Z][\w.\-]*(?:\s+[A-Z][\w.\-]*)*")
_GLUE = set("的了是在吗呢么个和与及或也就都而把被啊吧")
MIN_KEPT = 0.5  # share of the follow-up's own words a rewrite must keep


@dataclass
class Conversation:
    """One learner's history: (question, answer) pairs, newest last. Per session, never shared."""

    turns: list[tuple[str, str]] = field(default_factory=list)

    def add(self, question: str, answer: str) -> None:
        self.turns.append((question, answer))

    def reset(self) -> None:
        self.turns.clear()


@dataclass(frozen=True)
class Rewrite:
    """How a follow-up became the question the tutor searches and answers.

    `standalone` is what retrieval and the answer use; `rule` the deterministic form; `model`
    the model's rewrite as read (None when not asked); `rejected` why the model's rewrite was
    not used (None when it was, or was not asked)."""

    question: str
    standalone: str
    rule: str | None = None
    model: str | None = None
    rejected: str | None = None

    @property
    def rewritten(self) -> bool:
        return self.rule is not None

    @property
    def alternates(self) -> tuple[str, ...]:
        """Other forms to search beside `standalone` (the rule form when the model's was used)."""
        return (self.rule,) if self.rule and self.rule != self.standalone else ()

    def to_dict(self) -> dict:
        return {"standalone_question": self.standalone, "rule": self.rule, "model": self.model,
                "rejected": self.rejected}


# ---- what a question is about ---------------------------------------------------------------------

def _what_about(question: str) -> str | None:
    """X of a "what about X" follow-up ("那 ResNet 呢？", "What about BERT?"), when X is a name
    (a new subject) and little else; None otherwise."""
    for rx in (_WHAT_ABOUT_EN, _WHAT_ABOUT_ZH):
        m = rx.match(question)
        if not m or _PRONOUN.search(m.group("x")):
            continue
        x = m.group("x").strip()
        found = _names(x)
        rest = x
        for n in found:
            rest = rest.replace(n, "")
        if found and len(re.sub(r"[\s和与及,，、]|and|the", "", rest)) <= 2:
            return x
    return None


def _switched_thing(question: str) -> str | None:
    """X of "What about the V model alone?": not a bare name, but a thing of its own (a capital
    letter: "V model", "Full World Model") put in place of the previous question's subject."""
    m = _WHAT_ABOUT_EN.match(question)
    if not m or _PRONOUN.search(m.group("x")):
        return None
    x = re.sub(r"^(?:the|a|an)\s+", "", m.group("x").strip(), flags=re.I)
    return x if re.search(r"[A-Z]", x) else None


def _rank(name: str) -> int:
    """How likely a name is the subject: CamelCase (AlexNet, DeepSeek-V3) first, then names
    with a number (GPT-3, VGG-19), then acronyms and capitalised words (BERT, Transformer), last
    plural acronyms (GPUs, TPUs) — so "How many GPUs did DeepSeek-V3 use?" is about DeepSeek-V3."""
    if re.fullmatch(r"[A-Z]{2,}s", name):
        return 3
    if re.search(r"[a-z][A-Z]", name):
        return 0
    if re.search(r"\d", name):
        return 1
    return 2


def _names(text: str) -> list[str]:
    """Model / method names and capitalised term runs ("DeepSeek-V3", "Scaling Law",
    "Transformer"), without sentence-initial question words; most subject-like first."""
    found: list[tuple[int, str]] = [(text.find(n), n) for n in names(text)]
    for m in _CAP_RUN.finditer(text):
        words = m.group(0).split()
        while words and (words[0].lower() in _STOP_LOWER or words[0].lower() in STOPWORDS):
            words.pop(0)
        if words:
            found.append((m.start() + m.group(0).find(words[0]), " ".join(words)))
    out: list[tuple[int, str]] = []
    for pos, n in sorted(found):
        n = n.rstrip(".-")
        if n and not any(n in o for _, o in out):
            out = [(p, o) for p, o in out if o not in n] + [(pos, n)]
    return [n for _, n in sorted(out, key=lambda pn: (_rank(pn[1]), pn[0]))]


def _subject(question: str) -> str | None:
    """The topic a question sets: a "what about X" subject, its names, or (Chinese) the words
    before the predicate, e.g. "残差连接" of "残差连接解决了什么问题？"."""
    if _PRONOUN.search(question) and not _names(question):
        return None  # itself a follow-up: its topic is further back
    x = _what_about(question)
    if x:
        return x
    found = _names(question)
    if found:
        return found[0]
    if language(question) == "zh":
        q = _LEAD.sub("", question)
        q = re.sub(r"^\s*(?:什么是|何为|为什么|为何|怎么|如何)\s*", "", q)
        m = _ZH_SUBJECT_END.search(q)
        head = q[: m.start()].strip() if m else ""
        if 2 <= len(head) <= 12:
            return head
    return None


def topic(history: list[tuple[str, str]], plural: bool = False) -> str | None:
    """The conversation's current topic: the subject of the newest history question that sets
    one (a pronoun follow-up sets none, so "它…？" after "它…？" still finds the first topic).
    `plural`: all the names of that question ("AlexNet 和 ResNet"), for 它们 / they."""
    for q, _ in reversed(history):
        sub = _subject(q)
        if sub:
            if plural:
                found = _names(q)
                if len(found) >= 2:
                    return (" 和 " if language(q) == "zh" else " and ").join(found[:3])
            return sub
    return None


def _base_question(history: list[tuple[str, str]]) -> str:
    """The newest history question that is a full question (not itself a follow-up): what a
    "what about X" switch asks again about X."""
    for q, _ in reversed(history):
        if not _PRONOUN.search(q) and not _what_about(q) and len(q.strip()) > 12:
            return q.strip()
    return history[-1][0].strip()


# ---- the deterministic rewrite ----------------------------------------------------------------------

def needs_rewrite(question: str, history: list[tuple[str, str]]) -> bool:
    """A follow-up that needs the conversation to be understood: it points back (它, its), it
    switches subject on the previous question ("那 ResNet 呢？"), or it is short and brings no
    subject of its own ("为什么？", "参数量多少？"). A question with its own subject and no
    pointer is a topic change: left alone."""
    if not history:
        return False
    q = question.strip()
    if _PRONOUN.search(q) or _what_about(q) or _WHAT_ABOUT_EN.match(q):
        return True
    if len(q) <= 12 and not _names(q) and not _SELF_CONTAINED.search(q):
        return True
    return bool(re.search(r"^\s*(?:那么?|还有)|呢\s*[？?]?\s*$", q)) and bool(re.search(r"呢\s*[？?]?\s*$", q)) \
        and not _names(q)


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([，。？！、：；,?!.]|'s\b)", r"\1", text)
    return re.sub(r"([\u3400-\u9fff])\s+([\u3400-\u9fff])", r"\1\2", text)


def rule_rewrite(question: str, history: list[tuple[str, str]]) -> str:
    """The follow-up made standalone without a model: its pronoun replaced by the topic; a
    "what about X" switch as the previous full question with its topic replaced by X; else
    topic + follow-up (the previous question + follow-up when no topic can be named)."""
    q = question.strip()
    x = _what_about(q) or _switched_thing(q)
    if x:
        base = _base_question(history)
        old = _subject(base)
        if old and old in base and old != x:
            return _tidy(base.replace(old, f" {x} ", 1))
        return _tidy(f"{x} {strip_citations(base)}")
    m = _PRONOUN.search(q)
    sub = topic(history, plural=bool(m and _PLURAL.fullmatch(m.group(0))))
    if sub is None:
        prev = history[-1][0].strip().rstrip("？?。.") if history else ""
        return _tidy(f"{prev} {q}")
    if m:
        word = m.group(0)
        if word.lower() in ("its", "their"):
            repl = f"{sub}'s"
        else:
            repl = sub
        out = q[: m.start()] + f" {repl} " + q[m.end():]
        if re.fullmatch(r"this|that|these|those", word, re.I):  # "this model" → "DeepSeek-V3", not "… model"
            out = re.sub(rf"(?<={re.escape(sub)})\s+(?:models?|methods?|papers?|approach(?:es)?|ones?|"
                         rf"techniques?|architectures?|networks?)\b", "", out, count=1)
        return _tidy(out)
    if sub in q:
        return q
    q = _LEAD.sub("", q) or q
    return _tidy(f"{sub} {q}")


# ---- checking a model's rewrite -----------------------------------------------------------------------

def own_words(question: str) -> set[str]:
    """What the follow-up itself asks, as overlap units: CJK bigrams without a pronoun or a
    grammatical glue character, and Latin words (lower-case, stemmed) without stopwords."""
    from .lexical import stem

    text = _PRONOUN.sub(" ", question)
    out = set()
    for t in terms(text):
        if "\u3400" <= t[0] <= "\u9fff":
            if not (set(t) & _GLUE):
                out.add(t)
        else:
            out.add(stem(t))
    return out


def kept_share(question: str, rewrite: str) -> float:
    """Share of the follow-up's own words that the rewrite keeps (1.0 when it has none)."""
    from .lexical import stem

    want = own_words(question)
    if not want:
        return 1.0
    have = {t if "\u3400" <= t[0] <= "\u9fff" else stem(t) for t in terms(rewrite)}
    return len(want & have) / len(want)


def is_question(text: str) -> bool:
    return bool(_QUESTION_CUE.search(text))


def _bare(text: str) -> str:
    return re.sub(r"[？?。.!！，,\s\"'“”「」]", "", normalise(text))


def clean_rewrite(text: str) -> tuple[str, bool]:
    """The model's output as a one-line question: first non-empty line, the slot label and
    quotes stripped. Also whether it carried a history label ("学习者：…") — then it echoed
    the history rather than rewrote the follow-up."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    line = _SLOT_LABEL.sub("", line)
    labelled = bool(_HISTORY_LABEL.search(line))
    line = _HISTORY_LABEL.sub("", line)
    return line.strip("\"'“”「」 *"), labelled


def check_rewrite(question: str, rewrite: str, history: list[tuple[str, str]],
                  labelled: bool = False, sub: str | None = None) -> str | None:
    """Why the model's `rewrite` of `question` is unusable, or None when it is fine."""
    if not rewrite:
        return "empty"
    if labelled:
        return "history_label"
    if len(rewrite) > 3 * len(question) + 80:
        return "too_long"
    bare = _bare(rewrite)
    for q, _ in history:
        hq = _bare(q)
        if len(hq) >= 6 and hq in bare:
            return "repeats_history"
    if is_question(question) and not is_question(rewrite):
        return "statement"
    asked = figure_values(question + " " + " ".join(q for q, _ in history))
    answered = figure_values(" ".join(a for _, a in history))
    if (figure_values(rewrite) & answered) - asked:
        return "answer_figures"
    if sub and _bare(sub) not in bare and not (terms(sub) & terms(rewrite)):
        return "lost_topic"
    if kept_share(question, rewrite) < MIN_KEPT:
        return "dropped_question"
    return None


def rewrite(question: str, history: list[tuple[str, str]], llm: LLM | None) -> Rewrite:
    """The follow-up as a standalone question, with how it was made. Not a follow-up (no
    history, or a topic change): unchanged. With an LLM its rewrite is used when it passes
    `check_rewrite`; otherwise (and without an LLM) the rule form."""
    question = question.strip()
    if not needs_rewrite(question, history):
        return Rewrite(question, question)
    rule = rule_rewrite(question, history)
    if llm is None:
        return Rewrite(question, rule, rule=rule)
    m = _PRONOUN.search(question)
    sub = _what_about(question) or topic(history, plural=bool(m and _PLURAL.fullmatch(m.group(0))))
    try:
        text, _ = llm.complete(rewrite_messages(question, history, language(question)),
                               GenParams(max_tokens=64, temperature=0.0))
    except LLMError:
        return Rewrite(question, rule, rule=rule, rejected="llm_error")
    cand, labelled = clean_rewrite(text)
    why = check_rewrite(question, cand, history, labelled, sub)
    if why:
        return Rewrite(question, rule, rule=rule, model=cand, rejected=why)
    return Rewrite(question, cand, rule=rule, model=cand)


def standalone_question(question: str, history: list[tuple[str, str]], llm: LLM | None) -> str:
    """The follow-up as a standalone question (unchanged when no rewrite is needed)."""
    return rewrite(question, history, llm).standalone


def answer_gist(answer: str, limit: int = 80) -> str:
    """The first sentence of an answer, without citation markers, cut to `limit` characters:
    what "那个数字" or "that result" in a follow-up may point at."""
    sents = split_sentences(strip_citations(answer or ""))
    gist = sents[0].strip() if sents else ""
    return clip(gist, limit, fold=False)


_STOP_LOWER = frozenset("what which who whom whose how why when where does do did is are was were can could "
                        "would should will the a an and or in on of for to with about tell explain describe "
                        "compare according please i my me so then also".split())
