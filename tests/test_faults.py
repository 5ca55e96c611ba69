"""Nothing lost, nothing silent: bad input for every command, kill -9 mid-run, a dying LLM server.

The bad-input table lives in tests/faults.py (eval/reliability.py runs this file and counts the cases).
Kill points and delays come from seeded RNGs, so a failure reproduces; ``FAULTS_KILL_POINTS`` (default 2)
sets how many kill points each long-running command gets (label gets one more).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import faults  # noqa: E402

KILL_POINTS = int(os.environ.get("FAULTS_KILL_POINTS", "1"))
REPO = Path(__file__).resolve().parents[1]
SMALL = 12  # rows of small.jsonl, the corpus of the tests that run an LLM


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = faults.build_workspace(tmp_path_factory.mktemp("faults") / "ws")
    (root / "small.jsonl").write_text("".join(json.dumps(r) + "\n" for r in faults.corpus_rows(SMALL)))
    return root


@pytest.mark.parametrize("command,case", faults.pairs(), ids=[f"{c}-{k}" for c, k in faults.pairs()])
def test_bad_input(ws, command, case):
    o = faults.run_case(ws, command, case)
    assert o.passed, f"{command} / {case}: {o.problems}\n{o.stderr[-2000:]}"


def test_every_command_is_in_the_table():
    from llmlabel.cli import app

    import typer.main

    names = set(typer.main.get_command(app).commands) - {"engines", "choose", "cache"}
    assert names <= set(faults.BY_NAME), f"commands without bad-input cases: {names - set(faults.BY_NAME)}"


# ----------------------------------------------------------------------------------- predict keeps every row

def test_predict_gives_every_row_an_output_row_and_counts_empty_ones(ws):
    rows = faults.corpus_rows(12)
    for i in (2, 5, 9):
        rows[i]["text"] = " \n " if i != 5 else ""
    rows[7]["text"] = None
    (ws / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = faults.cli(["predict", "model", "mixed.jsonl", "-o", "mixed_preds.jsonl"], ws)
    assert code == 0, err
    from llmlabel.artifacts.predictions import read_predictions

    pred = read_predictions(ws / "mixed_preds.jsonl")
    assert pred.ids == [r["id"] for r in rows]
    empty = [r["id"] for r in pred.rows if r["label"] is None]
    assert empty == ["r2", "r5", "r7", "r9"] and all(r["reason"] == "empty text" for r in pred.rows if r["label"] is None)
    assert "4 empty texts without a label" in out and "12 kept" in out


def test_xmc_gives_empty_texts_a_row_with_a_reason(ws):
    rows = faults.corpus_rows(6)
    rows[1]["text"] = "  "
    (ws / "mixed6.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = faults.cli(["xmc", "mixed6.jsonl", "-l", "labels.txt", "-o", "m6.jsonl", "--retriever", "bm25",
                               "--no-index-cache"], ws)
    assert code == 0, err
    got = [json.loads(x) for x in (ws / "m6.jsonl").read_text().splitlines()]
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    assert got[1] == {"id": "r1", "labels": [], "scores": [], "reason": "empty text"} and got[0]["labels"]


# ----------------------------------------------------------------------------------- the votes folder

def _label(ws, data, out, *extra):
    return faults.cli(["label", data, "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-o", out, "-q", *extra], ws)


def test_votes_folder_resumes_only_the_same_job(ws):
    rows = faults.corpus_rows()
    assert _label(ws, "data.jsonl", "vj")[0] == 0
    before = pq.read_table(ws / "vj")
    code, _, err = _label(ws, "data.jsonl", "vj")
    assert code == 0 and "labeled 0 new items" in err  # same job: resumed, nothing redone
    # Edited texts under the same ids: refused in one line, the old votes untouched.
    edited = [dict(r, text=r["text"].replace("refund", "transfer")) for r in rows]
    (ws / "edited.jsonl").write_text("".join(json.dumps(r) + "\n" for r in edited))
    code, _, err = _label(ws, "edited.jsonl", "vj")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "another corpus" in err and "vj" in err
    assert pq.read_table(ws / "vj").equals(before)
    assert _label(ws, "edited.jsonl", "vj", "--overwrite")[0] == 0
    assert _label(ws, "edited.jsonl", "fresh_edited")[0] == 0
    assert pq.read_table(ws / "vj").equals(pq.read_table(ws / "fresh_edited"))


def test_a_changed_lf_or_taxonomy_relabels_instead_of_reusing_stale_votes(ws):
    (ws / "lfs2.yaml").write_text("lfs:\n  - name: kw\n    kind: keyword\n    patterns: {refund: [refund]}\n")
    args = ["label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs2.yaml", "-q"]
    assert faults.cli([*args, "-o", "vc"], ws)[0] == 0
    (ws / "lfs2.yaml").write_text("lfs:\n  - name: kw\n    kind: keyword\n    patterns: {refund: [money]}\n")
    code, _, err = faults.cli([*args, "-o", "vc"], ws)  # same LF name, other patterns
    assert code == 0 and "relabeling from the start: lfs.yaml changed" in err
    assert faults.cli([*args, "-o", "vc_fresh"], ws)[0] == 0
    assert pq.read_table(ws / "vc").equals(pq.read_table(ws / "vc_fresh"))
    (ws / "tax2.yaml").write_text(faults.TAXONOMY.replace("wants money back", "asks for its money back"))
    code, _, err = faults.cli(["label", "data.jsonl", "-t", "tax2.yaml", "--lfs", "lfs2.yaml", "-q", "-o", "vc"], ws)
    assert code == 0 and "the taxonomy changed" in err


def test_two_writers_of_one_votes_folder_get_a_lock_and_a_clear_message(ws):
    from llmlabel.artifacts.votes import VotesWriter
    from llmlabel.errors import OutputError

    with VotesWriter(ws / "vl", lf_names=["a"], labels=["x", "y"]):
        # a second process: flock is per open file, so another interpreter sees the lock as held
        probe = ("from llmlabel.artifacts.votes import VotesWriter\nfrom llmlabel.errors import OutputError\n"
                 f"try:\n    VotesWriter({str(ws / 'vl')!r}, lf_names=['a'], labels=['x', 'y'])\n"
                 "except OutputError as e:\n    print(e.one_line())\n")
        res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
        assert f"another process (pid {os.getpid()}) is writing this votes folder" in res.stdout, res.stderr
        with pytest.raises(OutputError):
            VotesWriter(ws / "vl", lf_names=["a"], labels=["x", "y"])
    assert not (ws / "vl" / "_lock").exists()
    VotesWriter(ws / "vl", lf_names=["a"], labels=["x", "y"]).close()  # released: the next writer gets it


# ----------------------------------------------------------------------------------- kill -9, then rerun

KILLER_LF = """import os, signal
SEEN = [0]
def lf(item):
    SEEN[0] += 1
    if SEEN[0] == int(os.environ.get("KILL_AT_ITEM", "0")):
        os.kill(os.getpid(), signal.SIGKILL)
    return -1
