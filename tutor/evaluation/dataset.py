"""Load and validate an eval dataset (JSONL, format in /work/shared/EVAL_SCHEMA.md).

Every eval run goes through `load_dataset`, whoever wrote the file, so a broken item is caught
before any model time is spent on it. All problems of a file are collected and raised together in
one `DatasetError` ("N problems in FILE", then `FILE:LINE: ...` per problem) so the author can fix
the whole file in one pass instead of one error per run.
"""
from __future__ import annotations

import difflib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .. import jsonl
from ..errors import DatasetError

TYPES = ("factoid", "explain", "compare", "multi_hop", "unanswerable", "injection")
NOT_IN_CORPUS = "NOT_IN_CORPUS"


@dataclass(frozen=True)
class Evidence:
    file: str  # base name as it stands in the corpus
    quote: str
    hop: int = 1  # same hop = alternative places for one fact; different hops = facts all needed


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    type: str
    answer: str
    must_include: list[str]
    evidence: list[Evidence]
    lang: str | None
    tags: list[str]
    note: str | None
    distractors: list[dict]

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def normalize(s: str) -> str:
    """Scoring normalisation: NFKC (full-width → ASCII, ligatures, math letters), lower-case,
    all whitespace removed — so line breaks and spacing in PDFs or notes never decide a match."""
    s = unicodedata.normalize("NFKC", s).lower()
    return "".join(ch for ch in s if not ch.isspace())


_MARKDOWN_CHARS = str.maketrans("", "", "`*#|")


def normalize_for_chunk(s: str) -> str:
    """Chunk-vs-quote matching also drops `` ` * # | `` on both sides: a chunker may strip or keep
    markdown emphasis, headings and table bars, and that must not turn a hit into a miss."""
    return normalize(s).translate(_MARKDOWN_CHARS)


# field -> (accepted type, description for messages); None is treated as "absent" for optional ones
_REQUIRED = {"id": (str, "a string"), "question": (str, "a string"), "type": (str, "a string"),
             "answer": (str, "a string"), "must_include": (list, "a list of strings"),
             "evidence": (list, "a list of objects")}
_OPTIONAL = {"lang": (str, "a string"), "tags": (list, "a list of strings"),
             "note": (str, "a string"), "distractors": (list, "a list of objects")}


def _check_passages(raw: list, field: str, errs: list[str]) -> list[Evidence]:
    """Evidence and distractor entries share the {file, quote[, hop]} shape."""
    out = []
    for i, ev in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(ev, dict):
            errs.append(f"{where} must be an object with 'file' and 'quote'")
            continue
        bad = [k for k in ("file", "quote") if not isinstance(ev.get(k), str) or not ev[k].strip()]
        if bad:
            errs.append(f"{where}: missing or empty {' and '.join(repr(k) for k in bad)}")
            continue
        hop = ev.get("hop", 1)
        if type(hop) is not int or hop < 1:  # bool is an int subclass; reject it too
            errs.append(f"{where}: 'hop' must be a positive integer, got {hop!r}")
            continue
        out.append(Evidence(ev["file"], ev["quote"], hop))
    return out


def _parse_item(obj: object, errs: list[str]) -> EvalItem | None:
    """Check one decoded line; append messages to `errs`, return the item only if it is valid."""
    if not isinstance(obj, dict):
        errs.append(f"expected a JSON object, got {type(obj).__name__}")
        return None
    n_before = len(errs)
    for name, (typ, desc) in _REQUIRED.items():
        if name not in obj:
            errs.append(f"missing required field '{name}'")
        elif not isinstance(obj[name], typ):
            errs.append(f"field '{name}' must be {desc}, got {type(obj[name]).__name__}")
    for name, (typ, desc) in _OPTIONAL.items():
        if obj.get(name) is not None and not isinstance(obj[name], typ):
            errs.append(f"field '{name}' must be {desc}, got {type(obj[name]).__name__}")
    for name in ("must_include", "tags"):
        if isinstance(obj.get(name), list) and not all(isinstance(x, str) for x in obj[name]):
            errs.append(f"field '{name}' must be a list of strings")
    if len(errs) > n_before:
        return None  # the checks below assume the shapes are right

    if not obj["id"].strip():
        errs.append("empty 'id'")
    if not obj["question"].strip():
        errs.append("empty 'question'")
    typ = obj["type"]
    if typ not in TYPES:
        hint = difflib.get_close_matches(typ, TYPES, n=1)
        did_you = f"; did you mean '{hint[0]}'?" if hint else ""
        errs.append(f"unknown type {typ!r} (expected one of {', '.join(TYPES)}){did_you}")
    evidence = _check_passages(obj["evidence"], "evidence", errs)
    distractors = obj.get("distractors") or []
    _check_passages(distractors, "distractors", errs)
    must = obj["must_include"]
    if any(not m.strip() for m in must):
        errs.append("'must_include' has an empty string (it would match every answer)")
    if typ == "unanswerable":
        if obj["answer"] != NOT_IN_CORPUS:
            errs.append(f"unanswerable item must have answer {NOT_IN_CORPUS!r}")
        if must:
            errs.append("unanswerable item must have an empty 'must_include'")
    elif typ in TYPES:
        if not must:
            errs.append(f"'must_include' is empty; a {typ} item needs 1-4 key strings")
        if not obj["evidence"]:
            errs.append(f"'evidence' is empty; a {typ} item needs at least one quote")
    if len(errs) > n_before:
        return None
    return EvalItem(
        id=obj["id"], question=obj["question"], type=typ, answer=obj["answer"],
        must_include=list(obj["must_include"]), evidence=evidence, lang=obj.get("lang"),
        tags=list(obj.get("tags") or []), note=obj.get("note"), distractors=list(distractors),
    )


