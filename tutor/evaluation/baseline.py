"""`tutor eval --baseline llamaindex`: the pipeline a user would build in twenty lines instead.

llama-index defaults throughout — `SentenceSplitter()` (1024 tokens, overlap 200), a FAISS vector
store (`IndexFlatL2`, as llama-index's FAISS guide), `VectorStoreIndex`, `as_query_engine(llm=…)`
(top 2 nodes, "compact" synthesis, its own QA prompt) — with the tutor's embedder loaded from the
same local folder (with e5's query / passage prefixes, which any e5 user sets) and the same LLM
behind llama-index's OpenAILike. It reads the same documents the tutor indexes (its corpus loader,
so PDFs are the same text), answers the same dataset and is scored by the same code; the rows keep
the shape of a tutor run (`mode` / `ranks` say "llamaindex"), so `report.md` and `tutor eval
compare` read them as they read any run.

What the baseline lacks is part of the comparison: it has no refusal signal (a refusal is read
from the answer's wording, see REFUSAL_PHRASES) and no citations (so citation recall is 0).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ..corpus import load_corpus, scan
from .dataset import EvalItem
from .metrics import first_hit_rank

if TYPE_CHECKING:
    from ..config import Settings
    from .judges import Judge

NAME = "llamaindex"
TOP_N = 10  # retrieval depth scored (hit@1…10), as for the tutor
# the wording of "the context does not say" in the answers of small and large chat models
REFUSAL_PHRASES = re.compile(
    r"^\s*empty response\s*$|not (?:mentioned|provided|stated|specified|included|available|found)|"
    r"(?:does|do|did) not (?:provide|mention|contain|say|state|specify|include|have)|no (?:information|mention)|"
    r"(?:cannot|can't|unable to) (?:be )?(?:answer|determine|find|provide)|i don'?t know|"
    r"(?:没有|未|并未|并没有)(?:提到|提及|给出|说明|涉及|相关|明确)|无法(?:回答|确定|得知|找到)|不知道|不清楚", re.I)
REFUSAL_WINDOW = 200  # only the answer's opening counts: "X is …; the notes do not say Y" answered


def _require() -> None:
    try:
        import llama_index.core  # noqa: F401
        import llama_index.embeddings.huggingface  # noqa: F401
        import llama_index.llms.openai_like  # noqa: F401
        import llama_index.vector_stores.faiss  # noqa: F401
    except ImportError as e:
        raise ValueError(f"--baseline llamaindex needs llama-index ({e.name} is missing): "
                         "pip install -e '.[llamaindex]'") from None


def looks_refused(answer: str) -> bool:
    return bool(REFUSAL_PHRASES.search(answer[:REFUSAL_WINDOW]))


def documents(settings: "Settings") -> list:
    """The tutor's corpus as llama-index Documents, with SimpleDirectoryReader's metadata names
    (`file_name`, `page_label`), which the default pipeline shows the LLM and embeds."""
    from llama_index.core import Document

    out = []
    for d in load_corpus(settings.paths.corpus_dir).documents:
        meta = {"file_name": d.file, "file_path": d.path}
        if d.page is not None:
            meta["page_label"] = str(d.page)
        out.append(Document(text=d.text, metadata=meta, excluded_embed_metadata_keys=["file_path"],
                            excluded_llm_metadata_keys=["file_path"]))
    return out


def embed_model(settings: "Settings"):
    """The tutor's embedder, from the same local sentence-transformers folder (never the hub)."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from ..embedding import Embedder
    from ..models import resolve_embedder

    e = Embedder(settings)
    location = resolve_embedder(settings.embedding.model, settings.paths.home)
    kw = {"local_files_only": True} if isinstance(location, Path) else {}
    return HuggingFaceEmbedding(model_name=str(location), query_instruction=e.prompts.query or None,
                                text_instruction=e.prompts.passage or None, **kw)


def _fingerprint(settings: "Settings") -> str:
    import llama_index.core

    files = sorted((f.rel, f.sha256) for f in scan(settings.paths.corpus_dir))
    key = {"files": files, "embedder": settings.embedding.model, "llama_index": llama_index.core.__version__,
           "splitter": "SentenceSplitter()", "store": "faiss.IndexFlatL2"}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def load_or_build_index(settings: "Settings", progress: Callable[[str], None] | None = None):
    """The default VectorStoreIndex, persisted beside the tutor's index (`index/baselines/`) by
    corpus fingerprint, so a second run (or the answer run after a retrieval-only one) does not
    embed the corpus again."""
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.faiss import FaissVectorStore

    emb = embed_model(settings)
    folder = Path(settings.paths.index_dir) / "baselines" / f"{NAME}-{_fingerprint(settings)}"
    if (folder / "docstore.json").is_file():
        store = FaissVectorStore.from_persist_dir(str(folder))
        ctx = StorageContext.from_defaults(vector_store=store, persist_dir=str(folder))
        return load_index_from_storage(ctx, embed_model=emb)
    docs = documents(settings)
    if progress:
        progress(f"llama-index baseline: splitting and embedding {len(docs)} documents (one time)…")
    dim = len(emb.get_text_embedding("dimension probe"))
    ctx = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatL2(dim)))
    index = VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=emb,
                                            transformations=[SentenceSplitter()])
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # an interrupted build
    index.storage_context.persist(persist_dir=str(tmp))
    tmp.replace(folder)
    return index


