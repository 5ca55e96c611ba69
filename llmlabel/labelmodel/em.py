"""The EM engines behind the Dawid-Skene models: votes as a sparse design matrix, E and M steps over it.

Votes become a sparse design matrix X (n x m*S, one 1 per LF output, or the vote's class probabilities for
soft votes); the E-step is ``X @ log_theta`` and the M-step ``X.T @ posteriors`` (soft votes: the same products
over the rows each LF votes on, every LF's stacked into one matrix: ``SoftEM``). Kept apart from the models (dawid_skene.py), which own the
parameters, the priors and the fitting loop.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Votes
from .rowops import row_max, row_sum


def design_matrix(votes: Votes, abstain_symbol: bool, hard: np.ndarray | None = None) -> sp.csr_matrix:
    """Sparse n x (m*S) matrix of LF outputs; column ``j*S + c`` is class c, ``j*S + k`` abstain (S = k+1).

    Hard votes: one entry per vote, never for an abstain (implicit, see ``HardEM``). Soft votes: the
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
        # abstain column is implicit (``HardEM(implicit_abstain=True)``). WRENCH-style LFs abstain on most
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


def silenced(X: sp.csr_matrix, group, S: int, k: int, explicit_abstain: bool = False) -> sp.csr_matrix:
    """``X`` with the LFs in ``group`` abstaining on every row: their entries zeroed (same structure, no rebuild),
    and with ``explicit_abstain`` (soft votes' design) an abstain entry of 1 each."""
    group = np.asarray(group)
    silent = np.zeros(X.shape[1], dtype=bool)
    silent[(group[:, None] * S + np.arange(S)[None, :]).ravel()] = True
    out = sp.csr_matrix((np.where(silent[X.indices], 0.0, X.data), X.indices, X.indptr), shape=X.shape)
    if explicit_abstain:
        n, cols = X.shape[0], group * S + k
        out = (out + sp.csr_matrix((np.ones(n * len(cols)), (np.repeat(np.arange(n), len(cols)), np.tile(cols, n))),
                                   shape=X.shape)).tocsr()
    return out