"""


def _cache_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        return sum(db.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables if t != "meta")


def _temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp")
                  or p.name.startswith(".llmlabel-write-check"))


def _sub(argv, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "llmlabel.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": f"{REPO}:{cwd}", **(env or {})})


def test_label_killed_at_random_points_resumes_to_the_same_votes_without_paying_twice(ws, tiny_qwen2):
    """A python LF SIGKILLs the process at a seeded random item; the prompted LF's answers reach the cache
    batch by batch, so the rerun asks the model only for what the killed run had not stored."""
    from llmlabel.llm import usage_log

    (ws / "killer_lf.py").write_text(KILLER_LF)
    (ws / "lfs_kill.yaml").write_text("lfs:\n  - kind: keyphrases\n  - name: killer\n    kind: python\n"
                                      "    function: 'killer_lf:lf'\n  - name: zs\n    kind: prompted\n"
                                      "    none_choice: none of these\n")
    base = ["label", "small.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs_kill.yaml", "-m", f"hf:{tiny_qwen2}",
            "--shard-size", "4", "-q"]
    sys.path.insert(0, str(ws))
    code, _, err = faults.cli([*base, "-o", "k_ref", "--cache", "k_ref.sqlite"], ws)
    assert code == 0, err
    total = _cache_rows(ws / "k_ref.sqlite")
    assert total == SMALL
    rng = random.Random(16)
    for point in sorted(rng.sample(range(2, SMALL), KILL_POINTS + 1)):
        out, cache = f"k_{point}", ws / f"k_{point}.sqlite"
        killed = _sub([*base, "-o", out, "--cache", cache], ws, env={"KILL_AT_ITEM": str(point)})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        stored = _cache_rows(cache)
        usage_log.reset()
        code, _, err = faults.cli([*base, "-o", out, "--cache", cache], ws)
        assert code == 0, err
        assert pq.read_table(ws / out).equals(pq.read_table(ws / "k_ref")), point
        assert _cache_rows(cache) == total  # every answer stored once
        misses = usage_log.get("label").cache_misses
        assert misses == total - stored, (point, misses, total, stored)  # stored answers were not paid again
        assert _temp_files(ws / out) == [], point


def _kill_after(argv, cwd, delay: float):
    p = subprocess.Popen([sys.executable, "-m", "llmlabel.cli", *map(str, argv)], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)


def _labeled_content(path: Path):
    t = pq.read_table(path)
    return t.replace_schema_metadata(None)


def _model_content(folder: Path):
    from llmlabel.distill.export import load_student

    return load_student(folder).predict_proba([r["text"] for r in faults.corpus_rows()])


LONG_RUNS = {
    # command: (argv with {out}, how to compare two outputs)
    "taxonomy": (["taxonomy", "data.jsonl", "-o", "{out}/taxonomy.yaml", "--max-labels", "2", "--embedder",
                  "wordllama", "-q"], lambda p: (Path(p) / "taxonomy.yaml").read_text()),
    "aggregate": (["aggregate", "votes", "-t", "taxonomy.yaml", "--method", "ds", "-o", "{out}/labeled.parquet"],
                  lambda p: _labeled_content(Path(p) / "labeled.parquet")),
    "distill": (["distill", "labeled.parquet", "-o", "{out}/model", "--min-per-class", "1", "--epochs", "1"],
                lambda p: _model_content(Path(p) / "model")),
    "run": (["run", "{out}/pipeline.yaml"], lambda p: _labeled_content(Path(p) / "runs" / "labeled.parquet")),
}


def _prepare(ws: Path, out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if command == "run":
        (out / "runs").mkdir(exist_ok=True)
        (out / "runs" / "taxonomy.yaml").write_text(faults.TAXONOMY)
        (out / "pipeline.yaml").write_text(f"name: k\ncorpus: {ws / 'data.jsonl'}\nworkdir: {out / 'runs'}\nstages:\n"
                                           f"  - label: {{lfs: {ws / 'lfs.yaml'}, shard_size: 8, quiet: true}}\n"
                                           "  - aggregate: {method: mv}\n")


@pytest.mark.parametrize("command", sorted(LONG_RUNS))
def test_killed_at_a_random_moment_the_rerun_equals_an_uninterrupted_run(ws, command):
    """SIGKILL after a seeded random share of an uninterrupted run's wall time; outputs are written atomically
    (and the pipeline records a stage only once it finished), so the rerun's output is the uninterrupted one
    and no temp file is left."""
    argv, content = LONG_RUNS[command]
    ref = ws / "kill" / command / "ref"
    _prepare(ws, ref, command)
    t0 = time.perf_counter()
    res = _sub([a.replace("{out}", str(ref)) for a in argv], ws)
    took = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    want = content(ref)
    rng = random.Random(f"kill-{command}")
    for i in range(KILL_POINTS):
        out = ws / "kill" / command / f"k{i}"
        _prepare(ws, out, command)
        _kill_after([a.replace("{out}", str(out)) for a in argv], ws, delay=rng.uniform(0.3, 0.95) * took)
        code, _, err = faults.cli([a.replace("{out}", str(out)) for a in argv], ws)
        assert code == 0, (i, err)
        got = content(out)
        if isinstance(want, np.ndarray):
            np.testing.assert_allclose(got, want, atol=1e-6)
        elif hasattr(want, "equals"):
            assert got.equals(want), i
        else:
            assert got == want, i
        assert _temp_files(out) == [], (i, _temp_files(out))


# ----------------------------------------------------------------------------------- a dying LLM server

FAULT_LF = """SEEN = [0]
HOOK = [None, 0]
def lf(item):
    SEEN[0] += 1
    if HOOK[0] is not None and SEEN[0] == HOOK[1]:
        HOOK[0]()
    return -1
