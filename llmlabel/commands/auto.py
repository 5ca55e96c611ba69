"""``llmlabel auto DATA -o RUN_DIR``: labels, a model and a report in one command (a thin shell over
:func:`llmlabel.auto.auto`, which writes ``RUN_DIR/pipeline.yaml`` and runs it as ``llmlabel run`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options


def register(app: typer.Typer) -> None:
    @app.command("auto")
    def auto(
        data: str = typer.Argument(..., help="Corpus: JSONL, CSV/TSV, Parquet, datasets folder or hf://NAME."),
        output: Path = options.output("Run folder: pipeline.yaml, lfs.yaml and every output go there."),
        labels: Optional[Path] = typer.Option(None, "--labels", help="Your label set: labels.txt (one a line, "
                                                                     "optionally 'name: description') or a "
                                                                     "labels.yaml tree. Default: induce one."),
        gold: Optional[Path] = typer.Option(None, "--gold", help="~100 labeled items (JSONL/CSV: id, text, label; "
                                                                 "multi-label: labels), ids as in DATA: gold LFs, "
                                                                 "label-model choice and calibration, an accuracy "
                                                                 "estimate."),
        model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="An LLM engine spec (hf:..., "
                                                                              "vllm:..., openai:URL#MODEL, "
                                                                              "smollm2): a prompted LF each, and "
                                                                              "the first names the labels."),
        multi_label: bool = typer.Option(False, "--multi-label", help="Items may carry several labels."),
        student: Optional[str] = typer.Option(None, "--student", help="static (WordLlama + head, seconds) or "
                                                                      "minilm (fine-tuned encoder, minutes); "
                                                                      "default: distill's default."),
        max_labels: Optional[int] = typer.Option(None, "--max-labels", help="Most labels to induce (without "
                                                 "--labels; default 30, fewer when the corpus has under 90 distinct "
                                                 "texts: 3 a label)."),
        embedder: Optional[str] = typer.Option(None, "--embedder", help="Embedder for the taxonomy and the LFs: "
                                                                        "minilm, wordllama (faster) or a "
                                                                        "sentence-transformers model (default: "
                                                                        "each stage's own)."),
        cache: Optional[Path] = options.cache(),
        no_cache: bool = options.no_cache(),
        report: bool = typer.Option(True, "--report/--no-report", help="Write RUN_DIR/report.html."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a pipeline.yaml or lfs.yaml you edited "
                                                                  "in RUN_DIR (default: refuse)."),
        text_field: Optional[str] = options.text_field(),
        id_field: Optional[str] = options.id_field(),
        select_metric: Optional[str] = typer.Option(None, "--select-metric", help="With --gold: what the safety "
                                                    "net maximises out-of-fold on your gold, accuracy (default) or "
                                                    "macro_f1 (a rare class counts as much as a common one)."),
    ) -> None:
        """The whole chain for what you have: writes RUN_DIR/pipeline.yaml and runs it (rerun to resume).

        Prints where the labels, model and report are, the LFs' coverage, the label model's estimated accuracy
        (with --gold) and the student's figure. To change the chain, edit RUN_DIR/pipeline.yaml and lfs.yaml and
        `llmlabel run RUN_DIR/pipeline.yaml`.
        """
        from ..auto import auto as run_auto

        res = run_auto(data, output, labels=labels, gold=gold, models=model or (), multi_label=multi_label,
                       student=student, max_labels=max_labels, embedder=embedder, cache=cache, no_cache=no_cache,
                       report=report, overwrite=overwrite, select_metric=select_metric, text_field=text_field,
                       id_field=id_field, echo=lambda s: typer.echo(s, err=True))
        typer.echo(f"[auto] done: {len(res.ran)} stage(s) ran, {len(res.skipped)} up to date", err=True)
        typer.echo(res.summary())
