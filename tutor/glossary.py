"""A zh↔en glossary of deep-learning terms for bilingual query expansion.

The corpus mixes Chinese notes and English papers, and both the embedder and BM25 prefer
same-language passages; an English question about a Chinese note ("AlexNet's top-5 error rate")
needs the Chinese words (错误率) to reach it, and vice versa. A curated glossary is instant and
predictable, unlike asking a 0.5B model to translate every query.
"""
from __future__ import annotations

import re

# (english, chinese); several rows may share a side
PAIRS: list[tuple[str, str]] = [
    ("deep learning", "深度学习"), ("machine learning", "机器学习"), ("neural network", "神经网络"),
    ("artificial intelligence", "人工智能"), ("convolutional neural network", "卷积神经网络"),
    ("convolution", "卷积"), ("recurrent neural network", "循环神经网络"), ("layer", "层"),
    ("fully connected", "全连接"), ("activation function", "激活函数"), ("pooling", "汇聚"),
    ("pooling", "池化"), ("residual", "残差"), ("residual connection", "残差连接"),
    ("skip connection", "跳跃连接"), ("shortcut", "捷径"), ("gradient", "梯度"),
    ("vanishing gradient", "梯度消失"), ("exploding gradient", "梯度爆炸"),
    ("gradient descent", "梯度下降"), ("stochastic gradient descent", "随机梯度下降"),
    ("learning rate", "学习率"), ("optimizer", "优化器"), ("optimization", "优化"),
    ("loss", "损失"), ("loss function", "损失函数"), ("overfitting", "过拟合"),
    ("regularization", "正则化"), ("weight decay", "权重衰减"), ("dropout", "暂退法"),
    ("data augmentation", "数据增强"), ("batch normalization", "批量规范化"),
    ("layer normalization", "层规范化"), ("normalization", "归一化"), ("parameters", "参数量"),
    ("parameter", "参数"), ("parameter count", "参数量"), ("number of parameters", "参数量"),
    ("error rate", "错误率"), ("accuracy", "准确率"), ("top-5", "Top-5"), ("training", "训练"),
    ("train", "训练"), ("inference", "推理"), ("reasoning", "推理"), ("dataset", "数据集"),
    ("data", "数据"), ("model", "模型"), ("architecture", "架构"), ("depth", "深度"),
    ("deeper", "更深"), ("width", "宽度"), ("attention", "注意力"),
    ("self-attention", "自注意力"), ("multi-head attention", "多头注意力"),
    ("attention mechanism", "注意力机制"), ("positional encoding", "位置编码"),
    ("encoder", "编码器"), ("decoder", "解码器"), ("embedding", "嵌入"), ("token", "词元"),
    ("sequence", "序列"), ("sequence modeling", "序列建模"), ("language model", "语言模型"),
    ("large language model", "大语言模型"), ("large model", "大模型"), ("pretraining", "预训练"),
    ("pre-training", "预训练"), ("fine-tuning", "微调"), ("fine-tune", "微调"),
    ("reinforcement learning", "强化学习"), ("reward", "奖励"), ("policy", "策略"),
    ("supervised learning", "监督学习"), ("unsupervised learning", "无监督学习"),
    ("self-supervised", "自监督"), ("contrastive learning", "对比学习"),
    ("generative model", "生成式模型"), ("generative", "生成式"), ("diffusion", "扩散"),
    ("multimodal", "多模态"), ("scaling law", "缩放定律"), ("scaling laws", "缩放定律"),
    ("compute", "算力"), ("world model", "世界模型"), ("world models", "世界模型"),
    ("mixture of experts", "专家混合"), ("expert", "专家"), ("experts", "专家"),
    ("shared experts", "共享专家"), ("routing", "路由"), ("router", "路由"),
    ("load balancing", "负载均衡"), ("sparse", "稀疏"), ("dense", "稠密"),
    ("memory", "记忆"), ("long-term dependency", "长期依赖"), ("long short-term memory", "长短期记忆"),
    ("gate", "门"), ("forget gate", "遗忘门"), ("input gate", "输入门"), ("output gate", "输出门"),
    ("hidden state", "隐状态"), ("cell", "单元"), ("parallel", "并行"), ("parallelization", "并行"),
    ("distillation", "蒸馏"), ("distill", "蒸馏"), ("quantization", "量化"),
    ("context length", "上下文长度"), ("context window", "上下文窗口"), ("cost", "成本"),
    ("training cost", "训练成本"), ("GPU hours", "GPU 小时"), ("history", "历史"),
    ("historical significance", "历史意义"), ("contribution", "贡献"), ("core contribution", "核心贡献"),
    ("limitation", "局限性"), ("limitations", "局限性"), ("innovation", "创新"),
    ("breakthrough", "突破"), ("paper", "论文"), ("author", "作者"), ("authors", "作者"),
    ("published", "发表"), ("citations", "引用"), ("year", "年"), ("roadmap", "路线图"),
    ("research", "研究"), ("study plan", "学习计划"), ("learning path", "学习路线"),
    ("beginner", "入门"), ("book", "书籍"), ("books", "书籍"), ("video", "视频"),
    ("course", "课程"), ("tutorial", "教程"), ("recommend", "推荐"), ("suggestion", "建议"),
    ("tips", "建议"), ("english", "英文"), ("chinese", "中文"), ("translation", "翻译"),
    ("infrastructure", "基础设施"), ("hardware", "硬件"), ("chip", "芯片"),
    ("image classification", "图像分类"), ("computer vision", "计算机视觉"),
    ("natural language processing", "自然语言处理"), ("speech", "语音"), ("image", "图像"),
    ("text", "文本"), ("vision", "视觉"), ("agent", "智能体"), ("environment", "环境"),
    ("latent", "潜在"), ("latent space", "潜在空间"), ("controller", "控制器"),
    ("evolution", "进化"), ("evolution strategy", "进化策略"), ("dream", "梦境"),
    ("imagination", "想象"), ("mathematics", "数学"), ("math", "数学"), ("linear algebra", "线性代数"),
    ("probability", "概率"), ("calculus", "微积分"), ("derivative", "导数"),
    ("backpropagation", "反向传播"), ("forward propagation", "前向传播"), ("bias", "偏置"),
    ("weights", "权重"), ("weight", "权重"), ("matrix", "矩阵"), ("vector", "向量"),
    ("tensor", "张量"), ("key", "键"), ("query", "查询"), ("value", "值"),
    ("softmax", "softmax"), ("masked", "掩蔽"), ("mask", "掩码"), ("bidirectional", "双向"),
    ("next sentence prediction", "下一句预测"), ("masked language model", "掩蔽语言模型"),
    ("latent attention", "潜在注意力"), ("multi-head latent attention", "多头潜在注意力"),
    ("kv cache", "KV 缓存"), ("key-value cache", "KV 缓存"), ("cache", "缓存"),
    ("throughput", "吞吐"), ("efficiency", "效率"), ("open source", "开源"),
    ("cold start", "冷启动"), ("chain of thought", "思维链"), ("aha moment", "顿悟"),
    ("rule-based reward", "基于规则的奖励"), ("multi-token prediction", "多 token 预测"),
    ("auxiliary loss", "辅助损失"), ("auxiliary-loss-free", "无辅助损失"),
    ("mixed precision", "混合精度"), ("FP8", "FP8"), ("step size", "步长"),
    ("local minimum", "局部最小值"), ("saddle point", "鞍点"), ("convex", "凸"),
    ("Newton's method", "牛顿法"), ("why", "为什么"), ("what is", "什么是"),
    ("difference", "区别"), ("compare", "比较"), ("advantage", "优势"), ("advantages", "优势"),
    ("disadvantage", "缺点"), ("problem", "问题"), ("solve", "解决"), ("key idea", "核心思想"),
    ("core idea", "核心思想"), ("performance", "性能"), ("benchmark", "基准"),
]

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def language(text: str) -> str:
    """'zh' if the text has more CJK characters than Latin letters, else 'en'."""
    zh, en = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if zh and zh * 4 >= en else ("en" if en else "zh")


