"""Review queue: items ranked by how likely their label is wrong, exported for people to check.

Each item gets a ``risk`` in [0, 1], a weighted mean of the signals available:

- ``low_confidence``: 1 - the (calibrated) top probability, rescaled so a uniform row is 1;
- ``disagreement``: normalised entropy of the LF votes the item got; an item no LF voted on scores 1
  (nothing supports its label, it came from the prior);
- ``self_confidence`` (cleanlab-style, only with *out-of-fold* probabilities of a classifier trained on the
  labels themselves, e.g. :func:`oof_proba` on embeddings or word counts): 1 - that classifier's probability
  of the item's label, i.e. how much a model that never trained on this item doubts its label. The label
  model only sees votes; this signal sees the text, so it catches items whose votes agree on a wrong label
  (WRENCH youtube: the top 10% by this signal alone holds 3.3x the base error rate, by the votes-only risk 1.4x;
  eval/results/review.md).

Exports: CSV, JSONL, and Label Studio import JSON (tasks with the label as a pre-annotation).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io_write import atomic_write
from .base import as_votes
from .majority import class_counts

DEFAULT_WEIGHTS = {"low_confidence": 1.0, "disagreement": 0.5, "self_confidence": 1.0}


def _proba(proba, name: str = "proba") -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise InputError(f"{name} must be an (n x k) probability array, got shape {p.shape}")
    return p


def oof_proba(X, labels, *, n_classes: int | None = None, n_folds: int = 5, seed: int = 0, C: float = 1.0,
              max_iter: int = 30) -> np.ndarray:
    """Out-of-fold class probabilities of a logistic regression on features ``X`` (dense or sparse) trained on
    ``labels``: each fold is predicted by a model fitted on the other folds only (the cleanlab recipe).

    A class missing from a fold's training part gets probability 0 there. Returns (n, n_classes).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels, dtype=np.int64)
    n = len(y)
    if X.shape[0] != n:
        raise InputError(f"features have {X.shape[0]} rows for {n} labels")
    k = int(n_classes if n_classes is not None else y.max() + 1)
    out = np.zeros((n, k))
    if n < 2 * n_folds or len(np.unique(y)) < 2:
        out[np.arange(n), y] = 1.0  # too little to cross-fit: the signal says nothing (self-confidence 0)
        return out
    for f in np.array_split(np.random.default_rng(seed).permutation(n), n_folds):
        rest = np.ones(n, bool)
        rest[f] = False
        if len(np.unique(y[rest])) < 2:
            out[f, y[rest][0]] = 1.0
            continue
        with warnings.catch_warnings():  # a ranking signal: an unconverged fit ranks as well as a converged one
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = LogisticRegression(C=C, max_iter=max_iter).fit(X[rest], y[rest])
        out[np.ix_(f, m.classes_)] = m.predict_proba(X[f])
    return out


def review_scores(proba, L=None, student_proba=None, labels=None, weights: dict | None = None) -> dict:
    """Per-item signals and their weighted ``risk`` (all arrays of length n; see the module docstring).

    ``labels`` defaults to ``proba.argmax(1)``; pass the labels you will actually ship if they differ.
    """
    p = _proba(proba)
    n, k = p.shape
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    unknown = set(w) - set(DEFAULT_WEIGHTS)
    if unknown:
        raise ConfigError(f"unknown review weight(s) {sorted(unknown)}; known: {sorted(DEFAULT_WEIGHTS)}")
    labels = p.argmax(axis=1) if labels is None else np.asarray(labels)
    if labels.shape != (n,):
        raise InputError(f"labels must have one entry per item ({n}), got shape {labels.shape}")
    out = {"label": labels, "confidence": p[np.arange(n), labels]}
    out["low_confidence"] = np.clip((1 - p.max(axis=1)) / (1 - 1 / k), 0, 1)
    parts = [("low_confidence", out["low_confidence"])]
    if L is not None:
        votes = as_votes(L, k, what="L")
        if votes.n != n:
            raise InputError(f"L has {votes.n} rows but proba has {n}")
        counts = class_counts(votes)
        tot = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
        ent = -(share * np.log(np.where(share > 0, share, 1))).sum(axis=1) / np.log(k)
        out["disagreement"] = np.where(tot[:, 0] > 0, ent, 1.0)
        out["n_votes"] = (votes.hard >= 0).sum(axis=1)
        parts.append(("disagreement", out["disagreement"]))
    if student_proba is not None:
        s = _proba(student_proba, "student_proba")
        if s.shape != p.shape:
            raise InputError(f"student_proba has shape {s.shape}, expected {p.shape}")
        out["self_confidence"] = 1 - s[np.arange(n), labels]
        parts.append(("self_confidence", out["self_confidence"]))
    tw = sum(w[name] for name, _ in parts)
    if tw <= 0:
        raise ConfigError("review weights of the available signals sum to 0")
    out["risk"] = sum(w[name] * v for name, v in parts) / tw
    return out


