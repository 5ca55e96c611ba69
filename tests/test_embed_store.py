"""The embedding store and the store-backed embedders: each text is encoded once per model, across LFs, stages and
runs; the store stays correct when a writer is killed or two write at once, and it is bounded."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from clirun import run_cli as cli
from faults import TAXONOMY
from llmlabel.embed import EmbeddingStore, embed_log, load_embedder, use_embed_store
from llmlabel.embed.store import checksum
from llmlabel.embed.stored import StoredEmbedder, forget_memos

ROOT = Path(__file__).resolve().parents[1]
DIM = 8


def _vec(i: int) -> np.ndarray:
    """The one right vector for key i (content-addressed: every writer of key i writes this)."""
    return np.random.default_rng(i).standard_normal(DIM).astype(np.float16)


def _key(i: int) -> bytes:
    return int(i).to_bytes(16, "big")


WRITER = """
import sys, numpy as np
from llmlabel.embed.store import EmbeddingStore
path, start, stop, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
st = EmbeddingStore(path, shard_bytes=4096)
for a in range(start, stop, step):
    ids = range(a, min(a + step, stop))
    st.put("test-model", [i.to_bytes(16, "big") for i in ids],
           np.stack([np.random.default_rng(i).standard_normal(8).astype(np.float16) for i in ids]))
