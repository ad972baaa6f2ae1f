"""Tokenisation for BM25: jieba for Chinese, English words and numbers kept whole-ish."""
from __future__ import annotations

import logging
import re
import unicodedata

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
STOPWORDS = frozenset(
    "的 了 和 是 在 有 与 及 或 中 对 为 也 就 都 而 把 被 这 那 个 之 其 以 于 上 下 吗 呢 吧 啊 什么 怎么 "
    "如何 哪些 哪个 为什么 多少 是否 一个 一种 我们 你 我 他 它 请 问 能 会 可以 "
    "a an the of to in on for and or is are was were be been what which who how why does do did "
    "it its this that these those with by as at from about into than then there their can could "
    "please tell me explain describe".split())

_jieba = None


def _get_jieba():
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def tokenize(text: str) -> list[str]:
    """NFKC + lower-case, jieba search-mode segmentation (adds sub-words of long Chinese words,
    which helps recall), then drop punctuation and stopwords."""
    text = unicodedata.normalize("NFKC", text).lower()
    return [t for t in (w.strip() for w in _get_jieba().cut_for_search(text))
            if t and _WORD.search(t) and t not in STOPWORDS]
