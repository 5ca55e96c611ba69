"""A label model learned on the dev set: the no-gold default with one bias per class, fitted on the dev labels.

The no-gold models read the votes alone, and when the LFs over-vote one class and under-vote another (keyword
LFs of uneven reach, an embedding LF that favours one class) their labels follow the votes' class balance, not
the items'. A few dozen dev labels say what the items' balance is. ``ClassBias`` keeps the base model's
log-posterior and adds one log-odds shift per class, fitted by penalised maximum likelihood on the dev rows some
LF voted on (rows no LF voted on get the dev rows' class shares, as every model's prior). The shift has a
standard-normal prior (an L2 penalty of 1 on it, whatever the dev size), so a few dev rows move it a little and
many move it as far as they show; it cannot turn the votes off (their scale is fixed at 1), so unlike a fitted
temperature it never collapses to predicting one class because the dev set's commonest class beats weak votes
in accuracy. It only sees dev labels, so ``select_label_model`` scores it out-of-fold like every ``*-dev``
candidate, and it replaces the default only by the same paired margin.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import LabelModel, Votes
from .rowops import row_max, row_sum, softmax_rows


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - row_max(z)[:, None]
    return z - np.log(row_sum(np.exp(z)))[:, None]


def fit_class_bias(logp: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """The bias ``b`` (k,) minimising ``-sum log softmax(logp + b)[y] + penalty / 2 * |b|^2`` (convex)."""
    from scipy.optimize import minimize

    n, k = logp.shape
    if n == 0:
        return np.zeros(k)
    onehot_sum = np.bincount(y, minlength=k).astype(np.float64)

    def loss(b):
        ls = _log_softmax(logp + b)
        p_sum = np.exp(ls).sum(axis=0)
        return (-ls[np.arange(n), y].sum() + 0.5 * penalty * (b @ b),
                p_sum - onehot_sum + penalty * b)

    return minimize(loss, np.zeros(k), jac=True, method="L-BFGS-B").x


class ClassBias(LabelModel):
    """The base model's class probabilities shifted by one log-odds bias per class, fitted on the dev set.

    Parameters: ``base`` (the unsupervised model fitted on the training votes; None for the no-gold default
    ``HeldOutSelect``), ``penalty`` (L2 strength on the bias: a standard-normal prior at 1), ``prefit`` (``base``
    is already fitted on these training votes and is used as is: ``select_label_model`` hands every dev fold the
    default it fitted once, as scikit-learn's ``cv="prefit"``; it reads the votes alone, so each fold's refit
    was the same model again: on a 100-row gold, most of ``aggregate --gold``'s time). Needs
    ``fit(L, y_dev, L_dev)``. Learned: ``base_``, ``bias_`` (k,), ``class_prior_`` (dev label shares, add-one
    smoothed; the probabilities of rows no LF votes on).
    """

    def __init__(self, cardinality: int | None = None, base: LabelModel | None = None, penalty: float = 1.0,
                 random_state: int | None = 0, prefit: bool = False):
        super().__init__(cardinality, random_state)
        self.base = base
        self.penalty = penalty
        self.prefit = prefit

    def _fit(self, votes: Votes, dev: Votes | None, y_dev: np.ndarray | None) -> None:
        from .heldout import HeldOutSelect

        if dev is None:
            raise ConfigError("ClassBias learns from a dev set: fit(L, y_dev=..., L_dev=...)")
        if self.penalty <= 0:
            raise ConfigError(f"penalty must be > 0, got {self.penalty}")
        k = votes.k
        if self.prefit:
            if self.base is None or getattr(self.base, "cardinality_", None) != k:
                raise ConfigError("ClassBias(prefit=True) needs a base label model fitted on votes of the same classes")
            self.base_ = self.base
        else:
            base = self.base.clone() if self.base is not None else HeldOutSelect(k, random_state=self.random_state)
            self.base_ = base.fit(votes.soft if votes.soft is not None else votes.hard, lf_names=votes.names)
        cnt = np.bincount(y_dev, minlength=k) + 1.0
        self.class_prior_ = cnt / cnt.sum()
        on = np.flatnonzero(dev.covered())
        self.bias_ = fit_class_bias(self._base_logp(dev.rows(on)), y_dev[on], self.penalty)

    def _base_logp(self, votes: Votes) -> np.ndarray:
        return np.log(np.clip(self.base_._proba_with_prior(votes), 1e-6, 1.0))

    def _row_wise(self) -> bool:
        return self.base_._row_wise()

    def _proba(self, votes: Votes) -> np.ndarray:
        return softmax_rows(self._base_logp(votes) + self.bias_)
