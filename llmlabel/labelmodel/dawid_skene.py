"""Dawid-Skene EM, with abstention as data or as missing, and its one-coin (symmetric) restriction.

Each LF j has a confusion matrix ``P(output s | true class c)``. With ``abstain="model"`` (default) the
outputs are the k classes *plus abstain*, so a k x (k+1) matrix: on WRENCH-style matrices, where LFs are
unipolar (each votes one class or abstains), *who stays silent* is most of the signal, and textbook DS,
which treats abstains as missing, collapses (youtube 0.528, sms F1 0.0, trec 0.276 in the issue's anchor
table). ``abstain="missing"`` is the textbook model, kept for crowdsourcing-style data.

EM is vectorised: votes become a sparse design matrix X (n x m*S, one 1 per LF output, or the vote's
class probabilities for soft votes), the E-step is ``X @ log_theta`` and the M-step ``X.T @ posteriors``
(soft votes: one such product per LF, see ``_SoftEM``). Repeated vote rows are collapsed to one weighted
row first (exact, usually a large saving).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError
from .base import LabelModel, Votes, dedup_rows, row_max, row_sum
from .majority import resolve_prior
from .redundancy import lf_weights


def design_matrix(votes: Votes, abstain_symbol: bool, hard: np.ndarray | None = None) -> sp.csr_matrix:
    """Sparse n x (m*S) matrix of LF outputs; column ``j*S + c`` is class c, ``j*S + k`` abstain (S = k+1).

    Hard votes: one entry per vote, never for an abstain (implicit, see ``_HardEM``). Soft votes: the
    vote's class probabilities and, when abstain is modelled, the rest of the mass as abstain.
    """
    k = votes.k
    S = k + 1 if abstain_symbol else k
    if votes.soft is None or hard is not None:
        L = votes.hard if hard is None else hard
        n, m = L.shape
        # int32 indices when they fit: half the memory traffic of every EM product on 10^6 rows.
        idx = np.int32 if max(n * m, m * S) < 2**31 - 1 else np.int64
        offs = (np.arange(m) * S).astype(idx)
        # Abstains get no entry even when modelled: every item has exactly one output per LF, so the
        # abstain column is implicit (``_HardEM(implicit_abstain=True)``). WRENCH-style LFs abstain on most
        # items, so this is most of the matrix.
        mask = L >= 0
        cols = np.extract(mask, L.astype(idx, copy=False) + offs)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(mask, axis=1), out=indptr[1:])
        return sp.csr_matrix((np.ones(len(cols)), cols, indptr.astype(idx, copy=False)), shape=(n, m * S))
    soft = votes.soft.tocoo()
    n, m = votes.n, votes.m
    lf, cls = soft.col // k, soft.col % k
    rows, cols, data = soft.row, lf * S + cls, soft.data
    if abstain_symbol:
        mass = np.zeros((n, m))
        np.add.at(mass, (rows, lf), data)  # over nonzeros only (not items); fine for sparse soft votes
        rest = np.clip(1.0 - mass, 0.0, None)
        ri, rj = np.nonzero(rest > 1e-9)
        rows = np.concatenate([rows, ri])
        cols = np.concatenate([cols, rj * S + k])
        data = np.concatenate([data, rest[ri, rj]])
    return sp.csr_matrix((data, (rows, cols)), shape=(n, m * S))


def _normalise(z: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Logits (n x k, modified in place) -> posteriors and the weighted log-likelihood (NaN when ``w`` is
    None: prediction needs no likelihood), one exp pass."""
    mx = row_max(z)
    z -= mx[:, None]
    np.exp(z, out=z)
    tot = row_sum(z)
    ll = float("nan") if w is None else float(w @ (mx + np.log(tot)))
    z /= tot[:, None]
    return z, ll