"""


@pytest.mark.parametrize("fault", ["stall", "status"])
def test_a_server_that_stalls_or_dies_mid_run_fails_in_one_line_and_the_rerun_finishes_identically(
        ws, tiny_qwen2, monkeypatch, fault):
    from openai_server import OpenAIServer

    from llmlabel.llm import usage_log

    (ws / "fault_lf.py").write_text(FAULT_LF)
    monkeypatch.syspath_prepend(str(ws))
    sys.modules.pop("fault_lf", None)
    import fault_lf

    (ws / "lfs_srv.yaml").write_text("lfs:\n  - kind: keyphrases\n  - name: hook\n    kind: python\n"
                                     "    function: 'fault_lf:lf'\n  - name: zs\n    kind: prompted\n"
                                     "    none_choice: none of these\n")
    with OpenAIServer(tiny_qwen2) as srv:
        base = ["label", "small.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs_srv.yaml", "-m",
                f"openai:{srv.url}#tiny", "--shard-size", "4", "-q"]
        code, _, err = faults.cli([*base, "-o", f"s_ref_{fault}", "--cache", f"s_ref_{fault}.sqlite"], ws)
        assert code == 0, err
        total = _cache_rows(ws / f"s_ref_{fault}.sqlite")
        out, cache = f"s_{fault}", f"s_{fault}.sqlite"

        def break_server():  # from the third shard on, every request hangs (or fails) past all retries
            if fault == "stall":
                srv.inject("stall", n=10_000, seconds=60)
            else:
                srv.inject("status", n=10_000, status=503)

        fault_lf.SEEN[0], fault_lf.HOOK[:] = 0, [break_server, 9]
        monkeypatch.setenv("LLMLABEL_OPENAI_TIMEOUT", "4")  # the faulty run only: the others use the defaults
        monkeypatch.setenv("LLMLABEL_OPENAI_RETRIES", "1")
        code, _, err = faults.cli([*base, "-o", out, "--cache", cache], ws)
        monkeypatch.delenv("LLMLABEL_OPENAI_TIMEOUT")
        monkeypatch.delenv("LLMLABEL_OPENAI_RETRIES")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "tries" in lines[0], err
        man = json.loads((ws / out / "_manifest.json").read_text())
        assert len(man["shards"]) < 3 and not man["complete"], (man, err)  # finished shards kept, not marked done
        fault_lf.HOOK[0] = None
        srv.reset()
        stored = _cache_rows(ws / cache)
        usage_log.reset()
        code, _, err = faults.cli([*base, "-o", out, "--cache", cache], ws)
        assert code == 0, err
        assert pq.read_table(ws / out).equals(pq.read_table(ws / f"s_ref_{fault}"))
        assert _cache_rows(ws / cache) == total
        assert usage_log.get("label").cache_misses == total - stored  # nothing stored before the outage is paid again
        assert _temp_files(ws / out) == []


# ----------------------------------------------------------------------------------- the io floor helpers

def test_check_writable_refuses_before_any_work_and_leaves_nothing(tmp_path):
    from llmlabel.errors import OutputError
    from llmlabel.io_write import check_writable

    (tmp_path / "f").write_text("x")
    for bad, folder in ((tmp_path / "f" / "out.jsonl", False), (tmp_path / "f", True), (tmp_path, False),
                        (faults.UNWRITABLE_DIR / "x.jsonl", False)):
        with pytest.raises(OutputError) as e:
            check_writable(bad, folder=folder)
        assert str(bad) in e.value.one_line()
    assert check_writable(tmp_path / "new" / "deeper" / "o.jsonl") == tmp_path / "new" / "deeper" / "o.jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # no folder made, no probe file left


def test_read_corpus_keep_empty_yields_empty_texts_in_place(tmp_path):
    from llmlabel.io import read_corpus

    (tmp_path / "c.jsonl").write_text('{"text": "a"}\n{"text": "  "}\n{"text": null}\n{"text": "b"}\n')
    c = read_corpus(tmp_path / "c.jsonl", keep_empty=True)
    assert c.texts() == ["a", "", "", "b"] and c.ids() == ["0", "1", "2", "3"]
    assert c.stats.empty == 2 and "2 of them empty" in c.stats.summary()
    assert read_corpus(tmp_path / "c.jsonl").texts() == ["a", "b"]