class _CorpusTexts:
    """Normalised text per corpus file, built once per `load_dataset` call.

    PDF quotes are checked first against the cleaned page text the tutor itself indexes; only if
    that fails are the raw `pypdf` page texts read (lazily, once per PDF), so datasets written from
    raw extraction (hyphenated line breaks etc.) validate too without slowing down the usual case.
    """

    def __init__(self, corpus_dir: Path):
        from ..corpus import load_corpus

        self.dir = Path(corpus_dir)
        self.texts: dict[str, list[str]] = {}
        self.paths: dict[str, Path] = {}
        for doc in load_corpus(self.dir).documents:
            self.texts.setdefault(doc.file, []).append(normalize(doc.text))
            self.paths[doc.file] = self.dir / doc.path
        self._raw_pdf: dict[str, list[str]] = {}

    def has_file(self, file: str) -> bool:
        return file in self.texts

    def similar(self, file: str) -> list[str]:
        return difflib.get_close_matches(file, list(self.texts), n=1, cutoff=0.6)

    def contains(self, file: str, quote: str) -> bool:
        q = normalize(quote)
        if any(q in t for t in self.texts.get(file, ())):
            return True
        if file.lower().endswith(".pdf"):
            return any(q in t for t in self._raw_pages(file))
        return False

    def _raw_pages(self, file: str) -> list[str]:
        if file not in self._raw_pdf:
            from ..corpus import open_pdf, page_texts

            try:
                pages = [normalize(t) for t in page_texts(open_pdf(self.paths[file]))]
            except Exception:  # unreadable here means the cleaned check already said all it can
                pages = []
            self._raw_pdf[file] = pages
        return self._raw_pdf[file]


def _check_against_corpus(item: EvalItem, corpus: _CorpusTexts, errs: list[str]) -> None:
    passages = [("evidence", i, e.file, e.quote) for i, e in enumerate(item.evidence)]
    passages += [("distractors", i, d["file"], d["quote"]) for i, d in enumerate(item.distractors)]
    for field, i, file, quote in passages:
        where = f"{field}[{i}]"
        if not corpus.has_file(file):
            hint = corpus.similar(file)
            did_you = f"; did you mean '{hint[0]}'?" if hint else ""
            errs.append(f"{where}: file {file!r} is not in the corpus {corpus.dir}{did_you}")
        elif not corpus.contains(file, quote):
            short = quote if len(quote) <= 60 else quote[:57] + "..."
            errs.append(f"{where}: quote not found in {file}: {short!r}")


def _parse_lines(text: str, parse) -> tuple[list, list[tuple[int, str]]]:
    """Every JSONL line through `parse(obj, errs)`: the (line, record) pairs with unique ids, and
    the (line, message) problems (bad JSON, a duplicate id, what `parse` reported)."""
    problems: list[tuple[int, str]] = []  # (line, message); line 0 = about the whole file
    records: list[tuple[int, object]] = []
    first_line_of: dict[str, int] = {}
    for lineno, line in jsonl.lines(text):  # "\n" only, like every JSONL reader here
        errs: list[str] = []
        try:
            rec = parse(json.loads(line), errs)
        except json.JSONDecodeError as e:
            rec = None
            errs.append(f"invalid JSON: {e.msg} (column {e.colno})")
        if rec is not None:
            if rec.id in first_line_of:
                errs.append(f"duplicate id {rec.id!r} (first used on line {first_line_of[rec.id]})")
            else:
                first_line_of[rec.id] = lineno
                records.append((lineno, rec))
        problems += [(lineno, m) for m in errs]
    return records, problems


def load_dataset(path: Path, corpus_dir: Path | None = None) -> list[EvalItem]:
    """Parse and validate a JSONL dataset; with `corpus_dir`, also check that every evidence and
    distractor quote occurs (after `normalize`) in the named corpus file. Raises `DatasetError`
    listing every problem found, or returns the items in file order."""
    return _load_checked(path, _parse_item, "no items (the file is empty)", corpus_dir,
                         lambda item: [("", item)])


