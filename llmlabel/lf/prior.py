"""Prior matching: undo an LLM's bias towards some label names using only unlabeled items.

A zero-shot LLM prefers some answers whatever the text ("word bias": short, frequent or first-listed
label names win too often). If we know (or assume) the class mix of a corpus, we can re-weight the
model's class probabilities so that their mean over the corpus matches it. This is the fixed point of
Saerens et al. (2002) EM with the target prior held fixed, i.e. Sinkhorn-style matrix scaling: find one
positive weight per class ``w`` such that ``mean_i normalise(p_i * w) == target``. Ranks of items within
a class are unchanged; only the per-class offsets move.

>>> import numpy as np
>>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
>>> q = match_prior(p)
>>> np.round(q.mean(0), 4)
array([0.5, 0.5])
>>> q.argmax(1).tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def match_prior(proba: np.ndarray, target: np.ndarray | None = None, n_iter: int = 100,
                tol: float = 1e-6) -> np.ndarray:
    """Re-weight an ``(n, k)`` class-probability matrix so its column mean matches ``target``.

    Parameters
    ----------
    proba: per-item class probabilities from an LLM on *unlabeled* items (rows need not be normalised;
        they are normalised first; an all-zero row counts as uniform).
    target: the class prior to match, length ``k`` (normalised); ``None`` = uniform. A class whose
        column is zero everywhere cannot gain mass; the rest is matched as well as possible.
    n_iter: maximum fixed-point iterations; tol: stop when ``max |mean - target| < tol``.

    Returns a row-normalised float64 ``(n, k)`` matrix. Works in log space, so tiny probabilities
    (e.g. softmax of choice log-probs) do not underflow.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise InputError(f"match_prior: proba must be an (n, k) matrix with n >= 1 and k >= 2, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise InputError("match_prior: proba must hold finite probabilities >= 0")
    n, k = p.shape
    if target is None:
        t = np.full(k, 1.0 / k)
    else:
        t = np.asarray(target, dtype=np.float64).ravel()
        if t.shape != (k,) or not np.isfinite(t).all() or (t < 0).any() or t.sum() <= 0:
            raise InputError(f"match_prior: target must be {k} non-negative numbers with a positive sum")
        t = t / t.sum()
    s = p.sum(1, keepdims=True)
    p = np.where(s > 0, p / np.where(s > 0, s, 1.0), 1.0 / k)
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    # Classes no item gives any probability can never reach their target: leave their weight alone and
    # match the others, so the iteration does not chase an impossible goal.
    alive = (p > 0).any(0) & (t > 0)
    # Classes with target 0 get weight 0 (their mass must vanish).
    logw = np.where(t > 0, 0.0, -np.inf)
    for _ in range(int(n_iter)):
        q = _softmax_rows(logp + logw, t)
        m = q.mean(0)
        if np.abs(m - t)[alive].max(initial=0.0) < tol:
            return q
        ok = alive & (m > 0)
        logw[ok] += np.log(t[ok]) - np.log(m[ok])
        logw -= logw[np.isfinite(logw)].max()  # only ratios matter; keep the numbers bounded
    return _softmax_rows(logp + logw, t)


def _softmax_rows(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    top = z.max(1, keepdims=True)
    dead = ~np.isfinite(top[:, 0])
    if dead.any():  # a row whose only mass is on zero-target classes: fall back to the target itself
        z = z.copy()
        z[dead] = np.where(t > 0, np.log(np.where(t > 0, t, 1.0)), -np.inf)
        top = z.max(1, keepdims=True)
    q = np.exp(z - top)
    return q / q.sum(1, keepdims=True)
