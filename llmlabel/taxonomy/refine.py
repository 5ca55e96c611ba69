"""``--refine``: keep a taxonomy's labels and ids, assign new items, propose labels only from the misfits."""

from __future__ import annotations

import numpy as np

from ..artifacts.taxonomy import LabelDef, Taxonomy
from .cluster import _mark_outliers, cluster_embeddings, nearest
from .labeldefs import build_labels, embed_texts

MIN_NEW_LABEL = 10  # items that fit no label needed to propose one new label


def label_prototypes(tax: Taxonomy, embedder) -> np.ndarray:
    """One vector per leaf label: the mean of its name+description and its example texts."""
    leaves = tax.leaves()
    docs, owner = [], []
    for i, lab in enumerate(leaves):
        docs.append(f"{lab.name}. {lab.description} {', '.join(lab.keyphrases)}".strip())
        owner.append(i)
        for e in lab.examples:
            docs.append(e.text)
            owner.append(i)
    v = embed_texts(embedder, docs)
    cent = np.zeros((len(leaves), v.shape[1]), dtype=np.float64)
    np.add.at(cent, np.asarray(owner), v)
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


#: Robust z below which an item fits none of the existing labels (candidates for new labels): stricter than the
#: clustering's ``other`` rule on purpose, as a few extra candidates only cost a slightly bigger new-label pass.
MISFIT_Z = 2.5


def assign_by_prototypes(x: np.ndarray, cent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest label prototype, with two half-steps of centroids towards their items; misfits are -1."""
    lab, sc = nearest(x, cent)
    for _ in range(2):  # prototypes from a name and a few examples are rough: let them follow their items
        upd = cent.astype(np.float64).copy()
        for c in range(len(cent)):
            m = lab == c
            if m.sum() >= 3:
                upd[c] = 0.5 * cent[c] + 0.5 * x[m].mean(0)
        upd /= np.maximum(np.linalg.norm(upd, axis=1, keepdims=True), 1e-12)
        lab, sc = nearest(x, upd.astype(np.float32))
    # misfits: far below their label's typical similarity, or below the corpus-wide low tail
    lab = _mark_outliers(lab, sc, MISFIT_Z)
    med = np.median(sc)
    lab[sc < med - 3 * 1.4826 * np.median(np.abs(sc - med))] = -1
    return lab, sc


def refine_taxonomy(base: Taxonomy, x: np.ndarray, texts: list[str], ids: list[str], embedder, *,
                    max_new: int = 30, seed: int = 0):
    """Returns (taxonomy with the user's labels first + proposed ones, item -> leaf index or -1, scores).

    The new corpus is clustered afresh; a fresh cluster whose centroid is about as close to an existing label
    as the clusters that best match existing labels are (>= 90% of their median similarity) is covered by
    it; the other clusters become proposed labels. Items of covered clusters go to the nearest label.
    """
    tax = base.model_copy(deep=True)
    cent = label_prototypes(tax, embedder)
    n_leaves = len(cent)
    k = int(min(n_leaves + max_new, max(1, len(x) // MIN_NEW_LABEL)))
    fresh = cluster_embeddings(x, k, seed=seed, min_size=max(MIN_NEW_LABEL // 2, 1), outlier_z=0)
    sim = fresh.centroids @ cent.T  # (fresh clusters, labels)
    best = sim.argmax(1)
    mutual = [float(sim[:, j].max()) for j in range(n_leaves)]
    tau = 0.9 * float(np.median(mutual))
    sizes = np.bincount(fresh.labels, minlength=len(fresh.centroids))
    new_clusters = [c for c in range(len(fresh.centroids))
                    if sim[c, best[c]] < tau and sim[:, best[c]].argmax() != c and sizes[c] >= MIN_NEW_LABEL // 2]
    lab, sc = assign_by_prototypes(x, cent)
    if new_clusters and max_new > 0:
        new_clusters = new_clusters[:max_new]
        remap = np.full(len(fresh.centroids), -1)
        remap[new_clusters] = np.arange(len(new_clusters))
        olab = remap[fresh.labels]
        moved = np.flatnonzero(olab >= 0)
        taken = set(tax.ids())
        new: list[LabelDef] = build_labels(x, texts, ids, olab, fresh.centroids[new_clusters], seed=seed,
                                           proposed=True, taken=taken)
        for lab_ in new:
            lab_.description = "Proposed by --refine from items that fit no existing label. " + lab_.description
        lab[moved] = n_leaves + olab[moved]
        sc[moved] = fresh.scores[moved]
        tax.labels.extend(new)
    tax.made_with = {**tax.made_with, "refined": True, "proposed_labels": len(new_clusters)}
    return tax, lab, sc
