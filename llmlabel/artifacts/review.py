"""The human-review files: the queue ``aggregate`` writes, what was sent and came back, and the review rounds.

- ``<labeled stem>.review.jsonl`` (written by ``aggregate`` beside labeled.parquet, read by ``report``): one
  object per item to review, most doubtful first. Single-label rows: ``rank``, ``index``, ``id``, ``text``,
  ``label``, ``label_name``, ``confidence``, ``risk`` and the signals behind the risk; multi-label rows: ``rank``,
  ``index``, ``id``, ``text``, ``labels`` (``|``-joined), ``expected_errors``, ``uncovered``, ``doubtful``.
- ``review_state.json`` (``review export`` / ``review import``): ``{"version": 1, "exported": {id: time},
  "reviewed": {id: time}, "strategy": {id: strategy}}``, so no item is sent to people twice.
- ``review_rounds.json`` (``aggregate --gold``, also eval/review.py's ``*_rounds.json``; read by ``report``):
  ``{"note", "rounds": [{"strategy", "n_labels", "accuracy", ...}]}``, one point per round, by ``n_labels``.

These files carry no ``kind`` key (they are written byte for byte as before); a reader refuses a ``kind`` or
version it does not know and names the file, the line (JSONL) and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_records import read_json, read_records
from ..io_write import atomic_write
from ._format import check_format

__all__ = ["STATE_FILE", "ROUNDS_FILE", "ReviewQueue", "ReviewRounds", "ReviewState", "add_round", "queue_path",
           "read_review_queue", "read_rounds", "write_review_queue"]

STATE_FILE, ROUNDS_FILE = "review_state.json", "review_rounds.json"
STATE_VERSION = 1
ROUNDS_NOTE = "llmlabel aggregate --gold: label-model accuracy on the dev set (out-of-fold) after each round"


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# -- the review queue ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewQueue:
    """The rows of a ``*.review.jsonl`` queue, in file order (most doubtful first)."""

    rows: tuple[Mapping[str, Any], ...]
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.rows)


def queue_path(labeled: str | Path) -> Path:
    """``x/labeled.parquet`` -> ``x/labeled.review.jsonl``: the queue written beside a labeled file."""
    return Path(labeled).with_suffix(".review.jsonl")


def write_review_queue(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """The queue as JSONL (one object per row, UTF-8 kept as is), written atomically."""
    path = Path(path)
    with atomic_write(path) as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def read_review_queue(path: str | Path) -> ReviewQueue:
    """The validated queue: every line an object with an ``id`` and an integer ``rank``."""
    path = Path(path)
    rows = []
    for n, row in read_records(path, what="review queue"):
        if row.get("id") is None:
            raise InputError("review queue row has no 'id'", path=path, line=n, field="id")
        if not isinstance(row.get("rank"), int) or isinstance(row.get("rank"), bool):
            raise InputError(f"review queue row's 'rank' is not an integer: {row.get('rank')!r}", path=path,
                             line=n, field="rank")
        rows.append(row)
    return ReviewQueue(rows=tuple(rows), path=path)


# -- what was sent to people and what came back ---------------------------------------------------------------------

class ReviewState:
    """Which items were sent to people and which came back: ``review_state.json``, so none is sent twice.

    Mutable on purpose: ``review export`` marks what it sends and ``review import`` what came back, then ``save``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.exported: dict[str, str] = {}
        self.reviewed: dict[str, str] = {}
        self.strategy: dict[str, str] = {}  # id -> the strategy that sent it (absent in files before it was kept)
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        hint = "restore it, or delete it to allow every item again"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise InputError(f"review state file is damaged ({type(e).__name__}: {e})", path=self.path,
                             hint=hint) from None
        if not isinstance(data, dict):
            raise InputError("review state file is damaged (not a JSON object)", path=self.path, hint=hint)
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            raise InputError(f"review state file has version {data.get('version')!r}, this llmlabel reads "
                             f"version {STATE_VERSION}", path=self.path, field="version")
        for key, required in (("exported", True), ("reviewed", True), ("strategy", False)):
            val = data.get(key, None if required else {})
            if not isinstance(val, dict) or not all(isinstance(v, str) for v in val.values()):
                raise InputError(f"review state file is damaged ('{key}' is not an object of id -> text)",
                                 path=self.path, field=key, hint=hint)
            setattr(self, key, {str(k): v for k, v in val.items()})

    @staticmethod
    def _now() -> str:
        return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def seen(self) -> set[str]:
        return set(self.exported) | set(self.reviewed)

    def mark_exported(self, ids, strategy: str | None = None) -> None:
        t = self._now()
        ids = [str(i) for i in ids]
        self.exported.update({i: t for i in ids})
        if strategy is not None:
            self.strategy.update({i: strategy for i in ids})

    def mark_reviewed(self, ids) -> None:
        t = self._now()
        self.reviewed.update({str(i): t for i in ids})

    def save(self) -> Path:
        with atomic_write(self.path) as f:
            json.dump({"version": STATE_VERSION, "exported": self.exported, "reviewed": self.reviewed,
                       "strategy": self.strategy}, f, indent=1)
        return self.path


# -- review rounds: accuracy against the number of human labels ----------------------------------------------------

@dataclass(frozen=True)
class ReviewRounds:
    """One point per review round (``n_labels``, ``accuracy``, ``strategy``, optional ``dataset``,
    ``student_accuracy``, ``chosen``...), kept as written."""

    rounds: tuple[Mapping[str, Any], ...]
    note: str = ""


def _rounds_data(path: Path) -> dict[str, Any]:
    data = read_json(path, what="review rounds file")
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        raise InputError("review rounds file must be an object with a 'rounds' list", path=path, field="rounds")
    check_format(data, kind="review-rounds", version=1, path=path)
    for i, r in enumerate(data["rounds"]):
        if not isinstance(r, dict):
            raise InputError("each review round must be a JSON object", path=path, field=f"rounds[{i}]")
        for key in ("n_labels", "accuracy", "student_accuracy"):
            if r.get(key) is not None and not _number(r[key]):
                raise InputError(f"review round {key} is not a number: {r[key]!r}", path=path,
                                 field=f"rounds[{i}].{key}")
    return data


def read_rounds(path: str | Path) -> ReviewRounds:
    """A validated rounds file: an object with a ``rounds`` list of objects whose numbers are numbers."""
    data = _rounds_data(Path(path))
    note = data.get("note", "")
    return ReviewRounds(rounds=tuple(data["rounds"]), note=note if isinstance(note, str) else str(note))


def add_round(path: str | Path, point: Mapping[str, Any], *, note: str = ROUNDS_NOTE) -> Path:
    """Add ``point`` to the rounds file (created with ``note``); a point with the same ``n_labels`` is
    replaced (a rerun of the same round), and the points stay in ``n_labels`` order."""
    path = Path(path)
    data = _rounds_data(path) if path.is_file() else {"note": note, "rounds": []}  # other keys kept as they are
    keep = [r for r in data["rounds"] if r.get("n_labels") != point["n_labels"]]
    data["rounds"] = sorted([*keep, dict(point)], key=lambda r: r["n_labels"])
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)
    return path
