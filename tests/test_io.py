"""Reading corpora in every format, bad-input handling, atomic writes, metadata and resumable shards."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmlabel.errors import ConfigError, InputError
from llmlabel.io import HUGE_TEXT_CHARS, read_corpus
from llmlabel.io_meta import make_meta, read_meta
from llmlabel.io_shards import ShardWriter
from llmlabel.io_write import atomic_write, write_jsonl, write_parquet

ROWS = [{"id": f"doc-{i}", "text": f"review number {i}: ünïcode ok", "stars": i % 5} for i in range(23)]


def _write_jsonl(path: Path, lines: list) -> Path:
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines))
    return path


def _write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path


def _all_formats(tmp_path: Path, rows: list[dict]) -> dict[str, Path]:
    import datasets

    paths = {
        "jsonl": _write_jsonl(tmp_path / "c.jsonl", [json.dumps(r) for r in rows]),
        "csv": _write_csv(tmp_path / "c.csv", rows),
        "tsv": _write_csv(tmp_path / "c.tsv", rows, "\t"),
        "parquet": tmp_path / "c.parquet",
        "datasets": tmp_path / "ds",
        "shards": tmp_path / "shards",
    }
    with gzip.open(tmp_path / "c.jsonl.gz", "wb") as f:
        f.write((tmp_path / "c.jsonl").read_bytes())
    paths["jsonl.gz"] = tmp_path / "c.jsonl.gz"
    write_parquet(paths["parquet"], rows)
    datasets.Dataset.from_list(rows).save_to_disk(str(paths["datasets"]))
    with ShardWriter(paths["shards"], shard_size=10) as w:
        w.write_many(rows)
    return paths


def test_every_format_gives_the_same_ids_and_texts(tmp_path):
    paths = _all_formats(tmp_path, ROWS)
    want_texts = [r["text"] for r in ROWS]
    for name, path in paths.items():
        c = read_corpus(path)
        assert c.text_field == "text", name
        assert c.texts() == want_texts, name
        assert c.ids() == [r["id"] for r in ROWS], name  # a field named "id" is the id by default
        assert read_corpus(path, id_field="stars", limit=2).ids() == ["0", "1"], name  # (later stars repeat)
        assert c.stats.rows == len(ROWS) and c.stats.kept == len(ROWS) and c.stats.done, name
        first = next(iter(c))
        assert first.id == "doc-0" and set(first.row) == {"stars"}, name  # other fields travel with the row
        no_id = read_corpus(path, keep_extra=False, text_field="text", id_field=None)
        assert no_id.ids() == [r["id"] for r in ROWS], name


def test_batches_are_bounded_and_limit_stops_early(tmp_path):
    path = _all_formats(tmp_path, ROWS)["parquet"]
    sizes = [len(b) for b in read_corpus(path, batch_size=5).iter_batches()]
    assert sizes == [5, 5, 5, 5, 3]
    c = read_corpus(path, limit=7, batch_size=5)
    assert c.ids() == [f"doc-{i}" for i in range(7)]
    assert len(read_corpus(path)) == len(ROWS)  # cheap for Parquet: from the footer
    with pytest.raises(TypeError):
        len(read_corpus(_write_jsonl(tmp_path / "x.jsonl", ['{"text": "a"}'])))


def test_text_field_is_the_only_string_column(tmp_path):
    rows = [{"n": i, "body": f"text {i}", "score": 0.5} for i in range(3)]
    j = _write_jsonl(tmp_path / "a.jsonl", [json.dumps(r) for r in rows])
    assert read_corpus(j).text_field == "body"
    write_parquet(tmp_path / "a.parquet", rows)
    assert read_corpus(tmp_path / "a.parquet").text_field == "body"
    # CSV has no types: numeric-looking columns do not count as text.
    c = read_corpus(_write_csv(tmp_path / "a.csv", rows))
    assert c.text_field == "body" and c.texts() == ["text 0", "text 1", "text 2"]
    # An id-named string column is never the text.
    k = _write_jsonl(tmp_path / "k.jsonl", [json.dumps({"id": "a1", "review_id": "r", "content": "hi"})])
    assert read_corpus(k).text_field == "content"


def test_ambiguous_text_column_lists_the_columns(tmp_path):
    rows = [{"title": "t", "body": "b", "n": 1}]
    j = _write_jsonl(tmp_path / "a.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(InputError) as e:
        read_corpus(j)
    msg = e.value.one_line()
    assert "title, body, n" in msg and "line 1" in msg and "--text-field" in msg
    write_parquet(tmp_path / "a.parquet", rows)
    with pytest.raises(InputError, match="title, body, n"):
        read_corpus(tmp_path / "a.parquet")
    assert read_corpus(j, text_field="body").texts() == ["b"]
    with pytest.raises(InputError, match="title, body, n") as e:
        read_corpus(tmp_path / "a.parquet", text_field="nope")
    assert e.value.field == "nope"


def test_malformed_line_names_file_and_line(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", ['{"text": "a"}', '', '{"text": "b"', '{"text": "c"}'])
    with pytest.raises(InputError) as e:
        read_corpus(path).texts()
    assert e.value.line == 3 and e.value.path == str(path)
    assert e.value.one_line().startswith(f"{path}:3: malformed JSON")
    assert "--skip-bad" in e.value.one_line()


def test_skip_bad_counts_and_keeps_ids_stable(tmp_path):
    lines = ['{"text": "a"}', 'not json', '{"text": "c"}', '[1, 2]', '{"other": 1}', '{"text": "f"}']
    path = _write_jsonl(tmp_path / "bad.jsonl", lines)
    c = read_corpus(path, skip_bad=True)
    assert c.ids() == ["0", "2", "5"]  # positions count the skipped rows, so ids do not shift
    assert c.texts() == ["a", "c", "f"]
    s = c.stats
    assert (s.rows, s.kept, s.bad, s.bad_lines) == (6, 3, 3, [2, 4, 5])
    assert "3 bad skipped (lines 2, 4, 5)" in s.summary()
    # Without skip_bad the same ids come back for the good rows of a fixed file.
    fixed = _write_jsonl(tmp_path / "fixed.jsonl", [ln if ln.startswith('{"text"') else '{"text": ""}' for ln in lines])
    assert read_corpus(fixed).ids() == ["0", "2", "5"]


def test_non_object_line_and_missing_field_errors(tmp_path):
    arr = _write_jsonl(tmp_path / "a.jsonl", ['{"text": "ok"}', '"just a string"'])
    with pytest.raises(InputError, match="expected a JSON object, got str") as e:
        read_corpus(arr).texts()
    assert e.value.line == 2
    miss = _write_jsonl(tmp_path / "m.jsonl", ['{"text": "ok"}', '{"body": "x", "lang": "en"}'])
    with pytest.raises(InputError) as e:
        read_corpus(miss).texts()
    assert (e.value.line, e.value.field) == (2, "text")
    assert "m.jsonl:2:" in e.value.one_line() and "available fields: body, lang" in e.value.one_line()
    rows = [{"id": "1", "text": "a"}, {"id": "2", "text": "b", "extra": "x,y"}]
    bad_csv = tmp_path / "r.csv"
    bad_csv.write_text("id,text\n1,a\n2,b,oops\n3,c\n")
    with pytest.raises(InputError, match="3 fields, the header has 2") as e:
        read_corpus(bad_csv).texts()
    assert e.value.line == 3
    assert read_corpus(bad_csv, skip_bad=True, id_field="id").ids() == ["1", "3"]
    with pytest.raises(InputError, match="no id field 'uid'"):
        read_corpus(_write_csv(tmp_path / "ok.csv", rows[:1]), id_field="uid")


def test_empty_null_and_non_string_texts(tmp_path):
    lines = ['{"text": "a"}', '{"text": ""}', '{"text": "   \\n\\t"}', '{"text": null}', '{"text": 42}',
             '{"text": ["x"]}', '{"text": "big"}']
    path = _write_jsonl(tmp_path / "e.jsonl", lines)
    with pytest.raises(InputError, match="holds a list"):
        read_corpus(path).texts()
    c = read_corpus(path, skip_bad=True)
    assert c.texts() == ["a", "42", "big"] and c.ids() == ["0", "4", "6"]
    assert (c.stats.empty, c.stats.coerced, c.stats.bad) == (3, 1, 1)
    huge = _write_jsonl(tmp_path / "h.jsonl", [json.dumps({"text": "x" * (HUGE_TEXT_CHARS + 1)})])
    c = read_corpus(huge)
    assert len(c.texts()[0]) == HUGE_TEXT_CHARS + 1 and c.stats.huge == 1  # kept, only counted


def test_non_utf8_bytes_are_repaired_and_counted(tmp_path):
    path = _write_jsonl(tmp_path / "l.jsonl", [b'{"text": "caf\xe9"}', b'{"text": "ok"}', b'{"text": "\xff\xfe x"}'])
    c = read_corpus(path)
    assert c.texts() == ["caf\ufffd", "ok", "\ufffd\ufffd x"] and c.stats.repaired == 2
    csv_path = tmp_path / "l.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfid,text\n1,caf\xe9\n2,fine\n")  # with a BOM too
    c = read_corpus(csv_path, id_field="id")
    assert c.texts() == ["caf\ufffd", "fine"] and c.ids() == ["1", "2"] and c.stats.repaired == 1
    arr = pa.array([b"ok", b"caf\xe9"], pa.binary()).view(pa.string())  # Parquet does not validate UTF-8
    pq.write_table(pa.table({"text": arr}), tmp_path / "l.parquet")
    c = read_corpus(tmp_path / "l.parquet")
    assert c.texts() == ["ok", "caf\ufffd"] and c.stats.repaired == 1


def test_csv_quoted_newlines_and_long_fields(tmp_path):
    rows = [{"id": "1", "text": "line one\nline two, with comma"}, {"id": "2", "text": "y" * 200_000}]
    c = read_corpus(_write_csv(tmp_path / "q.csv", rows), id_field="id")
    assert c.texts() == [r["text"] for r in rows]


def test_dataset_dict_splits_and_offline_hub(tmp_path):
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]}),
                               "test": datasets.Dataset.from_dict({"text": ["b", "c"]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_corpus(tmp_path / "dd").texts() == ["a"]  # train by default
    assert read_corpus(tmp_path / "dd", split="test").texts() == ["b", "c"]
    with pytest.raises(InputError, match="no split 'dev'; the dataset has: train, test"):
        read_corpus(tmp_path / "dd", split="dev")
    with pytest.raises(InputError, match="cannot load the dataset") as e:  # conftest keeps the Hub offline
        read_corpus("hf://nobody/no-such-dataset:test")
    assert e.value.path == "hf://nobody/no-such-dataset:test" and "save_to_disk" in e.value.one_line()


def test_a_plain_text_file_is_one_text_a_line(tmp_path):
    """The file a newcomer has first: blank lines are not rows, ids are the texts' positions, a BOM and CRLF are
    not part of the text, inner spaces are; .gz works as for the other line formats; fields cannot be chosen."""
    import gzip

    body = "\ufeffrefund please\r\n\n  where is my card  \r\nthird\n".encode("utf-8")
    (tmp_path / "t.txt").write_bytes(body)
    with gzip.open(tmp_path / "t.txt.gz", "wb") as f:
        f.write(body)
    for name in ("t.txt", "t.txt.gz"):
        c = read_corpus(tmp_path / name)
        b = next(c.iter_batches(10))
        assert b.ids == ["0", "1", "2"] and b.texts == ["refund please", "  where is my card  ", "third"]
    with pytest.raises(InputError, match="one text a line"):
        read_corpus(tmp_path / "t.txt", text_field="body")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_corpus(tmp_path / "nope.jsonl")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match="unknown file type '.xlsx'") as e:
        read_corpus(tmp_path / "x.xlsx")
    assert ".parquet" in e.value.one_line()
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="neither a datasets"):
        read_corpus(tmp_path / "empty_dir")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_corpus(tmp_path / "fake.parquet")


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"a": 1}])
    before = path.read_bytes()

    def rows():
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]  # no temp file left behind
    with pytest.raises(ValueError):
        with atomic_write(tmp_path / "new.txt") as f:
            f.write("partial")
            raise ValueError
    assert not (tmp_path / "new.txt").exists()
    with atomic_write(tmp_path / "new.txt") as f:
        f.write("done")
    assert (tmp_path / "new.txt").read_text() == "done"
    assert (tmp_path / "new.txt").stat().st_mode & 0o644 == 0o644  # not mkstemp's private 0600


def test_metadata_round_trips(tmp_path):
    meta = make_meta(command=["llmlabel", "label", "x.jsonl"], engine="hf:/models/tiny",
                     prompt_hashes={"sentiment": "abc123"}, usage={"prompt_tokens": 10, "max_tokens": 5})
    assert meta["llmlabel_version"] and meta["created_utc"].endswith("+00:00") and meta["python"]
    write_parquet(tmp_path / "o.parquet", {"id": ["1"], "label": ["pos"]}, meta=meta)
    assert read_meta(tmp_path / "o.parquet") == meta
    assert pq.read_table(tmp_path / "o.parquet").column("label").to_pylist() == ["pos"]
    write_jsonl(tmp_path / "o.jsonl", [{"id": "1"}], meta=meta)
    size = (tmp_path / "o.jsonl").stat().st_size  # the sidecar records what it describes
    assert read_meta(tmp_path / "o.jsonl") == {**meta, "data_bytes": size, "data_rows": 1}
    (tmp_path / "o.jsonl").write_text('{"id": "1"}\n{"id": "2"}\n')  # new rows beside the old sidecar
    with pytest.raises(InputError, match="interrupted write"):
        read_meta(tmp_path / "o.jsonl")
    write_jsonl(tmp_path / "o.jsonl", [{"id": "1"}])  # a rewrite without meta drops the stale sidecar
    assert read_meta(tmp_path / "o.jsonl") is None
    assert meta["usage"] == {"prompt_tokens": 10, "max_tokens": 5}  # token *counts* are not secrets


def test_secrets_never_reach_metadata(tmp_path, monkeypatch):
    key, tok, pw = "sk-test" + "A" * 30, "hf_" + "B" * 30, "hunter2hunter2"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("HF_TOKEN", tok)
    meta = make_meta(command=["llmlabel", "label", "--api-key", key, "--token=" + pw],
                     engine=f"openai:http://user:{pw}@127.0.0.1:8000/v1#m", api_key=key,
                     settings={"hf_token": tok, "note": f"used {tok}", "Authorization": "Bearer x"})
    assert "api_key" not in meta and meta["settings"] == {"note": "used ***"}
    write_parquet(tmp_path / "o.parquet", {"a": [1]}, meta={**meta, "openai_api_key": key})
    write_jsonl(tmp_path / "o.jsonl", [{"a": 1}], meta={**meta, "extra": key})
    with ShardWriter(tmp_path / "shards", shard_size=2, meta=meta) as w:
        w.write({"id": "1"})
    for f in tmp_path.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for secret in (key, tok, pw):
                assert secret.encode() not in data, f"{secret[:6]}… leaked into {f.name}"


def _label_rows(n: int) -> list[dict]:
    return [{"id": f"item-{i}", "label": i % 3, "conf": round(i / n, 3)} for i in range(n)]


def test_shard_writer_resumes_to_identical_shards(tmp_path):
    rows = _label_rows(47)
    with ShardWriter(tmp_path / "clean", shard_size=10) as w:
        for r in rows:
            w.write(r)

    crashed = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        with ShardWriter(crashed, shard_size=10) as w:
            for i, r in enumerate(rows):
                if i == 27:  # mid-way through the third shard
                    raise KeyboardInterrupt
                w.write(r)
    w = ShardWriter(crashed, shard_size=10)
    assert w.next_shard_index == 2 and not w.complete
    assert w.done_ids() == {r["id"] for r in rows[:20]}
    with w:
        done = w.done_ids()
        w.write_many(r for r in rows if r["id"] not in done)
    assert w.complete

    def files(d: Path):
        return sorted(p.name for p in d.iterdir() if p.name != "_manifest.json")

    assert files(crashed) == files(tmp_path / "clean") == [f"part-{i:05d}.parquet" for i in range(5)]
    for name in files(crashed):
        assert (crashed / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert read_corpus(crashed, text_field="label").ids() == [f"item-{i}" for i in range(47)]
    # A finished folder reopened: nothing left to do.
    again = ShardWriter(crashed, shard_size=10)
    assert len(again.done_ids()) == 47 and again.next_shard_index == 5


def test_shard_writer_ignores_a_shard_written_after_the_last_manifest_update(tmp_path):
    rows = _label_rows(25)
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, shard_size=10) as w:
            w.write_many(rows[:20])
            raise RuntimeError
    # A stray third shard (renamed into place, manifest not yet updated) must not count as done.
    write_parquet(tmp_path / "part-00002.parquet", rows[20:22])
    w = ShardWriter(tmp_path, shard_size=10)
    assert w.next_shard_index == 2 and len(w.done_ids()) == 20
    with w:
        w.write_many(rows[20:])
    assert pq.read_table(tmp_path / "part-00002.parquet").num_rows == 5


def test_shard_writer_refuses_other_settings_and_restarts_without_resume(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, shard_size=10) as w:
            w.write_many(_label_rows(15))
            raise RuntimeError
    with pytest.raises(ConfigError, match="shard_size=10"):
        ShardWriter(tmp_path, shard_size=20)
    w = ShardWriter(tmp_path, shard_size=20, resume=False)
    assert w.next_shard_index == 0 and w.done_ids() == set() and not list(tmp_path.glob("part-*"))
    with pytest.raises(InputError, match="no id field"):
        w.write({"label": 1})


def test_read_json_errors_name_the_file_and_line(tmp_path):
    from llmlabel.io_records import read_json

    bad = tmp_path / "priors.json"
    bad.write_text('{"a": 1,\n "b": }\n')
    with pytest.raises(InputError) as e:
        read_json(bad, what="prior file")
    assert e.value.one_line().startswith(f"{bad}:2: malformed JSON in prior file")
    with pytest.raises(InputError, match="prior file not found"):
        read_json(tmp_path / "missing.json", what="prior file")
    bad.write_text('\ufeff{"a": 1}')  # a BOM is not an error
    assert read_json(bad) == {"a": 1}


def test_atomic_write_removes_a_killed_writers_temp_but_not_a_live_writers(tmp_path):
    import os
    import subprocess
    import sys

    from llmlabel.io_write import atomic_write

    out = tmp_path / "taxonomy.yaml"
    # A writer that died without cleaning up (what kill -9 leaves), and one whose process is alive (this one's parent).
    subprocess.run([sys.executable, "-c", "import os, sys; open(os.path.join(sys.argv[1], "
                    "f'.taxonomy.yaml.{os.getpid()}.x.tmp'), 'w').write('half')", str(tmp_path)], check=True)
    live = tmp_path / f".taxonomy.yaml.{os.getppid()}.y.tmp"
    live.write_text("still writing")
    with atomic_write(out) as f:
        f.write("labels: []\n")
    assert out.read_text() == "labels: []\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "taxonomy.yaml"]
