"""The cross-fitting files of a run with gold: what each stage saw *without* one fold of the gold.

With ``--gold``, the chain can measure honestly, on the gold itself, whether its weak labels help: for each fold f
of the gold, every gold-derived piece is rebuilt without fold f, and fold f's gold rows then score the student
trained from it (:mod:`llmlabel.distill.safety`). Two files carry that world from stage to stage:

``<votes>/_crossfit.parquet`` (written by ``label --gold``): for a seeded sample of the items that are not gold,
the votes of the gold-derived LFs (kNN, logistic regression, ``threshold: auto`` cuts...) as if the item were in
fold f, for every f. Long layout: one row per (fold, item): ``fold`` (int16), ``id`` (string), ``v:<lf>`` (int16,
-1 abstain) and ``p:<lf>`` (list<float32> class probabilities, or null) per gold-derived LF. The LFs that do not
read the gold keep the votes in the main shards. Metadata: the gold ids with their folds, the LF names.

Multi-label votes are stored in this same layout, as the votes folder stores them
(:mod:`llmlabel.artifacts.multivotes`): each (LF, label) is one 2-class LF ``<lf>/<label id>`` (votes 1 / 0 / -1,
probabilities ``[1 - p, p]`` for LFs that score); the metadata's ``multi_label`` names the LFs, labels and label
ids, and the gold's ``labels`` are 0/1 rows over the labels. :func:`read_crossfit_multi_votes` folds the columns
back into (items, LFs, labels) arrays.

``<labeled stem>.crossfit.parquet`` (written by ``aggregate --gold`` beside labeled.parquet): the label model's
probabilities for the same sample, fitted for each fold f without fold f's gold (neither clamped nor as dev).
One row per (fold, item): ``fold``, ``id``, ``p`` (list<float32> in class order). Metadata: classes, the gold
ids, folds, labels (class indices) and ``fair`` (a random sample, so fit to score on). Multi-label flavour: ``p``
holds P(label applies) per label, the gold labels are 0/1 rows, and ``thresholds`` (folds x labels) are each
fold's label-model decision thresholds, chosen without that fold's gold.

Both record ``kind`` and ``format_version`` like every stage file (the votes file: version 2).
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
# Version 2: multi-label votes as the votes folder stores them (one 2-class column per LF and label); a version 1
# single-label file has the same layout and is still read.
VOTES_VERSION = 2


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
class CrossFitMultiVotes:
    """Multi-label: ``votes[f]`` (n, m, k) int16 of the gold-derived LFs ``lf_names`` on ``ids`` as if in fold f,
    over ``labels``; ``p_yes[f][lf]``: (n, k) float32 P(applies), NaN where the LF abstained; ``gold.labels``:
    (g, k) 0/1."""

    ids: list[str]
    lf_names: list[str]
    labels: list[str]
    label_ids: list[str]
    votes: list[np.ndarray]
    p_yes: list[dict[str, np.ndarray]]
    gold: GoldFolds
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CrossFitLabels:
    """``proba``: (folds, n, k) label-model probabilities of the sample ``ids``, fold f's fitted without the
    gold of fold f; ``gold``: the gold rows, their folds and labels. Multi-label: ``thresholds`` (folds, k),
    fold f's per-label decision thresholds (chosen without fold f's gold); None for single-label files."""

    ids: list[str]
    classes: list[str]
    proba: np.ndarray
    gold: GoldFolds
    meta: dict[str, Any] = field(default_factory=dict)
    thresholds: np.ndarray | None = None

    @property
    def multi_label(self) -> bool:
        return self.thresholds is not None


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
    info = {**stamp(VOTES_KIND, VOTES_VERSION), **dict(meta or {}), "lf_names": list(lf_names),
            "gold": gold.to_meta()}
    return _write(Path(folder) / VOTES_FILE, pa.table(cols), info)


def write_crossfit_multi_votes(folder: str | Path, *, ids: Sequence[str], lf_names: Sequence[str],
                               labels: Sequence[str], label_ids: Sequence[str], votes: Sequence[np.ndarray],
                               p_yes: Sequence[Mapping[str, np.ndarray]], gold: GoldFolds,
                               meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``folder/_crossfit.parquet`` for a multi-label votes folder; ``votes[f]`` is (n, m, k). Stored by
    :func:`write_crossfit_votes` as the votes folder stores them: one 2-class column per (LF, label)."""
    from .multivotes import MultiVotes

    n, m, k = len(ids), len(lf_names), len(label_ids)
    if len(votes) != gold.folds:
        raise InputError(f"cross-fitting votes: {len(votes)} folds of votes for {gold.folds} gold folds")
    if any(np.shape(v) != (n, m, k) for v in votes) or len(labels) != k:
        raise InputError(f"cross-fitting votes: each fold's votes must be ({n}, {m}, {k})")
    folds = [MultiVotes(v, list(lf_names), list(labels), list(label_ids), p_yes=dict(p))
             for v, p in zip(votes, p_yes)]
    flat = [mv.to_matrix() for mv in folds]
    return write_crossfit_votes(folder, ids=ids, lf_names=folds[0].flat_names(), votes=[L.votes for L in flat],
                                probs=[L.dense_vote_probs() for L in flat], gold=gold,
                                meta={**dict(meta or {}), **folds[0].manifest_meta()})


