"""Human labels back into the label model (``llmlabel aggregate --gold gold.jsonl``).

Reviewed items are clamped to their human label (``source: human`` in labeled.parquet, confidence 1). Those that
are a fair sample join the dev set for model selection, the ``*-dev`` fits and calibration: gold rows from the
``random`` review strategy, or with no ``strategy`` field (a plain user gold file). Items an active strategy picked
(``uncertainty``, ``review``, ``diverse``: the hardest items) are only clamped: as a training set they are biased
(on Banking77, 50 risk-picked items chose and fitted a model that dropped the other 9,950 rows from 0.636 to 0.499
accuracy, eval/results/review-notes.md). Cross-fitting keeps every score honest: the gold items are
split into folds and each fold is scored by models (and calibrators) fitted without its labels, so an item
never scores the model it trained. The chosen model and its calibrator are then refitted on all gold labels.

The report gets a reliability diagram before and after calibration, both out-of-fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.gold import RANDOM_STRATEGY, fair_sample, read_gold  # noqa: F401  (re-exported)
from ..artifacts.matrix import LabelMatrix


def load_gold(path: str | Path, L: LabelMatrix, *, with_strategy: bool = False):
    """(row indices into L, class indices) of a JSONL/CSV of ``id`` + ``label`` (a class name or index), read
    through :mod:`llmlabel.artifacts.gold` (a repeated id is an error there).

    ``with_strategy``: also a boolean mask, True where the row is a fair sample (:func:`fair_sample` of its
    optional ``strategy`` field, written by ``llmlabel review import``)."""
    from .pipeline import read_labels

    rows, y, fair = read_labels(path, L, what="gold", several="gold label is a list, but these votes are single-label",
                                hint="rerun `llmlabel label` with the extended taxonomy, or fix the label")
    return (rows, y, fair) if with_strategy else (rows, y)


def clamp(res: dict, rows: np.ndarray, Y: np.ndarray) -> dict:
    """A copy of the result ``res`` with the human label sets ``Y`` ((len(rows), k) 0/1; one-hot for single-label)
    at ``rows``: probabilities Y, ``label`` their first label with confidence 1 (0 for an empty set), label sets
    (``chosen``) Y, never uncovered (a human label is not the class prior), ``source: human``."""
    out = {**res, **{x: res[x].copy() for x in ("proba", "label", "confidence", "uncovered", "chosen") if x in res}}
    Y = np.asarray(Y)
    out["proba"][rows] = Y
    out["label"][rows] = Y.argmax(1)
    out["confidence"][rows] = Y[np.arange(len(Y)), out["label"][rows]]
    out["uncovered"][rows] = False
    if "chosen" in out:
        out["chosen"][rows] = Y
    out["source"] = np.full(len(out["proba"]), "model", dtype=object)
    out["source"][rows] = "human"
    return out


def reliability_bins(conf: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Equal-width confidence bins: mean confidence, accuracy and count per non-empty bin, and the ECE."""
    conf = np.asarray(conf, float)
    b = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    mc = np.bincount(b, weights=conf, minlength=n_bins)
    ac = np.bincount(b, weights=np.asarray(correct, float), minlength=n_bins)
    keep = cnt > 0
    return {"confidence": (mc[keep] / cnt[keep]).tolist(), "accuracy": (ac[keep] / cnt[keep]).tolist(),
            "count": cnt[keep].tolist(), "ece": float(np.abs(ac - mc)[keep].sum() / max(1, cnt.sum())),
            "n": int(cnt.sum())}


def _folds(n: int, n_folds: int, seed: int) -> list[np.ndarray]:
    return [f for f in np.array_split(np.random.default_rng(seed).permutation(n), min(n_folds, n)) if len(f)]


