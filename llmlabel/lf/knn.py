"""kNN LFs: a vote of the gold examples nearest to a text in embedding space.

``KnnLF`` embeds the gold set once; an item's class scores are a similarity-weighted vote of its ``k``
nearest gold examples (weights ``exp((cos - best) / temperature)``, so near-ties share and far neighbours
fade), and it abstains when even the nearest gold example is less similar than ``threshold``. On a gold item
it sees only the gold of the other cross-fitting folds (:class:`~llmlabel.lf.gold.GoldSet`), so its votes
there are out-of-fold and the gold can also be the dev set.

``GoldNeighbours`` holds the same search for the few-shot prompted LF, which takes each item's nearest gold
examples, one per label, as its in-context examples.

>>> from llmlabel.lf.gold import GoldSet
>>> g = GoldSet(["1", "2"], ["lost my card", "refund please"], [0, 1], labels=["lost", "refund"])
>>> KnnLF("knn", g, embedder="wordllama", threshold=0.2).apply(["my card is lost"])[0].tolist()   # doctest: +SKIP
[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN, LabelingFunction
from .embedding import _embedder
from .gold import GoldSet
from .spaces import FoldSpaces


class GoldNeighbours:
    """Cosine similarities of texts to the gold set, with each gold item's own fold masked out.

    With the run's tuned encoder as ``embedder`` a gold item of fold ``f`` and the gold it is compared with
    are both embedded by the encoder tuned without fold ``f``'s half (:class:`~llmlabel.lf.spaces.FoldSpaces`).
    """

    def __init__(self, gold: GoldSet, embedder: Any = "minilm") -> None:
        self.gold = gold
        self.embedder = embedder
        self.spaces = FoldSpaces(embedder, _embedder)

    @property
    def vectors(self) -> np.ndarray:
        """The gold in the space of non-gold items."""
        return self.spaces.of(self.gold.texts, self.spaces.key(-1), cache_as=0)

    def similarities(self, texts: Sequence[str], ids: Sequence | None) -> np.ndarray:
        """(n, g) cosines; ``-inf`` where the gold row is in the item's own fold (cross-fitting)."""
        own = self.gold.item_folds(ids, len(texts))
        texts = list(texts)
        sims = np.empty((len(texts), len(self.gold)), dtype=np.float32)
        for key, rows in self.spaces.groups(own):
            vecs = self.spaces.of([texts[i] for i in rows], key)
            sims[rows] = vecs @ self.spaces.of(self.gold.texts, key, cache_as=0).T
        mask = (own[:, None] >= 0) & (own[:, None] == self.gold.fold[None, :])
        sims[mask] = -np.inf
        return sims

    def examples(self, texts: Sequence[str], ids: Sequence | None, shots: int) -> list[list[tuple[str, int]]]:
        """Per text, up to ``shots`` gold examples, most similar first, at most one per label.

        One per label keeps the prompt from showing five examples of one class, which pulls a small LLM
        towards that class whatever the text says.
        """
        sims = self.similarities(texts, ids)
        order = np.argsort(-sims, axis=1, kind="stable")
        y = self.gold.y
        out: list[list[tuple[str, int]]] = []
        for i in range(len(sims)):  # prompt assembly is per item by nature; the LLM call dwarfs it
            picks: list[tuple[str, int]] = []
            used: set[int] = set()
            for g in order[i]:
                if len(picks) >= shots or not np.isfinite(sims[i, g]):
                    break
                if int(y[g]) not in used:
                    used.add(int(y[g]))
                    picks.append((self.gold.texts[g], int(y[g])))
            out.append(picks[::-1])  # the most similar example sits right before the text to label
        return out


class KnnLF(LabelingFunction):
    """Similarity-weighted vote of the ``k`` nearest gold examples; abstain when the nearest is under ``threshold``.

    gold: a :class:`GoldSet` over the run's labels; embedder: an embedder object or spec (default MiniLM).
    ``threshold="auto"`` picks the cut on the gold out-of-fold: the lowest nearest-gold cosine at which the
    out-of-fold votes are still right at ``target_precision`` (:class:`~llmlabel.lf.gold.FoldThresholds`;
    gold items get the cut chosen without their fold). ``proba`` is the normalised vote (mass only on
    classes among the neighbours). After the first ``apply``, ``threshold_`` is the cut used for non-gold items.
    """

    kind = "knn"

    def __init__(self, name: str, gold: GoldSet, *, embedder: Any = "minilm", k: int = 10,
                 threshold: float | str = 0.5, temperature: float = 0.05, target_precision: float = 0.6) -> None:
        super().__init__(name, gold.labels)
        if k < 1:
            raise ConfigError(f"LF '{name}': k must be at least 1")
        if temperature <= 0:
            raise ConfigError(f"LF '{name}': temperature must be > 0")
        if threshold != "auto" and not isinstance(threshold, (int, float)):
            raise ConfigError(f"LF '{name}': threshold must be a number or 'auto'")
        self.gold = gold
        self.k, self.temperature, self.target_precision = int(k), float(temperature), float(target_precision)
        self.threshold = threshold if threshold == "auto" else float(threshold)
        self.neighbours = GoldNeighbours(gold, embedder)
        self.thresholds_ = None  # FoldThresholds once chosen (threshold="auto")

    @property
    def threshold_(self) -> float:
        return self.thresholds_.overall if self.thresholds_ is not None else self.threshold

    def _vote(self, sims: np.ndarray):
        """(votes before the cut, proba, nearest cosine) from (n, g) similarities."""
        n, g = sims.shape
        kk = min(self.k, g)
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < g else np.tile(np.arange(g), (n, 1))
        s = np.take_along_axis(sims, top, axis=1)
        best = s.max(1, keepdims=True)
        ok = np.isfinite(best[:, 0])
        w = np.where(np.isfinite(s), np.exp((s - np.where(ok[:, None], best, 0.0)) / self.temperature), 0.0)
        scores = np.zeros((n, len(self.labels)), dtype=np.float64)
        np.add.at(scores, (np.repeat(np.arange(n), kk), self.gold.y[top].ravel()), w.ravel())
        tot = scores.sum(1, keepdims=True)
        proba = np.where(tot > 0, scores / np.where(tot > 0, tot, 1.0), 1.0 / len(self.labels))
        return proba.argmax(1).astype(np.int16), proba, np.where(ok, best[:, 0], -np.inf)

    def choose_threshold(self):
        """The cross-fitted cuts from the gold's own out-of-fold votes (each gold item sees the other folds)."""
        from .gold import FoldThresholds

        if self.thresholds_ is None:
            votes, _, best = self._vote(self.neighbours.similarities(self.gold.texts, self.gold.ids))
            self.thresholds_ = FoldThresholds(self.gold, best, votes == self.gold.y, self.target_precision)
        return self.thresholds_

    def _apply(self, texts, items):
        ids = None if items is None else [it.get("id") for it in items]
        votes, proba, best = self._vote(self.neighbours.similarities(texts, ids))
        cut = self.choose_threshold().for_items(ids, len(texts)) if self.threshold == "auto" else self.threshold
        votes[~np.isfinite(best) | (best < cut)] = ABSTAIN
        return votes, proba.astype(np.float32)
