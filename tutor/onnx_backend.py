"""The embedder on ONNX Runtime: export a sentence-transformers model once, then run it without torch.

Why not sentence-transformers' own `backend="onnx"`: it goes through optimum-onnx, whose only
release (0.1.0) needs transformers < 4.58, and this project runs transformers 5. The export here
is small and explicit instead:

1. the torch model (eager attention, so ONNX Runtime can fuse it) wrapped with the model's own
   pooling (mean or CLS) and L2 normalisation, exported with `torch.onnx.export`: one graph from
   token ids to the sentence vector;
2. ONNX Runtime's transformer optimizer fuses attention, layer norms and GELU;
3. for "int8": dynamic quantisation of the weights, per output channel (per-tensor scales lose
   too much: min cosine 0.974 against torch on corpus chunks, per-channel 0.99+), see QUANTIZED_OPS;
4. verified against the torch model by cosine on query and passage texts, short and truncated.

At run time only `onnxruntime` and `tokenizers` are imported: no torch, faster start, less memory.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

EXPORT_VERSION = 2
META = "export.json"  # written last: its presence marks a complete export
MODEL = "model.onnx"
TOKENIZER = "tokenizer.json"
PRECISIONS = ("int8", "fp32")
MIN_COSINE = {"int8": 0.99, "fp32": 0.999}  # against the torch model, every verify text
# int8: the dense layers and the token embeddings (which keeps the model at ~130 MB: 0.28 GB RSS
# instead of 0.8). The fused Attention's own QKV weights stay fp32: quantising them as well cost
# the most quality (min cosine 0.989 instead of 0.993 over 300 corpus chunks and 100 questions).
QUANTIZED_OPS = ("MatMul", "Gather", "EmbedLayerNormalization")

# verify texts: zh / en / mixed, full-width punctuation, code, and one text longer than the
# 512-token window (truncation must match torch's)
VERIFY_TEXTS = (
    "反向传播算法如何计算每一层的梯度？",
    "How does gradient descent minimise the loss of a neural network?",
    "ＡＢＣ，！全角标点：（测试）～",
    "用 PyTorch 实现 self-attention：softmax(QK^T/√d)·V",
    "ResNet 通过残差连接 y = F(x) + x 让 152 层的网络也能训练，梯度可以沿着恒等映射直接回传。"
    "ResNet-152 在 ImageNet 上的 top-5 错误率为 3.57%，赢得了 ILSVRC 2015。",
    "DeepSeek-V3 is a Mixture-of-Experts language model with 671B total parameters, of which 37B "
    "are activated for each token. It adopts Multi-head Latent Attention and DeepSeekMoE, and an "
    "auxiliary-loss-free strategy for load balancing.",
    "多头注意力把查询、键和值投影到多个子空间，在每个子空间里独立计算缩放点积注意力，再把结果拼接。" * 12,
)


class OnnxEncoder:
    """An exported folder → L2-normalised sentence vectors (float32), one batch per call."""

    def __init__(self, folder: Path):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.meta = meta
        self.dim = int(meta["dim"])
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        self.tokenizer.enable_truncation(max_length=int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # no warnings on stderr at load
        self.session = ort.InferenceSession(str(folder / MODEL), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        enc = self.tokenizer.encode_batch(list(texts))
        feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return np.asarray(self.session.run(["embedding"], feed)[0], dtype=np.float32)


class ExportError(RuntimeError):
    """The model cannot be exported, or the export does not embed like the torch model."""


def export(st_model, dest: Path, precision: str, prompts: tuple[str, str],
           progress: Callable[[str], None] | None = None) -> dict:
    """Write MODEL, TOKENIZER and META for the loaded SentenceTransformer `st_model` into `dest`
    (an empty folder), verified against it; returns the metadata."""
    if precision not in PRECISIONS:
        raise ExportError(f"unknown ONNX precision {precision!r} (expected {' or '.join(PRECISIONS)})")
    say = progress or (lambda _m: None)
    dest = Path(dest)
    transformer, pooling = _modules(st_model)
    hf = transformer.auto_model
    tokenizer = st_model.tokenizer
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ExportError("the model has no fast (tokenizers) tokenizer")

    say("  1/4 exporting the graph (torch → ONNX)…")
    raw = dest / "raw.onnx"
    _torch_export(hf, pooling, raw)
    say("  2/4 fusing attention and layer norms…")
    fused = dest / "fused.onnx"
    _optimize(raw, fused, hf.config)
    if precision == "int8":
        say("  3/4 quantising weights to int8 (per channel)…")
        _quantize(fused, dest / MODEL)
        fused.unlink()
    else:
        say("  3/4 keeping fp32 weights…")
        fused.replace(dest / MODEL)
    for extra in dest.glob("raw.onnx*"):
        extra.unlink()
    tokenizer.backend_tokenizer.save(str(dest / TOKENIZER))

    meta = {
        "export_version": EXPORT_VERSION, "precision": precision,
        "dim": int((getattr(st_model, "get_embedding_dimension", None) or
                    st_model.get_sentence_embedding_dimension)()),
        "max_seq_length": int(st_model.max_seq_length),
        "pad_id": int(tokenizer.pad_token_id), "pad_token": str(tokenizer.pad_token),
        "pooling": pooling,
    }
    (dest / META).write_text(json.dumps(meta), encoding="utf-8")  # the caller renames `dest` into place only on success
    say("  4/4 verifying against the torch model…")
    worst = verify(st_model, OnnxEncoder(dest), prompts, MIN_COSINE[precision])
    meta["verify_min_cosine"] = round(worst, 5)
    (dest / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def verify(st_model, encoder: OnnxEncoder, prompts: tuple[str, str], threshold: float,
           texts: Sequence[str] = VERIFY_TEXTS) -> float:
    """Min cosine between torch and ONNX vectors over `texts` with both prompts (ExportError if
    below `threshold`)."""
    worst, where = 1.0, ""
    for prompt in prompts:
        batch = [prompt + t for t in texts]
        ref = st_model.encode(batch, normalize_embeddings=True, convert_to_numpy=True)
        got = encoder.encode(batch)
        cos = np.sum(np.asarray(ref, np.float32) * got, axis=1)
        i = int(np.argmin(cos))
        if cos[i] < worst:
            worst, where = float(cos[i]), batch[i]
    if not worst >= threshold:
        raise ExportError(f"ONNX export disagrees with the torch model: cosine {worst:.4f} < {threshold} "
                          f"on {where[:40]!r}")
    return worst


def _modules(st_model) -> tuple[object, str]:
    """(the Transformer module, "mean" | "cls") of a Transformer → Pooling [→ Normalize] model."""
    mods = list(st_model)
    names = [type(m).__name__ for m in mods]
    if not mods or not hasattr(mods[0], "auto_model") or len(mods) < 2 or names[1] != "Pooling" \
            or any(n != "Normalize" for n in names[2:]):
        raise ExportError(f"unsupported module layout {' → '.join(names)} "
                          "(expected Transformer → Pooling [→ Normalize])")
    pool = mods[1]
    mode = getattr(pool, "pooling_mode", None)
    if mode is None:  # older sentence-transformers: one boolean per mode
        mode = "mean" if getattr(pool, "pooling_mode_mean_tokens", False) else \
            "cls" if getattr(pool, "pooling_mode_cls_token", False) else None
    if mode not in ("mean", "cls") or getattr(pool, "include_prompt", True) is False:
        raise ExportError(f"unsupported pooling {mode!r} (mean or CLS over all tokens are exported)")
    return mods[0], mode


def _torch_export(hf_model, pooling: str, path: Path) -> None:
    import torch

    class Sentence(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                v = h[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(h.dtype)
                v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, p=2.0, dim=1)

    before = getattr(hf_model.config, "_attn_implementation", None)
    _set_attn(hf_model, "eager")  # the SDPA graph has NaN guards ONNX Runtime cannot fuse
    try:
        ids = torch.tensor([[0, 10, 11, 12, 2], [0, 13, 14, 2, 1]])
        mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                "embedding": {0: "batch"}}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Sentence(hf_model).eval(), (ids, mask), str(path), dynamo=False,
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    finally:
        if before is not None:
            _set_attn(hf_model, before)


def _set_attn(hf_model, impl: str) -> None:
    setter = getattr(hf_model, "set_attn_implementation", None)
    try:
        if setter is not None:
            setter(impl)
            return
    except Exception:  # older transformers, or a model that does not support switching
        pass
    hf_model.config._attn_implementation = impl


def _optimize(src: Path, dst: Path, config) -> None:
    """ONNX Runtime's BERT fusions; an unfusable graph is kept as it is (it still runs)."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        opt = optimize_model(str(src), model_type="bert", opt_level=1,
                             num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                             hidden_size=int(getattr(config, "hidden_size", 0) or 0))
        opt.save_model_to_file(str(dst))
    except Exception:
        shutil.copyfile(src, dst)


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # fused contrib ops have no shape inference: tell the quantiser their outputs are float
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=list(QUANTIZED_OPS),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
