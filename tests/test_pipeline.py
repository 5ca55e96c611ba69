"""`llmlabel run`: a pipeline file runs its stages in order, and a rerun skips what is up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmlabel.cli import main
from llmlabel.errors import ConfigError
from llmlabel.pipeline import load_pipeline, plan, run_pipeline

ROOT = Path(__file__).resolve().parents[1]


def _corpus(tmp_path: Path, n: int = 120) -> Path:
    rows = [json.loads(ln) for ln in (ROOT / "examples" / "banking77_sample.jsonl").read_text().splitlines()[:n]]
    p = tmp_path / "corpus.jsonl"
    p.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    return p


def _spec(tmp_path: Path, stages: list) -> Path:
    spec = {"name": "t", "corpus": str(_corpus(tmp_path)), "workdir": str(tmp_path / "work"), "stages": stages}
    p = tmp_path / "pipe.yaml"
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


def test_short_and_long_stage_forms_give_the_same_command_line(tmp_path):
    a = load_pipeline(_spec(tmp_path, [{"taxonomy": {"max-labels": 5, "embedder": "wordllama"}}]))
    b = load_pipeline(_spec(tmp_path, [{"kind": "taxonomy", "options": {"max_labels": 5, "embedder": "wordllama"}}]))
    argv = a.stages[0].argv(a.corpus, a.workdir)
    assert argv == b.stages[0].argv(b.corpus, b.workdir)
    assert argv[:4] == ["taxonomy", a.corpus, "-o", f"{a.workdir}/taxonomy.yaml"]
    assert argv[-4:] == ["--max-labels", "5", "--embedder", "wordllama"]


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

    # Editing a stage's options makes it (and only then) run again.
    spec.stages[0].options["max-labels"] = 3
    assert [ok for _, _, ok in plan(spec)] == [False]
    # The CLI: a dry run prints what it would do and runs nothing.
    spec_path.write_text(yaml.safe_dump(json.loads(spec.model_dump_json())))
    main(["run", str(spec_path), "--dry-run"])
    assert capsys.readouterr().out.startswith("run   llmlabel taxonomy")
    assert out.read_bytes() == before


def test_whole_chain_runs_and_editing_the_lfs_file_reruns_from_label(tmp_path):
    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n")
    spec = load_pipeline(_spec(tmp_path, [
        {"taxonomy": {"max-labels": 4, "embedder": "wordllama", "quiet": True}},
        {"label": {"lfs": str(lfs), "quiet": True}},
        {"aggregate": {"method": "mv"}},
        {"distill": {"student": "static"}},
    ]))
    run_pipeline(spec, echo=lambda s: None)
    work = Path(spec.workdir)
    import pyarrow.parquet as pq

    labeled = pq.read_table(work / "labeled.parquet")
    assert labeled.num_rows == 120 and (work / "model").is_dir()
    assert all(ok for _, _, ok in plan(spec))
    # The LF file is an input of `label`: changing it reruns label and everything after it, not taxonomy.
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n  - {name: emb, kind: embedding, embedder: wordllama}\n")
    assert [ok for _, _, ok in plan(spec)] == [True, False, False, False]


def test_a_misspelt_stage_option_is_one_line_naming_the_stage(tmp_path):
    spec = load_pipeline(_spec(tmp_path, [{"taxonomy": {"max-lables": 3}}]))
    with pytest.raises(ConfigError) as e:
        run_pipeline(spec, echo=lambda s: None)
    assert "stage taxonomy" in e.value.one_line() and "--max-labels" in e.value.one_line()
    assert not (Path(spec.workdir) / ".pipeline" / "taxonomy.json").exists()  # not recorded as done
