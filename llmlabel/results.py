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

__all__ = ["AggregateResult", "LFReport", "LFStats", "LabelResult", "PredictResult", "PushResult",
           "ReviewExportResult", "ReviewImportResult", "StageResult", "XmcEvalResult", "XmcResult"]


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


@dataclass(frozen=True)
class PushResult(StageResult):
    """``push``: the model folder (and its labeled dataset) on the Hub (``distill.hub.push_model``)."""

    url: str                                   # the model repo's commit URL
    dataset_repo: str | None = None            # with a dataset: the dataset repo id (default ``REPO-data``)
    dataset_url: str | None = None


@dataclass(frozen=True)
class XmcEvalResult(StageResult):
    """``xmc-eval``: predictions scored against gold label lists (``xmc.api.evaluate_predictions``)."""

    items: int                                 # gold rows with at least one label: the ones scored
    items_without_gold: int                    # gold rows with no label: skipped
    gold_rows_without_prediction: int          # gold rows no prediction names: scored as an empty prediction
    ks: tuple[int, ...]                        # the cut-offs, ascending
    scores: dict[str, float]                   # ``RP@k``, ``recall@k``, ``precision@k``, ``nDCG@k`` for every k

    def metrics(self) -> dict[str, Any]:
        """Counts and scores as one flat dict (what ``xmc-eval --json`` prints)."""
        return {"items": self.items, "items_without_gold": self.items_without_gold, **self.scores,
                "gold_rows_without_prediction": self.gold_rows_without_prediction}


@dataclass(frozen=True)
class LFStats(StageResult):
    """One labeling function's row of ``lf-report``."""

    lf: str
    polarity: tuple[Any, ...]                  # the classes it ever voted for (names when the votes carry them)
    coverage: float                            # share of items it voted on
    overlap: float                             # share of items it and at least one other LF voted on
    conflict: float                            # share of items where another LF voted for another class
    errors: int                                # items it failed on while labeling
    dev_accuracy: float | None = None          # with dev labels: accuracy where it voted (None: no vote there)
    dev_votes: int | None = None               # with dev labels: dev items it voted on


@dataclass(frozen=True)
class LFReport(StageResult):
    """``lf-report``: what every LF did on the votes (``labelmodel.run.lf_report``)."""

    items: int
    covered: float                             # share of items at least one LF voted on
    lfs: tuple[LFStats, ...]                   # in the votes' column order
    dev: bool = False                          # whether dev labels were given (``dev_*`` filled)


@dataclass(frozen=True)
class ReviewExportResult(StageResult):
    """``review export``: Label Studio tasks for items nobody reviewed yet (``review.export.export_review``)."""

    tasks: Any                                 # the tasks file (a Path)
    config: Any                                # the labeling config beside it (``<name>.config.xml``)
    state: Any                                 # the review record, updated with the items sent
    n: int                                     # tasks written
    ids: tuple[str, ...]                       # their item ids, riskiest first
    strategy: str
    excluded: int                              # items left out: already sent, reviewed or human-labeled
    votes_used: bool = False                   # ``review``: LF votes fed the disagreement signal
    features: str | None = None                # ``review``: what the out-of-fold classifier read (None: no classifier)


@dataclass(frozen=True)
class ReviewImportResult(StageResult):
    """``review import``: people's answers merged into the gold file (``review.roundtrip.import_annotations``)."""

    gold: Any                                  # the gold file (a Path)
    rows: int                                  # gold labels this export gave
    total: int                                 # rows in the gold file now (earlier rounds kept)
    state: Any                                 # the review record, updated with the items reviewed
    annotations: int
    annotators: int
    items: int                                 # items with at least one answer
    skipped: int                               # items every annotator skipped
    conflicts_resolved: tuple[dict, ...]       # items where annotators disagreed and a majority decided
    ties_dropped: tuple[dict, ...]             # items with tied answers: no gold label, may be sent again
    new_labels: tuple[str, ...]                # labels people used that the taxonomy lacked (added with --add-labels)
