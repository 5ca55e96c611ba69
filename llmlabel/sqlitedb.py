"""One SQLite connection per thread and process, in WAL mode: what the LLM answer cache and the embedding store
share so that several processes can read and write one file at once."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


def wal_connection(local: threading.local, path: str | Path, timeout: float, schema: str) -> sqlite3.Connection:
    """This thread's connection to ``path`` (a new one after a fork: SQLite connections must not cross it), in WAL
    mode with ``schema`` applied. Raises ``sqlite3.DatabaseError`` for the caller to word."""
    conn = getattr(local, "conn", None)
    if conn is not None and getattr(local, "pid", None) == os.getpid():
        return conn
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    conn.executescript(schema)
    local.conn, local.pid = conn, os.getpid()
    return conn
