"""The label model in the cross-fitted world of the safety net: for each fold f of the gold, the labels of a
sample of weak rows from a label model that never saw fold f's gold.

``label --gold`` leaves the gold-derived LFs' votes on a sample of items as if each were in fold f
(:mod:`llmlabel.lf.crossfit`, :func:`llmlabel.lf.multispec.write_crossfit_multi`). Here, for each fold f, those
votes replace the main ones for the sample, and the label model is chosen, fitted and calibrated as ``aggregate``
does with the human labels of fold f left out. The sample's probabilities (multi-label: and each fold's
thresholds) go to the labeled file's cross-fitting sidecar (:mod:`llmlabel.artifacts.crossfit`) for ``distill``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.crossfit import GoldFolds
from ..artifacts.matrix import LabelMatrix


def _fold_fits(V, cv, rows: np.ndarray, fit):
    """``(sample ids, [fit(f, base, n_sample, keep) per fold], fold of each row)``; None when the cross-fitting
    sample is gone from ``V`` (votes remade since) or a fit gives None. ``base``: the sample's rows, then ``rows``
    (human labels); ``keep``: the ``rows`` not in fold f (a row of no fold is always kept)."""
    pos = {str(i): r for r, i in enumerate(V.ids if V.ids is not None else [])}
    if any(str(i) not in pos for i in cv.ids) or any(n not in V.lf_names for n in cv.lf_names):
        return None
    fold_of = {str(i): int(f) for i, f in zip(cv.gold.ids, cv.gold.fold)}
    rows = np.asarray(rows, np.int64)
    fold = np.array([fold_of.get(str(V.ids[r]), -1) for r in rows], np.int64)
    s_rows = np.array([pos[str(i)] for i in cv.ids], np.int64)
    base = V.take(np.concatenate([s_rows, rows]))
    out = []
    for f in range(cv.gold.folds):
        got = fit(f, base, len(s_rows), fold != f)
        if got is None:
            return None
        out.append(got)
    return [str(i) for i in cv.ids], out, fold


def _with_columns(L: LabelMatrix, n_sample: int, names: list[str], votes: np.ndarray,
                  probs: dict[str, np.ndarray]) -> LabelMatrix:
    """``L`` with the columns ``names`` of its first ``n_sample`` rows replaced (votes and probabilities)."""
    k = L.cardinality
    new = L.votes.copy()
    cols = [L.lf_names.index(n) for n in names]
    new[:n_sample, cols] = votes
    dense = {}
    for j, name in enumerate(L.lf_names):
        if name not in L.vote_probs and name not in probs:
            continue
        d = np.zeros((len(L), k), np.float32)
        if name in L.vote_probs:
            d[L.votes[:, j] >= 0] = L.vote_probs[name]
        else:  # main votes without probabilities: their one-hot, as LabelMatrix.probs reads them
            on = np.flatnonzero(L.votes[:, j] >= 0)
            d[on, L.votes[on, j]] = 1.0
        if name in names:
            p = probs.get(name)
            if p is None:
                p = np.zeros((n_sample, k), np.float32)
                on = np.flatnonzero(votes[:, names.index(name)] >= 0)
                p[on, votes[on, names.index(name)]] = 1.0
            d[:n_sample] = p
        dense[name] = d
    return LabelMatrix(new, L.lf_names, labels=L.labels, ids=L.ids, vote_probs=dense, errors=L.errors)


def crossfit_labels(L: LabelMatrix, cv, gold_rows: np.ndarray, gold_y: np.ndarray, gold_fair: np.ndarray | None,
                    method: str = "auto", L_dev=None, y_dev=None, *, metric: str = "accuracy"):
    """``(sample ids, proba (folds, n, k), gold folds, None)``: the gold outside fold f is dev and clamped, a dev
    file's rows of fold f are dropped; gold added after ``label`` (a review round) has no fold and only trains."""
    from .gold import aggregate_with_gold

    fair = np.ones(len(gold_rows), bool) if gold_fair is None else np.asarray(gold_fair, bool)
    ids_g = np.array([str(L.ids[r]) for r in gold_rows], dtype=object)
    known = np.isin(ids_g, list(cv.gold.ids))
    order = np.concatenate([np.flatnonzero(known), np.flatnonzero(~known)])  # the folds' gold, then the new
    ids_g, rows, y, fair = ids_g[order], np.asarray(gold_rows)[order], np.asarray(gold_y)[order], fair[order]

    def fit(f, base, ns, keep):
        Ld, yd = L_dev, y_dev
        if L_dev is not None and L_dev.ids is not None:  # a dev file that shares rows with fold f leaves them out
            held = set(ids_g[~keep])
            ok = np.array([str(i) not in held for i in L_dev.ids], bool)
            Ld, yd = L_dev.take(ok), np.asarray(y_dev)[ok]
        Lf = _with_columns(base, ns, cv.lf_names, cv.votes[f], cv.probs[f])
        res = aggregate_with_gold(Lf, method, Ld, yd, ns + np.flatnonzero(keep), y[keep], fair[keep],
                                  reliability=False, metric=metric)
        return res["proba"][:ns]

    made = _fold_fits(L, cv, rows, fit)
    if made is None:
        return None
    ids, proba, fold = made
    n = int(known.sum())
    folds = GoldFolds(tuple(ids_g[:n]), fold[:n], cv.gold.folds, y[:n], fair[:n])
    return ids, np.stack(proba).astype(np.float32), folds, None


