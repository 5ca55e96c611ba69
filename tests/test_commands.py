"""Every command spells its output `-o/--output`; LLM stages take `--cache`/`--no-cache`; old spellings still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.main import get_command

from llmlabel.cli import app, main

ROOT = Path(__file__).resolve().parents[1]


def _commands():
    return get_command(app).commands


def test_outputs_are_spelt_o_output_and_llm_stages_take_the_cache_options():
    cmds = _commands()
    writers = {n for n, c in cmds.items() if any(p.name == "output" for p in c.params)}
    assert {"taxonomy", "label", "aggregate", "xmc", "distill", "predict"} <= writers
    for name in writers:
        (p,) = [p for p in cmds[name].params if p.name == "output"]
        assert sorted(p.opts) == ["--output", "-o"], name
    for name in ("taxonomy", "label", "xmc", "predict", "choose"):
        flags = {o for p in cmds[name].params for o in p.opts}
        assert {"--cache", "--no-cache"} <= flags, name
    # the old taxonomy spelling is accepted but not advertised
    (old,) = [p for p in cmds["taxonomy"].params if "--out" in p.opts]
    assert old.hidden


def test_taxonomy_out_still_works_and_clashing_outputs_are_an_error(tmp_path, monkeypatch, capsys):
    rows = [json.loads(ln) for ln in (ROOT / "examples" / "banking77_sample.jsonl").read_text().splitlines()[:60]]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    base = ["taxonomy", str(corpus), "--max-labels", "3", "--embedder", "wordllama", "-q"]
    main(base + ["--out", "old.yaml"])
    assert (tmp_path / "old.yaml").is_file() and (tmp_path / "old.assignments.jsonl").is_file()
    with pytest.raises(SystemExit) as e:
        main(base + ["--out", "a.yaml", "-o", "b.yaml"])
    assert e.value.code == 2
    assert "not both" in capsys.readouterr().err and not (tmp_path / "a.yaml").exists()
