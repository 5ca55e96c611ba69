"""What the stage functions return: one frozen, typed result per stage, shared by the functions that produce
it (local and Ray) and everything that reads it (the CLI, ``llmlabel run``, ``llmlabel auto``).

The functions used to return plain dicts whose keys drifted between producers (the local ``label`` said
``restarted``, the Ray one ``usage``; callers coped with ``.get``). A result here names every field once, with
its type and what it means. Read access by key (``res["rows_labeled"]``, ``res.get("usage")``) still works, for
code written against the dicts; new code reads attributes.

>>> r = LabelResult(out="votes", rows_labeled=10, shards=1, errors={}, read="read 10 rows")
>>> r.rows_labeled, r["shards"], r.get("usage")
(10, 1, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["AggregateResult", "LabelResult", "PredictResult", "StageResult", "XmcResult"]


@dataclass(frozen=True)
class StageResult:
    """Base: a frozen dataclass that can also be read by key (``res["x"]``, ``res.get("x")``, ``"x" in res``).

    Not a ``Mapping``: a field may be called ``items`` (a count), which a mapping's method would shadow."""

    def __getitem__(self, key: str) -> Any:
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._names() else default

    def __contains__(self, key: object) -> bool:
        return key in self._names()

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._names()}


@dataclass(frozen=True)
class LabelResult(StageResult):
    """``label``: the votes folder written (``lf.run.label_corpus``, ``scale.label.label_corpus_ray``)."""

    out: str                                   # the votes folder
    rows_labeled: int                          # rows voted on in this run (finished shards not counted again)
    shards: int                                # shards in the folder now
    errors: dict[str, int]                     # per LF: items it failed on (empty LLM answers included)
    read: str                                  # what the corpus reader saw (rows, skipped, repaired)
    restarted: str | None = None               # why an earlier folder's votes were stale and were relabeled
    multi_label: bool = False
    default_lfs: str | None = None             # the default LF set's description, when no --lfs was given
    embedder_auto: str | None = None           # why the run's embedder was chosen, when it chose one
    crossfit: dict[str, Any] | None = None     # with gold: the cross-fitting votes written (file, items, LFs)
    usage: dict[str, Any] | None = None        # model calls and tokens (Ray: gathered from the workers)


@dataclass(frozen=True)
class AggregateResult(StageResult):
    """``aggregate``: the labeled file and its review queue (``labelmodel.run.aggregate_votes``)."""

    paths: dict[str, Any]                      # labeled, review_csv, review_jsonl, label_studio (+ crossfit)
    report: dict[str, Any]                     # the label model's report: chosen model, reason, selection, ...
    items: int
    uncovered: int                             # items no LF voted on (kept, marked, labeled by the prior)
    mean_labels: float | None = None           # multi-label: mean labels an item gets
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictResult(StageResult):
    """``predict``: one prediction per text written (``distill.predict.predict``; the Ray backend's too)."""

    rows: int
    empty: int                                 # empty texts: no label, reason "empty text"
    read: str
    output: Any                                # the predictions file (a Path)
    deferred: int | None = None                # cascade: items the LLM answered
    threshold: float | None = None             # cascade: the student-confidence threshold used
    calibration: dict[str, Any] | None = None  # cascade with --dev: what the threshold achieved there
    curve_path: Any = None                     # cascade: the accuracy/deferral curve beside the output


@dataclass(frozen=True)
class XmcResult(StageResult):
    """``xmc``: ranked labels per item (``xmc.api.run_xmc``)."""

    rows: int
    seconds: float
    output: Any
    read: str
    program: dict[str, Any] | None = None      # with an LLM: the DSPy program's summary
    report: dict[str, Any] | None = None       # with --train/--dev: the optimiser's report

