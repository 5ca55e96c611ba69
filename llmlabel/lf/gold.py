"""A small gold set (``--gold gold.jsonl``) for few-shot LFs, with cross-fitting folds.

Rows: ``id`` (matching the corpus), ``text``, ``label`` (a taxonomy label name or id; a one-element list is
accepted). The same items are usually the label model's dev set too, so an LF built from the gold must
not vote on a gold item with that item's own label in hand: every gold row gets a fold
(:attr:`GoldSet.fold`, label-stratified, seeded), and on an item whose id is a gold id the LF uses only the
gold of the other folds. Votes on the gold items are then honest out-of-fold estimates, and dev accuracy,
label-model selection and calibration measured on them stay honest.

>>> g = GoldSet(["a", "b", "c", "d"], ["x1", "x2", "y1", "y2"], [0, 0, 1, 1], labels=["x", "y"], folds=2)
>>> sorted(g.fold.tolist())
[0, 0, 1, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError


class GoldSet:
    """Gold items (ids, texts, class indices over ``labels``) and their cross-fitting folds."""

    def __init__(self, ids: Sequence, texts: Sequence[str], y: Sequence[int], *, labels: Sequence[str],
                 folds: int = 5, seed: int = 0, source: str | None = None) -> None:
        self.ids = [str(i) for i in ids]
        self.texts = [str(t) for t in texts]
        self.y = np.asarray(y, dtype=np.int64)
        self.labels = list(labels)
        self.source = source
        if not (len(self.ids) == len(self.texts) == len(self.y)):
            raise ConfigError("gold ids, texts and labels differ in length")
        if len(self.y) == 0:
            raise InputError("the gold set has no rows", path=source)
        if (self.y < 0).any() or (self.y >= len(self.labels)).any():
            raise ConfigError(f"gold labels must be class indices in [0, {len(self.labels)})", path=source)
        dup = len(set(self.ids)) != len(self.ids)
        if dup:
            seen: set[str] = set()
            first = next(i for i in self.ids if i in seen or seen.add(i))
            raise InputError(f"gold id {first!r} appears twice", path=source, field="id")
        self.folds = max(1, min(int(folds), len(self.y)))
        self.fold = self._stratified_folds(seed)
        self._forced = -1  # the fold non-gold items count as in (``as_fold``); -1: none
        self._pos = {i: r for r, i in enumerate(self.ids)}

    def _stratified_folds(self, seed: int) -> np.ndarray:
        # Deal each class's items round-robin over the folds (after a seeded shuffle) so every fold sees
        # nearly every class: with ~1 example per class a plain random split would strip whole classes.
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.y))
        order = order[np.argsort(self.y[order], kind="stable")]
        fold = np.empty(len(self.y), dtype=np.int64)
        offset = rng.integers(self.folds)
        fold[order] = (np.arange(len(order)) + offset) % self.folds
        return fold

    def __len__(self) -> int:
        return len(self.ids)

    def item_folds(self, ids: Sequence | None, n: int) -> np.ndarray:
        """The fold of each item that is a gold item (by id), -1 for the rest (they see every gold row; inside
        :meth:`as_fold`, the rest are in that fold)."""
        rest = self._forced
        if ids is None:
            return np.full(n, rest, dtype=np.int64)
        return np.fromiter((self.fold[self._pos[str(i)]] if str(i) in self._pos else rest for i in ids),
                           dtype=np.int64, count=n)

    @contextmanager
    def as_fold(self, f: int):
        """Within this block, items outside the gold set count as members of fold ``f``: the LFs built from the
        gold vote on them without fold ``f``'s rows and cuts, as they would if fold ``f`` had never been
        labeled (the cross-fitted world of the safety net, :mod:`llmlabel.lf.crossfit`)."""
        if not 0 <= f < self.folds:
            raise ConfigError(f"fold {f} is not in [0, {self.folds})")
        self._forced = int(f)
        try:
            yield self
        finally:
            self._forced = -1


class MultiGoldSet(GoldSet):
    """Multi-label gold: ``Y`` (n, k) 0/1 over ``labels`` (the taxonomy's leaves), ``label_sets`` (names), and the
    same cross-fitting folds (:meth:`item_folds`, :meth:`as_fold`). The folds are stratified by each row's rarest
    label (``y`` holds that stratum, ``len(labels)`` for a row without labels), so the few gold positives of a rare
    label are spread over the folds instead of landing in one."""

    def __init__(self, ids: Sequence, texts: Sequence[str], label_sets: Sequence[Sequence[str]], *,
                 labels: Sequence[str], folds: int = 5, seed: int = 0, source: str | None = None) -> None:
        from ..labelsets import label_set_matrix

        labels = list(labels)
        try:
            Y = label_set_matrix(label_sets, {x: j for j, x in enumerate(labels)}, np.int8)
        except KeyError as e:
            raise ConfigError(f"gold label {e.args[0]!r} is not a leaf of the taxonomy", path=source,
                              field="labels") from None
        count = Y.sum(0).astype(np.int64)
        rarest = np.where(Y > 0, count[None, :], np.iinfo(np.int64).max).argmin(1)
        strata = np.where(Y.any(1), rarest, len(labels))
        super().__init__(ids, texts, strata, labels=labels + ["(no label)"], folds=folds, seed=seed, source=source)
        self.labels, self.Y = labels, Y
        self.label_sets = [[str(x) for x in s] for s in label_sets]


def load_multi_gold(path: str | Path, taxonomy, *, folds: int = 5, seed: int = 0) -> MultiGoldSet:
    """The multi-label gold file (:func:`read_multi_gold`) with its cross-fitting folds."""
    ids, texts, labs = read_multi_gold(path, taxonomy)
    return MultiGoldSet(ids, texts, labs, labels=[lab.name for lab in taxonomy.leaves()], folds=folds, seed=seed,
                        source=str(path))


def load_gold(path: str | Path, labels: Sequence[str], *, ids: Sequence[str] | None = None, folds: int = 5,
              seed: int = 0, text_field: str = "text", label_field: str = "label") -> GoldSet:
    """Read a gold JSONL/CSV (through :mod:`llmlabel.artifacts.gold`); labels are taxonomy class names (or ids
    in ``ids``, same order as ``labels``). Errors name the file, line and field.
    """
    from ..artifacts.gold import read_gold

    labels = list(labels)
    g = read_gold(path, text_field=text_field, label_field=label_field, need_text=True)
    y = g.index(labels, aliases=ids, several="multi-label gold rows (a list of several labels) are not supported "
                                             "by few-shot LFs yet")
    return GoldSet(g.ids, g.texts, y, labels=labels, folds=folds, seed=seed, source=str(path))


def precision_threshold(score: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The lowest ``t`` such that the votes with ``score >= t`` are correct at a rate of at least ``target``.

    ``score``: each gold item's out-of-fold confidence (a cosine or a probability); ``correct``: whether its
    out-of-fold vote was right. Cuts fall only between distinct scores (ties vote together). ``inf`` (always
    abstain) when even the most confident votes miss the target; ``-inf`` (never abstain) when all of them
    together meet it.
    """
    score = np.asarray(score, dtype=np.float64)
    ok = np.isfinite(score)
    score, correct = score[ok], np.asarray(correct, dtype=bool)[ok]
    if len(score) == 0:
        return float("inf")
    order = np.argsort(-score, kind="stable")
    s, c = score[order], correct[order]
    precision = np.cumsum(c) / np.arange(1, len(s) + 1)
    cut = np.r_[s[1:] < s[:-1], True]  # positions after which the next score is strictly lower
    good = np.flatnonzero(cut & (precision >= target - 1e-12))
    if len(good) == 0:
        return float("inf")
    last = good[-1]
    return float("-inf") if last == len(s) - 1 else float(s[last])


class FoldThresholds:
    """Abstain thresholds chosen on the gold out-of-fold, themselves cross-fitted.

    ``overall``: chosen on every gold item, used for items outside the gold set; ``per_fold[f]``: chosen on
    the gold items outside fold ``f``, used for the gold items in fold ``f``, so that no gold item's vote
    passes a cut that its own label helped to place. ``report()`` says what the choice was made on.
    """

    def __init__(self, gold: GoldSet, score: np.ndarray, correct: np.ndarray, target: float) -> None:
        score, correct = np.asarray(score, dtype=np.float64), np.asarray(correct, dtype=bool)
        self.target = float(target)
        self.overall = precision_threshold(score, correct, target)
        self.per_fold = np.array([precision_threshold(score[gold.fold != f], correct[gold.fold != f], target)
                                  for f in range(gold.folds)])
        self.gold = gold
        on = score >= self.overall
        self.coverage = float(on.mean())
        self.precision = float(correct[on].mean()) if on.any() else None
        self.oof_accuracy = float(correct.mean())

    def for_items(self, ids, n: int) -> np.ndarray:
        """(n,) thresholds: the item's fold's for gold items, the overall one for the rest."""
        own = self.gold.item_folds(ids, n)
        return np.where(own >= 0, self.per_fold[np.maximum(own, 0)], self.overall)

    def report(self) -> dict:
        return {"threshold": self.overall, "target_precision": self.target, "gold_coverage": round(self.coverage, 4),
                "gold_precision": None if self.precision is None else round(self.precision, 4),
                "gold_oof_accuracy": round(self.oof_accuracy, 4)}


def read_multi_gold(path: str | Path, taxonomy) -> tuple[list[str], list[str], list[list[str]]]:
    """(ids, texts, label-name lists) of a gold JSONL/CSV with ``id``, ``text`` and ``labels`` (a list, or
    names joined by ``|`` or ``,``; ``label`` is read when ``labels`` is absent). Names or ids of leaves.
    Read through :mod:`llmlabel.artifacts.gold`; rows without an id are numbered by their line."""
    from ..artifacts.gold import read_gold

    leaves = taxonomy.leaves()
    names = [lab.name for lab in leaves]
    g = read_gold(path, label_field="labels", fallback_field="label", split="|,", need_ids=False, need_text=True,
                  allow_empty=True)
    Y = g.matrix(names, aliases=[lab.id for lab in leaves])
    labs = [[names[j] for j in np.flatnonzero(row)] for row in Y]
    ids = list(g.ids) if g.ids is not None else [str(x) for x in g.lines]
    return ids, list(g.texts), labs
