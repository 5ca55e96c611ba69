"""Label Studio's formats: the labeling config and import tasks we write, and the exports we read back.

Tasks carry ``data = {"text", "item_id", ...}`` (``item_id``, not ``id``: Label Studio's JSON-MIN and CSV exports
overwrite a data field named ``id`` with the task id) and our label as a prediction with its confidence as
``score``, so annotators start from it. Exports come in three forms, all read here into one row per annotation:

- JSON: ``[{"id": task, "data": {...}, "annotations": [{"id", "completed_by", "was_cancelled", "result": [...]}]}]``;
- JSON-MIN: ``[{"id": task, <data fields>, "label": "name" | {"choices": [...]}, "annotator", "annotation_id"}]``;
- CSV: the JSON-MIN columns, with several choices as a JSON string.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..errors import InputError

FROM_NAME, TO_NAME = "label", "text"


def labeling_config(classes: list[str], *, multi_label: bool = False, instruction: str = "") -> str:
    """The project's XML config: the text and one choice per class (checkboxes when multi-label)."""
    choice = "multiple" if multi_label else "single-radio"
    header = f'  <Header value={quoteattr(instruction)}/>\n' if instruction else ""
    opts = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (f"<View>\n{header}  <Text name=\"{TO_NAME}\" value=\"$text\"/>\n"
            f"  <Choices name=\"{FROM_NAME}\" toName=\"{TO_NAME}\" choice=\"{choice}\" showInline=\"false\">\n"
            f"{opts}\n  </Choices>\n</View>\n")


def make_tasks(ids: list[str], texts: list[str], predicted: list[list[str]], scores: list[float], *,
               extra: list[dict] | None = None, model_version: str = "llmlabel") -> list[dict]:
    """Import tasks: one per item, our label(s) as a scored prediction."""
    tasks = []
    extra = extra if extra is not None else [{}] * len(ids)
    for i, t, labs, s, more in zip(ids, texts, predicted, scores, extra):
        data = {"text": t, "item_id": str(i), **more}
        result = [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": list(labs)}}]
        tasks.append({"data": data, "predictions": [{"model_version": model_version, "score": float(s),
                                                     "result": result}]})
    return tasks


def _choices_of(result, from_name: str | None) -> list[str] | None:
    """Choices in an annotation's ``result`` list (first Choices control, or the one named ``from_name``)."""
    for r in result or []:
        if r.get("type", "").lower() == "choices" and (from_name is None or r.get("from_name") == from_name):
            return [str(c) for c in (r.get("value") or {}).get("choices", [])]
    return None


def _min_value(v) -> list[str] | None:
    if v is None or v == "":
        return None
    if isinstance(v, str) and v.strip().startswith("{"):
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, dict):
        return [str(c) for c in v.get("choices", [])]
    if isinstance(v, list):
        return [str(c) for c in v]
    return [str(v)]


def read_export(path: str | Path, *, from_name: str = FROM_NAME) -> list[dict]:
    """One dict per annotation: task_id, item_id, annotator, annotation_id, choices (list) or skipped=True, and
    the task's text (None when the export left it out).

    A task with no annotations yields nothing; a cancelled (skipped) annotation yields ``skipped: True``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("Label Studio export not found", path=path)
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
        return _from_min(rows, path, from_name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise InputError(f"not valid JSON ({e})", path=path, hint="export JSON, JSON-MIN or CSV from Label Studio") \
            from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InputError("a Label Studio export is a list of tasks", path=path)
    if data and all(isinstance(t, dict) and ("annotations" in t or "completions" in t) for t in data):
        return _from_full(data, path, from_name)
    return _from_min(data, path, from_name)


def _item_id(data: dict, task_id, path: Path) -> str:
    if "item_id" in data:
        return str(data["item_id"])
    raise InputError(f"task {task_id} has no data.item_id (was it exported by `llmlabel review export`?)", path=path,
                     field="item_id")


def _from_full(tasks: list[dict], path: Path, from_name: str) -> list[dict]:
    out = []
    for t in tasks:
        tid = t.get("id")
        item = _item_id(t.get("data") or {}, tid, path)
        for a in t.get("annotations", t.get("completions")) or []:
            who = a.get("completed_by")
            who = who.get("email", who.get("id")) if isinstance(who, dict) else who
            row = {"task_id": tid, "item_id": item, "annotator": who, "annotation_id": a.get("id"),
                   "strategy": (t.get("data") or {}).get("strategy") or None, "text": (t.get("data") or {}).get("text")}
            if a.get("was_cancelled") or a.get("skipped"):
                row["skipped"] = True
            else:
                row["choices"] = _choices_of(a.get("result"), from_name) or []
                row["skipped"] = not row["choices"]
            out.append(row)
    return out


def _from_min(rows: list[dict], path: Path, from_name: str) -> list[dict]:
    out = []
    for r in rows:
        if not isinstance(r, dict):
            raise InputError("a JSON-MIN export is a list of objects", path=path)
        tid = r.get("id")
        item = _item_id(r, tid, path)
        choices = _min_value(r.get(from_name))
        if choices is None and r.get("annotation_id") in (None, ""):
            continue  # a task nobody annotated
        out.append({"task_id": tid, "item_id": item, "annotator": r.get("annotator"),
                    "annotation_id": r.get("annotation_id"), "choices": choices or [], "skipped": not choices,
                    "strategy": r.get("strategy") or None, "text": r.get("text")})
    return out
