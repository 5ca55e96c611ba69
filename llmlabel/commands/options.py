"""Options several commands share, declared once so their flags and help read the same everywhere.

Each is a function: typer keeps per-parameter state in the ``Option`` object, so every use gets a new one.
Every command that writes a file or folder takes it as ``-o/--output``; every command that may call an LLM
takes ``--cache PATH`` and ``--no-cache``; every command that embeds texts takes ``--embed-cache PATH`` and
``--no-embed-cache``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer


def output(help: str, default=...):
    return typer.Option(default, "--output", "-o", help=help)


def text_field():
    return typer.Option(None, "--text-field",
                        help="Text column (default: 'text', else the only string column).")


def id_field():
    return typer.Option(None, "--id-field", help="Id column (default: the `id` field if any, else the row number).")


def dev_label_field():
    return typer.Option("label", "--dev-label-field", help="Label column of the dev set.")


def cache():
    return typer.Option(None, "--cache", help="LLM answer cache file (default: $LLMLABEL_CACHE, else "
                                              "llm-cache.sqlite in the user cache folder).")


def no_cache():
    return typer.Option(False, "--no-cache", help="Do not read or write the LLM answer cache.")


def embed_cache():
    return typer.Option(None, "--embed-cache", help="Embedding store folder (default: $LLMLABEL_EMBED_CACHE, else "
                                                    "embeddings/ in the user cache folder): a text this model "
                                                    "embedded before, in any stage or run, is not embedded again.")


def no_embed_cache():
    return typer.Option(False, "--no-embed-cache", help="Do not read or write the embedding store (each text is "
                                                        "still embedded once per run and model).")


@contextlib.contextmanager
def embedding_store(path: Path | None, no_store: bool):
    """The command's body runs with this embedding store; afterwards it prints what was embedded and what the
    store and the run's memo answered (as LLM cache hits are printed)."""
    from ..embed import embed_log, use_embed_store

    embed_log.reset()  # this command's counts only (tests run many commands in one process)
    with use_embed_store(path, no_store):
        yield
    if embed_log.models:  # after success only: a failing command says one line, its error
        typer.echo(embed_log.summary(), err=True)


def quiet(help: str = "No progress bar."):
    """``-q``: no progress bars of ours (the libraries' are off unless ``llmlabel --verbose``)."""
    return typer.Option(False, "--quiet", "-q", help=help)


def hidden_alias(flag: str):
    """An old spelling kept working for scripts (not shown in --help)."""
    return typer.Option(None, flag, hidden=True)


def pick_output(output: Path | None, alias: Path | None, flag: str, default: Path | None = None) -> Path:
    from ..errors import ConfigError

    if output is not None and alias is not None and output != alias:
        raise ConfigError(f"give -o/--output or {flag}, not both")
    out = output if output is not None else alias if alias is not None else default
    if out is None:
        raise ConfigError("missing -o/--output", hint="name the file or folder to write")
    return out


# Scale-out (``--backend ray``): one set of flags for label, predict and taxonomy.

def backend():
    return typer.Option("local", "--backend", help="local (this process) or ray (Ray Data: a local Ray, or a "
                                                   "cluster with --address; needs llmlabel's ray extra).")


def address():
    return typer.Option(None, "--address", help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT "
                                                "(default: start a local Ray). With --backend ray.")


def num_workers():
    return typer.Option(1, "--num-workers", help="Ray actors per model pool (each loads its models once). "
                                                 "With --backend ray.")


def gpus_per_worker():
    return typer.Option(0.0, "--gpus-per-worker", help="GPUs per LLM actor (0 = CPU). With --backend ray.")
