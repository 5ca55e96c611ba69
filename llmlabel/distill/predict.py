"""``llmlabel predict`` as a library call: a student model folder labels a corpus, optionally as a cascade
that defers the items it is unsure of to an LLM (threshold given, or chosen on a gold dev set)."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, InputError
from ..results import PredictResult


def _check(cascade_llm, threshold, target_accuracy, max_deferral, dev) -> None:
    choosing = target_accuracy is not None or max_deferral is not None
    if cascade_llm is None and (threshold is not None or choosing or dev is not None):
        raise ConfigError("--threshold/--target-accuracy/--max-deferral/--dev need --cascade-llm",
                          hint="name the LLM to defer to, e.g. --cascade-llm hf:/path/to/model")
    if cascade_llm is None:
        return
    if (threshold is not None) + choosing != 1 or (target_accuracy is not None and max_deferral is not None):
        raise ConfigError("with --cascade-llm give exactly one of --threshold, --target-accuracy, --max-deferral")
    if choosing and dev is None:
        raise ConfigError("--target-accuracy/--max-deferral choose T on a gold dev set", hint="add --dev dev.jsonl")
    for name, v in (("threshold", threshold), ("target-accuracy", target_accuracy), ("max-deferral", max_deferral)):
        if v is not None and not 0.0 <= v <= 1.0:
            raise ConfigError(f"--{name} must be in [0, 1], got {v}", field=name.replace("-", "_"))


EMPTY = "empty text"  # the reason given for a row whose text is empty or whitespace


def predict(model: str | Path, data: str | Path, output: str | Path, *, text_field: str | None = None,
            id_field: str | None = None, cascade_llm: str | None = None, threshold: float | None = None,
            target_accuracy: float | None = None, max_deferral: float | None = None, dev: str | Path | None = None,
            dev_label_field: str = "label", batch_size: int = 4096, cache: str | Path | None = None,
            no_cache: bool = False, int8: bool = False, progress: bool = False,
            make_labeler: Callable[[Any, list[str]], Callable] | None = None,
            row_source: Callable[[Any, Any], Iterator[dict]] | None = None) -> PredictResult:
    """Write one prediction per text of ``data`` to ``output`` (JSONL: id, label, confidence; multi-label
    models: labels, proba). With ``cascade_llm`` items whose student confidence is below the threshold go to
    that LLM (``threshold``; or chosen on ``dev`` for ``target_accuracy`` / at most ``max_deferral``), and
    the accuracy/deferral curve is written beside the output. ``make_labeler(engine, classes)`` gives the
    LLM's ``texts -> (n, k)`` class probabilities (e.g. :func:`llmlabel.lf.prompted.prompted_labeler`, the
    zero-shot prompt that labels data; the caller passes it, distill does not import the LF stage); without
    it the cascade asks the engine to ``choose`` with a plain prompt. ``row_source(student, cascade)``
    (the Ray backend's) yields the rows instead of this process; they are written the same way. Returns a
    :class:`~llmlabel.results.PredictResult`.
    """
    from ..artifacts.cascade import cascade_path, write_cascade
    from ..artifacts.predictions import write_predictions
    from ..io import read_corpus
    from ..io_meta import make_meta
    from ..io_write import check_writable
    from .cascade import Cascade
    from .data import read_gold
    from .export import load_student

    _check(cascade_llm, threshold, target_accuracy, max_deferral, dev)
    output = check_writable(output)
    corpus = read_corpus(data, text_field=text_field, id_field=id_field, keep_empty=True)
    batches = corpus.start(batch_size) if row_source is None else None  # a bad first line or an empty
    if batches is None and row_source is None:  # input fails before the model loads
        raise InputError("the input has no rows to predict", path=data, hint=corpus.stats.summary())
    student = load_student(model, quantize=int8)
    if student.multi_label and cascade_llm:
        raise ConfigError("the cascade supports single-label models only")
    casc, calib = None, None
    if cascade_llm:
        from ..llm import cache_option, load_engine

        engine = load_engine(cascade_llm, cache=cache_option(cache, no_cache))
        labeler = make_labeler(engine, list(student.classes_)) if make_labeler is not None else None
        casc = Cascade(student, engine, threshold=threshold or 0.0, labeler=labeler)
        if dev is not None:  # choose T there, or (with --threshold) measure T's accuracy and deferral there
            texts, gold = read_gold(dev, student.classes_, label_field=dev_label_field)
            calib = casc.calibrate(texts, gold, target_accuracy=target_accuracy, max_deferral=max_deferral,
                                   progress=progress)
    classes = student.classes_
    n_def = n_empty = 0

    def rows():
        nonlocal n_def, n_empty
        if row_source is not None:
            for r in row_source(student, casc):
                n_def += bool(r.get("deferred"))
                n_empty += r.get("reason") == EMPTY
                yield r
            return
        for batch in batches:
            recs, deferred = prediction_rows(student, casc, batch.ids, batch.texts)
            n_def += deferred
            n_empty += sum(not t for t in batch.texts)
            yield from recs

    meta = make_meta(engine=cascade_llm, model_folder=str(model), classes=list(classes),
                     threshold=casc.threshold if casc else None, calibration=calib)
    n = write_predictions(output, rows(), task="multi" if student.multi_label else "single", classes=classes,
                          meta=meta)
    curve_path = None
    if casc is not None and casc.curve:
        curve_path = write_cascade(cascade_path(output), casc.curve, calib)
    return PredictResult(rows=n, empty=n_empty, read=corpus.stats.summary(), output=output,
                         deferred=n_def if casc is not None else None,
                         threshold=casc.threshold if casc is not None else None, calibration=calib,
                         curve_path=curve_path)


def prediction_rows(student, cascade, ids: Sequence[str], texts: Sequence[str]) -> tuple[list[dict], int]:
    """(one JSON-ready dict per text, items deferred to the LLM) for a batch: the rows :func:`predict` writes.

    Single-label rows: ``id``, ``label``, ``confidence`` (+ ``deferred``, ``student_label`` with a cascade);
    multi-label rows: ``id``, ``labels`` (classes at or above the student's threshold), ``proba``.
    An empty text gets its row too, with no label and ``reason: "empty text"`` (a join on ``id`` never
    loses items).
    """
    texts = list(texts)
    full = [i for i, t in enumerate(texts) if t]
    if len(full) < len(texts):
        got, deferred = (_model_rows(student, cascade, [ids[i] for i in full], [texts[i] for i in full])
                         if full else ([], 0))
        it = iter(got)
        empty = (lambda rid: {"id": rid, "labels": [], "proba": None, "reason": EMPTY}) if student.multi_label \
            else (lambda rid: {"id": rid, "label": None, "confidence": None, "reason": EMPTY})
        return [next(it) if t else empty(rid) for rid, t in zip(ids, texts)], deferred
    return _model_rows(student, cascade, ids, texts)


def _model_rows(student, cascade, ids: Sequence[str], texts: list[str]) -> tuple[list[dict], int]:
    classes = student.classes_
    if cascade is not None:
        r = cascade.predict(texts, progress=False)
        rows = [{"id": rid, "label": classes[r["label"][i]], "confidence": round(float(r["confidence"][i]), 6),
                 "deferred": bool(r["deferred"][i]), "student_label": classes[r["student_label"][i]]}
                for i, rid in enumerate(ids)]
        return rows, int(np.asarray(r["deferred"]).sum())
    p = student.predict_proba(texts)
    if student.multi_label:
        return [{"id": rid, "labels": [classes[j] for j in np.flatnonzero(p[i] >= student.threshold)],
                 "proba": [round(float(x), 6) for x in p[i]]} for i, rid in enumerate(ids)], 0
    best, conf = p.argmax(1), p.max(1)
    return [{"id": rid, "label": classes[j], "confidence": round(c, 6)}
            for rid, j, c in zip(ids, best.tolist(), conf.tolist())], 0