def _posterior(logits: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Posteriors from logits without the prior (modified in place)."""
    logits += np.log(prior)
    return _normalise(logits, None)[0]


class _HardEM:
    """One-hot outputs: the log-likelihood is linear in log theta (E: X @ log theta, M: X.T @ posteriors).

    ``implicit_abstain``: X has no abstain entries (``design_matrix`` of hard votes) although abstain is
    output k of every LF. Each LF's table is then taken relative to its abstain row, plus the sum of the
    abstain rows as a constant, and the M-step's abstain counts are the posterior mass not voted: exact,
    and E/M cost scales with the votes cast, not with items x LFs.
    """

    def __init__(self, X: sp.csr_matrix, m: int, S: int, k: int, tau: np.ndarray | None = None,
                 implicit_abstain: bool = False) -> None:
        self.X, self.shape = X, (m, S, k)
        self.tau = np.ones(m) if tau is None else tau
        self.implicit = implicit_abstain and S == k + 1

    def _tables(self, theta: np.ndarray):
        """(m, k, S) ``tau_j log theta_j`` relative to abstain when implicit, and the (k,) constant."""
        lt = np.log(theta) * self.tau[:, None, None]
        if not self.implicit:
            return lt, 0.0
        k = self.shape[2]
        ab = lt[:, :, k:]
        return lt - ab, ab[:, :, 0].sum(axis=0)

    def log_table(self, theta: np.ndarray) -> np.ndarray:
        """(m*S x k) ``tau_j log theta_j[c, s]``, row ``j*S + s`` (relative to abstain when implicit)."""
        m, S, k = self.shape
        return self._tables(theta)[0].transpose(0, 2, 1).reshape(m * S, k)

    def logits(self, theta: np.ndarray) -> np.ndarray:
        lt, const = self._tables(theta)
        m, S, k = self.shape
        out = self.X @ lt.transpose(0, 2, 1).reshape(m * S, k)
        out += const
        return out

    def lf_term(self, j: int, theta: np.ndarray) -> np.ndarray:
        """LF j's (n x k) share of ``logits``."""
        m, S, k = self.shape
        if getattr(self, "_csc", None) is None:  # column blocks of a CSC copy cost only their own entries
            self._csc = self.X.tocsc()
        lt = self.tau[j] * np.log(theta[j])  # (k, S)
        if not self.implicit:
            return self._csc[:, j * S:(j + 1) * S] @ lt.T
        ab = lt[:, k]
        out = self._csc[:, j * S:(j + 1) * S] @ (lt - ab[:, None]).T
        out += ab
        return out

    def counts(self, wT: np.ndarray, theta: np.ndarray | None) -> np.ndarray:
        m, S, k = self.shape
        # X.T is a CSC view: each row's posteriors are scattered, in order, into a small (m*S x k) table.
        c = np.asarray(self.X.T @ wT).reshape(m, S, k).transpose(0, 2, 1).copy()
        if self.implicit:  # every row outputs one symbol per LF: what it did not vote, it abstained
            c[:, :, k] = wT.sum(axis=0)[None, :] - c[:, :, :k].sum(axis=2)
            np.clip(c[:, :, k], 0.0, None, out=c[:, :, k])
        return c


class _SoftEM(_HardEM):
    """Soft votes: ``P(vote_j | c) = sum_s x_js theta_j[c, s]`` (the LF's output is drawn from the
    distribution it states). Weighting log theta by x instead would reward uninformative confusion
    matrices: a 0.9/0.1 vote then scores best against a flat row, and EM drifts to it.
    """

    def __init__(self, X: sp.csr_matrix, m: int, S: int, k: int, tau: np.ndarray | None = None) -> None:
        super().__init__(X, m, S, k, tau)
        Xc = X.tocsc()
        # Per LF, only the rows where it puts mass on some class: on the others it abstains outright (abstain
        # mass 1 when modelled, nothing otherwise: ``design_matrix``), a term that is one row for all of them.
        # Keyword LFs vote on a few percent of the items, so E and M steps scale with the votes cast.
        self.rows, self.blocks = [], []
        for j in range(m):  # loop over LFs, not items
            block = Xc[:, j * S:(j + 1) * S].tocsr()
            voted = np.flatnonzero(np.abs(block[:, :k]) @ np.ones(k) > 0)
            self.rows.append(voted)
            self.blocks.append(block[voted])
        self.abstain = S == k + 1

    def _silent(self, j: int, theta: np.ndarray) -> np.ndarray:
        """(k,) LF j's log-likelihood term on a row where it abstains outright."""
        if not self.abstain:
            return np.zeros(self.shape[2])
        a = theta[j, :, -1]
        return np.log(a, out=np.zeros_like(a), where=a > 0)

    def _voted(self, j: int, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(z, log z)`` on LF j's voted rows: ``z = sum_s x_is theta_j[c, s]``; no mass = no term."""
        z = self.blocks[j] @ theta[j].T
        return z, np.log(z, out=np.zeros_like(z), where=z > 0)

    def lf_term(self, j, theta):
        out = np.empty((self.X.shape[0], self.shape[2]))
        out[:] = self._silent(j, theta)
        out[self.rows[j]] = self._voted(j, theta)[1]
        return self.tau[j] * out

    def logits(self, theta):
        m = self.shape[0]
        silent = np.array([self._silent(j, theta) for j in range(m)])  # (m, k)
        out = np.empty((self.X.shape[0], self.shape[2]))
        out[:] = self.tau @ silent
        for j in range(m):
            if self.tau[j] and len(self.rows[j]):
                out[self.rows[j]] += self.tau[j] * (self._voted(j, theta)[1] - silent[j])
        return out

    def counts(self, wT, theta):
        if theta is None:  # first M-step, from vote shares: the expected outputs themselves
            return super().counts(wT, None)
        out = np.empty(theta.shape)
        total = wT.sum(axis=0)
        for j in range(self.shape[0]):
            rows = self.rows[j]
            z = self._voted(j, theta)[0]
            q = wT[rows]
            r = np.divide(q, z, out=np.zeros_like(z), where=z > 0)
            out[j] = theta[j] * np.asarray(self.blocks[j].T @ r).T
            if self.abstain:  # rows where LF j abstains outright: x = 1 on abstain, so theta * wT / theta = wT
                out[j][:, -1] += np.where(theta[j, :, -1] > 0, total - q.sum(axis=0), 0.0)
        return out


def _vote_shares(X, w: np.ndarray, m: int, S: int, k: int) -> np.ndarray:
    """Majority-vote shares per row straight from the design matrix (EM's starting posteriors).

    Rows without votes start at the mean share of the covered rows (rows weighted by their counts ``w``).
    """
    fold = np.zeros((m * S, k))
    fold[(np.arange(m)[:, None] * S + np.arange(k)).ravel(), np.tile(np.arange(k), m)] = 1.0
    counts = np.asarray(X @ fold)
    tot = counts.sum(axis=1, keepdims=True)
    cov = tot[:, 0] > 0
    T = np.divide(counts, tot, out=np.zeros_like(counts), where=tot > 0)
    T[~cov] = w[cov] @ T[cov] / w[cov].sum() if cov.any() else 1.0 / k
    return T


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
            soft = None if votes.soft is None else votes.soft[keep]
            votes = Votes(votes.hard[keep], soft, k, votes.names)
        warm = (self.warm_start and getattr(self, "confusion_", None) is not None
                and self.confusion_.shape == (m, k, S))
        if not warm:
            self.lf_weights_ = lf_weights(votes, self.redundancy, self.random_state)
        X, w, inv = self._design_weighted(votes)
        ll = np.nan
        if warm:  # posteriors under the fitted parameters: EM resumes where the last fit stopped
            start = self._make_engine(votes, X, m, S, k)
            T, ll = _normalise(start.logits(self.confusion_) + np.log(self.class_prior_), w)
            ll /= w.sum()
        else:
            T = _vote_shares(X, w, m, S, k)
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
            T, ll = _normalise(engine.logits(theta) + np.log(prior), w)
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
        silent = np.zeros(m * S, dtype=bool)
        silent[(np.asarray(group)[:, None] * S + np.arange(S)[None, :]).ravel()] = True
        Xg = sp.csr_matrix((np.where(silent[X.indices], 0.0, X.data), X.indices, X.indptr), shape=X.shape)
        if votes.soft is not None and self._model_abstain:  # soft votes state their abstain mass explicitly
            cols = np.asarray(group) * S + k
            n = X.shape[0]
            Xg = (Xg + sp.csr_matrix((np.ones(n * len(cols)), (np.repeat(np.arange(n), len(cols)),
                                                                np.tile(cols, n))), shape=X.shape)).tocsr()
        engine = self._make_engine(votes, Xg, m, S, k)
        T, _ = _normalise(engine.logits(self.confusion_) + np.log(self.class_prior_), w)
        theta, prior, _, _ = self._em(engine, T, w, self.confusion_, min(self.max_iter, max_iter))
        keep = inv[rows] if inv is not None else rows
        return _posterior(engine.logits(theta)[keep], prior)

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
            return _HardEM(X, m, S, k, self.lf_weights_, implicit_abstain=self._model_abstain)
        return _SoftEM(X, m, S, k, self.lf_weights_)

    def _proba(self, votes):
        engine, w, inv = self._engine(votes)
        proba = _posterior(engine.logits(self.confusion_), self.class_prior_)
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
