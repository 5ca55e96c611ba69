"""The safety net for multi-label files: per-label decision thresholds from the gold only, out-of-fold.

The single-label net (:mod:`llmlabel.distill.safety`) scores each recipe (student kind x weight of the weak rows) on
the gold out-of-fold. A multi-label student also needs a decision threshold per label, and a threshold tuned on the
rows it then scores flatters every recipe, the gold alone most (its few positives per label are easy to separate
in-sample). So, from the labeled file's cross-fitting sidecar (:mod:`llmlabel.artifacts.crossfit`, multi-label
flavour: per fold f the label model's P(label) for a sample of weak rows and its thresholds, all made without fold
f's gold), for every recipe:

1. for each fold f, a student trained on the weak rows' label sets from fold f's label model (at fold f's
   thresholds) plus the gold outside fold f gives P(label) for fold f's gold rows: out-of-fold probabilities for
   every gold row, ``P_oof``;
2. fold f's rows are decided at per-label thresholds chosen (F1-optimal per label) on the *other* folds'
   ``P_oof`` rows, never on fold f's, and the pooled decisions are scored by macro-F1 (leaf level) and micro-F1;
3. the thresholds shipped with the recipe are chosen the same way on all gold rows' ``P_oof``.

Each fold trains on a seeded sample of at most ``max_weak`` (2,000) of the sidecar's weak rows: a static student
refitted 10 times on 5,000 rows made the net cost three times the rest of the chain at 100 gold on GoEmotions. With
fewer weak rows than the shipped student gets, the estimate leans towards the gold alone, the safe side.

The ``probe`` with weak rows ``none`` (one-vs-rest logistic regression on frozen MiniLM embeddings of the gold,
class-balanced per label: :mod:`llmlabel.distill.probe`) is the reference; any other recipe replaces it only when
its macro-F1 is higher by more than :data:`~llmlabel.distill.choice.MARGIN_SE` paired standard errors (a seeded bootstrap over the gold rows). The winner is trained on
every row and shipped with its thresholds; metrics.json and the model card say which won, by how much, and where
the thresholds came from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..errors import ConfigError
from ..multilabel_metrics import best_thresholds, multilabel_f1, paired_macro_f1_se
from .safety import WEAK_WEIGHTS, SafetyNetResult, _Trainer, choose, matched_rows, recipes

#: Threshold candidates: the usual 0.05 steps plus a log-spaced low end, because a student trained without
#: class weights (the static one; the probe is class-balanced) gives a rare label probabilities well under 0.05
#: even where it applies.
GRID = np.unique(np.round(np.concatenate([np.geomspace(0.005, 0.05, 7), np.linspace(0.05, 0.95, 19)]), 4))
MAX_WEAK = 2000
THRESHOLDS_FROM = "per-label F1-optimal on the out-of-fold probabilities of the {n} gold rows (safety net)"


def oof_decisions(P: np.ndarray, Y: np.ndarray, fold: np.ndarray, folds: int) -> np.ndarray:
    """0/1 decisions for every row of ``P`` (out-of-fold probabilities; NaN rows were not scored): fold f's rows
    at the per-label thresholds chosen on the other folds' scored rows only."""
    ok = ~np.isnan(P).any(1)
    pred = np.zeros(P.shape, bool)
    for f in range(folds):
        here, rest = ok & (fold == f), ok & (fold != f)
        if here.any():
            pred[here] = P[here] >= best_thresholds(P[rest], Y[rest], grid=GRID, default=0.5)
    return pred


def with_gold(d, crossfit):
    """The labeled data with the sidecar's gold rows as human rows carrying their gold label sets (``aggregate
    --gold`` clamps them already; after ``aggregate --dev`` they still hold the label model's sets)."""
    pos = {str(i): r for r, i in enumerate(d.ids)}
    keep = np.array([str(i) in pos for i in crossfit.gold.ids], bool)
    rows = np.array([pos[str(i)] for i, ok in zip(crossfit.gold.ids, keep) if ok], np.int64)
    Y = np.asarray(crossfit.gold.labels)[keep]
    labels, proba = d.labels.copy(), d.proba.copy()
    labels[rows], proba[rows] = Y.astype(labels.dtype), Y.astype(proba.dtype)
    human = np.zeros(len(d), bool) if d.human is None else d.human.copy()
    human[rows] = True
    weights = d.weights.copy()
    weights[rows] = 1.0
    return replace(d, labels=labels, proba=proba, human=human, n_human=int(human.sum()), weights=weights)


