"""Writing one output file: fail-fast checks, atomic replace, and the JSONL and Parquet encoders.

:func:`atomic_write` is the one way a file is written (temp file next to it, fsync, rename), so a reader never
sees half a file and a kill or a full disk leaves the previous version; :func:`check_writable` lets a stage
refuse an unwritable output before any work. :func:`write_jsonl` and :func:`write_parquet` store rows through it
with their provenance (see :mod:`llmlabel.io_meta`); long runs write shards with :mod:`llmlabel.io_shards`.

>>> from llmlabel.io_meta import make_meta
>>> write_jsonl("/tmp/out.jsonl", [{"id": "0", "label": "pos"}], meta=make_meta(engine="hf:gpt2"))
1
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any

from .errors import OutputError
from .io_meta import META_KEY, META_SUFFIX, scrub_secrets
from .io_swap import space_error

# mkstemp creates 0600 files; outputs should get the permissions a plain open() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temp file next to ``path``; on success rename it over ``path``, on error delete it.

    A reader never sees a half-written file, and a crash leaves the previous version untouched.

    >>> with atomic_write("/tmp/x.txt") as f:
    ...     _ = f.write("hello")
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The pid in the name lets a later write tell a killed writer's leftover from a live writer's file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as e:
        raise _output_error(path, e) from None
    try:
        binary = "b" in mode
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        why = space_error(e)
        if why is not None:  # a full disk (or `ulimit -f`): the old file is untouched, say which one
            raise OutputError(f"cannot write the output: {why}", path=path,
                              hint="free some space (the earlier file is kept), or choose another -o/--output") from None
        raise
    _remove_dead_writers_temps(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def _remove_dead_writers_temps(path: Path) -> None:
    """Temp files of ``path`` left by writers that were killed (kill -9 skips the cleanup above)."""
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            with suppress(OSError):
                tmp.unlink()


def _output_error(path: Path, e: OSError) -> OutputError:
    why = {FileExistsError: "a file is in the way of its folder", NotADirectoryError: "a file is in the way of its folder",
           PermissionError: "permission denied"}.get(type(e), e.strerror or str(e))
    return OutputError(f"cannot write the output: {why}", path=path,
                       hint="choose another -o/--output, or fix the folder's permissions")


def check_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Fail fast, before any work, when ``path`` (a file, or a folder with ``folder=True``) cannot be written.

    Checks the kind of anything already at ``path`` and that a file can really be created in the nearest
    existing folder above it (a real create, not ``os.access``: root passes every permission check but
    still cannot write to a read-only filesystem). Nothing is left behind; folders are not created.
    """
    path = Path(path).expanduser()
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError("the output folder is a file", path=path, hint="choose another -o/--output")
        if not folder and path.is_dir():
            raise OutputError("the output is a folder, a file is expected here", path=path,
                              hint="name a file, e.g. " + str(path / "out"))
    base = path if (folder and path.is_dir()) else path.parent
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"cannot write the output: {base} is a file, not a folder", path=path,
                          hint="choose another -o/--output")
    try:
        fd, tmp = tempfile.mkstemp(dir=base, prefix=".llmlabel-write-check.", suffix=".tmp")
    except OSError as e:
        raise _output_error(path, e) from None
    os.close(fd)
    os.unlink(tmp)
    return path


def _meta_json(meta: Mapping[str, Any]) -> str:
    return json.dumps(scrub_secrets(meta), ensure_ascii=False, sort_keys=True, default=json_default)



# --------------------------------------------------------------------------- JSONL and Parquet


def json_default(obj: Any) -> Any:
    # numpy scalars/arrays and dates appear in rows built by later stages; json cannot encode them.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any] | None = None) -> int:
    """Write rows as JSON lines atomically; ``meta`` goes to ``<path>.meta.json``. Returns the row count.

    Rows are streamed, so a generator of any length is fine.
    """
    path = Path(path)
    n = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=json_default))
            f.write("\n")
            n += 1
    side = path.with_name(path.name + META_SUFFIX)
    if meta is not None:
        # the data file's size: a kill between the two renames leaves new data beside the old sidecar, which
        # read_meta then refuses instead of describing the new rows with the old run's classes
        meta = {**meta, "data_bytes": path.stat().st_size, "data_rows": n}
        with atomic_write(side) as f:
            f.write(_meta_json(meta) + "\n")
    else:
        # A sidecar left from an earlier run would describe the wrong data.
        with suppress(FileNotFoundError):
            side.unlink()
    return n


def _to_table(data: Any, schema=None):
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, Mapping):
        return pa.table(dict(data), schema=schema)
    if hasattr(data, "to_arrow") and callable(data.to_arrow):  # polars
        return data.to_arrow()
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):  # pandas, without importing it
        return pa.Table.from_pandas(data, preserve_index=False)
    return pa.Table.from_pylist(list(data), schema=schema)


def _row_group_size(table) -> int:
    # pyarrow's default (1M rows) puts a whole file in one row group, and a streaming reader holds a
    # row group in memory; ~64 MB groups keep later reads bounded whatever the text length.
    per_row = max(1, table.nbytes // max(1, table.num_rows))
    return int(min(1_000_000, max(1_000, (64 << 20) // per_row)))


def write_parquet(path: str | Path, table_or_rows: Any, meta: Mapping[str, Any] | None = None, *,
                  compression: str = "zstd") -> int:
    """Write a table (pyarrow Table, dict of columns, list of row dicts, DataFrame) to Parquet atomically.

    ``meta`` is stored as JSON under the ``llmlabel`` key of the schema metadata (see :func:`read_meta`).
    Returns the row count.
    """
    import pyarrow.parquet as pq

    table = _to_table(table_or_rows)
    if meta is not None:
        md = dict(table.schema.metadata or {})
        md[META_KEY.encode()] = _meta_json(meta).encode()
        table = table.replace_schema_metadata(md)
    with atomic_write(path, "wb") as f:
        pq.write_table(table, f, compression=compression, row_group_size=_row_group_size(table))
    return table.num_rows
