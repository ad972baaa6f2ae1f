"""llama-index as a real integration: the tutor's hybrid retrieval inside llama-index's own
RetrieverQueryEngine, answered by SmolLM2 through llama-index's OpenAILike LLM over HTTP to the
real llama.cpp server."""
from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import QueryBundle  # noqa: E402
from llama_index.llms.openai_like import OpenAILike  # noqa: E402

from tutor.api import Tutor  # noqa: E402
from tutor.index import ingest  # noqa: E402
from tutor.integrations.llama_index import TutorRetriever  # noqa: E402

try:
    from tests.conftest import NOTES
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from conftest import NOTES  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def small_tutor(tmp_path_factory, write_notes, base_settings) -> Tutor:
    root = tmp_path_factory.mktemp("li")
    corpus = write_notes(root / "corpus")
    s = base_settings.replace(corpus_dir=corpus, index_dir=root / "index")
    ingest(s)
    return Tutor(s)


def test_retriever_nodes_carry_provenance(small_tutor: Tutor):
    nodes = TutorRetriever(small_tutor, k=3).retrieve("ResNet 的残差连接解决了什么问题？")
    expected = small_tutor.search("ResNet 的残差连接解决了什么问题？", k=3)
    assert [n.node.node_id for n in nodes] == [h.chunk.id for h in expected.hits]
    top = nodes[0]
    assert top.node.metadata["file"] == "resnet.md" and "残差连接" in top.node.metadata["section"]
    assert top.node.metadata["section"] == expected.hits[0].chunk.section
    assert top.score == pytest.approx(expected.hits[0].score)
    source = NOTES["notes/resnet.md"]
    for n in nodes:  # the offsets point into the source document
        m = n.node.metadata
        if m["file"] == "resnet.md":
            assert (n.node.start_char_idx, n.node.end_char_idx) == (m["start"], m["end"])
            assert source[m["start"]:m["end"]].strip()[:20] in n.node.get_content()
    # the LLM sees where the text is from, not the offsets
    llm_view = top.node.get_content(metadata_mode="llm")
    assert "resnet.md" in llm_view and "chunk_id" not in llm_view


def test_retriever_mode_and_query_bundle(small_tutor: Tutor):
    nodes = TutorRetriever(small_tutor, k=2, mode="bm25").retrieve(QueryBundle("MoE 门控网络 专家"))
    assert len(nodes) == 2 and nodes[0].node.metadata["file"] == "moe.txt"
    assert nodes[0].node.metadata["retriever"] == "bm25"


@pytest.mark.slow
def test_query_engine_with_smollm2_over_openai_like(small_tutor: Tutor, llm_server):
    llm = OpenAILike(model=llm_server.model, api_base=llm_server.base_url, api_key="EMPTY",
                     is_chat_model=True, context_window=llm_server.n_ctx, max_tokens=24, temperature=0.0,
                     timeout=300)
    engine = RetrieverQueryEngine.from_args(TutorRetriever(small_tutor, k=2), llm=llm)
    response = engine.query("What does multi-head attention do?")
    assert isinstance(response.response, str) and response.response.strip()
    files = [n.node.metadata["file"] for n in response.source_nodes]
    assert files[0] == "attention.md"
    assert all({"section", "page", "start", "end"} <= set(n.node.metadata) for n in response.source_nodes)