def _oof(L, L_sel, y, chosen: str, idx: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Raw probabilities of the items ``idx``, each from a model fitted on the labels of the others in ``idx``."""
    from .select import make_model

    out = np.empty((len(idx), L.cardinality))
    for f in _folds(len(idx), n_folds, seed):
        rest = np.setdiff1d(np.arange(len(idx)), f)
        m = make_model(chosen, L.cardinality, seed).fit(L, y[idx[rest]], L_sel.take(idx[rest]))
        out[f] = m.predict_proba(L_sel.take(idx[f]))
    return out


def cross_fitted(L: LabelMatrix, L_sel: LabelMatrix, y_sel: np.ndarray, chosen: str, calibration: str, *,
                 n_folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (raw, calibrated) probabilities of the chosen model on the selection items.

    No label of an item reaches the model or the calibrator that score it: models that learn from labels
    (``*-dev``) are refitted per fold without that fold's labels, and that fold's calibrator is fitted on
    probabilities of the other folds made by models that never saw the fold either (nested folds). Label-free
    models see no labels at all, so only the calibrator needs folds.
    """
    from .calibrate import make_calibrator
    from .select import make_model

    n = len(y_sel)
    folds = _folds(n, n_folds, seed)
    uses_labels = chosen.endswith("-dev")
    if uses_labels:
        raw = _oof(L, L_sel, y_sel, chosen, np.arange(n), n_folds, seed)
    else:
        raw = make_model(chosen, L.cardinality, seed).fit(L).predict_proba(L_sel)
    cal = np.empty_like(raw)
    for f in folds:
        rest = np.setdiff1d(np.arange(n), f)
        if len(rest) < 2:
            cal[f] = raw[f]
            continue
        fit_on = _oof(L, L_sel, y_sel, chosen, rest, n_folds, seed + 1) if uses_labels else raw[rest]
        cal[f] = make_calibrator(calibration).fit(fit_on, y_sel[rest]).transform(raw[f])
    return raw, cal


def aggregate_with_gold(L: LabelMatrix, method: str = "auto", L_dev=None, y_dev=None, gold_rows=None, gold_y=None,
                        gold_fair=None, *, n_folds: int | None = None, seed: int = 0, reliability: bool = True,
                        metric: str = "accuracy") -> dict:
    """``pipeline.aggregate``'s result with human labels clamped (``source``) and cross-fitted reliability.

    Selection and calibration use the dev set plus the gold items that are a fair sample (``gold_fair``, a
    boolean mask over ``gold_rows``; None = all of them); the others are only clamped. Where an item is in dev
    and gold, the gold label wins. The report lists both kinds (``gold_selection_ids``, ``gold_clamped_ids``).
    ``reliability=False`` skips the out-of-fold reliability diagram (the extra model fits it costs).
    ``n_folds``: None = 5, or ``select.MANY_CLASS_FOLDS`` (3) where full Dawid-Skene is too costly to be a
    candidate (``select.too_costly_for_full_ds``): there each fit costs the most (nested cross-fitting of a
    dev-trained model is n_folds * (n_folds + 1) fits).
    """
    from .pipeline import aggregate
    from .select import MANY_CLASS_FOLDS, too_costly_for_full_ds

    if n_folds is None:
        n_folds = MANY_CLASS_FOLDS if too_costly_for_full_ds(L.shape[1], L.cardinality) else 5

    gold_rows = np.zeros(0, np.int64) if gold_rows is None else np.asarray(gold_rows, np.int64)
    gold_y = np.zeros(0, np.int64) if gold_y is None else np.asarray(gold_y, np.int64)
    fair = np.ones(len(gold_rows), bool) if gold_fair is None else np.asarray(gold_fair, bool)
    sel_rows, sel_y = gold_rows[fair], gold_y[fair]
    parts, ys = [], []
    n_dev = 0
    if L_dev is not None:
        y_dev = np.asarray(y_dev).copy()
        if L_dev.ids is not None and len(gold_rows) and L.ids is not None:
            # A dev item also among the clamped-only gold stays in dev (dev is a fair sample) with the human label.
            pos = {str(i): k for k, i in enumerate(L.ids[gold_rows[~fair]])}
            hit = np.fromiter((pos.get(str(i), -1) for i in L_dev.ids), np.int64, count=len(L_dev))
            y_dev[hit >= 0] = gold_y[~fair][hit[hit >= 0]]
            in_sel = np.isin(L_dev.ids, L.ids[sel_rows])
            L_dev, y_dev = L_dev.take(~in_sel), y_dev[~in_sel]
        parts.append(L_dev)
        ys.append(y_dev)
        n_dev = len(L_dev)
    if len(sel_rows):
        parts.append(L.take(sel_rows))
        ys.append(sel_y)
    L_sel = LabelMatrix.concat(parts) if len(parts) > 1 else (parts[0] if parts else None)
    y_sel = np.concatenate(ys) if ys else None
    res = aggregate(L, method, L_sel, y_sel, metric=metric)
    rep = dict(res["report"])
    if reliability and L_sel is not None and len(y_sel) >= 2:
        raw, cal = cross_fitted(L, L_sel, y_sel, rep.get("chosen", "onecoin"), rep.get("calibration", "none"),
                                n_folds=n_folds, seed=seed)
        rep["reliability"] = {
            "before": reliability_bins(raw.max(1), raw.argmax(1) == y_sel),
            "after": reliability_bins(cal.max(1), cal.argmax(1) == y_sel),
            "note": f"out-of-fold over {len(y_sel)} dev + fair-sample gold items ({min(n_folds, len(y_sel))} folds)"}
        if n_dev:  # the dev set is a fair sample (gold items were picked for being hard): score there only
            rep["dev_accuracy_oof"] = float((cal[:n_dev].argmax(1) == y_sel[:n_dev]).mean())
    rep["n_gold"] = int(len(gold_rows))
    rep["n_gold_selection"], rep["n_gold_clamped_only"] = int(fair.sum()), int((~fair).sum())
    if L.ids is not None:
        rep["gold_selection_ids"] = [str(i) for i in L.ids[sel_rows]]
        rep["gold_clamped_ids"] = [str(i) for i in L.ids[gold_rows[~fair]]]
    return clamp({**res, "report": rep}, gold_rows, np.eye(L.cardinality, dtype=np.int8)[gold_y])


def append_round(path: str | Path, report: dict) -> Path | None:
    """Add this aggregation's point (human labels so far, out-of-fold dev accuracy) to ``review_rounds.json``,
    which ``llmlabel report`` draws as accuracy vs number of human labels (the file: :mod:`llmlabel.artifacts.review`;
    a rerun replaces its point). Nothing without a dev score."""
    from ..artifacts.review import add_round

    if report.get("dev_accuracy_oof") is None:
        return None
    return add_round(path, {"strategy": "human review", "n_labels": report["n_gold"],
                            "accuracy": report["dev_accuracy_oof"], "chosen": report.get("chosen")})
