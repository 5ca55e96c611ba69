"""Probability calibration fitted on a gold dev set, and calibration metrics.

``TemperatureScaling`` (one parameter: safe on tiny dev sets), ``IsotonicCalibrator`` (one-vs-rest,
monotone per class: fixes any monotone distortion but needs more dev items, and can change the argmax)
and ``TopLabelIsotonic`` (isotonic on the top-label confidence only; labels unchanged). ``CalibratedLabelModel`` wraps
a fitted label model so the result keeps the ``predict_proba`` / ``predict`` interface.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..errors import ConfigError, InputError
from ..metrics import expected_calibration_error  # noqa: F401 - re-exported
from .base import LabelModel, as_votes, check_labels
from .rowops import softmax_rows

_EPS = 1e-6


def _check(proba, y=None):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] == 0 or proba.shape[1] < 2:
        raise InputError(f"probabilities must be an (n x k) array with n >= 1 and k >= 2, got shape {proba.shape}")
    if y is None:
        return proba
    return proba, check_labels(y, proba.shape[0], proba.shape[1], "y")


def log_loss(proba, y, eps: float = _EPS) -> float:
    """Mean negative log-probability of the gold class (probabilities clipped at ``eps``)."""
    proba, y = _check(proba, y)
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], eps, 1.0))))


def expected_accuracy(proba, y, tol: float = 1e-9) -> float:
    """Accuracy with ties broken at random, in expectation (each tied top class counts 1/#tied)."""
    proba, y = _check(proba, y)
    tied = proba >= proba.max(axis=1, keepdims=True) - tol
    return float(np.mean(tied[np.arange(len(y)), y] / tied.sum(axis=1)))


class TemperatureScaling:
    """``softmax(log p / T)`` with T fitted by dev log-loss (T > 1 softens over-confident models)."""

    def fit(self, proba, y) -> TemperatureScaling:
        proba, y = _check(proba, y)
        logp = np.log(np.clip(proba, _EPS, 1.0))
        idx = np.arange(len(y))

        def nll(log_t):
            z = logp / np.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[idx, y]))

        res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(100.0)), method="bounded")
        self.temperature_ = float(np.exp(res.x))
        return self

    def transform(self, proba) -> np.ndarray:
        proba = _check(proba)
        return softmax_rows(np.log(np.clip(proba, _EPS, 1.0)) / self.temperature_)