def read_crossfit_multi_votes(folder: str | Path) -> CrossFitMultiVotes | None:
    """The cross-fitting votes of a multi-label votes folder, or None when there are none."""
    from .matrix import LabelMatrix
    from .multivotes import BINARY, MultiVotes

    cv = _read_votes(Path(folder), multi_label=True)
    if cv is None:
        return None
    path, info = Path(folder) / VOTES_FILE, cv.meta["multi_label"]
    try:
        folds = [MultiVotes.from_matrix(LabelMatrix(v, cv.lf_names, labels=BINARY, ids=cv.ids, vote_probs={
            name: p[name][v[:, j] >= 0] for j, name in enumerate(cv.lf_names) if name in p}), info)
            for v, p in zip(cv.votes, cv.probs)]
    except (InputError, KeyError, TypeError) as e:
        raise InputError(f"cross-fitting votes: the columns do not match the multi_label entry ({e})", path=path,
                         hint="rerun `llmlabel label --gold` into this folder") from None
    k = len(folds[0].label_ids)
    if cv.gold.labels is not None and (cv.gold.labels.ndim != 2 or cv.gold.labels.shape[1] != k):
        raise InputError("cross-fitting votes: the gold labels are not 0/1 rows over the labels", path=path)
    return CrossFitMultiVotes(cv.ids, folds[0].lf_names, folds[0].labels, folds[0].label_ids,
                              [mv.votes for mv in folds], [mv.p_yes for mv in folds], cv.gold, cv.meta)


def _read(path: Path, kind: str, version: int = FORMAT_VERSION, also: tuple[int, ...] = ()):
    import pyarrow.parquet as pq

    from ..io_meta import read_meta

    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise InputError(f"unreadable cross-fitting file: {e}", path=path,
                         hint="rerun the stage that wrote it") from None
    meta = read_meta(path) or {}
    found = meta.get("format_version", 1)
    check_format(meta, kind=kind, version=found if found in also else version, path=path)
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
    return _read_votes(Path(folder), multi_label=False)


def _read_votes(folder: Path, *, multi_label: bool) -> CrossFitVotes | None:
    path = folder / VOTES_FILE
    if not path.is_file():
        return None
    table, meta = _read(path, VOTES_KIND, VOTES_VERSION, also=() if multi_label else (1,))
    if bool(meta.get("multi_label")) != multi_label:
        forms = ("single-label", "multi-label")
        raise InputError(f"{forms[not multi_label]} cross-fitting votes in a {forms[multi_label]} votes folder",
                         path=path, hint="rerun `llmlabel label --gold` into this folder")
    gold = GoldFolds.from_meta(meta.get("gold") or {}, path)
    names = [str(x) for x in meta.get("lf_names", [])]
    ids, rows = _by_fold(table, gold.folds, path)
    votes, probs = [], []
    try:
        for r in rows:
            votes.append(np.stack([table.column(f"v:{n}").to_numpy()[r] for n in names], axis=1).astype(np.int16)
                         if names else np.zeros((len(ids), 0), np.int16))
            probs.append({n: p for n in names if f"p:{n}" in table.column_names
                          for p in [_lists(table.column(f"p:{n}"), r)] if p is not None})
    except KeyError as e:
        raise InputError(f"cross-fitting votes: column {e} is missing", path=path) from None
    return CrossFitVotes(ids, names, votes, probs, gold, meta)


def crossfit_labels_path(labeled: str | Path) -> Path:
    p = Path(labeled)
    return p.with_name(p.stem + ".crossfit.parquet")


def write_crossfit_labels(labeled: str | Path, *, ids: Sequence[str], classes: Sequence[str], proba: np.ndarray,
                          gold: GoldFolds, meta: Mapping[str, Any] | None = None,
                          thresholds: np.ndarray | None = None) -> Path:
    """Write the sidecar of ``labeled`` (``<stem>.crossfit.parquet``); ``proba`` is (folds, n, k).
    ``thresholds`` (folds, k): each fold's per-label decision thresholds (multi-label files only)."""
    import pyarrow as pa

    P = np.asarray(proba, np.float32)
    if P.ndim != 3 or P.shape[0] != gold.folds or P.shape[1] != len(ids) or P.shape[2] != len(classes):
        raise InputError(f"cross-fitting labels: proba has shape {P.shape}, expected ({gold.folds}, {len(ids)}, "
                         f"{len(classes)})")
    if not np.isfinite(P).all():
        raise InputError("cross-fitting labels: probabilities must be finite")
    extra: dict[str, Any] = {}
    if thresholds is not None:
        T = np.asarray(thresholds, np.float64)
        if T.shape != (gold.folds, len(classes)) or not np.isfinite(T).all():
            raise InputError(f"cross-fitting labels: thresholds have shape {T.shape}, expected "
                             f"({gold.folds}, {len(classes)})")
        if gold.labels is None or np.ndim(gold.labels) != 2:
            raise InputError("cross-fitting labels: multi-label gold labels must be 0/1 rows over the classes")
        extra = {"multi_label": True, "thresholds": T.tolist()}
    cols = _long(ids, gold.folds)
    cols["p"] = _list_col(list(P), len(ids))
    info = {**stamp(LABELS_KIND, FORMAT_VERSION), **dict(meta or {}), "classes": list(classes),
            "gold": gold.to_meta(), **extra}
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
    thresholds = None
    if meta.get("multi_label"):
        try:
            thresholds = np.asarray(meta["thresholds"], np.float32)
        except (KeyError, TypeError, ValueError):
            thresholds = None
        if thresholds is None or thresholds.shape != (gold.folds, len(classes)) or gold.labels.ndim != 2:
            raise InputError("cross-fitting labels: multi-label thresholds or gold labels do not match the classes",
                             path=path)
    return CrossFitLabels(ids, classes, proba, gold, meta, thresholds)
