"""kill -9 at seeded random file-system steps of every command that writes: what is on disk right after the kill
is the earlier output, intact, or the new one, complete (never a mix), and the rerun finishes it as an
uninterrupted run would. Slow (a child process per kill point): ``pytest -m slow tests/test_kill_sweeps.py``,
a CI step after the main suite. ``KILL_SWEEP_POINTS`` (default 4) sets the random points per command; the last
three steps (where outputs are renamed and swapped in) are always among them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fault_probes  # noqa: E402
import faults  # noqa: E402

pytestmark = pytest.mark.slow
POINTS = int(os.environ.get("KILL_SWEEP_POINTS", "4"))
HOOK = Path(__file__).with_name("killpoints.py")


def _kill_run(argv: list, cwd: Path, k: int, count: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(fault_probes.REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if count is not None:
        env["KILLPOINTS_COUNT"] = str(count)
    return subprocess.run([sys.executable, str(HOOK), str(k), *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


# ------------------------------------------------------------------------------------- what each output is

def _table(p: Path):
    import pyarrow.parquet as pq

    return pq.read_table(p).replace_schema_metadata(None) if p.exists() else None


def _model(p: Path):
    from llmlabel.distill.export import load_student

    if not p.exists():
        return None
    st = load_student(p)
    metrics = json.loads((p / "metrics.json").read_text())
    assert metrics["classes"] == st.classes_, "metrics.json and the weights come from two runs"
    return st.classes_, st.predict_proba([r["text"] for r in faults.corpus_rows()])


def _bytes(p: Path):
    return p.read_bytes() if p.exists() else None


def _html(p: Path):
    """The report without the minute it was generated in (a rerun a minute later is the same report)."""
    import re

    return re.sub(rb"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", b"", p.read_bytes()) if p.exists() else None


def _predictions(p: Path):
    from llmlabel.artifacts.predictions import read_predictions

    if not p.exists():
        return None
    return read_predictions(p).rows  # the sidecar must describe these rows (or the read fails, naming it)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if hasattr(a, "equals"):
        return a.equals(b)
    if isinstance(a, tuple):
        return a[0] == b[0] and np.allclose(a[1], b[1], atol=1e-6)
    return a == b


@dataclass
class Sweep:
    argv: list[str]  # {out} is the output path
    out: str
    state: Callable[[Path], Any]
    earlier: Callable[[Path, Path], None] | None = None  # writes the earlier output at (ws, out)


def _earlier_labeled(ws: Path, out: Path) -> None:
    shutil.copy(ws / "labeled.parquet", out)  # aggregate --method mv; the sweep runs ds


def _earlier_model(ws: Path, out: Path) -> None:
    shutil.copytree(ws / "model", out)  # one epoch; the sweep trains two


def _earlier_predictions(ws: Path, out: Path) -> None:
    a, b = fault_probes._two_models(ws)
    assert faults.cli(["predict", b, "data.jsonl", "-o", out], ws)[0] == 0  # another model, two classes


def _earlier_report(ws: Path, out: Path) -> None:
    out.write_text("<html>an earlier report</html>\n")


def _export(ws: Path, name: str, labels: list[str]) -> Path:
    rows = [{"id": k + 1, "item_id": f"r{k}", "label": lab, "annotation_id": k + 1} for k, lab in enumerate(labels)]
    p = ws / "sweeps" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(json.dumps(rows))
    return p


def _earlier_gold(ws: Path, out: Path) -> None:
    first = _export(ws, "round1.json", [fault_probes.label_of(k) for k in range(4)])
    assert faults.cli(["review", "import", first, "-o", out, "--labeled", "labeled.parquet"], ws)[0] == 0


SWEEPS = {
    "label": Sweep(["label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-o", "{out}", "-q",
                    "--shard-size", "8"], "votes", _table),
    "aggregate": Sweep(["aggregate", "votes", "-t", "taxonomy.yaml", "--method", "ds", "-o", "{out}"], "l.parquet",
                       _table, _earlier_labeled),
    "distill": Sweep(["distill", "labeled.parquet", "-o", "{out}", "--min-per-class", "1", "--epochs", "2"], "m",
                     _model, _earlier_model),
    "predict": Sweep(["predict", "model", "data.jsonl", "-o", "{out}"], "p.jsonl", _predictions, _earlier_predictions),
    "report": Sweep(["report", "labeled.parquet", "-o", "{out}"], "r.html", _html, _earlier_report),
    "review import": Sweep(["review", "import", "{export}", "-o", "{out}", "--labeled", "labeled.parquet"],
                           "gold.jsonl", _bytes, _earlier_gold),
}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = faults.build_workspace(tmp_path_factory.mktemp("sweeps") / "ws")
    _export(root, "round2.json", [fault_probes.label_of(k) for k in range(2, 9)])
    return root


def _fill(argv: list[str], ws: Path, out: Path) -> list[str]:
    return [a.replace("{out}", str(out)).replace("{export}", str(ws / "sweeps" / "round2.json")) for a in argv]


def _leftovers(out: Path) -> list[str]:
    """Temporary files of killed writers still there after the rerun (inside the output or beside it)."""
    inside = [p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".tmpdir"))] if out.is_dir() else []
    beside = [p.name for p in out.parent.glob(f".{out.name}.*")]
    return inside + beside


@pytest.mark.parametrize("command", sorted(SWEEPS))
def test_kill_at_random_steps_leaves_old_or_new_output(ws, command):
    sw = SWEEPS[command]
    ref_dir = ws / "sweeps" / command.replace(" ", "_") / "ref"
    ref_dir.mkdir(parents=True)
    ref = ref_dir / sw.out
    if sw.earlier is not None:
        sw.earlier(ws, ref)
    res = _kill_run(_fill(sw.argv, ws, ref), ws, 0, count=ref_dir / "steps")
    assert res.returncode == 0, res.stderr
    steps = int((ref_dir / "steps").read_text())
    new = sw.state(ref)
    rng = random.Random(f"kill-sweep-{command}")
    # the last steps are where outputs are renamed and swapped in: always kill there too
    points = sorted(set(rng.sample(range(1, steps + 1), min(POINTS, steps)) + list(range(max(1, steps - 2), steps + 1))))
    problems = []
    for k in points:
        d = ws / "sweeps" / command.replace(" ", "_") / f"k{k}"
        d.mkdir(parents=True)
        out = d / sw.out
        old = None
        if sw.earlier is not None:
            sw.earlier(ws, out)
            old = sw.state(out)
        killed = _kill_run(_fill(sw.argv, ws, out), ws, k)
        if killed.returncode != -9:
            problems.append(f"step {k}/{steps}: not killed (exit {killed.returncode}) {killed.stderr[-300:]}")
            continue
        if command != "label":  # a votes folder resumes instead (checked by the rerun below)
            try:
                now = sw.state(out)
            except Exception as e:  # noqa: BLE001 - a mix of two runs is what this test is for
                from llmlabel.errors import LLMLabelError

                now = e if isinstance(e, LLMLabelError) and "interrupted write" in str(e) else None
                if now is None:
                    problems.append(f"step {k}/{steps}: the output does not read: {type(e).__name__}: {e}")
                    continue
            if not isinstance(now, Exception) and not (_same(now, old) or _same(now, new)):
                problems.append(f"step {k}/{steps}: the output is neither the earlier one nor the new one")
        code, _, err = faults.cli(_fill(sw.argv, ws, out), ws)
        if code != 0:
            problems.append(f"step {k}/{steps}: the rerun failed: {err.strip()[-300:]}")
        elif not _same(sw.state(out), new):
            problems.append(f"step {k}/{steps}: the rerun's output differs from an uninterrupted run's")
        elif _leftovers(out):
            problems.append(f"step {k}/{steps}: left {_leftovers(out)}")
    assert not problems, problems
