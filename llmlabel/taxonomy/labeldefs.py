"""Labels from clusters: embedding in length order, key-phrase names, representatives, unique ids, parents.

Shared by ``induce`` (fresh clusters), ``refine`` (proposed labels) and ``tnt`` (LLM-named labels), so that
none of those imports another.
"""

from __future__ import annotations

import numpy as np

from ..artifacts.taxonomy import OTHER, LabelDef, slugify
from . import naming


def embed_texts(embedder, texts: list[str], *, progress: bool = False) -> np.ndarray:
    """Encode in length order (less padding: ~2x faster on mixed lengths), rows returned in input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    x = embedder.encode([texts[i] for i in order], progress=progress)
    out = np.empty_like(x)
    out[order] = x
    return out


def build_labels(x, texts, ids, lab, cent, *, seed: int = 0, prefix: str = "", proposed: bool = False,
                 taken: set[str] | None = None) -> list[LabelDef]:
    k = len(cent)
    phrases = naming.keyphrases(texts, lab, k, seed=seed)
    names = naming.make_names(phrases)
    examples = naming.representatives(x, lab, cent, texts, ids)
    n = max(len(texts), 1)
    taken = set() if taken is None else taken
    out = []
    for c in range(k):
        share = float((lab == c).sum()) / n
        out.append(LabelDef(id=unique_id(prefix + slugify(names[c]), taken), name=names[c],
                            description=naming.describe(phrases[c], share), examples=examples[c],
                            keyphrases=phrases[c], proposed=proposed))
    return out


def unique_id(base: str, taken: set[str]) -> str:
    cand, i = base, 2
    while cand in taken or cand == OTHER:
        cand, i = f"{base}_{i}", i + 1
    taken.add(cand)
    return cand


def add_parents(labels: list[LabelDef], x, texts, lab, cent, *, seed: int = 0) -> list[LabelDef]:
    """Group leaf labels into ~sqrt(k) parents (Ward on centroids); parents are named from their items."""
    from .cluster import _ward

    k = len(cent)
    g = _ward(cent.astype(np.float64), np.bincount(lab[lab >= 0], minlength=k).astype(np.float64) + 1,
              max(2, int(round(np.sqrt(k)))))
    plab = np.where(lab >= 0, g[np.maximum(lab, 0)], -1)
    pc = np.stack([cent[g == p].mean(0) for p in range(g.max() + 1)])
    pc /= np.linalg.norm(pc, axis=1, keepdims=True)
    taken = {lab_.id for lab_ in labels}
    parents = build_labels(x, texts, [""] * len(texts), plab, pc, seed=seed, prefix="group_", taken=taken)
    for p in parents:
        p.examples = []
    for i, lab_ in enumerate(labels):
        lab_.parent = parents[g[i]].id
    return parents + labels
