"""Predictions: what ``llmlabel predict`` and ``llmlabel xmc`` write (JSONL, one row per input item, in input
order) plus the ``<file>.meta.json`` sidecar (kind, format_version, task, classes, provenance).

Row shapes by ``task``:

- ``single``: ``{"id", "label", "confidence", ...}``; ``label`` may be ``null`` only with a ``reason`` saying why
  (the item still gets its row, so a join on ``id`` never loses items silently),
- ``multi``: ``{"id", "labels": [...], "proba": [...]}``,
- ``xmc``: ``{"id", "labels": [...], "scores": [...]}`` (ranked; the label space is open, so no class list).

Extra keys (``deferred``, ``student_label``, ``queries``) are kept as they are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._format import check_format, stamp

__all__ = ["FORMAT_VERSION", "Predictions", "TASKS", "read_predictions", "sidecar_meta", "write_predictions"]

KIND, FORMAT_VERSION = "predictions", 1
TASKS = ("single", "multi", "xmc")


@dataclass
class Predictions:
    rows: list[dict[str, Any]]
    task: str
    classes: list[str] | None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]


def _check_row(row: Mapping[str, Any], i: int, task: str, known: set[str] | None, path) -> None:
    where = {"path": path, "line": i + 1}
    if "id" not in row or row["id"] is None:
        raise InputError("prediction row has no 'id'", field="id", **where)
    if task == "single":
        if "label" not in row:
            raise InputError("prediction row has no 'label' (use null with a 'reason')", field="label", **where)
        lab = row["label"]
        if lab is None:
            if not isinstance(row.get("reason"), str) or not row["reason"].strip():
                raise InputError("a null label needs a 'reason'", field="reason", **where)
        elif known is not None and str(lab) not in known:
            raise InputError(f"label {lab!r} is not one of the {len(known)} classes", field="label", **where)
        c = row.get("confidence")
        if c is not None and not (isinstance(c, (int, float)) and math.isfinite(c) and 0 <= c <= 1):
            raise InputError(f"confidence {c!r} is not a number in [0, 1]", field="confidence", **where)
    else:
        labs = row.get("labels")
        if not isinstance(labs, list):
            raise InputError("prediction row needs a 'labels' list", field="labels", **where)
        if known is not None and any(str(x) not in known for x in labs):
            bad = next(x for x in labs if str(x) not in known)
            raise InputError(f"label {bad!r} is not one of the {len(known)} classes", field="labels", **where)
        if task == "xmc" and len(row.get("scores") or []) != len(labs):
            raise InputError("'scores' must hold one score per label", field="scores", **where)


def write_predictions(path: str | Path, rows: Iterable[Mapping[str, Any]], *, task: str = "single",
                      classes: Sequence[str] | None = None, meta: Mapping[str, Any] | None = None) -> int:
    """Validate and stream ``rows`` to JSONL atomically, with the sidecar metadata; returns the row count."""
    from ..io_meta import make_meta
    from ..io_write import write_jsonl

    if task not in TASKS:
        raise InputError(f"unknown predictions task {task!r}", hint=f"one of {', '.join(TASKS)}")
    known = set(map(str, classes)) if classes is not None else None

    def checked() -> Iterator[Mapping[str, Any]]:
        for i, row in enumerate(rows):
            _check_row(row, i, task, known, path)
            yield row

    return write_jsonl(path, checked(), meta=sidecar_meta(meta if meta is not None else make_meta(), task=task,
                                                          classes=classes))


def sidecar_meta(meta: Mapping[str, Any], *, task: str, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """``meta`` plus the keys that make it a predictions sidecar (for writers that finish the sidecar late)."""
    return {**meta, **stamp(KIND, FORMAT_VERSION), "task": task,
            "classes": None if classes is None else list(map(str, classes))}


def read_predictions(path: str | Path) -> Predictions:
    """Read and validate a predictions file (its sidecar gives the task and classes)."""
    from ..io_meta import read_meta

    path = Path(path)
    if not path.is_file():
        raise InputError("predictions file not found", path=path)
    meta = read_meta(path) or {}
    check_format(meta, kind=KIND, version=FORMAT_VERSION, path=path)
    task = meta.get("task", "single")
    if task not in TASKS:
        raise InputError(f"unknown predictions task {task!r} in the metadata", path=path)
    classes = meta.get("classes")
    known = set(map(str, classes)) if classes else None
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"not valid JSON: {e.msg}", path=path, line=i + 1) from None
            if not isinstance(row, dict):
                raise InputError("each line must be a JSON object", path=path, line=i + 1)
            _check_row(row, i, task, known, path)
            rows.append(row)
    return Predictions(rows=rows, task=task, classes=list(classes) if classes else None, meta=meta)
