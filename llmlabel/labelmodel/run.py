"""``llmlabel aggregate`` and ``llmlabel lf-report`` as library calls: votes (any supported source) ->
labeled.parquet + review queue, or what every LF did."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..results import AggregateResult, LFReport, LFStats


def load_inputs(votes: str | Path, dev: str | Path | None = None, taxonomy: str | Path | None = None):
    """``(LabelMatrix, texts or None, L_dev or None, y_dev or None)``; ``taxonomy`` names the classes of
    votes that carry no label names (WRENCH, ``.npy``) and must match those that do."""
    from ..artifacts.taxonomy import load_taxonomy
    from .pipeline import load_dev, load_votes

    # leaves: parent groups are not classes
    labels = None if taxonomy is None else load_taxonomy(taxonomy).classes_for_votes(taxonomy)
    L, _, texts = load_votes(votes, labels)
    if labels is not None and L.labels is not None and list(L.labels) != labels:
        raise ConfigError("the taxonomy's labels differ from the ones the votes were made with", path=taxonomy)
    L_dev = y_dev = None
    if dev is not None:
        L_dev, y_dev = load_dev(dev, L, L.labels)
    return L, texts, L_dev, y_dev


def aggregate_votes(votes: str | Path, output: str | Path, *, dev: str | Path | None = None, method: str = "auto",
                    taxonomy: str | Path | None = None, review_top: float = 0.1,
                    gold: str | Path | None = None) -> AggregateResult:
    """Fit a label model on ``votes`` (chosen and calibrated on the gold ``dev`` set with ``method="auto"``)
    and write ``output`` (labeled.parquet) with the review queue beside it.

    ``review_top``: share (< 1) or number of items in the review queue. ``gold``: human labels (JSONL/CSV of
    id + label, e.g. from ``llmlabel review import``), clamped (``source: human``); those from the ``random``
    strategy or with no ``strategy`` field are also used, cross-fitted, to choose and calibrate the model; each such run appends a round to ``review_rounds.json`` beside ``output``.
    Returns an :class:`~llmlabel.results.AggregateResult` (paths, report, counts). Multi-label votes get per-label
    label models, per-label thresholds (F1 on dev) and ``labels`` lists (:mod:`llmlabel.labelmodel.multipipeline`;
    there ``gold`` (id + labels) is clamped and joins the dev rows).
    """
    from ..io_write import check_writable
    from .gold import aggregate_with_gold, append_round, load_gold
    from .pipeline import write_labeled

    check_writable(output)
    if review_top < 0:
        raise ConfigError(f"review_top must be >= 0, got {review_top}", field="review_top")
    from ..artifacts.multivotes import is_multi_label_votes

    if is_multi_label_votes(votes):  # per-label models and thresholds (multipipeline.py)
        from .multipipeline import aggregate_votes_multi

        return aggregate_votes_multi(votes, output, dev=dev, method=method, taxonomy=taxonomy,
                                     review_top=review_top, gold=gold)
    L, texts, L_dev, y_dev = load_inputs(votes, dev, taxonomy)
    res = aggregate_with_gold(L, method, L_dev, y_dev, *(load_gold(gold, L, with_strategy=True) if gold else (None, None, None)))
    paths = write_labeled(output, L, res, texts, review_top=review_top if review_top < 1 else int(review_top),
                          meta=None)
    if gold is not None:
        append_round(Path(output).parent / "review_rounds.json", res["report"])
        crossfit = _crossfit(votes, output, L, method, L_dev, y_dev, gold)
        if crossfit is not None:
            paths["crossfit"] = crossfit
    return AggregateResult(paths=paths, report=res["report"], items=len(L), uncovered=int(res["uncovered"].sum()))


def lf_report(votes: str | Path, *, dev: str | Path | None = None,
              taxonomy: str | Path | None = None) -> LFReport:
    """Coverage, overlap, conflict, polarity and labeling errors of every LF in ``votes``; with ``dev`` (gold
    labels) also each LF's accuracy on the dev items it voted on. ``taxonomy`` names the classes of votes that
    carry no label names (WRENCH, ``.npy``). Returns an :class:`~llmlabel.results.LFReport`."""
    from .analysis import LFAnalysis

    L, _, L_dev, y_dev = load_inputs(votes, dev, taxonomy)
    rows = LFAnalysis(L.hard(), class_names=L.labels).rows()
    acc = {}
    if L_dev is not None:
        acc = {r["lf"]: r for r in LFAnalysis(L_dev.hard(), y_dev, class_names=L.labels).rows()}
    lfs = tuple(LFStats(lf=r["lf"], polarity=tuple(r["polarity"]), coverage=r["coverage"], overlap=r["overlap"],
                        conflict=r["conflict"], errors=int(L.errors.get(r["lf"], 0)),
                        dev_accuracy=acc[r["lf"]].get("accuracy") if acc else None,
                        dev_votes=acc[r["lf"]]["n_votes"] if acc else None) for r in rows)
    return LFReport(items=len(L), covered=float(L.covered().mean()), lfs=lfs, dev=bool(acc))


def _crossfit(votes, output, L, method, L_dev, y_dev, gold) -> Path | None:
    """The labeled file's cross-fitting sidecar, when the votes folder holds cross-fitted votes (``label
    --gold`` with gold-derived LFs); a stale sidecar from an earlier run is removed otherwise."""
    from ..artifacts.crossfit import read_crossfit_votes
    from .crossfit import crossfit_labels, crossfit_sidecar
    from .gold import load_gold

    return crossfit_sidecar(votes, output, L.labels or [str(j) for j in range(L.cardinality)], read_crossfit_votes,
                            lambda cv: crossfit_labels(L, cv, *load_gold(gold, L, with_strategy=True), method,
                                                       L_dev, y_dev), method)
