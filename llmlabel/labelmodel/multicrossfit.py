"""The multi-label label model in the cross-fitted world of the safety net: for each fold f of the gold, P(label
applies) and the label sets of a sample of weak rows from per-label label models that never saw fold f's gold.

``label --gold`` on a multi-label taxonomy leaves the gold-derived LFs' votes on a sample of items as if each were
in fold f (:func:`llmlabel.lf.multispec.write_crossfit_multi`). Here, for each fold f, those votes replace the main
ones for the sample, and the per-label label models are chosen, calibrated and thresholded as ``aggregate``
does (:func:`llmlabel.labelmodel.multipipeline.aggregate_multi`), on the sample and the dev rows, with every dev
row that is a gold row of fold f left out. The sample's probabilities and each fold's thresholds go to the
labeled file's cross-fitting sidecar (:mod:`llmlabel.artifacts.crossfit`), where ``distill`` finds them.
"""

from __future__ import annotations

import numpy as np

from ..artifacts.crossfit import CrossFitMultiVotes, GoldFolds
from ..artifacts.multivotes import MultiVotes


def crossfit_multi_labels(mv: MultiVotes, cv: CrossFitMultiVotes, dev_rows: np.ndarray, Y_dev: np.ndarray,
                          fit) -> tuple[list[str], np.ndarray, np.ndarray, GoldFolds] | None:
    """``(sample ids, proba (folds, n, k), thresholds (folds, k), gold folds)``; None when the votes'
    cross-fitting sample no longer matches ``mv`` (the votes were remade since) or no dev row is left.
    ``fit(votes, dev_rows, Y_dev)``: what ``aggregate`` fits (a dict with ``proba`` and ``thresholds``)."""
    pos = {str(i): r for r, i in enumerate(mv.ids or [])}
    if (list(cv.labels) != list(mv.labels) or any(str(i) not in pos for i in cv.ids)
            or any(n not in mv.lf_names for n in cv.lf_names)):
        return None
    fold_of = {str(i): int(f) for i, f in zip(cv.gold.ids, cv.gold.fold)}
    dev_rows = np.asarray(dev_rows, np.int64)
    d_fold = np.array([fold_of.get(str(mv.ids[r]), -1) for r in dev_rows], np.int64)
    s_rows = np.array([pos[str(i)] for i in cv.ids], np.int64)
    base = mv.take(np.concatenate([s_rows, dev_rows]))
    ns, cols = len(s_rows), [mv.lf_names.index(n) for n in cv.lf_names]
    proba = np.zeros((cv.gold.folds, ns, len(mv.labels)), np.float32)
    thresholds = np.zeros((cv.gold.folds, len(mv.labels)), np.float32)
    for f in range(cv.gold.folds):
        keep = np.flatnonzero(d_fold != f)
        if not len(keep):
            return None
        votes = base.votes.copy()
        votes[:ns, cols] = cv.votes[f]
        mf = MultiVotes(votes, base.lf_names, base.labels, base.label_ids, base.ids)
        res = fit(mf, ns + keep, np.asarray(Y_dev)[keep])
        proba[f], thresholds[f] = res["proba"][:ns], res["thresholds"]
    return [str(i) for i in cv.ids], proba, thresholds, cv.gold
