"""``llmlabel report``: one self-contained HTML page of a run (opens from disk, no network).

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        inputs: list[Path] = typer.Argument(..., help="A run folder (taxonomy.yaml, votes/, labeled.parquet, model/, "
                                                      "review rounds) or any of those files."),
        output: Path = typer.Option(Path("report.html"), "--output", "-o", help="The HTML file to write."),
        dev: Optional[Path] = typer.Option(None, "--dev", help="Gold labels (JSONL/CSV of id + label): adds the "
                                                               "reliability diagram, confusion matrix and per-class F1."),
        title: Optional[str] = typer.Option(None, "--title", help="Page title."),
    ) -> None:
        """Write an HTML report: taxonomy, LF table and agreement, label distribution, calibration, review queue,
        student and review rounds — each section only when its input exists."""
        from ..report import write_report

        out = write_report(inputs, output, dev=dev, title=title)
        typer.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)", err=True)
