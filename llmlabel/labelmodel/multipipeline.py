"""``llmlabel aggregate`` on multi-label votes: P(label applies) per label, thresholds, labels lists, review queue.

- One binary label model per label (:class:`~llmlabel.labelmodel.MultiLabel`): with a dev set each label's
  model is chosen (by log-loss) and calibrated on that label's dev column; without, the documented default,
  uncalibrated.
- Decision thresholds: per label, the one maximising that label's F1 on dev (a label with no dev positive
  keeps the global one); without dev one global 0.5. An item's ``labels`` are the classes at or above
  their threshold; ``label`` (the single-label column) is the most probable class.
- Review queue: items ranked by the expected number of wrong labels in their set, ``sum_j (p_j if not
  chosen else 1 - p_j)`` (uncovered items first among equals: nothing voted on them).
- Gold (``--gold``: id + labels): its rows join the dev rows and are clamped (``source: human``, their labels and
  P = 0/1 as given). With a dev set or gold and a votes folder holding cross-fitting votes (``label --gold``),
  the per-fold label models of the safety net are fitted too (:mod:`llmlabel.labelmodel.crossfit`) and
  written to the labeled file's cross-fitting sidecar.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..artifacts.multivotes import MultiVotes
from ..results import AggregateResult
from ..multilabel_metrics import best_thresholds

__all__ = ["aggregate_multi", "best_thresholds", "expected_set_errors", "load_multi_dev", "write_labeled_multi"]


def load_multi_dev(path: str | Path, mv: MultiVotes, what: str = "dev") -> tuple[np.ndarray, np.ndarray]:
    """``(rows into mv, Y_dev (n_dev, k) 0/1)`` of a dev or gold file (:func:`.pipeline.read_labels`)."""
    from .pipeline import read_labels

    return read_labels(path, mv, what=what, sets=True)[:2]


def expected_set_errors(P: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Expected number of wrong labels per item when ``chosen`` (0/1) is shipped and P(label) is right."""
    return np.where(chosen.astype(bool), 1 - P, P).sum(1)


def aggregate_multi(mv: MultiVotes, method: str = "auto", dev_rows=None, Y_dev=None, *,
                    random_state: int = 0) -> dict:
    """Fit per-label label models (+ thresholds on dev); dict with proba (n, k), thresholds, chosen (n, k), label
    and confidence (the most probable class), uncovered (n,), report."""
    from .multilabel import MultiLabel
    from .select import MODEL_ALIASES, make_model

    base = "auto" if method == "auto" else MODEL_ALIASES.get(str(method).lower(), str(method).lower())
    if base != "auto":
        make_model(base, 2)  # an unknown name is a one-line error listing the known ones
    Ls = mv.per_label()
    model = MultiLabel(base, labels=mv.labels, random_state=random_state)
    if dev_rows is not None:
        model.fit(Ls, Y_dev, [L[dev_rows] for L in Ls])
    else:
        model.fit(Ls)
    P = model.predict_proba(Ls).astype(np.float32)
    if dev_rows is not None:
        thr = best_thresholds(P[dev_rows], np.asarray(Y_dev))
        how = "per-label F1-optimal on dev"
    else:
        thr = np.full(len(mv.labels), 0.5, np.float32)
        how = "global 0.5 (no dev set)"
    chosen = (P >= thr[None, :]).astype(np.int8)
    chosen_per_label = [getattr(m, "report_", {}).get("chosen") for m in model.models_]
    report = {"chosen": "per-label " + (base if base != "auto" else "auto"), "multi_label": True,
              "reason": ("chosen (dev log-loss) and calibrated per label on dev" if dev_rows is not None else
                         "no dev set: the documented default per label, uncalibrated"),
              "per_label": dict(zip(mv.labels, chosen_per_label)),
              "thresholds": dict(zip(mv.labels, map(float, thr))), "thresholds_from": how}
    if dev_rows is not None:
        from ..multilabel_metrics import multilabel_f1

        report["dev"] = multilabel_f1(np.asarray(Y_dev), chosen[dev_rows], mv.labels)
        report["dev"].pop("per_label", None)
    label = P.argmax(1)
    return {"model": model, "proba": P, "thresholds": thr, "chosen": chosen, "label": label,
            "confidence": P[np.arange(len(P)), label], "uncovered": ~(mv.votes >= 0).any(axis=(1, 2)),
            "report": report}


