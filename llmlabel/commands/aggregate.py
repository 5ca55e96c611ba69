"""``llmlabel aggregate`` (votes -> labels with calibrated confidence + review queue) and ``llmlabel lf-report``.

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import options

_VOTES_HELP = "Votes: a folder from `llmlabel label`, a LabelMatrix .parquet, a WRENCH .json or a Snorkel .npy."


def register(app: typer.Typer) -> None:
    @app.command()
    def aggregate(
        votes: Path = typer.Argument(..., help=_VOTES_HELP),
        output: Path = options.output("labeled.parquet (review files go beside it)."),
        dev: Optional[Path] = typer.Option(None, "--dev", help="Gold dev labels: JSONL/CSV of id + label (name), "
                                                               "or a WRENCH split with labels."),
        method: str = typer.Option("auto", "--method", help="auto (with --dev: choose + calibrate on it; without: heldout, the "
                                                            "no-gold default), heldout, mv, wmv, ds, onecoin, "
                                                            "stacked (needs --dev)."),
        taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", "-t", help="Label names (WRENCH/.npy votes)."),
        review_top: float = typer.Option(0.1, "--review-top", help="Share (<1) or number of items in the review queue."),
        gold: Optional[Path] = typer.Option(None, "--gold", help="Human labels (JSONL/CSV of id + label, e.g. from "
                                            "`llmlabel review import`): clamped; those picked at random (strategy "
                                            "`random`, or no strategy field) also choose and calibrate the model "
                                            "with --dev (cross-fitted); actively picked ones are only clamped."),
        metric: str = typer.Option("accuracy", "--metric", help="With --dev or --gold: what auto chooses the label "
                                   "model by on those rows: accuracy, or macro_f1 (by accuracy a model can win by "
                                   "giving most items the commonest class; by macro-F1 one can win by leaving "
                                   "rows tied, i.e. coin flips: on the suite it was no better on average, see "
                                   "docs/label-model.md). Single-label."),
    ) -> None:
        """Turn LF votes into one label per item with a calibrated confidence; write the review queue."""
        from ..labelmodel.run import aggregate_votes

        res = aggregate_votes(votes, output, dev=dev, method=method, taxonomy=taxonomy, review_top=review_top,
                              gold=gold, metric=metric)
        rep, paths = res.report, res.paths
        inner = rep.get("unsupervised_selection") or {}  # what the no-gold default kept, and why
        kept = f"; it kept {inner['chosen']}: {inner.get('reason')}" if inner.get("chosen") else ""
        typer.echo(f"{res.items:,} items, {res.uncovered:,} uncovered (kept, marked); model "
                   f"{rep.get('chosen')} ({rep.get('reason')}{kept}); wrote {paths['labeled']} and review queue "
                   f"{paths['review_csv']}", err=True)
        if gold is not None and "n_gold" in rep:
            typer.echo(f"gold: {rep['n_gold']:,} items clamped; {rep['n_gold_selection']:,} (random sample) also "
                       f"chose and calibrated the model, {rep['n_gold_clamped_only']:,} (actively picked) only "
                       "clamped", err=True)

    @app.command("lf-report")
    def lf_report(
        votes: Path = typer.Argument(..., help=_VOTES_HELP),
        dev: Optional[Path] = typer.Option(None, "--dev", help="Gold dev labels (adds accuracy per LF)."),
        taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", "-t", help="Label names (WRENCH/.npy votes)."),
    ) -> None:
        """Print coverage, overlap, conflict, polarity, errors and (with --dev) accuracy of every LF."""
        from rich.console import Console
        from rich.table import Table

        from ..labelmodel.run import lf_report as report_lfs

        rep = report_lfs(votes, dev=dev, taxonomy=taxonomy)
        t = Table(title=f"{rep.items:,} items, {len(rep.lfs)} LFs, {rep.covered:.1%} covered")
        for c in ("LF", "polarity", "coverage", "overlap", "conflict", "errors") + (("dev acc", "dev n") if rep.dev else ()):
            t.add_column(c, justify="left" if c in ("LF", "polarity") else "right")
        for r in rep.lfs:
            pol = ", ".join(map(str, r.polarity[:4])) + (" ..." if len(r.polarity) > 4 else "")
            cells = [r.lf, pol, f"{r.coverage:.3f}", f"{r.overlap:.3f}", f"{r.conflict:.3f}", str(r.errors)]
            if rep.dev:
                cells += ["-" if r.dev_accuracy is None else f"{r.dev_accuracy:.3f}", str(r.dev_votes)]
            t.add_row(*cells)
        Console(file=sys.stdout, width=160).print(t)
