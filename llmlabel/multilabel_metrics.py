"""Multi-label metrics shared by aggregate, distill reports and eval/: micro/macro/per-label F1, leaf and group.

Group level (two-level taxonomies): an item has a parent when it has any of that parent's leaves; a leaf
with no parent is its own group. :func:`group_matrix` maps a 0/1 (or probability) leaf matrix to groups
(max over the group's leaves).

>>> Y = np.array([[1, 0, 0], [0, 1, 1]]); P = np.array([[1, 0, 0], [0, 0, 1]])
>>> multilabel_f1(Y, P, ["joy", "love", "anger"])["micro_f1"]
0.8
>>> G, names = group_matrix(Y, ["joy", "love", "anger"], {"joy": "positive", "love": "positive"})
>>> names, G.tolist()
(['positive', 'anger'], [[1, 0], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["best_thresholds", "group_matrix", "groups_of", "multilabel_f1", "paired_macro_f1_se"]


def multilabel_f1(Y, pred, labels: Sequence[str] | None = None) -> dict:
    """micro_f1, macro_f1 (mean over labels that occur in gold or predictions), subset accuracy, per-label F1
    and gold support, for 0/1 indicator matrices."""
    t, p = np.asarray(Y).astype(bool), np.asarray(pred).astype(bool)
    if t.shape != p.shape:
        raise ValueError(f"gold {t.shape} and predictions {p.shape} differ in shape")
    tp, fp, fn = (t & p).sum(0), (~t & p).sum(0), (t & ~p).sum(0)
    denom = 2 * tp + fp + fn
    per = np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0)
    names = list(labels) if labels is not None else [str(j) for j in range(t.shape[1])]
    return {"micro_f1": float(2 * tp.sum() / max(1, denom.sum())),
            "macro_f1": float(per[denom > 0].mean()) if (denom > 0).any() else float("nan"),
            "subset_accuracy": float((t == p).all(1).mean()) if len(t) else float("nan"), "n": int(len(t)),
            "per_label": {x: {"f1": round(float(f), 4), "support": int(s)} for x, f, s in zip(names, per, t.sum(0))}}


def groups_of(taxonomy) -> dict[str, str]:
    """Leaf name -> parent name of a two-level taxonomy (leaves without a parent are left out)."""
    by_id = {lab.id: lab.name for lab in taxonomy.labels}
    return {lab.name: by_id[lab.parent] for lab in taxonomy.leaves() if lab.parent}


def group_matrix(Y, labels: Sequence[str], groups: Mapping[str, str]) -> tuple[np.ndarray, list[str]]:
    """``(G, group names)``: column g is the max of the leaf columns in group g (first-seen order; a leaf with
    no group is its own)."""
    Y = np.asarray(Y)
    names: list[str] = []
    col: list[int] = []
    for x in labels:
        g = groups.get(x, x)
        if g not in names:
            names.append(g)
        col.append(names.index(g))
    col_a = np.asarray(col)
    G = np.stack([Y[:, col_a == g].max(1) for g in range(len(names))], 1) if len(names) else Y[:, :0]
    return G, names


def best_thresholds(P: np.ndarray, Y: np.ndarray, *, default: float = 0.5,
                    grid: np.ndarray | None = None) -> np.ndarray:
    """Per column, the threshold on ``P`` with the highest F1 against ``Y`` (vectorised over a grid)."""
    grid = np.linspace(0.05, 0.95, 19) if grid is None else np.asarray(grid)
    pred = P[None, :, :] >= grid[:, None, None]  # (t, n, k)
    Yb = Y.astype(bool)[None]
    tp = (pred & Yb).sum(1)
    fp = (pred & ~Yb).sum(1)
    fn = (~pred & Yb).sum(1)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    out = grid[f1.argmax(0)].astype(np.float32)
    out[Y.sum(0) == 0] = default  # no dev positive: nothing to tune on
    return out


def paired_macro_f1_se(A: np.ndarray, B: np.ndarray, Y: np.ndarray, draws: int = 400, seed: int = 0) -> float:
    """Standard error of macro-F1(A) - macro-F1(B) over the same gold rows of 0/1 label matrices (seeded paired
    bootstrap, vectorised: a draw is a vector of row counts, and each label's tp / fp / fn are count-weighted
    sums). Single-label predictions are its one-of-k case (one-hot rows)."""
    A, B, Y = (np.asarray(x, bool) for x in (A, B, Y))
    n = len(Y)
    if n < 2:
        return float("inf")
    idx = np.random.default_rng(seed).integers(0, n, (draws, n))
    W = np.zeros((draws, n))
    np.add.at(W, (np.repeat(np.arange(draws), n), idx.ravel()), 1.0)

    def macro(P):
        tp, fp, fn = W @ (P & Y), W @ (P & ~Y), W @ (~P & Y)
        den = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, den, out=np.zeros_like(den), where=den > 0)
        return f1.sum(1) / np.maximum((den > 0).sum(1), 1)

    return float(np.std(macro(A) - macro(B), ddof=1))
