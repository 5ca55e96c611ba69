"""The CLI as a user meets it: fast help, one-line errors with exit code 2, a working engine check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmlabel import __version__


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "llmlabel.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_import_and_help_load_nothing_heavy():
    code = ("import sys, llmlabel, llmlabel.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'ray', 'dspy', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"llmlabel {__version__}"
    r = run("--help")
    assert r.returncode == 0 and "engines" in r.stdout and "choose" in r.stdout


def test_engines_reports_what_is_importable():
    r = run("engines", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    by_kind = {row["engine"]: row for row in data["engines"]}
    assert set(by_kind) == {"hf", "vllm", "openai"}
    assert by_kind["hf"]["available"] is True
    import importlib.util

    assert by_kind["vllm"]["available"] == (importlib.util.find_spec("vllm") is not None)


@pytest.mark.parametrize("args, needle", [
    (["choose", "-m", "hf:/no/such/dir", "-c", "a,b", "x"], "/no/such/dir: model path does not exist"),
    (["choose", "-m", "nonsense", "-c", "a,b", "x"], "bad model spec 'nonsense'"),
    (["choose", "-m", "openai:ftp://x#m", "-c", "a,b", "x"], "bad server URL"),
])
def test_errors_are_one_line_with_exit_code_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in r.stderr


def test_debug_shows_the_traceback():
    r = run("--debug", "choose", "-m", "nonsense", "-c", "a", "x")
    assert r.returncode != 0 and "Traceback" in r.stderr


@pytest.mark.slow  # a real LLM's forward passes: CI runs it as its own step (.ci/run)
def test_choose_runs_a_real_model_and_reuses_the_cache(tiny_qwen2, tmp_path):
    cache = tmp_path / "c.sqlite"
    args = ["choose", "-m", f"hf:{tiny_qwen2}", "-c", "spam,ham", "--cache", str(cache), "win a phone", "lunch?"]
    first = run(*args)
    assert first.returncode == 0, first.stderr
    rows = [ln.split("\t") for ln in first.stdout.strip().splitlines()]
    assert len(rows) == 2 and all(r[0] in ("spam", "ham") for r in rows)
    assert "2 model calls" in first.stderr
    second = run(*args)
    assert second.stdout == first.stdout
    assert "0 model calls, 2 cache hits" in second.stderr
    info = run("cache", "info", "--cache", str(cache))
    assert "2 answers" in info.stdout


def test_ctrl_c_exits_130_with_a_resume_hint(monkeypatch, capsys):
    # click reports Ctrl-C as a return code outside standalone mode; it must not become exit 0.
    import pytest
    import typer

    from llmlabel import cli

    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise KeyboardInterrupt

    @app.command()
    def other() -> None:
        pass

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as e:
        cli.main(["boom"])
    assert e.value.code == 130 and "rerun to resume" in capsys.readouterr().err


def test_stderr_has_our_progress_only_unless_verbose(tmp_path):
    """A real run loads MiniLM (transformers' "Loading weights" tqdm bar) and a python LF from a module that
    is not llmlabel's warns, logs through a library's logger and draws a tqdm bar: by default stderr shows
    none of it, only llmlabel's own lines; --verbose lets it all through."""
    import os

    from faults import TAXONOMY

    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in
                                                 enumerate(["I want a refund", "my card was stolen", "transfer?"])))
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY)
    (tmp_path / "noisy_lib.py").write_text(
        "import logging, warnings\nfrom tqdm import tqdm\n"
        "def lf(item):\n"
        "    warnings.warn('noisy library warning', FutureWarning)\n"
        "    logging.getLogger('transformers').warning('noisy library log')\n"
        "    for _ in tqdm(range(3), desc='noisy bar'):\n"
        "        pass\n"
        "    return -1\n")
    (tmp_path / "lfs.yaml").write_text("lfs:\n  - kind: keyphrases\n  - {name: emb, kind: embedding}\n"
                                       "  - {name: noisy, kind: python, function: 'noisy_lib:lf'}\n")
    from llmlabel.progress import QUIET_ENV

    # a clean environment: CLI runs in this test process have set QUIET_ENV in os.environ
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV and k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    noise = ("Loading weights", "noisy library warning", "noisy library log", "noisy bar", "it/s]", "Warning")

    def label(*flags, out):
        r = subprocess.run([sys.executable, "-m", "llmlabel.cli", *flags, "label", "data.jsonl", "-t", "taxonomy.yaml",
                            "--lfs", "lfs.yaml", "-o", out], capture_output=True, text=True, timeout=300, env=env,
                           cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        return r.stderr

    quiet = label(out="v1")
    assert not [n for n in noise if n in quiet], quiet
    assert "labeled 3 new items" in quiet and "label " in quiet  # our own summary and progress bar remain
    loud = label("--verbose", out="v2")
    assert all(n in loud for n in noise[:4]), loud
