"""``llmlabel label``: apply labeling functions to a corpus into a resumable votes folder.

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import options


def register(app: typer.Typer) -> None:
    @app.command()
    def label(
        data: str = typer.Argument(..., help="Corpus: JSONL, CSV/TSV, Parquet, datasets folder or hf://NAME."),
        taxonomy: Path = typer.Option(..., "--taxonomy", "-t", help="Taxonomy YAML (the label set)."),
        lfs: Path = typer.Option(..., "--lfs", help="lfs.yaml listing the labeling functions."),
        output: Path = typer.Option(..., "--output", "-o", help="Votes folder (Parquet shards; resumable)."),
        model: Optional[list[str]] = typer.Option(None, "--model", "-m",
                                                  help="Model spec for prompted LFs that name none; repeat for "
                                                       "several models (one LF per model)."),
        text_field: Optional[str] = options.text_field(),
        id_field: Optional[str] = options.id_field(),
        shard_size: int = typer.Option(1000, "--shard-size", help="Items per shard (keep it when resuming)."),
        no_text: bool = typer.Option(False, "--no-text", help="Do not copy texts into the votes folder."),
        quiet: bool = options.quiet(),
        backend: str = options.backend(),
        address: Optional[str] = options.address(),
        num_workers: int = options.num_workers(),
        gpus_per_worker: float = options.gpus_per_worker(),
        batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                                 help="Items per Ray actor call (default: --shard-size). "
                                                      "With --backend ray."),
    ) -> None:
        """Apply keyword/regex/embedding/prompted-LLM LFs in batches; rerun the same command to resume."""
        ray_kw = options.ray_kwargs(backend, address, num_workers, gpus_per_worker)
        if ray_kw is None and batch_size is not None:
            raise options_error("--batch-size")
        kw = dict(models=model or None, shard_size=shard_size, text_field=text_field, id_field=id_field,
                  progress=not quiet, keep_text=not no_text, command=sys.argv)
        if ray_kw is None:
            from ..lf.run import label_corpus

            res = label_corpus(data, taxonomy, lfs, output, **kw)
        else:
            from ..scale.ray import label_corpus_ray

            res = label_corpus_ray(data, taxonomy, lfs, output, batch_size=batch_size, **kw, **ray_kw)
        errs = {k: v for k, v in res["errors"].items() if v}
        typer.echo(f"{res['read']}; labeled {res['rows_labeled']:,} new items into {res['shards']} shards "
                   f"in {res['out']}" + (f"; LF errors (abstained): {errs}" if errs else ""), err=True)
        from ..llm.usage import usage_log

        if usage_log.as_dict():  # model calls and cache hits, the actors' included on Ray
            typer.echo(usage_log.summary(), err=True)


def options_error(flag: str):
    from ..errors import ConfigError

    return ConfigError(f"{flag} only applies with --backend ray", hint="add --backend ray")
