"""A content-addressed embedding store on disk: each text is encoded once per embedder, across runs and stages.

Layout of the store folder (default: ``embeddings/`` in the user cache folder, beside the LLM cache)::

    index.sqlite      (embedder identity, text hash) -> (shard, row, checksum); shards with their last use
    shards/N.f16      float16 rows, appended by the one process that created shard N, memory-mapped to read

Why it survives ``kill -9`` and concurrent writers: a process only ever appends to shards it created itself
(their ids come from SQLite, so two processes never share one), and it writes the rows and fsyncs them
*before* the index transaction that makes them visible. A killed writer leaves at most unindexed bytes at a
shard's end. Every read is checked (the row lies inside the file, and its 64-bit checksum matches the one
indexed with it), so a truncated or overwritten shard yields misses, which are recomputed and rewritten,
never wrong vectors. Space is bounded: past ``max_bytes`` the least recently used shards are deleted whole.

>>> store = EmbeddingStore("/tmp/llmlabel-doc-store")                                   # doctest: +SKIP
>>> store.put("minilm:...", [b"0123456789abcdef"], np.ones((1, 4), np.float16))           # doctest: +SKIP
>>> store.get("minilm:...", 4, [b"0123456789abcdef"])[0].tolist()                          # doctest: +SKIP
[True]
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import CacheError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embedders (
    id INTEGER PRIMARY KEY, identity TEXT UNIQUE NOT NULL, name TEXT NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shards (
    id INTEGER PRIMARY KEY AUTOINCREMENT, embedder INTEGER NOT NULL, rows INTEGER NOT NULL DEFAULT 0,
    used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    embedder INTEGER NOT NULL, hash BLOB NOT NULL, shard INTEGER NOT NULL, row INTEGER NOT NULL,
    checksum INTEGER NOT NULL, PRIMARY KEY (embedder, hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_by_shard ON vectors (shard);
"""
_CHUNK = 500  # host parameters per statement (SQLite's default limit is 999)
DEFAULT_MAX_BYTES = 4 * 1024**3
SHARD_BYTES = 64 * 1024**2  # eviction frees whole shards: small enough to keep the bound tight
_USED_EVERY = 30.0  # seconds between "last used" updates of a shard by one process (reads stay read-only)

# Fixed odd multipliers for the row checksum (one per float16 lane): a weighted sum mod 2^64 of the raw bits.
_W = np.random.default_rng(20240229).integers(1, 2**63, size=8192, dtype=np.uint64) | np.uint64(1)


def checksum(rows: np.ndarray) -> np.ndarray:
    """(n,) int64 checksums of float16 rows (vectorised; zeros, garbage and truncation all change it)."""
    bits = np.ascontiguousarray(rows, dtype=np.float16).view(np.uint16).astype(np.uint64)
    if bits.shape[1] > len(_W):
        raise ValueError(f"vectors of dimension {bits.shape[1]} exceed the store's {len(_W)}")
    with np.errstate(over="ignore"):
        return (bits * _W[: bits.shape[1]]).sum(axis=1, dtype=np.uint64).view(np.int64)


def default_store_path() -> Path:
    """``$LLMLABEL_EMBED_CACHE`` if set, else ``<user cache dir>/llmlabel/embeddings``."""
    from ..paths import user_cache_path

    return user_cache_path("embeddings", "LLMLABEL_EMBED_CACHE")


def default_max_bytes() -> int:
    """``$LLMLABEL_EMBED_CACHE_GB`` (a number of GiB) if set, else 4 GiB."""
    raw = os.environ.get("LLMLABEL_EMBED_CACHE_GB")
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        return max(0, int(float(raw) * 1024**3))
    except ValueError:
        raise CacheError(f"LLMLABEL_EMBED_CACHE_GB must be a number of GiB, got {raw!r}") from None


class _Writer:
    """The shard this process appends to for one embedder (never shared with another process)."""

    def __init__(self, shard: int, path: Path, rows: int, max_rows: int) -> None:
        self.shard, self.path, self.rows, self.max_rows, self.pid = shard, path, rows, max_rows, os.getpid()


