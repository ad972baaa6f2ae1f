"""The embedder without torch: export a sentence-transformers model once, run it on OpenVINO or on
ONNX Runtime.

Why not sentence-transformers' own `backend="onnx"` / `"openvino"`: both go through optimum
(optimum-onnx, optimum-intel), whose releases need transformers < 4.58, and this project runs
transformers 5. The export here is small and explicit instead:

1. the torch model (eager attention: its graph fuses well) wrapped with the model's own pooling
   (mean or CLS) and L2 normalisation, exported with `torch.onnx.export`: one graph from token ids
   to the sentence vector;
2. "openvino": converted to OpenVINO IR with fp16-stored weights (0.24 GB resident instead of
   0.7), computed in fp32 (backend "openvino": retrieval identical to torch on dev and check) or
   in bf16 on CPUs with AMX / AVX512-BF16 ("openvino-bf16": 1.7x faster, but on an AMX CPU two of
   105 eval items ranked lower; see README "Numbers");
   "openvino-int8": the same IR quantised to int8 (weights and activations) by NNCF's
   post-training quantisation, its activation ranges measured on CALIBRATION (texts shipped with
   the package); the softmax/layer-norm paths stay in floating point (NNCF's transformer preset);
   "onnx-int8": ONNX Runtime's transformer fusions, then dynamic int8 quantisation per output
   channel (per-tensor scales lose too much: min cosine 0.974 against torch), see QUANTIZED_OPS;
3. verified against the torch model by cosine on query and passage texts, short and truncated.

At run time only `openvino` or `onnxruntime`, and `tokenizers`, are imported: no torch.
"""
from __future__ import annotations

import json
import shutil
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

EXPORT_VERSION = 4
META = "export.json"  # describes the export; the folder is renamed into place only when verified
TOKENIZER = "tokenizer.json"
MODEL_FILE = {"onnx-int8": "model.onnx", "openvino": "model.xml", "openvino-int8": "model.xml"}  # target → file
TARGETS = tuple(MODEL_FILE)
# backend id → (export target, compute precision): openvino and openvino-bf16 run the same export;
# "int8" on OpenVINO means the int8 ops of a quantised IR, the rest computed in f32
RUNTIMES = {"openvino": ("openvino", "f32"), "openvino-bf16": ("openvino", "bf16"),
            "openvino-int8": ("openvino-int8", "int8"), "onnx-int8": ("onnx-int8", "int8")}
MIN_COSINE = {"int8": 0.99, "bf16": 0.999, "f32": 0.9999}  # against the torch model, every verify text
CALIBRATION = Path(__file__).parent / "data" / "calibration.jsonl"  # evals/make_calibration.py wrote it
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


class ExportError(RuntimeError):
    """The model cannot be exported, or the export does not embed like the torch model."""


# ---- run time -----------------------------------------------------------------------------------
class Encoder:
    """An exported folder → L2-normalised float32 sentence vectors, one batch per `encode` call."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.dim = int(self.meta["dim"])
        self.tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        self.tokenizer.enable_truncation(max_length=int(self.meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=self.meta["pad_token"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(self._run(*self._inputs(texts)), dtype=np.float32)

    def encode_batches(self, batches: Iterable[Sequence[str]]) -> Iterator[np.ndarray]:
        """The vectors of many batches, in order (ingest); here simply one batch after another."""
        for texts in batches:
            yield self.encode(texts)

    def _inputs(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = self.tokenizer.encode_batch(list(texts))
        return (np.array([e.ids for e in enc], dtype=np.int64),
                np.array([e.attention_mask for e in enc], dtype=np.int64))

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxEncoder(Encoder):
    """ONNX Runtime on the CPU."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # no warnings on stderr at load
        self.session = ort.InferenceSession(str(Path(folder) / MODEL_FILE["onnx-int8"]), opts,
                                            providers=["CPUExecutionProvider"])

    def _run(self, ids, mask):
        return self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]