def _load_checked(path: Path, parse, empty: str, corpus_dir: Path | None, quoted) -> list:
    """Every line of `path` through `parse`; with `corpus_dir`, the quotes of each `EvalItem`
    that `quoted(record)` names (with the prefix its problems get) checked against the corpus.
    One `DatasetError` with every problem, or the records in file order."""
    name, text = _read(path)
    records, problems = _parse_lines(text, parse)
    if not records and not problems:
        problems.append((0, empty))
    if corpus_dir is not None and records:
        corpus = _CorpusTexts(Path(corpus_dir))
        for lineno, record in records:
            for prefix, item in quoted(record):
                errs: list[str] = []
                _check_against_corpus(item, corpus, errs)
                problems += [(lineno, prefix + m) for m in errs]
    _raise(name, problems)
    return [record for _, record in records]


def _read(path: Path) -> tuple[str, str]:
    path = Path(path)
    try:
        return path.name, path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(path.name, [f"{path.name}: not UTF-8 text ({e.reason} at byte {e.start})"]) from None


def _raise(name: str, problems: list[tuple[int, str]]) -> None:
    if problems:
        problems.sort(key=lambda p: p[0])  # file order; stable, so per-line order is kept
        raise DatasetError(name, [f"{name}:{n}: {m}" if n else f"{name}: {m}" for n, m in problems])


# ---- multi-turn conversations (format in evals/MULTITURN_SCHEMA.md) -----------------------------

FOLLOWUP_TAG, FIRST_TURN_TAG = "followup", "first_turn"


@dataclass(frozen=True)
class Turn:
    question: str
    item: EvalItem | None  # the scored form of the turn (id "<conversation id>:<turn>"), or None


@dataclass(frozen=True)
class EvalConversation:
    id: str
    turns: list[Turn]

    @property
    def items(self) -> list[EvalItem]:
        return [t.item for t in self.turns if t.item is not None]


def is_multiturn(path: Path) -> bool:
    """True when the file's first JSON line is a conversation (an object with "turns")."""
    try:
        _, text = _read(path)
    except (DatasetError, OSError):
        return False
    for _, line in jsonl.lines(text):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(obj, dict) and "turns" in obj
    return False


def turn_id(conversation_id: str, n: int) -> str:
    """A scored turn's id: the conversation's id and the turn's 1-based index."""
    return f"{conversation_id}:{n}"


def _parse_conversation(obj: object, errs: list[str]) -> EvalConversation | None:
    if not isinstance(obj, dict):
        errs.append(f"expected a JSON object, got {type(obj).__name__}")
        return None
    cid, turns = obj.get("id"), obj.get("turns")
    if not isinstance(cid, str) or not cid.strip():
        errs.append("missing or empty 'id' (a string)")
        return None
    if not isinstance(turns, list) or not turns:
        errs.append("'turns' must be a non-empty list of objects")
        return None
    out: list[Turn] = []
    for n, turn in enumerate(turns, start=1):
        where = f"turns[{n - 1}]"
        if not isinstance(turn, dict) or not isinstance(turn.get("question"), str) or not turn["question"].strip():
            errs.append(f"{where}: must be an object with a non-empty 'question'")
            continue
        if "must_include" not in turn:  # an unscored turn: only its question is asked
            out.append(Turn(turn["question"], None))
            continue
        typ = turn.get("type", "factoid")
        fields = {"answer": NOT_IN_CORPUS if typ == "unanswerable" else "", **turn,
                  "id": turn_id(cid, n), "type": typ, "evidence": turn.get("evidence", [])}
        fields["tags"] = [FOLLOWUP_TAG if n > 1 else FIRST_TURN_TAG, *(turn.get("tags") or [])]
        turn_errs: list[str] = []
        item = _parse_item(fields, turn_errs)
        errs += [f"{where}: {m}" for m in turn_errs]
        out.append(Turn(turn["question"], item))
    if not any(isinstance(t, dict) and "must_include" in t for t in turns):
        errs.append("no scored turn (give at least one turn 'must_include' and 'evidence')")
    return EvalConversation(cid, out) if not errs else None


def load_conversations(path: Path, corpus_dir: Path | None = None) -> list[EvalConversation]:
    """Parse and validate a multi-turn JSONL file (one conversation per line); with
    `corpus_dir`, every scored turn's quotes are checked as in `load_dataset`. Raises
    `DatasetError` listing every problem, or returns the conversations in file order."""
    return _load_checked(path, _parse_conversation, "no conversations (the file is empty)", corpus_dir,
                         lambda conv: [(f"turns[{n}]: ", t.item) for n, t in enumerate(conv.turns) if t.item is not None])