def isotonic_fit(x: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(xs, fitted)`` of the non-decreasing least-squares fit of ``target`` on ``x``."""
    xs, inv = np.unique(x, return_inverse=True)
    w = np.bincount(inv).astype(float)
    mean = np.bincount(inv, weights=target) / w
    from scipy.optimize import isotonic_regression  # scipy >= 1.12 (the floor in pyproject.toml)

    fitted = isotonic_regression(mean, weights=w).x
    return xs, np.asarray(fitted, float)


class IsotonicCalibrator:
    """One-vs-rest isotonic regression of ``1[y = c]`` on ``p_c``, rows renormalised.

    Binary problems calibrate the positive class only (p_0 = 1 - p_1). Outputs are kept inside
    ``[1/(n+2), 1 - 1/(n+2)]`` so a small dev set cannot produce a certain-and-wrong 0 or 1.
    """

    def fit(self, proba, y) -> IsotonicCalibrator:
        proba, y = _check(proba, y)
        n, k = proba.shape
        self.n_classes_ = k
        self.floor_ = 1.0 / (n + 2)
        classes = [1] if k == 2 else range(k)
        self.knots_ = {c: isotonic_fit(proba[:, c], (y == c).astype(float)) for c in classes}
        return self

    def transform(self, proba) -> np.ndarray:
        proba = _check(proba)
        if proba.shape[1] != self.n_classes_:
            raise InputError(f"calibrator was fitted on {self.n_classes_} classes, got {proba.shape[1]}")
        lo, hi = self.floor_, 1 - self.floor_
        if self.n_classes_ == 2:
            xs, fy = self.knots_[1]
            p1 = np.clip(np.interp(proba[:, 1], xs, fy), lo, hi)
            return np.stack([1 - p1, p1], axis=1)
        out = np.empty_like(proba)
        for c, (xs, fy) in self.knots_.items():  # loop over classes, not items
            out[:, c] = np.clip(np.interp(proba[:, c], xs, fy), lo, hi)
        return out / out.sum(axis=1, keepdims=True)


class TopLabelIsotonic:
    """Isotonic map of the top-label confidence to P(top label is right); the argmax never changes.

    The other classes share the remaining mass in their old proportions. Use it when calibration must
    fix confidences without touching the labels a model was chosen for (``select_label_model``'s 'auto').
    Rows whose top is tied are left as they are: raising one of the tied classes would pick a label (the
    first tied class, always) that the model never chose and the dev rows never scored.
    """

    def fit(self, proba, y) -> TopLabelIsotonic:
        proba, y = _check(proba, y)
        self.floor_ = 1.0 / (len(y) + 2)
        correct = (proba.argmax(axis=1) == y).astype(float)
        self.knots_ = isotonic_fit(proba.max(axis=1), correct)
        return self

    def transform(self, proba) -> np.ndarray:
        proba = _check(proba)
        n, k = proba.shape
        top = proba.argmax(axis=1)
        idx = np.arange(n)
        conf = proba[idx, top]
        second = np.partition(proba, k - 2, axis=1)[:, k - 2]
        new = np.clip(np.interp(conf, *self.knots_), self.floor_, 1 - self.floor_)
        # Smallest confidence that keeps the top class on top once the others are rescaled.
        new = np.minimum(np.maximum(new, second / np.maximum(1 - conf + second, 1e-12) + 1e-9), 1.0)
        rest = 1 - conf
        scale = np.divide(1 - new, rest, out=np.zeros(n), where=rest > 1e-12)
        out = proba * scale[:, None]
        flat = rest <= 1e-12  # a one-hot row: spread the freed mass evenly over the other classes
        out[flat] = ((1 - new[flat]) / (k - 1))[:, None]
        out[idx, top] = new
        tied = second >= conf - 1e-9  # break_ties' tolerance: what predict will break at random
        out[tied] = proba[tied]
        return out


class IdentityCalibrator:
    """No calibration (kept so reports can say 'none' and the interface stays the same)."""

    def fit(self, proba, y) -> IdentityCalibrator:
        return self

    def transform(self, proba) -> np.ndarray:
        return _check(proba).copy()


CALIBRATORS = {"none": IdentityCalibrator, "temperature": TemperatureScaling, "isotonic": IsotonicCalibrator,
               "isotonic-top": TopLabelIsotonic}
#: What calibration='auto' chooses among: the ones that never change a row's predicted label.
ARGMAX_PRESERVING = ("none", "temperature", "isotonic-top")


def make_calibrator(method: str):
    if method not in CALIBRATORS:
        raise ConfigError(f"calibration must be one of {sorted(CALIBRATORS)} or 'auto', got {method!r}")
    return CALIBRATORS[method]()


def uncovered_prior(prior: np.ndarray, L_dev, y_dev: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """``(P(y | no LF voted), dev rows it rests on)``: the class frequencies of the dev rows no LF voted on,
    smoothed towards ``prior`` by ``k`` pseudo-rows (a Dirichlet prior with one row's weight per class).

    A model's own prior comes from the rows the LFs voted on, and those are not a sample of the rows they
    missed (GoEmotions: the LFs miss 43% of the items, most of them "neutral", a class the LFs rarely vote).
    The dev rows are such a sample. With no uncovered dev row the prior is returned unchanged."""
    unc = ~as_votes(L_dev, k, what="L_dev").covered()
    n = int(unc.sum())
    if not n:
        return prior, 0
    counts = np.bincount(np.asarray(y_dev)[unc], minlength=k).astype(float)
    p = (counts + k * np.asarray(prior, float)) / (n + k)
    return p / p.sum(), n


class CalibratedLabelModel(LabelModel):
    """A label model with a calibrator fitted on a gold dev set; keeps the ``predict_proba`` / ``predict``
    interface.

    Parameters
    ----------
    base : a ``LabelModel``; fitted by ``fit`` on the training votes (with the dev set when it learns from
        one) unless ``prefit``.
    calibration : a name in ``CALIBRATORS`` ('none', 'temperature', 'isotonic', 'isotonic-top') or a
        calibrator object with ``fit(proba, y)`` / ``transform(proba)``; fitted in ``fit`` on the dev
        rows. Without a dev set only an already fitted calibrator object is applied.
    prefit : ``base`` is already fitted; ``fit`` only calibrates.

    ``fit(L, y_dev=None, L_dev=None, dev_proba=None, selection=None)``: ``dev_proba`` are dev
    probabilities to calibrate on instead of ``base_.predict_proba(L_dev)`` (out-of-fold ones, when the
    base learned from those very dev labels); ``selection`` is how the base was chosen, kept in ``report_``.

    Learned: ``base_``, ``calibrator_``, ``class_prior_`` (what rows no LF voted on get: the calibrated base
    prior, or with a dev set that has such rows the dev estimate of P(y | no LF voted), ``uncovered_prior``),
    ``report_`` (chosen model, calibration, dev ECE before and after, the selection record).
    """

    def __init__(self, base: LabelModel | None = None, calibration="none", prefit: bool = False,
                 random_state: int | None = 0):
        super().__init__(None, random_state)
        self.base = base
        self.calibration = calibration
        self.prefit = prefit

    def fit(self, L, y_dev=None, L_dev=None, lf_names=None, dev_proba=None, selection: dict | None = None):
        if not isinstance(self.base, LabelModel):
            raise ConfigError(f"CalibratedLabelModel needs a LabelModel as base, got {self.base!r}")
        if (y_dev is None) != (L_dev is None):
            raise ConfigError("pass both L_dev and y_dev (dev votes and their gold labels), or neither")
        if self.prefit:
            self.base._check_fitted()
            base = self.base
        else:
            base = self.base.clone().fit(L, y_dev, L_dev, lf_names=lf_names)
        cal = self.calibration
        calibrator = make_calibrator(cal) if isinstance(cal, str) else cal
        rep = {"chosen": (selection or {}).get("chosen", type(base).__name__), "model": repr(base)}
        if y_dev is not None:
            proba = base.predict_proba(L_dev) if dev_proba is None else _check(dev_proba)
            y = check_labels(y_dev, proba.shape[0], proba.shape[1], "y_dev")
            calibrator.fit(proba, y)
            rep.update(n_dev=int(len(y)), dev_ece_before=expected_calibration_error(proba, y),
                       dev_ece_after_in_sample=expected_calibration_error(calibrator.transform(proba), y))
        elif isinstance(cal, str) and cal != "none":
            raise ConfigError(f"calibration '{cal}' needs a dev set: fit(L, y_dev=..., L_dev=...)")
        self.base_, self.calibrator_ = base, calibrator
        self.cardinality_, self.n_lfs_, self.lf_names_ = base.cardinality_, base.n_lfs_, base.lf_names_
        self.class_prior_ = calibrator.transform(base.class_prior_[None, :])[0]
        if y_dev is not None:
            self.class_prior_, n_unc = uncovered_prior(self.class_prior_, L_dev, y, base.cardinality_)
            rep["uncovered_prior_from_dev_rows"] = n_unc
        rep["calibration"] = cal if isinstance(cal, str) else type(cal).__name__
        if getattr(base, "selection_", None):  # the no-gold default says which model it kept and why
            rep.setdefault("unsupervised_selection", base.selection_)
        rep.update(selection or {})
        if "reason" not in rep:
            rep["reason"] = (f"{'prefit' if self.prefit else 'fitted'} {rep['chosen']}, calibration "
                             f"{rep['calibration']}" + ("" if y_dev is not None else ", no dev set"))
        self.report_ = rep
        return self

    def _row_wise(self) -> bool:  # every calibrator maps a row of probabilities on its own
        return self.base_._row_wise()

    def _proba(self, votes):
        return self.calibrator_.transform(self.base_._proba(votes))

    def lf_terms(self, votes):
        return self.base_.lf_terms(votes)

    def __repr__(self) -> str:
        return f"CalibratedLabelModel({self.base!r}, calibration={self.calibration!r}, prefit={self.prefit})"
