"""The README's promises: its first two commands are what CI runs, and the commands it calls available exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
