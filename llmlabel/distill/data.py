"""Read a labeled file into training arrays.

The output of ``llmlabel aggregate`` (labeled.parquet, ``p:<class>`` columns) is read by the one reader
:func:`llmlabel.artifacts.labeled.read_labeled`, so every per-class probability reaches the student's
targets. Any other labeled file (a user's JSONL/CSV/Parquet) is read flexibly; accepted columns (names
configurable):

- ``text`` — the input text (``text_field``).
- ``label`` — the class name; for multi-label a list of names (or a string split on ``|``).
- ``proba`` (optional) — per-class probabilities: a list aligned with the class order stored in the file's
  metadata (``classes`` or ``labels`` key, see :func:`llmlabel.io_meta.read_meta`), a ``{class: p}`` object, or one
  column per class named ``proba_<class>`` (found automatically; ``--proba-field p`` looks for ``p`` or ``p_<class>``).
- ``confidence`` (optional) — the label model's confidence in ``label``, used as a per-item weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .link import LABEL_SETS, link_for


@dataclass
class LabeledData:
    texts: list[str]
    classes: list[str]
    proba: np.ndarray  # (n, k) soft targets (single-label rows sum to 1; multi-label: independent probabilities)
    labels: np.ndarray  # (n,) class index (single-label) or (n, k) 0/1 (multi-label)
    weights: np.ndarray  # (n,) per-item weights (confidence or 1)
    multi_label: bool = False
    has_proba: bool = False
    has_confidence: bool = False
    meta: dict[str, Any] | None = None
    source: str = ""
    ids: list[str] = field(default_factory=list)
    file_kind: str = "user file"  # or "llmlabel.labeled" (read through artifacts.labeled)
    n_human: int = 0  # items a person reviewed (weight 1.0)
    human: np.ndarray | None = None  # (n,) bool: which items those are (llmlabel.labeled files)

    def __len__(self) -> int:
        return len(self.texts)

    def soft_differs(self) -> bool:
        """True when the probabilities are not just the labels one-hot: only then is soft training soft."""
        return self.has_proba and not np.allclose(self.proba, self.targets(False), atol=1e-4)

    def targets(self, soft: bool) -> np.ndarray:
        """Soft targets (the probabilities) or hard ones (one-hot / 0-1 of the label)."""
        return self.proba if soft else link_for(self.multi_label).hard_targets(self.labels, len(self.classes))


def _line(fmt: str, pos: int) -> int:
    return pos + (2 if fmt in ("csv", "tsv") else 1)  # CSV has a header line


def _find_proba(row: dict, pf: str | None) -> tuple[str | None, list[str] | None]:
    """(field or column prefix, per-class columns or None). ``proba`` as one list/``{class: p}`` column, or one
    ``proba_<class>`` column per class; ``pf`` names either form. (labeled.parquet from ``llmlabel aggregate``
    never comes here: :func:`llmlabel.artifacts.labeled.read_labeled` reads its ``p:<class>`` columns.)"""
    if pf is not None and pf in row and not pf.endswith("_"):
        return pf, None
    prefix = pf if pf is not None and pf.endswith("_") else f"{pf or 'proba'}_"
    cols = [k for k in row if k.startswith(prefix) and len(k) > len(prefix)]
    if cols:
        return prefix, cols
    if pf is None:
        return ("proba", None) if "proba" in row else (None, None)
    return pf, None


def read_labeled(path: str | Path, *, text_field: str | None = None, label_field: str = "label",
                 proba_field: str | None = None, confidence_field: str | None = "confidence",
                 multi_label: bool = False, classes: list[str] | None = None, min_per_class: int = 2,
                 require_labels: bool = True) -> LabeledData:
    """Load and validate a labeled file; every problem raises :class:`InputError` naming file and line."""
    from ..artifacts.labeled import is_labeled_file
    from ..io import read_corpus
    from ..io_meta import read_meta

    if is_labeled_file(path):
        return _from_artifact(path, classes=classes, min_per_class=min_per_class, multi_label=multi_label)

    corpus = read_corpus(path, text_field=text_field)
    try:
        meta = read_meta(path) or {}
    except (OSError, ValueError):
        meta = {}
    meta_classes = meta.get("classes") or meta.get("labels")
    if classes is None and isinstance(meta_classes, list) and all(isinstance(c, str) for c in meta_classes):
        classes = list(meta_classes)
    link = link_for(multi_label)
    rows = _scan(corpus, path, label_field, proba_field, confidence_field, link, require_labels)
    texts, ids, raw_labels, raw_proba, conf, pf, cols = rows
    if not texts:
        raise InputError("no labeled rows", path=path, hint="the file is empty or every text is empty")
    if classes is None:
        seen = sorted({c for names in link.label_sets([lab for lab in raw_labels if lab is not None]) for c in names})
        dict_keys = {k for p, _ in raw_proba if isinstance(p, dict) for k in p}
        classes = sorted(set(seen) | dict_keys)
    index = {c: i for i, c in enumerate(classes)}
    k, n = len(classes), len(texts)
    if k < 2:
        raise InputError(f"only one class ({classes[0] if classes else 'none'!r}) in the labels", path=path,
                         hint="a classifier needs at least two classes; check --label-field")
    labels = link.label_array(raw_labels, index, path)
    has_proba = bool(raw_proba)
    if has_proba:
        proba = np.stack([_proba_row(p, where, classes, index, pf, cols, link) for p, where in raw_proba])
        link.complete(labels, proba)
    else:
        proba = link.hard_targets(labels, k).astype(np.float64)
    _check_counts(labels, classes, link, min_per_class, path)
    has_conf = any(c is not None for c, _ in conf)
    weights = _confidence_weights(conf, confidence_field, path) if has_conf else np.ones(n)
    return LabeledData(texts=texts, classes=list(classes), proba=proba.astype(np.float32), labels=labels,
                       weights=weights.astype(np.float32), multi_label=multi_label, has_proba=has_proba,
                       has_confidence=has_conf, meta=meta or None, source=str(path), ids=ids)


def _scan(corpus, path, label_field: str, pf: str | None, confidence_field: str | None, link,
          require_labels: bool):
    """One pass over the rows: ``(texts, ids, raw labels, (raw probabilities, where), (confidence, line),
    probability field, per-class probability columns)``; a missing label or probability names its row."""
    cols: list[str] | None = None  # per-class probability columns ``proba_<class>`` (instead of one list column)
    texts, ids, raw_labels, raw_proba, conf = [], [], [], [], []
    for batch in corpus.iter_batches():
        if not texts and batch.rows:  # decide the probability layout on the first row
            pf, cols = _find_proba(batch.rows[0], pf)
        for rid, text, row, pos in zip(batch.ids, batch.texts, batch.rows, batch.positions):
            where = {"path": path, "line": _line(corpus.format, pos)}
            lab = row.get(label_field)
            if lab is None or (isinstance(lab, float) and math.isnan(lab)) or (isinstance(lab, str) and not lab.strip()):
                if not require_labels:
                    lab = None
                else:
                    avail = ", ".join(k for k in row if k != label_field) or "(none)"
                    raise InputError(f"missing label in field '{label_field}'", field=label_field, **where,
                                     hint=f"every row needs a label; other fields: {avail}; "
                                          "choose the column with --label-field")
            texts.append(text)
            ids.append(rid)
            raw_labels.append(None if lab is None else link.parse(lab))
            if cols is not None:
                missing = [c for c in cols if c not in row]
                if missing:
                    raise InputError(f"missing probability column '{missing[0]}'", field=missing[0], **where,
                                     hint="every row needs the same per-class probability columns")
                raw_proba.append(({c[len(pf):]: row[c] for c in cols}, where))
            elif pf is not None:
                if pf not in row:
                    raise InputError(f"missing probability field '{pf}'", field=pf, **where,
                                     hint="drop --proba-field to train on the labels alone")
                raw_proba.append((row[pf], where))
            c = row.get(confidence_field) if confidence_field else None
            conf.append((c, where["line"]))
    return texts, ids, raw_labels, raw_proba, conf, pf, cols


def _proba_row(p, where: dict, classes: list[str], index: dict[str, int], pf: str | None, cols, link):
    """One row's probabilities (a ``{class: p}`` dict or a list in class order), checked and clipped to [0, 1]."""
    k = len(classes)
    if isinstance(p, dict):
        row = np.zeros(k)
        for c, v in p.items():
            if c not in index:
                raise InputError(f"probability for unknown class {c!r}", **where,
                                 hint=f"known classes: {', '.join(classes[:10])}")
            try:
                row[index[c]] = float("nan") if v is None else float(v)
            except (TypeError, ValueError):
                raise InputError(f"probability for class {c!r} is not a number: {v!r}", **where) from None
        absent = [c for c in classes if c not in p]
        if cols is not None and absent:
            raise InputError(f"no probability column for class {absent[0]!r} ({pf}{absent[0]})", **where,
                             hint="write one proba_<class> column per class")
    else:
        if hasattr(p, "tolist"):
            p = p.tolist()
        if not isinstance(p, (list, tuple)):
            raise InputError(f"field '{pf}' must be a list of probabilities, got {type(p).__name__}", **where)
        if len(p) != k:
            raise InputError(f"{len(p)} probabilities but {k} classes", field=pf, **where,
                             hint="store the class order as 'classes' in the file's metadata")
        try:
            row = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"field '{pf}' holds values that are not numbers", **where) from None
    if not np.all(np.isfinite(row)):
        raise InputError(f"probabilities are not finite: {row[~np.isfinite(row)][:3].tolist()}", field=pf,
                         **where, hint="fix or drop the row; NaN/inf cannot be a training target")
    if (row < -1e-6).any() or (row > 1 + 1e-6).any():
        raise InputError("probabilities outside [0, 1]", field=pf, **where)
    link.check_proba(row, pf, where)
    return np.clip(row, 0, 1)


