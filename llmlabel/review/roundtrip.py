"""The review round trip as library functions: labeled rows -> Label Studio tasks; exports -> gold JSONL.

Choosing the rows is the label model's job (``labelmodel.strategies.select``); ``llmlabel review export`` joins
the two.

>>> write_tasks(read_labeled("labeled.parquet"), rows, "tasks.json", state=ReviewState("review_state.json"),
...             strategy="diverse")                                                  # doctest: +SKIP
>>> import_annotations("project-1-export.json", "gold.jsonl", labeled="labeled.parquet")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io_write import atomic_write
from ..results import ReviewImportResult
from ..artifacts.review import STATE_FILE, ReviewState
from .answers import read_gold, resolve, write_gold
from .artifact import read_labeled
from .labelstudio import labeling_config, make_tasks, read_export


def excluded(lab, state: ReviewState, exclude: list[str | Path] = ()) -> np.ndarray:
    """Rows never to send: reviewed or already sent (``state``), in an ``exclude`` gold file, or human-labeled."""
    skip = state.seen()
    for g in exclude:
        skip |= set(read_gold(g))
    ids = np.asarray(lab.ids, dtype=object)
    return (lab.source == "human") | np.isin(ids, np.asarray(sorted(skip), dtype=object))


def write_tasks(lab, rows, output: str | Path, *, state: ReviewState, strategy: str, instruction: str = "") -> dict:
    """Write the chosen ``rows`` of a labeled file as Label Studio tasks (``output``) and the labeling config
    (``<output stem>.config.xml``); record them in ``state`` as sent."""
    output = Path(output)
    if output.suffix.lower() != ".json":
        raise ConfigError("Label Studio tasks are a .json file", path=output)
    if lab.texts is None:
        raise InputError("the labeled file has no 'text' column, so people would have nothing to read",
                         path=lab.path, hint="aggregate a votes folder that kept the texts (label without --no-text)")
    idx = np.asarray(rows, dtype=np.int64)
    if lab.multi_label:
        chosen = [[c for c, p in zip(lab.classes, row) if p >= 0.5] or [lab.classes[int(row.argmax())]]
                  for row in lab.proba[idx]]
    else:
        chosen = [[lab.classes[int(lab.label_index[i])]] for i in idx]
    ids = [lab.ids[i] for i in idx]
    extra = [{"strategy": strategy, "confidence": round(float(lab.confidence[i]), 4)} for i in idx]
    tasks = make_tasks(ids, [lab.texts[i] for i in idx], chosen, lab.confidence[idx].tolist(), extra=extra)
    config = output.with_name(output.stem + ".config.xml")
    with atomic_write(output) as f:
        json.dump(tasks, f, ensure_ascii=False, indent=1)
    with atomic_write(config) as f:
        f.write(labeling_config(lab.classes, multi_label=lab.multi_label, instruction=instruction))
    state.mark_exported(ids, strategy=strategy)
    state.save()
    return {"tasks": output, "config": config, "state": state.path, "n": len(ids), "ids": ids}


def import_annotations(export: str | Path, output: str | Path, *, taxonomy: str | Path | None = None,
                       labeled: str | Path | None = None, add_labels: bool = False, multi_label: bool | None = None,
                       state: str | Path | None = None) -> ReviewImportResult:
    """Read a Label Studio export (JSON, JSON-MIN or CSV) into ``output`` gold JSONL (merged with earlier rounds)."""
    output = Path(output)
    classes, tax = None, None
    if taxonomy is not None:
        from ..artifacts.taxonomy import load_taxonomy

        tax = load_taxonomy(taxonomy)
        classes = [lab.name for lab in tax.labels]
    lab = read_labeled(labeled) if labeled is not None else None
    if lab is not None:
        if classes is not None and classes != lab.classes:
            raise ConfigError("the taxonomy's labels differ from the labeled file's", path=taxonomy)
        classes = lab.classes
        multi_label = lab.multi_label if multi_label is None else multi_label
    if add_labels and tax is None:
        raise ConfigError("--add-labels needs --taxonomy (the file the new labels are added to)")
    anns = read_export(export)
    rows, summary = resolve(anns, classes, multi_label=bool(multi_label), add_labels=add_labels)
    if lab is not None:
        known = set(lab.ids)
        missing = [r for r in rows if r["id"] not in known]
        if missing:
            raise InputError(f"task {missing[0]['task_id']}: item {missing[0]['id']!r} is not in the labeled file",
                             path=export, hint="import into the run the tasks were exported from")
        if lab.texts is not None:  # an export without the task text (a CSV with fewer columns): the item's own
            text_of = dict(zip(lab.ids, lab.texts))
            for r in rows:
                r.setdefault("text", text_of[r["id"]])
    if summary["new_labels"]:
        from ..artifacts.taxonomy import LabelDef, save_taxonomy, slugify

        taken = {lab_.id for lab_ in tax.labels}
        for name in summary["new_labels"]:
            lid = slugify(name) or f"label_{len(taken)}"
            while lid in taken:
                lid += "_"
            taken.add(lid)
            tax.labels.append(LabelDef(id=lid, name=name, description="added from human review"))
        save_taxonomy(tax, taxonomy)
    st = ReviewState(state if state is not None else output.parent / STATE_FILE)
    for r in rows:  # the export's task data names the strategy; older exports: the state recorded it when sent
        if "strategy" not in r and r["id"] in st.strategy:
            r["strategy"] = st.strategy[r["id"]]
    merged = write_gold(output, rows)
    st.mark_reviewed(r["id"] for r in rows)
    # Skipped items and ties got no gold label: allow them to be sent again.
    for i in [a["item_id"] for a in anns if a.get("skipped")] + [t["id"] for t in summary["ties_dropped"]]:
        if i not in st.reviewed:
            st.exported.pop(i, None)
    st.save()
    return ReviewImportResult(gold=output, rows=len(rows), total=len(merged), state=st.path,
                              **{k: tuple(v) if isinstance(v, list) else v for k, v in summary.items()})
