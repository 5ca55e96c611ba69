"""Label sets as 0/1 matrices: the one place the LFs' gold and the students' targets turn names into columns; and
the one text per label that every embedding of a label reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def label_set_matrix(label_sets: Sequence[Sequence[str]], index: Mapping[str, int], dtype=np.float32) -> np.ndarray:
    """``(n, len(index))`` matrix with a 1 where row ``i``'s set holds the label; ``index``: name -> column.

    Raises ``KeyError(name)`` for the first name not in ``index``, for the caller to word as its own error.
    """
    lens = np.fromiter((len(v) for v in label_sets), dtype=np.int64, count=len(label_sets))
    flat = [x for v in label_sets for x in v]
    cols = np.fromiter((index[x] for x in flat), dtype=np.int64, count=len(flat))
    Y = np.zeros((len(label_sets), len(index)), dtype)
    Y[np.repeat(np.arange(len(label_sets)), lens), cols] = 1
    return Y


def label_texts(names: Sequence[str], descriptions: Sequence[str] | None = None) -> list[str]:
    """One text per label: ``name: description``, or the name when it has no description. What the taxonomy
    records with the votes (the embedding LFs' and the anchored probe's label texts) and the tuned encoder's
    anchors: one spelling, so the spaces they build agree."""
    descriptions = descriptions or [""] * len(names)
    return [f"{n}: {d}" if d else str(n) for n, d in zip(names, descriptions)]
