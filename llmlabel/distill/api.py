"""``distill()``: labeled file -> trained student -> model folder with metrics and a model card."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.model import TrainingFacts, write_metrics
from ..errors import ConfigError
from .anchors import anchors_for
from .data import LabeledData, read_gold, read_labeled
from .safety import no_fair_gold
from .weakweight import WEAK_WEIGHTS, fit_over_weights, parse_weak_weight, weak_weights  # noqa: F401


@dataclass
class DistillResult:
    student: Any
    metrics: dict[str, Any]
    folder: Path | None


def make_student(spec: str = "static", *, multi_label: bool = False, epochs: int | None = None, seed: int = 0,
                 progress: bool = False, **kw: Any):
    """``static`` | ``static:FOLDER`` (model2vec-style) | ``probe`` | ``probe:FOLDER`` (frozen sentence encoder +
    logistic regression) | ``anchored`` (the probe shrunk towards the label texts ``anchors``) | ``minilm`` | a
    local transformers folder (the run's tuned encoder folder is one:
    :func:`tuned_encoder_path` resolves ``tuned``)."""
    anchors = kw.pop("anchors", None)  # the anchored probe's alone
    if spec in ("probe", "anchored") or spec.startswith("probe:"):
        from .probe import ProbeStudent

        anchors = anchors if spec == "anchored" else None
        if spec == "anchored" and not anchors:
            raise ConfigError("the anchored probe needs one anchor text per class")
        return ProbeStudent(spec.split(":", 1)[1] if ":" in spec else "minilm", multi_label=multi_label, seed=seed,
                            progress=progress, anchors=anchors)
    base = {"multi_label": multi_label, "seed": seed, "progress": progress, **kw}
    if epochs is not None:
        base["epochs"] = epochs
    if spec == "static" or spec.startswith("static:"):
        from .static import StaticStudent

        return StaticStudent(spec.split(":", 1)[1] if ":" in spec else "wordllama", **base)
    if spec == "minilm" or Path(spec).expanduser().is_dir():
        from .encoder import EncoderStudent, resolve_encoder

        resolve_encoder(spec)  # fail early on a bad folder
        return EncoderStudent(spec, **base)
    raise ConfigError(f"unknown student {spec!r}", hint="use auto, static, probe, minilm, tuned or a local transformers encoder folder")


def tuned_encoder_path(d: LabeledData) -> str:
    """``--student tuned``: the encoder the labels' gold LFs read (recorded in the labeled file's metadata by the
    label stage), else ``encoder/`` beside the labeled file."""
    from .tuned_net import recorded_folders

    for cand in recorded_folders(d):
        if (cand / "config.json").is_file():
            return str(cand)
    raise ConfigError("--student tuned: no tuned encoder recorded with these labels, and no encoder/ folder beside them",
                      path=d.source or None, hint="run label with --gold and an LF that reads it (embedder: tuned or "
                      "kind: setfit), or pass the encoder folder as --student PATH")


def distill(data: str | Path | LabeledData, output: str | Path | None = None, *, student: str = "auto",
            soft: bool | None = None, multi_label: bool = False, dev: str | Path | None = None, epochs: int | None = None,
            text_field: str | None = None, label_field: str = "label", proba_field: str | None = None,
            confidence_weights: bool = True, dev_label_field: str = "label", min_per_class: int = 2, seed: int = 0,
            progress: bool = False, license: str = "other", language: list[str] | None = None,
            max_steps: int | None = None, batch_size: int | None = None, threads: int | None = None,
            head_init: str | None = None, weak_weight: float | str | None = None, safety_net: bool = True,
            select_metric: str = "accuracy", tuned_encoder: bool = True, **student_kw: Any) -> DistillResult:
    """Train a student on a labeled file and (with ``output``) write the model folder, ``metrics.json`` and README.md.

    ``max_steps``, ``batch_size``, ``threads`` (torch CPU threads) and ``head_init`` (``probe``: LP-FT, or
    ``random``) apply to encoder students; other student settings go through ``student_kw``.

    ``weak_weight``: a factor on the weight of the items no person labeled (reviewed/gold items keep weight 1).
    ``"auto"`` tries :data:`WEAK_WEIGHTS` and keeps the student with the best dev score (macro-F1 at per-label
    dev thresholds when multi-label, accuracy otherwise); it needs human items and ``dev``. Default: ``"auto"``
    for a multi-label file with human items and a dev set, else 1.0.

    ``safety_net`` (files from ``aggregate --gold``, when ``weak_weight`` is not given): every candidate recipe
    (student kind x weight of the weak rows, the gold alone too) is scored out-of-fold on the gold through the
    cross-fitting sidecar, and the best by ``select_metric`` (``accuracy`` or ``macro_f1``) ships
    (:mod:`.safety`; multi-label: macro-F1 at per-label thresholds chosen out-of-fold, :mod:`.multisafety`);
    ``metrics["safety_net"]`` holds the table and the verdict. ``student="auto"`` lets the net choose between the
    ``static`` student, the ``anchored`` probe (its head shrunk towards the label texts: :mod:`.anchors`), the
    plain probe on the gold (the reference) and (single-label, ``tuned_encoder``) a probe on the run's encoder
    tuned on the gold (:mod:`.tuned_net`: the label stage's or fitted here); without a net it is ``static``.

    >>> res = distill("labeled.parquet", "model/", student="static", dev="dev.jsonl")   # doctest: +SKIP
    >>> res.metrics["dev"]["accuracy"]                                                  # doctest: +SKIP
    """
    from ..io_write import check_writable
    from .folder import check_replaceable

    student_kw = {**_encoder_options(student, max_steps=max_steps, batch_size=batch_size, threads=threads,
                                     head_init=head_init), **student_kw}
    weak_weight = parse_weak_weight(weak_weight)
    if output is not None:
        check_writable(output, folder=True)

    d = data if isinstance(data, LabeledData) else read_labeled(
        data, text_field=text_field, label_field=label_field, proba_field=proba_field, multi_label=multi_label,
        min_per_class=min_per_class)
    if output is not None:
        check_replaceable(output)  # after the input checks: a bad input is named first
    multi_label = d.multi_label
    if student == "tuned":  # the encoder student starts from the run's tuned encoder
        student = tuned_encoder_path(d)

    net = None
    crossfit = _crossfit_for(d) if safety_net and weak_weight is None else None
    skipped = no_fair_gold(crossfit)
    anchors = anchors_for(d.classes, d.meta)
    if crossfit is not None and not skipped:
        net, student, d, weak_weight = _run_net(d, crossfit, student, soft=soft, seed=seed,
                                                select_metric=select_metric, tuned_encoder=tuned_encoder,
                                                progress=progress, anchors=anchors)
    if student == "anchored":  # asked for, or shipped by the net
        student_kw["anchors"] = anchors
    if student == "auto":
        student = "static"
    dev_pair = None if dev is None else read_gold(dev, d.classes, text_field=text_field, label_field=dev_label_field,
                                                  multi_label=multi_label)
    weights = d.weights if (confidence_weights and d.has_confidence) else None
    soft = _soft_targets(soft, d)
    used_soft = soft and d.soft_differs()  # all-0/1 probabilities are hard labels, whatever was asked
    t0 = time.perf_counter()
    st, chosen_ww, ww_scores = fit_over_weights(
        lambda: make_student(student, multi_label=multi_label, epochs=epochs, seed=seed, progress=progress,
                             **student_kw),
        d, weak_weights(weak_weight, d, dev_pair), weights, used_soft, dev_pair)
    train_s = time.perf_counter() - t0
    thr_from = _set_thresholds(st, d, net, dev_pair) if multi_label else None

    metrics = _metrics(st, d, net, dev_pair, train_s=train_s, used_soft=used_soft, chosen_ww=chosen_ww,
                       ww_scores=ww_scores, thr_from=thr_from, dev=dev, net_skipped=skipped)
    folder = None if output is None else _write_model(
        Path(output), st, d, metrics, used_soft=used_soft, soft=soft, weights=weights, train_s=train_s, dev=dev,
        license=license, language=language)
    return DistillResult(student=st, metrics=metrics, folder=folder)


def _soft_targets(soft: bool | None, d: LabeledData) -> bool:
    """``soft`` as asked, else the default: soft targets when single-label; multi-label, the label sets decided at
    the label model's per-label thresholds. A rare label's calibrated P(applies) seldom reaches 0.5, so a student
    fitted to those probabilities learns to never fire it (measured on GoEmotions at 1,000 gold;
    eval/results/multilabel.md has the chain with this default)."""
    return (not d.multi_label) if soft is None else bool(soft)


def _encoder_options(student: str, **options) -> dict:
    """The encoder-only settings that were given; a one-line error when the student is not an encoder."""
    enc = {k: v for k, v in options.items() if v is not None}
    if enc and not _is_encoder(student):
        raise ConfigError("--max-steps/--batch-size/--threads/--head-init apply to encoder students only",
                          hint="drop them, or choose --student minilm")
    return enc


def _write_model(folder: Path, st, d: LabeledData, metrics: dict, *, used_soft: bool, soft: bool, weights,
                 train_s: float, dev, license: str, language) -> Path:
    """The model folder: the student, metrics.json, the training facts and the model card (README.md)."""
    from .card import render_card

    counts = st.link.counts(d.labels, len(d.classes)).tolist()
    label_stats = {"counts": dict(zip(d.classes, map(int, counts))), "weighted": weights is not None,
                   "mean_confidence": float(d.weights.mean()) if d.has_confidence else None}
    facts = TrainingFacts(targets="soft" if used_soft else "hard", soft_requested=soft, n_items=len(d),
                          classes=list(d.classes), multi_label=d.multi_label, weighted=weights is not None,
                          n_human=d.n_human, source_file=Path(d.source).name if d.source else "(in memory)",
                          source_kind=d.file_kind)
    settings = st._config()
    settings.pop("classes", None)
    card = render_card(name=folder.resolve().name, kind=st.kind, classes=d.classes, n_items=len(d),
                       source=facts.source_file, source_meta=d.meta, soft=used_soft,
                       multi_label=d.multi_label, dev_metrics=metrics["dev"],
                       dev_source=Path(dev).name if dev else None, train_seconds=train_s, settings=settings,
                       label_stats=label_stats, license=license, language=language, training=facts,
                       safety_net=metrics.get("safety_net"), net_skipped=metrics.get("safety_net_skipped"))
    _write_folder(folder, st, metrics, facts, card)
    return folder


def _run_net(d: LabeledData, crossfit, student: str, *, soft, seed: int, select_metric: str, tuned_encoder: bool,
             progress: bool = False, anchors: list[str] | None = None):
    """``(net result, student spec, training data, weak-row factor)``: the safety net run on the labeled file
    (single-label :mod:`.safety`, multi-label :mod:`.multisafety`) and the recipe it chose, ready to train."""
    # auto: the anchored probe with the weak rows, the plain probe only as the reference (recipes() adds it)
    candidates = ("static", "anchored") if student == "auto" else ("probe",) if _is_encoder(student) else (student,)
    tuned = None
    if d.multi_label:  # per-label thresholds from the gold, out-of-fold (multisafety.py)
        from .multisafety import run_multi_safety_net, with_gold

        d = with_gold(d, crossfit)
        net = run_multi_safety_net(d.texts, d.ids, d.classes, crossfit,
                                   lambda kind: make_student(kind, multi_label=True, seed=seed, anchors=anchors),
                                   students=candidates, soft=soft is True)
    else:
        from .safety import run_safety_net

        t_net, cpu_net = time.perf_counter(), time.process_time()  # CPU: every thread of this process
        if student == "auto" and tuned_encoder:
            from .tuned_net import net_encoder

            tuned = net_encoder(d, crossfit, progress=progress)
            candidates += ("tuned",) if tuned is not None else ()
        t_enc = time.perf_counter() - t_net

        def make(kind: str):
            return make_student(f"probe:{tuned.folder}" if kind == "tuned" else kind, seed=seed, anchors=anchors)

        net = run_safety_net(d.texts, d.ids, d.classes, crossfit, make, students=candidates,
                             metric=select_metric, soft=soft is not False, tuned=tuned)
        net.extra.update(seconds=round(time.perf_counter() - t_net, 1), encoder_seconds=round(t_enc, 1),
                         cpu_seconds=round(time.process_time() - cpu_net, 1))
    # the cross-fitted labels it scores on were made by aggregate for the net alone: their cost is the net's too
    net.extra.update({f"crossfit_{k}": crossfit.meta[k] for k in ("seconds", "cpu_seconds") if k in crossfit.meta})
    student, d, weak_weight = _ship(student, net.chosen, d)
    if student == "tuned":
        t_full, cpu_full = time.perf_counter(), time.process_time()
        tuned = tuned.complete()  # the net scored the halves; what ships reads the encoder tuned on all the gold
        net.extra.update(encoder_full_seconds=round(time.perf_counter() - t_full, 1),
                         encoder_full_cpu_seconds=round(time.process_time() - cpu_full, 1))
        student = f"probe:{tuned.folder}"
    return net, student, d, weak_weight


def _metrics(st, d: LabeledData, net, dev_pair, *, train_s: float, used_soft: bool, chosen_ww: float,
             ww_scores: dict, thr_from: str | None, dev, net_skipped: str | None = None) -> dict[str, Any]:
    """``metrics.json``: what was trained on what, the safety net's table, dev figures, train agreement."""
    from .metrics import classification_report

    multi_label = d.multi_label
    metrics: dict[str, Any] = {"student": st.kind, "n_train": len(d), "classes": d.classes, "soft": used_soft,
                               "multi_label": multi_label, "train_seconds": round(train_s, 3),
                               "history": st.history_, "best_epoch": getattr(st, "best_epoch_", None),
                               "dev": None, "dev_file": str(dev) if dev else None,
                               "train_agreement": None}
    metrics["weak_weight"] = chosen_ww
    if net is not None:
        metrics["safety_net"] = net.to_dict()
    if net_skipped:
        metrics["safety_net_skipped"] = net_skipped
    if ww_scores:
        metrics["weak_weight_dev_scores"] = ww_scores
    if multi_label:
        metrics["thresholds"] = dict(zip(d.classes, map(float, np.broadcast_to(st.threshold, len(d.classes)))))
        metrics["thresholds_from"] = thr_from
    if dev_pair is not None:
        metrics["dev"] = classification_report(st.predict_proba(dev_pair[0]), dev_pair[1], multi_label=multi_label,
                                               threshold=np.asarray(st.threshold, dtype=np.float32))
    sample = slice(0, min(len(d), 5000))
    p_train = st.predict_proba(d.texts[sample])
    metrics["train_agreement"] = st.link.agreement(p_train, d.labels[sample], st.threshold)
    return metrics


def _write_folder(folder: Path, st, metrics: dict, facts: TrainingFacts, card: str) -> None:
    """The folder is written whole and swapped in: weights, class names, metrics and card always belong to one
    run, whatever kills the process or fills the disk on the way."""
    from ..io_swap import atomic_folder
    from .folder import seal

    with atomic_folder(folder) as tmp:
        st.save(tmp, atomic=False)
        write_metrics(tmp, metrics, facts)
        (tmp / "README.md").write_text(card, encoding="utf-8")
        seal(tmp)


def _crossfit_for(d: LabeledData):
    """The labeled file's cross-fitting sidecar when the safety net can run on it (an ``aggregate`` output with
    gold: single-label with human rows, or multi-label with per-fold thresholds), else None."""
    if d.file_kind != "llmlabel.labeled" or not (d.multi_label or d.n_human):
        return None
    from ..artifacts.crossfit import read_crossfit_labels

    crossfit = read_crossfit_labels(d.source)
    return crossfit if crossfit is not None and crossfit.multi_label == d.multi_label else None


def _is_encoder(spec: str) -> bool:
    return spec in ("minilm", "tuned") or (spec not in ("auto", "static", "probe", "anchored") and not spec.startswith(("static:", "probe:")))


def _ship(requested: str, chosen, d: LabeledData) -> tuple[str, LabeledData, float]:
    """(student spec, training data, weak-row factor) for the recipe the safety net chose: an encoder asked for
    is what ships when weak labels won (the net measured it through its frozen-encoder probe); the gold
    alone trains on the human rows only."""
    from .safety import weak_factor

    spec = requested if (_is_encoder(requested) and chosen.weak != "none") else chosen.student
    human = np.asarray(d.human, bool)
    if chosen.weak == "none":
        return spec, _rows(d, np.flatnonzero(human)), 1.0
    w = d.weights if d.has_confidence else np.ones(len(d), np.float32)
    return spec, d, weak_factor(chosen.weak, w[~human], w[human])


def _rows(d: LabeledData, idx: np.ndarray) -> LabeledData:
    from dataclasses import replace

    return replace(d, texts=[d.texts[i] for i in idx], proba=d.proba[idx], labels=d.labels[idx],
                   weights=d.weights[idx], ids=[d.ids[i] for i in idx] if d.ids else [],
                   human=None if d.human is None else d.human[idx],
                   n_human=int(len(idx) if d.human is None else d.human[idx].sum()))


def _set_thresholds(st, d: LabeledData, net, dev_pair) -> str:
    """Set a multi-label student's per-class thresholds; returns where they came from."""
    if net is not None and st.kind == net.chosen.saved_kind:  # chosen on the gold out-of-fold
        st.threshold = [net.extra["thresholds"][c] for c in d.classes]
        return net.extra["thresholds_from"]
    # (an encoder shipped for a probe recipe: the probe's thresholds do not fit its scores)
    st.threshold, thr_from = _multi_thresholds(st, d, dev_pair)
    return thr_from


def _multi_thresholds(st, d: LabeledData, dev_pair) -> tuple[float | list[float], str]:
    """Per-class decision thresholds of a multi-label student: F1-optimal on the gold dev set when given,
    else the label model's per-label thresholds stored in the labeled file, else the student's own."""
    from ..multilabel_metrics import best_thresholds

    if dev_pair is not None:
        thr = best_thresholds(st.predict_proba(dev_pair[0]), np.asarray(dev_pair[1]), default=0.5)
        return [round(float(x), 4) for x in thr], "per-class F1-optimal on the dev set"
    stored = (d.meta or {}).get("thresholds")
    if isinstance(stored, dict) and all(c in stored for c in d.classes):
        return [float(stored[c]) for c in d.classes], "the label model's per-label thresholds (labeled file)"
    return st.threshold, "the student's default"
