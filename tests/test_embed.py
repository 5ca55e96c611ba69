"""Offline embedders and exact top-k: what retrieval, clustering and embedding LFs rely on."""

from __future__ import annotations

import numpy as np
import pytest

from llmlabel.embed import TopKIndex, load_embedder
from llmlabel.errors import EngineError


@pytest.fixture(scope="module", params=["wordllama", "minilm"])
def embedder(request):
    return load_embedder(request.param)


def test_rows_are_unit_norm_and_similar_texts_are_closer(embedder):
    e = embedder.encode(["I lost my bank card", "my card was stolen", "the football match ended 2-1"])
    assert e.shape == (3, embedder.dim) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2]


def test_long_texts_are_truncated_and_counted(embedder):
    before = embedder.truncated
    embedder.encode(["word " * 10_000])
    assert embedder.truncated == before + 1


def test_unknown_model_is_a_clear_error_without_the_network(tmp_path):
    from llmlabel.embed.embedders import resolve_embedder
    from llmlabel.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        load_embedder("/no/such/embedder")
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        load_embedder("nosuchembedder")  # offline or not: no Hub request is made for a name that is nowhere here
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers folder"):
        resolve_embedder(str(tmp_path / "notamodel"))
    assert resolve_embedder("minilm") == resolve_embedder("wordllama") == "bundled"
    with pytest.raises(EngineError, match="cannot load embedding model"):  # a folder that is there but broken
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "config.json").write_text("{}")
        load_embedder(str(tmp_path / "broken"))


def test_topk_matches_full_sort_across_blocks():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(1000, 16)).astype(np.float32)
    q = rng.normal(size=(37, 16)).astype(np.float32)
    prior = rng.normal(size=1000).astype(np.float32)
    idx = TopKIndex(v.astype(np.float16), block_rows=97)  # float16 storage, many blocks
    s, i = idx.search(q, k=10, prior=prior, prior_weight=0.3, query_block=8)
    full = q @ v.astype(np.float16).astype(np.float32).T + 0.3 * prior
    np.testing.assert_array_equal(i, np.argsort(-full, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(s, np.take_along_axis(full, i, 1), rtol=1e-5, atol=1e-5)
