"""The claims judge's own zh↔en alias table: which Chinese and English words name the same thing.

Owned by the judge on purpose: the answer side expands queries with tutor/glossary.py, and a
judge that matched names through that same table would agree with the answer side whenever the
table is wrong. Two sources, both independent of the answer path:

- `LISTED`: a short hand-written list of the vocabulary answers use to talk about numbers and
  models (parameters, layers, error rate, experts, training cost…), written for the judge.
- `mine(text)`: translations the corpus itself gives in parentheses, "残差网络（ResNet）",
  "低秩适配（Low-Rank Adaptation, LoRA）" — taken from the passages being judged and, when the
  judge has a corpus folder, from every note in it.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

# (english, chinese); an English side is lower-case and may be several words
LISTED: list[tuple[str, str]] = [
    ("parameter", "参数"), ("parameter count", "参数量"), ("parameters", "参数量"), ("weight", "权重"),
    ("layer", "层"), ("layers", "层数"), ("depth", "深度"), ("width", "宽度"), ("error rate", "错误率"),
    ("error", "错误"), ("error", "误差"), ("accuracy", "准确率"), ("accuracy", "精度"), ("precision", "精确率"),
    ("recall", "召回率"), ("score", "得分"), ("score", "分数"), ("benchmark", "基准"), ("dataset", "数据集"),
    ("data", "数据"), ("sample", "样本"), ("token", "词元"), ("token", "token"), ("vocabulary", "词表"),
    ("sequence", "序列"), ("length", "长度"), ("context", "上下文"), ("context length", "上下文长度"),
    ("training", "训练"), ("train", "训练"), ("trained", "训练"), ("pretraining", "预训练"),
    ("pre-training", "预训练"), ("fine-tuning", "微调"), ("fine-tune", "微调"), ("finetuning", "微调"),
    ("inference", "推理"), ("reasoning", "推理"), ("cost", "成本"), ("costs", "成本"), ("hours", "小时"),
    ("gpu hours", "gpu小时"), ("dollars", "美元"), ("usd", "美元"), ("$", "美元"), ("dollars", "钱"), ("$", "钱"), ("$", "dollars"), ("memory", "显存"),
    ("memory", "内存"), ("speed", "速度"), ("throughput", "吞吐量"), ("latency", "延迟"),
    ("expert", "专家"), ("experts", "专家"), ("routed expert", "路由专家"), ("shared expert", "共享专家"),
    ("activated", "激活"), ("active", "激活"), ("total", "总"), ("total parameters", "总参数"),
    ("model", "模型"), ("network", "网络"), ("neural network", "神经网络"), ("architecture", "架构"),
    ("attention", "注意力"), ("self-attention", "自注意力"), ("multi-head attention", "多头注意力"),
    ("head", "头"), ("heads", "头"), ("query", "查询"), ("key", "键"), ("value", "值"),
    ("encoder", "编码器"), ("decoder", "解码器"), ("embedding", "嵌入"), ("positional encoding", "位置编码"),
    ("residual", "残差"), ("residual connection", "残差连接"), ("residual block", "残差块"),
    ("normalization", "规范化"), ("normalization", "归一化"), ("layer normalization", "层规范化"),
    ("batch normalization", "批量规范化"), ("convolution", "卷积"), ("convolutional", "卷积"),
    ("kernel", "卷积核"), ("window", "窗口"), ("stride", "步幅"), ("padding", "填充"), ("channel", "通道"),
    ("pooling", "汇聚"), ("pooling", "池化"), ("fully connected", "全连接"), ("activation", "激活函数"),
    ("dropout", "暂退法"), ("dropout", "dropout"), ("gradient", "梯度"), ("vanishing gradient", "梯度消失"),
    ("exploding gradient", "梯度爆炸"), ("loss", "损失"), ("auxiliary loss", "辅助损失"),
    ("load balancing", "负载均衡"), ("learning rate", "学习率"), ("optimizer", "优化器"),
    ("optimization", "优化"), ("gradient descent", "梯度下降"), ("batch", "批量"), ("batch size", "批量大小"),
    ("epoch", "轮"), ("iteration", "迭代"), ("overfitting", "过拟合"), ("generalization", "泛化"),
    ("reinforcement learning", "强化学习"), ("supervised fine-tuning", "监督微调"),
    ("cold start", "冷启动"), ("reward", "奖励"), ("policy", "策略"), ("distillation", "蒸馏"),
    ("quantization", "量化"), ("pruning", "剪枝"), ("mixture of experts", "混合专家"),
    ("mixture of experts", "专家混合"), ("language model", "语言模型"), ("large language model", "大语言模型"),
    ("scaling law", "缩放定律"), ("scaling laws", "规模定律"), ("compute", "计算量"), ("compute", "算力"),
    ("image", "图像"), ("images", "图片"), ("text", "文本"), ("video", "视频"), ("speech", "语音"),
    ("classification", "分类"), ("recognition", "识别"), ("generation", "生成"), ("translation", "翻译"),
    ("diffusion", "扩散"), ("latent", "潜在"), ("latent space", "潜空间"), ("pixel", "像素"),
    ("human", "人类"), ("human level", "人类水平"), ("year", "年"), ("proposed", "提出"),
    ("introduced", "提出"), ("paper", "论文"), ("author", "作者"), ("first", "首次"), ("first", "第一"),
    ("deep learning", "深度学习"), ("machine learning", "机器学习"), ("world model", "世界模型"),
    ("mask", "掩蔽"), ("masked", "掩蔽"), ("masked language model", "掩蔽语言模型"),
    ("next sentence prediction", "下一句预测"), ("sentiment analysis", "情感分析"), ("reviews", "评论"),
    ("movie reviews", "电影评论"), ("hidden state", "隐状态"), ("memory cell", "记忆元"), ("gate", "门"),
    ("forget gate", "遗忘门"), ("input gate", "输入门"), ("output gate", "输出门"),
    ("bottleneck", "瓶颈"), ("identity mapping", "恒等映射"), ("low-rank", "低秩"), ("rank", "秩"),
    ("frozen", "冻结"), ("freeze", "冻结"), ("matrix", "矩阵"), ("matrices", "矩阵"),
    ("different", "不同"), ("differ", "不同"), ("difference", "区别"), ("same", "相同"), ("similar", "相似"),
    ("way", "方式"), ("method", "方法"), ("approach", "方法"), ("problem", "问题"), ("solve", "解决"),
    ("improve", "提高"), ("improves", "提升"), ("increase", "增加"), ("reduce", "降低"), ("reduce", "减少"),
    ("fewer", "少"), ("faster", "更快"), ("slower", "更慢"), ("larger", "更大"), ("smaller", "更小"),
    ("better", "更好"), ("size", "大小"), ("size", "规模"), ("number", "数量"), ("ratio", "比例"),
    ("step", "步"), ("steps", "步骤"), ("times", "次"), ("epochs", "轮"), ("pairs", "对"), ("gpus", "块"),
    ("ms", "毫秒"), ("millisecond", "毫秒"), ("second", "秒"), ("hour", "小时"), ("day", "天"),
    ("week", "周"), ("month", "月"), ("words", "单词"), ("word", "词"), ("pairs", "对"),
    ("rnn", "循环神经网络"), ("cnn", "卷积神经网络"), ("lstm", "长短期记忆"), ("gru", "门控循环单元"),
    ("moe", "混合专家"), ("mla", "多头潜在注意力"), ("llm", "大语言模型"), ("resnet", "残差网络"),
]

# words that introduce a term rather than belong to it, when reading "…称为循环神经网络（RNN）"
_LEAD = frozenset("是 和 与 及 或 的 在 用 以 为 把 被 对 即 也 就 却 如 等 中 将 让 使 从 由 "
                  "称为 叫做 叫 使用 利用 采用 用于 作为 例如 比如 包括 以及 通过 基于 就是 这就是 "
                  "一种 一个 这种 这个 我们 它 它们 其 个 种 了 着 过".split())
_ZH_EN = re.compile(r"([\u3400-\u9fff]{2,12})\**\s*[（(]\s*([A-Za-z][A-Za-z0-9 \-.+/']{0,48}?)"
                    r"(?:\s*[,，、]\s*([A-Za-z][A-Za-z0-9\-+.]{0,15}))?\s*[)）]")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _key(s: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s).lower()).strip()


_STOP_POS = ("p", "u", "c", "r", "d", "f", "q")
_NUMERALS = set("一二两三四五六七八九十百千万亿几")


def _zh_tail(run: str) -> str:
    """The term at the end of a Chinese run: whole words, back to the first function word or
    lead-in verb ("何恺明等人提出了残差网络" → 残差网络, "称为循环神经网络" → 循环神经网络)."""
    from .claims import _tagged

    out: list[str] = []
    for w, pos in reversed(_tagged(run)):
        if out and (w in _LEAD or pos.startswith(_STOP_POS) or set(w) <= _NUMERALS
                    or sum(len(x) for x in out) + len(w) > 8):
            break
        out.insert(0, w)
    tail = "".join(out)
    return tail if len(tail) >= 2 else ""


def mine(text: str) -> list[tuple[str, str]]:
    """(english, chinese) pairs a text gives as "中文（English）" or "中文（English, ACR）"."""
    out = []
    for m in _ZH_EN.finditer(unicodedata.normalize("NFKC", text)):
        zh = _zh_tail(m.group(1))
        if not zh:
            continue
        for en in (m.group(2), m.group(3)):
            if en and len(en.strip()) >= 2 and not re.match(r"(?:vs|e\.?g|i\.?e|see|cf)\b", en.strip(), re.I):
                out.append((_key(en), zh))
    return out


class Aliases:
    """Symmetric lookup: the other-language names of a word (lower-case English or Chinese).

    Mined pairs are noisier than listed ones ("黄金时代（StyleGAN）" is a description, not a
    translation), so `of(word, trusted=True)` — what name matching uses — returns listed pairs
    only; content-word coverage uses both."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._map: dict[str, set[str]] = {}
        self._trusted: dict[str, set[str]] = {}
        for en, zh in pairs:
            self.add(en, zh, trusted=True)

    def add(self, en: str, zh: str, trusted: bool = False) -> None:
        en, zh = _key(en), _key(zh)
        if en and zh and en != zh:
            for table in (self._map, self._trusted) if trusted else (self._map,):
                table.setdefault(en, set()).add(zh)
                table.setdefault(zh, set()).add(en)

    def of(self, word: str, trusted: bool = False) -> set[str]:
        table = self._trusted if trusted else self._map
        word = _key(word)
        found = set(table.get(word, ()))
        if not _CJK.search(word):  # crude English stems: "experts" → "expert"
            for suf in ("es", "s"):
                if word.endswith(suf) and len(word) - len(suf) >= 3:
                    found |= table.get(word[: -len(suf)], set())
        return found

    def extended(self, texts: list[str]) -> "Aliases":
        """A copy with the pairs mined from `texts` (the passages being judged) added."""
        new = Aliases([])
        new._map = {k: set(v) for k, v in self._map.items()}
        new._trusted = self._trusted
        for t in texts:
            for en, zh in _mined_cached(t):
                new.add(en, zh)
        return new


@lru_cache(maxsize=8192)
def _mined_cached(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(mine(text))


@lru_cache(maxsize=8)
def base_aliases(corpus_dir: str | None = None) -> Aliases:
    """LISTED plus the translations mined from the corpus notes (.md / .txt) when given."""
    table = Aliases(LISTED)
    if corpus_dir:
        root = Path(corpus_dir)
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix.lower() in (".md", ".txt") and p.is_file():
                    try:
                        text = p.read_text(encoding="utf-8", errors="replace")
                    except OSError:
                        continue
                    for en, zh in _mined_cached(text):
                        table.add(en, zh)
    return table
