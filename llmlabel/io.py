"""Read any corpus as a stream of (id, text, other fields) batches; write outputs atomically with provenance.

>>> corpus = read_corpus("reviews.jsonl", text_field="body", skip_bad=True)   # doctest: +SKIP
>>> for batch in corpus.iter_batches():                                       # doctest: +SKIP
...     label(batch.ids, batch.texts)
>>> print(corpus.stats.summary())                                             # doctest: +SKIP
read 1,000,000 rows: 999,120 kept, 850 empty skipped, 30 bad skipped (lines 17, 9012, ...)

Sources: ``.jsonl``/``.ndjson``/``.json`` (JSON lines), ``.csv``, ``.tsv``, ``.txt`` (one text a line, ids are
positions; each optionally ``.gz``), ``.parquet``,
a folder of Parquet shards, a folder written by ``datasets``' ``save_to_disk``, and ``hf://NAME[:split]``.

Rules every format follows:

- ids are strings: the ``id_field`` value (by default a field named ``id`` when the data has one), else the row's
  0-based position in the file. Positions count every row, skipped ones too, so ids never shift when bad or
  empty rows are dropped.
- empty or whitespace-only texts are skipped and counted (``stats.empty``); a null text counts as empty.
  With ``keep_empty=True`` they are yielded as ``""`` instead (still counted), for stages that owe every
  input row an output row (``predict``, ``xmc``).
- a number or boolean in the text field is converted with ``str()`` and counted (``stats.coerced``);
  a list or object there is a bad row.
- an id read from a field follows :mod:`llmlabel.ids`: ``1``, ``1.0`` and ``"1"`` are one id, and an id used
  twice is a bad row (the second use).
- bad rows (malformed JSON, not an object, missing field, null id, repeated id) raise :class:`InputError` naming file
  and line, or with ``skip_bad=True`` are skipped and counted (``stats.bad``, first line numbers in
  ``stats.bad_lines``).
- bytes that are not UTF-8 are replaced by U+FFFD and counted per line (``stats.repaired``), never a crash.
- texts longer than ``HUGE_TEXT_CHARS`` are kept (truncation is a later stage's job) and counted.

Writing outputs is :mod:`llmlabel.io_write` (one file), :mod:`llmlabel.io_shards` (resumable shards) and
:mod:`llmlabel.io_meta` (provenance); small side files are read whole by :mod:`llmlabel.io_records`. This module
owns the corpus reader and the rules above; the bytes of each file format are read by :mod:`llmlabel.io_rows`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .errors import InputError
from .ids import canonical_id
from .io_formats import (NUMBER, SUPPORTED, TEXT_HINT, arrow_columns, auto_id, detect_format, load_dataset,
                         parquet_files, resolve_text)
from .io_rows import arrow_items, csv_items, jsonl_items, line_items

__all__ = ["read_corpus", "Corpus", "Batch", "Record", "ReadStats", "HUGE_TEXT_CHARS"]

HUGE_TEXT_CHARS = 100_000


@dataclass
class ReadStats:
    """What happened while reading; complete once iteration finished (``done``)."""

    rows: int = 0  # rows seen in the source, skipped ones included
    kept: int = 0
    empty: int = 0
    bad: int = 0
    repaired: int = 0  # lines (JSONL/CSV) or values (Parquet) whose non-UTF-8 bytes were replaced
    coerced: int = 0  # non-string texts converted with str()
    huge: int = 0  # texts longer than HUGE_TEXT_CHARS (kept)
    bad_lines: list[int] = field(default_factory=list)  # the first 10
    bad_examples: list[str] = field(default_factory=list)  # the first 3 messages
    done: bool = False
    empty_kept: bool = False  # keep_empty: empty texts were yielded (as "") rather than skipped

    def summary(self) -> str:
        """One line for people: ``read 1,000 rows: 990 kept, 7 empty skipped, 3 bad skipped (lines 4, 9, 12)``."""
        lines = ", ".join(map(str, self.bad_lines)) + (", ..." if self.bad > len(self.bad_lines) else "")
        empty = "of them empty" if self.empty_kept else "empty skipped"
        parts = [(self.kept, "kept"), (self.empty, empty), (self.bad, f"bad skipped (lines {lines})"),
                 (self.repaired, "with non-UTF-8 bytes repaired"), (self.coerced, "non-string texts converted"),
                 (self.huge, f"texts over {HUGE_TEXT_CHARS:,} chars")]
        return f"read {self.rows:,} rows: " + ", ".join(f"{n:,} {what}" for n, what in parts if n or what == "kept")


@dataclass
class Batch:
    """Aligned lists; ``rows`` holds each record's other fields (text and id fields removed)."""

    ids: list[str]
    texts: list[str]
    rows: list[dict[str, Any]]
    positions: list[int]  # 0-based row position in the source

    def __len__(self) -> int:
        return len(self.ids)


