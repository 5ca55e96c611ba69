"""Metrics the students, the model card and the cascade report: accuracy, macro-F1, calibration (ECE)."""

from __future__ import annotations

import numpy as np

from ..metrics import expected_calibration_error
from ..multilabel_metrics import multilabel_f1


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int | None = None) -> float:
    """Macro-averaged F1 over the classes present in ``y_true`` or ``y_pred`` (integer class ids)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = k or int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    tp = np.bincount(y_true[y_true == y_pred], minlength=k).astype(float)
    pred_n = np.bincount(y_pred, minlength=k).astype(float)
    true_n = np.bincount(y_true, minlength=k).astype(float)
    present = (pred_n + true_n) > 0
    f1 = np.divide(2 * tp, pred_n + true_n, out=np.zeros(k), where=present)
    return float(f1[present].mean()) if present.any() else float("nan")


def classification_report(proba: np.ndarray, y_true: np.ndarray, *, multi_label: bool = False,
                          threshold: float = 0.5) -> dict[str, float]:
    """The metrics written to ``metrics.json`` and the model card for a gold set."""
    if multi_label:
        out = multilabel_f1(y_true, proba >= threshold)
        return {key: out[key] for key in ("micro_f1", "macro_f1", "subset_accuracy", "n")}
    pred = proba.argmax(1)
    return {"accuracy": accuracy(y_true, pred), "macro_f1": macro_f1(y_true, pred, proba.shape[1]),
            "ece": expected_calibration_error(proba, y_true), "n": int(len(proba))}
