"""Library side of ``llmlabel label`` / ``aggregate`` / ``lf-report``: read votes, fit, write results.

Votes come from our votes folder (``llmlabel label`` shards), a LabelMatrix Parquet file, a WRENCH JSON
split, or a Snorkel-style ``.npy`` int array (-1 = abstain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts.matrix import LabelMatrix
from ..artifacts.votes import read_votes
from ..errors import ConfigError, InputError


def load_votes(path: str | Path, labels: list[str] | None = None):
    """``(LabelMatrix, gold y or None, texts or None)`` from any supported votes source (see
    :func:`llmlabel.artifacts.votes.read_votes`)."""
    return tuple(read_votes(path, labels))


def read_labels(path: str | Path, V, *, what: str = "dev", sets: bool = False, classes=None, **wording):
    """``(rows into V, labels, fair)`` of a gold / dev file (:mod:`llmlabel.artifacts.gold`) matched to the items
    of the votes ``V``: class indices (n,) in ``classes`` (default V's), or with ``sets`` 0/1 label sets (n, k) (a
    ``labels`` list, names joined by ``|`` or ``,``, or ``label``; a dev row may have none); ``fair``: the rows
    that are a fair sample. ``wording``: ``several`` / ``hint`` for a row with several labels."""
    from ..artifacts.gold import read_gold

    if V.ids is None:
        raise InputError(f"these votes carry no item ids, so {what} labels cannot be matched to items", path=path)
    if sets:
        g = read_gold(path, label_field="labels", fallback_field="label", split="|,", allow_empty=what == "dev",
                      what=what)
        return g.rows_in(V.ids), g.matrix(V.labels, aliases=V.label_ids), g.fair()
    g = read_gold(path, what=what)
    y = g.index((V.labels if classes is None else classes) or [], cardinality=V.cardinality, **wording)
    return g.rows_in(V.ids), y, g.fair()


def load_dev(path: str | Path, L: LabelMatrix, labels: list[str] | None):
    """``(L_dev, y_dev)``: a WRENCH split with gold labels, or a JSONL/CSV of ``id`` + ``label`` matched to L's ids.

    Labels may be class names or ids; one outside the label set is an error naming the line.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        Ld, yd, _ = load_votes(path, labels)
        if Ld.votes.shape[1] != L.votes.shape[1]:
            raise InputError(f"dev votes have {Ld.votes.shape[1]} LFs, the votes {L.votes.shape[1]}", path=path)
        if (yd is None) or (yd < 0).any() or (yd >= L.cardinality).any():
            raise ConfigError(f"dev labels must be class ids in [0, {L.cardinality})", path=path)
        return Ld, yd
    rows, ys, _ = read_labels(path, L, classes=labels)
    return L.take(np.asarray(rows)), np.asarray(ys)


def fit_label_model(L: LabelMatrix, method: str = "auto", L_dev=None, y_dev=None, *, metric: str = "accuracy"):
    """The fitted (calibrated where a dev set exists) model and a report dict; ``metric``: what ``auto`` chooses
    by on the dev set (``select_label_model``)."""
    from .calibrate import CalibratedLabelModel
    from .select import MODEL_ALIASES, make_model, select_label_model

    if method == "auto":
        model = select_label_model(L, L_dev, y_dev, metric=metric)
        return model, model.report_
    name = MODEL_ALIASES.get(str(method).lower(), str(method).lower())
    make_model(name, L.cardinality)  # an unknown name is a one-line error listing the known ones
    if L_dev is not None:  # one candidate: the dev set only calibrates it
        model = select_label_model(L, L_dev, y_dev, candidates=[name])
    else:
        model = CalibratedLabelModel(make_model(name, L.cardinality)).fit(
            L, selection={"chosen": name, "calibration": "none", "reason": "--method given"})
    return model, model.report_


def aggregate(L: LabelMatrix, method: str = "auto", L_dev=None, y_dev=None, *, metric: str = "accuracy"):
    """Fit and predict: dict with model, report, proba (n, k), label (n,), confidence, uncovered."""
    model, report = fit_label_model(L, method, L_dev, y_dev, metric=metric)
    proba = model.predict_proba(L)
    covered = L.covered()
    label = model.predict(L, proba=proba)
    return {"model": model, "report": report, "proba": proba, "label": label,
            "confidence": proba[np.arange(len(label)), label], "uncovered": ~covered}


def write_labeled(out: str | Path, V, res: dict, texts=None, *, review_top: float = 0.1,
                  meta: dict | None = None) -> dict[str, Path]:
    """labeled.parquet (through :mod:`llmlabel.artifacts.labeled`) plus the review queue files beside it. ``V``:
    the votes (a LabelMatrix, or MultiVotes); a result with label sets (``chosen``, multi-label) adds the
    ``labels`` lists and ranks its queue by the expected wrong labels in each set (:mod:`.multilabel`)."""
    from ..artifacts.labeled import write_labeled as write
    from ..artifacts.review import queue_path, write_review_queue
    from ..io_meta import make_meta
    from .review import review_queue, write_csv, write_label_studio

    out, sets = Path(out), res.get("chosen")
    names = list(V.labels or [str(j) for j in range(V.cardinality)])
    ids = V.ids if V.ids is not None else np.arange(len(V)).astype(str)
    info = dict(meta or make_meta())
    info.update(label_model=res["report"], lf_names=V.lf_names)
    if sets is not None:
        info["thresholds"] = res["report"]["thresholds"]
    votes_meta = getattr(V, "meta", None) or {}
    if votes_meta.get("depends_on"):
        info["votes_depend_on"] = votes_meta["depends_on"]
    if votes_meta.get("label_texts"):
        info["label_texts"] = votes_meta["label_texts"]  # names and descriptions: the anchored student's prior
    if votes_meta.get("encoder"):
        info["encoder"] = votes_meta["encoder"]  # the tuned encoder the gold LFs read: the card and report name it
    named = np.asarray(names, dtype=object)
    lists = None if sets is None else [list(named[r.astype(bool)]) for r in sets]
    write(out, ids=ids, classes=names, proba=res["proba"], label_index=res["label"], confidence=res["confidence"],
          uncovered=res["uncovered"], texts=texts, source=res.get("source"), labels=lists,
          multi_label=sets is not None, meta=info)
    if sets is None:
        rows = review_queue(res["proba"], V, ids=list(ids), texts=texts, class_names=names, top=review_top,
                            labels=res["label"])
    else:
        from .multilabel import set_review_rows

        rows = set_review_rows(res, ids, texts, names, top=review_top)
    stem = out.with_suffix("")
    paths = {"labeled": out, "review_csv": write_csv(rows, f"{stem}.review.csv"),
             "review_jsonl": write_review_queue(queue_path(out), rows)}
    if sets is None:  # Label Studio's pre-annotations are one choice per item
        paths["label_studio"] = write_label_studio(rows, f"{stem}.label_studio.json")
    return paths
