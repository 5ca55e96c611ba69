"""The label model in the cross-fitted world of the safety net: for each fold f of the gold, the labels of a
sample of weak rows from a label model that never saw fold f's gold.

``label --gold`` leaves the gold-derived LFs' votes on a sample of items as if each were in fold f
(:mod:`llmlabel.lf.crossfit`). Here, for each fold f, those votes replace the main ones for the sample, and the
label model is chosen, fitted and calibrated as ``aggregate --gold`` does, with the gold outside fold f as dev
and clamped, on the sample and the gold rows. The probabilities it gives the sample go to the labeled file's
cross-fitting sidecar (:mod:`llmlabel.artifacts.crossfit`), where ``distill`` finds them.
"""

from __future__ import annotations

import numpy as np

from ..artifacts.crossfit import GoldFolds
from ..artifacts.matrix import LabelMatrix


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
                    method: str = "auto", L_dev=None, y_dev=None) -> tuple[list[str], np.ndarray, GoldFolds] | None:
    """``(sample ids, proba (folds, n, k), gold folds)``, or None when the votes' cross-fitting sample is
    gone from ``L`` (the votes were remade since)."""
    from .gold import aggregate_with_gold

    pos = {str(i): r for r, i in enumerate(L.ids)}
    if any(str(i) not in pos for i in cv.ids) or any(n not in L.lf_names for n in cv.lf_names):
        return None
    fold_of = {str(i): int(f) for i, f in zip(cv.gold.ids, cv.gold.fold)}
    fair = np.ones(len(gold_rows), bool) if gold_fair is None else np.asarray(gold_fair, bool)
    ids_g = [str(L.ids[r]) for r in gold_rows]
    known = np.array([i in fold_of for i in ids_g], bool)  # gold added after `label` (a review round) only trains
    g_rows, g_y, g_fair = gold_rows[known], gold_y[known], fair[known]
    g_fold = np.array([fold_of[i] for i, ok in zip(ids_g, known) if ok], dtype=np.int64)
    s_rows = np.array([pos[str(i)] for i in cv.ids], dtype=np.int64)
    extra = gold_rows[~known]
    base = L.take(np.concatenate([s_rows, g_rows, extra]))
    ns, ng = len(s_rows), len(g_rows)
    out = np.zeros((cv.gold.folds, ns, L.cardinality), np.float32)
    for f in range(cv.gold.folds):
        Lf = _with_columns(base, ns, cv.lf_names, cv.votes[f], cv.probs[f])
        keep = g_fold != f
        rows_f = np.concatenate([ns + np.flatnonzero(keep), ns + ng + np.arange(len(extra))])
        y_f = np.concatenate([g_y[keep], gold_y[~known]])
        fair_f = np.concatenate([g_fair[keep], fair[~known]])
        Ld, yd = L_dev, y_dev
        if L_dev is not None and L_dev.ids is not None:  # a dev file that shares rows with fold f leaves them out
            held = {str(L.ids[r]) for r in g_rows[~keep]}
            ok = np.array([str(i) not in held for i in L_dev.ids], bool)
            Ld, yd = L_dev.take(ok), np.asarray(y_dev)[ok]
        res = aggregate_with_gold(Lf, method, Ld, yd, rows_f, y_f, fair_f, reliability=False)
        out[f] = res["proba"][:ns]
    folds = GoldFolds(tuple(ids_g[i] for i in np.flatnonzero(known)), g_fold, cv.gold.folds, g_y, g_fair)
    return [str(i) for i in cv.ids], out, folds
