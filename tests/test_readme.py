"""The README's promises: its first two commands are what CI runs, and the commands it calls available exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def first_shell_block() -> list[str]:
    m = re.search(r"^```(?:bash|sh|shell)\n(.*?)^```", README, re.S | re.M)
    assert m, "README has no shell block"
    return [ln for ln in m.group(1).splitlines() if ln.strip()]


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


def test_commands_marked_available_exist():
    help_text = subprocess.run([sys.executable, "-m", "llmlabel.cli", "--help"], capture_output=True,
                               text=True, check=True).stdout
    rows = [ln for ln in README.splitlines() if ln.startswith("|") and "**available**" in ln]
    cmds = {c for ln in rows for c in re.findall(r"`llmlabel ([a-z-]+)", ln)}
    assert cmds, "the stage table lists no available command"
    for c in cmds:
        assert re.search(rf"\b{c}\b", help_text), f"README says `llmlabel {c}` is available; --help disagrees"


def stage_block() -> list[str]:
    """The commands of the README's "stage by stage" block, comments cut."""
    part = README.split("## The pipeline, stage by stage", 1)[1]
    m = re.search(r"^```bash\n(.*?)^```", part, re.S | re.M)
    assert m, "the stage-by-stage section has no shell block"
    return [ln.split("  #")[0].strip() for ln in m.group(1).splitlines() if ln.strip()]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_stage_by_stage_block_runs_as_written_and_run_gives_the_same_files(tmp_path):
    """Every command of the block, in a copy of the repo's examples/ and pipelines/ (about 5 min on 2 cores)."""
    import shutil

    import pyarrow.parquet as pq

    for d in ("examples", "pipelines"):
        shutil.copytree(ROOT / d, tmp_path / d)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LLMLABEL_CACHE": str(tmp_path / "cache.sqlite")}
    cmds = stage_block()
    assert cmds and all(c.startswith("llmlabel ") for c in cmds)
    for c in cmds:
        argv = [sys.executable, "-m", "llmlabel.cli", *shlex.split(c)[1:]]
        out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"{c}\n{out.stderr[-2000:]}"
    # `llmlabel run pipelines/banking77.yaml` (the block's last line) uses the block's options: same files
    assert cmds[-1] == "llmlabel run pipelines/banking77.yaml"
    work, run = tmp_path / "work", tmp_path / "runs" / "banking77"
    assert (work / "taxonomy.yaml").read_text() == (run / "taxonomy.yaml").read_text()
    assert pq.read_table(work / "labeled.parquet").equals(pq.read_table(run / "labeled.parquet"))
    assert (work / "preds.jsonl").read_text() == (run / "predictions.jsonl").read_text()
