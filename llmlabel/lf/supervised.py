"""A supervised LF: logistic regression on the embeddings of the gold set, cross-fitted.

``GoldLogRegLF`` (``kind: logreg``) is what "train on your N labels" gives, as one LF among the others: the
label model then weighs it against the embedding, kNN, keyword and LLM LFs instead of the user choosing
between them. The gold items are usually the label model's dev set too, so a gold item's vote must not come
from a model that saw its label: one model per cross-fitting fold is fitted on the other folds
(:class:`~llmlabel.lf.gold.GoldSet`), a gold item is voted by its fold's model, and every other item by the
model fitted on all the gold. ``threshold`` abstains when the top class probability is under it;
``"auto"`` chooses it on the gold out-of-fold at ``target_precision`` (itself cross-fitted, as for knn).
With the run's tuned encoder as ``embedder`` (``embedder: tuned``), each fold's model reads the space of the
encoder tuned without that fold's rows (:class:`~llmlabel.lf.spaces.FoldSpaces`).

>>> from llmlabel.lf.gold import GoldSet
>>> g = GoldSet(list("abcd"), ["lost card", "card gone", "refund", "money back"], [0, 0, 1, 1], labels=["lost", "refund"], folds=2)
>>> GoldLogRegLF("lr", g, embedder="wordllama").apply(["my card is lost"])[0].tolist()   # doctest: +SKIP
[0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN, LabelingFunction
from .embedding import _embedder
from .gold import FoldThresholds, GoldSet
from .spaces import FoldSpaces


class GoldLogRegLF(LabelingFunction):
    """Multinomial logistic regression on the gold embeddings; one model per fold for the gold items.

    gold: a :class:`GoldSet`; embedder: an embedder object or spec (default MiniLM), or a
    :class:`~llmlabel.tuned.TunedEncoder` (each fold in its honest space); C: inverse L2 strength
    (on unit-length vectors); threshold: a probability in [0, 1] or ``"auto"``; anchors: one text per label (its
    name and description) added to every model's training rows as an example of its label (what the tuned
    encoder was trained with; no gold text is among them, so the cross-fitting stays honest). Learned on the first
    ``apply``: ``models_`` (fold -> fitted sklearn model or None when that fold's training rows hold one
    class; key -1 is the model on all the gold) and, for ``"auto"``, ``thresholds_``.
    """

    kind = "logreg"

    def __init__(self, name: str, gold: GoldSet, *, embedder: Any = "minilm", C: float = 10.0,
                 threshold: float | str = 0.0, target_precision: float = 0.6, max_iter: int = 2000,
                 anchors: list[str] | None = None) -> None:
        super().__init__(name, gold.labels)
        if anchors is not None and len(anchors) != len(gold.labels):
            raise ConfigError(f"LF '{name}': {len(anchors)} anchor texts for {len(gold.labels)} labels")
        if C <= 0:
            raise ConfigError(f"LF '{name}': C must be > 0")
        if threshold != "auto" and not isinstance(threshold, (int, float)):
            raise ConfigError(f"LF '{name}': threshold must be a number or 'auto'")
        self.gold, self.embedder = gold, embedder
        self.C, self.max_iter, self.target_precision = float(C), int(max_iter), float(target_precision)
        self.threshold = threshold if threshold == "auto" else float(threshold)
        self.models_: dict[int, Any] | None = None
        self.thresholds_: FoldThresholds | None = None
        self.spaces = FoldSpaces(embedder, _embedder)
        self.anchors = None if anchors is None else [str(a) for a in anchors]

    @property
    def threshold_(self) -> float:
        return self.thresholds_.overall if self.thresholds_ is not None else self.threshold

    def _fit_one(self, rows: np.ndarray, X: np.ndarray, key: str):
        from sklearn.linear_model import LogisticRegression

        X, y = X[rows], self.gold.y[rows]
        if self.anchors is not None:
            X = np.vstack([X, self.spaces.of(self.anchors, key, cache_as=1)])
            y = np.r_[y, np.arange(len(self.anchors))]
        if len(np.unique(y)) < 2:
            return None
        return LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X, y)

    def _gold_in(self, fold: int) -> np.ndarray:
        """Every gold text in the space of fold ``fold``'s items (-1: the space of non-gold items)."""
        return self.spaces.of(self.gold.texts, self.spaces.key(fold), cache_as=0)

    def _gold_own(self) -> np.ndarray:
        """Each gold text in its own fold's space (what its out-of-fold vote reads)."""
        X = None
        for key, rows in self.spaces.groups(self.gold.fold):
            v = self.spaces.of(self.gold.texts, key, cache_as=0)
            X = np.zeros_like(v) if X is None else X
            X[rows] = v[rows]
        return X

    def fit(self) -> "GoldLogRegLF":
        """Fit the all-gold model plus one per fold (on the other folds' rows, in that fold's space)."""
        if self.models_ is None:
            n = len(self.gold)
            key = self.spaces.key
            self.models_ = {-1: self._fit_one(np.arange(n), self._gold_in(-1), key(-1))}
            if self.gold.folds > 1:
                self.models_.update({f: self._fit_one(np.flatnonzero(self.gold.fold != f), self._gold_in(f), key(f))
                                     for f in range(self.gold.folds)})
        return self

    def _proba(self, model, X: np.ndarray) -> np.ndarray:
        """(n, k) over all labels; classes the model never saw get 0; uniform when there is no model."""
        k = len(self.labels)
        if model is None:
            return np.full((len(X), k), 1.0 / k)
        out = np.zeros((len(X), k))
        out[:, model.classes_] = model.predict_proba(X)
        return out

    def _proba_by_fold(self, X: np.ndarray, own: np.ndarray) -> np.ndarray:
        proba = np.empty((len(X), len(self.labels)))
        for f in np.unique(own):  # at most folds + 1 groups, each predicted in one call
            rows = own == f
            proba[rows] = self._proba(self.models_.get(int(f)), X[rows])
        return proba

    def choose_threshold(self) -> FoldThresholds:
        """Cuts on the top probability from the gold's out-of-fold votes (see :class:`FoldThresholds`)."""
        self.fit()
        if self.thresholds_ is None:
            proba = self._proba_by_fold(self._gold_own(), self.gold.fold)
            self.thresholds_ = FoldThresholds(self.gold, proba.max(1), proba.argmax(1) == self.gold.y,
                                              self.target_precision)
        return self.thresholds_

    def oof_proba(self) -> np.ndarray:
        """(g, k) out-of-fold class probabilities of the gold items (each from the model without its fold)."""
        self.fit()
        return self._proba_by_fold(self._gold_own(), self.gold.fold)

    def _apply(self, texts, items):
        self.fit()
        ids = None if items is None else [it.get("id") for it in items]
        own = self.gold.item_folds(ids, len(texts)) if self.gold.folds > 1 else np.full(len(texts), -1)
        X = self.spaces.encode(texts, own)
        proba = self._proba_by_fold(X, own)
        votes = proba.argmax(1).astype(np.int16)
        cut = self.choose_threshold().for_items(ids, len(texts)) if self.threshold == "auto" else self.threshold
        no_model = np.isin(own, [f for f, m in self.models_.items() if m is None])
        votes[(proba.max(1) < cut) | no_model] = ABSTAIN
        return votes, proba.astype(np.float32)
