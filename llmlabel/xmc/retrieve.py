"""Retrievers that map texts (or inferred queries) onto a huge label space: dense, BM25, and hybrid.

Every retriever can score a batch of queries against *all* labels (``score_all``), which is what the
hybrid needs to fuse them exactly; top-k selection is always ``argpartition`` (never a full sort).

The hybrid (the no-LLM default) z-normalises each component's scores per query over the label space,
adds them with weights, optionally adds a z-normalised log label prior, and scores an item as

    fused(text) + expand_weight * max over extra queries q of fused(q)

where the extra queries are key phrases cut from the text (no LLM) or the queries an LLM inferred.

>>> r = build_retriever("wordllama+bm25", space)          # doctest: +SKIP
>>> r.search(["Experience with Python and SQL"], k=5)      # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .labels import LabelSpace

__all__ = ["DenseRetriever", "BM25Retriever", "HybridRetriever", "build_retriever", "key_phrases", "topk",
           "DEFAULT_RETRIEVER"]

DEFAULT_RETRIEVER = "minilm+wordllama+bm25"


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (scores, ids), best first, by argpartition + a sort of the k."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(scores, part, 1)
    order = np.argsort(-s, axis=1, kind="stable")
    return np.take_along_axis(s, order, 1), np.take_along_axis(part, order, 1)


def _znorm(s: np.ndarray) -> np.ndarray:
    mu = s.mean(axis=1, keepdims=True)
    sd = s.std(axis=1, keepdims=True)
    out = s - mu
    np.divide(out, sd, out=out, where=sd > 1e-12)
    out[(sd <= 1e-12).ravel()] = 0.0
    return out


_SPLIT = re.compile(r"[,;:.!?()\[\]{}/|•·*\"“”]+|\s+-\s+"
                    r"|\s+(?:and|or|as well as|including|such as|e\.g\.|etc)\s+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<[A-Z_]+>")
_STOP = set("a an the of to in on for with and or is are be as at by from this that we you your our their it its "
            "will can must should have has who which what experience knowledge ability strong good excellent "
            "skills skill years year plus work working team".split())


def key_phrases(text: str, *, max_phrases: int = 12, min_chars: int = 3) -> list[str]:
    """Short phrases cut from a text at punctuation and conjunctions: cheap, LLM-free query expansion.

    >>> key_phrases("Strong knowledge of HTML and CSS, solid understanding of React")
    ['Strong knowledge of HTML', 'CSS', 'solid understanding of React']
    """
    out: list[str] = []
    for chunk in _SPLIT.split(_PLACEHOLDER.sub(" ", text)):
        chunk = " ".join(chunk.split())
        words = [w for w in re.findall(r"\w+", chunk.lower()) if w not in _STOP]
        if len(chunk) >= min_chars and words and chunk not in out and chunk != text.strip():
            out.append(chunk)
        if len(out) >= max_phrases:
            break
    return out


class DenseRetriever:
    """Cosine similarity between embedded queries and a :class:`LabelIndex`."""

    def __init__(self, index) -> None:
        self.index = index
        self.name = index.embedder.name

    def embed(self, queries: Sequence[str]) -> np.ndarray:
        return self.index.embedder.encode(list(queries))

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        return self.index.scores(self.embed(queries))

    def search(self, queries: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(self.embed(queries), k)


class BM25Retriever:
    """BM25 over label names (``bm25s``; English stemming when PyStemmer is installed)."""

    name = "bm25"

    def __init__(self, space: LabelSpace, *, k1: float = 1.5, b: float = 0.75) -> None:
        try:
            import bm25s
        except ImportError as e:
            raise ConfigError("BM25 needs the bm25s package", hint="pip install bm25s") from e
        import logging

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG/INFO
        self._bm25s = bm25s
        try:
            import Stemmer

            self.stemmer = Stemmer.Stemmer("english")
        except ImportError:
            self.stemmer = None
        self.space = space
        self.model = bm25s.BM25(k1=k1, b=b)
        self.model.index(self._tok(space.labels), show_progress=False)

    def _tok(self, texts: Sequence[str], ids: bool = True):
        return self._bm25s.tokenize(list(texts), stopwords="en", stemmer=self.stemmer, show_progress=False,
                                    return_ids=ids)

    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        toks = self._tok(queries, ids=False)
        out = np.zeros((len(toks), len(self.space)), dtype=np.float32)
        for i, t in enumerate(toks):
            if t:
                out[i] = self.model.get_scores(t)
        return out

    def search(self, queries: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return topk(self.score_all(queries), k)


class HybridRetriever:
    """Weighted z-score fusion of retrievers, optional label prior, optional extra queries per item."""

    def __init__(self, components: Sequence[tuple[object, float]], space: LabelSpace, *,
                 prior: np.ndarray | None = None, prior_weight: float = 0.0, expand_weight: float = 0.0,
                 block: int = 16) -> None:
        if not components:
            raise ConfigError("a hybrid retriever needs at least one component")
        self.components = [(r, float(w)) for r, w in components]
        self.space = space
        self.prior_z = None
        if prior is not None and prior_weight:
            lp = np.log(np.asarray(prior, dtype=np.float64) + 1e-12)[None]
            self.prior_z = (prior_weight * _znorm(lp)[0]).astype(np.float32)
        self.prior_weight = prior_weight
        self.expand_weight = float(expand_weight)
        self.block = block  # queries scored at once: memory is block x n_labels x 4 bytes per component
        self.name = "+".join(f"{getattr(r, 'name', '?')}" for r, _ in self.components)

    def fused(self, queries: Sequence[str]) -> np.ndarray:
        """(n_queries, n_labels) fused scores, without the prior."""
        out = np.zeros((len(queries), len(self.space)), dtype=np.float32)
        for r, w in self.components:
            if w:
                out += w * _znorm(r.score_all(queries))
        return out

    def search(self, texts: Sequence[str], k: int = 10, *, extra_queries: Sequence[Sequence[str]] | None = None,
               expand_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, label ids) per text. ``extra_queries[i]`` are more queries for text i (inferred
        by an LLM, or key phrases); ``None`` uses :func:`key_phrases` when ``expand_weight`` > 0.
        ``expand_weight`` overrides the retriever's own weight for the extra queries (the Infer step of
        :class:`InferRetrieveRank` passes its own, so LLM queries count even when key phrases are off)."""
        texts = list(texts)
        ew = self.expand_weight if expand_weight is None else float(expand_weight)
        if extra_queries is None:
            extra_queries = [key_phrases(t) for t in texts] if ew else [[] for _ in texts]
        if len(extra_queries) != len(texts):
            raise ConfigError(f"{len(extra_queries)} query lists for {len(texts)} texts")
        k = min(k, len(self.space))
        out_s = np.empty((len(texts), k), dtype=np.float32)
        out_i = np.empty((len(texts), k), dtype=np.int64)
        for a in range(0, len(texts), self.block):
            items = range(a, min(a + self.block, len(texts)))
            qs = [q for i in items for q in [texts[i], *extra_queries[i]]]
            f = self.fused(qs)
            s = np.empty((len(items), len(self.space)), dtype=np.float32)
            pos = 0
            for j, i in enumerate(items):
                n_extra = len(extra_queries[i])
                s[j] = f[pos]
                if n_extra and ew:
                    s[j] += ew * f[pos + 1 : pos + 1 + n_extra].max(0)
                pos += 1 + n_extra
            if self.prior_z is not None:
                s += self.prior_z[None]
            bs, bi = topk(s, k)
            out_s[a : a + len(items)] = bs
            out_i[a : a + len(items)] = bi
        return out_s, out_i

    def retrieve(self, texts: Sequence[str], k: int = 10, **kw) -> list[list[tuple[str, float]]]:
        """Like :meth:`search` but returns (label, score) lists."""
        s, ids = self.search(texts, k, **kw)
        return [[(self.space.labels[j], float(v)) for v, j in zip(srow, irow)] for srow, irow in zip(s, ids)]