def _build() -> tuple[list[tuple[re.Pattern, str]], list[tuple[str, str]]]:
    en2zh: dict[str, set[str]] = {}
    zh2en: dict[str, set[str]] = {}
    for en, zh in PAIRS:
        en2zh.setdefault(en.lower(), set()).add(zh)
        zh2en.setdefault(zh, set()).add(en)
    en_rules = [(re.compile(r"(?<![a-z0-9])" + re.escape(en) + r"(?![a-z0-9])", re.I), " ".join(sorted(zhs)))
                for en, zhs in sorted(en2zh.items(), key=lambda kv: -len(kv[0]))]
    zh_rules = [(zh, " ".join(sorted(ens))) for zh, ens in sorted(zh2en.items(), key=lambda kv: -len(kv[0]))
                if zh.lower() not in {e.lower() for e in ens}]
    return en_rules, zh_rules


_EN_RULES, _ZH_RULES = _build()


def translate_terms(query: str) -> str:
    """The other language's words for the glossary terms in `query` (empty if none).

    Longest terms first, and a matched span is not matched again by a shorter term, so
    "gradient descent" yields 梯度下降, not also 梯度.
    """
    out: list[str] = []
    if language(query) == "en":
        rest = query
        for pat, zh in _EN_RULES:
            if pat.search(rest):
                out.append(zh)
                rest = pat.sub(" ", rest)
    else:
        rest = query
        for zh, en in _ZH_RULES:
            if zh in rest:
                out.append(en)
                rest = rest.replace(zh, " ")
    seen: list[str] = []
    for t in out:
        if t not in seen:
            seen.append(t)
    return " ".join(seen)