def _confidence_weights(conf: list, confidence_field: str | None, path) -> np.ndarray:
    """Per-row weights from the confidence field (1 where a row has none); anything outside [0, 1] is refused."""
    weights = np.ones(len(conf), dtype=np.float64)
    for i, (c, line) in enumerate(conf):
        try:
            v = float(c) if c is not None else 1.0
        except (TypeError, ValueError):
            v = float("nan")
        if not math.isfinite(v) or v < 0 or v > 1:
            raise InputError(f"confidence {c!r} is not a number in [0, 1]", field=confidence_field,
                             path=path, line=line, hint="or ignore it with --no-confidence-weights")
        weights[i] = v
    return weights


def _check_counts(labels: np.ndarray, classes: list[str], link, min_per_class: int, path) -> None:
    k = len(classes)
    counts = link.counts(labels, k)
    link.check_classes_used(counts, path)
    rare = [classes[j] for j in range(k) if 0 < counts[j] < min_per_class]
    if rare:
        raise InputError(f"{len(rare)} class(es) with fewer than {min_per_class} examples: "
                         f"{', '.join(map(repr, rare[:5]))}{' ...' if len(rare) > 5 else ''}", path=path,
                         hint="label more items of these classes, merge or drop them "
                              "(or allow it with --min-per-class 1)")


