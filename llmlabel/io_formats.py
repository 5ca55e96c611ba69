"""Which format a corpus path holds, and which of its fields are the text and the id: the decisions
:func:`llmlabel.io.read_corpus` makes before it streams a row."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import InputError
from .io_meta import MANIFEST

_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv",
               ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet", ".txt": "txt"}
SUPPORTED = (".jsonl/.ndjson/.json, .csv, .tsv, .txt (one text a line; each optionally .gz), .parquet, a datasets "
             "save_to_disk folder, hf://NAME")
TEXT_HINT = "choose the text column with text_field=NAME (--text-field NAME)"
NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_ID_NAME = re.compile(r"^(?i:_?id|uuid|guid)$|(?i:[_\-]id)$|[a-z]Id$")


def auto_id(cols: list[str], id_field: str | None) -> str | None:
    # A column literally named "id" is what users mean by the item id; anything else must be asked for.
    return "id" if id_field is None and "id" in cols else id_field


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return "datasets"
        if (path / MANIFEST).exists() or any(path.glob("*.parquet")):
            return "parquet"
        raise InputError("folder is neither a datasets save_to_disk folder nor a folder of Parquet files",
                         path=path, hint=f"supported: {SUPPORTED}")
    name = path.name.lower().removesuffix(".gz")
    fmt = _EXTENSIONS.get(Path(name).suffix)
    if fmt is None:
        raise InputError(f"unknown file type {Path(name).suffix or '(no extension)'!r}", path=path,
                         hint=f"supported: {SUPPORTED}; or pass format=")
    return fmt


def parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    man = path / MANIFEST
    if man.exists():  # the manifest lists finished shards only, in order; strays from a crash are ignored
        files = [path / s["file"] for s in json.loads(man.read_text(encoding="utf-8"))["shards"]]
    else:
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise InputError("no Parquet files in this folder", path=path)
    return files


def arrow_columns(schema) -> tuple[list[str], list[str]]:
    import pyarrow as pa

    is_view = getattr(pa.types, "is_string_view", lambda _: False)
    strs = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or is_view(f.type)]
    return list(schema.names), strs


def resolve_text(where, cols: list[str], strs: list[str], text_field: str | None, id_field: str | None,
                  *, check: bool = True, first_line: int | None = None) -> str:
    what = f"first record (line {first_line}) has fields" if first_line else "available columns"
    listed = f"{what}: {', '.join(cols) or '(none)'}"
    for name, kind in ((text_field, "text"), (id_field, "id")):
        if name is not None and check and cols and name not in cols:
            raise InputError(f"no {kind} field '{name}'", path=where, field=name, hint=listed)
    if text_field is not None:
        return text_field
    if not cols or "text" in cols:
        return "text"
    candidates = [c for c in strs if c != id_field]
    if len(candidates) > 1:  # an id column is never the text: {"id": "a1", "body": ...} resolves to body
        candidates = [c for c in candidates if not _ID_NAME.search(c)] or candidates
    if len(candidates) == 1:
        return candidates[0]
    why = f"several string columns ({', '.join(candidates)})" if candidates else "no string column"
    raise InputError(f"cannot tell which field holds the text: no 'text' field and {why}", path=where,
                     hint=f"{listed}; {TEXT_HINT}")


def load_dataset(where: str | Path, split: str | None):
    """A ``Dataset`` from a save_to_disk folder or ``hf://NAME[:split]``, one split picked."""
    import datasets

    try:
        if isinstance(where, Path):
            ds = datasets.load_from_disk(str(where))
        else:
            name, _, in_spec = where[len("hf://"):].partition(":")
            split = split or in_spec or "train"
            ds = datasets.load_dataset(name, split=split)
    except Exception as e:  # datasets raises many types (network, missing split, damaged folder)
        hint = None if isinstance(where, Path) else "needs network access; offline, save_to_disk and pass the folder"
        raise InputError(f"cannot load the dataset: {e}", path=where, hint=hint) from e
    if not hasattr(ds, "keys"):  # a Dataset, not a DatasetDict
        return ds
    splits = list(ds.keys())
    if split is None:
        split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
    if split not in splits:
        what = f"no split {split!r}" if split else "several splits"
        raise InputError(f"{what}; the dataset has: {', '.join(splits)}", path=where, hint="pass split=NAME")
    return ds[split]
