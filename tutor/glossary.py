"""A zh↔en glossary of deep-learning terms for bilingual query expansion.

The corpus mixes Chinese notes and English papers, and both the embedder and BM25 prefer
same-language passages; an English question about a Chinese note ("AlexNet's top-5 error rate")
needs the Chinese words (错误率) to reach it, and vice versa. A curated glossary is instant and
predictable, unlike asking a 0.5B model to translate every query.

The rows are the vocabulary learners use when they ask about DL: model parts, training, numbers
and their units (parameter count, activated parameters, GPU hours, latency), evaluation, and the
plain words around them (cause, too large, author, proposed). d2l-zh's own translations (汇聚,
暂退法, 词元, 规范化, 隐状态, 记忆元, 掩蔽) sit beside the everyday ones (池化, dropout, 归一化).

English terms match with their inflections and spelling variants ("pre-trained", "pretraining",
"experts", "activated"), so one row serves every form of a word.
"""
from __future__ import annotations

import re
import unicodedata

# (english, chinese); several rows may share a side. Grouped by topic; order does not matter.
PAIRS: list[tuple[str, str]] = [
    # fields and model families
    ("deep learning", "深度学习"), ("machine learning", "机器学习"), ("neural network", "神经网络"),
    ("deep neural network", "深度神经网络"), ("artificial intelligence", "人工智能"),
    ("convolutional neural network", "卷积神经网络"), ("recurrent neural network", "循环神经网络"),
    ("generative adversarial network", "生成对抗网络"), ("variational autoencoder", "变分自编码器"),
    ("variational autoencoder", "变分自动编码器"), ("autoencoder", "自编码器"),
    ("residual network", "残差网络"), ("language model", "语言模型"),
    ("large language model", "大语言模型"), ("large model", "大模型"), ("foundation model", "基础模型"),
    ("base model", "基座模型"), ("base model", "基础模型"), ("diffusion model", "扩散模型"),
    ("world model", "世界模型"), ("generative model", "生成式模型"), ("generative model", "生成模型"),
    ("sequence model", "序列模型"), ("mixture of experts", "专家混合"), ("mixture of experts", "混合专家"),
    ("perceptron", "感知机"), ("multilayer perceptron", "多层感知机"), ("decision tree", "决策树"),
    ("logistic regression", "逻辑回归"), ("linear regression", "线性回归"), ("linear model", "线性模型"),
    ("computer vision", "计算机视觉"), ("natural language processing", "自然语言处理"),
    ("reinforcement learning", "强化学习"), ("supervised learning", "监督学习"),
    ("unsupervised learning", "无监督学习"), ("self-supervised learning", "自监督学习"),
    ("self-supervised", "自监督"), ("contrastive learning", "对比学习"), ("transfer learning", "迁移学习"),
    ("multimodal", "多模态"), ("vision-language", "视觉语言"), ("knowledge distillation", "知识蒸馏"),
    ("distillation", "蒸馏"), ("distill", "蒸馏"), ("pruning", "剪枝"), ("quantization", "量化"),
    ("dimensionality reduction", "降维"), ("clustering", "聚类"), ("classification", "分类"),
    ("regression", "回归"), ("image classification", "图像分类"), ("object detection", "物体检测"),
    ("object detection", "目标检测"), ("image recognition", "图像识别"), ("speech recognition", "语音识别"),
    ("machine translation", "机器翻译"), ("sentiment analysis", "情感分析"),
    ("text generation", "文本生成"), ("image generation", "图像生成"), ("recommender system", "推荐系统"),
    ("handwritten digit", "手写数字"), ("digit recognition", "数字识别"),
    # the acronyms learners type for them
    ("gan", "生成对抗网络"), ("vae", "变分自编码器"), ("cnn", "卷积神经网络"), ("rnn", "循环神经网络"),
    ("lstm", "长短期记忆"), ("gru", "门控循环单元"), ("moe", "专家混合"), ("moe", "混合专家"),
    ("mla", "多头潜在注意力"), ("llm", "大语言模型"), ("rl", "强化学习"), ("nlp", "自然语言处理"),
    ("sft", "监督微调"), ("mlp", "多层感知机"), ("ffn", "前馈网络"), ("kd", "知识蒸馏"),
    # layers and architecture
    ("layer", "层"), ("hidden layer", "隐藏层"), ("input layer", "输入层"), ("output layer", "输出层"),
    ("convolutional layer", "卷积层"), ("convolution", "卷积"), ("kernel", "卷积核"), ("filter", "滤波器"),
    ("convolution window", "卷积窗口"), ("window", "窗口"), ("stride", "步幅"), ("padding", "填充"),
    ("channel", "通道"), ("fully connected", "全连接"), ("fully connected layer", "全连接层"),
    ("pooling", "汇聚"), ("pooling", "池化"), ("max pooling", "最大汇聚"), ("max pooling", "最大池化"),
    ("activation function", "激活函数"), ("activation", "激活"), ("nonlinear", "非线性"),
    ("nonlinearity", "非线性"), ("linear", "线性"), ("neuron", "神经元"), ("hidden unit", "隐藏单元"),
    ("hidden size", "隐藏层大小"), ("hidden state", "隐状态"), ("hidden state", "隐藏状态"),
    ("residual", "残差"), ("residual connection", "残差连接"), ("residual block", "残差块"),
    ("skip connection", "跳跃连接"), ("shortcut", "捷径"), ("bottleneck", "瓶颈"),
    ("identity mapping", "恒等映射"), ("mapping", "映射"), ("sublayer", "子层"),
    ("encoder", "编码器"), ("decoder", "解码器"), ("encoder-decoder", "编码器-解码器"),
    ("generator", "生成器"), ("discriminator", "判别器"), ("discriminator", "鉴别器"),
    ("embedding", "嵌入"), ("word embedding", "词嵌入"), ("embedding layer", "嵌入层"),
    ("architecture", "架构"), ("architecture", "结构"), ("network structure", "网络结构"),
    ("depth", "深度"), ("deeper", "更深"), ("width", "宽度"), ("dimension", "维度"),
    ("vector", "向量"), ("latent vector", "潜在向量"), ("latent", "潜在"), ("latent space", "潜在空间"),
    ("latent space", "潜空间"), ("feature", "特征"), ("feature map", "特征图"), ("representation", "表示"),
    ("gate", "门"), ("gating", "门控"), ("gating mechanism", "门控机制"), ("forget gate", "遗忘门"),
    ("input gate", "输入门"), ("output gate", "输出门"), ("memory cell", "记忆元"),
    ("memory cell", "记忆单元"), ("cell", "单元"), ("long short-term memory", "长短期记忆"),
    ("gated recurrent unit", "门控循环单元"),
    # attention and transformers
    ("attention", "注意力"), ("self-attention", "自注意力"), ("multi-head attention", "多头注意力"),
    ("attention head", "注意力头"), ("head", "头"), ("attention mechanism", "注意力机制"),
    ("attention pooling", "注意力汇聚"), ("attention score", "注意力分数"),
    ("attention weight", "注意力权重"), ("cross-attention", "交叉注意力"),
    ("scaled dot-product attention", "缩放点积注意力"), ("dot product", "点积"),
    ("positional encoding", "位置编码"), ("position", "位置"), ("query", "查询"), ("key", "键"),
    ("value", "值"), ("masked", "掩蔽"), ("masking", "掩蔽"), ("mask", "掩码"),
    ("masked attention", "掩蔽注意力"), ("autoregressive", "自回归"), ("auto-regressive", "自回归"),
    ("concatenate", "连结"), ("concatenate", "拼接"), ("concatenation", "拼接"), ("combine", "组合"),
    ("linear projection", "线性投影"), ("projection", "投影"), ("parallel", "并行"),
    ("parallelization", "并行化"), ("parallelism", "并行"), ("maximum path length", "最大路径长度"),
    ("path length", "路径长度"), ("computational complexity", "计算复杂度"), ("complexity", "复杂度"),
    ("layer normalization", "层规范化"), ("layer normalization", "层归一化"),
    ("batch normalization", "批量规范化"), ("batch normalization", "批量归一化"),
    ("normalization", "规范化"), ("normalization", "归一化"), ("feed-forward", "前馈"),
    ("feed-forward network", "前馈网络"), ("position-wise", "基于位置"), ("bidirectional", "双向"),
    ("masked language model", "掩蔽语言模型"), ("next sentence prediction", "下一句预测"),
    ("token", "词元"), ("token", "token"), ("tokenizer", "分词器"), ("vocabulary", "词表"),
    ("vocabulary", "词汇表"), ("special token", "特殊词元"), ("sentence pair", "句子对"),
    ("context", "上下文"), ("context length", "上下文长度"), ("context window", "上下文窗口"),
    ("long context", "长上下文"), ("sequence", "序列"), ("sequence length", "序列长度"),
    ("long sequence", "长序列"), ("sequence to sequence", "序列到序列"), ("sequence modeling", "序列建模"),
    ("time step", "时间步"), ("long-term dependency", "长期依赖"), ("long-range dependency", "长距离依赖"),
    ("dependency", "依赖关系"), ("latent attention", "潜在注意力"),
    ("multi-head latent attention", "多头潜在注意力"), ("kv cache", "KV 缓存"), ("kv cache", "KV缓存"),
    ("key-value cache", "KV 缓存"), ("cache", "缓存"), ("low-rank", "低秩"), ("compression", "压缩"),
    ("compress", "压缩"), ("rotary position embedding", "旋转位置编码"),
    # mixture of experts
    ("expert", "专家"), ("shared expert", "共享专家"), ("routed expert", "路由专家"),
    ("routing", "路由"), ("router", "路由器"), ("gating network", "门控网络"),
    ("load balancing", "负载均衡"), ("load balance", "负载均衡"), ("balance", "均衡"),
    ("auxiliary loss", "辅助损失"), ("auxiliary-loss-free", "无辅助损失"), ("bias term", "偏置项"),
    ("expert specialization", "专家专业化"), ("fine-grained", "细粒度"), ("sparse", "稀疏"),
    ("dense", "稠密"), ("activated", "激活"), ("activated parameter", "激活参数"),
    ("active parameter", "激活参数"), ("top-k", "top-k"), ("per token", "每个 token"),
    ("per token", "每个词元"), ("communication", "通信"), ("all-to-all", "全对全"),
    # numbers, sizes, costs
    ("parameter", "参数"), ("parameter count", "参数量"), ("number of parameters", "参数量"),
    ("parameter", "参数量"), ("total parameter", "总参数"), ("total parameter", "总参数量"),
    ("total", "总"), ("size", "大小"), ("model size", "模型大小"), ("model size", "模型规模"),
    ("scale", "规模"), ("data size", "数据量"), ("amount of data", "数据量"), ("dataset size", "数据集大小"),
    ("population size", "种群大小"), ("population", "种群"), ("individual", "个体"),
    ("million", "百万"), ("billion", "十亿"), ("thousand", "千"), ("percent", "百分比"),
    ("cost", "成本"), ("training cost", "训练成本"), ("compute", "算力"), ("compute", "计算量"),
    ("computation", "计算"), ("compute budget", "计算预算"), ("flops", "浮点运算"),
    ("gpu hours", "GPU 小时"), ("gpu hour", "GPU 小时"), ("hour", "小时"), ("day", "天"),
    ("memory", "内存"), ("memory", "记忆"), ("memory", "显存"), ("storage", "存储"),
    ("latency", "延迟"), ("real-time", "实时"), ("throughput", "吞吐量"), ("throughput", "吞吐"),
    ("speed", "速度"), ("speedup", "加速"), ("faster", "更快"), ("slower", "更慢"),
    ("efficiency", "效率"), ("efficient", "高效"), ("cheaper", "更便宜"), ("cheap", "便宜"),
    ("saving", "节省"), ("save", "节省"), ("reduce", "减少"), ("reduction", "减少"),
    ("reduce", "降低"), ("increase", "增加"), ("improve", "提升"), ("improvement", "提升"),
    ("decade", "十年"), ("year", "年"), ("growth", "增长"), ("exponential", "指数级"),
    ("power law", "幂律"), ("exponent", "指数"), ("ratio", "比例"), ("proportion", "比例"),
    ("fraction", "比例"), ("percentage", "百分比"), ("maximum", "最大"), ("minimum", "最小值"),
    ("number", "数量"), ("count", "数量"),
    # training
    ("training", "训练"), ("train", "训练"), ("pre-training", "预训练"), ("pretraining", "预训练"),
    ("post-training", "后训练"), ("fine-tuning", "微调"), ("fine-tune", "微调"), ("finetune", "微调"),
    ("supervised fine-tuning", "监督微调"), ("instruction tuning", "指令微调"), ("inference", "推理"),
    ("reasoning", "推理"), ("reasoning capability", "推理能力"), ("generation", "生成"),
    ("training data", "训练数据"), ("training set", "训练集"), ("test set", "测试集"),
    ("validation set", "验证集"), ("dataset", "数据集"), ("data", "数据"), ("corpus", "语料"),
    ("corpus", "语料库"), ("corpora", "语料"), ("sample", "样本"), ("example", "样本"),
    ("label", "标签"), ("annotation", "标注"), ("negative sample", "负样本"),
    ("positive sample", "正样本"), ("negative", "负"), ("positive", "正"), ("queue", "队列"),
    ("momentum", "动量"), ("batch", "批量"), ("batch size", "批量大小"), ("mini-batch", "小批量"),
    ("epoch", "轮"), ("iteration", "迭代"), ("step", "步"), ("update", "更新"),
    ("gradient", "梯度"), ("vanishing gradient", "梯度消失"), ("exploding gradient", "梯度爆炸"),
    ("gradient clipping", "梯度裁剪"), ("gradient descent", "梯度下降"),
    ("stochastic gradient descent", "随机梯度下降"), ("learning rate", "学习率"), ("optimizer", "优化器"),
    ("optimization", "优化"), ("optimize", "优化"), ("objective function", "目标函数"),
    ("loss", "损失"), ("loss function", "损失函数"), ("cross-entropy", "交叉熵"),
    ("reconstruction loss", "重建损失"), ("kl divergence", "KL 散度"), ("divergence", "散度"),
    ("diverge", "发散"), ("converge", "收敛"), ("convergence", "收敛"), ("oscillate", "震荡"),
    ("overshoot", "越过"), ("too large", "过大"), ("too small", "过小"), ("too big", "过大"),
    ("step size", "步长"), ("local minimum", "局部最小值"), ("global minimum", "全局最小值"),
    ("saddle point", "鞍点"), ("convex", "凸"), ("non-convex", "非凸"), ("newton's method", "牛顿法"),
    ("backpropagation", "反向传播"), ("forward propagation", "前向传播"), ("chain rule", "链式法则"),
    ("derivative", "导数"), ("weight", "权重"), ("bias", "偏置"), ("initialization", "初始化"),
    ("overfitting", "过拟合"), ("underfitting", "欠拟合"), ("regularization", "正则化"),
    ("weight decay", "权重衰减"), ("dropout", "暂退法"), ("dropout", "dropout"),
    ("data augmentation", "数据增强"), ("generalization", "泛化"), ("stable", "稳定"),
    ("stability", "稳定性"), ("training stability", "训练稳定性"), ("unstable", "不稳定"),
    ("mixed precision", "混合精度"), ("precision", "精度"), ("multi-token prediction", "多 token 预测"),
    ("teacher", "教师"), ("teacher", "老师"), ("student", "学生"), ("soft label", "软标签"),
    ("dark knowledge", "暗知识"), ("probability distribution", "概率分布"), ("temperature", "温度"),
    ("sampling", "采样"), ("noise", "噪声"), ("denoising", "去噪"), ("pixel space", "像素空间"),
    ("pixel", "像素"), ("image", "图像"), ("image-text pair", "图文对"), ("text", "文本"),
    ("low-rank adaptation", "低秩适配"), ("adapter", "适配器"), ("frozen", "冻结"), ("freeze", "冻结"),
    # reinforcement learning, agents
    ("reward", "奖励"), ("reward model", "奖励模型"), ("rule-based reward", "基于规则的奖励"),
    ("policy", "策略"), ("agent", "智能体"), ("environment", "环境"), ("controller", "控制器"),
    ("evolution", "进化"), ("evolution strategy", "进化策略"), ("evolve", "进化"),
    ("dream", "梦境"), ("dream", "梦"), ("imagination", "想象"), ("rollout", "回合"),
    ("episode", "回合"), ("trial", "试验"), ("score", "分数"), ("score", "得分"), ("score", "分"),
    ("racing", "赛车"), ("game", "游戏"), ("task", "任务"), ("vision model", "视觉模型"),
    ("cold start", "冷启动"), ("chain of thought", "思维链"), ("aha moment", "顿悟"),
    ("self-evolution", "自我进化"), ("reflection", "反思"), ("readability", "可读性"),
    ("language mixing", "语言混杂"), ("rejection sampling", "拒绝采样"),
    # evaluation
    ("error rate", "错误率"), ("error", "误差"), ("top-5 error", "Top-5 错误率"), ("accuracy", "准确率"),
    ("accuracy", "精度"), ("precision", "精确率"), ("recall", "召回率"), ("benchmark", "基准"),
    ("benchmark", "基准测试"), ("performance", "性能"), ("result", "结果"), ("evaluation", "评估"),
    ("human-level", "人类水平"), ("human", "人类"), ("state of the art", "最先进"),
    ("baseline", "基线"), ("metric", "指标"),
    # history, people, literature
    ("history", "历史"), ("historical significance", "历史意义"), ("contribution", "贡献"),
    ("core contribution", "核心贡献"), ("limitation", "局限性"), ("limitation", "局限"),
    ("drawback", "缺陷"), ("innovation", "创新"), ("breakthrough", "突破"), ("paper", "论文"),
    ("author", "作者"), ("proposed", "提出"), ("propose", "提出"), ("published", "发表"),
    ("publish", "发表"), ("release", "发布"), ("released", "发布"), ("open source", "开源"),
    ("open-source", "开源"), ("citation", "引用"), ("roadmap", "路线图"), ("research", "研究"),
    ("inspired", "启发"), ("inspire", "启发"), ("study plan", "学习计划"), ("learning path", "学习路线"),
    ("beginner", "入门"), ("getting started", "入门"), ("book", "书籍"), ("video", "视频"),
    ("course", "课程"), ("tutorial", "教程"), ("recommend", "推荐"), ("suggestion", "建议"),
    ("tip", "建议"), ("textbook", "教材"),
    ("english", "英文"), ("chinese", "中文"), ("translation", "翻译"), ("framework", "框架"),
    ("industry", "工业界"), ("deployment", "部署"), ("research community", "学术界"),
    ("academia", "学术界"), ("company", "公司"), ("team", "团队"),
    # systems and hardware
    ("infrastructure", "基础设施"), ("hardware", "硬件"), ("chip", "芯片"), ("gpu", "GPU"),
    ("node", "节点"), ("single gpu", "单个 GPU"), ("cluster", "集群"), ("distributed", "分布式"),
    ("software", "软件"), ("reproduce", "复现"), ("code", "代码"), ("programming language", "编程语言"),
    # maths
    ("mathematics", "数学"), ("math", "数学"), ("linear algebra", "线性代数"), ("probability", "概率"),
    ("calculus", "微积分"), ("statistics", "统计"), ("matrix", "矩阵"), ("tensor", "张量"),
    ("covariance", "协方差"), ("variance", "方差"), ("mean", "均值"), ("expectation", "期望"),
    ("function", "函数"), ("formula", "公式"), ("equation", "公式"), ("softmax", "softmax"),
    ("sigmoid", "sigmoid"), ("relu", "ReLU"), ("tanh", "tanh"), ("harmonic mean", "调和平均数"),
    ("curve", "曲线"), ("threshold", "阈值"),
    # plain words around the terms
    ("why", "为什么"), ("what is", "什么是"), ("difference", "区别"), ("differ", "不同"),
    ("compare", "比较"), ("comparison", "比较"), ("versus", "相比"), ("trade-off", "取舍"),
    ("advantage", "优势"), ("advantage", "优点"), ("disadvantage", "缺点"), 
    ("challenge", "挑战"), ("solve", "解决"), ("solution", "解决"), ("key idea", "核心思想"),
    ("core idea", "核心思想"), ("idea", "思想"), ("intuition", "直觉"), ("principle", "原理"),
    ("mechanism", "机制"), ("method", "方法"), ("approach", "方法"), ("technique", "技术"),
    ("cause", "导致"), ("lead to", "导致"), ("because", "因为"), ("purpose", "目的"), ("goal", "目标"),
    ("role", "作用"), ("effect", "效果"), ("impact", "影响"), 
    ("instead of", "而不是"), ("rather than", "而不是"), 
    ("configuration", "配置"), ("configured", "配置"), ("setting", "设置"), ("hyperparameter", "超参数"),
    ("real", "真实"), ("realistic", "真实"), ("quality", "质量"), ("diversity", "多样性"),
    ("voice", "语音"), ("speech", "语音"), ("audio", "音频"), ("vision", "视觉"),
    ("model", "模型"), ("network", "网络"), ("algorithm", "算法"), ("system", "系统"),
    ("search", "搜索"), ("table", "表"), ("example", "例子"), 
    ("first", "第一"), ("original", "原始"), ("original", "最初"), ("new", "新"),
    ("structure", "结构"), ("category", "类别"), ("list", "列表"), ("step by step", "逐步"),
]

