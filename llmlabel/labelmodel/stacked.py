"""A label model learned on the dev set: logistic regression on vote features, stacked on an unsupervised
model.

Features per item: each LF's vote (one-hot of its class, or its class probabilities for soft votes: the
LLM's own distribution, not only its argmax) and the log-posterior of an unsupervised label model fitted
on the training votes. An L2-regularised multinomial logistic regression fitted on the dev rows then
learns which LFs to trust, including correlated ones (duplicates split one weight between them), and how
far to trust the unsupervised model. It only sees dev labels, so ``select_label_model`` scores it
out-of-fold (cross-fitting) like every candidate that uses the dev set.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .base import LabelModel, Votes
from .majority import lf_onehot


def _features(votes: Votes, base: LabelModel) -> sp.csr_matrix:
    onehot = votes.soft if votes.soft is not None else sp.hstack(
        [sp.csr_matrix(lf_onehot(votes, j)) for j in range(votes.m)], format="csr")
    logp = np.log(np.clip(base._proba_with_prior(votes), 1e-6, 1.0))
    return sp.hstack([onehot, sp.csr_matrix(logp)], format="csr")


class StackedVote(LabelModel):
    """Multinomial logistic regression on (LF votes, unsupervised log-posterior), fitted on the dev set.

    Parameters: ``base`` (unsupervised model fitted on the training votes, a ``LabelModel`` or None for
    the no-dev default ``HeldOutSelect``), ``C`` (inverse L2 strength). Needs ``fit(L, y_dev, L_dev)``.
    Learned: ``base_``, ``classifier_`` (sklearn), ``class_prior_`` (dev label shares, add-one smoothed).
    """

    def __init__(self, cardinality: int | None = None, base: LabelModel | None = None, C: float = 1.0,
                 random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.base = base
        self.C = C

    def _fit(self, votes, dev, y_dev):
        from sklearn.linear_model import LogisticRegression

        from .heldout import HeldOutSelect

        if dev is None:
            raise ConfigError("StackedVote learns from a dev set: fit(L, y_dev=..., L_dev=...)")
        k = votes.k
        base = self.base.clone() if self.base is not None else HeldOutSelect(k, random_state=self.random_state)
        self.base_ = base.fit(votes.soft if votes.soft is not None else votes.hard, lf_names=votes.names)
        present = np.unique(y_dev)
        cnt = np.bincount(y_dev, minlength=k) + 1.0
        self.class_prior_ = cnt / cnt.sum()
        if len(present) < 2:  # nothing to discriminate: the dev set says one class
            self.classifier_, self.only_class_ = None, int(present[0])
            return
        self.classifier_ = LogisticRegression(C=self.C, max_iter=2000).fit(_features(dev, self.base_), y_dev)

    def _proba(self, votes):
        n, k = votes.n, votes.k
        if self.classifier_ is None:
            out = np.zeros((n, k))
            out[:, self.only_class_] = 1.0
            return out
        # Classes the dev set never showed keep a small share of the base model's mass.
        p = self.classifier_.predict_proba(_features(votes, self.base_))
        out = np.full((n, k), 0.0)
        out[:, self.classifier_.classes_] = p
        missing = np.setdiff1d(np.arange(k), self.classifier_.classes_)
        if missing.size:
            out[:, missing] = 1e-3 * self.base_._proba_with_prior(votes)[:, missing]
            out /= out.sum(axis=1, keepdims=True)
        return out
