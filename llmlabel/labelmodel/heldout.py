"""The no-gold default: choose among label models by how well each predicts an LF it was not shown.

Without gold labels a model cannot be scored against the truth, but every LF is a noisy witness of it.
Hold LF j out (with the LFs that nearly duplicate it, ``redundancy.redundant_groups``), take the model's
posterior from the *other* LFs' evidence only, and count how often its label matches LF j's vote on the
items LF j votes on where some other LF votes too. If LF j errs independently of the rest given the true
class and beats chance, that agreement rises with the accuracy of the held-out posterior, whatever LF j's
own accuracy: a gold-free, per-LF score. LFs weigh per class (``class_share_weights``: each class's LFs
together as much as another's), so neither a broad LF that fires everywhere nor the class with most of
the keyword LFs decides the score. Items where no other LF votes are left out: there the held-out
posterior is only a guess from silence and the prior, and on unevenly spread keyword LFs that guess
favoured models that hand empty rows to the class with the most LFs (synthetic checks in
tests/test_labelmodel_default.py).

The held-out posterior comes from the fitted model with LF j's additive share of the logits removed
(``lf_terms``), not from a refit: exact for majority vote, a one-step approximation for EM models.
Models without additive terms (HyperLM) are refitted with the group's votes removed, on a seeded subset
of at most ``max_refits`` LFs, and compared with the reference on those LFs only.

The reference is majority vote with class balancing on unipolar LFs and near-duplicates discounted
(``mvb-r``: each class's votes divided by how many votes the class draws; plain counting when LFs vote
several classes). HyperLM joins the candidates when it is installed (``pip install llmlabel[hyperlm]``)
when the matrix has at most ``hyperlm_max_rows`` rows and there are fewer than ``MANY_CLASSES`` classes (it
runs one network pass per class); otherwise it is skipped, and ``selection_`` says why.

Selection is conservative: the reference, a vote count with no parameters to get wrong, stays unless a
candidate beats it by more than one standard error of the paired per-LF differences. Measured in
eval/results/labelmodel.md.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import LabelModel, Votes
from .dawid_skene import DawidSkene, OneCoinDawidSkene
from .hyperlm import HyperLM, hyperlm_available
from .majority import MajorityVote, WeightedVote
from .redundancy import heldout_agreement, redundant_groups

#: Candidate names -> constructors (kept here, not in select.py, so select.py can offer this model).
CANDIDATES = {
    "mv": lambda kw: MajorityVote(**kw),
    "mv-r": lambda kw: MajorityVote(redundancy=True, **kw),
    "mvb": lambda kw: MajorityVote(class_balance="auto", **kw),
    "mvb-r": lambda kw: MajorityVote(class_balance="auto", redundancy=True, **kw),
    "wv": lambda kw: WeightedVote(weights="agreement", **kw),
    "wv-r": lambda kw: WeightedVote(weights="heldout", **kw),
    "ds": lambda kw: DawidSkene(use_dev=False, **kw),
    "ds-r": lambda kw: DawidSkene(use_dev=False, redundancy=True, **kw),
    "onecoin": lambda kw: OneCoinDawidSkene(use_dev=False, **kw),
    "onecoin-r": lambda kw: OneCoinDawidSkene(use_dev=False, redundancy=True, **kw),
    "hyperlm": lambda kw: HyperLM(**kw),
}
#: Optional candidates: skipped (and said so in ``selection_``) when their package is missing.
OPTIONAL = {"hyperlm": hyperlm_available}
#: From this many classes on, the default candidates leave out the full Dawid-Skene model (select.py).
MANY_CLASSES = 21
DEFAULT_HELDOUT_CANDIDATES = ("mvb-r", "mv", "wv-r", "onecoin-r", "ds-r", "hyperlm")


def _subset(votes: Votes, idx: np.ndarray) -> Votes:
    return Votes(votes.hard[idx], None if votes.soft is None else votes.soft[idx], votes.k, votes.names)


def class_share_weights(votes: Votes) -> np.ndarray:
    """Per-LF weight ``1 / #LFs whose most-voted class is this LF's``: each class's LFs weigh as much in
    the held-out score as another's. With equal weights a class that has most of the (unipolar keyword)
    LFs decides the score, and a model that hands contested items to that class looks best (trec-like
    matrices: 12 LFs for one class, 2 for the others, and EM models that favour the first pass)."""
    k = votes.k
    hard = votes.hard
    flat = np.where(hard >= 0, hard + (np.arange(votes.m) * k)[None, :], votes.m * k)
    per_lf = np.bincount(flat.ravel(), minlength=votes.m * k + 1)[: votes.m * k].reshape(votes.m, k)
    main = np.where(per_lf.sum(axis=1) > 0, per_lf.argmax(axis=1), -1)
    size = np.bincount(main[main >= 0], minlength=k)
    return np.where(main >= 0, 1.0 / np.maximum(size[np.maximum(main, 0)], 1), 0.0)


def _wmean(x: np.ndarray, w: np.ndarray) -> tuple[float, float | None, int]:
    """Weighted mean over finite entries, its standard error (None below two entries) and their count."""
    ok = np.isfinite(x) & (w > 0)
    x, w = x[ok], w[ok]
    if not len(x):
        return float("nan"), None, 0
    w = w / w.sum()
    mean = float(w @ x)
    if len(x) < 2:
        return mean, None, 1
    n_eff = 1.0 / float(w @ w)  # Kish effective sample size of the weights
    var = float(w @ (x - mean) ** 2) * n_eff / (n_eff - 1) if n_eff > 1 else 0.0
    return mean, float(np.sqrt(var / n_eff)), int(len(x))


def refit_heldout_agreement(model: LabelModel, votes: Votes, groups: list[np.ndarray], lfs: np.ndarray,
                            min_votes: int = 5, tol: float = 1e-9) -> np.ndarray:
    """``heldout_agreement`` for a model without additive LF terms: for each LF j in ``lfs``, refit on the
    votes with j's group silenced and score the posterior on j's items (NaN elsewhere)."""
    out = np.full(votes.m, np.nan)
    for j in lfs:  # one refit per held-out LF: the reason ``lfs`` is capped
        rows = np.flatnonzero(votes.hard[:, j] >= 0)
        rest = np.setdiff1d(np.arange(votes.m), groups[j])  # the items heldout_agreement(other_votes=True) scores
        rows = rows[(votes.hard[np.ix_(rows, rest)] >= 0).any(axis=1)] if len(rest) else rows[:0]
        if len(rows) < min_votes:
            continue
        masked = votes.hard.copy()
        masked[:, groups[j]] = -1
        z = model.clone().fit(masked, lf_names=votes.names).predict_proba(masked)[rows]
        tied = z >= z.max(axis=1, keepdims=True) - tol
        out[j] = float(np.mean(tied[np.arange(len(rows)), votes.hard[rows, j]] / tied.sum(axis=1)))
    return out


class HeldOutSelect(LabelModel):
    """Fit each candidate without gold, keep the one that best predicts held-out LFs (module docstring).

    Parameters
    ----------
    candidates : names in ``CANDIDATES`` or unfitted ``LabelModel`` instances; the first is the reference
        that is kept unless another beats it by ``margin`` standard errors (default: majority vote).
    margin : standard errors of the paired per-LF agreement differences a candidate needs over the
        reference.
    max_select_rows : candidates are fitted and scored on a seeded uniform sample of at most this many
        rows; the chosen one is then refitted on every row.
    min_select_rows, select_votes : the sample is as small as gives the sparser LFs (the 10th percentile
        of coverage) about ``select_votes`` votes each, but at least ``min_select_rows`` rows: dense LFs
        need few rows to be scored, sparse keyword LFs need many.
    group_threshold : LFs whose agreement Jaccard with the held-out LF reaches this leave with it.
    refit_iter : EM iterations of the refit on every row, started from the sample fit (warm start); a
        start from 50,000 rows is already close, so one full-data step is enough and keeps 10^6 rows fast.
    max_refits : LFs held out by refitting, for candidates without additive LF terms (HyperLM).
    hyperlm_max_rows : HyperLM is transductive (it reruns on the whole matrix to predict), so it is a
        candidate only up to this many rows.

    Learned: ``chosen_`` (name), ``model_`` (the chosen model fitted on all rows), ``scores_`` (name ->
    mean held-out agreement), ``selection_`` (per-candidate details and the reason), ``class_prior_``.
    Never reads ``y_dev``: a dev set passed to ``fit`` is ignored (use ``select_label_model`` for that).
    """

    def __init__(self, cardinality: int | None = None, candidates=DEFAULT_HELDOUT_CANDIDATES, margin: float = 1.0,
                 max_select_rows: int = 20_000, min_select_rows: int = 10_000, select_votes: int = 500,
                 group_threshold: float = 0.5, refit_iter: int = 1,
                 max_refits: int = 20, hyperlm_max_rows: int = 100_000, random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.max_refits = max_refits
        self.hyperlm_max_rows = hyperlm_max_rows
        self.refit_iter = refit_iter
        self.candidates = candidates
        self.margin = margin
        self.max_select_rows = max_select_rows
        self.min_select_rows = min_select_rows
        self.select_votes = select_votes
        self.group_threshold = group_threshold

    def _make(self, spec, k: int) -> tuple[str, LabelModel]:
        if isinstance(spec, LabelModel):
            return type(spec).__name__, spec.clone()
        if spec not in CANDIDATES:
            raise ConfigError(f"unknown held-out candidate '{spec}'; choose from {', '.join(CANDIDATES)}")
        return spec, CANDIDATES[spec]({"cardinality": k, "random_state": self.random_state})

    def _fit(self, votes, dev, y_dev):
        if not self.candidates:
            raise ConfigError("candidates is empty: give at least one label model")
        k = votes.k
        sample = votes
        coverage = (votes.hard >= 0).mean(axis=0)
        sparse = float(np.quantile(coverage[coverage > 0], 0.1)) if (coverage > 0).any() else 1.0
        rows = int(np.clip(self.select_votes / max(sparse, 1e-9), min(self.min_select_rows, self.max_select_rows),
                           self.max_select_rows))
        if votes.n > rows:
            idx = np.sort(np.random.default_rng(self.random_state).choice(votes.n, rows, replace=False))
            sample = _subset(votes, idx)
        groups = redundant_groups(sample, self.group_threshold)
        fitted, per_lf, skipped = {}, {}, {}
        refit_lfs = np.sort(np.random.default_rng(self.random_state).permutation(votes.m)[: self.max_refits])
        many = k >= MANY_CLASSES and self.candidates == DEFAULT_HELDOUT_CANDIDATES
        for spec in self.candidates:
            if many and spec in ("ds-r", "hyperlm"):  # select.MANY_CLASSES
                skipped[spec] = (f"{k} classes >= {MANY_CLASSES}: " + ("k x (k+1) parameters per LF" if spec == "ds-r"
                                 else f"one network pass per class in each of up to {self.max_refits} refits"))
                continue
            if isinstance(spec, str) and spec in OPTIONAL:
                why = ("not installed" if not OPTIONAL[spec]() else
                       f"{votes.n:,} rows > hyperlm_max_rows={self.hyperlm_max_rows:,}"
                       if votes.n > self.hyperlm_max_rows else None)
                if why:
                    skipped[spec] = why
                    continue
            name, model = self._make(spec, k)
            if name in fitted:
                raise ConfigError(f"candidate '{name}' is listed twice")
            model.fit(sample.soft if sample.soft is not None else sample.hard, lf_names=votes.names)
            fitted[name] = model
            per_lf[name] = (heldout_agreement(model, sample, groups, other_votes=True) if hasattr(model, "lf_terms")
                            else refit_heldout_agreement(model, sample, groups, refit_lfs))
        if not fitted:
            raise ConfigError(f"no candidate could run: {skipped}")
        names = list(fitted)
        ref = names[0]
        lf_w = class_share_weights(sample)
        scores = {n: _wmean(a, lf_w)[0] for n, a in per_lf.items()}
        rows = []
        for n in names:
            # paired over the LFs both were scored on (a refit model: a subset)
            mean, se, used = _wmean(per_lf[n] - per_lf[ref], lf_w)
            rows.append({"name": n, "heldout_agreement": scores[n], "gain_over_reference": mean if used else 0.0,
                         "se": se, "lfs_scored": used})
        gain = max(rows, key=lambda r: r["gain_over_reference"] if r["name"] != ref else 0.0)
        best = gain["name"] if gain["gain_over_reference"] > 0 else ref
        g, se = gain["gain_over_reference"], gain["se"]
        if best != ref and (se is None or not g > self.margin * se):
            reason = (f"best held-out-LF agreement gain over {ref}: {best} (+{g:.4f} on {gain['lfs_scored']} LFs), "
                      f"within {self.margin:g} standard error(s) ({se or float('nan'):.4f}): keep {ref}")
            best = ref
        elif best == ref:
            reason = f"{ref} has the best held-out-LF agreement ({scores[ref]:.4f})"
        else:
            reason = (f"{best} predicts held-out LFs best (+{g:.4f} over {ref} on {gain['lfs_scored']} LFs "
                      f"> {self.margin:g} x se {se:.4f})")
        model = fitted[best]
        if sample is not votes:
            if "warm_start" in model.get_params():
                model.set_params(warm_start=True, max_iter=self.refit_iter)
            else:
                model = model.clone()
            model._fit_votes(votes)
        self.chosen_, self.model_, self.scores_ = best, model, scores
        self.selection_ = {"chosen": best, "reason": reason, "rows_scored": int(sample.n), "candidates": rows,
                           "skipped": skipped}
        self.class_prior_ = model.class_prior_

    def _proba(self, votes):
        return self.model_._proba(votes)

    def lf_terms(self, votes):
        if not hasattr(self.model_, "lf_terms"):
            raise ConfigError(f"the chosen model {self.chosen_} has no additive LF terms")
        return self.model_.lf_terms(votes)
