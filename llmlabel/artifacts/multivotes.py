"""Multi-label votes: per (LF, label) a 1 (applies) / 0 (does not) / -1 (abstain), in the ordinary votes folder.

A multi-label LF over k labels is stored as k binary vote columns named ``v:<lf>/<label id>`` (int16), each a
2-class LF of the :class:`~llmlabel.artifacts.matrix.LabelMatrix` (classes ``["no", "yes"]``); an LF that gives
P(applies) keeps it as ``p:<lf>/<label id>`` = ``[1 - p, p]`` where it voted. The manifest's ``meta`` then
carries ``multi_label: {"lfs": [...], "labels": [...], "label_ids": [...]}`` (names in vote order), so the
writer, the resumable shards, ``depends_on`` and every reader stay those of :mod:`.votes`; only
:func:`read_multi_votes` folds the columns back into an ``(n, m, k)`` array.

>>> mv = MultiVotes(np.array([[[1, 0]], [[-1, 1]]]), ["kw"], ["joy", "anger"], ["j", "a"], ids=["x", "y"])
>>> mv.flat_names(), mv.to_matrix().votes.tolist()
(['kw/j', 'kw/a'], [[1, 0], [-1, 1]])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .matrix import LabelMatrix

__all__ = ["BINARY", "MultiVotes", "is_multi_label_votes", "read_multi_votes"]

#: The two classes of each per-label vote column.
BINARY = ["no", "yes"]


@dataclass
class MultiVotes:
    """``votes`` int16 ``(n, m, k)`` (1 / 0 / -1), LF names, label names and ids (k), item ids, and optional
    ``p_yes``: ``{lf: float (n, k)}`` P(label applies) from LFs that score (NaN where the LF abstained)."""

    votes: np.ndarray
    lf_names: list[str]
    labels: list[str]
    label_ids: list[str]
    ids: list[str] | None = None
    p_yes: dict[str, np.ndarray] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.votes = np.asarray(self.votes, dtype=np.int16)
        if self.votes.ndim != 3:
            raise InputError(f"multi-label votes must be (items, LFs, labels), got shape {self.votes.shape}")
        n, m, k = self.votes.shape
        if len(self.lf_names) != m or len(self.labels) != k or len(self.label_ids) != k:
            raise ConfigError(f"multi-label votes of shape {self.votes.shape} with {len(self.lf_names)} LF names, "
                              f"{len(self.labels)} labels and {len(self.label_ids)} label ids")
        bad = (self.votes < -1) | (self.votes > 1)
        if bad.any():
            i, j, c = np.argwhere(bad)[0]
            raise ConfigError(f"multi-label vote {int(self.votes[i, j, c])} at row {i}, LF {self.lf_names[j]!r}, "
                              f"label {self.labels[c]!r} is not -1, 0 or 1")

    def __len__(self) -> int:
        return self.votes.shape[0]

    def flat_names(self) -> list[str]:
        return [f"{lf}/{lid}" for lf in self.lf_names for lid in self.label_ids]

    def per_label(self) -> list[np.ndarray]:
        """k binary ``(n, m)`` vote matrices, what :class:`~llmlabel.labelmodel.MultiLabel` takes."""
        return [self.votes[:, :, j] for j in range(self.votes.shape[2])]

    def take(self, rows: np.ndarray) -> MultiVotes:
        rows = np.asarray(rows)
        return MultiVotes(self.votes[rows], self.lf_names, self.labels, self.label_ids,
                          None if self.ids is None else [self.ids[i] for i in rows],
                          {x: p[rows] for x, p in self.p_yes.items()}, dict(self.errors), dict(self.meta))

    def to_matrix(self) -> LabelMatrix:
        """The flat 2-class LabelMatrix the votes folder stores (LF-major columns)."""
        n, m, k = self.votes.shape
        flat = self.votes.reshape(n, m * k)
        names = self.flat_names()
        probs = {}
        for j, lf in enumerate(self.lf_names):
            p = self.p_yes.get(lf)
            if p is None:
                continue
            for c, lid in enumerate(self.label_ids):
                voted = flat[:, j * k + c] >= 0
                q = np.clip(np.nan_to_num(p[voted, c], nan=0.5), 0.0, 1.0)  # float sums may step past 1
                probs[f"{lf}/{lid}"] = np.stack([1 - q, q], 1).astype(np.float16)
        errors = {f"{lf}/{lid}": (self.errors.get(lf, 0) if c == 0 else 0)
                  for lf in self.lf_names for c, lid in enumerate(self.label_ids)}
        return LabelMatrix(flat, names, labels=BINARY, ids=self.ids, vote_probs=probs, errors=errors)

    def manifest_meta(self) -> dict:
        return {"multi_label": {"lfs": list(self.lf_names), "labels": list(self.labels),
                                "label_ids": list(self.label_ids)}}

    @classmethod
    def from_matrix(cls, L: LabelMatrix, info: Mapping) -> MultiVotes:
        lfs, labels, lids = list(info["lfs"]), list(info["labels"]), list(info["label_ids"])
        want = [f"{lf}/{lid}" for lf in lfs for lid in lids]
        if list(L.lf_names) != want:
            raise InputError("the votes' columns do not match their multi_label manifest entry")
        n, m, k = len(L), len(lfs), len(lids)
        votes = np.asarray(L.votes).reshape(n, m, k)
        p_yes = {}
        for j, lf in enumerate(lfs):
            cols = [L.vote_probs.get(f"{lf}/{lid}") for lid in lids] if L.vote_probs else [None] * k
            if all(c is None for c in cols):
                continue
            p = np.full((n, k), np.nan, np.float32)
            for c, rows in enumerate(cols):
                if rows is not None:
                    p[votes[:, j, c] >= 0, c] = np.asarray(rows, np.float32)[:, 1]
            p_yes[lf] = p
        errors = {lf: int(L.errors.get(f"{lf}/{lids[0]}", 0)) for lf in lfs}
        return cls(votes, lfs, labels, lids, None if L.ids is None else [str(i) for i in L.ids], p_yes, errors,
                   dict(getattr(L, "meta", {}) or {}))


def is_multi_label_votes(path: str | Path) -> bool:
    """Whether ``path`` is a votes folder written by multi-label LFs."""
    from .votes import read_votes_manifest

    path = Path(path)
    if not (path.is_dir() and (path / "_manifest.json").is_file()):
        return False
    return bool((read_votes_manifest(path).get("meta") or {}).get("multi_label"))


def read_multi_votes(path: str | Path, labels: Sequence[str] | None = None) -> tuple[MultiVotes, list[str] | None]:
    """``(MultiVotes, texts or None)`` from a multi-label votes folder; ``labels`` (the taxonomy's leaf names)
    must match the ones the votes were made with."""
    from .votes import read_votes

    L, _, texts = read_votes(path, BINARY)
    info = (L.meta or {}).get("multi_label")
    if not info:
        raise InputError("not a multi-label votes folder", path=path,
                         hint="label with a taxonomy that has multi_label: true")
    if labels is not None and list(labels) != list(info["labels"]):
        raise ConfigError("the taxonomy's labels differ from the ones the votes were made with", path=path)
    return MultiVotes.from_matrix(L, info), texts
