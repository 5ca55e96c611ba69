"""The no-gold default: choose among label models by how well each predicts an LF it was not shown.

Without gold labels a model cannot be scored against the truth, but every LF is a noisy witness of it.
Hold LF j out (with the LFs that nearly duplicate it, ``redundancy.redundant_groups``), take the model's
posterior from the *other* LFs' evidence only, and count how often its label matches LF j's vote on the
items LF j votes on. If LF j errs independently of the rest given the true class and beats chance, that
agreement rises with the accuracy of the held-out posterior, whatever LF j's own accuracy: a gold-free,
per-LF score. LFs weigh equally (a broad LF that fires everywhere does not drown the others).

The held-out posterior comes from the fitted model with LF j's additive share of the logits removed
(``lf_terms``), not from a refit: exact for majority vote, a one-step approximation for EM models.

Selection is conservative: majority vote, the model with no parameters to get wrong, stays unless a
candidate beats it by more than one standard error of the paired per-LF differences. Measured in
eval/results/labelmodel.md.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import LabelModel, Votes
from .dawid_skene import DawidSkene, OneCoinDawidSkene
from .majority import MajorityVote, WeightedVote
from .redundancy import heldout_agreement, redundant_groups

#: Candidate names -> constructors (kept here, not in select.py, so select.py can offer this model).
CANDIDATES = {
    "mv": lambda kw: MajorityVote(**kw),
    "mv-r": lambda kw: MajorityVote(redundancy=True, **kw),
    "wv": lambda kw: WeightedVote(weights="agreement", **kw),
    "wv-r": lambda kw: WeightedVote(weights="heldout", **kw),
    "ds": lambda kw: DawidSkene(use_dev=False, **kw),
    "ds-r": lambda kw: DawidSkene(use_dev=False, redundancy=True, **kw),
    "onecoin": lambda kw: OneCoinDawidSkene(use_dev=False, **kw),
    "onecoin-r": lambda kw: OneCoinDawidSkene(use_dev=False, redundancy=True, **kw),
}
DEFAULT_HELDOUT_CANDIDATES = ("mv", "wv-r", "onecoin-r", "ds-r")


def _subset(votes: Votes, idx: np.ndarray) -> Votes:
    return Votes(votes.hard[idx], None if votes.soft is None else votes.soft[idx], votes.k, votes.names)


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
    group_threshold : LFs whose agreement Jaccard with the held-out LF reaches this leave with it.
    refit_iter : EM iterations of the refit on every row, started from the sample fit (warm start); a
        start from 50,000 rows is already close, so one full-data step is enough and keeps 10^6 rows fast.

    Learned: ``chosen_`` (name), ``model_`` (the chosen model fitted on all rows), ``scores_`` (name ->
    mean held-out agreement), ``selection_`` (per-candidate details and the reason), ``class_prior_``.
    Never reads ``y_dev``: a dev set passed to ``fit`` is ignored (use ``select_label_model`` for that).
    """

    def __init__(self, cardinality: int | None = None, candidates=DEFAULT_HELDOUT_CANDIDATES, margin: float = 1.0,
                 max_select_rows: int = 20_000, group_threshold: float = 0.5, refit_iter: int = 1,
                 random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.refit_iter = refit_iter
        self.candidates = candidates
        self.margin = margin
        self.max_select_rows = max_select_rows
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
        if votes.n > self.max_select_rows:
            idx = np.sort(np.random.default_rng(self.random_state).choice(votes.n, self.max_select_rows, replace=False))
            sample = _subset(votes, idx)
        groups = redundant_groups(sample, self.group_threshold)
        fitted, per_lf = {}, {}
        for spec in self.candidates:
            name, model = self._make(spec, k)
            if name in fitted:
                raise ConfigError(f"candidate '{name}' is listed twice")
            model.fit(sample.soft if sample.soft is not None else sample.hard, lf_names=votes.names)
            fitted[name], per_lf[name] = model, heldout_agreement(model, sample, groups)
        names = list(fitted)
        ref = names[0]
        scores = {n: float(np.nanmean(a)) if np.isfinite(a).any() else float("nan") for n, a in per_lf.items()}
        best = max(names, key=lambda n: -np.inf if np.isnan(scores[n]) else scores[n])
        rows = []
        for n in names:
            d = per_lf[n] - per_lf[ref]
            d = d[np.isfinite(d)]
            se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None  # None: cannot tell
            rows.append({"name": n, "heldout_agreement": scores[n], "gain_over_reference": float(d.mean()) if len(d)
                         else 0.0, "se": se})
        gain = next(r for r in rows if r["name"] == best)
        if best != ref and (gain["se"] is None or not gain["gain_over_reference"] > self.margin * gain["se"]):
            reason = (f"best held-out-LF agreement {best} ({scores[best]:.4f}) is within {self.margin:g} standard "
                      f"error(s) ({gain['se'] or float('nan'):.4f}) of {ref} ({scores[ref]:.4f}): keep {ref}")
            best = ref
        elif best == ref:
            reason = f"{ref} has the best held-out-LF agreement ({scores[ref]:.4f})"
        else:
            reason = (f"{best} predicts held-out LFs best ({scores[best]:.4f} vs {ref} {scores[ref]:.4f}, "
                      f"+{gain['gain_over_reference']:.4f} > {self.margin:g} x se {gain['se']:.4f})")
        model = fitted[best]
        if sample is not votes:
            if "warm_start" in model.get_params():
                model.set_params(warm_start=True, max_iter=self.refit_iter)
            else:
                model = model.clone()
            model.fit(votes.soft if votes.soft is not None else votes.hard, lf_names=votes.names)
        self.chosen_, self.model_, self.scores_ = best, model, scores
        self.selection_ = {"chosen": best, "reason": reason, "rows_scored": int(sample.n), "candidates": rows}
        self.class_prior_ = model.class_prior_

    def _proba(self, votes):
        return self.model_._proba(votes)

    def lf_terms(self, votes):
        return self.model_.lf_terms(votes)
