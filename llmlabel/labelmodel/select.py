"""Pick a label model with a small gold dev set, calibrate it, and say why.

``select_label_model(L_train, L_dev, y_dev)`` fits every candidate on the training votes (no gold), scores
it on the dev set, chooses one, fits a calibrator on the dev set and returns a
:class:`~llmlabel.labelmodel.calibrate.CalibratedLabelModel` whose ``report_`` records every candidate's
dev scores and the reason for the choice.

Candidates that learn from the dev set themselves (``WeightedVote`` with dev accuracies, semi-supervised
``DawidSkene``) are scored out-of-fold: K-fold over the dev set, each fold predicted by a model that never
saw its labels, so they cannot win by memorising the dev set. Calibration is also chosen by
cross-validated dev log-loss.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError
from ..multilabel_metrics import multilabel_f1, paired_macro_f1_se
from .base import LabelModel, as_votes, check_labels, break_ties
from .calibrate import (ARGMAX_PRESERVING, CalibratedLabelModel, expected_accuracy, expected_calibration_error,
                        log_loss, make_calibrator)
from .classbias import ClassBias
from .dawid_skene import DawidSkene, OneCoinDawidSkene
from .heldout import HeldOutSelect
from .hyperlm import HyperLM, hyperlm_available
from .majority import MajorityVote, WeightedVote
from .stacked import StackedVote

#: Model used when there is no dev set: ``HeldOutSelect`` (heldout.py) keeps majority vote (its ties broken by
#: rule: ``mvt``) unless a candidate (class-balanced vote, one-coin and Dawid-Skene EM, HyperLM when installed)
#: predicts held-out LFs better by a one-sided t-test at 2 standard errors over at least 10 scored LFs. Never
#: reads gold. WRENCH test accuracy (eval/results/labelmodel.md): youtube 0.852, sms 0.622, trec 0.646, semeval
#: 0.825 (majority vote 0.814 / 0.622 / 0.606 / 0.770; HyperLM 0.852 / 0.622 / 0.658 / 0.825).
DEFAULT_MODEL = "heldout"

#: ``hyperlm-dev`` is not among them: cross-fitting it fine-tunes HyperLM five times (minutes on a CPU for
#: a few thousand rows and six classes); pass it in ``candidates`` to include it.
DEFAULT_CANDIDATES = ("mv", "mvb", "wv", "ds", "onecoin", "heldout", "ds-dev", "onecoin-dev", "wv-dev", "bias-dev")

#: Above this many confusion parameters (LFs x classes x classes) the default candidate lists leave out the full
#: Dawid-Skene models and cross-fitting uses ``MANY_CLASS_FOLDS`` folds: it is what EM's cost grows with.
#: Banking77's key phrases (78 LFs x 77 classes: 462k) take most of ``aggregate --gold``'s minutes; GoEmotions'
#: 28 emotions (29 LFs: 23k) take 13-47 s, and there ``ds-dev`` is 3.5 and 17.6 points ahead of the default
#: (eval/results/labelmodel.md). The rule was a class count (21) until then: it cut GoEmotions out for its
#: classes, not its cost.
FULL_DS_MAX_PARAMS = 100_000
MANY_CLASS_FOLDS = 3
FULL_DS = ("ds", "ds-dev", "ds-r")


def too_costly_for_full_ds(n_lfs: int, k: int) -> bool:
    """True when full Dawid-Skene (``n_lfs x k x k`` confusion parameters) is left out of the default candidates."""
    return n_lfs * k * k > FULL_DS_MAX_PARAMS


#: Candidates that need an optional package; ``select_label_model`` skips them (and says so) without it.
OPTIONAL_CANDIDATES = {"hyperlm": hyperlm_available, "hyperlm-dev": hyperlm_available}

#: Other spellings accepted wherever a label-model name is (CLI --method, pipeline YAML, make_model); the
#: one copy every caller uses.
MODEL_ALIASES = {"majority": "mv", "wmv": "wv", "dawid-skene": "ds", "one-coin": "onecoin", "default": "heldout",
           "auto-nodev": "heldout", "stacked": "stacked-dev"}


def _table(kw: dict) -> dict:
    return {
        "mv": lambda: MajorityVote(**kw),
        "mvt": lambda: MajorityVote(ties="balanced", **kw),
        "mv-r": lambda: MajorityVote(redundancy=True, **kw),
        "mvb": lambda: MajorityVote(class_balance="auto", **kw),
        "mvb-r": lambda: MajorityVote(class_balance="auto", redundancy=True, **kw),
        "wv": lambda: WeightedVote(weights="agreement", **kw),
        "wv-dev": lambda: WeightedVote(weights="dev", **kw),
        "wv-r": lambda: WeightedVote(weights="heldout", **kw),
        "ds": lambda: DawidSkene(use_dev=False, **kw),
        "ds-r": lambda: DawidSkene(use_dev=False, redundancy=True, **kw),
        "ds-dev": lambda: DawidSkene(use_dev=True, **kw),
        "ds-missing": lambda: DawidSkene(abstain="missing", use_dev=False, **kw),
        "onecoin": lambda: OneCoinDawidSkene(use_dev=False, **kw),
        "onecoin-r": lambda: OneCoinDawidSkene(use_dev=False, redundancy=True, **kw),
        "onecoin-dev": lambda: OneCoinDawidSkene(use_dev=True, **kw),
        "onecoin-missing": lambda: OneCoinDawidSkene(abstain="missing", use_dev=False, **kw),
        "heldout": lambda: HeldOutSelect(**kw),
        "stacked-dev": lambda: StackedVote(**kw),
        "bias-dev": lambda: ClassBias(**kw),
        "hyperlm": lambda: HyperLM(**kw),
        "hyperlm-dev": lambda: HyperLM(use_dev=True, **kw),
    }


#: Every model name make_model accepts (aliases aside).
MODEL_NAMES = tuple(_table({}))


def make_model(spec, cardinality: int | None = None, random_state: int | None = 0) -> LabelModel:
    """A label model from a short name, or a (unfitted) ``LabelModel`` instance as is.

    Names: ``mv``, ``mvt`` (majority vote, ties broken by the class-balanced score of the unipolar LFs' votes),
    ``mvb`` (class-balanced vote), ``wv`` (agreement weights), ``wv-dev`` (dev-set weights), ``ds`` (abstention
    modelled), ``ds-missing`` (textbook), ``onecoin``, ``onecoin-missing``; ``ds-dev`` / ``onecoin-dev`` add
    the dev rows as clamped, semi-supervised EM data; ``-r`` variants discount near-duplicate LFs;
    ``heldout`` is the no-gold default (``DEFAULT_MODEL``); ``stacked-dev`` is logistic regression on
    vote features fitted on the dev set; ``bias-dev`` is ``heldout`` with one log-odds bias per class fitted
    on the dev set; ``hyperlm`` / ``hyperlm-dev`` (unsupervised / fine-tuned on the
    dev labels) need ``pip install llmlabel[hyperlm]``. ``MODEL_ALIASES`` lists the other spellings.
    """
    if isinstance(spec, LabelModel):
        return spec
    table = _table({"cardinality": cardinality, "random_state": random_state})
    key = MODEL_ALIASES.get(str(spec).lower(), str(spec).lower())
    if key not in table:
        raise ConfigError(f"unknown label model '{spec}'; choose one of {', '.join(sorted(table))} or 'auto'")
    return table[key]()


def _name(spec) -> str:
    return spec if isinstance(spec, str) else type(spec).__name__


def _uses_dev(spec) -> bool:
    return isinstance(spec, str) and spec.endswith("-dev")


def _rows(votes, idx):
    """Rows of validated votes, soft ones kept soft."""
    return votes.hard[idx] if votes.soft is None else votes.soft[idx]


def _folds(n: int, n_folds: int, rng) -> list[np.ndarray]:
    return [f for f in np.array_split(rng.permutation(n), min(n_folds, n)) if len(f)]


def _cv_calibrated_loss(proba, y, method: str, folds) -> float:
    """Dev log-loss of ``method`` fitted on the other folds (honest estimate of the calibrated loss)."""
    if method == "none":
        return log_loss(proba, y)
    out = np.empty_like(proba)
    for f in folds:
        rest = np.setdiff1d(np.arange(len(y)), f)
        if len(rest) == 0:
            return np.inf
        out[f] = make_calibrator(method).fit(proba[rest], y[rest]).transform(proba[f])
    return log_loss(out, y)


def select_label_model(L_train, L_dev=None, y_dev=None, candidates=DEFAULT_CANDIDATES, *,
                       cardinality: int | None = None, metric: str = "accuracy", calibration: str = "auto",
                       n_folds: int = 5, random_state: int | None = 0) -> CalibratedLabelModel:
    """Fit ``candidates`` on ``L_train``, choose one on the dev set, calibrate it there, and return it.

    Choice (``metric='accuracy'``, dev accuracy with ties broken at random, in expectation): the no-dev
    default (``DEFAULT_MODEL``, when among the candidates) is kept unless another candidate's dev accuracy
    beats it by more than one standard error of the paired per-item difference; then the most accurate
    such candidate. ``metric='macro_f1'``: the same rule on dev macro-F1 (labels with seeded random
    tie-breaking; the standard error from a paired bootstrap), for a user whose metric weighs every class
    alike: by accuracy, a model that gives every item the commonest class can win on imbalanced classes.
    Without the default among them: every candidate within one standard error of the best accuracy counts as
    tied, and the tie goes to the lowest cross-validated calibrated dev log-loss (``macro_f1``: the highest
    dev macro-F1). ``metric='log_loss'`` ranks by that log-loss alone.
    ``calibration``: 'auto' (the lowest cross-validated dev log-loss among 'none', 'temperature' and
    'isotonic-top', the methods that keep every predicted label, so the labels are the ones the dev
    accuracy was measured on), or any name in ``calibrate.CALIBRATORS`` ('isotonic' is one-vs-rest and
    may change labels).

    Without a dev set: ``DEFAULT_MODEL`` fitted on ``L_train``, uncalibrated (``report_`` says so and
    carries the default's own held-out-LF selection).
    """
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if calibration != "auto":
        make_calibrator(calibration)
    votes = as_votes(L_train, cardinality)
    k = votes.k
    if (L_dev is None) != (y_dev is None):
        raise ConfigError("pass both L_dev and y_dev (dev votes and their gold labels), or neither")
    if L_dev is None:
        model = make_model(DEFAULT_MODEL, k, random_state)
        return CalibratedLabelModel(model, random_state=random_state).fit(L_train, selection={
            "chosen": DEFAULT_MODEL, "calibration": "none", "metric": None, "candidates": [],
            "reason": f"no dev set: the documented default '{DEFAULT_MODEL}', uncalibrated"})
    dev = as_votes(L_dev, k, what="L_dev")
    y_dev = check_labels(y_dev, dev.n, k)
    if not candidates:
        raise ConfigError("candidates is empty: give at least one label model")
    rng = np.random.default_rng(random_state)
    many = too_costly_for_full_ds(votes.m, k) and candidates is DEFAULT_CANDIDATES
    if many:
        n_folds = min(n_folds, MANY_CLASS_FOLDS)
    folds = _folds(dev.n, n_folds, rng)
    rows, probas, models, skipped = [], {}, {}, {}
    shared: dict = {}  # the no-gold default fitted on L_train once, for candidates built on it (bias-dev)
    for spec in candidates:
        name = _name(spec)
        why = _skip_reason(spec, k, many, dev.n)
        if why:
            skipped[name] = why
            continue
        if name in probas:
            raise ConfigError(f"candidate '{name}' is listed twice")
        row, probas[name], models[name] = _score_candidate(spec, L_train, L_dev, dev, y_dev, k, folds,
                                                           calibration=calibration, random_state=random_state,
                                                           shared=shared)
        if name == DEFAULT_MODEL and isinstance(spec, str):
            shared[DEFAULT_MODEL] = models[name]
        rows.append(row)
    if not rows:
        raise ConfigError(f"no candidate could run: {skipped}")
    best = _choose(rows, metric, dev.n, probas, y_dev, covered=dev.covered(), random_state=random_state)
    chosen = rows[best]
    selection = {"chosen": chosen["name"], "metric": metric, "reason": chosen.pop("_reason"),
                 "candidates": [{k_: v for k_, v in r.items() if not k_.startswith("_")} for r in rows],
                 "skipped": skipped, "n_folds": len(folds)}
    out = CalibratedLabelModel(models[chosen["name"]], chosen["calibration"], prefit=True, random_state=random_state)
    # Calibrated on the dev probabilities the choice was made on (out-of-fold for dev-trained candidates).
    return out.fit(L_train, y_dev, L_dev, dev_proba=probas[chosen["name"]], selection=selection)


def _skip_reason(spec, k: int, many: bool, n_dev: int) -> str | None:
    """Why a candidate does not run here (its extra is not installed; too many classes for full Dawid-Skene; it
    learns from the dev labels and one dev row cannot score it out-of-fold)."""
    if isinstance(spec, str) and spec in OPTIONAL_CANDIDATES and not OPTIONAL_CANDIDATES[spec]():
        return "not installed"
    if _uses_dev(spec) and n_dev < 2:
        return f"{n_dev} dev row: a model fitted on the dev labels needs 2 or more to be scored out-of-fold"
    if many and spec in FULL_DS:
        return f"{k} classes: LFs x {k} x {k} confusion parameters > {FULL_DS_MAX_PARAMS:,}"
    return None


def _on_shared_base(spec, k: int, random_state, L_train, shared: dict):
    """``make_model(spec)``; a ``ClassBias`` on the no-gold default gets that default fitted once on ``L_train``
    (``shared``, filled by the ``heldout`` candidate or here) instead of refitting it in every dev fold: the same
    model, as it never reads the dev labels."""
    m = make_model(spec, k, random_state)
    if isinstance(m, ClassBias) and m.base is None and not m.prefit:
        if DEFAULT_MODEL not in shared:
            shared[DEFAULT_MODEL] = make_model(DEFAULT_MODEL, k, random_state).fit(L_train)
        m.base, m.prefit = shared[DEFAULT_MODEL], True
    return m


def _score_candidate(spec, L_train, L_dev, dev, y_dev, k: int, folds, *, calibration: str, random_state,
                     shared: dict | None = None):
    """Fit one candidate on the training votes and score it on the dev set; a candidate that learns from the
    dev labels is scored out-of-fold. Returns its report row, its dev probabilities and the fitted model."""
    t0 = time.perf_counter()
    shared = {} if shared is None else shared
    if _uses_dev(spec):
        proba = np.empty((dev.n, k))
        for f in folds:
            rest = np.setdiff1d(np.arange(dev.n), f)
            m = _on_shared_base(spec, k, random_state, L_train, shared).fit(L_train, y_dev[rest], _rows(dev, rest))
            proba[f] = m.predict_proba(_rows(dev, f))
        model = _on_shared_base(spec, k, random_state, L_train, shared).fit(L_train, y_dev, L_dev)
    else:
        model = make_model(spec, k, random_state)
        model.fit(L_train)
        proba = model.predict_proba(L_dev)
    fit_s = time.perf_counter() - t0
    methods = ARGMAX_PRESERVING if calibration == "auto" else (calibration,)
    cal_losses = {c: _cv_calibrated_loss(proba, y_dev, c, folds) for c in methods}
    cal = min(cal_losses, key=cal_losses.get)
    acc = expected_accuracy(proba, y_dev)
    row = {"name": _name(spec), "model": repr(model), "uses_dev_labels": _uses_dev(spec),
           "dev_accuracy": acc, "dev_macro_f1": _macro_f1(y_dev, _labels(proba, random_state), k),
           "dev_log_loss": log_loss(proba, y_dev),
           "dev_ece": expected_calibration_error(proba, y_dev), "calibration": cal,
           "dev_log_loss_calibrated_cv": cal_losses[cal], "fit_seconds": fit_s}
    return row, proba, model


#: What ``select_label_model`` can choose by.
METRICS = ("accuracy", "macro_f1", "log_loss")
#: What ``aggregate --metric`` (and ``aggregate_votes``) offers a user: the label's metrics, not log-loss.
LABEL_METRICS = METRICS[:2]


def _labels(proba: np.ndarray, random_state) -> np.ndarray:
    return break_ties(proba, np.ones(len(proba), bool), "random", "prior", random_state)


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes in ``y`` or ``pred`` (``multilabel_f1`` on one-hot rows: the same formula as
    the paired bootstrap's)."""
    eye = np.eye(k, dtype=bool)
    return multilabel_f1(eye[y], eye[pred])["macro_f1"] if len(y) else float("nan")


def _item_correct(proba, y, tol: float = 1e-9) -> np.ndarray:
    """Per dev item, the chance its label is right with ties broken at random (mean = expected_accuracy)."""
    tied = proba >= proba.max(axis=1, keepdims=True) - tol
    return tied[np.arange(len(y)), y] / tied.sum(axis=1)


#: Standard errors of the paired dev difference (on the voted dev rows) a candidate must lead the no-dev default
#: by. 1.645 (the safety net's one-sided 5%) was measured on the 26 vote sets: it kept the default on irony:emb35
#: and agnews:emb0, where the candidate was 1.2 and 0.6 test points better, and changed nothing else.
DEV_MARGIN_SE = 1.0


def _choose(rows: list[dict], metric: str, n: int, probas: dict | None = None, y=None, covered=None,
            margin: float | None = None, random_state=0) -> int:
    loss = np.array([r["dev_log_loss_calibrated_cv"] for r in rows])
    if metric == "log_loss":
        i = int(np.argmin(loss))
        rows[i]["_reason"] = f"lowest cross-validated calibrated dev log-loss ({loss[i]:.4f})"
        return i
    acc = np.array([r["dev_accuracy"] for r in rows])
    names = [r["name"] for r in rows]
    if DEFAULT_MODEL in names and probas is not None:
        # The no-dev default is the reference: a small dev set must show a clear gain (more than one standard
        # error of the paired per-item difference) before a model fitted or chosen on it replaces the default;
        # otherwise the candidate that wins on a few hundred items is often the one that fits their noise.
        r = names.index(DEFAULT_MODEL)
        margin = DEV_MARGIN_SE if margin is None else margin
        # Only the dev rows some LF voted on: on the others every model predicts its class prior, which says
        # nothing about how it reads votes (and the chosen model's prior there is set from the dev rows
        # themselves, ``uncovered_prior``). Scored on every row, a model worse on each voted row won on
        # GoEmotions by guessing the commonest emotion for the 43% no LF voted on (+16.6 dev points; -4.3 on
        # the voted test rows).
        on = np.ones(len(y), bool) if covered is None else np.asarray(covered, bool)
        if not on.any():
            rows[r]["_reason"] = f"no LF voted on any dev row: the no-dev default '{DEFAULT_MODEL}' is kept"
            return r
        gains, ses = _gains_over(r, names, probas, y, on, metric, random_state)
        for j in range(len(rows)):
            if j != r:
                rows[j]["dev_gain_over_default"], rows[j]["dev_gain_se"] = gains[j], ses[j]
        clear = np.flatnonzero(gains > margin * ses)
        where = f"on the {int(on.sum())} dev rows some LF voted on" + (" (macro-F1)" if metric == "macro_f1" else "")
        if clear.size == 0:
            rows[r]["_reason"] = (f"no candidate beats the no-dev default '{DEFAULT_MODEL}' {where} by more than "
                                  f"{margin:g} standard errors of the paired difference")
            return r
        i = int(clear[np.argmax(gains[clear])])
        rows[i]["_reason"] = (f"beats the no-dev default '{DEFAULT_MODEL}' {where} by {gains[i]:+.4f} > {margin:g} "
                              f"paired standard errors ({ses[i]:.4f}); the largest such gain")
        return i
    if metric == "macro_f1" and probas is not None:
        f1 = np.array([r["dev_macro_f1"] for r in rows])
        i = int(np.lexsort((loss, -f1))[0])
        rows[i]["_reason"] = (f"the highest dev macro-F1 ({f1[i]:.4f}; ties to the lowest cross-validated calibrated "
                              f"dev log-loss)")
        return i
    top = acc.max()
    se = np.sqrt(max(top * (1 - top), 1e-12) / n)
    tied = np.flatnonzero(acc >= top - se)
    i = int(tied[np.argmin(loss[tied])])
    tied_names = ", ".join(rows[j]["name"] for j in tied)
    rows[i]["_reason"] = (f"dev accuracy {acc[i]:.4f} is within one standard error ({se:.4f}) of the best "
                          f"({top:.4f}); among those ({tied_names}) it has the lowest cross-validated calibrated "
                          f"dev log-loss ({loss[i]:.4f})")
    return i


def _gains_over(r: int, names: list[str], probas: dict, y: np.ndarray, on: np.ndarray, metric: str, random_state):
    """Each candidate's dev gain over candidate ``r`` on the rows ``on``, and its standard error: per-item
    accuracy differences (ties in expectation), or macro-F1 with a seeded paired bootstrap."""
    gains, ses = np.full(len(names), -np.inf), np.zeros(len(names))
    y_on = y[on]
    if metric == "macro_f1":
        k = probas[names[r]].shape[1]
        eye = np.eye(k, dtype=bool)
        preds = {name: _labels(probas[name][on], random_state) for name in names}
        ref_f1 = _macro_f1(y_on, preds[names[r]], k)
    else:
        ref = _item_correct(probas[names[r]][on], y_on)
    for j, name in enumerate(names):
        if j == r:
            continue
        if metric == "macro_f1":
            gains[j] = _macro_f1(y_on, preds[name], k) - ref_f1
            ses[j] = paired_macro_f1_se(eye[preds[name]], eye[preds[names[r]]], eye[y_on], seed=0)
        else:
            d = _item_correct(probas[name][on], y_on) - ref
            gains[j], ses[j] = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.inf
    return gains, ses