def _from_artifact(path: str | Path, *, classes: list[str] | None, min_per_class: int,
                   multi_label: bool) -> LabeledData:
    """labeled.parquet via the artifacts reader: probabilities, class order, ids and weights as written."""
    from ..artifacts.labeled import read_labeled as read

    lab = read(path)
    if lab.texts is None:
        raise InputError("the labeled file has no 'text' column", path=path,
                         hint="rerun `llmlabel label` without dropping texts, then `llmlabel aggregate`")
    if classes is not None and list(classes) != lab.classes:
        raise InputError("the labeled file's classes differ from the ones asked for", path=path,
                         hint=f"the file has {len(lab.classes)} classes: {', '.join(lab.classes[:5])} ...")
    if multi_label and not lab.multi_label:
        raise InputError("--multi-label given but the labeled file is single-label", path=path)
    if lab.multi_label:
        labels = (lab.proba >= 0.5).astype(np.int8) if lab.labels is None else \
            LABEL_SETS.label_array(lab.labels, {c: j for j, c in enumerate(lab.classes)}, path)
    else:
        labels = lab.label_index.astype(np.int64)
    _check_counts(labels, lab.classes, link_for(lab.multi_label), min_per_class, path)
    return LabeledData(texts=[str(t) for t in lab.texts], classes=lab.classes, proba=lab.proba, labels=labels,
                       weights=lab.weights(), multi_label=lab.multi_label, has_proba=True, has_confidence=True,
                       meta=lab.meta or None, source=str(path), ids=lab.ids, file_kind="llmlabel.labeled",
                       n_human=0 if lab.source is None else int((lab.source == "human").sum()),
                       human=None if lab.source is None else np.asarray(lab.source == "human"))


def read_gold(path: str | Path, classes: list[str], *, text_field: str | None = None, label_field: str = "label",
              multi_label: bool = False) -> tuple[list[str], np.ndarray]:
    """A gold dev/test file (through :mod:`llmlabel.artifacts.gold`): texts and class indices (or a 0/1 matrix);
    labels must be known classes."""
    from ..artifacts.gold import read_gold as read

    link = link_for(multi_label)
    g = read(path, label_field=label_field, text_field=text_field, need_ids=False, need_text=True,
             allow_empty=link.gold_may_be_empty, split=link.gold_split)
    return list(g.texts), link.gold_array(g, classes, f"the model's {len(classes)} classes")
