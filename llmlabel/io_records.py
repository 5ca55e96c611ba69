"""Small side files read whole, row by row: dev and gold sets, predictions, label lists, saved programs.

Corpora stream through :func:`llmlabel.io.read_corpus`; these readers give any fields as they are, with
one-line errors naming the file and line. Encodings as spreadsheets save them are accepted: a UTF-8
byte-order mark, CRLF line ends, and bytes that are not UTF-8 (replaced).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InputError


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """One JSON document (a saved program, label priors, a label list), with one-line errors naming the file
    and the line of a syntax error."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON in {what}: {e.msg}", path=path, line=e.lineno) from None


def read_records(path: str | Path, *, what: str = "file") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row dict) of a small JSONL, CSV, TSV or Parquet side file (a dev set, predictions, gold
    labels); a Parquet "line" is the row number from 1.

    For corpora use :func:`read_corpus`, which streams and resolves text and id fields; this reads any
    fields as they are, with one-line errors naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a file", path=path)
    if not path.is_file():
        raise InputError(f"{what} not found", path=path)
    if path.suffix.lower() == ".parquet":
        yield from _parquet_records(path, what)
        return
    # utf-8-sig: a file saved by Excel starts with a byte-order mark, which would otherwise become part of the
    # first header name ("\ufeffid"); newline="" lets csv handle CRLF line ends (JSON ignores a trailing \r).
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        if path.suffix.lower() in (".csv", ".tsv"):
            rd = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for row in rd:
                yield rd.line_num, row
            return
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputError(f"malformed JSON: {e.msg} (column {e.colno})", path=path, line=n) from None
            if not isinstance(obj, dict):
                raise InputError("expected a JSON object", path=path, line=n)
            yield n, obj



def _parquet_records(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, row dict) of a small Parquet side file."""
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises ArrowInvalid/OSError for a file that is not Parquet
        raise InputError(f"{what} is not a readable Parquet file ({type(e).__name__})", path=path) from None
    yield from enumerate(rows, 1)