def run_multi_safety_net(texts: Sequence[str], ids: Sequence[str], classes: Sequence[str], crossfit, make_student, *,
                         students: Sequence[str] = ("static", "probe"), weak: Sequence[str] = WEAK_WEIGHTS,
                         soft: bool = False, max_weak: int = MAX_WEAK, seed: int = 0) -> SafetyNetResult:
    """Score every recipe out-of-fold on the gold with thresholds from the other folds (module docstring) and
    choose one. ``make_student(kind)`` returns an unfitted multi-label student; ``soft``: train on the label
    model's P(label) instead of its label sets (distill's multi-label default is the sets)."""
    t0 = time.perf_counter()
    k = len(classes)
    if list(crossfit.classes) != list(classes) or not crossfit.multi_label:
        raise ConfigError("the cross-fitting labels were not made over this multi-label file's classes",
                          hint="rerun `llmlabel aggregate` so both come from the same run")
    gold = crossfit.gold
    g_keep, g_rows, s_keep, s_rows = matched_rows(ids, crossfit, max_weak, seed)  # a seeded sample (module docstring)
    g_fold, Yg = gold.fold[g_keep], np.asarray(gold.labels)[g_keep].astype(np.float32)
    proba = crossfit.proba[:, s_keep]
    weak_targets = proba if soft else (proba >= crossfit.thresholds[:, None, :]).astype(np.float32)
    if len(g_rows) < 2:
        raise ConfigError("fewer than 2 gold rows of the cross-fitting file are in the labeled file: nothing to "
                          "score the safety net on", hint="rerun `llmlabel aggregate` on this run's votes")
    trainer = _Trainer(make_student, list(texts), list(classes))
    trainer.prepare(np.concatenate([s_rows, g_rows]))
    table, preds, ship = [], [], []
    for rc in recipes(students, weak):
        # weak rows weigh the label model's confidence, the weight the labeled file gives a row
        P = trainer.oof_proba(rc, g_rows, g_fold, gold.folds, Yg, s_rows, weak_targets, proba.max(2), one_of_k=False)
        ok = ~np.isnan(P).any(1)
        pred = oof_decisions(P, Yg, g_fold, gold.folds)
        m = multilabel_f1(Yg[ok], pred[ok])
        table.append({"student": rc.student, "weak": rc.weak, "n": int(ok.sum()),
                      "macro_f1": round(float(m["macro_f1"]), 4), "micro_f1": round(float(m["micro_f1"]), 4)})
        preds.append(np.where(ok[:, None], pred, False))
        ship.append(best_thresholds(P[ok], Yg[ok], grid=GRID, default=0.5) if ok.any() else np.full(k, 0.5))
    best, chosen, verdict, gain = choose(table, "macro_f1", len(g_rows),
                                         lambda a, b: paired_macro_f1_se(preds[a], preds[b], Yg))
    i = table.index(best)
    extra = {"multi_label": True,
             "thresholds": {c: round(float(t), 4) for c, t in zip(classes, ship[i])},
             "thresholds_from": THRESHOLDS_FROM.format(n=int(best["n"])),
             "scoring": ("macro-F1 (leaf labels) of the pooled out-of-fold decisions; fold f's gold rows decided at "
                         "per-label thresholds chosen on the other folds' out-of-fold probabilities only"),
             "seconds": round(time.perf_counter() - t0, 1)}
    return SafetyNetResult(chosen, "macro_f1", table, gold.folds, int(best["n"]), len(s_rows), verdict, gain,
                           extra=extra)