class OpenVinoEncoder(Encoder):
    """OpenVINO on the CPU, computing in fp32 or bf16 (bf16 needs AMX / AVX512-BF16; elsewhere
    OpenVINO computes in fp32 whatever is asked)."""

    def __init__(self, folder: Path, precision: str = "f32"):
        super().__init__(folder)
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(Path(folder) / MODEL_FILE[self.meta.get("target", "openvino")]))
        hint = "f32" if precision == "int8" else precision  # a quantised IR runs its int8 ops as int8
        self._core, self._model, self._hint = core, model, hint
        self.compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_PRECISION_HINT": hint})
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: one batch at a time (the UI is threaded)
        self._throughput = None  # compiled on the first encode_batches: a search-only process never pays for it

    def _run(self, ids, mask):
        with self._lock:
            self._request.infer({"input_ids": ids, "attention_mask": mask})
            return self._request.get_output_tensor(0).data.copy()

    def encode_batches(self, batches: Iterable[Sequence[str]]) -> Iterator[np.ndarray]:
        """Ingest: one stream per core, each running its own small batch, instead of one batch at a
        time split over all cores (2 cores, the corpus, batches of 2: 38.5 vs 35.6 chunks/s in f32,
        68 vs 54 in bf16). The latency-compiled model stays for queries, which want both cores."""
        import openvino as ov

        with self._lock:
            if self._throughput is None:
                self._throughput = self._core.compile_model(
                    self._model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": self._hint})
        compiled = self._throughput
        queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        done: dict[int, np.ndarray] = {}
        errors: list[BaseException] = []

        def finished(request, i: int) -> None:  # runs on OpenVINO's thread
            try:
                done[i] = request.get_output_tensor(0).data.copy()
            except BaseException as e:  # surfaced below, in the caller's thread
                errors.append(e)

        queue.set_callback(finished)
        sent = nxt = 0
        for texts in batches:
            ids, mask = self._inputs(texts)
            queue.start_async({"input_ids": ids, "attention_mask": mask}, sent)  # waits for an idle request
            sent += 1
            while nxt in done:
                yield np.ascontiguousarray(done.pop(nxt), dtype=np.float32)
                nxt += 1
        queue.wait_all()
        if errors:
            raise errors[0]
        for i in range(nxt, sent):
            yield np.ascontiguousarray(done.pop(i), dtype=np.float32)


def load_encoder(folder: Path, precision: str) -> Encoder:
    """The runtime for an exported folder, computing at `precision` (RUNTIMES)."""
    target = json.loads((Path(folder) / META).read_text(encoding="utf-8"))["target"]
    return OnnxEncoder(folder) if target == "onnx-int8" else OpenVinoEncoder(folder, precision)


# ---- export -------------------------------------------------------------------------------------
def export(st_model, dest: Path, target: str, prompts: tuple[str, str],
           progress: Callable[[str], None] | None = None) -> dict:
    """Write the `target` model, TOKENIZER and META for the loaded SentenceTransformer `st_model`
    into `dest` (an empty folder), verified against it; returns the metadata."""
    if target not in TARGETS:
        raise ExportError(f"unknown export target {target!r} (expected {' or '.join(TARGETS)})")
    say = progress or (lambda _m: None)
    dest = Path(dest)
    transformer, pooling = _modules(st_model)
    hf = transformer.auto_model
    tokenizer = st_model.tokenizer
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ExportError("the model has no fast (tokenizers) tokenizer")

    say("  1/3 exporting the graph (torch → ONNX)…")
    raw = dest / "raw.onnx"
    _torch_export(hf, pooling, raw)
    if target == "onnx-int8":
        say("  2/3 fusing attention and layer norms, quantising weights to int8 (per channel)…")
        fused = dest / "fused.onnx"
        _optimize(raw, fused, hf.config)
        _quantize(fused, dest / MODEL_FILE[target])
        fused.unlink()
    elif target == "openvino-int8":
        say("  2/3 quantising to int8 with NNCF (activation ranges from the calibration texts)…")
        import openvino as ov

        model = _nncf_quantize(ov.Core().read_model(str(raw)), tokenizer, prompts, int(st_model.max_seq_length))
        ov.save_model(model, str(dest / MODEL_FILE[target]), compress_to_fp16=True)
    else:
        say("  2/3 converting to OpenVINO IR (fp16 weights)…")
        import openvino as ov

        ov.save_model(ov.Core().read_model(str(raw)), str(dest / MODEL_FILE[target]), compress_to_fp16=True)
    for extra in dest.glob("raw.onnx*"):
        extra.unlink()
    tokenizer.backend_tokenizer.save(str(dest / TOKENIZER))

    dim = (getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension)()
    meta = {"export_version": EXPORT_VERSION, "target": target, "dim": int(dim),
            "max_seq_length": int(st_model.max_seq_length), "pad_id": int(tokenizer.pad_token_id),
            "pad_token": str(tokenizer.pad_token), "pooling": pooling}
    (dest / META).write_text(json.dumps(meta), encoding="utf-8")
    say("  3/3 verifying against the torch model…")
    meta["verify"] = {}
    for backend, (t, precision) in RUNTIMES.items():  # every backend that will run this export
        if t == target:
            cos = verify(st_model, load_encoder(dest, precision), prompts, MIN_COSINE[precision])
            meta["verify"][backend] = round(cos, 6)
    meta["verify_min_cosine"] = min(meta["verify"].values())
    (dest / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def verify(st_model, encoder: Encoder, prompts: tuple[str, str], threshold: float,
           texts: Sequence[str] = VERIFY_TEXTS) -> float:
    """Min cosine between torch and exported vectors over `texts` with both prompts (ExportError if
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
        raise ExportError(f"export disagrees with the torch model: cosine {worst:.4f} < {threshold} "
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
    _set_attn(hf_model, "eager")  # the SDPA graph has NaN guards that neither runtime fuses
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


def calibration_texts(prompts: tuple[str, str], path: Path = CALIBRATION) -> list[str]:
    """The shipped calibration texts, each with the prompt of its kind (query or passage)."""
    from .jsonl import read

    query, passage = prompts
    return [(query if r["kind"] == "query" else passage) + r["text"] for r in read(path)]


def _nncf_quantize(ov_model, tokenizer, prompts: tuple[str, str], max_len: int):
    """Static int8 post-training quantisation of the IR. ModelType.TRANSFORMER keeps softmax and
    layer norms in floating point; MIXED = symmetric weights, asymmetric activations (the
    activations after GELU are far from zero-centred)."""
    import nncf

    texts = calibration_texts(prompts)
    samples = []
    for text in texts:  # one text per sample: no padding, so the ranges are those of real tokens
        enc = tokenizer(text, truncation=True, max_length=max_len, return_tensors="np")
        samples.append({"input_ids": enc["input_ids"].astype(np.int64),
                        "attention_mask": enc["attention_mask"].astype(np.int64)})
    return nncf.quantize(ov_model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                         preset=nncf.QuantizationPreset.MIXED, subset_size=len(samples))


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # fused contrib ops have no shape inference: tell the quantiser their outputs are float
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=list(QUANTIZED_OPS),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
