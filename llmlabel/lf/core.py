"""The labeling-function interface: a named function from a batch of items to one vote per item.

Every LF has ``name`` and ``apply(texts, items=None) -> (votes int16 (n,), proba float32 (n, k) | None)``;
``-1`` (:data:`ABSTAIN`) means "no opinion". Python LFs are written per item with the decorator; an LF
that raises on one item abstains on it and counts the error instead of stopping the run.

>>> @labeling_function(name="has_refund", labels=["refund", "other"])
... def has_refund(item):
...     return "refund" if "refund" in item["text"] else ABSTAIN
>>> votes, _ = has_refund.apply(["a refund please", "hello"])
>>> votes.tolist()
[0, -1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..artifacts.matrix import (
    ABSTAIN,  # the one definition, shared with the label models
)
from ..errors import ConfigError


class LabelingFunction:
    """Base class: subclasses implement ``_apply(texts, items) -> (votes, proba | None)``.

    ``labels`` are the class names in vote order (vote ``j`` means ``labels[j]``); ``errors`` counts
    items on which the LF raised and therefore abstained.
    """

    kind = "base"

    def __init__(self, name: str, labels: Sequence[str] | None = None) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError("a labeling function needs a non-empty name")
        self.name = name
        self.labels = list(labels) if labels is not None else None
        self.errors = 0
        self.last_error: str | None = None

    @property
    def cost(self) -> str:
        """``"cheap"`` (vectorised, run on the whole batch) or ``"llm"`` (batched through an engine)."""
        return "cheap"

    def apply(self, texts: Sequence[str], items: Sequence[dict] | None = None):
        votes, proba = self._apply(list(texts), items)
        votes = np.asarray(votes, dtype=np.int16)
        if votes.shape != (len(texts),):
            raise ConfigError(f"LF '{self.name}' returned {votes.shape} votes for {len(texts)} items")
        if proba is not None:
            proba = np.asarray(proba, dtype=np.float32)
        return votes, proba

    def _apply(self, texts: list[str], items):
        raise NotImplementedError

    def _label_index(self, value: Any) -> int:
        """A returned vote (class index, label name or ABSTAIN/None) as a class index."""
        if value is None:
            return ABSTAIN
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"LF returned a bool ({value}); return a label name, a class index or ABSTAIN")
        if isinstance(value, (int, np.integer)):
            v = int(value)
            k = len(self.labels) if self.labels else None
            if v < ABSTAIN or (k is not None and v >= k):
                raise ValueError(f"vote {v} outside [-1, {k})")
            return v
        if self.labels is None:
            raise TypeError(f"LF returned {value!r} but has no label list to look it up in")
        try:
            return self._index[value]
        except KeyError:
            raise ValueError(f"vote {value!r} is not one of the labels") from None

    @property
    def _index(self) -> dict:
        idx = getattr(self, "_idx_cache", None)
        if idx is None:
            idx = self._idx_cache = {lab: i for i, lab in enumerate(self.labels or [])}
        return idx

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class PythonLF(LabelingFunction):
    """A Python function ``f(item) -> label name | class index | ABSTAIN`` applied item by item.

    ``item`` is the corpus row (a dict with at least ``"text"``). Exceptions on one item become an
    abstain and increment ``errors``.
    """

    kind = "python"

    def __init__(self, name: str, fn: Callable[[dict], Any], labels: Sequence[str] | None = None) -> None:
        super().__init__(name, labels)
        self.fn = fn

    def __call__(self, item: dict) -> Any:
        return self.fn(item)

    def _apply(self, texts, items):
        rows = items if items is not None else [{"text": t} for t in texts]
        out = np.full(len(rows), ABSTAIN, dtype=np.int16)
        for i, row in enumerate(rows):  # user code is per item by design
            try:
                out[i] = self._label_index(self.fn(row))
            except Exception as e:  # noqa: BLE001 - one bad item must not stop the run
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
        return out, None


def labeling_function(name: str | None = None, labels: Sequence[str] | None = None):
    """Decorator turning ``f(item) -> label | ABSTAIN`` into a :class:`PythonLF` (name defaults to f's)."""

    def wrap(fn: Callable[[dict], Any]) -> PythonLF:
        return PythonLF(name or fn.__name__, fn, labels)

    return wrap
