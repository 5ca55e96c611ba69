"""Pages of the documentation site that are generated from the code, so they cannot drift from it.

- ``reference/cli.md``: every command of the typer app with its usage, help and options;
- ``reference/lfs.md``: every ``kind`` of lfs.yaml from its pydantic class (:mod:`llmlabel.lf.kinds`): what it
  does, single- / multi-label, each option with its type and default, an example; and the default LF sets
  (:mod:`llmlabel.lf.defaults`);
- ``benchmarks/results/*.md``: the measured results in ``eval/results/`` as they are in the repository.

mkdocs runs it as a hook (``hooks:`` in mkdocs.yml, no plugin to install); ``python docs/gen_ref.py OUT``
writes the same pages into a folder.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _this_checkout() -> None:
    """Import this checkout's llmlabel, installed or not (mkdocs restores sys.path after loading a hook)."""
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if p != str(ROOT)]


def _cell(text: str) -> str:
    return " ".join(_md(str(text)).split()).replace("|", "\\|")


def _md(text: str) -> str:
    """reStructuredText literals (docstrings) as Markdown code."""
    return text.replace("``", "`")


# -- CLI ------------------------------------------------------------------------------------------------------

def _commands(group, prefix: str):
    for name, cmd in group.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", cmd, group


def cli_reference() -> str:
    """Markdown: every ``llmlabel`` command (and sub-command), its usage, help and options."""
    import typer

    from llmlabel.cli import app

    root = typer.main.get_command(app)
    top = root.context_class(root, info_name="llmlabel")
    out = ["# Command-line reference", "",
           "Generated from the typer app (`docs/gen_ref.py`); `llmlabel COMMAND --help` prints the same.", "",
           "Global options (before the command): " + ", ".join(
               f"`{' / '.join(p.opts)}` ({_cell(p.help)})" for p in root.params if p.help and not p.hidden) + ".",
           ""]
    for path, cmd, parent in _commands(root, "llmlabel"):
        up = top if parent is root else parent.context_class(parent, info_name=path.split()[-2], parent=top)
        ctx = cmd.context_class(cmd, info_name=path.split()[-1], parent=up)
        out += [f"## `{path}`", "", "```", cmd.get_usage(ctx).replace("Usage: ", ""), "```", "",
                inspect.cleandoc(cmd.help or ""), "", "| argument / option | help |", "|---|---|"]
        for p in cmd.params:
            rec = p.get_help_record(ctx)
            if rec is None or getattr(p, "hidden", False):
                continue
            out.append(f"| `{_cell(rec[0])}` | {_cell(rec[1])} |")
        out.append("")
    return "\n".join(out)


# -- lfs.yaml -------------------------------------------------------------------------------------------------

_NAMES = {float: "number", int: "integer", str: "string", bool: "true / false"}


def _bounds(metadata) -> str:
    flat = [x for m in metadata for x in (getattr(m, "metadata", None) or [m])]  # a Field() holds its own
    get = (lambda a: next((getattr(m, a) for m in flat if getattr(m, a, None) is not None), None))
    ge, gt, le, lt = get("ge"), get("gt"), get("le"), get("lt")
    lo, hi = (f"[{ge}" if ge is not None else f"({gt}" if gt is not None else None,
              f"{le}]" if le is not None else f"{lt})" if lt is not None else None)
    if lo and hi:
        return f" in {lo}, {hi}"
    return f" >= {ge}" if ge is not None else f" > {gt}" if gt is not None else f" <= {le}" if le is not None else ""


def _type(ann, metadata=()) -> str:
    """A Python type as a reader of a YAML file thinks of it: ``number in [0, 1] or auto``."""
    import typing

    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _type(args[0], list(ann.__metadata__) + list(metadata))
    if origin is typing.Union or type(ann).__name__ == "UnionType":
        return " or ".join(_type(a, metadata) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " or ".join(str(a) for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"{_type(args[0])} -> {_type(args[1])}"
    return _NAMES.get(ann, getattr(ann, "__name__", str(ann))) + (_bounds(metadata) if ann in (int, float) else "")


def _default(field) -> str:
    if field.is_required():
        return "required"
    d = field.get_default(call_default_factory=True)
    return "null" if d is None else f"`{d}`"


def lfs_reference() -> str:
    """Markdown: the lfs.yaml file, every kind with its options, and the default LF sets."""
    import yaml

    from llmlabel.lf.defaults import default_lfs, describe, to_yaml
    from llmlabel.lf.spec import KINDS, LFSpecFile

    out = ["# lfs.yaml reference", "",
           "Generated from the LF spec classes (`llmlabel/lf/kinds.py`, `kinds_llm.py`) by `docs/gen_ref.py`: "
           "the options below are exactly what `llmlabel label --lfs` accepts. An unknown kind or option is a "
           "one-line error naming the file, the line and what the kind accepts.", "",
           "## The file", "", "| key | type | default | what |", "|---|---|---|---|"]
    for name, f in LFSpecFile.model_fields.items():
        kind = "list of LF entries" if name == "lfs" else _type(f.annotation, f.metadata)
        out.append(f"| `{name}` | {_cell(kind)} | {_default(f)} | {_cell(f.description or '')} |")
    out += ["", "Each entry of `lfs` has a `kind`; the kinds:", ""]
    for cls in KINDS:
        kind = cls.model_fields["kind"].annotation.__args__[0]
        forms = {"single": "single-label", "multi": "multi-label"}
        out += [f"## `{kind}`", "", _md(inspect.cleandoc(cls.__doc__ or "")), "",
                "Taxonomies: " + " and ".join(forms[f] for f in cls.forms) + ".", "",
                "| option | type | default | what |", "|---|---|---|---|"]
        for name, f in cls.model_fields.items():
            if name == "kind":
                continue
            out.append(f"| `{name}` | {_cell(_type(f.annotation, f.metadata))} | {_default(f)} | "
                       f"{_cell(f.description or '')} |")
        out += ["", "```yaml", "lfs:", "  - " + yaml.safe_dump(cls.example, default_flow_style=True,
                                                              sort_keys=False, width=1000).strip(), "```", ""]
    out += ["## The default sets", "",
            "What `llmlabel label` runs without `--lfs` and what `llmlabel auto` writes into its run folder "
            "(`llmlabel/lf/defaults.py`; a prompted LF with no `model` runs once per `--model`).", ""]
    for multi in (False, True):
        for gold in (False, True):
            for models in ((), ("SPEC",)):
                spec = default_lfs(multi_label=multi, gold=gold, models=models)
                title = (("multi-label" if multi else "single-label") + (", with gold" if gold else "")
                         + (", with --model" if models else ""))
                out += [f"**{title}** ({describe(spec, multi_label=multi, models=models)})", "", "```yaml",
                        to_yaml(spec).rstrip(), "```", ""]
    return "\n".join(out)


# -- the site -------------------------------------------------------------------------------------------------

def pages() -> dict[str, str]:
    """{path in the site: markdown} of every generated page."""
    _this_checkout()
    out = {"reference/cli.md": cli_reference(), "reference/lfs.md": lfs_reference()}
    for p in sorted((ROOT / "eval" / "results").glob("*.md")):
        out[f"benchmarks/results/{p.name}"] = p.read_text(encoding="utf-8")
    return out


def on_files(files, config):
    """mkdocs hook: add the generated pages to the site (nothing is written into docs/)."""
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


if __name__ == "__main__":
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "site-src")
    for path, text in pages().items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_text(text, encoding="utf-8")
    print(f"wrote {len(pages())} pages under {dest}")
