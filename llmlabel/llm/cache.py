"""Content-addressed SQLite cache of model answers: free re-runs, crash resume and replay.

The key is a SHA-256 of everything that determines an answer (engine kind, model identity, sampling
parameters, prompt, choices or JSON schema); the value is the answer as JSON. WAL mode lets several
processes read and write one file at once; every write is its own short transaction, so a process
killed mid-run loses at most the answers in flight (HTTP engines store each answer as it arrives; local engines
store each batch).

>>> cache = Cache("/tmp/llmlabel-doc.sqlite")
>>> k = cache_key({"op": "choose", "prompt": "hi"})
>>> cache.put_many({k: [0.0, -1.5]})
>>> cache.get_many([k])[k]
[0.0, -1.5]
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import CacheError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""
_CHUNK = 500  # SQLite's default limit on host parameters is 999; stay well under it


def cache_key(parts: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-able mapping (key order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def default_cache_path() -> Path:
    """``$LLMLABEL_CACHE`` if set, else ``<user cache dir>/llmlabel/llm-cache.sqlite``."""
    from ..paths import user_cache_path

    return user_cache_path("llm-cache.sqlite", "LLMLABEL_CACHE")


class Cache:
    """A key -> JSON value store in one SQLite file, safe across threads and processes."""

    def __init__(self, path: str | Path | None = None, *, timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.timeout = timeout
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create the cache folder: {e.strerror}", path=self.path.parent,
                             hint="pass --cache PATH to a writable place, or --no-cache") from e
        self._check_ours()
        self._connect()  # fail early, with a clear message, on a corrupt or unwritable file

    def _connect(self) -> sqlite3.Connection:
        from ..sqlitedb import wal_connection

        try:
            return wal_connection(self._local, self.path, self.timeout, _SCHEMA)
        except sqlite3.DatabaseError as e:
            raise self._error(e) from e

    def _check_ours(self) -> None:
        """Refuse an SQLite file of another program: ``cache clear`` would empty, and every run would add a table
        to (and switch to WAL mode), a database that is not ours. Ours holds the ``answers`` table alone (an empty
        or missing file is new). Looked at read-only, so a refused file is not touched at all."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=self.timeout)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
                cols = [r[1] for r in conn.execute("PRAGMA table_info(answers)")] if "answers" in tables else []
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            raise self._error(e) from e
        if tables - {"answers"} or (tables and cols != ["key", "value", "created"]):
            shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
            raise CacheError(f"not an llmlabel cache: this SQLite file holds other tables ({shown})", path=self.path,
                             hint="pass --cache with a file of its own (llmlabel creates it), or --no-cache")

    def _error(self, e: sqlite3.Error) -> CacheError:
        msg = str(e)
        if "locked" in msg or "busy" in msg:
            return CacheError(f"cache is locked by another process for more than {self.timeout:.0f}s",
                              path=self.path, hint="wait for the other run, or pass --cache to another file")
        if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
            return CacheError("cache file is corrupt (not an SQLite database)", path=self.path,
                              hint="delete it or pass --cache to another file; only cached answers are lost")
        return CacheError(f"cache error: {msg}", path=self.path, hint="pass --no-cache to run without it")

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Look up many keys at once; missing keys are absent from the result."""
        keys = list(keys)
        out: dict[str, Any] = {}
        conn = self._connect()
        try:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i : i + _CHUNK]
                q = f"SELECT key, value FROM answers WHERE key IN ({','.join('?' * len(chunk))})"
                for k, v in conn.execute(q, chunk):
                    out[k] = json.loads(v)
        except sqlite3.Error as e:
            raise self._error(e) from e
        return out

    def put_many(self, items: Mapping[str, Any]) -> None:
        """Store many answers in one transaction (all or none)."""
        if not items:
            return
        now = time.time()
        rows = [(k, json.dumps(v, ensure_ascii=False, separators=(",", ":")), now) for k, v in items.items()]
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO answers (key, value, created) VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise self._error(e) from e

    def __len__(self) -> int:
        try:
            return self._connect().execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        except sqlite3.Error as e:
            raise self._error(e) from e

    def clear(self) -> None:
        try:
            self._connect().execute("DELETE FROM answers")
        except sqlite3.Error as e:
            raise self._error(e) from e

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r})"
