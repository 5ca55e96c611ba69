"""The cross-fitting files of a run with gold: what each stage saw *without* one fold of the gold.

With ``--gold``, the chain can measure honestly, on the gold itself, whether its weak labels help: for each fold f
of the gold, every gold-derived piece is rebuilt without fold f, and fold f's gold rows then score the student
trained from it (:mod:`llmlabel.distill.safety`). Two files carry that world from stage to stage:

``<votes>/_crossfit.parquet`` (written by ``label --gold``): for a seeded sample of the items that are not gold,
the votes of the gold-derived LFs (kNN, logistic regression, ``threshold: auto`` cuts...) as if the item were in
fold f, for every f. Long layout: one row per (fold, item): ``fold`` (int16), ``id`` (string), ``v:<lf>`` (int16,
-1 abstain) and ``p:<lf>`` (list<float32> class probabilities, or null) per gold-derived LF. The LFs that do not
read the gold keep the votes in the main shards. Metadata: the gold ids with their folds, the LF names.

``<labeled stem>.crossfit.parquet`` (written by ``aggregate --gold`` beside labeled.parquet): the label model's
probabilities for the same sample, fitted for each fold f without fold f's gold (neither clamped nor as dev).
One row per (fold, item): ``fold``, ``id``, ``p`` (list<float32> in class order). Metadata: classes, the gold
ids, folds, labels (class indices) and ``fair`` (a random sample, so fit to score on).

Both record ``kind`` and ``format_version`` like every stage file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._format import check_format, stamp

VOTES_FILE = "_crossfit.parquet"
VOTES_KIND, LABELS_KIND, FORMAT_VERSION = "crossfit-votes", "crossfit-labels", 1


@dataclass(frozen=True)
class GoldFolds:
    """The gold rows of a run and their cross-fitting folds (labels: class indices; -1 where unknown)."""

    ids: tuple[str, ...]
    fold: np.ndarray
    folds: int
    labels: np.ndarray | None = None
    fair: np.ndarray | None = None

    def to_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ids": list(self.ids), "fold": self.fold.astype(int).tolist(), "folds": int(self.folds)}
        if self.labels is not None:
            out["labels"] = self.labels.astype(int).tolist()
        if self.fair is not None:
            out["fair"] = self.fair.astype(bool).tolist()
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], path) -> "GoldFolds":
        try:
            ids = tuple(str(i) for i in meta["ids"])
            fold = np.asarray(meta["fold"], dtype=np.int64)
            folds = int(meta["folds"])
            labels = np.asarray(meta["labels"], dtype=np.int64) if "labels" in meta else None
            fair = np.asarray(meta["fair"], dtype=bool) if "fair" in meta else None
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"cross-fitting file has no readable gold folds ({e})", path=path) from None
        if len(fold) != len(ids) or (labels is not None and len(labels) != len(ids)) or folds < 2 \
                or (fold < 0).any() or (fold >= folds).any():
            raise InputError("cross-fitting file: gold ids, folds and labels do not match", path=path)
        return cls(ids, fold, folds, labels, fair)


@dataclass(frozen=True)
class CrossFitVotes:
    """``votes[f]``: (n, m) int16 votes of the gold-derived LFs ``lf_names`` on ``ids`` as if in fold f;
    ``probs[f][lf]``: (n, k) float32 for the LFs that give class probabilities."""

    ids: list[str]
    lf_names: list[str]
    votes: list[np.ndarray]
    probs: list[dict[str, np.ndarray]]
    gold: GoldFolds
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossFitLabels:
    """``proba``: (folds, n, k) label-model probabilities of the sample ``ids``, fold f's fitted without the
    gold of fold f; ``gold``: the gold rows, their folds and labels."""

    ids: list[str]
    classes: list[str]
    proba: np.ndarray
    gold: GoldFolds
    meta: dict[str, Any] = field(default_factory=dict)


def _write(path: Path, table, meta: dict[str, Any]) -> Path:
    from ..io_write import write_parquet

    write_parquet(path, table, meta=meta)
    return path


def _long(ids: Sequence[str], folds: int):
    import pyarrow as pa

    return {"fold": pa.array(np.repeat(np.arange(folds, dtype=np.int16), len(ids)), pa.int16()),
            "id": pa.array([str(i) for _ in range(folds) for i in ids], pa.string())}


def _list_col(blocks: Sequence[np.ndarray | None], n: int):
    import pyarrow as pa

    vals = []
    for b in blocks:
        vals.extend([None] * n if b is None else [row.tolist() for row in np.asarray(b, np.float32)])
    return pa.array(vals, pa.list_(pa.float32()))


def write_crossfit_votes(folder: str | Path, *, ids: Sequence[str], lf_names: Sequence[str],
                         votes: Sequence[np.ndarray], probs: Sequence[Mapping[str, np.ndarray]], gold: GoldFolds,
                         meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``folder/_crossfit.parquet`` atomically; ``votes[f]`` is (len(ids), len(lf_names))."""
    import pyarrow as pa

    n, folds = len(ids), len(votes)
    if folds != gold.folds:
        raise InputError(f"cross-fitting votes: {folds} folds of votes for {gold.folds} gold folds")
    cols = _long(ids, folds)
    for j, name in enumerate(lf_names):
        cols[f"v:{name}"] = pa.array(np.concatenate([np.asarray(v[:, j], np.int16) for v in votes]), pa.int16())
        if any(name in p for p in probs):
            cols[f"p:{name}"] = _list_col([p.get(name) for p in probs], n)
    info = {**stamp(VOTES_KIND, FORMAT_VERSION), **dict(meta or {}), "lf_names": list(lf_names),
            "gold": gold.to_meta()}
    return _write(Path(folder) / VOTES_FILE, pa.table(cols), info)


