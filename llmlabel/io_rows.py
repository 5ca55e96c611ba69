"""Raw rows from each kind of corpus file: JSON lines, CSV/TSV (optionally gzipped), Parquet and ``datasets``.

Each reader yields ``(line, row)`` pairs: the 1-based line (JSONL/CSV) or row number (Arrow) and either a dict
of fields or the :class:`~llmlabel.errors.InputError` that row earned. Turning rows into ids and texts, and
deciding what a bad row costs, is :class:`llmlabel.io.Corpus`'s job; keeping the file formats here lets it apply
one set of rules to every format. Bytes that are not UTF-8 are repaired here (U+FFFD) and counted in the
reader's stats (``stats.repaired``).
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .io import ReadStats

_BOM = b"\xef\xbb\xbf"


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def jsonl_items(path: Path, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    """One JSON value per non-blank line; a line that is not JSON yields its error."""
    with _open(path) as f:
        for lineno, s in enumerate(_decode_lines(f, stats), 1):
            if not s or s.isspace():
                continue  # blank lines are not rows, so they take no position
            try:
                yield lineno, json.loads(s)
            except json.JSONDecodeError as e:
                hint = ("this looks like one JSON array, not JSON lines; convert it: jq -c '.[]' IN > OUT.jsonl"
                        if lineno == 1 and s.lstrip().startswith("[") else
                        "fix the line, or pass skip_bad=True (--skip-bad)")
                yield lineno, InputError(f"malformed JSON: {e.msg} (column {e.colno})", path=path,
                                         line=lineno, hint=hint)


def line_items(path: Path, stats: ReadStats) -> Iterator[tuple[int, Any]]:
    """A plain text file: each non-blank line is one text (``{"text": line}``), its end-of-line removed."""
    with _open(path) as f:
        for lineno, s in enumerate(_decode_lines(f, stats), 1):
            if s and not s.isspace():
                yield lineno, {"text": s.rstrip("\r\n")}


def csv_items(path: Path, stats: ReadStats, delimiter: str) -> Iterator[tuple[int, Any]]:
    """Rows as ``{header: value}``; a row with the wrong number of fields yields its error."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the default 128 KiB cap would reject long texts
    with _open(path) as f:
        reader = csv.reader(_decode_lines(f, stats), delimiter=delimiter)
        header = next(reader, None)
        while header is not None:
            try:
                rec = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield reader.line_num, InputError(f"malformed CSV: {e}", path=path, line=reader.line_num)
                continue
            if not rec:
                continue
            if len(rec) != len(header):
                yield reader.line_num, InputError(
                    f"row has {len(rec)} fields, the header has {len(header)}", path=path,
                    line=reader.line_num, hint="quote fields that contain the delimiter, or pass --skip-bad")
            else:
                yield reader.line_num, dict(zip(header, rec))


def arrow_items(stats: ReadStats, *, dataset: Any, files: list[Path] | None, columns: list[str] | None,
                batch_size: int) -> Iterator[tuple[int, Any]]:
    """Rows of a ``datasets`` dataset or of Parquet files, read ``batch_size`` at a time (only ``columns``
    when given), numbered from 1."""
    n = 0
    for tbl in _arrow_batches(dataset, files, columns, batch_size):
        for obj in _arrow_rows(tbl, stats):
            n += 1
            yield n, obj


def _arrow_batches(dataset: Any, files: list[Path] | None, cols: list[str] | None, batch_size: int) -> Iterator[Any]:
    if dataset is not None:
        ds = dataset if cols is None else dataset.select_columns(cols)
        yield from ds.with_format("arrow").iter(batch_size=batch_size)
        return
    import pyarrow.parquet as pq

    for path in files:
        with pq.ParquetFile(path) as pf:
            yield from pf.iter_batches(batch_size=batch_size, columns=cols)


def _decode(raw: bytes, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        stats.repaired += 1
        return raw.decode("utf-8", errors="replace")


def _decode_lines(f, stats: ReadStats) -> Iterator[str]:
    first = next(f, b"")
    yield _decode(first[3:] if first.startswith(_BOM) else first, stats)
    for raw in f:
        yield _decode(raw, stats)


def _arrow_rows(tbl: Any, stats: ReadStats) -> list[dict[str, Any]]:
    try:
        return tbl.to_pylist()
    except UnicodeDecodeError:
        pass
    # Parquet does not validate UTF-8 on read; repair the offending string columns value by value.
    import pyarrow as pa

    cols: dict[str, list] = {}
    for name, col in zip(tbl.schema.names, tbl.columns):
        try:
            cols[name] = col.to_pylist()
        except UnicodeDecodeError:
            cols[name] = [v if v is None else _decode(v, stats) for v in col.cast(pa.large_binary()).to_pylist()]
    names = list(cols)
    return [dict(zip(names, vals)) for vals in zip(*cols.values())]
