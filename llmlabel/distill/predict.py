"""Prediction rows of a student (or a cascade): the one format ``llmlabel predict`` writes, local or on Ray.

>>> rows, deferred = prediction_rows(student, None, ["0", "1"], ["great", "awful"])   # doctest: +SKIP
>>> rows[0]                                                                            # doctest: +SKIP
{'id': '0', 'label': 'positive', 'confidence': 0.91}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def prediction_rows(student, cascade, ids: Sequence[str], texts: Sequence[str]) -> tuple[list[dict], int]:
    """(one JSON-ready dict per text, items deferred to the LLM) for a batch.

    Single-label rows: ``id``, ``label``, ``confidence`` (+ ``deferred``, ``student_label`` with a cascade);
    multi-label rows: ``id``, ``labels`` (classes at or above the student's threshold), ``proba``.
    """
    classes = student.classes_
    texts = list(texts)
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
    top = p.argmax(1)
    return [{"id": rid, "label": classes[int(top[i])], "confidence": round(float(p[i, top[i]]), 6)}
            for i, rid in enumerate(ids)], 0