def openai_like(settings: "Settings", base_url: str, model: str):
    """The same LLM the tutor answers with, as llama-index's OpenAI-compatible client."""
    from llama_index.llms.openai_like import OpenAILike

    from ..llm.params import default_params

    p = default_params(model, settings)
    return OpenAILike(model=model, api_base=base_url, api_key=settings.llm.api_key or "EMPTY", is_chat_model=True,
                      context_window=settings.llm.n_ctx, max_tokens=p.max_tokens, temperature=p.temperature,
                      timeout=settings.llm.timeout_s, additional_kwargs={"top_p": p.top_p})


@contextlib.contextmanager
def baseline_llm(settings: "Settings", log_dir: Path) -> Iterator[tuple[object, str]]:
    """(llama-index LLM, description) for the configured backend: the server itself for
    `openai`; for `llamacpp` the same GGUF behind llama.cpp's server, started here (llama-index
    then applies the model's own chat template through the server, as for the tutor)."""
    from ..llm.base import backend_kind
    from ..llm.launch import serve

    kind = backend_kind(settings.llm.backend)
    if kind == "openai":
        yield openai_like(settings, settings.llm.base_url, settings.llm.model), f"openai-like {settings.llm.model}"
    elif kind == "llamacpp":
        with serve(settings.llm.model, log_dir / "llama_server.log", home=settings.paths.home, n_ctx=settings.llm.n_ctx,
                   n_threads=settings.llm.n_threads) as srv:
            yield openai_like(settings, srv.base_url, srv.model), f"llama.cpp server {settings.llm.model}"
    else:
        raise ValueError("--baseline llamaindex answers through an OpenAI-compatible server: use "
                         "--backend llamacpp (started here) or --backend openai (vllm serve)")


def signature(settings: "Settings", retrieval_only: bool) -> dict:
    sig = {"pipeline": NAME, "retrieval_mode": NAME, "embedder": settings.embedding.model,
           "chunking": "SentenceSplitter() 1024/200 tokens", "vector_store": "faiss.IndexFlatL2",
           "similarity_top_k": 2}
    if not retrieval_only:
        sig.update(backend=settings.llm.backend, model=settings.llm.model, max_tokens=settings.llm.max_tokens,
                   temperature=settings.llm.temperature, top_p=settings.llm.top_p, n_ctx=settings.llm.n_ctx)
    return sig


def _node_hit(n, rank: int) -> dict:
    """A llama-index node in the search `--json` shape the scoring reads (file, text, page)."""
    m = n.node.metadata
    page = m.get("page_label")
    return {"rank": rank, "score": round(float(n.score or 0.0), 6), "chunk_id": n.node.node_id,
            "file": m.get("file_name"), "path": m.get("file_path"), "title": "", "section": "",
            "page": int(page) if page and str(page).isdigit() else None,
            "start": n.node.start_char_idx, "end": n.node.end_char_idx, "text": n.node.get_content()}


class LlamaIndexBaseline:
    """The runner's `retrieval_row` / `answer_row` pair for the default llama-index pipeline."""

    def __init__(self, index, llm=None, llm_name: str = "", judge_name: str | None = None, settings=None):
        self.retriever = index.as_retriever(similarity_top_k=TOP_N)
        self.engine = index.as_query_engine(llm=llm) if llm is not None else None
        self.llm_name = llm_name
        self.settings = settings
        self.judge_name = judge_name

    def retrieval_row(self, tutor, item: EvalItem) -> dict:
        t0 = time.perf_counter()
        nodes = self.retriever.retrieve(item.question)
        ms = (time.perf_counter() - t0) * 1000
        hits = [_node_hit(n, i) for i, n in enumerate(nodes, start=1)]
        rank = first_hit_rank(item, hits) if item.type != "unanswerable" else None
        return {"id": item.id, "question": item.question, "type": item.type, "lang": item.lang,
                "tags": item.tags, "mode": NAME, "hits": hits, "ranks": {NAME: rank},
                "search_ms": {NAME: round(ms, 2)}, "pipeline": NAME}

    @cached_property
    def judge(self) -> Judge:
        """The baseline's own judge (made when it answers: retrieval-only runs need none)."""
        from .judges import make_judge

        return make_judge(self.settings, self.judge_name)

    def make_answer_row(self) -> Callable:
        from ..llm.base import LLMError
        from .answers import ANSWER_FIELDS, _empty_scores, score_answer

        judge = self.judge

        def answer_row(tutor, item: EvalItem, row: dict) -> dict:
            row = dict(row, judge=judge.name)
            t0 = time.perf_counter()
            try:
                resp = self.engine.query(item.question)
            except Exception as e:  # noqa: BLE001 - llama-index wraps the client's errors in many types
                row.update(error=f"answer: {type(e).__name__}: {e}", scores=_empty_scores(item))
                return row
            total = (time.perf_counter() - t0) * 1000
            text = str(resp.response or "").strip()
            sources = [_node_hit(n, i) for i, n in enumerate(resp.source_nodes, start=1)]
            ans = {"answer": text, "refused": looks_refused(text), "citations": [], "sources": sources,
                   "reasoning": None, "model": self.settings.llm.model, "backend": f"{NAME} ({self.llm_name})",
                   "timings_ms": {"total": round(total, 2)}, "grounded": False, "invalid_citations": [],
                   "evidence": [], "decline_reason": None, "standalone_question": None}
            row.update({k: ans.get(k) for k in ANSWER_FIELDS})
            row["refusal_signal"] = "answer wording (baseline has no refusal of its own)"
            try:
                row["scores"], row["judged"] = score_answer(item, ans, judge)
            except LLMError as e:
                row.update(error=f"judge: {e}", scores=_empty_scores(item))
            return row

        return answer_row
