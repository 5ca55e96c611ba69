"""Extreme multi-label classification (10^4-10^6 labels): label index, retrievers, Infer-Retrieve-Rank, metrics.

>>> from llmlabel.xmc import load_labels, build_retriever
>>> space = load_labels("skills.txt")                                      # doctest: +SKIP
>>> build_retriever("minilm+wordllama+bm25", space).retrieve(["I write SQL"], k=5)   # doctest: +SKIP

``InferRetrieveRank`` and the optimiser import dspy, so they load on first use.
"""

from __future__ import annotations

from .api import evaluate_predictions, run_xmc
from .index import LabelIndex, default_index_dir
from .labels import LabelSpace, load_labels, load_priors
from .metrics import evaluate, ndcg_at_k, precision_at_k, recall_at_k, rp_at_k
from .retrieve import (DEFAULT_RETRIEVER, BM25Retriever, DenseRetriever, HybridRetriever, build_retriever,
                       key_phrases)

__all__ = ["run_xmc", "evaluate_predictions", "LabelIndex", "default_index_dir", "LabelSpace", "load_labels",
           "load_priors", "evaluate", "ndcg_at_k", "precision_at_k", "recall_at_k", "rp_at_k", "DEFAULT_RETRIEVER",
           "BM25Retriever", "DenseRetriever", "HybridRetriever", "build_retriever", "key_phrases", "InferRetrieveRank",
           "optimize", "load_program"]


def __getattr__(name: str):
    if name == "InferRetrieveRank":
        from .program import InferRetrieveRank

        return InferRetrieveRank
    if name in ("optimize", "load_program"):
        from . import optimize as _opt

        return getattr(_opt, name)
    raise AttributeError(name)