_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def language(text: str) -> str:
    """'zh' if the text has more CJK characters than Latin letters, else 'en'."""
    zh, en = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if zh and zh * 4 >= en else ("en" if en else "zh")


def _inflected(word: str) -> str:
    """A regex for an English word with its regular inflections: expert(s), activate(d/s),
    activating, query/queries, train(ed/ing), pre-train(ed)."""
    w = re.escape(word)
    if not word.isalpha() or len(word) <= 2:
        return w
    if word.endswith("ing") and len(word) > 5:  # training → train, trained, trains
        return re.escape(word[:-3]) + r"(?:ing|ed|s|e|es)?"
    if word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        return re.escape(word[:-1]) + r"(?:y|ies|ied)"
    if word.endswith("e"):
        return re.escape(word[:-1]) + r"(?:e|es|ed|ing)"
    if word.endswith(("s", "x", "ch", "sh")):
        return w + r"(?:es|ed|ing)?"
    return w + r"(?:s|es|ed|ing|d)?"


def _en_pattern(term: str) -> re.Pattern:
    """Words may be joined by space, hyphen or nothing ("pre-training", "pretraining",
    "pre training"); apostrophes and case are ignored."""
    words = re.split(r"[\s\-]+", term.lower())
    pat = r"[\s\-]?".join(_inflected(w) for w in words if w)
    return re.compile(r"(?<![a-z0-9])" + pat + r"(?![a-z0-9])", re.I)


