"""Which items to show people next: ``random``, ``uncertainty``, ``review`` and ``diverse``.

Every strategy returns row indices into the labeled file, best first, never an excluded row (already
reviewed, already sent, or clamped to a human label).

- ``random``: a seeded uniform sample (the baseline every other strategy must beat).
- ``uncertainty``: lowest calibrated confidence first.
- ``review``: the review queue's risk (low confidence + LF disagreement, see ``review.py``), plus, given
  ``features`` (embeddings or word counts, :func:`llmlabel.embed.tfidf.text_features`), the self-confidence of
  an out-of-fold classifier trained on the current labels (cleanlab-style: it reads the text, so it flags
  labels the votes agree on wrongly).
- ``diverse``: uncertainty, but taken round-robin over the predicted labels (so one confusing label cannot fill
  the batch) and skipping near-duplicates of items already picked (cosine > 0.9 of hashed word counts).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

STRATEGIES = ("random", "uncertainty", "review", "diverse")


def _order_by(score: np.ndarray, rng) -> np.ndarray:
    """Indices by descending score; ties broken at random (seeded) so equal scores do not follow file order."""
    return np.lexsort((rng.random(len(score)), -score))


def risk_scores(proba: np.ndarray, votes=None, label_index=None, features=None, seed: int = 0) -> np.ndarray:
    from .review import oof_proba, review_scores

    proba = np.asarray(proba, dtype=np.float64)
    label_index = proba.argmax(1) if label_index is None else np.asarray(label_index)
    student = None if features is None else oof_proba(features, label_index, n_classes=proba.shape[1], seed=seed)
    return review_scores(proba, votes, student, labels=label_index)["risk"]


def _text_vectors(texts: list[str]):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2 ** 18, alternate_sign=False, norm="l2").transform(texts)


def _diverse(order: np.ndarray, labels: np.ndarray, n: int, texts, dup_threshold: float) -> list[int]:
    k = int(labels.max()) + 1 if len(labels) else 0
    # One queue per label, most uncertain first; labels take turns in the order of their most uncertain item.
    queues = [list(order[labels[order] == c]) for c in range(k)]
    rank = np.empty(len(labels), np.int64)
    rank[order] = np.arange(len(order))
    queues = sorted((q[::-1] for q in queues if q), key=lambda q: rank[q[-1]])  # reversed: pop() takes the best
    vecs = _text_vectors(texts) if texts is not None else None
    picked: list[int] = []
    chosen_vecs = []
    while len(picked) < n and queues:
        nxt = []
        for q in queues:
            while q:
                i = int(q.pop())
                if vecs is not None and chosen_vecs:
                    sim = (vecs[i] @ _stack(chosen_vecs).T).toarray().max()
                    if sim > dup_threshold:
                        continue
                picked.append(i)
                if vecs is not None:
                    chosen_vecs.append(vecs[i])
                break
            if q:
                nxt.append(q)
            if len(picked) >= n:
                break
        queues = nxt
    return picked


def _stack(rows):
    import scipy.sparse as sp

    return sp.vstack(rows)


def select(strategy: str, n: int, *, proba: np.ndarray, confidence: np.ndarray | None = None,
           label_index: np.ndarray | None = None, votes=None, texts: list[str] | None = None,
           exclude: np.ndarray | None = None, seed: int = 0, dup_threshold: float = 0.9, features=None) -> np.ndarray:
    """Up to ``n`` row indices for people to label (see the module docstring); ``exclude`` is a boolean mask.

    ``features`` (n rows, dense or sparse) feed the ``review`` strategy's out-of-fold classifier.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown review strategy {strategy!r}", hint=f"choose one of {', '.join(STRATEGIES)}")
    if n < 0:
        raise ConfigError(f"--n must be >= 0, got {n}")
    proba = np.asarray(proba, dtype=np.float64)
    m = len(proba)
    label_index = proba.argmax(1) if label_index is None else np.asarray(label_index)
    confidence = proba[np.arange(m), label_index] if confidence is None else np.asarray(confidence)
    rng = np.random.default_rng(seed)
    keep = np.ones(m, bool) if exclude is None else ~np.asarray(exclude, bool)
    if strategy == "random":
        score = rng.random(m)
    elif strategy == "review":
        score = risk_scores(proba, votes, label_index, features, seed)
    else:
        score = -confidence
    order = _order_by(score, rng)
    order = order[keep[order]]
    if strategy != "diverse":
        return order[:n]
    return np.asarray(_diverse(order, label_index, n, texts, dup_threshold), dtype=np.int64)
