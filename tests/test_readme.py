"""The README's promises: its first two commands are what CI runs, it stays a front page, every figure in its
decision table is in the results file it links, and every command in its shell blocks runs (the slow tests
below; .ci/run runs them after the main suite)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def shell_blocks(text: str = README) -> list[list[str]]:
    """Each ```bash block's non-empty lines."""
    return [[ln for ln in b.splitlines() if ln.strip()]
            for b in re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", text, re.S | re.M)]


def first_shell_block() -> list[str]:
    blocks = shell_blocks()
    assert blocks, "README has no shell block"
    return blocks[0]


def test_first_block_sets_up_and_runs_the_main_job_then_the_tests():
    main, tests = first_shell_block()[:2]
    for line in (main, tests):
        assert line.startswith("pip install torch==2.13.0 && pip install -e"), line
    assert "llmlabel " in main.split("&&")[-1]
    assert "pytest" in tests


def test_ci_runs_the_readme_test_line():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci and "n==2" in ci  # CI extracts line 2 of the first block, never a copy of it
    out = subprocess.run(["bash", "-c", ci.split("test_cmd=", 1)[1].split("\n", 1)[0].join(["x=", "; echo \"$x\""])],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == first_shell_block()[1]


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 150
    own = shell_blocks()[1]
    assert len(own) == 3 and all(c.startswith("llmlabel ") for c in own)
    assert sum(c.startswith("llmlabel auto ") for c in own) == 2
    table = README.split("FIGURES START", 1)[1].split("FIGURES END", 1)[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| you have")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "texts only", "your label names", "+ ~100 gold labels", "10^4+ labels",
        "a GPU or an OpenAI-compatible server", "items with several labels"]


def _appears(number: str, text: str) -> bool:
    """``0.288`` appears as itself, or as a longer figure that rounds to it (``0.2875``)."""
    if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text):
        return True
    digits = len(number.split(".")[1])
    return any(f"{float(x):.{digits}f}" == number or f"{float(x) + 1e-12:.{digits}f}" == number
               for x in re.findall(rf"(?<![\d.]){number[:-1]}\d\d+", text))


def test_every_figure_in_the_decision_table_is_in_the_results_file_it_links():
    table = README.split("FIGURES START", 1)[1].split("FIGURES END", 1)[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ") and "eval/results/" in ln]
    assert len(rows) == 6
    for row in rows:
        expect = row.split("|")[5]
        files = [ROOT / f for f in re.findall(r"\((eval/results/[\w.-]+\.md)\)", expect)]
        assert files and all(f.is_file() for f in files), row
        text = "\n".join(f.read_text() for f in files)
        for number in re.findall(r"(?<![\w.])\d\.\d{3}(?!\d)", expect):
            assert _appears(number, text), f"{number} is not in {', '.join(f.name for f in files)}"


def _run(cmd: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "llmlabel.cli", *shlex.split(cmd.split("  #")[0])[1:]]
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{cmd}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture()
def repo_copy(tmp_path):
    import shutil

    for d in ("examples", "pipelines"):
        shutil.copytree(ROOT / d, tmp_path / d)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMLABEL_CACHE": str(tmp_path / "cache.sqlite")}
    return tmp_path, env


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_readme_commands_run_as_written(repo_copy):
    """Line 1's llmlabel command and the "your own data" block, in a copy of examples/ (minutes on 2 cores)."""
    import pyarrow.parquet as pq

    tmp, env = repo_copy
    main = first_shell_block()[0].split("&&")[-1].strip()
    _run(main, tmp, env)
    assert (tmp / "taxonomy.yaml").is_file() and (tmp / "taxonomy.assignments.jsonl").is_file()  # README line 1
    demo, known, rerun = shell_blocks()[1]
    out = _run(demo, tmp, env).stdout
    assert "runs/demo/labeled.parquet" in out and (tmp / "runs/demo/report.html").is_file()
    out = _run(known, tmp, env).stdout
    acc = next(ln for ln in out.splitlines() if ln.startswith("accuracy"))
    assert "cross-fitted" in acc, out
    lab = pq.read_table(tmp / "runs/known/labeled.parquet").to_pandas()
    gold = {json.loads(x)["id"] for x in (ROOT / "examples/known_labels/gold.jsonl").read_text().splitlines()}
    assert set(lab.loc[lab["source"] == "human", "id"]) == gold
    err = _run(rerun, tmp, env).stderr
    assert "0 stage(s) ran, 5 up to date" in err  # the file auto wrote is what `llmlabel run` resumes


def stage_block() -> list[str]:
    """The commands of docs/pipelines.md's "stage by stage" block, comments cut."""
    part = (ROOT / "docs" / "pipelines.md").read_text().split("## Stage by stage", 1)[1]
    return [ln.split("  #")[0].strip() for ln in shell_blocks(part)[0]]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_stage_by_stage_block_runs_as_written_and_run_gives_the_same_files(repo_copy):
    """Every command of the block (about 5 min on 2 cores)."""
    import pyarrow.parquet as pq

    tmp, env = repo_copy
    cmds = stage_block()
    assert cmds and all(c.startswith("llmlabel ") for c in cmds)
    for c in cmds:
        _run(c, tmp, env)
    # `llmlabel run pipelines/banking77.yaml` (the block's last line) uses the block's options: same files
    assert cmds[-1] == "llmlabel run pipelines/banking77.yaml"
    work, run = tmp / "work", tmp / "runs" / "banking77"
    assert (work / "taxonomy.yaml").read_text() == (run / "taxonomy.yaml").read_text()
    assert pq.read_table(work / "labeled.parquet").equals(pq.read_table(run / "labeled.parquet"))
    assert (work / "preds.jsonl").read_text() == (run / "predictions.jsonl").read_text()
