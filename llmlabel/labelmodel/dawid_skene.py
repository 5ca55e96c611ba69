"""Dawid-Skene EM, with abstention as data or as missing, and its one-coin (symmetric) restriction.

Each LF j has a confusion matrix ``P(output s | true class c)``. With ``abstain="model"`` (default) the
outputs are the k classes *plus abstain*, so a k x (k+1) matrix: on WRENCH-style matrices, where LFs are
unipolar (each votes one class or abstains), *who stays silent* is most of the signal, and textbook DS,
which treats abstains as missing, collapses (youtube 0.528, sms F1 0.0, trec 0.276 in the issue's anchor
table). ``abstain="missing"`` is the textbook model, kept for crowdsourcing-style data.

EM is vectorised over a sparse design matrix of the votes (the engines in ``em.py``). Repeated vote rows are
collapsed to one weighted row first (exact, usually a large saving).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .base import PREDICT_BLOCK, LabelModel, Votes
from .rowops import dedup_rows
from .em import HardEM, SoftEM, design_matrix, normalise, posterior, silenced, vote_shares
from .majority import resolve_prior
from .redundancy import lf_weights


class DawidSkene(LabelModel):
    """Dawid-Skene label model fitted by EM.

    Parameters
    ----------
    abstain : 'model' (default) treats abstain as an output of each LF's confusion matrix (k x (k+1));
        'missing' ignores abstains (textbook DS).
    alpha : Dirichlet pseudo-count added to every confusion-matrix cell (smoothing).
    class_prior : 'estimate' (EM estimate, add-one smoothed), 'uniform', or a length-k vector. Rows no LF
        covers get ``class_prior_`` from ``predict_proba``.
    use_dev : when ``fit`` gets ``L_dev, y_dev``, add the dev rows with their posteriors clamped to the
        gold labels (semi-supervised EM), weighted by ``dev_weight``.
    max_iter, tol : EM stops when the mean log-likelihood improves by less than ``tol``.
    redundancy : discount near-duplicate LFs: each LF's log-likelihood term is multiplied by
        ``redundancy.redundancy_weights`` (d exact copies of an LF count as one), measured on at most
        100,000 rows. The M-step is unchanged; only how much each LF's evidence counts.
    warm_start : when already fitted on votes of the same shape, start EM from the fitted parameters
        (E-step first) instead of from majority-vote shares; ``HeldOutSelect`` refits this way.
    max_fit_rows : fit on a uniform random sample (seeded by ``random_state``) of at most this many rows;
        None = all rows. Parameter error shrinks as 1/sqrt(rows), so 10^5-10^6 rows usually suffice.

    Learned: ``class_prior_`` (k,), ``confusion_`` (m, k, S) with ``confusion_[j, c, s] = P(LF j outputs s |
    y = c)`` (s = k is abstain when modelled), ``lf_accuracy_`` (m,) = P(vote correct | LF j votes),
    ``n_iter_``, ``log_likelihood_``.
    """

    def __init__(self, cardinality: int | None = None, abstain: str = "model", alpha: float = 1.0,
                 class_prior="estimate", use_dev: bool = True, dev_weight: float = 1.0, max_iter: int = 200,
                 tol: float = 1e-6, max_fit_rows: int | None = None, redundancy: bool = False,
                 warm_start: bool = False, random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.redundancy = redundancy
        self.warm_start = warm_start
        self.max_fit_rows = max_fit_rows
        self.abstain = abstain
        self.alpha = alpha
        self.class_prior = class_prior
        self.use_dev = use_dev
        self.dev_weight = dev_weight
        self.max_iter = max_iter
        self.tol = tol

    # --- pieces subclasses may override -------------------------------------------------------------
    def _m_step(self, counts: np.ndarray) -> np.ndarray:
        """counts (m, k, S) expected output counts per true class -> confusion (m, k, S).

        The Dirichlet prior is centred on each LF's overall output distribution, not on uniform: a class
        the data barely supports then gets a confusion row that says nothing (likelihood ratio 1) instead
        of a uniform row, which would claim the LF abstains on it far less often than on the others.
        """
        marg = counts.sum(axis=1, keepdims=True)
        marg = marg / np.maximum(marg.sum(axis=2, keepdims=True), 1e-300)
        c = counts + self.alpha * counts.shape[2] * marg + 1e-12
        return c / c.sum(axis=2, keepdims=True)

    # --- EM -------------------------------------------------------------------------------------------
    def _design_weighted(self, votes: Votes):
        """Design matrix over distinct vote rows with their counts, plus the map back to items."""
        if votes.soft is None:
            d = dedup_rows(votes.hard)
            if d is not None:
                uniq, inv, counts = d
                return design_matrix(votes, self._model_abstain, uniq), counts, inv
        return design_matrix(votes, self._model_abstain), np.ones(votes.n), None

    @property
    def _model_abstain(self) -> bool:
        if self.abstain not in ("model", "missing"):
            raise ConfigError(f"abstain must be 'model' or 'missing', got {self.abstain!r}")
        return self.abstain == "model"

    def _fit(self, votes, dev, y_dev):
        k, m = votes.k, votes.m
        S = k + 1 if self._model_abstain else k
        if self.max_fit_rows is not None and votes.n > self.max_fit_rows:
            # EM's statistics from a uniform sample: parameters converge at O(1/sqrt(rows)), items are
            # still scored one by one in predict_proba.
            keep = np.sort(np.random.default_rng(self.random_state).choice(votes.n, self.max_fit_rows, replace=False))
            votes = votes.rows(keep)
        warm = (self.warm_start and getattr(self, "confusion_", None) is not None
                and self.confusion_.shape == (m, k, S))
        if not warm:
            self.lf_weights_ = lf_weights(votes, self.redundancy, self.random_state)
        X, w, inv = self._design_weighted(votes)
        ll = np.nan
        if warm:  # posteriors under the fitted parameters: EM resumes where the last fit stopped
            T, ll = self._warm_posteriors(self._make_engine(votes, X, m, S, k), w)
            ll /= w.sum()
        else:
            T = vote_shares(X, w, m, S, k)
        n_free = X.shape[0]
        clamp = None
        if dev is not None and self.use_dev:
            Xd = design_matrix(dev, self._model_abstain)
            X = sp.vstack([X, Xd], format="csr")
            w = np.concatenate([w, np.full(dev.n, float(self.dev_weight))])
            clamp = np.eye(k)[y_dev]
            T = np.vstack([T, clamp])
        engine = self._make_engine(votes, X, m, S, k)
        theta, prior, ll, it = self._em(engine, T, w, self.confusion_ if warm else None, self.max_iter, ll,
                                        clamp, n_free)
        self.n_iter_ = it
        self.log_likelihood_ = ll
        self.confusion_ = theta
        self.class_prior_ = prior

    def _warm_posteriors(self, engine, w: np.ndarray) -> tuple[np.ndarray, float]:
        """Posteriors (and the weighted log-likelihood) under the fitted parameters: where a warm EM resumes."""
        return normalise(engine.logits(self.confusion_) + np.log(self.class_prior_), w)

    def _fixed_prior(self, k: int) -> np.ndarray | None:
        if isinstance(self.class_prior, str) and self.class_prior == "estimate":
            return None
        return resolve_prior(self.class_prior, k, None)

    def _em(self, engine, T: np.ndarray, w: np.ndarray, theta: np.ndarray | None, max_iter: int, ll: float = np.nan,
            clamp: np.ndarray | None = None, n_free: int | None = None):
        """EM from posteriors ``T`` (M-step first) -> ``(theta, prior, mean log-likelihood, iterations)``."""
        k = T.shape[1]
        fixed_prior = self._fixed_prior(k)
        W = w.sum()
        unit = bool(np.all(w == 1.0))
        prev = -np.inf
        for it in range(1, max_iter + 1):
            wT = T if unit else T * w[:, None]
            theta = self._m_step(engine.counts(wT, theta))
            prior = fixed_prior if fixed_prior is not None else (wT.sum(axis=0) + 1.0) / (W + k)
            if it == max_iter:  # the E-step would only report the likelihood: skip it on the last round
                break
            T, ll = normalise(engine.logits(theta) + np.log(prior), w)
            ll /= W
            if clamp is not None:
                T[n_free:] = clamp
            if ll - prev < self.tol:
                break
            prev = ll
        return theta, prior, ll, it

    # --- held-out refits (HeldOutSelect) --------------------------------------------------------------
    def heldout_context(self, votes: Votes):
        """The design of ``votes`` (distinct rows, counts, map back), built once for every held-out refit."""
        self._check_fitted()
        return self._design_weighted(votes)

    def refit_without_proba(self, votes: Votes, context, group: np.ndarray, rows: np.ndarray,
                            max_iter: int = 10) -> np.ndarray:
        """Posteriors for ``rows`` of this model refitted, warm-started, on ``votes`` with the LFs in ``group``
        abstaining everywhere: what ``fit`` with ``warm_start`` on those votes gives, but the group's entries
        are zeroed in the shared design instead of the design being rebuilt per held-out LF (most of the
        no-gold default's selection time)."""
        X, w, inv = context
        m, k, S = self.confusion_.shape
        # Soft votes state their abstain mass explicitly (``design_matrix``): a silenced LF abstains with mass 1.
        Xg = silenced(X, group, S, k, explicit_abstain=votes.soft is not None and self._model_abstain)
        engine = self._make_engine(votes, Xg, m, S, k)
        T, _ = self._warm_posteriors(engine, w)
        theta, prior, _, _ = self._em(engine, T, w, self.confusion_, min(self.max_iter, max_iter))
        keep = inv[rows] if inv is not None else rows
        return posterior(engine.logits(theta)[keep], prior)

    @property
    def lf_accuracy_(self) -> np.ndarray:
        """P(the vote is right | LF j votes), under the fitted model."""
        self._check_fitted()
        k = self.cardinality_
        theta = self.confusion_[:, :, :k]  # (m, k true, k out)
        joint = theta * self.class_prior_[None, :, None]
        return np.trace(joint, axis1=1, axis2=2) / joint.sum(axis=(1, 2))

    def _engine(self, votes, dedup: bool = True):
        X, w, inv = self._design_weighted(votes) if dedup else (design_matrix(votes, self._model_abstain), None, None)
        m, k, S = self.confusion_.shape
        return self._make_engine(votes, X, m, S, k), w, inv

    def _make_engine(self, votes, X, m, S, k):
        if votes.soft is None:
            return HardEM(X, m, S, k, self.lf_weights_, implicit_abstain=self._model_abstain)
        return SoftEM(X, m, S, k, self.lf_weights_)

    def _row_wise(self) -> bool:
        return True

    def _proba(self, votes):
        # Blocks of predict_proba come already deduplicated over all rows (``LabelModel._proba_with_prior``).
        engine, w, inv = self._engine(votes, dedup=votes.n > PREDICT_BLOCK)
        proba = posterior(engine.logits(self.confusion_), self.class_prior_)
        return proba[inv] if inv is not None else proba

    def lf_terms(self, votes: Votes):
        """``(base, term)``: the model's logits for ``votes`` are ``base + sum_j term(j)`` (n x k each), so a
        held-out LF's evidence can be taken out without refitting (``heldout.py``)."""
        engine, _, _ = self._engine(votes, dedup=False)
        return np.log(self.class_prior_), lambda j: engine.lf_term(j, self.confusion_)


class OneCoinDawidSkene(DawidSkene):
    """Dawid-Skene with one accuracy per LF ("one-coin"): errors spread evenly over the other classes.

    m parameters instead of m*k*(k-1), so it stays stable with few LFs, few items or many classes. With
    ``abstain="model"`` each LF also gets a per-class firing rate ``P(votes | y = c)``, so silence still
    carries signal. Same parameters and attributes as :class:`DawidSkene`.
    """

    def _m_step(self, counts):
        m, k, S = counts.shape
        a = self.alpha
        votes_c = counts[:, :, :k].sum(axis=2)  # (m, k) expected votes cast when y = c
        correct = np.trace(counts[:, :, :k], axis1=1, axis2=2)
        acc = (correct + a) / (votes_c.sum(axis=1) + 2 * a)
        eye = np.eye(k)
        cond = acc[:, None, None] * eye + ((1 - acc) / (k - 1))[:, None, None] * (1 - eye)
        if S == k:
            return cond
        rate = (votes_c + a) / (counts.sum(axis=2) + 2 * a)  # (m, k) P(LF votes | y = c)
        out = np.empty((m, k, S))
        out[:, :, :k] = rate[:, :, None] * cond
        out[:, :, k] = 1 - rate
        return out
