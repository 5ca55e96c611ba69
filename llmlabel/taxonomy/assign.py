"""Assigning items to a fitted taxonomy one by one: nearest label centroid, ``other`` below a per-label cut.

Induction assigns its own items with corpus-wide steps (outliers judged against the whole cluster). To
label a corpus much larger than the fitted sample, in slices or on many machines, each item needs a rule
that depends on nothing but the item: the centroid of each label's sample items, and a cut-off per label
learned on the sample (its median similarity minus ``outlier_z`` robust standard deviations).

>>> a = TaxonomyAssigner().fit(res.taxonomy, x_sample, res.assignments)   # doctest: +SKIP
>>> labels, scores = a.assign(embedder.encode(new_texts))                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from ..artifacts.taxonomy import OTHER
from .cluster import OUTLIER_Z, nearest

MIN_FOR_CUT = 10  # sample items a label needs before it gets a cut-off (fewer: never "other" by score)


class TaxonomyAssigner:
    """``fit(taxonomy, x, assignments)`` on a sample's normalised embeddings; ``assign(x)`` for any items."""

    def __init__(self, outlier_z: float = OUTLIER_Z) -> None:
        self.outlier_z = outlier_z

    def fit(self, taxonomy, x: np.ndarray, assignments: Sequence[str], prototypes: np.ndarray | None = None):
        """``assignments``: the sample items' leaf ids (or ``other``), aligned with the rows of ``x``.

        ``prototypes`` (one row per leaf, e.g. :func:`~llmlabel.taxonomy.refine.label_prototypes`) stand in
        for leaves that have no sample item; without them such a leaf is never assigned.
        """
        leaves = [lab.id for lab in taxonomy.leaves()]
        x = np.asarray(x, dtype=np.float32)
        if len(x) != len(assignments):
            raise ConfigError(f"{len(assignments)} assignments for {len(x)} embeddings")
        pos = {lid: j for j, lid in enumerate(leaves)}
        lab = np.asarray([pos.get(a, -1) for a in assignments], dtype=np.int64)
        cent = np.zeros((len(leaves), x.shape[1]), dtype=np.float64)
        m = lab >= 0
        np.add.at(cent, lab[m], x[m])
        count = np.bincount(lab[m], minlength=len(leaves))
        if prototypes is not None:
            cent[count == 0] = np.asarray(prototypes, dtype=np.float64)[count == 0]
        norms = np.linalg.norm(cent, axis=1, keepdims=True)
        cent = np.where(norms > 0, cent / np.maximum(norms, 1e-12), 0.0)
        self.label_ids_ = leaves
        self.centroids_ = cent.astype(np.float32)
        self.cutoffs_ = np.full(len(leaves), -np.inf, dtype=np.float32)
        own = np.sum(x[m] * self.centroids_[lab[m]], axis=1)  # each sample item's cosine to its own label
        for j in np.flatnonzero(count >= MIN_FOR_CUT):  # a loop over labels, not items
            s = own[lab[m] == j]
            med = float(np.median(s))
            mad = 1.4826 * float(np.median(np.abs(s - med)))
            if mad > 1e-6:
                self.cutoffs_[j] = med - self.outlier_z * mad
        return self

    def assign(self, x: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(leaf id or ``other`` per row, cosine to the nearest centroid) for normalised embeddings ``x``."""
        if not hasattr(self, "centroids_"):
            raise ConfigError("TaxonomyAssigner.assign before fit")
        lab, sc = nearest(np.asarray(x, dtype=np.float32), self.centroids_)
        names = np.asarray(self.label_ids_ + [OTHER], dtype=object)
        lab = np.where(sc < self.cutoffs_[lab], len(self.label_ids_), lab)
        return names[lab].tolist(), sc
