"""Metrics more than one stage reports (shared floor: the label model and the distilled student use the
same definition, so their calibration figures can be compared)."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def expected_calibration_error(proba_or_conf, y, n_bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - confidence| x bin share.

    ``proba_or_conf``: an (n x k) probability matrix with ``y`` the gold class ids, or an (n,) vector of
    top-label confidences with ``y`` saying whether each top label was right (0/1 or bool).
    """
    p = np.asarray(proba_or_conf, dtype=np.float64)
    y = np.asarray(y)
    if p.ndim == 2:
        if p.shape[0] == 0 or p.shape[1] < 2:
            raise InputError(f"probabilities must be an (n x k) array with n >= 1 and k >= 2, got shape {p.shape}")
        conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    elif p.ndim == 1:
        conf, correct = p, y.astype(np.float64)
    else:
        raise InputError(f"expected (n x k) probabilities or (n,) confidences, got shape {p.shape}")
    if y.shape != (len(conf),):
        raise InputError(f"need one gold value per item ({len(conf)}), got shape {y.shape}")
    if len(conf) == 0:
        return 0.0
    if n_bins < 1:
        raise InputError(f"n_bins must be >= 1, got {n_bins}")
    bins = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
    gap = np.bincount(bins, weights=correct - conf, minlength=n_bins)
    return float(np.abs(gap).sum() / len(conf))
