"""Read ``labeled.parquet`` (what ``llmlabel aggregate`` writes) for the review and report packages.

One adapter, so that moving to ``llmlabel.artifacts.labeled.read_labeled`` (the artifacts floor) is a
one-line change here; the fields match that reader's dataclass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass
class Labeled:
    """Rows of a labeled file; ``proba`` is (n, k) over ``classes``; ``source`` is 'model' or 'human'."""

    ids: list[str]
    texts: list[str] | None
    classes: list[str]
    proba: np.ndarray
    label_index: np.ndarray
    confidence: np.ndarray
    uncovered: np.ndarray
    source: np.ndarray
    multi_label: bool = False
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def read_labeled(path: str | Path) -> Labeled:
    """The labeled file at ``path``; a file without ``p:<class>`` columns is an error naming it."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError("labeled file not found", path=path, hint="write one with `llmlabel aggregate`")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several unrelated types for a non-Parquet file
        raise InputError(f"not a Parquet file ({type(e).__name__}: {e})", path=path) from None
    names = table.column_names
    pcols = [c for c in names if c.startswith("p:")]
    for need in ("id", "label"):
        if need not in names:
            raise InputError(f"labeled file has no '{need}' column", path=path, field=need)
    if not pcols:
        raise InputError("labeled file has no p:<class> probability columns", path=path,
                         hint="write it with `llmlabel aggregate`")
    raw = (table.schema.metadata or {}).get(b"llmlabel")
    meta = json.loads(raw) if raw else {}
    classes = [c[2:] for c in pcols]
    proba = np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in pcols], axis=1).astype(np.float64)
    n = table.num_rows

    def col(name, default):
        return table.column(name).to_numpy(zero_copy_only=False) if name in names else default

    if "label_index" in names:
        label_index = col("label_index", None).astype(np.int64)
    else:
        pos = {c: j for j, c in enumerate(classes)}
        label_index = np.asarray([pos.get(str(x), -1) for x in table.column("label").to_pylist()], dtype=np.int64)
    confidence = col("confidence", proba[np.arange(n), np.clip(label_index, 0, None)]).astype(np.float64)
    source = np.asarray(table.column("source").to_pylist(), dtype=object) if "source" in names \
        else np.full(n, "model", dtype=object)
    return Labeled(ids=[str(i) for i in table.column("id").to_pylist()],
                   texts=[str(t) for t in table.column("text").to_pylist()] if "text" in names else None,
                   classes=classes, proba=proba, label_index=label_index, confidence=confidence,
                   uncovered=col("uncovered", np.zeros(n, bool)).astype(bool), source=source,
                   multi_label=bool(meta.get("multi_label", False)), meta=meta)
