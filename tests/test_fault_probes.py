"""Issue 30's second fault round, one test per probe in tests/fault_probes.py (grouped by problem number)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fault_probes  # noqa: E402
import faults  # noqa: E402


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return faults.build_workspace(tmp_path_factory.mktemp("probes") / "ws")


@pytest.mark.parametrize("name", [p.name for p in fault_probes.PROBES])
def test_probe(ws, name, request):
    probe = fault_probes.BY_NAME[name]
    fx = {"tiny_qwen2": request.getfixturevalue("tiny_qwen2")} if probe.needs_llm else {}
    problems = probe.fn(ws, fx)
    assert not problems, f"problem {probe.problem}, {name}: {problems}"


def test_every_problem_has_a_probe():
    assert sorted({p.problem for p in fault_probes.PROBES}) == list(range(1, 15))
