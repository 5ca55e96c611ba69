"""Gold / dev label files: the labels people gave (``--gold``, ``--dev``, ``review import``), one reader and one
writer for every stage that uses them.

A gold file is JSONL, CSV, TSV or Parquet with one row per item:

- ``id`` — the item's id in the corpus (:mod:`llmlabel.ids`: ``1`` and ``"1"`` are one id; a repeated id is an
  error). Files that key rows by text (a distill or xmc dev set) may leave it out.
- ``label`` (or another ``label_field``) — a class name, a list of names (multi-label), or names joined by
  ``|``; names are normalised as the taxonomy normalises them (:func:`~llmlabel.artifacts.taxonomy.normalize_name`).
- ``text`` — the item's text, for the stages that learn from it (few-shot and knn LFs, distill dev sets).
- ``strategy`` — optional, how the item was picked for review (``random`` rows are a fair sample).
- anything else is kept (``review import`` writes ``n_annotators``, ``agreement``, ...).

Spreadsheet exports read as they are: a UTF-8 byte-order mark, CRLF line ends, empty cells. Every problem is one
error naming the file, the line and the field.

>>> g = read_gold("gold.jsonl")                                        # doctest: +SKIP
>>> g.index(["refund", "lost card"])                                  # doctest: +SKIP
array([0, 1, 1])
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..ids import UniqueIds, canonical_id
from .taxonomy import normalize_name

__all__ = ["GoldLabels", "read_gold", "write_gold", "fair_sample", "RANDOM_STRATEGY"]

RANDOM_STRATEGY = "random"
_RESERVED = ("id", "text", "strategy")


def fair_sample(strategy: str | None) -> bool:
    """Whether a gold row may select and fit a label model: picked at random, or of unknown origin."""
    return strategy in (None, "", RANDOM_STRATEGY)


@dataclass(frozen=True)
class GoldLabels:
    """A gold file in memory; rows in file order."""

    path: str | None
    labels: tuple[tuple[str, ...], ...]  # each row's label names (one for a single-label row; () for none)
    lines: tuple[int, ...]  # where each row is in the file (a Parquet row number from 1)
    ids: tuple[str, ...] | None = None  # None: the file has no id field
    texts: tuple[str, ...] | None = None  # None: not asked for
    strategies: tuple[str | None, ...] = ()
    rows: tuple[dict, ...] = ()  # each row as read (canonical id, normalised labels): what write_gold keeps
    label_field: str = "label"
    what: str = "gold"  # "gold" or "dev": how errors name the file's rows

    def __len__(self) -> int:
        return len(self.labels)

    def _where(self, i: int, field: str | None = None) -> dict[str, Any]:
        return {"path": self.path, "line": self.lines[i], "field": field or self.label_field}

    def single(self, several: str | None = None) -> list[str]:
        """One label per row; a row with none or several is an error (``several`` words it)."""
        out = []
        for i, labs in enumerate(self.labels):
            if len(labs) != 1:
                raise ConfigError(several or f"{self.what} row has {len(labs)} labels; one is needed here",
                                  **self._where(i))
            out.append(labs[0])
        return out

    def index(self, classes: Sequence[str], *, aliases: Sequence[str] | None = None, cardinality: int | None = None,
              several: str | None = None, hint: str | None = None, among: str = "the taxonomy") -> np.ndarray:
        """(n,) class index of each row's one label in ``classes`` (or in ``aliases``, e.g. label ids, same order).

        ``cardinality``: with no class names, labels ``0 .. cardinality-1`` are class indices."""
        pos = _positions(classes, aliases)
        out = np.empty(len(self), np.int64)
        for i, lab in enumerate(self.single(several)):
            j = pos.get(lab)
            if j is None and not classes and cardinality and lab.lstrip("-").isdigit() and 0 <= int(lab) < cardinality:
                j = int(lab)
            if j is None:
                raise ConfigError(f"{self.what} label {lab!r} is not in {among}", **self._where(i),
                                  hint=hint or _labels_hint(classes))
            out[i] = j
        return out

    def matrix(self, classes: Sequence[str], *, aliases: Sequence[str] | None = None,
               among: str = "the taxonomy") -> np.ndarray:
        """(n, k) 0/1 label sets over ``classes``."""
        pos = _positions(classes, aliases)
        out = np.zeros((len(self), len(classes)), np.int8)
        for i, labs in enumerate(self.labels):
            for lab in labs:
                if lab not in pos:
                    raise ConfigError(f"{self.what} label {lab!r} is not in {among}", **self._where(i),
                                      hint=_labels_hint(classes))
                out[i, pos[lab]] = 1
        return out

    def fair(self) -> np.ndarray:
        """(n,) True where the row is a fair sample (:func:`fair_sample` of its ``strategy``)."""
        return np.fromiter((fair_sample(s) for s in self.strategies), bool, count=len(self))

    def rows_in(self, item_ids: Sequence[Any], *, among: str = "the voted items") -> np.ndarray:
        """(n,) position of each row's item in ``item_ids``; an id that is not there names its line."""
        if self.ids is None:
            raise InputError(f"the {self.what} file has no 'id' field to match rows to items", path=self.path,
                             field="id")
        pos = {str(x): r for r, x in enumerate(item_ids)}
        out = np.empty(len(self), np.int64)
        for i, rid in enumerate(self.ids):
            if rid not in pos:
                raise InputError(f"{self.what} item id {rid!r} is not among {among}", **self._where(i, "id"))
            out[i] = pos[rid]
        return out

    def by_id(self) -> dict[str, dict]:
        """id -> row (as read), in file order."""
        if self.ids is None:
            return {}
        return dict(zip(self.ids, self.rows))


