"""Run the ``llmlabel`` command in this process and return its exit code (typer exits through SystemExit)."""

from __future__ import annotations

from llmlabel.cli import main


def run_cli(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as e:
        return int(e.code or 0)
    return 0
