"""Item ids: one policy for every file that carries them (corpus, gold/dev labels, votes, labeled files).

- An id is a string. A number is written the way JSON writes an integer: ``1``, ``1.0`` and ``"1"`` are the
  same id ``"1"`` (CSV readers and pandas turn integer columns into floats, so ``1.0`` must not be another item).
  A fractional number keeps its digits (``1.5`` -> ``"1.5"``).
- A missing, null, NaN/inf, boolean, list or object id is refused, naming the file, line and field.
- **Duplicates are refused**: an id that was already used in the same file is an error naming the file, the
  line (or row) of the second use and the id. Nothing picks "the first" or "the last" row silently.

>>> canonical_id(7), canonical_id(7.0), canonical_id("7"), canonical_id(2.5)
('7', '7', '7', '2.5')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputError


def canonical_id(value: Any) -> str | None:
    """The id as a string, or ``None`` when ``value`` cannot be an id (missing, NaN, bool, container)."""
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalars
        return canonical_id(value.item())
    return None


def id_or_error(value: Any, *, path: str | Path | None, line: int | None, field: str = "id") -> str:
    """:func:`canonical_id`, or an :class:`InputError` naming the file, line and field."""
    rid = canonical_id(value)
    if rid is None:
        what = "missing" if value is None or value == "" else f"not a usable id: {value!r}"
        raise InputError(f"id is {what}", path=path, line=line, field=field,
                         hint="every row needs a non-empty string or integer id")
    return rid


class UniqueIds:
    """Tracks the ids of one file as they are read and refuses the second use of one.

    ``where`` names the unit of position in the message: ``line`` (text files) or ``row`` (Parquet, 0-based).
    """

    def __init__(self, path: str | Path | None, *, what: str = "item", where: str = "line") -> None:
        self.path, self.what, self.where = path, what, where
        self._seen: set[str] = set()

    def add(self, rid: str, pos: int | None) -> None:
        if rid in self._seen:
            self.duplicate(rid, pos)
        self._seen.add(rid)

    def duplicate(self, rid: str, pos: int | None) -> None:
        at = {"line": pos} if self.where == "line" else {}
        msg = f"duplicate {self.what} id {rid!r}" + (f" (row {pos})" if self.where == "row" and pos is not None else "")
        raise InputError(msg, path=self.path, field="id", **at,
                         hint="ids must be unique within a file: remove or rename the repeated rows")


def check_unique(ids: Iterable[Any], *, path: str | Path | None, what: str = "item", where: str = "row",
                 base: int = 0) -> None:
    """Refuse a repeated id in ``ids`` (already canonical strings), naming the position of its second use.
    The set comparison runs in C; the Python walk only happens to locate a duplicate that exists."""
    ids = list(ids)
    if len(set(ids)) == len(ids):
        return
    seen: set = set()
    i = next(k for k, x in enumerate(ids) if x in seen or seen.add(x))
    UniqueIds(path, what=what, where=where).duplicate(str(ids[i]), i + base)