class EmbeddingStore:
    """(embedder identity, 16-byte text hash) -> float16 vector, in one folder shared by processes."""

    def __init__(self, path: str | Path | None = None, *, max_bytes: int | None = None, timeout: float = 60.0,
                 shard_bytes: int = SHARD_BYTES) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self.timeout, self.shard_bytes = timeout, int(shard_bytes)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._writers: dict[int, _Writer] = {}
        self._maps: dict[int, np.memmap] = {}
        self._ids: dict[str, int] = {}
        self._touched: dict[int, float] = {}
        try:
            (self.path / "shards").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(f"cannot create the embedding store folder: {e.strerror}", path=self.path,
                             hint="pass --embed-cache PATH to a writable place, or --no-embed-cache") from e
        self._conn()

    # --------------------------------------------------------------------------------------- plumbing
    def _conn(self) -> sqlite3.Connection:
        from ..sqlitedb import wal_connection

        try:
            return wal_connection(self._local, self.path / "index.sqlite", self.timeout, _SCHEMA)
        except sqlite3.DatabaseError as e:
            raise self._error(e) from e

    def _error(self, e: sqlite3.Error) -> CacheError:
        msg = str(e)
        if "locked" in msg or "busy" in msg:
            return CacheError(f"embedding store is locked by another process for more than {self.timeout:.0f}s",
                              path=self.path, hint="wait for the other run, or pass --embed-cache to another folder")
        if "not a database" in msg or "malformed" in msg:
            return CacheError("embedding store index is corrupt", path=self.path / "index.sqlite",
                              hint="llmlabel cache clear --embeddings, or pass --no-embed-cache")
        return CacheError(f"embedding store error: {msg}", path=self.path, hint="pass --no-embed-cache to run without it")

    def _write(self, fn):
        """Run ``fn(conn)`` in one IMMEDIATE transaction (all or nothing) and return its result."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out
        except sqlite3.Error as e:
            raise self._error(e) from e

    def _shard_path(self, shard: int) -> Path:
        return self.path / "shards" / f"{shard:08d}.f16"

    def embedder_id(self, identity: str, name: str = "", dim: int = 0) -> int:
        """The store's integer id for an embedder identity (registered on first use)."""
        if identity not in self._ids:
            def register(conn):
                conn.execute("INSERT OR IGNORE INTO embedders (identity, name, dim) VALUES (?, ?, ?)",
                             (identity, name or identity[:40], int(dim)))
                return conn.execute("SELECT id FROM embedders WHERE identity = ?", (identity,)).fetchone()[0]

            self._ids[identity] = self._write(register)
        return self._ids[identity]

    # --------------------------------------------------------------------------------------- reading
    def _rows(self, shard: int, dim: int, need: int) -> np.ndarray | None:
        """The shard's rows as a read-only memory map covering at least ``need`` rows, or None."""
        mm = self._maps.get(shard)
        if mm is None or len(mm) < need:
            p = self._shard_path(shard)
            try:
                n = p.stat().st_size // (2 * dim)
                mm = np.memmap(p, dtype=np.float16, mode="r", shape=(n, dim)) if n else None
            except (OSError, ValueError):
                mm = None
            if mm is None:
                self._maps.pop(shard, None)
                return None
            self._maps[shard] = mm
        return mm

    def get(self, identity: str, dim: int, hashes: Sequence[bytes], *, name: str = "") -> tuple[np.ndarray, np.ndarray]:
        """``(found (n,) bool, vectors (n, dim) float16)`` for ``hashes``; rows not found are zeros.

        An index entry whose row is missing from its shard, or whose bits fail the checksum, counts as not
        found and is dropped from the index, so the caller recomputes and rewrites it.
        """
        n = len(hashes)
        found, out = np.zeros(n, dtype=bool), np.zeros((n, dim), dtype=np.float16)
        if not n:
            return found, out
        emb = self.embedder_id(identity, name, dim)
        pos = {h: i for i, h in enumerate(hashes)}
        hits: list[tuple[int, int, int, int]] = []  # (position, shard, row, checksum)
        conn = self._conn()
        try:
            keys = list(pos)
            for a in range(0, len(keys), _CHUNK):
                chunk = keys[a : a + _CHUNK]
                q = f"SELECT hash, shard, row, checksum FROM vectors WHERE embedder = ? AND hash IN ({','.join('?' * len(chunk))})"
                hits.extend((pos[h], s, r, c) for h, s, r, c in conn.execute(q, [emb, *chunk]))
        except sqlite3.Error as e:
            raise self._error(e) from e
        if not hits:
            return found, out
        at, shard, row, check = (np.asarray(c, dtype=np.int64) for c in zip(*hits))
        bad: list[tuple[int, int, bytes]] = []  # (shard, row, hash): deleted only if still pointing there
        for s in np.unique(shard):  # one vectorised read per shard
            sel = np.flatnonzero(shard == s)
            mm = self._rows(int(s), dim, int(row[sel].max()) + 1)
            inside = np.zeros(len(sel), dtype=bool) if mm is None else row[sel] < len(mm)
            ok = sel[inside]
            if len(ok):
                vecs = np.asarray(mm[row[ok]])
                good = checksum(vecs) == check[ok]
                out[at[ok[good]]] = vecs[good]
                found[at[ok[good]]] = True
                bad.extend((int(s), int(row[i]), hashes[at[i]]) for i in ok[~good])
            bad.extend((int(s), int(row[i]), hashes[at[i]]) for i in sel[~inside])
        if bad:
            self._forget(emb, bad)
        self._touch(np.unique(shard[found[at]]).tolist())
        return found, out

    def _forget(self, emb: int, bad: list[tuple[int, int, bytes]]) -> None:
        try:  # a writer elsewhere may have rewritten the key meanwhile: delete only the entry that failed
            self._write(lambda c: c.executemany("DELETE FROM vectors WHERE embedder = ? AND hash = ? AND shard = ? "
                                                "AND row = ?", [(emb, h, s, r) for s, r, h in bad]))
        except CacheError:
            pass  # best effort: the entries stay invalid and are checked (and skipped) again next time

    def _touch(self, shards: list[int]) -> None:
        """Mark shards as used now (for LRU eviction), at most every ``_USED_EVERY`` seconds per shard."""
        now = time.time()
        stale = [s for s in shards if now - self._touched.get(s, 0.0) > _USED_EVERY]
        if not stale:
            return
        try:
            self._write(lambda c: c.execute(f"UPDATE shards SET used = ? WHERE id IN ({','.join('?' * len(stale))})",
                                            [now, *stale]))
        except CacheError:
            return  # a busy store only delays the LRU bookkeeping
        self._touched.update(dict.fromkeys(stale, now))

    # --------------------------------------------------------------------------------------- writing
    def _writer(self, emb: int, dim: int, n: int) -> _Writer:
        w = self._writers.get(emb)
        if w is None or w.pid != os.getpid() or (w.rows and w.rows + n > w.max_rows):
            max_rows = max(1, self.shard_bytes // (2 * dim))
            shard = self._write(lambda c: c.execute("INSERT INTO shards (embedder, rows, used) VALUES (?, 0, ?)",
                                                    (emb, time.time())).lastrowid)
            w = self._writers[emb] = _Writer(shard, self._shard_path(shard), 0, max_rows)
        return w

    def put(self, identity: str, hashes: Sequence[bytes], vectors: np.ndarray, *, name: str = "") -> None:
        """Store float16 ``vectors`` under ``hashes``: data written and fsynced first, then indexed."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        if not len(hashes):
            return
        dim = vectors.shape[1]
        emb = self.embedder_id(identity, name, dim)
        with self._lock:
            a = 0
            while a < len(hashes):
                w = self._writer(emb, dim, 1)
                b = min(len(hashes), a + max(1, w.max_rows - w.rows))
                if self._append(emb, w, list(hashes[a:b]), vectors[a:b]):
                    a = b
                else:  # the shard was evicted or cleared meanwhile: start a new one
                    self._writers.pop(emb, None)
        if self.max_bytes and self.size_bytes() > self.max_bytes:
            self.evict()

    def _append(self, emb: int, w: _Writer, hashes: list[bytes], vecs: np.ndarray) -> bool:
        fd = os.open(w.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, vecs.tobytes(), w.rows * vecs.shape[1] * 2)
            os.fsync(fd)
        finally:
            os.close(fd)
        start, checks = w.rows, checksum(vecs).tolist()

        def index(conn) -> bool:
            if conn.execute("SELECT 1 FROM shards WHERE id = ?", (w.shard,)).fetchone() is None:
                return False
            conn.executemany("INSERT OR REPLACE INTO vectors (embedder, hash, shard, row, checksum) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [(emb, h, w.shard, start + i, c) for i, (h, c) in enumerate(zip(hashes, checks))])
            conn.execute("UPDATE shards SET rows = ?, used = ? WHERE id = ?", (start + len(hashes), time.time(), w.shard))
            return True

        ok = self._write(index)
        if ok:
            w.rows = start + len(hashes)
        return ok

    # --------------------------------------------------------------------------------------- bounds
    def size_bytes(self) -> int:
        """Bytes of the indexed shards (rows x dim x 2)."""
        try:
            r = self._conn().execute("SELECT COALESCE(SUM(s.rows * e.dim * 2), 0) FROM shards s "
                                     "JOIN embedders e ON e.id = s.embedder").fetchone()
        except sqlite3.Error as e:
            raise self._error(e) from e
        return int(r[0])

    def evict(self, max_bytes: int | None = None) -> int:
        """Delete least recently used shards until the store is within ``max_bytes`` (default: its limit). A shard
        holds at most ``shard_bytes``, so each eviction frees room for many writes. Returns the shards deleted."""
        target = self.max_bytes if max_bytes is None else int(max_bytes)

        def pick(conn) -> list[int]:
            rows = conn.execute("SELECT s.id, s.rows * e.dim * 2 FROM shards s JOIN embedders e ON e.id = s.embedder "
                                "ORDER BY s.used, s.id").fetchall()
            total, gone = sum(b for _, b in rows), []
            for sid, b in rows:
                if total <= target:
                    break
                gone.append(sid)
                total -= b
            for a in range(0, len(gone), _CHUNK):
                chunk = gone[a : a + _CHUNK]
                marks = ",".join("?" * len(chunk))
                conn.execute(f"DELETE FROM vectors WHERE shard IN ({marks})", chunk)
                conn.execute(f"DELETE FROM shards WHERE id IN ({marks})", chunk)
            return gone

        gone = self._write(pick)
        self._sweep()
        return len(gone)

    def _sweep(self) -> None:
        """Delete shard files that no index row names any more (evicted, or orphaned by a crash)."""
        try:
            live = {r[0] for r in self._conn().execute("SELECT id FROM shards")}
        except sqlite3.Error as e:
            raise self._error(e) from e
        for p in (self.path / "shards").glob("*.f16"):
            try:
                if p.stem.isdigit() and int(p.stem) not in live:
                    p.unlink()
                    self._maps.pop(int(p.stem), None)
            except OSError:
                pass

    # --------------------------------------------------------------------------------------- reporting
    def info(self) -> dict:
        """Entries, bytes (indexed and on disk), the limit, and per embedder: name, dim, entries."""
        try:
            conn = self._conn()
            per = conn.execute("SELECT e.name, e.dim, e.identity, COUNT(v.hash) FROM embedders e "
                               "LEFT JOIN vectors v ON v.embedder = e.id GROUP BY e.id ORDER BY e.id").fetchall()
        except sqlite3.Error as e:
            raise self._error(e) from e
        disk = sum(p.stat().st_size for p in (self.path / "shards").glob("*.f16") if p.is_file())
        return {"path": str(self.path), "entries": sum(r[3] for r in per), "bytes": self.size_bytes(),
                "disk_bytes": disk, "max_bytes": self.max_bytes,
                "embedders": [{"name": n, "dim": d, "identity": i, "entries": c} for n, d, i, c in per if c]}

    def __len__(self) -> int:
        try:
            return int(self._conn().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        except sqlite3.Error as e:
            raise self._error(e) from e

    def clear(self) -> None:
        """Forget every vector and delete every shard (a writer elsewhere starts a new shard on its next put)."""
        self._write(lambda c: (c.execute("DELETE FROM vectors"), c.execute("DELETE FROM shards")))
        self._writers.clear()
        self._sweep()

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.path)!r})"
