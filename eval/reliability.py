"""Run the fault harness (tests/test_faults.py) and write eval/results/reliability.md: every command x every
bad-input case, kill -9 at seeded random points of the long-running commands, a stalling and a dying LLM
server, with what passed.

    PYTHONPATH=$PWD python eval/reliability.py            # FAULTS_KILL_POINTS=3 unless set
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval" / "results" / "reliability.md"
sys.path.insert(0, str(ROOT / "tests"))


class Collect:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid.split("::", 1)[1]] = report.outcome
            if report.outcome == "failed":
                self.messages[report.nodeid.split("::", 1)[1]] = str(report.longrepr).strip().splitlines()[-1][:200]


def main() -> int:
    import faults

    os.environ.setdefault("FAULTS_KILL_POINTS", "3")
    t0 = time.time()
    col = Collect()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_faults.py")], plugins=[col])
    secs = time.time() - t0
    table: dict[str, dict[str, str]] = defaultdict(dict)
    other = []
    for test, outcome in col.outcomes.items():
        m = re.fullmatch(r"test_bad_input\[(.+)-(\w+)\]", test)
        if m and m.group(2) in faults.CASES:
            table[m.group(1)][m.group(2)] = outcome
        else:
            other.append((test, outcome))
    tried = sum(len(v) for v in table.values())
    passed = sum(o == "passed" for v in table.values() for o in v.values())
    load = os.getloadavg()
    lines = [
        "# Reliability: bad input, kill -9, a failing LLM server",
        "",
        f"Command: `PYTHONPATH=$PWD python eval/reliability.py` (FAULTS_KILL_POINTS={os.environ['FAULTS_KILL_POINTS']}); "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.node()}, {os.cpu_count()} cores "
        f"(shared), load average {load[0]:.1f}; {secs:.0f} s; git {_git()}.",
        "",
        f"**Bad input: {passed} of {tried} (command, case) pairs passed** over {len(table)} commands x "
        f"{len(faults.CASES)} cases (a case that does not apply to a command is `-`). A pass is exit 2 with one "
        "`error:` line naming the file (and line/field where there is one) and an existing output byte-for-byte "
        "unchanged, or, for input the command handles (repaired non-UTF-8 bytes, empty texts that get a row "
        "with a reason, a 5 MB text), exit 0 without a traceback. Unwritable output: a path under `/proc/self` "
        "(root passes every permission check, but no one can create files there); output under a file: "
        "`-o FILE/out` where FILE is a regular file.",
        "",
        "| command | " + " | ".join(faults.CASES) + " |",
        "|---|" + "---|" * len(faults.CASES),
    ]
    mark = {"passed": "pass", "failed": "**FAIL**", "skipped": "skip"}
    for cmd in faults.BY_NAME:
        row = table.get(cmd, {})
        lines.append(f"| {cmd} | " + " | ".join(mark.get(row.get(c, ""), "-") for c in faults.CASES) + " |")
    lines += ["", "Faults during a run (kill -9 at seeded random points, then rerun: output equal to an "
              "uninterrupted run, no temp files, no LLM answer stored before the kill paid again; a server "
              "that stalls or answers 503 mid-run: one error line after the retries, finished shards kept, "
              "the rerun against a healthy server identical):", "",
              "| test | result |", "|---|---|"]
    for test, outcome in other:
        lines.append(f"| `{test}` | {mark.get(outcome, outcome)}"
                     + (f": {col.messages[test]}" if test in col.messages else "") + " |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}: bad input {passed}/{tried}; others "
          f"{sum(o == 'passed' for _, o in other)}/{len(other)}")
    return int(rc)


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
