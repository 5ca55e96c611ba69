"""Writing outputs: atomic files, provenance metadata (scrubbed of secrets), resumable Parquet shards.

>>> from llmlabel.io import write_jsonl, make_meta, read_meta
>>> write_jsonl("/tmp/out.jsonl", [{"id": "0", "label": "pos"}], meta=make_meta(engine="hf:gpt2"))
1
>>> read_meta("/tmp/out.jsonl")["engine"]
'hf:gpt2'
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from glob import escape as glob_escape
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, InputError, OutputError
from .io_swap import space_error

META_KEY = "llmlabel"  # key in the Parquet schema metadata
META_SUFFIX = ".meta.json"  # sidecar next to JSONL (and any non-Parquet) outputs
MANIFEST = "_manifest.json"  # leading underscore: pyarrow and datasets skip it when reading the folder

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


# --------------------------------------------------------------------------- metadata and secrets

_SECRET_PARTS = {"secret", "secrets", "password", "passwd", "authorization", "bearer", "credential", "credentials",
                 "cookie", "apikey"}
_SECRET_VALUE_RES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._\-]{8,}"),
]
# `--api-key X`, `--token=X`, `OPENAI_API_KEY=X` on a recorded command line.
_SECRET_FLAG_RE = re.compile(r"(?i)((?:--?|\b)[\w\-]*(?:api[_\-]?key|token|secret|password)\s*[= ]\s*)(\S+)")


def _looks_secret(key: str) -> bool:
    """``api_key``, ``hf_token``, ``password`` → True; ``prompt_tokens``, ``max_tokens`` (counts) → False."""
    parts = [p for p in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if p]
    if not parts:
        return False
    joined = "".join(parts)
    return (parts[-1] == "token" or any(p in _SECRET_PARTS for p in parts)
            or joined.endswith(("apikey", "accesskey", "privatekey", "secretkey")))


def _secret_env_values() -> list[str]:
    names = {"OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    names |= {k for k in os.environ if _looks_secret(k)}
    # Short values ("1", "true") would scrub innocent text and are no real secret.
    return sorted({os.environ[k] for k in names if len(os.environ.get(k, "")) >= 8}, key=len, reverse=True)


def scrub_secrets(obj: Any, _env: list[str] | None = None) -> Any:
    """Copy of ``obj`` without secret-looking keys and with secret values replaced by ``***``.

    Drops keys such as ``api_key``/``token``/``password``; replaces the values of ``$OPENAI_API_KEY``,
    ``$HF_TOKEN`` (and any secret-named env var) wherever they appear, plus ``sk-…``/``hf_…`` keys,
    URL passwords and ``--api-key X`` on command lines.
    """
    env = _secret_env_values() if _env is None else _env
    if isinstance(obj, Mapping):
        out = {str(k): scrub_secrets(v, env) for k, v in obj.items() if not _looks_secret(str(k))}
        if isinstance(out.get("command"), str):  # flags only on the command line: prose may say "token is"
            out["command"] = _SECRET_FLAG_RE.sub(lambda m: m.group(1) + "***", out["command"])
        return out
    if isinstance(obj, (list, tuple)):
        return [scrub_secrets(v, env) for v in obj]
    if isinstance(obj, str):
        for value in env:
            obj = obj.replace(value, "***")
        for rx in _SECRET_VALUE_RES:
            obj = rx.sub("***", obj)
    return obj


def make_meta(command: str | list[str] | None = None, engine: str | None = None,
              prompt_hashes: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance for an output file: version, UTC time, platform, command, engine, prompt hashes, extra.

    ``command`` defaults to this process's command line; ``usage`` defaults to what the engines have
    spent so far in this process (``llmlabel.usage_log``). Secrets are scrubbed (see :func:`scrub_secrets`).

    >>> make_meta(engine="vllm:Qwen/Qwen2.5-7B-Instruct", prompt_hashes={"sentiment": "3f2a…"})["engine"]
    'vllm:Qwen/Qwen2.5-7B-Instruct'
    """
    from . import __version__

    if command is None:
        command = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    if not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    meta = {
        "llmlabel_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": command,
        "engine": engine,
        "prompt_hashes": dict(prompt_hashes or {}),
        **extra,
    }
    if "usage" not in meta:
        from .llm.usage import usage_log

        meta["usage"] = usage_log.as_dict()
    return scrub_secrets(meta)


