"""Per-LF statistics: coverage, overlap, conflict, polarity and, with gold labels, accuracy and confusion."""

from __future__ import annotations

import numpy as np

from .base import Votes, as_votes, check_labels
from .majority import class_counts


class LFAnalysis:
    """Summary of a vote matrix, one row per LF (like Snorkel's ``LFAnalysis``, vectorised).

    ``LFAnalysis(L, y=None, lf_names=None, cardinality=None)``; ``rows()`` -> list of dicts,
    ``table()`` -> aligned text, ``summary()`` -> matrix-level figures.

    - coverage: share of items the LF votes on; overlap: share where it votes and another LF votes too;
      conflict: share where it votes and another LF votes a *different* class.
    - polarity: the classes the LF ever votes (unipolar LFs have one).
    - with ``y``: correct / incorrect vote counts, empirical accuracy (None when it never votes), and the
      confusion matrix ``confusion[true][voted]``.
    """

    def __init__(self, L, y=None, lf_names: list[str] | None = None, cardinality: int | None = None,
                 class_names: list[str] | None = None) -> None:
        self.votes = as_votes(L, cardinality, lf_names)
        self.y = None if y is None else check_labels(y, self.votes.n, self.votes.k, "y")
        self.class_names = class_names

    def _stats(self) -> dict[str, np.ndarray]:
        v = self.votes
        hard = v.hard
        voted = hard >= 0
        counts = class_counts(_hard_only(v))
        total = counts.sum(axis=1)
        same = counts[np.arange(v.n)[:, None], np.where(voted, hard, 0)]
        out = {
            "n_votes": voted.sum(axis=0),
            "coverage": voted.mean(axis=0),
            "overlap": (voted & (total[:, None] > 1)).mean(axis=0),
            "conflict": (voted & (total[:, None] - same > 0)).mean(axis=0),
        }
        if self.y is not None:
            hit = voted & (hard == self.y[:, None])
            out["correct"] = hit.sum(axis=0)
            out["incorrect"] = out["n_votes"] - out["correct"]
        return out

    def rows(self) -> list[dict]:
        v = self.votes
        st = self._stats()
        rows = []
        for j in range(v.m):  # loop over LFs, not items; each step is vectorised over items
            col = v.hard[:, j]
            pol = np.unique(col[col >= 0]).tolist()
            row = {"lf": v.names[j], "column": j, "polarity": [self._cls(c) for c in pol],
                   "n_votes": int(st["n_votes"][j]), "coverage": float(st["coverage"][j]),
                   "overlap": float(st["overlap"][j]), "conflict": float(st["conflict"][j])}
            if self.y is not None:
                nv = int(st["n_votes"][j])
                row["correct"] = int(st["correct"][j])
                row["incorrect"] = int(st["incorrect"][j])
                row["accuracy"] = float(st["correct"][j] / nv) if nv else None
                mask = col >= 0
                conf = np.bincount(self.y[mask] * v.k + col[mask], minlength=v.k * v.k).reshape(v.k, v.k)
                row["confusion"] = conf.tolist()
            rows.append(row)
        return rows

    def _cls(self, c: int):
        return self.class_names[c] if self.class_names else int(c)

    def summary(self) -> dict:
        voted = self.votes.hard >= 0
        per_item = voted.sum(axis=1)
        st = self._stats()
        out = {"n_items": int(self.votes.n), "n_lfs": int(self.votes.m), "cardinality": int(self.votes.k),
               "coverage": float((per_item > 0).mean()), "uncovered": int((per_item == 0).sum()),
               "overlap": float((per_item > 1).mean()), "mean_votes_per_item": float(per_item.mean()),
               "unipolar_lfs": int(sum(len(np.unique(self.votes.hard[:, j][voted[:, j]])) <= 1
                                       for j in range(self.votes.m)))}
        counts = class_counts(_hard_only(self.votes))
        out["conflict"] = float(((counts > 0).sum(axis=1) > 1).mean())
        if self.y is not None:
            nv = st["n_votes"].sum()
            out["vote_accuracy"] = float(st["correct"].sum() / nv) if nv else None
        return out

    def table(self, digits: int = 3) -> str:
        rows = self.rows()
        cols = ["lf", "polarity", "coverage", "overlap", "conflict"]
        if self.y is not None:
            cols += ["correct", "incorrect", "accuracy"]

        def fmt(x):
            if isinstance(x, float):
                return f"{x:.{digits}f}"
            if isinstance(x, list):
                return ",".join(map(str, x)) or "-"
            return "-" if x is None else str(x)

        cells = [[fmt(r[c]) for c in cols] for r in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
        lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)) for r in cells]
        return "\n".join(lines)


def _hard_only(votes: Votes) -> Votes:
    """The hard-vote view of ``votes`` (analysis counts votes, not probabilities)."""
    return Votes(votes.hard, None, votes.k, votes.names)
