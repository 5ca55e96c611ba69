"""A supervised multi-label LF from the gold: one-vs-rest logistic regression on text embeddings.

With a few hundred gold items a linear probe on frozen sentence embeddings is the strongest cheap signal there
is (on GoEmotions at 1,000 gold it beats the prototype, key-phrase and kNN LFs together; see
eval/results/multilabel.md). The same gold is usually the label model's dev set and part of the student's
training set, so the LF is cross-fitted: the gold is cut into seeded folds, and on an item whose id is a gold
id the LF answers with the model fitted without that item's fold. Per-label thresholds are chosen on those
out-of-fold probabilities (F1-optimal per label), never on the probabilities of a model that saw the item; a gold
item's own thresholds are chosen on the other folds' rows only, so its label does not place its own cut. With a
:class:`~llmlabel.lf.gold.MultiGoldSet` the folds are the gold's (shared with the kNN LF), and inside
``gold.as_fold(f)`` every item is answered as if fold f had never been labeled (the safety net's cross-fitted
world, :mod:`llmlabel.lf.crossfit`).

Votes per label: 1 at or above the label's threshold, 0 below ``low`` (default: the threshold, so the LF
votes on every item, as a classifier does), abstain between; a label without a gold positive abstains.
``p`` is the model's probability, stored beside the votes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN
from .multilabel import MultiLabelLF, _gold_label_matrix


def _fit_ovr(X: np.ndarray, Y: np.ndarray, C: float, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W (d, k), b (k,))`` of class-balanced binary logistic regressions, one per label in ``fit``
    (others keep W = 0, b = -inf: probability 0)."""
    from sklearn.linear_model import LogisticRegression

    W = np.zeros((X.shape[1], Y.shape[1]), np.float32)
    b = np.full(Y.shape[1], -np.inf, np.float32)
    for j in np.flatnonzero(fit):  # one small convex fit per label (k is small)
        y = Y[:, j]
        if y.min() == y.max():  # this fold's training part has no positive (or no negative)
            b[j] = np.inf if y[0] else -np.inf
            continue
        m = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(X, y)
        W[:, j], b[j] = m.coef_[0], m.intercept_[0]
    return W, b


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


class MultiClassifierLF(MultiLabelLF):
    """One-vs-rest logistic regression on the gold's embeddings, cross-fitted on the gold items themselves."""

    kind = "classifier"

    def __init__(self, name: str, gold_texts: Sequence[str], gold_labels: Sequence[Sequence[str]], *,
                 labels: Sequence[str], gold_ids: Sequence[str] | None = None, embedder: Any = "minilm",
                 C: float = 1.0, folds: int = 5, threshold: float | None = None,
                 low: float | Mapping[str, float] | None = None, seed: int = 0, gold=None) -> None:
        super().__init__(name, list(labels))
        Y = _gold_label_matrix(name, gold_texts, gold_labels, self._index, np.int8)
        if int(folds) < 2:
            raise ConfigError(f"LF '{name}': folds must be at least 2, got {folds}")
        self.gold_texts, self.Y = [str(t) for t in gold_texts], Y
        self.gold_ids = None if gold_ids is None else [str(i) for i in gold_ids]
        self.embedder, self.C, self.folds, self.seed = embedder, float(C), int(folds), int(seed)
        self.threshold, self.low = threshold, low
        self.gold = gold  # a MultiGoldSet over these rows: its folds, and ``as_fold``
        if gold is not None and len(gold) != len(self.gold_texts):
            raise ConfigError(f"LF '{name}': the gold folds cover {len(gold)} rows, not {len(self.gold_texts)}")

    def _fit(self) -> None:
        """Full and per-fold models, out-of-fold probabilities on the gold, per-label thresholds from those."""
        from ..multilabel_metrics import best_thresholds
        from .embedding import _embedder
        from .multilabel import _per_label

        X = np.asarray(_embedder(self.embedder).encode(self.gold_texts), dtype=np.float32)
        n = len(X)
        fit = self.Y.sum(0) > 0
        self.fold_ = np.asarray(self.gold.fold) if self.gold is not None else \
            np.random.default_rng(self.seed).permutation(n) % min(self.folds, n)
        self.W_, self.b_ = _fit_ovr(X, self.Y, self.C, fit)
        self.fold_models_ = [_fit_ovr(X[self.fold_ != f], self.Y[self.fold_ != f], self.C, fit)
                             for f in range(self.fold_.max() + 1)]
        oof = np.zeros(self.Y.shape, np.float32)
        for f, (W, b) in enumerate(self.fold_models_):
            oof[self.fold_ == f] = _sigmoid(X[self.fold_ == f] @ W + b)
        self.oof_proba_ = oof
        k = len(self.labels)
        if self.threshold is None:
            thr = best_thresholds(oof, self.Y, default=0.5)
            # fold f's cut: from the other folds' out-of-fold rows (a gold item never places its own cut)
            per_fold = np.stack([best_thresholds(oof[self.fold_ != f], self.Y[self.fold_ != f], default=0.5)
                                 for f in range(len(self.fold_models_))])
            self.thresholds_from_ = "per-label F1-optimal on out-of-fold gold probabilities"
        else:
            thr = np.full(k, float(self.threshold), np.float32)
            per_fold = np.tile(thr, (len(self.fold_models_), 1))
            self.thresholds_from_ = "given"
        self.thresholds_, self.fold_thresholds_ = thr, per_fold
        self.low_ = None if self.low is None else _per_label(self.low, self.labels, 0.0, "low", self.name)
        self.fitted_labels_ = fit

    def item_folds(self, items, n: int) -> np.ndarray:
        """Each item's fold: a gold item's own, -1 for the rest (inside ``gold.as_fold(f)``: f)."""
        if self.gold is not None:
            return self.gold.item_folds(None if items is None else [it.get("id") for it in items], n)
        if self.gold_ids is None or items is None:
            return np.full(n, -1, np.int64)
        pos = {g: j for j, g in enumerate(self.gold_ids)}
        g = np.fromiter((pos.get(str(it.get("id")), -1) for it in items), np.int64, n)
        return np.where(g >= 0, self.fold_[np.maximum(g, 0)], -1)

    def proba(self, texts: Sequence[str], items=None) -> np.ndarray:
        """(n, k) P(label applies); an item in fold f (a gold item, by ``items[i]['id']``, or any item inside
        ``gold.as_fold(f)``) gets the model fitted without fold f."""
        return self._proba(texts, items)[0]

    def _proba(self, texts, items) -> tuple[np.ndarray, np.ndarray]:
        from .embedding import _embedder

        if not hasattr(self, "W_"):
            self._fit()
        X = np.asarray(_embedder(self.embedder).encode(list(texts)), dtype=np.float32)
        p = _sigmoid(X @ self.W_ + self.b_)
        own = self.item_folds(items, len(X))
        for f, (W, b) in enumerate(self.fold_models_):  # loops over folds, not items
            rows = np.flatnonzero(own == f)
            if len(rows):
                p[rows] = _sigmoid(X[rows] @ W + b)
        return p, own

    def _apply(self, texts, items):
        p, own = self._proba(texts, items)
        thr = np.where(own[:, None] >= 0, self.fold_thresholds_[np.maximum(own, 0)], self.thresholds_[None, :])
        votes = np.full(p.shape, ABSTAIN, np.int16)
        votes[p < (thr if self.low_ is None else self.low_[None, :])] = 0
        votes[p >= thr] = 1
        votes[:, ~self.fitted_labels_] = ABSTAIN
        return votes, p