def _meta_json(meta: Mapping[str, Any]) -> str:
    return json.dumps(scrub_secrets(meta), ensure_ascii=False, sort_keys=True, default=_json_default)


def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The metadata stored with an output: Parquet schema metadata, ``<path>.meta.json``, or a shard
    folder's manifest. ``None`` when the file carries none."""
    path = Path(path)
    if path.is_dir():
        man = path / MANIFEST
        return json.loads(man.read_text(encoding="utf-8")).get("meta") if man.exists() else None
    if not path.exists():
        raise InputError("file not found", path=path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        md = pq.read_schema(path).metadata or {}
        raw = md.get(META_KEY.encode())
        if raw is not None:
            return json.loads(raw)
    side = path if path.name.endswith(META_SUFFIX) else path.with_name(path.name + META_SUFFIX)
    if not side.exists():
        return None
    meta = json.loads(side.read_text(encoding="utf-8"))
    size = meta.get("data_bytes") if isinstance(meta, dict) else None
    if side != path and isinstance(size, int) and path.stat().st_size != size:
        raise InputError(f"the sidecar {side.name} describes another version of this file ({size:,} bytes, the "
                         f"file has {path.stat().st_size:,}): an interrupted write", path=path,
                         hint="rerun the command that wrote it")
    return meta


# --------------------------------------------------------------------------- JSONL and Parquet


def _json_default(obj: Any) -> Any:
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
            f.write(json.dumps(row, ensure_ascii=False, default=_json_default))
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


# --------------------------------------------------------------------------- resumable shards


class ShardWriter:
    """Rows into numbered Parquet shards (``part-00000.parquet`` …), each written atomically and recorded
    in ``_manifest.json``; a rerun after a crash skips what is done and yields the same shards.

    Shards hold exactly ``shard_size`` rows (the last one fewer), so as long as the rerun feeds the
    not-yet-done rows in the same order, the shards are byte-identical to an uninterrupted run's.

    >>> with ShardWriter("votes/", shard_size=1000, meta=make_meta()) as w:   # doctest: +SKIP
    ...     done = w.done_ids()
    ...     for item in items:
    ...         if item["id"] not in done:
    ...             w.write(label(item))

    Rows buffered when an exception leaves the ``with`` block are dropped, not written: the rerun
    redoes them. Pass ``schema`` (a ``pyarrow.Schema``) when a column may be all-null in a shard.
    """

    def __init__(self, folder: str | Path, shard_size: int = 10_000, *, id_field: str = "id",
                 meta: Mapping[str, Any] | None = None, schema=None, resume: bool = True,
                 header: Mapping[str, Any] | None = None) -> None:
        if shard_size < 1:
            raise ConfigError(f"shard_size must be >= 1, got {shard_size}")
        self.folder = Path(folder)
        self.shard_size = shard_size
        self.id_field = id_field
        self.schema = schema
        self._buf: list[dict] = []
        self._done_ids: set[str] | None = None
        self.folder.mkdir(parents=True, exist_ok=True)
        man_path = self.folder / MANIFEST
        if resume and man_path.exists():
            try:
                self.manifest = json.loads(man_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise InputError(f"corrupt manifest: {e.msg}", path=man_path, line=e.lineno,
                                 hint="delete the folder to start over") from e
            if self.manifest.get("shard_size") != shard_size or self.manifest.get("id_field") != id_field:
                raise ConfigError(
                    f"folder was written with shard_size={self.manifest.get('shard_size')}, "
                    f"id_field={self.manifest.get('id_field')!r}; this run asks for shard_size={shard_size}, "
                    f"id_field={id_field!r}", path=man_path,
                    hint="use the same settings to resume, or a new output folder")
            if self.schema is None and self.manifest["shards"]:
                import pyarrow.parquet as pq

                self.schema = pq.read_schema(self.folder / self.manifest["shards"][0]["file"])
        else:
            for old in self.folder.glob("part-*.parquet"):
                old.unlink()
            self.manifest = {"version": 1, "shard_size": shard_size, "id_field": id_field,
                             "shards": [], "complete": False}
        self.manifest.update(header or {})  # top-level keys of the file kind using the shards (format version...)
        if meta is not None:
            self.manifest["meta"] = scrub_secrets(meta)
        self.manifest["complete"] = False
        self._save_manifest()

    @property
    def next_shard_index(self) -> int:
        """Index of the next shard to write (= number of finished shards)."""
        return len(self.manifest["shards"])

    @property
    def complete(self) -> bool:
        """True once :meth:`close` finished: every row went into a shard."""
        return bool(self.manifest.get("complete"))

    def done_ids(self) -> set[str]:
        """Ids of the rows in finished shards (read from the shards' id column)."""
        if self._done_ids is None:
            import pyarrow.parquet as pq

            ids: set[str] = set()
            for s in self.manifest["shards"]:
                col = pq.read_table(self.folder / s["file"], columns=[self.id_field]).column(0)
                ids.update(str(v) for v in col.to_pylist())
            self._done_ids = ids
        return self._done_ids

    def write(self, row: Mapping[str, Any]) -> None:
        if self.id_field not in row:
            raise InputError(f"row has no id field '{self.id_field}'", field=self.id_field,
                             hint=f"row fields: {', '.join(map(str, row))}")
        self._buf.append(dict(row))
        if len(self._buf) >= self.shard_size:
            self._flush(self._buf[: self.shard_size])
            self._buf = self._buf[self.shard_size:]

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def close(self) -> None:
        """Write the last partial shard and mark the folder complete."""
        if self._buf:
            self._flush(self._buf)
            self._buf = []
        index = self.next_shard_index
        for stray in self.folder.glob("part-*.parquet"):  # from a crash between shard rename and manifest
            if int(stray.stem.split("-")[1]) >= index:
                stray.unlink()
        for tmp in self.folder.glob(".part-*.tmp"):  # from a kill -9 mid-write
            tmp.unlink()
        self.manifest["complete"] = True
        self._save_manifest()

    def _flush(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.schema is not None:
            known = set(self.schema.names)
            extra = {k for r in rows for k in r} - known
            if extra:  # from_pylist would drop them silently
                raise InputError(f"rows have fields not in the shard schema: {', '.join(sorted(extra))}",
                                 path=self.folder, hint=f"schema fields: {', '.join(self.schema.names)}")
            try:
                table = pa.Table.from_pylist(rows, schema=self.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise InputError(f"rows do not fit the shard schema: {e}", path=self.folder,
                                 hint="pass ShardWriter(schema=...) with the full column types") from e
        else:
            table = pa.Table.from_pylist(rows)
            self.schema = table.schema
        name = f"part-{self.next_shard_index:05d}.parquet"
        with atomic_write(self.folder / name, "wb") as f:
            pq.write_table(table, f, compression="zstd")
        ids = [str(r[self.id_field]) for r in rows]
        self.manifest["shards"].append({"file": name, "rows": len(rows), "first_id": ids[0], "last_id": ids[-1]})
        self._save_manifest()
        if self._done_ids is not None:
            self._done_ids.update(ids)

    def _save_manifest(self) -> None:
        with atomic_write(self.folder / MANIFEST) as f:
            json.dump(self.manifest, f, ensure_ascii=False, indent=1, default=_json_default)
            f.write("\n")

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
