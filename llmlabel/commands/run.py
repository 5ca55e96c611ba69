"""``llmlabel run pipelines/NAME.yaml``: the whole chain from one file, each stage checkpointed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        spec: Path = typer.Argument(..., help="Pipeline YAML (see pipelines/)."),
        force: Optional[list[str]] = typer.Option(None, "--force", "-f",
                                                  help="Rerun this stage (and the ones after it) even if up to date."),
        until: Optional[str] = typer.Option(None, "--until", help="Stop after this stage."),
        dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print what would run, run nothing."),
        report: bool = typer.Option(True, "--report/--no-report", help="Write WORKDIR/report.html at the end."),
        embed_cache: Optional[Path] = options.embed_cache(),
        no_embed_cache: bool = options.no_embed_cache(),
    ) -> None:
        """Run a pipeline's stages in order; stages whose inputs and options did not change are skipped.

        A stage's options are its library function's keyword parameters (``max-labels`` or ``max_labels``);
        a typo is reported with the file, line and the valid options before anything runs.
        """
        from ..pipeline import load_pipeline, plan, run_pipeline

        p = load_pipeline(spec)
        if dry_run:
            for st, _, ok in plan(p, force=force):
                typer.echo(f"{'skip' if ok else 'run '}  {st.kind}: {st.describe(p.corpus, p.workdir)}")
            return
        with options.embedding_store(embed_cache, no_embed_cache):  # every stage shares it (and the run's memo)
            recs = run_pipeline(p, force=force, until=until, echo=lambda s: typer.echo(s, err=True))
        ran = [r for r in recs if not r.get("skipped")]
        typer.echo(f"[{p.name}] done: {len(ran)} stage(s) ran, {len(recs) - len(ran)} up to date; outputs in {p.workdir}",
                   err=True)
        if report:
            from ..report import write_report

            typer.echo(f"[{p.name}] report: {write_report([p.workdir], Path(p.workdir) / 'report.html')}", err=True)
