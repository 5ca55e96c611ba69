"""``labeled.parquet``: what ``llmlabel aggregate`` writes and distill, review and report read.

Columns, one row per item in corpus order:

- ``id`` (string), ``text`` (string, when the votes kept texts),
- ``label`` (class name), ``label_index`` (int32, position in the class order), ``confidence`` (float32, the
  probability of ``label``), ``uncovered`` (bool: no LF voted, the label is the model's prior guess),
- ``p:<class>`` (float32) for every class, in class order,
- optional ``source`` (``"model"`` or ``"human"``: a reviewed item) and, for multi-label files, ``labels`` (a
  list of class names).

The schema metadata holds ``kind: llmlabel.labeled``, ``format_version``, ``classes`` (the class order again, so
a reader never has to trust column order) and the provenance (command, label model, what the votes depended on).
A file another tool re-saved without that metadata (pandas) is still read by its column names: the classes are
the ``p:<class>`` columns in order. Every probability and confidence is checked (a NaN or -3 is one error naming
the row and column), and ids follow :mod:`llmlabel.ids` (unique).

>>> write_labeled("labeled.parquet", ids=["a", "b"], classes=["ham", "spam"],      # doctest: +SKIP
...               proba=[[0.9, 0.1], [0.2, 0.8]], texts=["hi", "win $$$"])
>>> read_labeled("labeled.parquet").proba                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..ids import canonical_id, check_unique
from ._format import check_format, stamp

__all__ = ["FORMAT_VERSION", "Labeled", "P_PREFIX", "is_labeled_file", "read_labeled", "write_labeled"]

KIND, FORMAT_VERSION = "labeled", 1
P_PREFIX = "p:"
SOURCES = ("model", "human")
_TOL = 1e-3


@dataclass
class Labeled:
    """A labeled file in memory. ``proba`` is (n, k) float32 in ``classes`` order (single-label rows sum to 1;
    multi-label: independent per-class probabilities)."""

    ids: list[str]
    texts: list[str] | None
    classes: list[str]
    proba: np.ndarray
    label_index: np.ndarray
    confidence: np.ndarray
    uncovered: np.ndarray
    source: np.ndarray | None = None  # object array of "model"/"human", or None (all "model")
    multi_label: bool = False
    labels: list[list[str]] | None = None  # multi-label: the class names of each item
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def label(self) -> list[str]:
        return [self.classes[j] for j in self.label_index]

    def weights(self) -> np.ndarray:
        """Per-item training weights: the confidence, and 1.0 for items a person reviewed."""
        w = self.confidence.astype(np.float32).copy()
        if self.source is not None:
            w[self.source == "human"] = 1.0
        return w


def _col(x, n: int, what: str, dtype) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    if a.shape != (n,):
        raise InputError(f"labeled: {what} has shape {a.shape}, expected ({n},)")
    return a


def write_labeled(path: str | Path, *, ids: Sequence, classes: Sequence[str], proba, label_index=None,
                  confidence=None, uncovered=None, texts: Sequence[str] | None = None,
                  source: Sequence[str] | None = None, labels: Sequence[Sequence[str]] | None = None,
                  multi_label: bool = False, meta: Mapping[str, Any] | None = None) -> Path:
    """Validate and write labeled.parquet atomically (provenance ``meta`` goes into the schema metadata).

    ``label_index`` defaults to the argmax of ``proba``, ``confidence`` to the probability of that class,
    ``uncovered`` to False. Multi-label files pass ``multi_label=True`` and ``labels`` (names per item).
    """
    import pyarrow as pa

    from ..io_meta import make_meta
    from ..io_write import write_parquet

    classes = [str(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InputError(f"labeled: need at least two distinct class names, got {classes[:5]}")
    n, k = len(ids), len(classes)
    P = np.asarray(proba, dtype=np.float32)
    if P.shape != (n, k):
        raise InputError(f"labeled: proba has shape {P.shape}, expected ({n}, {k}) (items x classes)")
    _check_proba(P, multi_label, where=f"{path}")
    li = P.argmax(1) if label_index is None else _col(label_index, n, "label_index", np.int64)
    if n and ((li < 0) | (li >= k)).any():
        raise InputError(f"labeled: label_index outside [0, {k})", path=path)
    conf = P[np.arange(n), li] if confidence is None else _col(confidence, n, "confidence", np.float32)
    if not np.isfinite(conf).all():
        raise InputError(f"labeled: confidence of item {int(np.flatnonzero(~np.isfinite(conf))[0])} is not finite",
                         path=path, field="confidence")
    check_unique([str(i) for i in ids], path=path)
    unc = np.zeros(n, bool) if uncovered is None else _col(uncovered, n, "uncovered", bool)
    cols: dict[str, Any] = {"id": pa.array([str(i) for i in ids], pa.string())}
    if texts is not None:
        if len(texts) != n:
            raise InputError(f"labeled: {len(texts)} texts for {n} items", path=path)
        cols["text"] = pa.array([str(t) for t in texts], pa.string())
    cols["label"] = pa.array(np.asarray(classes, dtype=object)[li] if n else [], pa.string())
    cols["label_index"] = pa.array(li.astype(np.int32), pa.int32())
    cols["confidence"] = pa.array(conf.astype(np.float32), pa.float32())
    cols["uncovered"] = pa.array(unc, pa.bool_())
    if source is not None:
        src = _col(source, n, "source", object)
        bad = sorted({str(s) for s in src} - set(SOURCES))
        if bad:
            raise InputError(f"labeled: source must be 'model' or 'human', got {bad[0]!r}", path=path)
        cols["source"] = pa.array([str(s) for s in src], pa.string())
    if multi_label:
        if labels is None:
            labels = [[classes[j] for j in np.flatnonzero(row >= 0.5)] for row in P]
        if len(labels) != n:
            raise InputError(f"labeled: {len(labels)} label lists for {n} items", path=path)
        known = set(classes)
        for i, labs in enumerate(labels):
            unknown = [c for c in labs if c not in known]
            if unknown:
                raise InputError(f"labeled: item {i} has label {unknown[0]!r} outside the classes", path=path)
        cols["labels"] = pa.array([list(map(str, x)) for x in labels], pa.list_(pa.string()))
    for j, c in enumerate(classes):
        cols[P_PREFIX + c] = pa.array(P[:, j], pa.float32())
    info = dict(meta) if meta is not None else make_meta()
    info.update(stamp(KIND, FORMAT_VERSION))
    info.update(classes=classes, labels=classes, multi_label=bool(multi_label), n_items=n,
                n_uncovered=int(unc.sum()))
    write_parquet(path, pa.table(cols), meta=info)
    return Path(path)


def _check_proba(P: np.ndarray, multi_label: bool, *, where: str, classes: Sequence[str] | None = None) -> None:
    def col(j: int) -> str | None:
        return None if classes is None else P_PREFIX + str(classes[j])

    if not np.isfinite(P).all():
        i, j = map(int, np.argwhere(~np.isfinite(P))[0])
        raise InputError(f"row {i}: probability of class {j if classes is None else classes[j]!r} is not finite",
                         path=where, field=col(j))
    if P.size and ((P < -_TOL) | (P > 1 + _TOL)).any():
        i, j = map(int, np.argwhere((P < -_TOL) | (P > 1 + _TOL))[0])
        raise InputError(f"row {i}: probability {float(P[i, j]):.4g} is outside [0, 1]", path=where, field=col(j))
    if not multi_label and P.size:
        bad = np.flatnonzero(np.abs(P.sum(1) - 1.0) > _TOL)
        if bad.size:
            i = int(bad[0])
            raise InputError(f"row {i}: class probabilities sum to {float(P[i].sum()):.4g}, not 1", path=where,
                             hint="single-label files hold one distribution per item")


def _meta(path: Path) -> dict:
    from ..io_meta import read_meta

    try:
        return read_meta(path) or {}
    except (OSError, ValueError):
        return {}


def is_labeled_file(path: str | Path) -> bool:
    """True for a Parquet file of ours (any kind or format version, so that the reader can name a mismatch),
    including files written before versioning (``labels`` in the metadata and a ``p:<class>`` column each)."""
    path = Path(path)
    if path.suffix.lower() != ".parquet" or not path.is_file():
        return False
    import pyarrow.parquet as pq

    meta = _meta(path)
    if str(meta.get("kind", "")).startswith("llmlabel."):  # ours; another kind fails in read_labeled by name
        return True
    try:
        names = set(pq.read_schema(path).names)
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for a file that is not Parquet
        raise InputError(f"not a readable Parquet file: {e}", path=path) from None
    classes = meta.get("classes") or meta.get("labels")
    if not meta.get("kind") and not classes:  # re-saved by another tool (pandas): our columns, by name
        return "label" in names and sum(n.startswith(P_PREFIX) for n in names) >= 2
    return (not meta.get("kind") and isinstance(classes, list) and bool(classes) and "label" in names
            and all(P_PREFIX + str(c) in names for c in classes))


def read_labeled(path: str | Path) -> Labeled:
    """Read and validate labeled.parquet; a problem is one InputError naming the file (and row)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError("labeled file not found", path=path, hint="write one with `llmlabel aggregate`")
    if path.suffix.lower() != ".parquet":
        raise InputError("a labeled file from `llmlabel aggregate` is Parquet", path=path)
    meta = _meta(path)
    check_format(meta, kind=KIND, version=FORMAT_VERSION, path=path, hint="give the file `llmlabel aggregate` wrote")
    classes = meta.get("classes") or meta.get("labels")
    try:
        t = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for a file that is not Parquet
        raise InputError(f"not a readable Parquet file ({type(e).__name__})", path=path,
                         hint="give the file `llmlabel aggregate` wrote") from None
    names = set(t.column_names)
    if classes is None and not meta.get("kind"):
        # Re-saved by a tool that dropped our metadata (pandas): the p:<class> columns name the classes, in
        # their order. Reading them by name keeps the soft targets instead of silently training on hard labels.
        classes = [c[len(P_PREFIX):] for c in t.column_names if c.startswith(P_PREFIX)]
    if not isinstance(classes, list) or len(classes) < 2:
        raise InputError("no class list ('classes') in the labeled file's metadata", path=path,
                         hint="write it with llmlabel.artifacts.labeled.write_labeled")
    classes = [str(c) for c in classes]
    need = ["id", "label", "label_index", "confidence", "uncovered"] + [P_PREFIX + c for c in classes]
    missing = [c for c in need if c not in names]
    if missing:
        raise InputError(f"labeled file lacks column '{missing[0]}'" + (f" and {len(missing) - 1} more"
                                                                         if len(missing) > 1 else ""), path=path)
    extra_p = [c for c in t.column_names if c.startswith(P_PREFIX) and c[len(P_PREFIX):] not in set(classes)]
    if extra_p:
        raise InputError(f"column '{extra_p[0]}' is not one of the {len(classes)} classes in the metadata", path=path)
    multi = bool(meta.get("multi_label", False))
    P = np.stack([t.column(P_PREFIX + c).to_numpy(zero_copy_only=False) for c in classes], 1).astype(np.float32)
    _check_proba(P, multi, where=str(path), classes=classes)
    li = t.column("label_index").to_numpy(zero_copy_only=False).astype(np.int64)
    n, k = P.shape
    if n and ((li < 0) | (li >= k)).any():
        i = int(np.flatnonzero((li < 0) | (li >= k))[0])
        raise InputError(f"row {i}: label_index {int(li[i])} is outside [0, {k})", path=path)
    lab = np.asarray(t.column("label").to_pylist(), dtype=object)
    wrong = np.flatnonzero(lab != np.asarray(classes, dtype=object)[li]) if n else np.zeros(0, int)
    if wrong.size:
        i = int(wrong[0])
        raise InputError(f"row {i}: label {lab[i]!r} disagrees with label_index {int(li[i])} "
                         f"({classes[li[i]]!r})", path=path)
    conf = t.column("confidence").to_numpy(zero_copy_only=False).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(conf) | (conf < -_TOL) | (conf > 1 + _TOL))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"row {i}: confidence {float(conf[i])!r} is not a number in [0, 1]", path=path,
                         field="confidence", hint="fix or drop the row; a confidence is a training weight")
    ids = [canonical_id(x) for x in t.column("id").to_pylist()]
    if None in ids:
        i = ids.index(None)
        raise InputError(f"row {i}: the id is missing or not a usable id", path=path, field="id")
    check_unique(ids, path=path)
    source = None
    if "source" in names:
        source = np.asarray(t.column("source").to_pylist(), dtype=object)
        bad = sorted({str(s) for s in source} - set(SOURCES))
        if bad:
            raise InputError(f"source must be 'model' or 'human', got {bad[0]!r}", path=path, field="source")
    labels = t.column("labels").to_pylist() if multi and "labels" in names else None
    return Labeled(ids=ids,
                   texts=t.column("text").to_pylist() if "text" in names else None, classes=classes, proba=P,
                   label_index=li, confidence=conf,
                   uncovered=t.column("uncovered").to_numpy(zero_copy_only=False).astype(bool), source=source,
                   multi_label=multi, labels=labels, meta=meta, path=str(path))