class Record(NamedTuple):
    id: str
    text: str
    row: dict[str, Any]


class Corpus:
    """A re-iterable, streaming view of a corpus; build it with :func:`read_corpus`."""

    def __init__(self, source: str, fmt: str, *, text_field: str, id_field: str | None, columns: list[str],
                 skip_bad: bool, batch_size: int, limit: int | None, keep_extra: bool,
                 path: Path | None = None, files: list[Path] | None = None, dataset: Any = None,
                 num_rows: int | None = None, delimiter: str = ",", keep_empty: bool = False) -> None:
        self.source, self.format = source, fmt
        self.text_field, self.id_field, self.columns = text_field, id_field, columns
        self.skip_bad, self.batch_size, self.limit, self.keep_extra = skip_bad, batch_size, limit, keep_extra
        self.path, self._files, self._dataset, self._delimiter = path, files, dataset, delimiter
        self.keep_empty = keep_empty
        self.num_rows = num_rows  # rows in the source before skipping; None where only reading tells
        self.stats = ReadStats()
        self._seen_ids: set[str] = set()  # ids read so far in this pass (duplicates are refused)

    def __repr__(self) -> str:
        return f"Corpus({self.source!r}, format={self.format!r}, text_field={self.text_field!r})"

    def __len__(self) -> int:
        """Rows in the source (before empty/bad rows are skipped); Parquet and datasets only."""
        if self.num_rows is None:
            raise TypeError(f"the length of a {self.format} corpus is unknown until it is read; iterate it")
        return self.num_rows if self.limit is None else min(self.limit, self.num_rows)

    def __iter__(self) -> Iterator[Record]:
        for b in self.iter_batches():
            yield from map(Record, b.ids, b.texts, b.rows)

    def texts(self) -> list[str]:
        """All texts in a list (small corpora; large ones should use :meth:`iter_batches`)."""
        return [t for b in self.iter_batches() for t in b.texts]

    def ids(self) -> list[str]:
        return [i for b in self.iter_batches() for i in b.ids]

    def iter_batches(self, batch_size: int | None = None) -> Iterator[Batch]:
        """Batches of up to ``batch_size`` kept rows; memory stays flat whatever the corpus size.

        Each call reads the source again and resets :attr:`stats`.
        """
        size = batch_size or self.batch_size
        stats = self.stats = ReadStats(empty_kept=self.keep_empty)
        self._seen_ids = set()
        out = Batch([], [], [], [])
        items = self._items(stats)
        with closing(items):
            for line, obj in items:
                self._take(line, obj, out, stats)
                if len(out) >= size:
                    yield out
                    out = Batch([], [], [], [])
                if self.limit is not None and stats.kept >= self.limit:
                    break
        if out.ids:
            yield out
        stats.done = True

    def start(self, batch_size: int | None = None) -> Iterator[Batch] | None:
        """:meth:`iter_batches` with the first batch read now, so a bad early line or a corpus without
        texts fails before a stage sets up its work (models, output folders); ``None``: nothing to read."""
        it = self.iter_batches(batch_size)
        first = next(it, None)
        return None if first is None else itertools.chain([first], it)

    # ------------------------------------------------------------------ one record

    def _bad(self, stats: ReadStats, err: InputError) -> None:
        if not self.skip_bad:
            raise err
        stats.bad += 1
        if len(stats.bad_lines) < 10 and err.line is not None:
            stats.bad_lines.append(err.line)
        if len(stats.bad_examples) < 3:
            stats.bad_examples.append(err.one_line())

    def _take(self, line: int, obj: Any, out: Batch, stats: ReadStats) -> None:
        pos = stats.rows
        stats.rows += 1
        where = {"path": self.path or self.source, "line": line}
        if isinstance(obj, InputError):
            return self._bad(stats, obj)
        if not isinstance(obj, dict):
            kind = "null" if obj is None else type(obj).__name__
            return self._bad(stats, InputError(f"expected a JSON object, got {kind}", **where,
                                               hint="each line must be one JSON object like {\"text\": ...}"))
        tf = self.text_field
        if tf not in obj:
            return self._bad(stats, InputError(
                f"missing text field '{tf}'", field=tf, **where,
                hint=f"available fields: {', '.join(map(str, obj)) or '(none)'}; {TEXT_HINT}"))
        text = obj.pop(tf)
        if self.id_field is None:
            rid = str(pos)
        else:
            raw = obj.pop(self.id_field, None)
            rid = canonical_id(raw)
            if rid is None:
                what = "missing or null" if raw is None or raw == "" else f"not a usable id ({raw!r}) in"
                return self._bad(stats, InputError(
                    f"{what} id field '{self.id_field}'", field=self.id_field, **where,
                    hint=f"available fields: {', '.join([tf, *map(str, obj)])}; or drop --id-field to use row numbers"))
            if rid in self._seen_ids:  # one id policy for every reader: see llmlabel.ids
                return self._bad(stats, InputError(
                    f"duplicate id {rid!r} in field '{self.id_field}'", field=self.id_field, **where,
                    hint="ids must be unique within a file: remove or rename the repeated rows "
                         "(--skip-bad keeps the first and counts the others as bad)"))
            self._seen_ids.add(rid)
        if not isinstance(text, str):
            if text is None or (isinstance(text, float) and text != text):
                text = ""  # null and NaN (pandas' missing value) are no text, never the word "nan"
            elif isinstance(text, (int, float, bool)):
                text = str(text)
                stats.coerced += 1
            elif isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            else:
                return self._bad(stats, InputError(
                    f"text field '{tf}' holds a {type(text).__name__}, not a string", field=tf, **where,
                    hint=TEXT_HINT))
        if not text or text.isspace():
            stats.empty += 1
            if not self.keep_empty:
                return None
            text = ""
        if len(text) > HUGE_TEXT_CHARS:
            stats.huge += 1
        stats.kept += 1
        out.ids.append(rid)
        out.texts.append(text)
        out.rows.append(obj if self.keep_extra else {})
        out.positions.append(pos)
        return None

    # ------------------------------------------------------------------ rows of the source

    def _items(self, stats: ReadStats) -> Iterator[tuple[int, Any]]:
        if self.format == "jsonl":
            return jsonl_items(self.path, stats)
        if self.format in ("csv", "tsv"):
            return csv_items(self.path, stats, self._delimiter)
        if self.format == "txt":
            return line_items(self.path, stats)
        cols = None if self.keep_extra else [c for c in (self.text_field, self.id_field) if c]
        return arrow_items(stats, dataset=self._dataset, files=self._files, columns=cols, batch_size=self.batch_size)


