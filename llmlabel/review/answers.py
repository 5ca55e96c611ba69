"""From Label Studio annotations to gold labels: skipped tasks, several annotators, labels outside the taxonomy.

Several annotators per item: the majority answer wins (multi-label: each label kept when more than half chose
it); a tie has no majority, so the item gets no gold label and is reported as an unresolved conflict.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from ..artifacts.taxonomy import normalize_name
from ..errors import InputError


def resolve(annotations: list[dict], classes: list[str] | None, *, multi_label: bool = False,
            add_labels: bool = False) -> tuple[list[dict], dict]:
    """(gold rows ``{"id", "label", "n_annotators", "agreement", "conflict", "task_id"}`` plus ``strategy`` and
    ``text`` where the annotations carry them, a summary dict).

    A label outside ``classes`` is an error naming the task, unless ``add_labels`` (then it is listed in
    ``summary["new_labels"]``). ``classes=None`` accepts every label.
    """
    known = None if classes is None else set(classes)
    new: list[str] = []
    by_item: dict[str, list[dict]] = defaultdict(list)
    skipped_items = set()
    for a in annotations:
        # one normalisation for names everywhere (the taxonomy's): 'lost card ' is the label 'lost card'
        a = {**a, "choices": [normalize_name(c) for c in a.get("choices") or []]}
        if a.get("skipped"):
            skipped_items.add(a["item_id"])
            continue
        for c in a["choices"]:
            if known is not None and c not in known:
                if not add_labels:
                    raise InputError(f"task {a['task_id']} (item {a['item_id']}): label {c!r} is not in the taxonomy",
                                     hint="fix it in Label Studio, or pass --add-labels to add it to the taxonomy")
                known.add(c)
                new.append(c)
        by_item[a["item_id"]].append(a)
    rows, conflicts, ties = [], [], []
    for item, anns in by_item.items():
        n = len(anns)
        if multi_label:
            cnt = Counter(c for a in anns for c in set(a["choices"]))
            label = sorted(c for c, v in cnt.items() if v * 2 > n)
            agreement = sum(set(a["choices"]) == set(label) for a in anns) / n
            tie = False
        else:
            cnt = Counter(a["choices"][0] for a in anns)
            (label, top), *rest = cnt.most_common()
            tie = bool(rest) and rest[0][1] == top
            agreement = top / n
        conflict = agreement < 1
        if conflict:
            (ties if tie else conflicts).append({"id": item, "task_id": anns[0]["task_id"], "votes": dict(cnt)})
        if tie:
            continue
        row = {"id": item, "label": label, "n_annotators": n, "agreement": round(agreement, 4),
               "conflict": conflict, "task_id": anns[0]["task_id"]}
        strategy = next((a["strategy"] for a in anns if a.get("strategy")), None)
        if strategy is not None:  # how the item was picked: labelmodel/gold.py selects only on random picks
            row["strategy"] = strategy
        text = next((a["text"] for a in anns if isinstance(a.get("text"), str)), None)
        if text is not None:  # the gold LFs (label --gold, auto --gold) learn from the gold rows' texts
            row["text"] = text
        rows.append(row)
    summary = {"annotations": len(annotations), "items": len(rows), "skipped": len(skipped_items - set(by_item)),
               "conflicts_resolved": conflicts, "ties_dropped": ties, "new_labels": new,
               "annotators": len({a.get("annotator") for a in annotations if a.get("annotator") is not None})}
    return rows, summary


def read_gold(path: str | Path) -> dict[str, dict]:
    """id -> row of an existing gold file, so imports add to earlier rounds instead of replacing them
    (:mod:`llmlabel.artifacts.gold` reads and writes the file)."""
    from ..artifacts.gold import read_gold as read

    path = Path(path)
    return read(path, allow_empty=True).by_id() if path.is_file() else {}


def write_gold(path: str | Path, rows: list[dict], *, merge: bool = True) -> dict[str, dict]:
    """Write gold rows as JSONL (atomically), merged over the file's earlier rows by id (new answers win)."""
    from ..artifacts.gold import write_gold as write

    return write(path, rows, merge=merge)
