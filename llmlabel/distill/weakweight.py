"""The weight of the rows no person labeled when the safety net does not choose it: ``--weak-weight`` given as a
number, or ``auto`` (the best of :data:`WEAK_WEIGHTS` on a dev set: one student per factor)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .data import LabeledData

#: Candidate factors on the weight of items no person labeled, for ``weak_weight="auto"``.
WEAK_WEIGHTS = (1.0, 0.5, 0.25)


def fit_over_weights(new_student, d: LabeledData, grid: list[float], weights, used_soft: bool, dev_pair):
    """``(student, weak-row factor, dev scores)``: one student, ``new_student()``, per candidate factor on the weak
    rows' weight; with several, the best on the dev set is kept."""
    ww_scores: dict[str, float] = {}
    chosen_ww, st = grid[0], None
    for a in grid:
        cand = new_student()
        st = cand if st is None else st
        cand.fit(d.texts, proba=d.targets(used_soft), classes=d.classes, sample_weight=_scaled(weights, d, a),
                 dev=dev_pair)
        if len(grid) > 1:
            ww_scores[str(a)] = _dev_pick_score(cand, dev_pair)
            if ww_scores[str(a)] > max((v for k, v in ww_scores.items() if k != str(a)), default=-1.0):
                st, chosen_ww = cand, a
    return st, chosen_ww, ww_scores


def parse_weak_weight(value) -> float | str | None:
    """None, ``"auto"`` or a number in (0, 1]; checked before any file is read."""
    if value is None or value == "auto":
        return value
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"weak_weight must be 'auto' or a number in (0, 1], got {value!r}") from None
    if not 0 < a <= 1:
        raise ConfigError(f"weak_weight must be in (0, 1], got {a}")
    return a


def weak_weights(value, d: LabeledData, dev_pair) -> list[float]:
    has_human = d.human is not None and bool(d.human.any()) and not bool(d.human.all())
    if value is None:
        value = "auto" if (d.multi_label and has_human and dev_pair is not None) else 1.0
    if value == "auto":
        if not has_human or dev_pair is None:
            raise ConfigError("weak_weight 'auto' needs a dev set and a labeled file with both human and "
                              "label-model items", hint="pass --dev, or a number for --weak-weight")
        return list(WEAK_WEIGHTS)
    return [float(value)]


def _scaled(weights, d: LabeledData, a: float):
    if a == 1.0 or d.human is None:
        return weights
    w = np.ones(len(d), np.float32) if weights is None else np.asarray(weights, np.float32).copy()
    w[~d.human] *= a
    return w


def _dev_pick_score(st, dev_pair) -> float:
    """What ``weak_weight='auto'`` maximises (:meth:`.link.Link.pick_score` of the student's form)."""
    texts, gold = dev_pair
    return st.link.pick_score(st.predict_proba(texts), gold)
