"""Resumable Parquet shards: the writer long labeling runs stream their rows through.

Rows go into numbered shards (``part-00000.parquet`` ...), each written atomically and recorded in the folder's
``_manifest.json`` (with the run's provenance); a rerun after a kill reads the manifest, skips the finished rows
and writes byte-identical shards. Single files are written by :mod:`llmlabel.io_write`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError
from .io_meta import MANIFEST, scrub_secrets
from .io_write import atomic_write, json_default

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
            json.dump(self.manifest, f, ensure_ascii=False, indent=1, default=json_default)
            f.write("\n")

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
