"""The EM engines behind the Dawid-Skene models: votes as a sparse design matrix, E and M steps over it.

Votes become a sparse design matrix X (n x m*S, one 1 per LF output, or the vote's class probabilities for
soft votes); the E-step is ``X @ log_theta`` and the M-step ``X.T @ posteriors`` (soft votes: the same products
over the rows each LF votes on, groups of LFs stacked into one matrix: ``SoftEM``). Kept apart from the models
(dawid_skene.py), which own the parameters, the priors and the fitting loop.
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

    #: The most numbers (stacked voted rows x classes) one step handles at once: a group of LFs whose voted rows
    #: fit is one product; beyond it (10^6 items of soft votes) a group is one LF, as memory was before stacking.
    BUDGET = 1 << 22

    def __init__(self, X: sp.csr_matrix, m: int, S: int, k: int, tau: np.ndarray | None = None) -> None:
        super().__init__(X, m, S, k, tau)
        Xc = X.tocsc()
        # Per LF, only the rows where it puts mass on some class: on the others it abstains outright (abstain
        # mass 1 when modelled, nothing otherwise: ``design_matrix``), a term that is one row for all of them.
        # Keyword LFs vote on a few percent of the items, so E and M steps scale with the votes cast. Consecutive
        # LFs' voted rows are stacked into one matrix per group (each LF in its own S columns), so a step is one
        # product per group instead of one per LF: the same sums in the same order (each stacked row holds one
        # LF's entries, each column one LF's rows), far fewer calls (TweetEval emoji: 45 LFs, one group).
        self.rows, blocks = [], []
        for j in range(m):  # loop over LFs, not items, once
            block = Xc[:, j * S:(j + 1) * S].tocsr()
            voted = np.flatnonzero(np.abs(block[:, :k]) @ np.ones(k) > 0)
            self.rows.append(voted)
            blocks.append(block[voted])
        self.abstain = S == k + 1
        self.groups = [self._group(lo, hi, blocks) for lo, hi in self._bounds(k)]

    def _bounds(self, k: int) -> list[tuple[int, int]]:
        out, lo, size = [], 0, 0
        for j, r in enumerate(self.rows):
            if j > lo and (size + len(r)) * k > self.BUDGET:
                out.append((lo, j))
                lo, size = j, 0
            size += len(r)
        return out + [(lo, len(self.rows))] if self.rows else out

    def _group(self, lo: int, hi: int, blocks) -> dict:
        """LFs ``lo..hi-1`` stacked: ``V`` (their voted rows x their S columns each), its transpose, each stacked
        row's item and LF, where each LF's rows start, and ``P``, which adds the rows' terms onto a per-item base
        as the per-LF loop did: row i of ``P`` takes item i's base (column i) and then item i's stacked rows in
        LF order, so the float sums are that loop's, in its order; LFs of weight 0 add nothing."""
        n, S = self.X.shape[0], self.shape[1]
        parts = [sp.csr_matrix((b.data, b.indices + (j - lo) * S, b.indptr), shape=(b.shape[0], (hi - lo) * S))
                 for j, b in zip(range(lo, hi), blocks[lo:hi])]
        V = sp.vstack(parts, format="csr")
        starts = np.concatenate([[0], np.cumsum([len(r) for r in self.rows[lo:hi]])]).astype(np.int64)
        item = np.concatenate(self.rows[lo:hi]).astype(np.int64)
        lf = np.repeat(np.arange(lo, hi), np.diff(starts))
        on = np.flatnonzero(self.tau[lf] != 0)
        order = on[np.argsort(item[on], kind="stable")]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(item[on], minlength=n) + 1)]).astype(np.int64)
        cols = np.zeros(int(indptr[-1]), np.int64)
        first = np.zeros(len(cols), bool)
        first[indptr[:-1]] = True
        cols[first] = np.arange(n)
        cols[~first] = n + order
        P = sp.csr_matrix((np.ones(len(cols)), cols, indptr), shape=(n, n + len(item)))
        return {"lo": lo, "hi": hi, "V": V, "V_T": V.T, "starts": starts, "item": item, "lf": lf, "P": P}

    def _silent_all(self, theta: np.ndarray) -> np.ndarray:
        """(m, k) each LF's log-likelihood term on a row where it abstains outright."""
        m, _, k = self.shape
        if not self.abstain:
            return np.zeros((m, k))
        a = theta[:, :, -1]
        return np.log(a, out=np.zeros_like(a), where=a > 0)

    def _z(self, g: dict, theta: np.ndarray) -> np.ndarray:
        """(stacked rows, k): ``z = sum_s x_is theta_j[c, s]`` on the group's LFs' voted rows."""
        return np.asarray(g["V"] @ theta[g["lo"]:g["hi"]].transpose(0, 2, 1).reshape(-1, self.shape[2]))

    @staticmethod
    def _log(z: np.ndarray) -> np.ndarray:
        return np.log(z, out=np.zeros_like(z), where=z > 0)  # no mass = no term

    def lf_term(self, j, theta):
        out = np.empty((self.X.shape[0], self.shape[2]))
        out[:] = self._silent_all(theta)[j]
        g = next(g for g in self.groups if g["lo"] <= j < g["hi"])
        a, b, S = g["starts"][j - g["lo"]], g["starts"][j - g["lo"] + 1], self.shape[1]
        out[self.rows[j]] = self._log(np.asarray(g["V"][a:b, (j - g["lo"]) * S:(j - g["lo"] + 1) * S] @ theta[j].T))
        return self.tau[j] * out

    def logits(self, theta):
        silent = self._silent_all(theta)
        out = np.empty((self.X.shape[0], self.shape[2]))
        out[:] = self.tau @ silent
        for g in self.groups:  # over groups of LFs (one, at the chain's sizes), not items
            terms = self.tau[g["lf"]][:, None] * (self._log(self._z(g, theta)) - silent[g["lf"]])
            out = np.asarray(g["P"] @ np.vstack([out, terms]))
        return out

    def counts(self, wT, theta):
        if theta is None:  # first M-step, from vote shares: the expected outputs themselves
            return super().counts(wT, None)
        m, S, k = self.shape
        out = np.empty(theta.shape)
        total = wT.sum(axis=0)
        for g in self.groups:
            lo, hi = g["lo"], g["hi"]
            z = self._z(g, theta)
            q = wT[g["item"]]
            r = np.divide(q, z, out=np.zeros_like(z), where=z > 0)
            out[lo:hi] = theta[lo:hi] * np.asarray(g["V_T"] @ r).reshape(hi - lo, S, k).transpose(0, 2, 1)
            if self.abstain:  # rows where LF j abstains outright: x = 1 on abstain, so theta * wT / theta = wT
                # per LF, as numpy sums a block (np.add.reduceat adds in another order: not the same last bits)
                st = g["starts"]
                voted = np.array([q[a:b].sum(axis=0) for a, b in zip(st[:-1], st[1:])]).reshape(hi - lo, k)
                out[lo:hi, :, -1] += np.where(theta[lo:hi, :, -1] > 0, total[None, :] - voted, 0.0)
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
