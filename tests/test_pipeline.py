"""`llmlabel run`: a pipeline file runs the same library calls as the step-by-step commands, checkpointed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from llmlabel.errors import ConfigError
from llmlabel.pipeline import load_pipeline, plan, run_pipeline
from llmlabel.stages import STAGES, option_names
from clirun import run_cli as cli

ROOT = Path(__file__).resolve().parents[1]


def _corpus(tmp_path: Path, n: int = 120) -> Path:
    rows = [json.loads(ln) for ln in (ROOT / "examples" / "banking77_sample.jsonl").read_text().splitlines()[:n]]
    p = tmp_path / "corpus.jsonl"
    p.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    return p


def _spec(tmp_path: Path, stages: list, n: int = 120) -> Path:
    spec = {"name": "t", "corpus": str(_corpus(tmp_path, n)), "workdir": str(tmp_path / "work"), "stages": stages}
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


def test_short_and_long_stage_forms_give_the_same_call(tmp_path):
    a = load_pipeline(_spec(tmp_path, [{"taxonomy": {"max-labels": 5, "embedder": "wordllama"}}]))
    b = load_pipeline(_spec(tmp_path, [{"kind": "taxonomy", "options": {"max_labels": 5, "embedder": "wordllama"}}]))
    call = a.stages[0].call(a.corpus, a.workdir)
    assert call == b.stages[0].call(b.corpus, b.workdir)
    assert call == {"corpus": a.corpus, "output": f"{a.workdir}/taxonomy.yaml", "max_labels": 5,
                    "embedder": "wordllama", "progress": True}


def test_stage_options_are_the_library_functions_parameters():
    import inspect

    for kind, st in STAGES.items():
        params = inspect.signature(st.load()).parameters
        assert set(st.wired) <= set(params), kind  # every wired argument exists
        assert {o.replace("-", "_") for o in option_names(kind)} <= set(params), kind
    assert "max-labels" in option_names("taxonomy") and "cache" in option_names("label")


@pytest.mark.parametrize("stages, field", [([{"taxnomy": {}}], "stages[0].kind"), ([], "stages"),
                                           (["taxonomy", "taxonomy"], "stages")])
def test_bad_spec_names_the_field(tmp_path, stages, field):
    with pytest.raises(ConfigError) as e:
        load_pipeline(_spec(tmp_path, stages))
    assert field in e.value.one_line() and "pipe.yaml:" in e.value.one_line()  # file:line: field


def test_bad_yaml_names_the_line(tmp_path):
    p = tmp_path / "pipe.yaml"
    p.write_text("corpus: a.jsonl\nstages:\n  - taxonomy: {max-labels: [\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    assert "pipe.yaml:" in e.value.one_line()


def test_a_misspelt_or_mistyped_option_is_one_line_naming_file_line_stage_and_option(tmp_path, capsys):
    p = tmp_path / "pipe.yaml"
    p.write_text(f"corpus: {_corpus(tmp_path)}\nworkdir: {tmp_path / 'w'}\nstages:\n"
                 "  - taxonomy: {max-labels: 3}\n  - label:\n      lfs: x.yaml\n      shard-sise: 10\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    msg = e.value.one_line()
    assert msg.startswith(f"{p}:7:") and "stage label" in msg and "'shard-sise'" in msg
    assert "did you mean shard-size" in msg and "options:" in msg and "no-cache" in msg
    # through the CLI: exit 2, one line on stderr, nothing run
    assert cli("run", p) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error:") and "stage label" in err
    assert not (tmp_path / "w").exists()
    p.write_text("corpus: x.jsonl\nstages:\n  - kind: taxonomy\n    options:\n      max-labels: many\n")
    msg = pytest.raises(ConfigError, load_pipeline, p).value.one_line()
    assert f"{p}:5:" in msg and "stage taxonomy: option max-labels" in msg and "integer" in msg
    p.write_text("corpus: x.jsonl\nstages:\n  - xmc: {k: 3}\n")
    msg = pytest.raises(ConfigError, load_pipeline, p).value.one_line()
    assert "stage xmc: option labels: required option is missing" in msg


def test_rerun_skips_finished_stages_and_an_option_change_reruns(tmp_path, capsys):
    spec_path = _spec(tmp_path, [{"taxonomy": {"max-labels": 4, "embedder": "wordllama", "quiet": True}}])
    spec = load_pipeline(spec_path)
    first = run_pipeline(spec, echo=lambda s: None)
    out = Path(spec.workdir) / "taxonomy.yaml"
    assert not first[0].get("skipped") and out.exists()
    before = out.read_bytes()
    assert [ok for _, _, ok in plan(spec)] == [True]
    assert run_pipeline(spec, echo=lambda s: None)[0]["skipped"]
    assert out.read_bytes() == before

    # Progress bars on or off change nothing it writes; editing a real option makes it (and only then) run again.
    spec.stages[0].options["quiet"] = False
    assert [ok for _, _, ok in plan(spec)] == [True]
    spec.stages[0].options["max-labels"] = 3
    assert [ok for _, _, ok in plan(spec)] == [False]
    # The CLI: a dry run prints what it would do and runs nothing.
    spec_path.write_text(yaml.safe_dump(json.loads(spec.model_dump_json())))
    assert cli("run", spec_path, "--dry-run") == 0
    assert capsys.readouterr().out.startswith("run   taxonomy: induce_taxonomy(corpus=")
    assert out.read_bytes() == before


def _step_by_step(tmp_path: Path, corpus: Path, lfs: Path) -> Path:
    w = tmp_path / "steps"
    assert cli("taxonomy", corpus, "-o", w / "taxonomy.yaml", "--max-labels", 4, "--embedder", "wordllama", "-q") == 0
    assert cli("label", corpus, "-t", w / "taxonomy.yaml", "--lfs", lfs, "-o", w / "votes", "-q") == 0
    assert cli("aggregate", w / "votes", "-o", w / "labeled.parquet", "--method", "mv") == 0
    assert cli("distill", w / "labeled.parquet", "-o", w / "model", "--student", "static") == 0
    assert cli("predict", w / "model", corpus, "-o", w / "predictions.jsonl") == 0
    return w


def _jsonl(p: Path) -> list[dict]:
    return [json.loads(ln) for ln in p.read_text().splitlines()]


def test_run_gives_the_step_by_step_files_and_a_student_that_learnt_the_soft_labels(tmp_path):
    from llmlabel.distill.data import read_labeled
    from llmlabel.artifacts.taxonomy import load_taxonomy

    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n  - {name: emb, kind: embedding, embedder: wordllama}\n")
    spec = load_pipeline(_spec(tmp_path, [
        {"taxonomy": {"max-labels": 4, "embedder": "wordllama", "quiet": True}},
        {"label": {"lfs": str(lfs), "quiet": True}},
        {"aggregate": {"method": "mv"}},
        {"distill": {"student": "static"}},
        {"predict": {}},
    ], n=300))
    run_pipeline(spec, echo=lambda s: None)
    work, steps = Path(spec.workdir), _step_by_step(tmp_path, Path(spec.corpus), lfs)

    # The same taxonomy, votes, labels and predictions as the commands a user types one by one.
    ta, tb = load_taxonomy(work / "taxonomy.yaml"), load_taxonomy(steps / "taxonomy.yaml")
    assert [lab.model_dump() for lab in ta.labels] == [lab.model_dump() for lab in tb.labels]
    la, lb = pq.read_table(work / "labeled.parquet"), pq.read_table(steps / "labeled.parquet")
    assert la.column_names == lb.column_names and la.equals(lb)
    assert _jsonl(work / "predictions.jsonl") == _jsonl(steps / "predictions.jsonl")
    ma, mb = (json.loads((d / "model" / "metrics.json").read_text()) for d in (work, steps))
    for m in (ma, mb):
        m.pop("train_seconds")
    assert ma == mb

    # What the user relies on: the student predicts the aggregate labels it was trained on ...
    lab = la.to_pandas().set_index("id")
    preds = {r["id"]: r["label"] for r in _jsonl(work / "predictions.jsonl")}
    covered = lab.index[~lab["uncovered"]]
    assert len(preds) == len(lab) == 300 and len(covered) > 200
    agree = np.mean([preds[i] == lab.loc[i, "label"] for i in covered])
    assert agree >= 0.8, agree
    # ... from soft targets: the per-class probabilities the label model wrote, not one-hot labels ...
    probs = lab[[f"p:{c}" for c in ma["classes"]]].to_numpy()
    assert not np.allclose(probs, np.eye(len(ma["classes"]))[probs.argmax(1)])  # the aggregate is soft
    d = read_labeled(work / "labeled.parquet")
    assert d.classes == ma["classes"]
    want = lab.loc[[str(i) for i in d.ids], [f"p:{c}" for c in d.classes]].to_numpy()
    assert np.allclose(d.targets(True), want, atol=1e-6)  # the student's targets are those probabilities
    # ... and the metrics and the model card say so.
    assert ma["soft"] is True and ma["n_train"] == len(d)
    assert ma["training"]["targets"] == "soft" and ma["training"]["source_kind"] == "llmlabel.labeled"
    assert "soft" in (work / "model" / "README.md").read_text().lower()

    # Editing the LF file reruns label and everything after it, not taxonomy.
    assert all(ok for _, _, ok in plan(spec))
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n")
    assert [ok for _, _, ok in plan(spec)] == [True, False, False, False, False]


def test_ctrl_c_in_a_stage_exits_130_with_the_resume_hint_and_keeps_finished_stages(tmp_path, monkeypatch, capsys,
                                                                                    request):
    (tmp_path / "stopper.py").write_text(
        "import os, signal\n"
        "def stop(item):\n"
        "    if os.environ.get('STOP'):\n"
        "        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to this process\n"
        "    return -1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # A shell starts background jobs with SIGINT ignored (and Python keeps that): restore what a terminal has.
    import signal
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, prev))
    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n  - {name: stop, kind: python, function: 'stopper:stop'}\n")
    p = _spec(tmp_path, [{"taxonomy": {"max-labels": 4, "embedder": "wordllama", "quiet": True}},
                         {"label": {"lfs": str(lfs), "quiet": True}}])
    monkeypatch.setenv("STOP", "1")
    assert cli("run", p) == 130
    err = capsys.readouterr().err
    assert "label: interrupted" in err and "rerun to resume" in err and "code 130" not in err
    state = tmp_path / "work" / ".pipeline"
    assert (state / "taxonomy.json").is_file() and not (state / "label.json").exists()
    monkeypatch.delenv("STOP")
    assert cli("run", p) == 0
    err = capsys.readouterr().err
    assert "taxonomy: up to date, skipped" in err and (state / "label.json").is_file()


def test_bad_input_found_inside_a_stage_is_one_line_naming_the_stage(tmp_path, capsys):
    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {name: k, kind: keyword, patterns: {no_such_label: [x]}}\n")
    p = _spec(tmp_path, [{"taxonomy": {"max-labels": 3, "embedder": "wordllama", "quiet": True}},
                         {"label": {"lfs": str(lfs), "quiet": True}}])
    assert cli("run", p) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "stage label: " in err[-1] and "no_such_label" in err[-1]
    assert (tmp_path / "work" / ".pipeline" / "taxonomy.json").is_file()  # the finished stage stays done
    assert not (tmp_path / "work" / ".pipeline" / "label.json").exists()


def test_predict_stage_runs_the_cascade_with_the_prompted_labeler(tmp_path, tiny_qwen2):
    from llmlabel.llm import usage_log

    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n")
    spec = load_pipeline(_spec(tmp_path, [
        {"taxonomy": {"max-labels": 3, "embedder": "wordllama", "quiet": True}},
        {"label": {"lfs": str(lfs), "quiet": True}},
        {"aggregate": {"method": "mv"}},
        {"distill": {"student": "static"}},
        {"predict": {"cascade-llm": f"hf:{tiny_qwen2}", "threshold": 0.999, "no-cache": True}},
    ], n=60))
    before = usage_log.get("label").requests
    run_pipeline(spec, echo=lambda s: None)
    rows = _jsonl(Path(spec.workdir) / "predictions.jsonl")
    deferred = [r for r in rows if r["deferred"]]
    assert len(rows) == 60 and deferred  # unsure items went to the LLM ...
    # ... through the zero-shot prompted LF (its calls count under "label"), one prompt per deferred item
    assert usage_log.get("label").requests - before == len(deferred)