def normalise(z: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Logits (n x k, modified in place) -> posteriors and the weighted log-likelihood (NaN when ``w`` is
    None: prediction needs no likelihood), one exp pass."""
    mx = row_max(z)
    z -= mx[:, None]
    np.exp(z, out=z)
    tot = row_sum(z)
    ll = float("nan") if w is None else float(w @ (mx + np.log(tot)))
    z /= tot[:, None]
    return z, ll


def posterior(logits: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Posteriors from logits without the prior (modified in place)."""
    logits += np.log(prior)
    return normalise(logits, None)[0]


class HardEM:
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


class SoftEM(HardEM):
    """Soft votes: ``P(vote_j | c) = sum_s x_js theta_j[c, s]`` (the LF's output is drawn from the
    distribution it states). Weighting log theta by x instead would reward uninformative confusion
    matrices: a 0.9/0.1 vote then scores best against a flat row, and EM drifts to it.
    """

    def __init__(self, X: sp.csr_matrix, m: int, S: int, k: int, tau: np.ndarray | None = None) -> None:
        super().__init__(X, m, S, k, tau)
        Xc = X.tocsc()
        # Per LF, only the rows where it puts mass on some class: on the others it abstains outright (abstain
        # mass 1 when modelled, nothing otherwise: ``design_matrix``), a term that is one row for all of them.
        # Keyword LFs vote on a few percent of the items, so E and M steps scale with the votes cast. The LFs'
        # voted rows are stacked into one matrix V (LF after LF, each in its own S columns), so a step is one
        # product over V instead of one per LF: the same sums in the same order (each row of V holds one LF's
        # entries, each column one LF's rows), many fewer calls (TweetEval emoji's aggregate --gold, 45 LFs).
        rows, parts = [], []
        for j in range(m):  # loop over LFs, not items, once
            block = Xc[:, j * S:(j + 1) * S].tocsr()
            voted = np.flatnonzero(np.abs(block[:, :k]) @ np.ones(k) > 0)
            b = block[voted]
            rows.append(voted)
            parts.append(sp.csr_matrix((b.data, b.indices + j * S, b.indptr), shape=(len(voted), m * S)))
        self.rows = rows
        self.starts = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        self.item = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
        self.lf = np.repeat(np.arange(m), np.diff(self.starts))
        self.V = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, m * S))
        self.V_T = self.V.T  # made once: scipy builds a new matrix object per ``.T``
        self.abstain = S == k + 1
        # The E-step adds each LF's term to its rows, LF after LF, onto a base every row shares. As one product:
        # row i of P sums column 0 (the base) and then the stacked rows of item i in LF order, so the float sums
        # are the per-LF loop's, in its order (0 + base + term_0 + term_1 ...); LFs of weight 0 add nothing.
        on = np.flatnonzero(self.tau[self.lf] != 0)
        order = on[np.argsort(self.item[on], kind="stable")]
        per_item = np.bincount(self.item[on], minlength=X.shape[0]) + 1
        indptr = np.concatenate([[0], np.cumsum(per_item)]).astype(np.int64)
        cols = np.zeros(int(indptr[-1]), np.int64)
        at = np.ones(len(cols), bool)
        at[indptr[:-1]] = False  # each row's first entry is the base column 0
        cols[at] = order + 1
        self.P = sp.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(X.shape[0], len(self.item) + 1))

    def _silent_all(self, theta: np.ndarray) -> np.ndarray:
        """(m, k) each LF's log-likelihood term on a row where it abstains outright."""
        m, _, k = self.shape
        if not self.abstain:
            return np.zeros((m, k))
        a = theta[:, :, -1]
        return np.log(a, out=np.zeros_like(a), where=a > 0)

    def _z(self, theta: np.ndarray) -> np.ndarray:
        """(rows of V, k): ``z = sum_s x_is theta_j[c, s]`` on every LF's voted rows."""
        m, S, k = self.shape
        return np.asarray(self.V @ theta.transpose(0, 2, 1).reshape(m * S, k))

    @staticmethod
    def _log(z: np.ndarray) -> np.ndarray:
        return np.log(z, out=np.zeros_like(z), where=z > 0)  # no mass = no term

    def lf_term(self, j, theta):
        out = np.empty((self.X.shape[0], self.shape[2]))
        out[:] = self._silent_all(theta)[j]
        a, b = self.starts[j], self.starts[j + 1]
        m, S, k = self.shape
        out[self.rows[j]] = self._log(np.asarray(self.V[a:b, j * S:(j + 1) * S] @ theta[j].T))
        return self.tau[j] * out

    def logits(self, theta):
        silent = self._silent_all(theta)
        terms = self.tau[self.lf][:, None] * (self._log(self._z(theta)) - silent[self.lf])
        return np.asarray(self.P @ np.vstack([(self.tau @ silent)[None, :], terms]))

    def counts(self, wT, theta):
        if theta is None:  # first M-step, from vote shares: the expected outputs themselves
            return super().counts(wT, None)
        m, S, k = self.shape
        z = self._z(theta)
        q = wT[self.item]
        r = np.divide(q, z, out=np.zeros_like(z), where=z > 0)
        out = theta * np.asarray(self.V_T @ r).reshape(m, S, k).transpose(0, 2, 1)
        if self.abstain:  # rows where LF j abstains outright: x = 1 on abstain, so theta * wT / theta = wT
            # per LF, as numpy sums a block (np.add.reduceat adds in another order: not the same last bits)
            voted = np.array([q[a:b].sum(axis=0) for a, b in zip(self.starts[:-1], self.starts[1:])]).reshape(m, k)
            out[:, :, -1] += np.where(theta[:, :, -1] > 0, wT.sum(axis=0)[None, :] - voted, 0.0)
        return out


def vote_shares(X, w: np.ndarray, m: int, S: int, k: int) -> np.ndarray:
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
