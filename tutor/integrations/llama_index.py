"""The tutor's retrieval as a llama-index retriever (`pip install -e ".[llamaindex]"`).

A llama-index app can plug the tutor's hybrid search (dense e5 + jieba BM25, zh↔en expansion,
RRF, per-file caps) into its own query engines: `RetrieverQueryEngine.from_args(TutorRetriever(
tutor), llm=...)`. Each node carries where its text stands in the corpus (file, section, page and
the character offsets into the source document), so the app can cite as the tutor does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError("tutor.integrations.llama_index needs llama-index: pip install -e '.[llamaindex]'") from e

from ..records import Hit

if TYPE_CHECKING:
    from ..api import Tutor

# what the LLM sees beside the text (where it comes from); offsets and ids are for the app
LLM_HIDDEN = ("path", "start", "end", "chunk_id", "rank", "retriever")


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One search hit as a llama-index node with its provenance in metadata and offsets."""
    c = hit.chunk
    meta = {"file": c.file, "path": c.path, "title": c.title, "section": c.section, "page": c.page,
            "start": c.start, "end": c.end, "chunk_id": c.id, "rank": hit.rank, "retriever": hit.retriever}
    node = TextNode(id_=c.id, text=c.text, metadata=meta, start_char_idx=c.start, end_char_idx=c.end,
                    excluded_llm_metadata_keys=list(LLM_HIDDEN),
                    excluded_embed_metadata_keys=list(meta))
    return NodeWithScore(node=node, score=float(hit.score))


class TutorRetriever(BaseRetriever):
    """llama-index `BaseRetriever` over a `tutor.api.Tutor`'s index.

    `k`: hits per query (default: the tutor's `top_k`); `mode`: hybrid | dense | bm25 (default:
    the tutor's `retrieval_mode`). The index is the tutor's own, so a re-ingest is picked up.
    """

    def __init__(self, tutor: "Tutor", k: int | None = None, mode: str | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        super().__init__(callback_manager=callback_manager)
        self._tutor = tutor
        self._k = k
        self._mode = mode

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._tutor.search(query_bundle.query_str, k=self._k, mode=self._mode)
        return [hit_to_node(h) for h in result.hits]
