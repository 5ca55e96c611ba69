"""The cascade record: ``<predictions>.cascade.json``, written by ``llmlabel predict --cascade-llm`` when the
cascade has a curve (a threshold chosen or measured on a dev set), read by ``llmlabel report``.

``{"calibration": {"threshold", "point", ...} | null, "curve": [{"threshold", "deferral", "accuracy"}, ...]}``:
the accuracy of student + LLM on the dev set for every distinct threshold (items below it go to the LLM),
and where the chosen threshold sits on it. The file carries no ``kind`` key (written as before); a reader refuses
another llmlabel kind or version and names the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_records import read_json
from ..io_write import atomic_write
from ._format import check_format

__all__ = ["SUFFIX", "CascadeRecord", "cascade_path", "read_cascade", "write_cascade"]

KIND, FORMAT_VERSION = "cascade", 1
SUFFIX = ".cascade.json"
POINT_KEYS = ("threshold", "deferral", "accuracy")


@dataclass(frozen=True)
class CascadeRecord:
    """The dev-set curve (one point per distinct threshold) and the calibration that picked a point on it."""

    curve: tuple[Mapping[str, float], ...]
    calibration: Mapping[str, Any] | None = None

    def series(self) -> dict[str, list[float]]:
        """The curve as columns: ``{"deferral": [...], "accuracy": [...], "threshold": [...]}``."""
        return {k: [p[k] for p in self.curve] for k in ("deferral", "accuracy", "threshold")}


def cascade_path(predictions: str | Path) -> Path:
    """``preds.jsonl`` -> ``preds.jsonl.cascade.json``: the record beside a predictions file."""
    p = Path(predictions)
    return p.with_name(p.name + SUFFIX)


def write_cascade(path: str | Path, curve: Sequence[Mapping[str, float]],
                  calibration: Mapping[str, Any] | None = None) -> Path:
    """The record, atomically (``calibration`` first, as ``predict`` always wrote it)."""
    path = Path(path)
    with atomic_write(path) as f:
        f.write(json.dumps({"calibration": calibration, "curve": list(curve)}, indent=1) + "\n")
    return path


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_cascade(path: str | Path) -> CascadeRecord:
    """The validated record: a ``curve`` list of points with numeric threshold, deferral and accuracy; a
    ``calibration`` object (or null) whose ``point``, when present, is such a point."""
    path = Path(path)
    data = read_json(path, what="cascade file")
    if not isinstance(data, dict):
        raise InputError("cascade file must hold a JSON object", path=path)
    check_format(data, kind=KIND, version=FORMAT_VERSION, path=path)
    curve = data.get("curve") or []
    if not isinstance(curve, list):
        raise InputError("cascade file's 'curve' must be a list", path=path, field="curve")

    def check(p: Any, where: str) -> None:
        if not isinstance(p, dict):
            raise InputError("a cascade curve point must be an object", path=path, field=where)
        for k in POINT_KEYS:
            if not _number(p.get(k)):
                raise InputError(f"cascade point {k} is not a number: {p.get(k)!r}", path=path, field=f"{where}.{k}")

    for i, p in enumerate(curve):
        check(p, f"curve[{i}]")
    calib = data.get("calibration")
    if calib is not None:
        if not isinstance(calib, dict):
            raise InputError("cascade file's 'calibration' must be an object or null", path=path, field="calibration")
        if calib.get("point") is not None:
            check(calib["point"], "calibration.point")
    return CascadeRecord(curve=tuple(curve), calibration=calib)