def crossfit_multi_labels(mv, cv, dev_rows: np.ndarray, Y_dev: np.ndarray, method: str = "auto"):
    """``(sample ids, proba (folds, n, k), gold folds, thresholds (folds, k))``: the dev rows (dev and gold) outside
    fold f choose, calibrate and threshold the per-label models; None when a fold leaves none."""
    from ..artifacts.multivotes import MultiVotes
    from .multilabel import aggregate_multi

    if list(cv.labels) != list(mv.labels):
        return None
    Y = np.asarray(Y_dev)

    def fit(f, base, ns, keep):
        if not keep.any():
            return None
        votes = base.votes.copy()
        votes[:ns, [base.lf_names.index(n) for n in cv.lf_names]] = cv.votes[f]
        res = aggregate_multi(MultiVotes(votes, base.lf_names, base.labels, base.label_ids, base.ids), method,
                              ns + np.flatnonzero(keep), Y[keep])
        return res["proba"][:ns], res["thresholds"]

    made = _fold_fits(mv, cv, dev_rows, fit)
    if made is None:
        return None
    ids, fits, _ = made
    return ids, np.stack([p for p, _ in fits]), cv.gold, np.stack([t for _, t in fits]).astype(np.float32)


def crossfit_sidecar(votes, output, classes: list[str], read, make, method: str, want: bool = True) -> Path | None:
    """The labeled file's sidecar from ``make(read(votes))`` when ``want`` (human labels to hold out) and the
    votes folder has cross-fitting votes; a stale sidecar from an earlier run is removed otherwise. Its metadata
    records what making it cost (``seconds``, ``cpu_seconds``: every thread of this process): only distill's
    safety net reads it, so the net reports it as part of its own cost."""
    import time

    from ..artifacts.crossfit import crossfit_labels_path, write_crossfit_labels

    side = crossfit_labels_path(output)
    t0, c0 = time.perf_counter(), time.process_time()
    cv = read(votes) if want and Path(votes).is_dir() else None
    made = None if cv is None else make(cv)
    if made is None:
        side.unlink(missing_ok=True)
        return None
    ids, proba, folds, thresholds = made
    cost = {"seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2)}
    return write_crossfit_labels(output, ids=ids, classes=classes, proba=proba, gold=folds, thresholds=thresholds,
                                 meta={"method": method, **cost})
