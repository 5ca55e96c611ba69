"""The cache is what makes re-runs free and killed runs resumable: test exactly that."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from llmlabel.errors import CacheError
from llmlabel.llm.cache import Cache, cache_key


def test_key_is_stable_and_order_independent():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_round_trip_and_missing_keys(cache_path):
    c = Cache(cache_path)
    c.put_many({"k1": {"text": "x"}, "k2": [0.5, None]})
    got = c.get_many(["k1", "k2", "absent"])
    assert got == {"k1": {"text": "x"}, "k2": [0.5, None]}
    assert len(Cache(cache_path)) == 2  # a second handle sees the committed rows


def test_many_keys_in_one_lookup(cache_path):
    c = Cache(cache_path)
    c.put_many({f"k{i}": i for i in range(3000)})  # more than SQLite's parameter limit
    got = c.get_many([f"k{i}" for i in range(3000)])
    assert len(got) == 3000 and got["k2999"] == 2999


def _writer(path, start, n):
    c = Cache(path)
    for i in range(start, start + n, 10):
        c.put_many({f"p{j}": j for j in range(i, i + 10)})


def test_concurrent_writers_lose_nothing(cache_path):
    Cache(cache_path)  # create the schema first
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(cache_path), k * 1000, 300)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(Cache(cache_path)) == 900


def test_corrupt_file_gives_clear_error(cache_path):
    cache_path.write_bytes(b"this is not an sqlite database at all" * 100)
    with pytest.raises(CacheError) as e:
        Cache(cache_path)
    msg = e.value.one_line()
    assert str(cache_path) in msg and "corrupt" in msg and "\n" not in msg


def test_locked_file_gives_clear_error(cache_path):
    Cache(cache_path).put_many({"a": 1})
    holder = sqlite3.connect(str(cache_path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        c = Cache(cache_path, timeout=0.2)
        with pytest.raises(CacheError, match="locked"):
            c.put_many({"b": 2})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
