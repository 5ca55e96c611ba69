"""Majority vote and weighted (log-odds) vote."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .base import LabelModel, Votes
from .rowops import row_max, row_sum, softmax_rows


def class_counts(votes: Votes, weights: np.ndarray | None = None) -> np.ndarray:
    """(n x k) summed votes per class (soft votes add their probabilities); ``weights`` scale each LF."""
    n, m, k = votes.n, votes.m, votes.k
    w = np.ones(m) if weights is None else np.asarray(weights, float)
    if votes.soft is not None:
        fold = sp.csr_matrix((np.repeat(w, k), (np.arange(m * k), np.tile(np.arange(k), m))), shape=(m * k, k))
        return np.asarray((votes.soft @ fold).todense())
    hard = votes.hard
    # One bincount over flat (item, output) cells, abstain being output 0 of each item's k + 1 (dropped after):
    # no masking pass, and int32 cells where they fit (half the memory traffic on 10^6 x 20 votes).
    idx = np.int32 if n * (k + 1) < 2**31 - 1 else np.int64
    flat = (hard + 1).astype(idx, copy=False) + (np.arange(n, dtype=idx) * (k + 1))[:, None]
    weights = None if weights is None else np.broadcast_to(w, hard.shape).ravel()
    counts = np.bincount(flat.ravel(), weights=weights, minlength=n * (k + 1)).reshape(n, k + 1)
    return counts[:, 1:].astype(float)


def lf_class_totals(votes: Votes) -> tuple[np.ndarray, np.ndarray]:
    """Per LF, ``(hard, summed)`` (m x k): hard votes cast per class, and the votes' class mass (soft votes
    add their probabilities; equal to ``hard`` for hard votes)."""
    m, k = votes.m, votes.k
    v = votes.hard
    # One bincount over (LF, class) cells of the voted entries, read in the matrix's own (row-major) order.
    cells = (v + (np.arange(m, dtype=np.int64) * k)[None, :])[v >= 0]
    hard = np.bincount(cells, minlength=m * k).reshape(m, k).astype(float)
    if votes.soft is None:
        return hard, hard
    col = np.asarray(votes.soft.sum(axis=0)).ravel()
    return hard, col.reshape(votes.m, votes.k)


def _covered_mean(model, votes: Votes, max_rows: int = 200_000) -> np.ndarray | None:
    """The mean predicted class distribution over the rows some LF covers (the class-prior estimate for rows
    none covers), on a seeded sample of at most ``max_rows`` rows: a prior needs no 10^6-row pass."""
    if votes.n > max_rows:
        idx = np.sort(np.random.default_rng(model.random_state).choice(votes.n, max_rows, replace=False))
        votes = votes.rows(idx)
    cov = votes.covered()
    return model._proba(votes)[cov].mean(axis=0) if cov.any() else None


def _unipolar_lfs(per_lf: np.ndarray, purity: float = 0.95) -> np.ndarray:
    """Per LF: it votes, and at least ``purity`` of its votes are one class."""
    tot = per_lf.sum(axis=1)
    return (tot > 0) & (per_lf.max(axis=1) >= purity * tot)


def _unipolar(per_lf: np.ndarray, purity: float = 0.95) -> float:
    voting = per_lf.sum(axis=1) > 0
    return float(_unipolar_lfs(per_lf, purity)[voting].mean()) if voting.any() else 0.0


def unipolar_share(votes: Votes, purity: float = 0.95) -> float:
    """Share of the LFs that vote at all whose votes are at least ``purity`` one class (hard votes)."""
    return _unipolar(lf_class_totals(votes)[0], purity)


def resolve_prior(spec, k: int, estimate: np.ndarray | None, y_dev: np.ndarray | None = None) -> np.ndarray:
    """``class_prior`` parameter -> a probability vector.

    'estimate': from gold dev labels when given (add-one smoothed), else the model's own estimate;
    'uniform'; or an explicit length-k vector.
    """
    if isinstance(spec, str):
        if spec == "uniform":
            return np.full(k, 1.0 / k)
        if spec != "estimate":
            raise ConfigError(f"class_prior must be 'estimate', 'uniform' or a length-{k} vector, got {spec!r}")
        if y_dev is not None:
            cnt = np.bincount(y_dev, minlength=k) + 1.0
            return cnt / cnt.sum()
        if estimate is None:
            return np.full(k, 1.0 / k)
        est = np.clip(np.asarray(estimate, float), 1e-6, None)
        return est / est.sum()
    p = np.asarray(spec, float)
    if p.shape != (k,) or (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-6):
        raise ConfigError(f"class_prior must be a length-{k} probability vector, got {spec!r}")
    return p


def _inverse_scale(drawn: np.ndarray) -> np.ndarray:
    """Per class ``1 / votes drawn``, mean 1 over the classes that draw votes; a class no LF ever votes keeps
    scale 1: it has no votes to rescale."""
    scale = np.divide(1.0, drawn, out=np.zeros(len(drawn)), where=drawn > 0)
    pos = scale > 0
    scale[pos] /= scale[pos].mean() if pos.any() else 1.0
    scale[~pos] = 1.0
    return scale


class MajorityVote(LabelModel):
    """Each LF's vote counts once; probabilities are the vote shares (soft votes add their probabilities).

    ``class_prior_`` (returned for rows no LF covers): with 'estimate', the dev label frequencies when
    ``fit`` gets a dev set, else the mean vote share over covered training rows. ``redundancy=True``
    counts each LF with ``redundancy.redundancy_weights`` (d exact copies of an LF count once together);
    ``lf_weights_`` holds the weights (ones by default).

    ``class_balance=True`` divides each class's votes by how many votes that class draws per item on the
    training votes (``class_scale_``, mean 1). Keyword LFs are mostly unipolar and unevenly spread over
    the classes (trec: 68 LFs, one class with many more than another); plain counting then hands every
    contested item to the class with the most LFs, although one vote from a class that rarely gets votes
    is the stronger evidence. The scale is a likelihood ratio ``P(vote c | y = c) / P(vote c)`` with equal
    LF precision and no prior; it changes nothing when every class draws votes equally, and it is wrong
    when LFs vote every class with the class frequencies (then it removes the prior). ``'auto'``
    balances only when the LFs are unipolar (``unipolar_share`` >= 0.8: each LF puts >= 95% of its votes
    on one class), the keyword-LF case; ``HeldOutSelect`` still checks it against plain counting.

    ``ties='balanced'`` changes only rows whose top classes tie (which ``predict`` would break at random): the
    tied class whose votes weigh most when each unipolar LF's vote is divided by the votes its class draws from
    unipolar LFs (the likelihood-ratio argument above; LFs that vote several classes count plainly). A tie
    between two keyword LFs then goes to the class whose keywords fire less often: with equally precise unipolar
    LFs a vote's likelihood ratio grows as its class gets rarer, and a class whose LFs draw few votes is a rare
    one. It adds 1e-6 of the row's top count to the winning tied class, so every other row, and the
    probabilities, stay those of plain counting. Measured: eval/results/labelmodel-ties.md.
    """

    def __init__(self, cardinality: int | None = None, class_prior="estimate", redundancy: bool = False,
                 class_balance: bool = False, ties: str = "random", random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.class_prior = class_prior
        self.redundancy = redundancy
        self.class_balance = class_balance
        self.ties = ties

    def _fit(self, votes, dev, y_dev):
        from .redundancy import lf_weights

        if self.class_balance not in (True, False, "auto"):
            raise ConfigError(f"class_balance must be True, False or 'auto', got {self.class_balance!r}")
        if self.ties not in ("random", "balanced"):
            raise ConfigError(f"ties must be 'random' or 'balanced', got {self.ties!r}")
        self.lf_weights_ = lf_weights(votes, self.redundancy, self.random_state)
        totals = lf_class_totals(votes)
        self.class_scale_ = self._scale(totals, self.lf_weights_)
        self.tie_unipolar_, self.tie_scale_ = self._tie_rule(totals, self.lf_weights_)
        self.class_prior_ = resolve_prior(self.class_prior, votes.k, _covered_mean(self, votes), y_dev)

    def _scale(self, totals: tuple[np.ndarray, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """``class_scale_`` from the per-LF class totals ``(hard, summed)`` (``lf_class_totals``) of the LFs
        that count, weighted as they vote."""
        hard, summed = totals
        k = summed.shape[1]
        if not (self.class_balance is True or (self.class_balance == "auto" and _unipolar(hard) >= 0.8)):
            return np.ones(k)
        return _inverse_scale((weights if self.redundancy else (weights > 0).astype(float)) @ summed)

    def _tie_rule(self, totals: tuple[np.ndarray, np.ndarray], weights: np.ndarray):
        """``(unipolar LFs, per-class scale)`` of ``ties='balanced'`` from the per-LF class totals."""
        hard, summed = totals
        m, k = summed.shape
        if self.ties != "balanced":
            return np.zeros(m, bool), np.ones(k)
        uni = _unipolar_lfs(hard)
        w = weights if self.redundancy else (weights > 0).astype(float)
        return uni, _inverse_scale(np.bincount(hard.argmax(axis=1)[uni], weights=(w * summed.sum(axis=1))[uni],
                                               minlength=k))

    def _counts(self, votes: Votes, w: np.ndarray | None, scale, uni: np.ndarray, tie_scale: np.ndarray) -> np.ndarray:
        """The (scaled) vote counts, with ``ties='balanced'``'s nudge on the tied rows."""
        counts = class_counts(votes, w) * scale
        if self.ties != "balanced" or not uni.any():
            return counts
        top = row_max(counts)
        tied = counts >= (top - 1e-9 * np.maximum(top, 1e-12))[:, None]
        rows = np.flatnonzero((tied.sum(axis=1) > 1) & (top > 0))
        if not len(rows):
            return counts
        sub = votes.rows(rows)
        wv = np.ones(votes.m) if w is None else np.asarray(w, float)
        score = class_counts(sub, wv * uni) * tie_scale + class_counts(sub, wv * ~uni)
        score = np.where(tied[rows], score, -np.inf)
        # the winner gets the whole nudge: a graded one can vanish under a calibrator's temperature
        win = score >= (row_max(score) - 1e-12 * np.abs(row_max(score)))[:, None]
        counts[rows] += 1e-6 * top[rows, None] * win
        return counts

    def heldout_proba(self, votes: Votes, group: np.ndarray, rows: np.ndarray, jaccard: np.ndarray | None = None,
                      totals=None) -> np.ndarray:
        """Exactly what ``fit`` on ``votes`` with the LFs in ``group`` silenced would predict for ``rows``,
        without refitting: the redundancy weights and class scales are recomputed from the pairwise
        agreement ``jaccard`` (``redundancy.agreement_jaccard`` of ``votes``) and the per-LF class
        ``totals`` (``lf_class_totals``), both of which are per LF and so unchanged by removing others."""
        from .redundancy import redundancy_weights_from

        keep = np.ones(votes.m, bool)
        keep[group] = False
        if self.redundancy:
            if jaccard is None:
                from .redundancy import agreement_jaccard

                jaccard = agreement_jaccard(votes)
            w = redundancy_weights_from(jaccard, keep)
        else:
            w = keep.astype(float)
        hard, summed = totals if totals is not None else lf_class_totals(votes)
        scale = self._scale((hard[keep], summed[keep]), w[keep])
        uni, tie_scale = self._tie_rule((hard, summed), w * keep)
        sub = votes.rows(rows)
        counts = self._counts(sub, w, scale, uni & keep, tie_scale)
        tot = row_sum(counts)[:, None]
        return np.divide(counts, tot, out=np.full_like(counts, 1.0 / votes.k), where=tot > 0)

    def _row_wise(self) -> bool:
        return True

    def _proba(self, votes):
        uni = getattr(self, "tie_unipolar_", np.zeros(votes.m, bool))
        counts = self._counts(votes, None if self.redundancy is False else self.lf_weights_,
                              getattr(self, "class_scale_", 1.0), uni, getattr(self, "tie_scale_", np.ones(votes.k)))
        tot = row_sum(counts)[:, None]
        return np.divide(counts, tot, out=np.full_like(counts, 1.0 / votes.k), where=tot > 0)

    def lf_terms(self, votes: Votes):
        """``(base, term)``: vote counts are ``sum_j term(j)`` (see ``DawidSkene.lf_terms``)."""
        return np.zeros(votes.k), lambda j: lf_onehot(votes, j) * (self.lf_weights_[j] * self.class_scale_)


