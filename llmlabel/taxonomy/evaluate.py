"""How well assignments match gold labels: NMI, ARI, purity, share left ``other``, label count."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..artifacts.taxonomy import OTHER


def evaluate_assignments(pred: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    """Scores of a clustering against gold labels. ``other`` counts as one more cluster (it is not dropped:
    leaving hard items out would flatter NMI)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    pred = np.asarray([str(p) for p in pred])
    gold = np.asarray([str(g) for g in gold])
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions but {len(gold)} gold labels")
    _, p = np.unique(pred, return_inverse=True)
    _, g = np.unique(gold, return_inverse=True)
    cont = np.zeros((p.max() + 1, g.max() + 1))
    np.add.at(cont, (p, g), 1)
    kept = pred != OTHER
    nmi_assigned = normalized_mutual_info_score(g[kept], p[kept]) if kept.any() else 0.0
    return {
        "nmi_assigned": round(float(nmi_assigned), 4),  # over the items not left ``other``
        "nmi": round(float(normalized_mutual_info_score(g, p)), 4),
        "ari": round(float(adjusted_rand_score(g, p)), 4),
        "purity": round(float(cont.max(1).sum() / len(pred)), 4),
        "other_share": round(float((pred == OTHER).mean()), 4),
        "n_labels": int(len(set(pred.tolist()) - {OTHER})),
        "n_gold": int(g.max() + 1),
    }
