"""``--backend ray`` on a real local Ray (2 CPUs, started once for the module): same answers as the local path,
no rows lost or doubled when a worker dies, resume after an interrupt, one-line errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from clirun import run_cli as cli

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(300)

TAXONOMY = """labels:
  - {id: refund, name: Refund, description: The customer wants money back., keyphrases: [refund, money back]}
  - {id: lost_card, name: Lost card, description: A card was lost or stolen., keyphrases: [lost my card, stolen]}
  - {id: transfer, name: Transfer, description: Questions about bank transfers., keyphrases: [transfer]}
"""
TEMPLATES = ["I want a refund for order {i}", "please give my money back ({i})", "I lost my card on day {i}",
             "my card was stolen {i} times", "my transfer {i} has not arrived", "how long does transfer {i} take",
             "hello there, item {i}", "   "]  # the blank one is skipped, as by the local reader
CHEAP_LFS = ("lfs:\n  - kind: keyphrases\n  - {name: iban, kind: regex, patterns: {transfer: ['transfer \\\\d+']}}\n"
             "  - {name: emb, kind: embedding, embedder: wordllama, threshold: 0.2}\n")
# Python LFs the actors import (their folder is on the workers' PYTHONPATH): they log every id they see, per
# process, and one of them kills its worker process the first time it meets the marked row.
HELPERS = '''
import os

def _mark(name):
    return os.path.join(os.environ["LLMLABEL_TEST_MARKS"], name)

def log_seen(item):
    with open(_mark(f"seen-{os.getpid()}.txt"), "a") as f:
        f.write(item["id"] + "\\n")
    return -1

def crash_once(item):
    if item["text"].startswith("CRASH") and not os.path.exists(_mark("crashed")):
        open(_mark("crashed"), "w").close()
        os._exit(1)  # no exception, no clean-up: what a killed worker or a lost node looks like
    return log_seen(item)
'''


@pytest.fixture(scope="module")
def marks(tmp_path_factory):
    ray = pytest.importorskip("ray")
    helpers = tmp_path_factory.mktemp("ray-helpers")
    (helpers / "ray_test_lfs.py").write_text(HELPERS)
    old = {k: os.environ.get(k) for k in ("LLMLABEL_TEST_MARKS", "PYTHONPATH")}
    os.environ["LLMLABEL_TEST_MARKS"] = str(helpers)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(helpers), str(REPO), old["PYTHONPATH"]) if p)
    sys.path.insert(0, str(helpers))
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield helpers
    ray.shutdown()
    sys.path.remove(str(helpers))
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def seen_ids(marks: Path, clear: bool = False) -> list[str]:
    out = []
    for f in marks.glob("seen-*.txt"):
        out += f.read_text().split()
        if clear:
            f.unlink()
    return out


def write_corpus(path: Path, n: int, *, crash_at: int | None = None, ids: bool = True) -> list[str]:
    """n rows (every 8th blank); returns the ids of the rows a reader keeps."""
    rows = []
    for i in range(n):
        text = "CRASH " + str(i) if i == crash_at else TEMPLATES[i % len(TEMPLATES)].format(i=i)
        rows.append({"id": f"r{i}", "text": text} if ids else {"text": text, "n": i})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [r["id"] for r in rows if r["text"].strip()] if ids else []


@pytest.fixture()
def work(tmp_path, monkeypatch):
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY)
    (tmp_path / "cheap.yaml").write_text(CHEAP_LFS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def by_id(folder: Path):
    return pq.read_table(folder).to_pandas().set_index("id").sort_index()


def assert_same_votes(a: Path, b: Path) -> None:
    ta, tb = by_id(a), by_id(b)
    assert list(ta.columns) == list(tb.columns) and list(ta.index) == list(tb.index)
    for c in ta.columns:
        if c.startswith("p:"):  # float16-rounded distributions; batch padding may move the last bit
            for x, y in zip(ta[c], tb[c]):
                assert (x is None) == (y is None) and (x is None or np.allclose(x, y, atol=2e-3)), c
        else:
            assert ta[c].tolist() == tb[c].tolist(), c


def test_import_llmlabel_does_not_import_ray():
    code = ("import sys, llmlabel, llmlabel.cli, llmlabel.scale.ray; "
            "assert 'ray' not in sys.modules, 'ray imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_cheap_lfs_give_the_local_votes(work, marks):
    from llmlabel.lf.run import label_corpus
    from llmlabel.scale.ray import label_corpus_ray

    kept = write_corpus(work / "data.jsonl", 2000)
    local = label_corpus("data.jsonl", "taxonomy.yaml", "cheap.yaml", "local", shard_size=500)
    res = label_corpus_ray("data.jsonl", "taxonomy.yaml", "cheap.yaml", "ray", shard_size=500, num_workers=2)
    assert res["rows_labeled"] == local["rows_labeled"] == len(kept) and res["shards"] == local["shards"]
    assert_same_votes(work / "local", work / "ray")
    assert by_id(work / "ray").index.tolist() == sorted(kept)
    man = json.loads((work / "ray" / "_manifest.json").read_text())
    assert man["complete"] and man["meta"]["lf_names"] == ["kw:refund", "kw:lost_card", "kw:transfer", "iban", "emb"]
    local_man = json.loads((work / "local" / "_manifest.json").read_text())
    assert man["meta"]["label_texts"] == local_man["meta"]["label_texts"] and man["meta"]["label_texts"]
    # the embedding LF really voted (not all abstains), and the shards are in corpus order as locally
    assert (by_id(work / "ray")["v:emb"] >= 0).mean() > 0.5
    assert pq.read_table(work / "ray" / "part-00000.parquet").column("id").to_pylist() == kept[:500]


@pytest.mark.slow  # a real LLM's forward passes: CI runs it as its own step (.ci/run)
def test_prompted_lf_on_a_tiny_llm_gives_the_local_votes(work, marks, tiny_qwen2, capsys):
    (work / "llm.yaml").write_text(f"lfs:\n  - kind: keyphrases\n  - name: zs\n    kind: prompted\n"
                                   f"    model: 'hf:{tiny_qwen2}'\n    none_choice: none of these\n")
    kept = write_corpus(work / "data.jsonl", 90)
    assert cli("label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "llm.yaml", "-o", "local", "-q",
               "--shard-size", "30") == 0
    from llmlabel.llm import usage_log
    from llmlabel.scale.ray import label_corpus_ray

    usage_log.reset()
    # its own cache file: every answer is computed by the actors, none is read from the local run's cache
    res = label_corpus_ray("data.jsonl", "taxonomy.yaml", "llm.yaml", "ray", shard_size=30, num_workers=2,
                           cache=work / "ray-cache.sqlite")
    assert_same_votes(work / "local", work / "ray")
    u = usage_log.get("label")  # came back from the actors
    assert u.requests == res["usage"]["requests"] == len(kept) and u.cache_hits == 0 and u.prompt_tokens > 0
    assert (work / "ray-cache.sqlite").stat().st_size > 0
    votes = by_id(work / "ray")["v:zs"]
    assert set(votes) <= {-1, 0, 1, 2} and (votes >= 0).any()


def test_a_worker_killed_mid_run_loses_and_doubles_no_row(work, marks):
    from llmlabel.scale.ray import label_corpus_ray

    seen_ids(marks, clear=True)
    (marks / "crashed").unlink(missing_ok=True)
    kept = write_corpus(work / "data.jsonl", 1200, crash_at=803)
    (work / "crash.yaml").write_text("lfs:\n  - kind: keyphrases\n  - {name: crash, kind: python, "
                                     "function: 'ray_test_lfs:crash_once'}\n")
    res = label_corpus_ray("data.jsonl", "taxonomy.yaml", "crash.yaml", "votes", shard_size=300, batch_size=100,
                           num_workers=2)
    assert (marks / "crashed").exists()  # a worker did die on the marked row
    ids = pq.read_table(work / "votes").column("id").to_pylist()
    assert len(ids) == len(set(ids)) == len(kept) == res["rows_labeled"] and sorted(ids) == sorted(kept)
    assert res["errors"]["crash"] == 0, res
    assert set(seen_ids(marks)) == set(kept)  # the batch of the dead worker was redone by another one


def test_an_interrupted_run_resumes_with_the_missing_shards_only(work, marks):
    from llmlabel.scale.ray import label_corpus_ray

    kept = write_corpus(work / "data.jsonl", 1200)
    (work / "seen.yaml").write_text("lfs:\n  - kind: keyphrases\n  - {name: seen, kind: python, "
                                    "function: 'ray_test_lfs:log_seen'}\n")
    label_corpus_ray("data.jsonl", "taxonomy.yaml", "seen.yaml", "full", shard_size=150)
    total = json.loads((work / "full" / "_manifest.json").read_text())["shards"]
    written = []

    def ctrl_c_after_two_shards(n):  # the progress callback: the driver is interrupted as by Ctrl-C
        written.append(n)
        if sum(written) >= 300:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        label_corpus_ray("data.jsonl", "taxonomy.yaml", "seen.yaml", "votes", shard_size=150,
                         progress=ctrl_c_after_two_shards)
    man = json.loads((work / "votes" / "_manifest.json").read_text())
    assert not man["complete"] and 2 <= len(man["shards"]) < len(total)
    done = set(pq.read_table(work / "votes").column("id").to_pylist())
    seen_ids(marks, clear=True)
    res = label_corpus_ray("data.jsonl", "taxonomy.yaml", "seen.yaml", "votes", shard_size=150)
    again = seen_ids(marks)
    assert sorted(again) == sorted(set(kept) - done)  # each missing row once, no finished one redone
    assert res["rows_labeled"] == len(kept) - len(done)
    assert_same_votes(work / "full", work / "votes")
    assert pq.read_table(work / "full").equals(pq.read_table(work / "votes"))  # the same shards, row for row


def test_bad_input_and_unreachable_cluster_are_one_line_errors(work, marks, capsys):
    write_corpus(work / "noid.jsonl", 20, ids=False)
    assert cli("label", "noid.jsonl", "-t", "taxonomy.yaml", "--lfs", "cheap.yaml", "-o", "v", "--backend", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "noid.jsonl" in err and "id column" in err
    write_corpus(work / "data.jsonl", 20)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    assert cli("label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "cheap.yaml", "-o", "v", "--backend", "ray",
               "--address", f"ray://127.0.0.1:{port}") == 2
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - t0 < 15
    assert err.startswith("error:") and "\n" not in err and f"no Ray cluster answers at ray://127.0.0.1:{port}" in err
    assert cli("label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "cheap.yaml", "-o", "v",
               "--num-workers", "2") == 2
    assert "only apply with --backend ray" in capsys.readouterr().err


def test_predict_on_ray_equals_local(work, marks, tiny_qwen2):
    from llmlabel.distill.api import distill
    from llmlabel.io_meta import make_meta
    from llmlabel.io_write import write_parquet

    rng = np.random.default_rng(0)
    words = {"pos": ["great", "love", "excellent"], "neg": ["awful", "hate", "terrible"], "neu": ["table", "paper"]}
    rows = []
    for i in range(60):
        c = ["pos", "neg", "neu"][i % 3]
        p = np.full(3, 0.1)
        p[["neg", "neu", "pos"].index(c)] = 0.8
        rows.append({"text": " ".join(rng.choice(words[c], 3)) + f" item {i}", "label": c, "proba": p.tolist(),
                     "confidence": 0.8})
    write_parquet(work / "labeled.parquet", rows, meta=make_meta(classes=["neg", "neu", "pos"]))
    distill(work / "labeled.parquet", work / "m", epochs=1)
    pool = [w for ws in words.values() for w in ws]
    (work / "data.jsonl").write_text("".join(json.dumps({"id": f"x{i}", "text": " ".join(rng.choice(pool, 2))}) + "\n"
                                             for i in range(240)))
    assert cli("predict", "m", "data.jsonl", "-o", "local.jsonl") == 0
    assert cli("predict", "m", "data.jsonl", "-o", "ray.jsonl", "--backend", "ray", "--num-workers", "2",
               "--batch-size", "64") == 0
    local = [json.loads(x) for x in (work / "local.jsonl").read_text().splitlines()]
    ray_ = [json.loads(x) for x in (work / "ray.jsonl").read_text().splitlines()]
    assert len(local) == 240 and [(r["id"], r["label"]) for r in local] == [(r["id"], r["label"]) for r in ray_]
    # other batch sizes move the last float bits of the student's scores, nothing more
    assert np.allclose([r["confidence"] for r in local], [r["confidence"] for r in ray_], atol=1e-5)
    # a cascade deferring the unsure items to the tiny LLM: same deferrals and answers
    cascade = ["--cascade-llm", f"hf:{tiny_qwen2}", "--threshold", "0.5"]
    assert cli("predict", "m", "data.jsonl", "-o", "lc.jsonl", *cascade) == 0
    assert cli("predict", "m", "data.jsonl", "-o", "rc.jsonl", *cascade, "--backend", "ray", "--batch-size", "120") == 0
    lc = [json.loads(x) for x in (work / "lc.jsonl").read_text().splitlines()]
    rc = [json.loads(x) for x in (work / "rc.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"], r["deferred"]) for r in lc] == [(r["id"], r["label"], r["deferred"]) for r in rc]
    assert 0 < sum(r["deferred"] for r in rc) < len(rc)


def test_taxonomy_fits_on_a_sample_and_assigns_every_item_on_ray(work, marks):
    from llmlabel.embed import load_embedder
    from llmlabel.scale.ray import assign_taxonomy_ray
    from llmlabel.artifacts.taxonomy import load_taxonomy
    from llmlabel.taxonomy.induce import embed_texts

    kept = write_corpus(work / "data.jsonl", 1000)
    res, paths, full = assign_taxonomy_ray("data.jsonl", work / "tax" / "taxonomy.yaml", sample=400, max_labels=4,
                                           embedder="wordllama", num_workers=2, batch_size=256)
    assert full["fitted_on"] == len(res.ids) == 400 and full["items"] == len(kept)
    rows = [json.loads(x) for x in paths["assignments"].read_text().splitlines()]
    assert [r["id"] for r in rows] == kept  # every item once, in corpus order
    # the same per-item rule in this process gives the same labels
    texts = {json.loads(x)["id"]: json.loads(x)["text"] for x in (work / "data.jsonl").read_text().splitlines()}
    labels, scores = full["assigner"].assign(embed_texts(load_embedder("wordllama"), [texts[i] for i in kept]))
    assert [r["label"] for r in rows] == labels
    assert np.allclose([r["score"] for r in rows], scores, atol=1e-3)
    tax = load_taxonomy(paths["taxonomy"])
    shares = {lab.id: lab.share for lab in tax.leaves()}
    for lid, share in shares.items():
        assert share == pytest.approx(labels.count(lid) / len(labels), abs=1e-4)
    assert len(set(labels) - {"other"}) >= 3  # the four kinds of text are told apart


def test_backend_ray_at_the_top_of_a_pipeline_reaches_taxonomy_and_label(work, marks):
    from llmlabel.pipeline import PipelineSpec, plan, run_pipeline

    stages = [{"taxonomy": {"max-labels": 3}}, {"label": {"lfs": "cheap.yaml", "num-workers": 1}}, {"aggregate": {}}]
    spec = PipelineSpec.model_validate({"corpus": "data.jsonl", "workdir": "run", "backend": "ray",
                                        "ray": {"num-workers": 2}, "stages": stages})
    call = {st.kind: c for st, c, _ in plan(spec)}
    assert call["taxonomy"]["backend"] == "ray" and call["taxonomy"]["num_workers"] == 2
    assert call["label"]["backend"] == "ray" and call["label"]["num_workers"] == 1  # the stage's own setting wins
    assert "backend" not in call["aggregate"]
    # run the label stage for real (taxonomy on Ray has its own test above)
    write_corpus(work / "data.jsonl", 400)
    (work / "run").mkdir()
    (work / "run" / "taxonomy.yaml").write_text(TAXONOMY)
    one = PipelineSpec.model_validate({"corpus": "data.jsonl", "workdir": "run", "backend": "ray",
                                       "stages": [{"label": {"lfs": "cheap.yaml"}}]})
    run_pipeline(one, echo=lambda s: None)
    man = json.loads((work / "run" / "votes" / "_manifest.json").read_text())
    assert man["complete"] and man["meta"]["backend"] == "ray" and len(by_id(work / "run" / "votes")) == 350
