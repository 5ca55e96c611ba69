"""Run the fault harness and write eval/results/reliability.md: issue 30's 14 problems with every probe and its
result (tests/fault_probes.py), the property-based readers' contract (tests/test_properties.py), kill -9 at
seeded file-system steps of every command that writes (tests/test_kill_sweeps.py), and the first round's table:
every command x every bad-input case, kill -9 at random moments, a stalling and a dying LLM server
(tests/test_faults.py).

    PYTHONPATH=$PWD python eval/reliability.py            # FAULTS_KILL_POINTS=3 unless set; about 12 min on 2 cores
    PYTHONPATH=$PWD python eval/reliability.py --no-sweeps   # without the kill -9 sweeps (about 8 min)
"""

from __future__ import annotations

import argparse
import os
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
sys.path.insert(0, str(ROOT / "eval"))
from _common import machine  # noqa: E402  (one machine description for every results file)
MARK = {"passed": "pass", "failed": "**FAIL**", "skipped": "skip"}


class Collect:
    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        key = report.nodeid
        self.seconds[key] += report.duration
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[key] = report.outcome
            if report.outcome == "failed":
                self.messages[key] = str(report.longrepr).strip().splitlines()[-1][:240]


def _run(col: Collect, *args: str) -> int:
    return int(pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[col]))


def _of(col: Collect, module: str) -> dict[str, str]:
    """test id inside ``module`` -> outcome."""
    return {k.split("::", 1)[1]: v for k, v in col.outcomes.items() if k.split("::", 1)[0].endswith(module)}


def _result(col: Collect, module: str, test: str) -> str:
    key = next((k for k in col.outcomes if k.endswith(f"{module}::{test}")), None)
    if key is None:
        return "not run"
    out = MARK.get(col.outcomes[key], col.outcomes[key])
    return out + (f": {col.messages[key]}" if key in col.messages else "")


def main() -> int:
    import fault_probes
    import faults

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-sweeps", action="store_true", help="skip the slow kill -9 sweeps")
    args = ap.parse_args()
    os.environ.setdefault("FAULTS_KILL_POINTS", "3")
    t0 = time.time()
    col = Collect()
    rc = _run(col, str(ROOT / "tests" / "test_fault_probes.py"), str(ROOT / "tests" / "test_properties.py"),
              str(ROOT / "tests" / "test_faults.py"))
    if not args.no_sweeps:
        rc |= _run(col, "-m", "slow", str(ROOT / "tests" / "test_kill_sweeps.py"))
    secs = time.time() - t0
    load = os.getloadavg()
    lines = [
        "# Reliability: bad input, kill -9, a failing LLM server, a full disk",
        "",
        f"Command: `PYTHONPATH=$PWD python eval/reliability.py{' --no-sweeps' if args.no_sweeps else ''}` "
        f"(FAULTS_KILL_POINTS={os.environ['FAULTS_KILL_POINTS']}, "
        f"KILL_SWEEP_POINTS={os.environ.get('KILL_SWEEP_POINTS', '4')}); "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()} (at the end; 1-min load "
        f"{load[0]:.1f}); {secs:.0f} s; git {_git()}.",
        "",
        "A refusal passes when it exits 2 with exactly one `error:` line naming the file (and line, row or field "
        "where there is one), no traceback, and any earlier output left byte-for-byte as it was; input llmlabel "
        "handles (repaired bytes, empty texts that get a reason, a 5 MB text) must finish with exit 0.",
        "",
        "## Issue 30: the second round's 14 problems",
        "",
        "Each probe is a function in `tests/fault_probes.py`, run by `tests/test_fault_probes.py`.",
        "",
        "| # | problem | probe | result |",
        "|---|---|---|---|",
    ]
    for p in fault_probes.PROBES:
        res = _result(col, "test_fault_probes.py", f"test_probe[{p.name}]")
        lines.append(f"| {p.problem} | {fault_probes.PROBLEMS[p.problem]} | `{p.name}`: {p.doc} | {res} |")
    lines += ["", "## Every reader's contract, property-based (`tests/test_properties.py`, hypothesis)", "",
              "Generated files, mostly good with one injected defect (BOM, CRLF, repeated and mixed-type ids, NaN, "
              "empty and huge texts, unicode lookalikes, unknown labels, bad strategies, bad probabilities): each "
              "defect must be refused naming the file, or read correctly; the CLI exits 0 or 2 with one line "
              "naming the file. Derandomized (the same examples every run); `LLMLABEL_HYPOTHESIS_EXAMPLES` "
              f"(default 25, this run {os.environ.get('LLMLABEL_HYPOTHESIS_EXAMPLES', '25')}) sets the count.", "",
              "| test | result |", "|---|---|"]
    for test in sorted(_of(col, "test_properties.py")):
        lines.append(f"| `{test}` | {_result(col, 'test_properties.py', test)} |")
    if not args.no_sweeps:
        lines += ["", "## kill -9 at seeded file-system steps (`tests/test_kill_sweeps.py`, slow)", "",
                  "`tests/killpoints.py` kills the command at its K-th step that changes the disk (open for writing, "
                  "fsync, rename, the folder exchange, unlink, rmtree): seeded random steps plus the last three. "
                  "Right after the kill the output must be the earlier one or the new one, complete; the rerun "
                  "must equal an uninterrupted run and leave no temporary file.", "",
                  "| command | result |", "|---|---|"]
        for test in sorted(_of(col, "test_kill_sweeps.py")):
            cmd = re.sub(r".*\[(.+)\]", r"\1", test)
            lines.append(f"| {cmd} | {_result(col, 'test_kill_sweeps.py', test)} |")
    table: dict[str, dict[str, str]] = defaultdict(dict)
    other = []
    for test, outcome in _of(col, "test_faults.py").items():
        m = re.fullmatch(r"test_bad_input\[(.+)-(\w+)\]", test)
        if m and m.group(2) in faults.CASES:
            table[m.group(1)][m.group(2)] = outcome
        else:
            other.append((test, outcome))
    tried = sum(len(v) for v in table.values())
    passed = sum(o == "passed" for v in table.values() for o in v.values())
    lines += ["", "## The kinds that already passed in round one (`tests/test_faults.py`)", "",
              f"**Bad input: {passed} of {tried} (command, case) pairs passed** over {len(table)} commands x "
              f"{len(faults.CASES)} cases (`-`: the case does not apply). Unwritable output: a path under `/proc/self` "
              "(root passes every permission check, but no one can create files there); output under a file: "
              "`-o FILE/out` where FILE is a regular file.", "",
              "| command | " + " | ".join(faults.CASES) + " |", "|---|" + "---|" * len(faults.CASES)]
    for cmd in faults.BY_NAME:
        row = table.get(cmd, {})
        lines.append(f"| {cmd} | " + " | ".join(MARK.get(row.get(c, ""), "-") for c in faults.CASES) + " |")
    lines += ["", "Faults during a run (kill -9 at seeded random moments, then rerun: output equal to an "
              "uninterrupted run, no temp files, no LLM answer stored before the kill paid again; a server "
              "that stalls or answers 503 mid-run: one error line after the retries, finished shards kept, "
              "the rerun against a healthy server identical):", "", "| test | result |", "|---|---|"]
    for test, _ in other:
        lines.append(f"| `{test}` | {_result(col, 'test_faults.py', test)} |")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    n_pass = sum(o == "passed" for o in col.outcomes.values())
    print(f"wrote {OUT}: {n_pass} of {len(col.outcomes)} passed in {secs:.0f} s")
    return rc


def _git() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip() or "?"
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