def build_retriever(spec: str, space: LabelSpace, *, prior: np.ndarray | None = None, prior_weight: float = 0.0,
                    expand_weight: float = 0.0, weights: dict[str, float] | None = None,
                    cache_dir: str | Path | None = None, use_cache: bool = True,
                    progress: bool = False) -> HybridRetriever:
    """A retriever from a spec like ``minilm+wordllama+bm25`` (any ``+``-joined embedder specs and ``bm25``).

    Label indexes are built once per (labels, embedder) and cached under ``cache_dir``.
    """
    from ..embed import load_embedder
    from .index import LabelIndex

    parts = [p.strip() for p in spec.split("+") if p.strip()]
    if not parts:
        raise ConfigError(f"bad retriever spec {spec!r}", hint="e.g. bm25, wordllama, minilm+wordllama+bm25")
    comps = []
    for p in parts:
        if p == "bm25":
            r = BM25Retriever(space)
        else:
            idx = LabelIndex.build(space, load_embedder(p), cache_dir=cache_dir, use_cache=use_cache,
                                   progress=progress)
            r = DenseRetriever(idx)
        comps.append((r, (weights or {}).get(p, 1.0)))
    return HybridRetriever(comps, space, prior=prior, prior_weight=prior_weight, expand_weight=expand_weight)
