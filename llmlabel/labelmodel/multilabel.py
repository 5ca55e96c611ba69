"""Multi-label aggregation: one binary label model per label, each with its own calibrated P(label applies).

Input is one binary vote matrix per label (votes 1 = applies, 0 = does not, -1 = abstain), e.g. the
columns of several :class:`~llmlabel.lf.PromptedMultiLabelLF` runs, or an int array ``(n, m, k)``.

What ``aggregate`` does with multi-label votes beyond the single-label path (:mod:`.run`, :mod:`.pipeline`):

- :func:`aggregate_multi`: with a dev set each label's model is chosen (by log-loss) and calibrated on that
  label's dev column; without, the documented default, uncalibrated. Decision thresholds: per label, the one
  maximising that label's F1 on dev (a label with no dev positive keeps the global one); without dev one global
  0.5. An item's label set is the classes at or above their threshold; ``label`` is the most probable class.
- :func:`set_review_rows`: the review queue ranks items by the expected number of wrong labels in their set,
  ``sum_j (p_j if not chosen else 1 - p_j)`` (uncovered items first among equals: nothing voted on them).

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


def _multi_candidates() -> tuple[str, ...]:
    from .select import DEFAULT_CANDIDATES

    # Not ``bias-dev``: with two classes a bias on the log-odds moves every item's P(label) the same way, which
    # the per-label threshold tuned on the same dev rows (aggregate_multi) already does.
    return tuple(c for c in DEFAULT_CANDIDATES if c != "bias-dev")


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
                m = select_label_model(L, dev[j], Y[:, j], _multi_candidates(), cardinality=2, metric=self.metric,
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


def aggregate_multi(mv, method: str = "auto", dev_rows=None, Y_dev=None, *, random_state: int = 0) -> dict:
    """Fit per-label label models on the votes ``mv`` (:class:`~llmlabel.artifacts.multivotes.MultiVotes`) and
    thresholds on the dev rows; dict with proba (n, k), thresholds, chosen (n, k) 0/1, label and confidence (the
    most probable class), uncovered (n,), report."""
    from ..multilabel_metrics import best_thresholds, multilabel_f1
    from .select import MODEL_ALIASES, make_model

    base = "auto" if method == "auto" else MODEL_ALIASES.get(str(method).lower(), str(method).lower())
    if base != "auto":
        make_model(base, 2)  # an unknown name is a one-line error listing the known ones
    Ls = mv.per_label()
    model = MultiLabel(base, labels=mv.labels, random_state=random_state)
    if dev_rows is not None:
        model.fit(Ls, Y_dev, [L[dev_rows] for L in Ls])
    else:
        model.fit(Ls)
    P = model.predict_proba(Ls).astype(np.float32)
    if dev_rows is not None:
        thr = best_thresholds(P[dev_rows], np.asarray(Y_dev))
        how = "per-label F1-optimal on dev"
    else:
        thr = np.full(len(mv.labels), 0.5, np.float32)
        how = "global 0.5 (no dev set)"
    chosen = (P >= thr[None, :]).astype(np.int8)
    chosen_per_label = [getattr(m, "report_", {}).get("chosen") for m in model.models_]
    report = {"chosen": "per-label " + (base if base != "auto" else "auto"), "multi_label": True,
              "reason": ("chosen (dev log-loss) and calibrated per label on dev" if dev_rows is not None else
                         "no dev set: the documented default per label, uncalibrated"),
              "per_label": dict(zip(mv.labels, chosen_per_label)),
              "thresholds": dict(zip(mv.labels, map(float, thr))), "thresholds_from": how}
    if dev_rows is not None:
        report["dev"] = multilabel_f1(np.asarray(Y_dev), chosen[dev_rows], mv.labels)
        report["dev"].pop("per_label", None)
    label = P.argmax(1)
    return {"model": model, "proba": P, "thresholds": thr, "chosen": chosen, "label": label,
            "confidence": P[np.arange(len(P)), label], "uncovered": ~(mv.votes >= 0).any(axis=(1, 2)),
            "report": report}


def expected_set_errors(P: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Expected number of wrong labels per item when ``chosen`` (0/1) is shipped and P(label) is right."""
    return np.where(chosen.astype(bool), 1 - P, P).sum(1)


def set_review_rows(res: dict, ids, texts, names: Sequence[str], *, top: float = 0.1) -> list[dict]:
    """The review queue of an :func:`aggregate_multi` result: the ``top`` share (< 1) or number of items with the
    most expected wrong labels (uncovered first among equals, then in item order); ``doubtful`` names the labels
    whose P is within 0.25 of their threshold."""
    P, chosen, unc = res["proba"], res["chosen"], res["uncovered"]
    names = np.asarray(names, dtype=object)
    err = expected_set_errors(P, chosen)
    order = np.lexsort((np.arange(len(err)), ~unc, -err))
    rows = []
    for r, i in enumerate(order[:int(round(top * len(err))) if top < 1 else int(top)]):
        near = np.flatnonzero(np.abs(P[i] - res["thresholds"]) < 0.25)
        rows.append({"rank": r + 1, "index": int(i), "id": ids[i], "text": None if texts is None else texts[i],
                     "labels": "|".join(names[np.flatnonzero(chosen[i])]), "expected_errors": round(float(err[i]), 4),
                     "uncovered": bool(unc[i]), "doubtful": "|".join(f"{names[j]}={P[i, j]:.2f}" for j in near)})
    return rows
