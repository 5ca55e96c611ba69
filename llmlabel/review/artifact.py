"""``labeled.parquet`` for the review and report packages: the artifacts reader, with ``source`` always filled.

(Files written before the ``source`` column existed read as all ``"model"``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.labeled import Labeled
from ..artifacts.labeled import read_labeled as _read

__all__ = ["Labeled", "read_labeled"]


def read_labeled(path: str | Path) -> Labeled:
    lab = _read(path)
    if lab.source is None:
        lab.source = np.full(len(lab), "model", dtype=object)
    lab.proba = np.asarray(lab.proba, dtype=np.float64)
    lab.confidence = np.asarray(lab.confidence, dtype=np.float64)
    return lab