def _read(path: Path, kind: str):
    import pyarrow.parquet as pq

    from ..io_write import read_meta

    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise InputError(f"unreadable cross-fitting file: {e}", path=path,
                         hint="rerun the stage that wrote it") from None
    meta = read_meta(path) or {}
    check_format(meta, kind=kind, version=FORMAT_VERSION, path=path)
    return table, meta


def _by_fold(table, folds: int, path) -> tuple[list[str], list[np.ndarray]]:
    fold = table.column("fold").to_numpy().astype(np.int64)
    ids_all = np.asarray(table.column("id").to_pylist(), dtype=object)
    rows = [np.flatnonzero(fold == f) for f in range(folds)]
    ids = list(ids_all[rows[0]])
    if any(len(r) != len(ids) or list(ids_all[r]) != ids for r in rows):
        raise InputError("cross-fitting file: the folds do not cover the same items", path=path)
    return ids, rows


def _lists(col, rows: np.ndarray) -> np.ndarray | None:
    vals = col.take(rows).to_pylist()
    if not vals or vals[0] is None:
        return None
    return np.asarray(vals, dtype=np.float32)


def read_crossfit_votes(folder: str | Path) -> CrossFitVotes | None:
    """The cross-fitting votes of a votes folder, or None when the run had no gold-derived LFs."""
    path = Path(folder) / VOTES_FILE
    if not path.is_file():
        return None
    table, meta = _read(path, VOTES_KIND)
    gold = GoldFolds.from_meta(meta.get("gold") or {}, path)
    names = [str(x) for x in meta.get("lf_names", [])]
    ids, rows = _by_fold(table, gold.folds, path)
    votes, probs = [], []
    for r in rows:
        votes.append(np.stack([table.column(f"v:{n}").to_numpy()[r] for n in names], axis=1).astype(np.int16)
                     if names else np.zeros((len(ids), 0), np.int16))
        probs.append({n: p for n in names if f"p:{n}" in table.column_names
                      for p in [_lists(table.column(f"p:{n}"), r)] if p is not None})
    return CrossFitVotes(ids, names, votes, probs, gold, meta)


def crossfit_labels_path(labeled: str | Path) -> Path:
    p = Path(labeled)
    return p.with_name(p.stem + ".crossfit.parquet")


def write_crossfit_labels(labeled: str | Path, *, ids: Sequence[str], classes: Sequence[str], proba: np.ndarray,
                          gold: GoldFolds, meta: Mapping[str, Any] | None = None) -> Path:
    """Write the sidecar of ``labeled`` (``<stem>.crossfit.parquet``); ``proba`` is (folds, n, k)."""
    import pyarrow as pa

    P = np.asarray(proba, np.float32)
    if P.ndim != 3 or P.shape[0] != gold.folds or P.shape[1] != len(ids) or P.shape[2] != len(classes):
        raise InputError(f"cross-fitting labels: proba has shape {P.shape}, expected ({gold.folds}, {len(ids)}, "
                         f"{len(classes)})")
    if not np.isfinite(P).all():
        raise InputError("cross-fitting labels: probabilities must be finite")
    cols = _long(ids, gold.folds)
    cols["p"] = _list_col(list(P), len(ids))
    info = {**stamp(LABELS_KIND, FORMAT_VERSION), **dict(meta or {}), "classes": list(classes),
            "gold": gold.to_meta()}
    return _write(crossfit_labels_path(labeled), pa.table(cols), info)


def read_crossfit_labels(labeled: str | Path) -> CrossFitLabels | None:
    """The sidecar of a labeled file, or None when ``aggregate`` ran without gold-derived cross-fitting."""
    path = crossfit_labels_path(labeled)
    if not path.is_file():
        return None
    table, meta = _read(path, LABELS_KIND)
    gold = GoldFolds.from_meta(meta.get("gold") or {}, path)
    classes = [str(c) for c in meta.get("classes", [])]
    ids, rows = _by_fold(table, gold.folds, path)
    blocks = [_lists(table.column("p"), r) for r in rows]
    if any(b is None or b.shape != (len(ids), len(classes)) for b in blocks) and ids:
        raise InputError("cross-fitting labels: probabilities do not match the classes", path=path)
    proba = np.stack(blocks) if ids else np.zeros((gold.folds, 0, len(classes)), np.float32)
    if gold.labels is None:
        raise InputError("cross-fitting labels: the gold labels are missing", path=path)
    return CrossFitLabels(ids, classes, proba, gold, meta)