def write_labeled_multi(out: str | Path, mv: MultiVotes, res: dict, texts=None, *, review_top: float = 0.1,
                        meta: dict | None = None, source=None) -> dict[str, Path]:
    """labeled.parquet with ``labels`` lists + ``p:<label>`` (and ``source`` when given), and the review queue
    (CSV + JSONL) beside it."""
    from ..artifacts.labeled import write_labeled
    from ..artifacts.review import queue_path, write_review_queue
    from ..io_meta import make_meta
    from .review import write_csv

    out = Path(out)
    P, chosen = res["proba"], res["chosen"]
    ids = mv.ids if mv.ids is not None else [str(i) for i in range(len(mv))]
    names = np.asarray(mv.labels, dtype=object)
    lists = [list(names[np.flatnonzero(r)]) for r in chosen]
    info = dict(meta or make_meta())
    info.update(label_model=res["report"], lf_names=mv.lf_names, thresholds=res["report"]["thresholds"])
    if mv.meta.get("depends_on"):
        info["votes_depend_on"] = mv.meta["depends_on"]
    li = P.argmax(1)
    write_labeled(out, ids=ids, classes=mv.labels, proba=P, label_index=li, confidence=P[np.arange(len(P)), li],
                  uncovered=res["uncovered"], texts=texts, labels=lists, multi_label=True, meta=info, source=source)
    err = expected_set_errors(P, chosen)
    order = np.lexsort((np.arange(len(err)), ~res["uncovered"], -err))  # highest risk, uncovered first, stable
    n_top = int(round(review_top * len(err))) if review_top < 1 else int(review_top)
    rows = []
    for r, i in enumerate(order[:n_top]):
        near = np.flatnonzero(np.abs(P[i] - res["thresholds"]) < 0.25)
        rows.append({"rank": r + 1, "index": int(i), "id": ids[i], "text": None if texts is None else texts[i],
                     "labels": "|".join(lists[i]), "expected_errors": round(float(err[i]), 4),
                     "uncovered": bool(res["uncovered"][i]),
                     "doubtful": "|".join(f"{names[j]}={P[i, j]:.2f}" for j in near)})
    stem = out.with_suffix("")
    return {"labeled": out, "review_csv": write_csv(rows, f"{stem}.review.csv"),
            "review_jsonl": write_review_queue(queue_path(out), rows)}


def aggregate_votes_multi(votes: str | Path, out: str | Path, *, dev: str | Path | None = None,
                          method: str = "auto", taxonomy: str | Path | None = None, review_top: float = 0.1,
                          meta: dict | None = None, gold: str | Path | None = None) -> AggregateResult:
    """What ``llmlabel aggregate`` does on a multi-label votes folder; returns the paths and the report.
    ``gold``: human label sets, clamped and joining the dev rows (module docstring)."""
    from ..artifacts.multivotes import read_multi_votes

    labels = None
    if taxonomy is not None:
        from ..artifacts.taxonomy import load_taxonomy

        labels = load_taxonomy(taxonomy).classes()
    mv, texts = read_multi_votes(votes, labels)
    rows = Y = g_rows = g_Y = None
    if dev is not None:
        rows, Y = load_multi_dev(dev, mv)
    if gold is not None:
        g_rows, g_Y = load_multi_dev(gold, mv, "gold")
        if rows is None:
            rows, Y = g_rows, g_Y
        else:  # a row in both files counts once, with the gold's labels
            other = ~np.isin(rows, g_rows)
            rows, Y = np.concatenate([rows[other], g_rows]), np.concatenate([Y[other], g_Y])
    res = aggregate_multi(mv, method, rows, Y)
    source = None
    if gold is not None:
        from .gold import clamp

        res = clamp(res, g_rows, g_Y)
        source = res["source"]
        res["report"].update(n_gold=int(len(g_rows)), n_gold_selection=int(len(g_rows)), n_gold_clamped_only=0)
    t0 = time.perf_counter()
    side = _crossfit_sidecar(votes, out, mv, rows, Y, method)
    if side is not None:
        res["report"]["crossfit_seconds"] = round(time.perf_counter() - t0, 1)
    paths = write_labeled_multi(out, mv, res, texts, review_top=review_top, meta=meta, source=source)
    if side is not None:
        paths["crossfit"] = side
    return AggregateResult(paths=paths, report=res["report"], items=len(mv), uncovered=int(res["uncovered"].sum()),
                           mean_labels=float(res["chosen"].sum(1).mean()))


def _crossfit_sidecar(votes, out, mv: MultiVotes, rows, Y, method: str) -> Path | None:
    """The labeled file's multi-label cross-fitting sidecar, when the votes folder holds cross-fitting votes and
    a dev set or gold was given; a stale sidecar from an earlier run is removed otherwise."""
    from ..artifacts.crossfit import read_crossfit_multi_votes
    from .crossfit import crossfit_multi_labels, crossfit_sidecar

    return crossfit_sidecar(votes, out, mv.labels, read_crossfit_multi_votes,
                            lambda cv: crossfit_multi_labels(
                                mv, cv, rows, Y, lambda votes, r, y: aggregate_multi(votes, method, r, y)),
                            method, rows is not None)
