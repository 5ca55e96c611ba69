"""Which embedder embeds which item: one for all (a frozen embedder), or fold-honest with the run's tuned encoder.

With ``embedder: tuned`` (:class:`llmlabel.tuned.TunedEncoder`) the gold LFs read a space tuned on the gold
itself, so a gold row must be embedded by an encoder that never saw its label: the rows of cross-fitting fold
``f`` are embedded by ``tuned.for_fold(f)`` (tuned on the other half of the gold), every other item by the
full encoder. Everything an LF compares with such a row (the gold examples of the other folds, the label
prototypes) is embedded in that same space. A frozen embedder is one space for every fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _normalise(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def is_tuned(embedder: Any) -> bool:
    return hasattr(embedder, "for_fold") and hasattr(embedder, "part_for_fold")


class FoldSpaces:
    """``key(f)``: the space of an item of fold ``f`` (-1: not a gold item); ``encode(texts, folds)``: each text
    in its fold's space, unit rows; ``of(texts, key)``: texts in one space (cached per key for fixed texts).

    ``resolve`` turns an embedder spec into an object (the LFs pass their shared, cached loader)."""

    def __init__(self, embedder: Any, resolve=None) -> None:
        self.embedder, self.resolve = embedder, resolve
        self.tuned = is_tuned(embedder)
        self._cache: dict[tuple[str, int], np.ndarray] = {}

    def key(self, fold: int) -> str:
        return self.embedder.part_for_fold(int(fold)) if self.tuned else "all"

    def _embedder(self, key: str):
        if not self.tuned:
            return self.resolve(self.embedder) if self.resolve is not None else self.embedder
        return self.embedder.full if key == "full" else self.embedder.half(int(key[-1]))

    def of(self, texts: Sequence[str], key: str, *, cache_as: int | None = None) -> np.ndarray:
        """``texts`` in the space ``key``; ``cache_as`` (an id for a fixed text list, e.g. the gold's) keeps them."""
        ck = (key, cache_as) if cache_as is not None else None
        if ck is not None and ck in self._cache:
            return self._cache[ck]
        v = _normalise(self._embedder(key).encode(list(texts)))
        if ck is not None:
            self._cache[ck] = v
        return v

    def groups(self, folds: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """``[(key, rows)]``: the items grouped by the space their fold maps to (at most three groups)."""
        folds = np.asarray(folds, dtype=np.int64)
        keys = np.array([self.key(f) for f in folds], dtype=object) if self.tuned else np.full(len(folds), "all", object)
        return [(k, np.flatnonzero(keys == k)) for k in dict.fromkeys(keys.tolist())]

    def encode(self, texts: Sequence[str], folds: np.ndarray) -> np.ndarray:
        texts = list(texts)
        out: np.ndarray | None = None
        for key, rows in self.groups(folds):
            v = self.of([texts[i] for i in rows], key)
            if out is None:
                out = np.zeros((len(texts), v.shape[1]), np.float32)
            out[rows] = v
        return out if out is not None else np.zeros((0, 1), np.float32)


def run_encoder(gold, taxonomy, folder, settings=None, progress: bool = False):
    """The run's tuned encoder for ``gold`` (a :class:`~llmlabel.lf.gold.GoldSet`) over ``taxonomy``'s classes:
    fitted into ``folder`` (full + two halves by the gold's folds, label names and descriptions as anchors), or
    loaded from it when it holds a fit of the same inputs."""
    from ..tuned import TunedEncoder

    descs = [getattr(lab, "description", "") or "" for lab in taxonomy.labels]
    return TunedEncoder.fit(folder, texts=gold.texts, y=gold.y, labels=gold.labels, fold=gold.fold, ids=gold.ids,
                            descriptions=descs, settings=settings, source=gold.source, progress=progress)