def _build() -> tuple[list[tuple[re.Pattern, str]], list[tuple[str, str]]]:
    en2zh: dict[str, list[str]] = {}
    zh2en: dict[str, list[str]] = {}
    for en, zh in PAIRS:
        en2zh.setdefault(en.lower(), [])
        if zh not in en2zh[en.lower()]:
            en2zh[en.lower()].append(zh)
        zh2en.setdefault(zh, [])
        if en not in zh2en[zh]:
            zh2en[zh].append(en)
    en_rules = [(_en_pattern(en), " ".join(zhs))
                for en, zhs in sorted(en2zh.items(), key=lambda kv: (-len(kv[0]), kv[0]))]
    zh_rules = [(zh, " ".join(ens)) for zh, ens in sorted(zh2en.items(), key=lambda kv: (-len(kv[0]), kv[0]))
                if zh.lower() not in {e.lower() for e in ens}]
    return en_rules, zh_rules


_EN_RULES, _ZH_RULES = _build()


def _word_bounds(text: str) -> set[int]:
    """Offsets where jieba puts a word boundary in `text`."""
    from .lexical import _get_jieba

    cuts, pos = {0}, 0
    for w in _get_jieba().cut(text):
        pos += len(w)
        cuts.add(pos)
    return cuts


def translate_terms(query: str) -> str:
    """The other language's words for the glossary terms in `query` (empty if none).

    Longest terms first, and a matched span is not matched again by a shorter term, so
    "gradient descent" yields 梯度下降, not also 梯度. A mixed question ("DeepSeek-V3 不用辅助损失")
    is translated from its main language.
    """
    query = unicodedata.normalize("NFKC", query).replace("’", "'")
    out: list[str] = []
    rest = query
    if language(query) == "en":
        for pat, zh in _EN_RULES:
            if pat.search(rest):
                out.append(zh)
                rest = pat.sub(" ", rest)
    else:
        cuts = _word_bounds(query)
        for zh, en in _ZH_RULES:
            if len(zh) == 1 and _CJK.match(zh):
                # a one-character term only as a word of its own: 总 in 总参数 (总|参数) but not
                # in 总是, 层 in "MoE 层" but not in 层次
                spans = [m.start() for m in re.finditer(re.escape(zh), rest)
                         if m.start() in cuts and m.end() in cuts]
                if spans:
                    out.append(en)
                    for i in spans:
                        rest = rest[:i] + " " + rest[i + 1:]
            elif zh in rest:
                out.append(en)
                rest = rest.replace(zh, " " * len(zh))
    seen: list[str] = []
    for t in out:
        if t not in seen:
            seen.append(t)
    return " ".join(seen)


