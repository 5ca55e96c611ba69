"""Read WRENCH-format weak-supervision files: ``{"id": {"label", "weak_labels", "data": {"text"}}}``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError


def load_wrench(path: str | Path, *, return_ids: bool = False):
    """``(L, y, texts)`` from one WRENCH split file (e.g. ``wrench/youtube/train.json``).

    ``L`` is int (n x m), -1 = abstain; ``y`` int (n,) gold labels, -1 where a row has none (WRENCH's
    unlabeled splits); ``texts`` the ``data.text`` strings ("" when absent). Rows keep file order.
    With ``return_ids=True`` also the item ids: ``(L, y, texts, ids)``.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise InputError("WRENCH file not found", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(raw, dict) or not raw:
        raise InputError("expected a non-empty JSON object {id: {label, weak_labels, data}}", path=path)
    ids, labels, texts, rows = [], [], [], []
    width = None
    for key, item in raw.items():
        if not isinstance(item, dict) or "weak_labels" not in item:
            raise InputError(f"item '{key}' has no 'weak_labels'", path=path, field="weak_labels")
        wl = item["weak_labels"]
        if not isinstance(wl, list) or (width is not None and len(wl) != width):
            raise InputError(f"item '{key}' has {len(wl) if isinstance(wl, list) else 'no list of'} weak labels, "
                             f"expected {width}", path=path, field="weak_labels")
        width = len(wl)
        lab = item.get("label")
        ids.append(key)
        labels.append(-1 if lab is None else lab)
        data = item.get("data") or {}
        texts.append(str(data.get("text", "")) if isinstance(data, dict) else "")
        rows.append(wl)
    try:
        L = np.asarray(rows, dtype=np.int64)
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"weak labels and labels must be integers ({exc})", path=path) from None
    L = L.astype(np.int32) if L.size and L.min() >= -(2**31) and L.max() < 2**31 else L
    out = (L, y, texts)
    return (*out, ids) if return_ids else out


def load_wrench_label_names(folder: str | Path) -> list[str] | None:
    """Class names from a WRENCH dataset folder's ``label.json`` (``{"0": "ham", ...}``), or None."""
    p = Path(folder) / "label.json"
    if not p.is_file():
        return None
    try:
        names = json.loads(p.read_text(encoding="utf-8"))
        return [str(names[str(i)]) for i in range(len(names))]
    except (json.JSONDecodeError, KeyError) as exc:
        raise InputError(f"label.json must map '0'..'k-1' to names ({exc})", path=p) from None
