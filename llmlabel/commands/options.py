"""Options several commands share, declared once so their flags and help read the same everywhere.

Each is a function: typer keeps per-parameter state in the ``Option`` object, so every use gets a new one.
"""

from __future__ import annotations

import typer


def text_field():
    return typer.Option(None, "--text-field",
                        help="Text column (default: 'text', else the only string column).")


def id_field():
    return typer.Option(None, "--id-field", help="Id column (default: the `id` field if any, else the row number).")


def dev_label_field():
    return typer.Option("label", "--dev-label-field", help="Label column of the dev set.")


def cache():
    return typer.Option(None, "--cache", help="LLM answer cache file (default: $LLMLABEL_CACHE, else llm-cache.sqlite in the user cache folder).")


def quiet(help: str = "No progress bar."):
    return typer.Option(False, "--quiet", "-q", help=help)