def _positions(classes: Sequence[str], aliases: Sequence[str] | None) -> dict[str, int]:
    pos = {normalize_name(c): j for j, c in enumerate(classes)}
    for j, a in enumerate(aliases or []):
        pos.setdefault(str(a), j)
    return pos


def _labels_hint(classes: Sequence[str]) -> str:
    return f"labels are: {', '.join(map(str, classes[:8]))}" + (" ..." if len(classes) > 8 else "")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _label_names(value: Any, split: str, where: dict) -> tuple[str, ...] | None:
    """A cell's label names; None when it holds none."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if _missing(value):
        return None
    if isinstance(value, (list, tuple)):
        names = [v for v in value if not _missing(v)]
        if any(isinstance(v, (dict, list, bool)) for v in names):
            raise InputError("a label list must hold label names", **where)
        return tuple(normalize_name(_scalar(v, where)) for v in names)
    if isinstance(value, str):
        for sep in split:
            if sep in value:
                return tuple(normalize_name(p) for p in value.split(sep) if p.strip())
        return (normalize_name(value),)
    return (normalize_name(_scalar(value, where)),)


def _scalar(v: Any, where: dict) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        s = canonical_id(v)  # 3 and 3.0 name class 3 alike
        if s is not None:
            return s
    raise InputError(f"a label must be a name, not {v!r}", **where)


def read_gold(path: str | Path, *, label_field: str = "label", fallback_field: str | None = None,
              text_field: str | None = None, need_ids: bool = True, need_text: bool = False,
              allow_empty: bool = False, split: str = "|", id_field: str = "id", what: str = "gold") -> GoldLabels:
    """Read and validate a gold/dev file (see the module docstring).

    ``fallback_field``: read when a row has no ``label_field`` (``labels`` -> ``label``). ``need_ids``: every
    row needs an id (they are unique either way). ``need_text``: every row needs a non-empty text, from
    ``text_field`` (default ``text``, else the file's one other string field). ``allow_empty``: a row's label
    field may be empty (a multi-label item no label applies to; an xmc item without gold); a missing field is
    an error either way. ``split``: characters that join several names in one string.
    """
    from ..io_records import read_records

    path = Path(path)
    seen = UniqueIds(path, what=what)
    ids: list[str] = []
    labels, lines, texts, strategies, rows = [], [], [], [], []
    tf = text_field
    for line, raw in read_records(path, what=f"{what} file"):
        row = {str(k).strip(): v for k, v in raw.items()}  # header cells padded with spaces
        where = {"path": path, "line": line}
        rid = row.get(id_field)
        if _missing(rid):
            if need_ids:
                raise InputError(f"{what} row has no '{id_field}' field" if id_field not in row
                                 else f"{what} row has an empty '{id_field}'", field=id_field, **where,
                                 hint=f"fields: {', '.join(row) or '(none)'}")
            rid = None
        else:
            rid = canonical_id(rid)
            if rid is None:
                raise InputError(f"{what} id {row[id_field]!r} is not a usable id", field=id_field, **where)
            seen.add(rid, line)
        field = label_field if (label_field in row or fallback_field is None) else fallback_field
        if field not in row:
            raise InputError(f"{what} row has no '{field}' field", field=field, **where,
                             hint=f"fields: {', '.join(row) or '(none)'}")
        labs = _label_names(row[field], split, {**where, "field": field}) or ()
        if not labs and not allow_empty:
            raise InputError(f"{what} row has an empty '{field}'", field=field, **where,
                             hint="give every row its label")
        if need_text:
            tf = tf or _text_field(row, label_field, fallback_field, id_field, where)
            text = row.get(tf)
            if _missing(text) or not isinstance(text, str):
                raise InputError(f"{what} row has no text in '{tf}'", field=tf, **where,
                                 hint="every row needs its text (name the field with --text-field)")
            texts.append(text)
        strategy = row.get("strategy")
        if _missing(strategy):
            strategy = None
        elif not isinstance(strategy, str):
            raise InputError(f"{what} strategy {strategy!r} is not a string", field="strategy", **where)
        if rid is not None:
            ids.append(rid)
        labels.append(labs)
        lines.append(line)
        strategies.append(strategy)
        rows.append({**row, **({id_field: rid} if rid is not None else {}),
                     field: list(labs) if isinstance(row.get(field), (list, tuple)) or len(labs) != 1 else labs[0]})
    if not labels:
        raise InputError(f"the {what} file has no rows", path=path)
    if ids and len(ids) != len(labels):  # some rows with ids, some without: the file cannot be matched
        i = next(k for k, r in enumerate(rows) if id_field not in r or _missing(r[id_field]))
        raise InputError(f"{what} row has no '{id_field}' while others have one", path=path, line=lines[i],
                         field=id_field)
    return GoldLabels(path=str(path), labels=tuple(labels), lines=tuple(lines), ids=tuple(ids) if ids else None,
                      texts=tuple(texts) if need_text else None, strategies=tuple(strategies), rows=tuple(rows),
                      label_field=label_field, what=what)


def _text_field(row: Mapping[str, Any], *skip: str | None) -> str:
    if "text" in row:
        return "text"
    cands = [k for k, v in row.items() if k not in skip and k not in _RESERVED and isinstance(v, str)]
    if len(cands) == 1:
        return cands[0]
    return "text"


def write_gold(path: str | Path, rows: Iterable[Mapping[str, Any]], *, merge: bool = True) -> dict[str, dict]:
    """Write gold rows as JSONL (atomically), merged over the file's earlier rows by id (new answers win).

    Returns id -> row of everything written. Rows need ``id`` and ``label``; names are normalised."""
    from ..io_write import atomic_write

    path = Path(path)
    out = dict(read_gold(path, allow_empty=True).by_id()) if merge and path.is_file() else {}
    for r in rows:
        rid = canonical_id(r.get("id"))
        if rid is None or "label" not in r:
            raise ConfigError(f"a gold row needs an id and a label, got {dict(r)!r}", path=path)
        lab = r["label"]
        lab = [normalize_name(x) for x in lab] if isinstance(lab, (list, tuple)) else normalize_name(lab)
        out[rid] = {**r, "id": rid, "label": lab}
    with atomic_write(path) as f:
        for r in out.values():
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return out
