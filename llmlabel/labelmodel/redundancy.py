"""How much LFs repeat each other: near-duplicate discounting and the groups a held-out LF leaves with.

Label models assume LFs err independently given the true class. Keyword LFs derived from one clustering,
or the same rule registered twice, break that: each copy is counted as fresh evidence. The overlap
measure here is the *agreement Jaccard* of two LFs, ``|items both vote the same class| / |items either
votes|``: 1 for duplicates, near 0 for independent LFs with modest coverage (it stays small even for two
accurate LFs of the same class unless they fire on the same items), so it targets redundancy rather
than the correlation that the true label itself induces.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Votes


def agreement_jaccard(votes: Votes) -> np.ndarray:
    """(m x m) agreement Jaccard between LFs (hard votes; diagonal 1 for LFs that ever vote)."""
    hard = votes.hard
    n, m, k = votes.n, votes.m, votes.k
    voted = hard >= 0
    rows, cols = np.nonzero(voted)
    # One sparse n x (m*k) one-hot of (LF, class) votes: agreement counts are its Gram matrix folded over classes.
    X = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols * k + hard[rows, cols])), shape=(n, m * k))
    G = (X.T @ X).tocoo()
    same = np.zeros((m, m))
    keep = (G.row % k) == (G.col % k)
    np.add.at(same, (G.row[keep] // k, G.col[keep] // k), G.data[keep])
    fired = voted.sum(axis=0).astype(np.float64)
    F = sp.csr_matrix(voted.astype(np.float32))
    both = np.asarray((F.T @ F).todense(), dtype=np.float64)
    union = fired[:, None] + fired[None, :] - both
    return np.divide(same, union, out=np.zeros((m, m)), where=union > 0)


def redundancy_weights(votes: Votes, power: float = 4.0) -> np.ndarray:
    """Per-LF weight ``1 / sum_l J_jl ** power`` (self included): a group of d exact duplicates counts as one
    LF (each copy weighs 1/d), while partly overlapping LFs lose little (J = 0.5 costs 6% at power 4)."""
    return redundancy_weights_from(agreement_jaccard(votes), np.ones(votes.m, bool), power)


def redundancy_weights_from(jaccard: np.ndarray, keep: np.ndarray, power: float = 4.0) -> np.ndarray:
    """``redundancy_weights`` among the LFs in ``keep`` only (0 for the others), from their pairwise
    agreement Jaccard: a pair's overlap does not depend on the other LFs, so removing LFs needs no new pass
    over the votes."""
    J = jaccard ** power
    np.fill_diagonal(J, 1.0)
    tot = J @ keep.astype(float)
    return np.divide(1.0, tot, out=np.zeros(len(tot)), where=keep & (tot > 0))


def redundant_groups(votes: Votes, threshold: float = 0.5, jaccard: np.ndarray | None = None) -> list[np.ndarray]:
    """For each LF, itself and the LFs whose agreement Jaccard with it is at least ``threshold``
    (``jaccard``: ``agreement_jaccard(votes)`` when already computed)."""
    J = (agreement_jaccard(votes) if jaccard is None else jaccard).copy()
    np.fill_diagonal(J, 1.0)
    return [np.flatnonzero(J[j] >= threshold) for j in range(votes.m)]


def lf_weights(votes: Votes, on: bool, random_state: int | None = 0, max_rows: int = 100_000) -> np.ndarray:
    """``redundancy_weights`` measured on at most ``max_rows`` seeded rows when ``on``, else ones."""
    if not on:
        return np.ones(votes.m)
    if votes.n > max_rows:
        keep = np.sort(np.random.default_rng(random_state).choice(votes.n, max_rows, replace=False))
        votes = Votes(votes.hard[keep], None, votes.k, votes.names)
    return redundancy_weights(votes)


def heldout_agreement(model, votes: Votes, groups: list[np.ndarray], min_votes: int = 5,
                      tol: float = 1e-9, informed_only: bool = False, other_votes: bool = False) -> np.ndarray:
    """Per-LF agreement of the held-out posterior's label with the LF's vote (ties count 1/#tied);
    NaN for LFs with fewer than ``min_votes`` votes.

    ``informed_only``: score only the items where the held-out evidence is not all zero (for vote
    counts: where some other LF voted). Model selection keeps every item, so that a model using silence
    gets credit for it; weights use the informed items, or a broad LF would be judged on the items where
    the others are silent, at chance.

    ``other_votes``: score only the items where some LF outside the held-out group votes, the same items
    for every model (``HeldOutSelect``): where nothing else votes, the held-out posterior is the model's
    guess from silence and its prior, and on keyword LFs spread unevenly over the classes that guess
    rewards models that hand empty rows to the class with the most LFs.
    """
    base, term = model.lf_terms(votes)
    m = votes.m
    total = np.asarray(base, dtype=np.float64)[None, :]
    for j in range(m):  # accumulated, not stored: m x n x k floats would not fit for many LFs and classes
        total = total + term(j)
    out = np.full(m, np.nan)
    for j in range(m):  # over LFs, each vectorised over its items
        rows = np.flatnonzero(votes.hard[:, j] >= 0)
        if other_votes:
            rest = np.setdiff1d(np.arange(m), groups[j])
            rows = rows[(votes.hard[np.ix_(rows, rest)] >= 0).any(axis=1)] if len(rest) else rows[:0]
        if len(rows) < min_votes:
            continue
        z = total[rows] - sum(term(g)[rows] for g in groups[j])
        if informed_only:
            keep = np.abs(z).sum(axis=1) > tol
            if keep.sum() < min_votes and len(groups[j]) > 1:
                # The group leaves no other evidence (e.g. a few accurate LFs that all vote on every item
                # agree often enough to look redundant): hold out LF j alone rather than learn nothing.
                z = total[rows] - term(j)[rows]
                keep = np.abs(z).sum(axis=1) > tol
            z, rows = z[keep], rows[keep]
            if len(rows) < min_votes:
                continue
        tied = z >= z.max(axis=1, keepdims=True) - tol
        out[j] = float(np.mean(tied[np.arange(len(rows)), votes.hard[rows, j]] / tied.sum(axis=1)))
    return out
