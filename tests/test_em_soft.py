"""Soft-vote EM (labelmodel/em.py ``SoftEM``) stacks the LFs' voted rows into one matrix; its E and M steps must
be the per-LF sums they replace, bit for bit (the same sums in the same order), with abstain modelled or not and
with LFs of weight 0."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from llmlabel.labelmodel.em import SoftEM


def _design(n: int, m: int, k: int, abstain: bool, seed: int) -> sp.csr_matrix:
    """Soft votes: each LF votes on a random share of the rows (one LF on none) with a random distribution."""
    rng = np.random.default_rng(seed)
    S = k + 1 if abstain else k
    X = np.zeros((n, m * S))
    for j in range(m - 1):  # the last LF never votes
        on = rng.random(n) < rng.uniform(0.05, 0.9)
        p = rng.dirichlet(np.ones(k), size=on.sum()) * rng.uniform(0.5, 1.0, (on.sum(), 1))
        X[np.flatnonzero(on)[:, None], j * S + np.arange(k)] = p
        if abstain:
            X[:, j * S + k] = np.where(on, 0.0, 1.0)
            X[on, j * S + k] = 1.0 - p.sum(1)
    return sp.csr_matrix(X)


def _reference(X, m, S, k, tau, theta, wT):
    """The per-LF loop, written out."""
    abstain = S == k + 1
    Xc = X.tocsc()
    logits = np.empty((X.shape[0], k))
    silent = np.array([np.log(a, out=np.zeros_like(a), where=a > 0) if abstain else np.zeros(k)
                       for a in theta[:, :, -1]])
    logits[:] = tau @ silent
    counts = np.empty(theta.shape)
    for j in range(m):
        block = Xc[:, j * S:(j + 1) * S].tocsr()
        rows = np.flatnonzero(np.abs(block[:, :k]) @ np.ones(k) > 0)
        z = block[rows] @ theta[j].T
        if tau[j] and len(rows):
            logits[rows] += tau[j] * (np.log(z, out=np.zeros_like(z), where=z > 0) - silent[j])
        q = wT[rows]
        r = np.divide(q, z, out=np.zeros_like(z), where=z > 0)
        counts[j] = theta[j] * np.asarray(block[rows].T @ r).T
        if abstain:
            counts[j][:, -1] += np.where(theta[j, :, -1] > 0, wT.sum(axis=0) - q.sum(axis=0), 0.0)
    return logits, counts


@pytest.mark.parametrize("abstain", [True, False])
@pytest.mark.parametrize("budget", [None, 500])
def test_stacked_steps_are_the_per_lf_sums_bit_for_bit(abstain, budget, monkeypatch):
    """One group of LFs (the chain's sizes), or several (a budget below two LFs' rows: as at 10^6 items)."""
    if budget:
        monkeypatch.setattr(SoftEM, "BUDGET", budget)
    n, m, k = 400, 7, 4
    S = k + 1 if abstain else k
    X = _design(n, m, k, abstain, seed=1)
    rng = np.random.default_rng(2)
    tau = rng.uniform(0.2, 1.5, m)
    tau[2] = 0.0  # an LF of weight 0 adds nothing
    theta = rng.dirichlet(np.ones(S), size=(m, k))
    wT = rng.dirichlet(np.ones(k), size=n)
    eng = SoftEM(X, m, S, k, tau)
    assert len(eng.groups) == (m if budget else 1)  # each LF votes on more than 500 / k rows
    want_logits, want_counts = _reference(X, m, S, k, tau, theta, wT)
    assert np.array_equal(eng.logits(theta), want_logits)
    assert np.array_equal(eng.counts(wT, theta), want_counts)
    for j in (0, 2, m - 1):
        term = eng.lf_term(j, theta)
        assert term.shape == (n, k) and np.isfinite(term).all()
    assert np.allclose(sum(eng.lf_term(j, theta) for j in range(m)), want_logits)
