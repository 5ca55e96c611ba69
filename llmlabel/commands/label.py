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
        lfs: Optional[Path] = typer.Option(None, "--lfs", help="lfs.yaml listing the labeling functions (default: "
                                                               "keyphrases + embedding; + knn and logreg with "
                                                               "--gold; + a prompted LF per --model; saved as "
                                                               "OUTPUT/lfs.yaml)."),
        output: Path = options.output("Votes folder (Parquet shards; resumable)."),
        model: Optional[list[str]] = typer.Option(None, "--model", "-m",
                                                  help="Model spec for prompted LFs that name none; repeat for "
                                                       "several models (one LF per model)."),
        cache: Optional[Path] = options.cache(),
        no_cache: bool = options.no_cache(),
        embed_cache: Optional[Path] = options.embed_cache(),
        no_embed_cache: bool = options.no_embed_cache(),
        text_field: Optional[str] = options.text_field(),
        id_field: Optional[str] = options.id_field(),
        shard_size: int = typer.Option(1000, "--shard-size", help="Items per shard (keep it when resuming)."),
        gold: Optional[Path] = typer.Option(None, "--gold", help="Gold JSONL/CSV (id, text, label name) for knn, "
                                                                 "logreg, gold few-shot LFs and threshold: auto; gold "
                                                                 "items get out-of-fold votes."),
        no_text: bool = typer.Option(False, "--no-text", help="Do not copy texts into the votes folder."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a votes folder made from another "
                                                                  "corpus (default: refuse it)."),
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
        from ..llm import usage_log
        from ..scale.backend import label_corpus

        with options.embedding_store(embed_cache, no_embed_cache):
            res = label_corpus(data, taxonomy, lfs, output, model=model or None, cache=cache, no_cache=no_cache,
                               shard_size=shard_size, text_field=text_field, id_field=id_field, progress=not quiet,
                               keep_text=not no_text, command=sys.argv, overwrite=overwrite, gold=gold, backend=backend,
                               address=address, num_workers=num_workers, gpus_per_worker=gpus_per_worker,
                               batch_size=batch_size)
        if res.default_lfs:
            typer.echo(f"no --lfs: the default LFs ({res.default_lfs}); saved as {Path(res.out) / 'lfs.yaml'} "
                       "to edit and pass back with --lfs", err=True)
        if res.restarted:
            typer.echo(f"relabeling from the start: {res.restarted} (unchanged LLM prompts come from the cache)",
                       err=True)
        if res.embedder_auto:
            typer.echo(f"embedder (lfs.yaml names none): {res.embedder_auto}", err=True)
        errs = {k: v for k, v in res.errors.items() if v}
        typer.echo(f"{res.read}; labeled {res.rows_labeled:,} new items into {res.shards} shards "
                   f"in {res.out}" + (f"; LF errors (abstained): {errs}" if errs else ""), err=True)
        if usage_log.as_dict():  # prompted LFs ran (the Ray actors' usage included): calls, cache hits, tokens
            typer.echo(usage_log.summary(), err=True)