def review_queue(proba, L=None, *, student_proba=None, labels=None, ids=None, texts=None,
                 class_names: list[str] | None = None, top: int | float | None = None,
                 weights: dict | None = None) -> list[dict]:
    """Rows (dicts) sorted by ``risk``, highest first; ``top`` keeps the first N rows (or a fraction < 1).

    Each row: rank, index (row in the input), id, text, label, label_name, confidence, risk and the
    individual signals. Ties keep input order, so the queue is deterministic.
    """
    sc = review_scores(proba, L, student_proba, labels, weights)
    n = len(sc["risk"])
    for name, seq in (("ids", ids), ("texts", texts)):
        if seq is not None and len(seq) != n:
            raise InputError(f"{name} has {len(seq)} entries for {n} items")
    order = np.argsort(-sc["risk"], kind="stable")
    if top is not None:
        keep = int(np.ceil(top * n)) if isinstance(top, float) and top < 1 else int(top)
        order = order[:max(keep, 0)]
    signals = [s for s in ("low_confidence", "disagreement", "self_confidence", "n_votes") if s in sc]
    rows = []
    for rank, i in enumerate(order.tolist(), 1):  # output rows only: the ranking itself is vectorised
        lab = int(sc["label"][i])
        row = {"rank": rank, "index": i, "id": _plain(ids[i]) if ids is not None else i}
        if texts is not None:
            row["text"] = str(texts[i])
        row.update(label=lab, label_name=class_names[lab] if class_names else str(lab),
                   confidence=float(sc["confidence"][i]), risk=float(sc["risk"][i]))
        for s in signals:
            row[s] = int(sc[s][i]) if s == "n_votes" else float(sc[s][i])
        rows.append(row)
    return rows


def _plain(x):
    """numpy scalars -> Python ones, so rows serialise to JSON."""
    return x.item() if isinstance(x, np.generic) else x


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """Rows to CSV (header from the first row), written atomically."""
    path = Path(path)
    fields = list(rows[0]) if rows else ["rank", "index", "id", "label", "confidence", "risk"]
    with atomic_write(path) as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """The queue as JSONL, through its owner :func:`llmlabel.artifacts.review.write_review_queue`."""
    from ..artifacts.review import write_review_queue

    return write_review_queue(path, rows)


def to_label_studio(rows: list[dict], *, from_name: str = "label", to_name: str = "text",
                    model_version: str = "llmlabel") -> list[dict]:
    """Label Studio import tasks: ``data`` holds text/id/risk, the label is a ``choices`` pre-annotation.

    Matches a labeling config like ``<Text name="text" value="$text"/>
    <Choices name="label" toName="text">...</Choices>``.
    """
    tasks = []
    for r in rows:
        data = {"text": r.get("text", ""), "item_id": r["id"], "risk": r["risk"], "rank": r["rank"]}
        result = [{"from_name": from_name, "to_name": to_name, "type": "choices",
                   "value": {"choices": [r["label_name"]]}}]
        tasks.append({"data": data, "predictions": [{"model_version": model_version,
                                                     "score": r["confidence"], "result": result}]})
    return tasks


def write_label_studio(rows: list[dict], path: str | Path, **kw) -> Path:
    path = Path(path)
    with atomic_write(path) as f:
        json.dump(to_label_studio(rows, **kw), f, ensure_ascii=False, indent=1)
    return path