class WeightedVote(LabelModel):
    """Vote weighted by each LF's log-odds of being right: ``w_j = log(a_j (k-1) / (1 - a_j))``.

    That is the Bayes-optimal vote when LFs are independent and err uniformly ("one-coin"). Accuracies
    ``a_j`` come from ``weights``:

    - 'agreement': how often LF j agrees with the other LFs' votes on the items they share (no gold);
    - 'heldout': how often LF j agrees with the redundancy-discounted majority vote of the LFs that do
      not nearly duplicate it (``redundancy.heldout_agreement``; no gold), and every weight is multiplied
      by the LF's redundancy weight, so a correlated group of keyword LFs counts about once;
    - 'dev': gold accuracy on the dev set, shrunk toward the agreement estimate with ``dev_strength``
      pseudo-votes so LFs that rarely fire on the dev set are not judged on two items;
    - 'auto' (default): 'dev' when ``fit`` receives a dev set, else 'agreement';
    - an explicit length-m array of weights.

    LFs no better than chance get weight 0. Probabilities are ``softmax(sum_j w_j [vote_j = c])``.
    """

    def __init__(self, cardinality: int | None = None, weights="auto", dev_strength: float = 5.0,
                 max_weight: float = 5.0, class_prior="estimate", random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.weights = weights
        self.dev_strength = dev_strength
        self.max_weight = max_weight
        self.class_prior = class_prior

    def _fit(self, votes, dev, y_dev):
        k, m = votes.k, votes.m
        if not isinstance(self.weights, str):
            w = np.asarray(self.weights, float)
            if w.shape != (m,):
                raise ConfigError(f"weights must have one value per LF ({m}), got shape {w.shape}")
            self.accuracy_ = None
            self.weights_ = w
        else:
            if self.weights not in ("auto", "agreement", "dev", "heldout"):
                raise ConfigError(f"weights must be 'auto', 'agreement', 'dev', 'heldout' or an array, "
                                  f"got {self.weights!r}")
            if self.weights == "dev" and dev is None:
                raise ConfigError("WeightedVote(weights='dev') needs a dev set: fit(L, y_dev=..., L_dev=...)")
            tau = np.ones(m)
            if self.weights == "heldout":
                from .redundancy import heldout_agreement, redundancy_weights, redundant_groups

                sub = votes
                if votes.n > 50_000:  # the weights are m statistics: a seeded sample measures them
                    idx = np.sort(np.random.default_rng(self.random_state).choice(votes.n, 50_000, replace=False))
                    sub = votes.rows(idx)
                mv = MajorityVote(k, redundancy=True, random_state=self.random_state)._fit_votes(sub)
                acc = heldout_agreement(mv, sub, redundant_groups(sub), min_votes=1, informed_only=True)
                acc = np.where(np.isfinite(acc), acc, 1.0 / k)
                tau = redundancy_weights(sub)
            else:
                acc = agreement_accuracy(votes)
            if dev is not None and self.weights in ("auto", "dev"):
                hit = (dev.hard == y_dev[:, None]).sum(axis=0)
                fired = (dev.hard >= 0).sum(axis=0)
                acc = (hit + self.dev_strength * acc) / (fired + self.dev_strength)
            acc = np.clip(acc, 1e-3, 1 - 1e-3)
            self.accuracy_ = acc
            self.weights_ = np.clip(np.log(acc * (k - 1) / (1 - acc)), 0.0, self.max_weight) * tau
        self.class_prior_ = resolve_prior(self.class_prior, k, _covered_mean(self, votes), y_dev)

    def _row_wise(self) -> bool:
        return True

    def _proba(self, votes):
        return softmax_rows(class_counts(votes, self.weights_))

    def lf_terms(self, votes: Votes):
        return np.zeros(votes.k), lambda j: lf_onehot(votes, j) * self.weights_[j]


def lf_onehot(votes: Votes, j: int) -> np.ndarray:
    """LF j's (n x k) vote: one-hot of its hard vote, its class probabilities for soft votes, 0 if silent."""
    k = votes.k
    if votes.soft is not None:
        return votes.soft[:, j * k:(j + 1) * k].toarray()
    col = votes.hard[:, j]
    out = np.zeros((votes.n, k))
    v = np.flatnonzero(col >= 0)
    out[v, col[v]] = 1.0
    return out


def agreement_accuracy(votes: Votes, strength: float = 2.0) -> np.ndarray:
    """Per-LF share of the *other* LFs' votes that agree with it, on items where others vote (no gold).

    Smoothed toward 0.5 with ``strength`` pseudo-votes; LFs that never overlap get 0.5.
    """
    n = votes.n
    counts = class_counts(votes)
    total = counts.sum(axis=1)
    hard = votes.hard
    voted = hard >= 0
    same = counts[np.arange(n)[:, None], np.where(voted, hard, 0)] - 1.0  # other LFs voting the same class
    others = total[:, None] - 1.0
    use = voted & (others > 0)
    frac = np.divide(same, others, out=np.zeros_like(same), where=use)
    agree = (frac * use).sum(axis=0)
    seen = use.sum(axis=0)
    return (agree + 0.5 * strength) / (seen + strength)
