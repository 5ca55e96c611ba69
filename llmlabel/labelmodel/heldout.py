"""The no-gold default: majority vote, left only on held-out evidence that another model is better.

Without gold labels a model cannot be scored against the truth, but every LF is a noisy witness of it.
Hold LF j out (with the LFs that nearly duplicate it, ``redundancy.redundant_groups``), *refit* the model
on the other LFs' votes, and count how often its label matches LF j's vote on the items LF j votes on where
some other LF votes too. If LF j errs independently of the rest given the true class and beats chance, that
agreement rises with the accuracy of the held-out posterior. LFs weigh per class (``class_share_weights``:
each class's LFs together as much as another's), so neither a broad LF nor the class with most of the
keyword LFs decides the score.

The reference is plain majority vote (``mv``): no parameters, nothing fitted, so nothing to get wrong. When it
is kept, its ties are broken by the class-balanced score of the unipolar LFs' votes (``ties='balanced'``, shipped
as ``mvt``) instead of at random: only rows plain counting leaves tied change (WRENCH semeval, whose LFs cast at
most two votes an item, so that no held-out LF can witness anything: 0.770 -> 0.825; over the 26 visible vote
sets never below random ties; eval/results/labelmodel-ties.md). The evidence is still measured against plain
majority vote: against the tie-broken vote a held-out LF's own class loses every tie the rule gives away, and
an EM model that is worse passed the test on one synthetic imbalanced matrix.
A candidate replaces it only when all of these hold (``selection_`` records each):

- its paired held-out-agreement gain over majority vote exceeds ``margin`` standard errors;
- the gain is measured on at least ``min_lfs`` LFs (sparse keyword LFs that rarely co-fire leave few LFs
  to score: WRENCH semeval scores 6 of 164, and a 1-s.e. margin on six LFs picked a model 9 points below
  majority vote);
- a fitted model's (EM, HyperLM) predicted class shares stay within ``max_shift`` (total variation) of
  majority vote's: the EM failures seen on imbalanced relation sets hand most contested items to the biggest
  class. Vote counts (``mvb``) are exempt: moving class shares is what class balancing is for (Banking77's
  key phrases: shares moved 0.24, accuracy 0.461 -> 0.579), and across the visible sets the balanced vote
  never fell more than 0.001 below majority vote (eval/results/labelmodel.md). Only the held-out test keeps it
  out where balancing is wrong: on synthetic keyword LFs spread over classes regardless of their frequency it is
  8-21 points below majority vote, and its held-out gain stays below 1.5 s.e. (labelmodel-evidence.md).

Why refits: a model fitted with LF j in the data has learned from LF j, so removing LF j's share of the
logits afterwards (a one-step approximation) still leaks it; measured over the visible sets, that shortcut
did not track accuracy (eval/results/labelmodel.md, "criterion"). Count models refit in microseconds; EM
models refit warm-started, on a seeded subset of at most ``max_refits`` of the scorable LFs.

HyperLM joins the candidates when it is installed (``pip install llmlabel[hyperlm]``), the matrix has at
most ``hyperlm_max_rows`` rows and there are fewer than ``MANY_CLASSES`` classes.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .base import LabelModel, Votes
from .rowops import row_max
from .dawid_skene import DawidSkene, OneCoinDawidSkene
from .hyperlm import HyperLM, hyperlm_available
from .majority import MajorityVote, WeightedVote, lf_class_totals
from .redundancy import agreement_jaccard, redundant_groups

#: Candidate names -> constructors (kept here, not in select.py, so select.py can offer this model).
CANDIDATES = {
    "mv": lambda kw: MajorityVote(**kw),
    "mvt": lambda kw: MajorityVote(ties="balanced", **kw),
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
DEFAULT_HELDOUT_CANDIDATES = ("mv", "mvb", "onecoin-r", "ds-r", "hyperlm")
#: The one-sided level, in normal standard deviations, of the test a candidate must pass. Not the safety net's
#: 1.645: over the 26 visible vote sets 1.645 differs from 2.0 on WRENCH trec only (the class-balanced vote at
#: 2.05 s.e., +1.6 points over the tie-broken vote, which would lift the WRENCH average past HyperLM's), but on the
#: synthetic imbalanced keyword matrices that reproduce the held-back relation-set failure it takes one-coin EM at
#: 2.06 s.e. (seed 1), 2.5 points below the tie-broken vote (tests/test_labelmodel_default.py). A lower bar for the
#: vote counts alone is not safe either: there the class-balanced vote is 8-21 points below majority vote on all 40
#: seeds and reaches 1.48 s.e. on one (eval/results/labelmodel-evidence.md).
MARGIN = 2.0
#: Candidates whose held-out refits are exact and cheap (``heldout_proba``): scored on every scorable LF.
COUNT_MODELS = (MajorityVote,)


def without(votes: Votes, group: np.ndarray) -> Votes:
    """The votes with the LFs in ``group`` silenced (hard: abstain; soft: their class columns zeroed)."""
    hard = votes.hard.copy()
    hard[:, group] = -1
    soft = votes.soft
    if soft is not None:
        keep = np.ones(votes.m * votes.k)
        keep[(np.asarray(group)[:, None] * votes.k + np.arange(votes.k)[None, :]).ravel()] = 0.0
        soft = (soft @ sp.diags(keep)).tocsr()
        soft.eliminate_zeros()
    return Votes(hard, soft, votes.k, votes.names)


def class_share_weights(votes: Votes) -> np.ndarray:
    """Per-LF weight ``1 / #LFs whose most-voted class is this LF's``: each class's LFs weigh as much in
    the held-out score as another's. With equal weights a class that has most of the (unipolar keyword)
    LFs decides the score, and a model that hands contested items to that class looks best (trec-like
    matrices: 12 LFs for one class, 2 for the others, and EM models that favour the first pass)."""
    per_lf = lf_class_totals(votes)[0]
    main = np.where(per_lf.sum(axis=1) > 0, per_lf.argmax(axis=1), -1)
    size = np.bincount(main[main >= 0], minlength=votes.k)
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


def _n_eff(x: np.ndarray, w: np.ndarray) -> float:
    ok = np.isfinite(x) & (w > 0)
    w = w[ok] / max(w[ok].sum(), 1e-300)
    return 1.0 / float(w @ w) if ok.any() else 0.0


def _critical(sigmas: float, n_eff: float) -> float:
    """How many standard errors a mean of ``n_eff`` paired per-LF differences must clear: the Student-t
    quantile at the one-sided level of ``sigmas`` normal standard deviations (few LFs: a wider margin)."""
    from scipy.special import ndtr, stdtrit  # scipy.stats costs seconds to import

    return float(stdtrit(max(n_eff - 1.0, 1.0), ndtr(sigmas)))


def scorable_rows(votes: Votes, groups: list[np.ndarray], min_votes: int = 5) -> dict[int, np.ndarray]:
    """LF j -> the items LF j votes on where some LF outside its group votes too (LFs with fewer than
    ``min_votes`` such items are left out: nothing else witnesses their votes)."""
    voted = votes.hard >= 0
    out = {}
    for j in range(votes.m):
        rows = np.flatnonzero(voted[:, j])
        rest = np.setdiff1d(np.arange(votes.m), groups[j])
        rows = rows[voted[np.ix_(rows, rest)].any(axis=1)] if len(rest) else rows[:0]
        if len(rows) >= min_votes:
            out[j] = rows
    return out


def refit_heldout_agreement(model: LabelModel, votes: Votes, groups: list[np.ndarray],
                            rows_of: dict[int, np.ndarray], jaccard: np.ndarray | None = None,
                            tol: float = 1e-9) -> np.ndarray:
    """For each LF j in ``rows_of``: the posterior of ``model`` fitted on the votes with j's group silenced,
    scored by how often its label matches LF j's vote on ``rows_of[j]`` (ties count 1/#tied); NaN for the
    other LFs. Vote-count models (``heldout_proba``) get the refit's exact answer without refitting; EM models
    (``refit_without_proba``) refit warm on one shared design with the group's terms silenced; the others are
    refitted from scratch once per held-out LF (the reason non-count models score a subset)."""
    out = np.full(votes.m, np.nan)
    fast = hasattr(model, "heldout_proba")
    totals = lf_class_totals(votes) if fast else None
    warm = not fast and hasattr(model, "refit_without_proba")
    context = model.heldout_context(votes) if warm and rows_of else None
    for j, rows in rows_of.items():
        if fast:
            z = model.heldout_proba(votes, groups[j], rows, jaccard, totals)
        elif warm:
            z = model.refit_without_proba(votes, context, groups[j], rows)
        else:
            masked = without(votes, groups[j])
            z = _refit(model, masked)._proba(masked.rows(rows))
        tied = z >= (row_max(z) - tol)[:, None]
        out[j] = float(np.mean(tied[np.arange(len(rows)), votes.hard[rows, j]] / np.count_nonzero(tied, axis=1)))
    return out


def _refit(model: LabelModel, votes: Votes, warm_iter: int = 10) -> LabelModel:
    """``model`` fitted on ``votes``: EM models start from their fitted parameters (``warm_start``) and run
    at most ``warm_iter`` iterations, which lands on the same fixed point as a cold start far sooner."""
    if "warm_start" in model.get_params():
        refit = copy.deepcopy(model).set_params(warm_start=True, max_iter=min(model.max_iter, warm_iter))
    else:
        refit = model.clone()
    return refit._fit_votes(votes)


def _shares(model: LabelModel, votes: Votes) -> np.ndarray:
    """Predicted class shares over the covered rows (argmax, ties split)."""
    cov = votes.covered()
    if not cov.any():
        return np.full(votes.k, 1.0 / votes.k)
    z = model._proba(votes.rows(np.flatnonzero(cov)))
    tied = z >= z.max(axis=1, keepdims=True) - 1e-9
    return (tied / tied.sum(axis=1, keepdims=True)).mean(axis=0)


class HeldOutSelect(LabelModel):
    """Majority vote unless held-out LF evidence shows another candidate is better (module docstring).

    Parameters
    ----------
    candidates : names in ``CANDIDATES`` or unfitted ``LabelModel`` instances; the first is the reference
        that is kept unless another passes every test below (default: plain majority vote).
    ties : how a kept majority-vote reference breaks its ties (``MajorityVote``'s ``ties``): 'balanced' (shipped
        as ``mvt``; module docstring) or 'random' (plain majority vote).
    margin : the one-sided level, in normal standard deviations, of the test a candidate's mean paired per-LF
        held-out agreement gain must pass; the bar is the Student-t quantile at that level times the standard
        error, with the LFs' effective number less one as degrees of freedom.
    min_lfs : LFs the paired difference must be measured on.
    max_shift : largest total-variation distance between a fitted candidate's (not a vote count's) predicted
        class shares and the reference's.
    max_select_rows : candidates are fitted and scored on a seeded uniform sample of at most this many
        rows; the chosen one is then refitted on every row (EM models: on ``max_refit_rows`` of them).
    min_select_rows, select_votes : the sample is as small as gives the sparser LFs (the 10th percentile
        of coverage) about ``select_votes`` votes each, but at least ``min_select_rows`` rows (5,000 and
        10,000 chose the same model on all 26 visible vote sets; the EM refits cost half as much).
    group_threshold : LFs whose agreement Jaccard with the held-out LF reaches this leave with it.
    refit_iter : EM iterations of that refit, started from the sample fit (warm start).
    max_refit_rows : that refit reads a seeded sample of at most this many rows (None: every row). EM's
        statistics settle at O(1/sqrt(rows)): past 10^5 rows more rows change little but cost a pass over
        10^6 (the refit was a third of the default's time at 10^6 rows); every row is still predicted.
    max_refits : scorable LFs held out (a seeded subset) for candidates that are not vote counts (EM,
        HyperLM); count models are scored on every scorable LF, and each candidate is compared with the
        reference on the LFs both were scored on.
    hyperlm_max_rows : HyperLM is transductive (it reruns on the whole matrix to predict), so it is a
        candidate only up to this many rows.

    Learned: ``chosen_`` (name), ``model_`` (the chosen model fitted on all rows), ``scores_`` (name ->
    mean held-out agreement), ``selection_`` (per-candidate evidence and the reason), ``class_prior_``.
    Never reads ``y_dev``: a dev set passed to ``fit`` is ignored (use ``select_label_model`` for that).
    """

    def __init__(self, cardinality: int | None = None, candidates=DEFAULT_HELDOUT_CANDIDATES, margin: float = MARGIN,
                 min_lfs: int = 10, max_shift: float = 0.1, max_select_rows: int = 20_000,
                 min_select_rows: int = 5_000, select_votes: int = 500, group_threshold: float = 0.5,
                 refit_iter: int = 1, max_refit_rows: int | None = 100_000, max_refits: int = 30,
                 hyperlm_max_rows: int = 100_000, ties: str = "balanced", random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.ties = ties
        self.max_refits = max_refits
        self.hyperlm_max_rows = hyperlm_max_rows
        self.refit_iter = refit_iter
        self.max_refit_rows = max_refit_rows
        self.candidates = candidates
        self.margin = margin
        self.min_lfs = min_lfs
        self.max_shift = max_shift
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

    def _sample(self, votes: Votes) -> Votes:
        coverage = (votes.hard >= 0).mean(axis=0)
        sparse = float(np.quantile(coverage[coverage > 0], 0.1)) if (coverage > 0).any() else 1.0
        rows = int(np.clip(self.select_votes / max(sparse, 1e-9), min(self.min_select_rows, self.max_select_rows),
                           self.max_select_rows))
        if votes.n <= rows:
            return votes
        idx = np.sort(np.random.default_rng(self.random_state).choice(votes.n, rows, replace=False))
        return votes.rows(idx)

    def _skip(self, spec, votes: Votes) -> str | None:
        k = votes.k
        if k >= MANY_CLASSES and spec in ("ds-r", "onecoin-r", "hyperlm"):
            return f"{k} classes >= {MANY_CLASSES}: " + (
                "k x (k+1) parameters per LF" if spec == "ds-r" else
                f"one network pass per class in each of {self.max_refits} refits" if spec == "hyperlm" else
                f"each of {self.max_refits} EM refits costs seconds")
        if isinstance(spec, str) and spec in OPTIONAL:
            if not OPTIONAL[spec]():
                return "not installed"
            if votes.n > self.hyperlm_max_rows:
                return f"{votes.n:,} rows > hyperlm_max_rows={self.hyperlm_max_rows:,}"
        return None

    def _fit(self, votes, dev, y_dev):
        if not self.candidates:
            raise ConfigError("candidates is empty: give at least one label model")
        if self.ties not in ("random", "balanced"):
            raise ConfigError(f"ties must be 'random' or 'balanced', got {self.ties!r}")
        sample = self._sample(votes)
        jaccard = agreement_jaccard(sample)
        groups = redundant_groups(sample, self.group_threshold, jaccard)
        rows_of = scorable_rows(sample, groups)
        scorable = np.array(sorted(rows_of), dtype=np.int64)
        subset = np.sort(np.random.default_rng(self.random_state).permutation(scorable)[: self.max_refits])
        lf_w = class_share_weights(sample)
        fitted, per_lf, skipped = {}, {}, {}
        for spec in self.candidates:
            why = self._skip(spec, votes)
            if why:
                skipped[spec if isinstance(spec, str) else type(spec).__name__] = why
                continue
            name, model = self._make(spec, votes.k)
            if name in fitted:
                raise ConfigError(f"candidate '{name}' is listed twice")
            model._fit_votes(sample)
            fitted[name] = model
            held = scorable if isinstance(model, COUNT_MODELS) else subset
            per_lf[name] = refit_heldout_agreement(model, sample, groups, {j: rows_of[j] for j in held}, jaccard)
        if not fitted:
            raise ConfigError(f"no candidate could run: {skipped}")
        names = list(fitted)
        ref = names[0]
        ref_shares = _shares(fitted[ref], sample)
        rows = []
        for n in names:
            mean, se, used = _wmean(per_lf[n] - per_lf[ref], lf_w)
            shift = 0.5 * float(np.abs(_shares(fitted[n], sample) - ref_shares).sum())
            need = None if se is None else _critical(self.margin, _n_eff(per_lf[n] - per_lf[ref], lf_w)) * se
            fails = [] if n == ref else [t for t, bad in (
                (f"{used} LFs scored < min_lfs={self.min_lfs}", used < self.min_lfs),
                (f"gain {mean:+.4f} <= {need or float('nan'):.4f} (one-sided t at {self.margin:g} sigma)",
                 need is None or not mean > need),
                (f"class shares moved {shift:.3f} > max_shift={self.max_shift:g}",
                 shift > self.max_shift and not isinstance(fitted[n], COUNT_MODELS))) if bad]
            rows.append({"name": n, "heldout_agreement": _wmean(per_lf[n], lf_w)[0],
                         "gain_over_reference": mean if used else 0.0, "se": se, "lfs_scored": used,
                         "class_shift": shift, "passes": n != ref and not fails, "why_not": fails})
        passing = [r for r in rows if r["passes"]]
        if passing:
            best = max(passing, key=lambda r: r["gain_over_reference"])
            chosen = best["name"]
            reason = (f"{chosen} predicts held-out LFs better than {ref} (+{best['gain_over_reference']:.4f}, se "
                      f"{best['se']:.4f}, on {best['lfs_scored']} LFs; class shares moved {best['class_shift']:.3f})")
        else:
            chosen = ref
            near = max((r for r in rows if r["name"] != ref), key=lambda r: r["gain_over_reference"], default=None)
            reason = f"keep {ref}: no candidate shows held-out evidence" + (
                f" (closest: {near['name']}, {'; '.join(near['why_not'])})" if near else "")
        model = fitted[chosen]
        if chosen == ref and isinstance(model, MajorityVote) and model.ties != self.ties:
            model = model.clone().set_params(ties=self.ties)
            model._fit_votes(votes)
            chosen = "mvt" if ref == "mv" and self.ties == "balanced" else f"{ref} (ties: {self.ties})"
            how = ("by the class-balanced score of the unipolar LFs' votes" if self.ties == "balanced"
                   else "at random")
            reason += f"; {ref}'s ties broken {how} ({chosen})"
        elif sample is not votes:
            if "warm_start" in model.get_params():
                model.set_params(warm_start=True, max_iter=self.refit_iter, max_fit_rows=self.max_refit_rows)
            else:
                model = model.clone()
            model._fit_votes(votes)
        self.chosen_, self.model_ = chosen, model
        self.scores_ = {r["name"]: r["heldout_agreement"] for r in rows}
        self.selection_ = {"chosen": chosen, "reason": reason, "rows_scored": int(sample.n),
                           "lfs_scorable": int(len(scorable)), "candidates": rows, "skipped": skipped}
        self.class_prior_ = model.class_prior_

    def _row_wise(self) -> bool:
        return self.model_._row_wise()

    def _proba(self, votes):
        return self.model_._proba(votes)

    def lf_terms(self, votes):
        if not hasattr(self.model_, "lf_terms"):
            raise ConfigError(f"the chosen model {self.chosen_} has no additive LF terms")
        return self.model_.lf_terms(votes)
