"""The documentation tells the truth about the code: every `llmlabel ...` command and option the README and
docs/ mention exists, the generated references cover every command and every lfs.yaml kind and option, and
the site builds with `mkdocs build --strict` (skipped where mkdocs is not installed; CI installs the docs
extra and builds it)."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _gen_ref():
    spec = importlib.util.spec_from_file_location("gen_ref", ROOT / "docs" / "gen_ref.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _command_lines(text: str) -> list[str]:
    """Every `llmlabel ...` invocation in shell blocks (continuations joined, `&&` chains split) and in
    inline code."""
    out = []
    for block in re.findall(r"^```(?:bash|sh|shell)?\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            out += [seg.strip() for seg in line.split("#")[0].split("&&") if seg.strip().startswith("llmlabel ")]
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    out += re.findall(r"`(llmlabel [^`]+)`", text)
    return out


def _cli():
    import typer

    from llmlabel.cli import app

    return typer.main.get_command(app)


def _opts(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ())) if o.startswith("-")}


def problems(pages) -> tuple[int, list[str]]:
    """(commands checked, what is wrong with them) over some markdown pages."""
    root = _cli()
    globals_ = _opts(root) | {"--help", "-h"}
    checked, bad = 0, []
    for page in pages:
        for line in _command_lines(page.read_text()):
            try:
                words = shlex.split(line)[1:]
            except ValueError:
                words = line.split()[1:]
            words = [w.strip("[]") for w in words]
            while words and words[0] in globals_:
                words.pop(0)
            if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):
                continue  # `llmlabel --debug ...`, `llmlabel COMMAND --help`
            cmd = root.commands.get(words[0])
            if cmd is None:
                bad.append(f"{page.name}: `{line}`: no command {words[0]!r}")
                continue
            if hasattr(cmd, "commands"):
                sub = words[1] if len(words) > 1 else None
                if sub not in cmd.commands:
                    bad.append(f"{page.name}: `{line}`: no command {words[0]} {sub}")
                    continue
                cmd = cmd.commands[sub]
            known = _opts(cmd) | globals_
            for w in words[1:]:
                opt = w.split("=", 1)[0]
                if re.fullmatch(r"--?[a-z][\w-]*", opt) and opt not in known:
                    bad.append(f"{page.name}: `{line}`: {words[0]} has no option {opt}")
            checked += 1
    return checked, bad


def test_every_command_and_option_the_docs_mention_exists():
    checked, bad = problems(PAGES)
    assert checked > 40, checked
    assert not bad, "\n".join(bad)
    _, caught = problems([_sample_page()])  # the check itself finds what is wrong
    assert len(caught) == 4, caught


def _sample_page() -> Path:
    import tempfile

    p = Path(tempfile.mkdtemp()) / "x.md"
    p.write_text("```bash\nllmlabel auto a -o b --lables x\nllmlabel cache wipe\n```\n"
                 "use `llmlabel label x --lfs y -z` and `llmlabel frobnicate`, `llmlabel --verbose label x -q`\n")
    return p


def test_generated_references_cover_every_command_kind_and_option():
    from llmlabel.lf.spec import BY_KIND

    gen = _gen_ref()
    lfs = gen.lfs_reference()
    for kind, cls in BY_KIND.items():
        section = lfs.split(f"## `{kind}`", 1)[1].split("\n## ", 1)[0]
        for name in cls.model_fields:
            if name != "kind":
                assert f"| `{name}` |" in section, (kind, name)
    # every example in the reference is a valid lfs.yaml entry
    import yaml

    from llmlabel.lf.spec import LFSpecFile

    examples = re.findall(r"```yaml\nlfs:\n(.*?)```", lfs, re.S)
    assert len(examples) >= len(BY_KIND)
    for ex in examples:
        LFSpecFile.model_validate(yaml.safe_load("lfs:\n" + ex))
    cli = gen.cli_reference()
    root = _cli()
    for name, cmd in root.commands.items():
        subs = [f"{name} {s}" for s in cmd.commands] if hasattr(cmd, "commands") else [name]
        for s in subs:
            assert f"## `llmlabel {s}`" in cli, s


def test_the_docs_extra_and_ci_build_the_site():
    assert re.search(r"^docs = \[.*mkdocs-material", (ROOT / "pyproject.toml").read_text(), re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict" in ci and '".[docs]"' in ci


@pytest.mark.timeout(600)
def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                       **__import__("os").environ})
    assert r.returncode == 0, r.stderr[-3000:]
    html = (tmp_path / "site" / "reference" / "lfs" / "index.html").read_text()
    assert "setfit" in html and "prompted_list" in html
    assert (tmp_path / "site" / "benchmarks" / "results" / "chain" / "index.html").is_file()