print("done", flush=True)
"""


def _writer(path: Path, start: int, stop: int, step: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(start), str(stop), str(step)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_all_right(store: EmbeddingStore, n: int) -> np.ndarray:
    """Every vector the store returns for keys 0..n-1 is the right one; returns which were found."""
    found, vecs = store.get("test-model", DIM, [_key(i) for i in range(n)])
    for i in np.flatnonzero(found):
        assert np.array_equal(vecs[i], _vec(i)), f"key {i}: the store returned a wrong vector"
    return found


@pytest.fixture()
def texts():
    tag = uuid.uuid4().hex[:8]  # texts no earlier test embedded: the process-wide memo cannot answer them
    return [f"my card {tag} number {i} was lost" for i in range(40)] + [f"refund {tag} {i}" for i in range(40)]


@pytest.fixture()
def counted(monkeypatch):
    """The bare WordLlama model, counting the texts it really encodes."""
    forget_memos()
    bare = load_embedder("wordllama", store=False)
    seen = []
    real = type(bare)._encode

    def count(texts):
        seen.extend(texts)
        return real(bare, texts)

    monkeypatch.setattr(bare, "_encode", count)
    return seen


def test_second_lf_on_the_same_embedder_encodes_nothing_even_without_the_store(texts, counted):
    from llmlabel.lf.apply import apply_lfs
    from llmlabel.lf.embedding import EmbeddingLF

    labels = {"lost": ["lost card"], "refund": ["refund please"]}
    a = EmbeddingLF("a", labels, embedder="wordllama", threshold=0.1)
    b = EmbeddingLF("b", labels, embedder="wordllama", threshold=0.3)
    with use_embed_store(no_store=True):
        apply_lfs([a], texts, labels=["lost", "refund"])
        first = len(counted)
        L = apply_lfs([b], texts, labels=["lost", "refund"])
    assert first == len(texts) + 2  # the corpus and the two label texts, once
    assert len(counted) == first  # the second LF: no encode at all
    assert (L.votes[:, 0] >= 0).any()


def test_vectors_are_the_same_from_the_model_the_memo_and_the_store(tmp_path, texts):
    bare = load_embedder("wordllama", store=False)
    cold = StoredEmbedder(bare, store=tmp_path / "s").encode(texts)
    warm = StoredEmbedder(bare, store=tmp_path / "s").encode(texts)  # new memo: all from the store
    off = StoredEmbedder(bare, store=False).encode(texts)
    assert np.array_equal(cold, warm) and np.array_equal(cold, off)
    assert np.allclose(cold, bare.encode(texts), atol=2e-3)  # float16 rounding only
    assert np.allclose(np.linalg.norm(cold, axis=1), 1.0, atol=1e-6)


def test_rerun_into_a_new_folder_encodes_nothing(tmp_path, monkeypatch, texts, counted, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY)
    (tmp_path / "lfs.yaml").write_text("lfs:\n  - {kind: keyphrases}\n"
                                       "  - {name: e1, kind: embedding, embedder: wordllama, threshold: 0.2}\n"
                                       "  - {name: e2, kind: embedding, embedder: wordllama, threshold: 0.4}\n")
    args = ["label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-q", "--embed-cache", "store"]
    embed_log.reset()
    assert cli(*args, "-o", "votes1") == 0
    first = len(counted)
    assert first >= len(texts)
    forget_memos()  # a new process would start with an empty memo: only the store can answer
    embed_log.reset()
    assert cli(*args, "-o", "votes2") == 0
    assert len(counted) == first  # nothing encoded the second time
    err = capsys.readouterr().err
    assert f"embeddings (wordllama): 0 encoded" in err and f"{len(texts) + 3:,} from the store" in err
    assert cli("cache", "info", "--embed-cache", "store") == 0
    assert "wordllama (256-d)" in capsys.readouterr().out


def test_a_killed_writer_leaves_a_store_that_never_returns_a_wrong_vector(tmp_path):
    path = tmp_path / "store"
    EmbeddingStore(path)  # create the index before the writer races to
    p = _writer(path, 0, 200_000, 50)
    deadline = time.time() + 60
    while time.time() < deadline:  # let it write some shards, then kill it without warning
        time.sleep(0.3)
        if len(EmbeddingStore(path)) > 2000:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    store = EmbeddingStore(path)
    found = _check_all_right(store, 200_000)
    assert found.sum() > 2000


def test_bad_entries_are_ignored_and_recomputed(tmp_path, texts):
    bare = load_embedder("wordllama", store=False)
    emb = StoredEmbedder(bare, store=tmp_path / "s")
    want = emb.encode(texts)
    store = emb.store
    shards = sorted((tmp_path / "s" / "shards").glob("*.f16"))
    assert len(shards) == 1
    # truncate the shard (a lost tail), flip bits in the first row, and index a row that has no data at all
    data = bytearray(shards[0].read_bytes())
    data[:4] = bytes(4 * [0xFF])
    shards[0].write_bytes(bytes(data[: len(data) // 2]))
    conn = sqlite3.connect(tmp_path / "s" / "index.sqlite")
    emb_id, shard = conn.execute("SELECT embedder, shard FROM vectors LIMIT 1").fetchone()
    conn.execute("INSERT INTO vectors VALUES (?, ?, ?, ?, ?)", (emb_id, b"x" * 16, shard, 10**6, 0))
    conn.commit()
    conn.close()
    store._maps.clear()
    found, _ = store.get(emb.identity, emb.dim, [b"x" * 16])
    assert not found.any()
    again = StoredEmbedder(bare, store=store)
    got = again.encode(texts)
    assert np.array_equal(got, want)  # the bad ones recomputed, the good half read back
    assert 0 < again.counts.encoded < len(texts) and again.counts.store_hits > 0
    third = StoredEmbedder(bare, store=store)
    assert np.array_equal(third.encode(texts), want) and third.counts.encoded == 0  # rewritten


def test_two_processes_writing_at_once_store_the_right_vectors(tmp_path):
    path = tmp_path / "store"
    EmbeddingStore(path)
    procs = [_writer(path, 0, 6000, 100), _writer(path, 3000, 9000, 70)]  # overlapping keys
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    found = _check_all_right(EmbeddingStore(path), 9000)
    assert found.all()


def test_the_size_limit_evicts_the_least_recently_used_shards(tmp_path):
    store = EmbeddingStore(tmp_path / "s", max_bytes=2 * 10 * DIM * 2, shard_bytes=10 * DIM * 2)  # 2 shards of 10
    batch = {name: range(a, a + 10) for name, a in (("A", 0), ("B", 100), ("C", 200))}

    def put(name):
        ids = batch[name]
        store.put("test-model", [_key(i) for i in ids], np.stack([_vec(i) for i in ids]))

    put("A")
    put("B")
    assert _check_all_right(store, 10).all()  # reading A makes B the least recently used
    put("C")
    assert store.size_bytes() <= store.max_bytes
    found = _check_all_right(store, 300)
    assert found[0:10].all() and found[200:210].all() and not found[100:110].any()
    assert len(list((tmp_path / "s" / "shards").glob("*.f16"))) == 2


def test_checksum_sees_truncation_and_garbage():
    rows = np.stack([_vec(i) for i in range(5)])
    c = checksum(rows)
    assert np.array_equal(checksum(rows.copy()), c)
    assert not (checksum(np.zeros_like(rows)) == c).any()
    bad = rows.copy()
    bad.view(np.uint16)[:, 3] ^= 1
    assert not (checksum(bad) == c).any()


def test_identity_changes_with_the_weights(tmp_path):
    from llmlabel.embed.embedders import _model_source

    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "1_Pooling" / "config.json").write_text('{"mean": true}')
    a = _model_source(str(folder), None)
    assert a[0] == str(folder.resolve()) and _model_source(str(folder), None) == a
    (folder / "model.safetensors").write_bytes(b"weights-22")
    b = _model_source(str(folder), None)
    (folder / "1_Pooling" / "config.json").write_text('{"mean": false}')
    assert len({a, b, _model_source(str(folder), None)}) == 3
    wl = load_embedder("wordllama")
    assert wl.identity == wl.bare.identity and "wordllama:256:" in wl.identity


def test_a_copied_encoder_reads_the_vectors_its_original_stored(tmp_path, texts):
    """A model folder's encoder/ is a copy of the run's tuned encoder (without its halves/): known by its content,
    not its path, the copy finds in the store what the original embedded, so `predict` does not embed again the
    texts `distill` embedded with the same weights; other weights are another identity."""
    import shutil

    from llmlabel.embed.embedders import UNREAD, minilm_path

    original = tmp_path / "run" / "encoder"
    shutil.copytree(minilm_path(), original)
    shutil.copytree(original / "1_Pooling", original / "halves" / "half0")  # not part of the model
    copy = tmp_path / "model" / "encoder"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns(*UNREAD, "halves"))
    (original / "part.json").write_text('{"fingerprint": "f"}')  # a half still staged keeps its fit's record
    store = tmp_path / "store"
    a, b = load_embedder(str(original), store=store), load_embedder(str(copy), store=store)
    assert a.identity == b.identity
    x = a.encode(texts)
    y = b.encode(texts)
    assert (b.counts.encoded, b.counts.store_hits) == (0, len(set(texts))) and np.array_equal(x, y)
    from llmlabel.embed.embedders import _model_source

    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", ', "note": 1}', 1))
    assert _model_source(str(copy), None)[1] != _model_source(str(original), None)[1]  # other bytes, other digest


def test_label_picks_the_embedder_by_corpus_size_when_lfs_yaml_names_none():
    from llmlabel.lf.run import default_embedder
    from llmlabel.lf.spec import LFSpecFile

    def spec():
        return LFSpecFile.model_validate({"lfs": [
            {"kind": "keyphrases"}, {"name": "e", "kind": "embedding"}, {"name": "k", "kind": "knn"},
            {"name": "named", "kind": "embedding", "embedder": "minilm"}, {"name": "sf", "kind": "setfit"}]})

    big, small = spec(), spec()
    assert "wordllama (50,000 texts" in default_embedder(big, lambda: 50_000)
    assert [getattr(s, "embedder", None) for s in big.lfs] == [None, "wordllama", "wordllama", "minilm", "minilm"]
    assert default_embedder(small, lambda: 1_000).startswith("minilm (1,000 texts")
    assert [s.embedder for s in small.lfs[1:3]] == ["minilm", "minilm"]
    named = LFSpecFile.model_validate({"lfs": [{"name": "e", "kind": "embedding", "embedder": "wordllama"}]})
    assert default_embedder(named, lambda: pytest.fail("the corpus need not be counted")) is None


def test_store_options_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text('{"text": "my card is lost"}\n{"text": "refund please"}\n')
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY)
    (tmp_path / "lfs.yaml").write_text("lfs:\n  - {name: e, kind: embedding, embedder: wordllama}\n")
    base = ["label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-q"]
    assert cli(*base, "-o", "v0", "--embed-cache", "s", "--no-embed-cache") == 2
    assert "not both" in capsys.readouterr().err
    assert cli(*base, "-o", "v1", "--no-embed-cache") == 0
    assert not (tmp_path / "s").exists() and not (tmp_path / "default-embeddings").exists()
    assert cli(*base, "-o", "v2", "--embed-cache", "s") == 0
    assert len(EmbeddingStore(tmp_path / "s")) >= 2
    capsys.readouterr()
    assert cli("cache", "clear", "--embeddings", "--embed-cache", "s", "--yes") == 0
    assert len(EmbeddingStore(tmp_path / "s")) == 0 and not list((tmp_path / "s" / "shards").glob("*.f16"))
