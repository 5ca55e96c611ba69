"""Library side of ``llmlabel label`` / ``aggregate`` / ``lf-report``: read votes, fit, write results.

Votes come from our votes folder (``llmlabel label`` shards), a LabelMatrix Parquet file, a WRENCH JSON
split, or a Snorkel-style ``.npy`` int array (-1 = abstain).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io import read_records
from .matrix import LabelMatrix

METHODS = {"mv": "mv", "wmv": "wv", "wv": "wv", "ds": "ds", "onecoin": "onecoin", "heldout": "heldout"}


def load_votes(path: str | Path, labels: list[str] | None = None):
    """``(LabelMatrix, gold y or None, texts or None)`` from any supported votes source."""
    path = Path(path)
    if not path.exists():
        raise InputError("votes not found", path=path, hint="give a votes folder, .parquet, WRENCH .json or .npy")
    if path.is_dir():
        return _load_folder(path, labels)
    suf = path.suffix.lower()
    if suf == ".json":
        from .wrench import load_wrench, load_wrench_label_names

        L, y, texts, ids = load_wrench(path, return_ids=True)
        names = labels or load_wrench_label_names(path.parent)
        lm = LabelMatrix(L, [f"lf_{j}" for j in range(L.shape[1])], labels=names, ids=ids,
                         cardinality=None if names else max(int(L.max()) + 1, int(y.max()) + 1, 2))
        return lm, (y if (y >= 0).any() else None), texts
    if suf == ".npy":
        try:
            L = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"not a numeric .npy array ({e})", path=path) from None
        return LabelMatrix(L, [f"lf_{j}" for j in range(L.shape[1] if L.ndim == 2 else 0)], labels=labels), None, None
    if suf == ".parquet":
        return LabelMatrix.load(path), None, _texts_of(path)
    raise InputError(f"unknown votes format {suf!r}", path=path, hint="votes folder, .parquet, WRENCH .json or .npy")


def _texts_of(path: Path):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["text"]).column(0).to_pylist() if "text" in pq.read_schema(path).names else None


def _load_folder(folder: Path, labels):
    import pyarrow as pa
    import pyarrow.parquet as pq

    man_path = folder / "_manifest.json"
    if not man_path.is_file():
        raise InputError("not a votes folder (no _manifest.json)", path=folder, hint="write one with `llmlabel label`")
    man = json.loads(man_path.read_text(encoding="utf-8"))
    meta = man.get("meta") or {}
    if not man.get("complete"):
        raise InputError("votes folder is incomplete (the labeling run did not finish)", path=folder,
                         hint="rerun the same `llmlabel label` command to resume it")
    missing = [s["file"] for s in man["shards"] if not (folder / s["file"]).is_file()]
    if missing:
        raise InputError(f"votes folder is missing shard {missing[0]}"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""), path=folder,
                         hint="restore the file, or delete the folder and rerun `llmlabel label`")
    if not man["shards"]:
        raise InputError("votes folder has no shards (empty corpus?)", path=folder)
    tables = []
    for s in man["shards"]:
        t = pq.read_table(folder / s["file"])
        if t.num_rows != s["rows"]:
            raise InputError(f"shard {s['file']} has {t.num_rows} rows, the manifest says {s['rows']}", path=folder)
        tables.append(t)
    table = pa.concat_tables(tables)
    lm = LabelMatrix.from_table(table, labels=labels or meta.get("labels"), lf_names=meta.get("lf_names"))
    err_path = folder / "_lf_errors.json"
    if err_path.is_file():
        lm.errors.update(json.loads(err_path.read_text(encoding="utf-8")))
    texts = table.column("text").to_pylist() if "text" in table.column_names else None
    return lm, None, texts


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
    if L.ids is None:
        raise InputError("these votes carry no item ids, so a dev file of id + label cannot be matched", path=path)
    pos = {str(i): r for r, i in enumerate(L.ids)}
    names = {str(x): j for j, x in enumerate(labels or [])}
    rows, ys = [], []
    for line, row in read_records(path, what="dev file"):
        for f in ("id", "label"):
            if f not in row:
                raise InputError(f"dev row has no '{f}' field", path=path, line=line, field=f)
        lab, i = row["label"], str(row["id"])
        if str(lab) in names:
            y = names[str(lab)]
        elif not names and str(lab).lstrip("-").isdigit() and 0 <= int(lab) < L.cardinality:
            y = int(lab)
        else:
            raise ConfigError(f"dev label {lab!r} is not in the taxonomy", path=path, line=line, field="label",
                              hint=f"labels are: {', '.join(list(names)[:8])}")
        if i not in pos:
            raise InputError(f"dev item id {i!r} is not among the voted items", path=path, line=line, field="id")
        rows.append(pos[i])
        ys.append(y)
    if not rows:
        raise InputError("dev file has no rows", path=path)
    return L.take(np.asarray(rows)), np.asarray(ys)


def fit_label_model(L: LabelMatrix, method: str = "auto", L_dev=None, y_dev=None):
    """The fitted (calibrated where a dev set exists) model and a report dict."""
    from .calibrate import CalibratedLabelModel
    from .select import make_model, select_label_model

    if method == "auto":
        model = select_label_model(L, L_dev, y_dev)
    elif method in METHODS:
        if L_dev is not None:  # one candidate: the dev set only calibrates it
            model = select_label_model(L, L_dev, y_dev, candidates=[METHODS[method]])
        else:
            model = CalibratedLabelModel(make_model(METHODS[method], L.cardinality)).fit(
                L, selection={"chosen": METHODS[method], "calibration": "none", "reason": "--method given"})
    else:
        raise ConfigError(f"unknown --method {method!r}", hint="auto, heldout, mv, wmv, ds or onecoin")
    return model, model.report_


def aggregate(L: LabelMatrix, method: str = "auto", L_dev=None, y_dev=None):
    """Fit and predict: dict with model, report, proba (n, k), label (n,), confidence, uncovered."""
    model, report = fit_label_model(L, method, L_dev, y_dev)
    proba = model.predict_proba(L)
    covered = L.covered()
    label = model.predict(L, proba=proba)
    return {"model": model, "report": report, "proba": proba, "label": label,
            "confidence": proba[np.arange(len(label)), label], "uncovered": ~covered}


def write_labeled(out: str | Path, L: LabelMatrix, res: dict, texts=None, *, review_top: float = 0.1,
                  meta: dict | None = None) -> dict[str, Path]:
    """labeled.parquet (id, label, label_index, confidence, uncovered, p:<class>) plus the review queue files."""
    import pyarrow as pa

    from ..io_write import make_meta, write_parquet
    from .review import review_queue, write_csv, write_jsonl, write_label_studio

    out = Path(out)
    names = L.labels or [str(j) for j in range(L.cardinality)]
    n = len(L)
    ids = L.ids if L.ids is not None else np.arange(n).astype(str)
    cols = {"id": pa.array([str(i) for i in ids]), "label": pa.array(np.asarray(names, dtype=object)[res["label"]]),
            "label_index": pa.array(res["label"].astype(np.int32)), "confidence": pa.array(res["confidence"].astype(np.float32)),
            "uncovered": pa.array(res["uncovered"])}
    if texts is not None:
        cols["text"] = pa.array([str(t) for t in texts])
    for j, name in enumerate(names):
        cols[f"p:{name}"] = pa.array(res["proba"][:, j].astype(np.float32))
    info = dict(meta or make_meta())
    info.update(labels=names, label_model=res["report"], n_uncovered=int(res["uncovered"].sum()))
    write_parquet(out, pa.table(cols), meta=info)
    rows = review_queue(res["proba"], L, ids=list(ids), texts=texts, class_names=names, top=review_top,
                        labels=res["label"])
    stem = out.with_suffix("")
    paths = {"labeled": out, "review_csv": write_csv(rows, f"{stem}.review.csv"),
             "review_jsonl": write_jsonl(rows, f"{stem}.review.jsonl"),
             "label_studio": write_label_studio(rows, f"{stem}.label_studio.json")}
    return paths
