"""Tokenisation for BM25: jieba for Chinese, English words and numbers kept whole-ish.

What a learner types and what the corpus says differ in small ways that BM25 cannot see past
on its own, so questions and chunks go through the same normalisation:

- model names and figures stay whole as well as in parts: "DeepSeek-V3" → deepseek, v3,
  deepseek-v3; "15.7B" → 15.7, 15.7b (jieba alone cuts it into "15.7" + "b" but keeps "16b");
  "top-5" → top, 5, top-5. The whole form is rare, so it tells V2 from V3.
- large numbers get one spelling across languages: 278.8 万 = 2.788 million = 2.788M → 2.788m.
- English words are lightly stemmed (plural, -ed, -ing, -ion, final e), so "parameters" meets
  "parameter" and "activated" meets "activation" (both "activat").
- question words and fillers in both languages are dropped (they only add noise to the score).

Changing any of this changes the index's tokens: bump TOKENIZER_VERSION. (The retriever also
checks a sample of the stored tokens and re-tokenises in memory when they differ.)
"""
from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

from .text import STOPWORDS  # noqa: F401  (re-exported: the one stopword list)

TOKENIZER_VERSION = 2

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
# a Latin/number compound: letters or digits joined by - . _ / (e.g. deepseek-v3, 15.7b, gpt-4o)
_COMPOUND = re.compile(r"[a-z0-9]+(?:[-._/][a-z0-9]+)+")


_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def stem(word: str) -> str:
    """A light English suffix stripper (plural, -ed, -ing, -ion, final e); other tokens (Chinese,
    numbers, short words, compounds) pass unchanged. Stems need not be words, only the same
    for a question's word and the passage's ("experts"/"expert", "balancing"/"balance")."""
    if not word.isascii() or not word.isalpha() or len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 5 and word.endswith("ion"):  # activation/activated → activat
        word = word[:-3]
    if len(word) > 4 and word.endswith("e") and word[-2] not in "aeiou":
        word = word[:-1]  # balance/balancing → balanc, share/shared → shar
    return word


_ZH_NUM = re.compile(r"(\d+(?:\.\d+)?)\s*(万亿|亿|万)")
_EN_NUM = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion|[kmbt])(?![a-z])")
_SCALE = {"万": 1e4, "亿": 1e8, "万亿": 1e12, "thousand": 1e3, "million": 1e6, "billion": 1e9,
          "trillion": 1e12, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def _canonical(value: float) -> str:
    for unit, scale in (("t", 1e12), ("b", 1e9), ("m", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{value:.4g}"


def number_tokens(text: str) -> list[str]:
    """Large numbers in one spelling whatever the language: 278.8 万 = 2.788 million = 2.788M →
    "2.788m"; 6250万 → "62.5m"; 6710亿 → "671b". `text` is already NFKC + lower-case."""
    out = []
    for rx in (_ZH_NUM, _EN_NUM):
        for m in rx.finditer(text):
            try:
                out.append(_canonical(float(m.group(1)) * _SCALE[m.group(2)]))
            except (ValueError, OverflowError):
                continue
    return out


def tokenize(text: str) -> list[str]:
    """NFKC + lower-case, jieba search-mode segmentation (adds sub-words of long Chinese words,
    which helps recall), compounds kept whole as well, light English stemming, then drop
    punctuation, stopwords and lone letters."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    for w in _get_jieba().cut_for_search(text):
        t = w.strip()
        if not t or not _WORD.search(t) or t in STOPWORDS:
            continue
        if len(t) == 1 and t.isascii() and t.isalpha():
            continue  # "b" of "15.7 b", "x" of "x = 1": noise once compounds are kept
        out.append(stem(t))
    for m in _COMPOUND.finditer(text):
        whole = m.group(0)
        if whole.replace(".", "").isdigit():  # "3.14" is already one jieba token
            continue
        # every run of ≥ 2 parts: "deepseek-v3-base" → deepseek-v3, v3-base, deepseek-v3-base
        parts = re.split(r"([-._/])", whole)
        words, seps = parts[0::2], parts[1::2]
        n = len(words)
        for i in range(n):
            for j in range(i + 2, min(n, i + 4) + 1):
                c = words[i] + "".join(s + w for s, w in zip(seps[i:j - 1], words[i + 1:j]))
                if not c.replace(".", "").isdigit():
                    out.append(c)
    have = set(out)
    out += [t for t in number_tokens(text) if t not in have]
    return out


@lru_cache(maxsize=16384)
def token_set(text: str) -> frozenset[str]:
    """`tokenize(text)` as a set, memoised: evidence scoring reads the same sentences, headings
    and titles again for every unit window and every follow-up, and jieba was a quarter of it.
    Words are cut at whitespace, so a window's set is the union of its parts' sets (but for a
    figure whose unit starts the next part)."""
    return frozenset(tokenize(text))


def chunk_tokens(chunk) -> list[str]:
    """A chunk's BM25 document: the tokens of its searchable text (heading path + cleaned text).
    The one definition for the index and for the retriever's staleness check."""
    from .chunking import searchable_text

    return tokenize(searchable_text(chunk))


def bm25_index(tokens: list[list[str]], k1: float = 1.5, b: float = 0.75):
    """A bm25s index over pre-tokenised chunks (an empty chunk gets a placeholder token)."""
    import bm25s

    bm25 = bm25s.BM25(k1=k1, b=b)
    bm25.index([t or ["∅"] for t in tokens], show_progress=False)
    return bm25
