"""Multi-label aggregation: one binary label model per label, each with its own calibrated P(label applies).

Input is one binary vote matrix per label (votes 1 = applies, 0 = does not, -1 = abstain), e.g. the
columns of several :class:`~llmlabel.lf.PromptedMultiLabelLF` runs, or an int array ``(n, m, k)``.

>>> import numpy as np
>>> L = np.array([[[1, 0], [1, -1]], [[0, 1], [0, 1]], [[1, 1], [-1, 1]]])   # (n=3, m=2 LFs, k=2 labels)
>>> ml = MultiLabel("mv").fit(L)
>>> ml.predict(L).tolist()
[[1, 0], [0, 1], [1, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, InputError
from .base import LabelModel


def _split(Ls, what: str) -> list[np.ndarray]:
    if isinstance(Ls, np.ndarray) or (not isinstance(Ls, (list, tuple))):
        arr = np.asarray(Ls)
        if arr.ndim != 3:
            raise InputError(f"{what} must be a list of k (n x m) binary vote matrices or an (n, m, k) array")
        Ls = [arr[:, :, j] for j in range(arr.shape[2])]
    out = []
    for j, L in enumerate(Ls):
        L = np.asarray(getattr(L, "votes", L))
        if L.ndim != 2:
            raise InputError(f"{what}[{j}] must be 2-D (items x LFs), got shape {L.shape}")
        bad = (L < -1) | (L > 1)
        if bad.any():
            i, c = np.argwhere(bad)[0]
            raise ConfigError(f"{what}[{j}]: vote {int(L[i, c])} at row {i}, LF column {c} is not -1, 0 or 1")
        out.append(L)
    if len({L.shape[0] for L in out}) > 1:
        raise InputError(f"{what}: the per-label vote matrices have different numbers of rows")
    return out


class MultiLabel:
    """``MultiLabel(base="auto", labels=None)``: fit one binary label model per label.

    base: 'auto' (:func:`select_label_model` per label when a dev set is given — it picks and calibrates
    on that label's dev column, by ``metric``: log-loss by default, since a rare label's accuracy is won by
    whichever model says "no" most; the documented default model otherwise), a model name ('mv', 'ds',
    'onecoin', ...), or an unfitted :class:`LabelModel` (cloned per label).
    ``predict_proba(Ls) -> (n, k)`` P(label applies); ``predict(Ls, threshold=0.5) -> (n, k)`` 0/1.
    """

    def __init__(self, base="auto", labels: Sequence[str] | None = None, random_state: int | None = 0,
                 metric: str = "log_loss") -> None:
        self.base, self.labels, self.random_state, self.metric = base, labels, random_state, metric

    def fit(self, Ls, Y_dev=None, Ls_dev=None) -> MultiLabel:
        from .calibrate import CalibratedLabelModel
        from .select import DEFAULT_MODEL, make_model, select_label_model

        mats = _split(Ls, "Ls")
        if (Y_dev is None) != (Ls_dev is None):
            raise ConfigError("pass both Ls_dev and Y_dev, or neither")
        dev = None
        if Ls_dev is not None:
            dev = _split(Ls_dev, "Ls_dev")
            Y = np.asarray(Y_dev)
            if Y.shape != (dev[0].shape[0], len(mats)) or not np.isin(Y, (0, 1)).all():
                raise InputError(f"Y_dev must be 0/1 of shape ({dev[0].shape[0]}, {len(mats)})")
        if self.labels is not None and len(self.labels) != len(mats):
            raise ConfigError(f"{len(self.labels)} label names for {len(mats)} per-label vote matrices")
        self.models_ = []
        for j, L in enumerate(mats):  # one model per label (k is small next to n)
            if dev is not None and self.base == "auto":
                m = select_label_model(L, dev[j], Y[:, j], cardinality=2, metric=self.metric,
                                       random_state=self.random_state)
            elif dev is not None:
                m = select_label_model(L, dev[j], Y[:, j], candidates=[self._base()], cardinality=2,
                                       metric=self.metric, random_state=self.random_state)
            else:
                base = DEFAULT_MODEL if self.base == "auto" else self._base()
                m = CalibratedLabelModel(make_model(base, 2, self.random_state), random_state=self.random_state).fit(L)
            self.models_.append(m)
        return self

    def _base(self):
        return self.base.clone() if isinstance(self.base, LabelModel) else self.base

    def predict_proba(self, Ls) -> np.ndarray:
        if not hasattr(self, "models_"):
            raise ConfigError("MultiLabel is not fitted yet: call fit(Ls) first")
        mats = _split(Ls, "Ls")
        if len(mats) != len(self.models_):
            raise InputError(f"got {len(mats)} per-label vote matrices; the model was fitted on {len(self.models_)}")
        return np.stack([m.predict_proba(L)[:, 1] for m, L in zip(self.models_, mats)], axis=1)

    def predict(self, Ls, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(Ls) >= threshold).astype(np.int64)