# ---------------------------------------------------------------------- opening a source

def read_corpus(source: str | Path, *, text_field: str | None = None, id_field: str | None = None,
                skip_bad: bool = False, batch_size: int = 10_000, limit: int | None = None,
                format: str | None = None, split: str | None = None, keep_extra: bool = True,
                keep_empty: bool = False) -> Corpus:
    """Open a corpus for streaming. Format and text field are resolved now, so setup errors come early.

    ``text_field`` defaults to ``text``, else the only string column (id-named columns such as ``id`` or
    ``review_id`` do not count). ``id_field`` defaults to a field named ``id`` when there is one, else the row position. ``limit`` caps the rows
    yielded; ``split`` picks a split of a ``DatasetDict``; ``keep_extra=False`` reads only the text and
    id columns (faster on wide Parquet files); ``keep_empty=True`` yields empty or whitespace-only texts as
    ``""`` (counted in ``stats.empty``) instead of skipping them.

    >>> corpus = read_corpus("data.csv", text_field="review", id_field="review_id")  # doctest: +SKIP
    >>> corpus.texts()[:2]                                                            # doctest: +SKIP
    ['Great phone', 'Battery died in a day']
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    src = str(source)
    kw: dict[str, Any] = dict(id_field=id_field, skip_bad=skip_bad, batch_size=batch_size, limit=limit,
                              keep_extra=keep_extra, keep_empty=keep_empty)
    if src.startswith("hf://"):
        ds = load_dataset(src, split)
        cols, strs = arrow_columns(ds.data.schema)
        kw["id_field"] = id_field = auto_id(cols, id_field)
        return Corpus(src, "hf", text_field=resolve_text(src, cols, strs, text_field, id_field), columns=cols,
                      dataset=ds, num_rows=len(ds), **kw)
    path = Path(source).expanduser()
    if not path.exists():
        raise InputError("file not found", path=path, hint="check the path; for a Hub dataset write hf://NAME")
    fmt = format or detect_format(path)
    if fmt in ("jsonl", "csv", "tsv"):
        kw["delimiter"] = "\t" if fmt == "tsv" else ","
        cols, strs, first_line = _probe_text(Corpus(src, fmt, text_field="", columns=[], path=path, **kw))
        kw["id_field"] = id_field = auto_id(cols, id_field)
        tf = resolve_text(path, cols, strs, text_field, id_field, check=fmt != "jsonl", first_line=first_line)
        return Corpus(src, fmt, text_field=tf, columns=cols, path=path, **kw)
    if fmt == "txt":
        if text_field not in (None, "text") or id_field is not None:
            raise InputError("a .txt corpus is one text a line, with no fields to choose", path=path,
                             hint="drop --text-field / --id-field (the ids are the texts' positions), or use JSONL/CSV")
        return Corpus(src, fmt, text_field="text", columns=["text"], path=path, **kw)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        files = parquet_files(path)
        try:
            schema = pq.read_schema(files[0])
            n = sum(pq.read_metadata(f).num_rows for f in files)
        except Exception as e:  # pyarrow raises ArrowInvalid/OSError for files that are not Parquet
            raise InputError(f"not a readable Parquet file: {e}", path=files[0]) from e
        cols, strs = arrow_columns(schema)
        kw["id_field"] = id_field = auto_id(cols, id_field)
        return Corpus(src, fmt, text_field=resolve_text(path, cols, strs, text_field, id_field), columns=cols,
                      path=path, files=files, num_rows=n, **kw)
    if fmt == "datasets":
        ds = load_dataset(path, split)
        cols, strs = arrow_columns(ds.data.schema)
        kw["id_field"] = id_field = auto_id(cols, id_field)
        return Corpus(src, fmt, text_field=resolve_text(path, cols, strs, text_field, id_field), columns=cols,
                      path=path, dataset=ds, num_rows=len(ds), **kw)
    raise InputError(f"unknown format {fmt!r}", path=path, hint=f"supported: {SUPPORTED}")


def _probe_text(probe: Corpus) -> tuple[list[str], list[str], int | None]:
    """Columns and string-looking columns from the first record (JSONL) or header + first rows (CSV)."""
    stats = ReadStats()
    items = probe._items(stats)  # JSONL, CSV or TSV
    with closing(items):
        for line, obj in items:
            if isinstance(obj, InputError) or not isinstance(obj, dict):
                if probe.skip_bad:
                    continue
                probe._take(line, obj, Batch([], [], [], []), stats)  # raises the right error
            if probe.format == "jsonl":
                return list(obj), [k for k, v in obj.items() if isinstance(v, str)], line
            # CSV has no types: a column is text if some early value is neither empty nor a number.
            sample = [obj, *(more for _, (_, more) in zip(range(50), items) if isinstance(more, dict))]
            nonnum = {k for r in sample for k, v in r.items() if v.strip() and not NUMBER.match(v)}
            return list(obj), [c for c in obj if c in nonnum], None
    return [], [], None