# terms, not the plain words the glossary also maps for searching ("because", "method", "model")
_PLAIN = {en.lower() for en, _ in PAIRS[PAIRS.index(("why", "为什么")):]} | {"function", "mean", "formula", "code"}
_PLAIN_PATTERNS = {_en_pattern(w).pattern for w in _PLAIN}
_GLOSSABLE = [(pat, zh) for pat, zh in _EN_RULES if pat.pattern not in _PLAIN_PATTERNS]


def gloss(answer: str, evidence: str, most: int = 3) -> str:
    """An English answer from Chinese notes, with the notes' own word after its first use of a
    glossary term: "loss functions (损失函数)". The learner can find the term in the notes they
    read, and the answer names what the sources name. Terms the evidence does not use are left."""
    if language(answer) != "en" or language(evidence) != "zh":
        return answer
    found: list[tuple[int, int, str]] = []  # (start, end, gloss) in `answer`, longest terms first
    for pat, zhs in _GLOSSABLE:
        if len(found) >= most:
            break
        used = {g for _, _, g in found}
        zh = next((z for z in zhs.split() if len(z) >= 2 and z in evidence and z not in answer and z not in used),
                  None)
        m = pat.search(answer)
        if zh is None or m is None or any(a < m.end() and m.start() < b for a, b, _ in found):
            continue
        if " " not in m.group(0).strip() and "-" not in m.group(0) and len(zh) < 3:
            continue  # a one-word term with a two-character gloss is an everyday word: humans (人类)
        found.append((m.start(), m.end(), zh))
    for _, end, zh in sorted(found, reverse=True):
        answer = answer[:end] + f" ({zh})" + answer[end:]
    return answer
