"""Ranking metrics for extreme multi-label classification, vectorised over items.

Every function takes the ranked predictions per item (lists of labels, best first) and the gold label
sets, and returns the mean over items that have at least one gold label (items without gold say nothing
about ranking quality and are skipped; :func:`evaluate` reports how many).

- ``precision@k`` = hits in the top k / k
- ``recall@k`` = hits in the top k / |gold|
- ``RP@k`` (R-precision at k, the IReRa paper's metric) = hits in the top k / min(k, |gold|)
- ``nDCG@k`` with binary gains: DCG = sum(rel_j / log2(j + 1)), divided by the ideal DCG of min(k, |gold|) hits

>>> rp_at_k([["a", "b", "c"]], [{"a", "c"}], 2)
0.5
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["relevance", "precision_at_k", "recall_at_k", "rp_at_k", "ndcg_at_k", "evaluate"]


def relevance(preds: Sequence[Sequence[str]], gold: Sequence[Iterable[str]], k: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(rel, n_gold): ``rel[i, j]`` is 1 when item i's j-th prediction (j < k) is gold; items without gold
    are dropped. Duplicate predictions count once (the first occurrence).

    Labels are mapped to integer ids once; the hit matrix is then built with array operations (one
    ``np.isin`` over item-offset ids), not a loop per item and rank.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(preds) != len(gold):
        raise ValueError(f"{len(preds)} prediction lists but {len(gold)} gold sets")
    gold = [set(g) for g in gold]
    keep = [i for i, g in enumerate(gold) if g]
    if not keep:
        return np.zeros((0, k)), np.zeros(0)
    vocab: dict[str, int] = {}
    tops = [list(preds[i])[:k] for i in keep]
    p_len = np.fromiter((len(t) for t in tops), dtype=np.int64, count=len(keep))
    p_ids = np.fromiter((vocab.setdefault(x, len(vocab)) for t in tops for x in t), dtype=np.int64,
                        count=int(p_len.sum()))
    g_len = np.fromiter((len(gold[i]) for i in keep), dtype=np.int64, count=len(keep))
    g_ids = np.fromiter((vocab.setdefault(x, len(vocab)) for i in keep for x in gold[i]), dtype=np.int64,
                        count=int(g_len.sum()))
    v = max(len(vocab), 1)
    p_item = np.repeat(np.arange(len(keep)), p_len)
    p_key = p_item * v + p_ids  # (item, label) pairs as one integer
    g_key = np.repeat(np.arange(len(keep)), g_len) * v + g_ids
    hit = np.isin(p_key, g_key)
    first = np.zeros(len(p_key), dtype=bool)
    first[np.unique(p_key, return_index=True)[1]] = True  # a repeated prediction is not a second hit
    rank = np.arange(len(p_key)) - np.repeat(np.cumsum(p_len) - p_len, p_len)
    rel = np.zeros((len(keep), k), dtype=np.float64)
    rel[p_item, rank] = (hit & first).astype(np.float64)
    return rel, g_len.astype(np.float64)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def precision_at_k(preds, gold, k: int) -> float:
    rel, _ = relevance(preds, gold, k)
    return _mean(rel.sum(1) / k)


def recall_at_k(preds, gold, k: int) -> float:
    rel, n = relevance(preds, gold, k)
    return _mean(rel.sum(1) / n) if len(n) else float("nan")


def rp_at_k(preds, gold, k: int) -> float:
    rel, n = relevance(preds, gold, k)
    return _mean(rel.sum(1) / np.minimum(k, n)) if len(n) else float("nan")


def ndcg_at_k(preds, gold, k: int) -> float:
    rel, n = relevance(preds, gold, k)
    if not len(n):
        return float("nan")
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = rel @ disc
    ideal = np.cumsum(disc)[np.minimum(k, n).astype(int) - 1]
    return _mean(dcg / ideal)


def evaluate(preds, gold, ks: Sequence[int] = (1, 5, 10, 50, 100)) -> dict:
    """All metrics at every k, plus ``items`` (scored) and ``items_without_gold`` (skipped)."""
    gold = [set(g) for g in gold]
    out: dict = {"items": sum(1 for g in gold if g), "items_without_gold": sum(1 for g in gold if not g)}
    for k in ks:
        rel, n = relevance(preds, gold, k)
        hits = rel.sum(1)
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        if len(n):
            ideal = np.cumsum(disc)[np.minimum(k, n).astype(int) - 1]
            out[f"RP@{k}"] = _mean(hits / np.minimum(k, n))
            out[f"recall@{k}"] = _mean(hits / n)
            out[f"precision@{k}"] = _mean(hits / k)
            out[f"nDCG@{k}"] = _mean((rel @ disc) / ideal)
        else:
            for m in ("RP", "recall", "precision", "nDCG"):
                out[f"{m}@{k}"] = float("nan")
    return out
