"""``llmlabel xmc`` (Infer-Retrieve-Rank over 10^4-10^6 labels) and ``llmlabel xmc-eval`` (RP@k, recall@k, ...).

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from . import options

DEFAULT_RETRIEVER = "minilm+wordllama+bm25"  # = llmlabel.xmc.retrieve.DEFAULT_RETRIEVER (kept light here)


def xmc(
    data: Path = typer.Argument(..., help="Texts to label (JSONL, CSV, Parquet, datasets folder)."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Label file: one label a line (or a JSON list)."),
    output: Path = options.output("Predictions (JSONL: id, labels, scores)."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="LLM for Infer and Rank (hf:..., vllm:..., openai:...#...). "
                                             "Without it: retrieval only."),
    k: int = typer.Option(10, "-k", help="Labels per item."),
    retriever: str = typer.Option(DEFAULT_RETRIEVER, "--retriever",
                                  help="'+'-joined embedders (minilm, wordllama, any sentence-transformers "
                                       "name) and bm25; scores are z-normalised and added."),
    priors: Optional[Path] = typer.Option(None, "--priors", help="JSON {label: frequency}: label priors."),
    prior_weight: float = typer.Option(1.0, "--prior-weight", help="Weight of the (z-scored log) prior."),
    expand_weight: float = typer.Option(0.0, "--expand-weight",
                                        help="Weight of key-phrase queries cut from the text (no LLM)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Labeled examples to optimise the program."),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Labeled examples to score before/after."),
    gold_field: str = typer.Option("labels", "--gold-field", help="Gold label field in --train/--dev."),
    program: Optional[Path] = typer.Option(None, "--program", help="Load a saved (optimised) program JSON."),
    save_program: Optional[Path] = typer.Option(None, "--save-program",
                                                help="Also save the optimised program here (it is always "
                                                     "saved next to the label index and reused)."),
    task: str = typer.Option("labels", "--task", help="What the labels are, for the prompts (e.g. 'skills')."),
    rank_topn: int = typer.Option(20, "--rank-topn", help="Shortlist size the Rank step sees."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Reply budget of each Infer / Rank call."),
    text_field: Optional[str] = options.text_field(),
    id_field: Optional[str] = options.id_field(),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed rows instead of stopping."),
    index_dir: Optional[Path] = typer.Option(None, "--index-dir",
                                             help="Label-index cache (default: $LLMLABEL_INDEX_DIR or "
                                                  "the user cache dir)."),
    no_index_cache: bool = typer.Option(False, "--no-index-cache", help="Embed the labels, cache nothing."),
    cache: Optional[Path] = options.cache(),
    no_cache: bool = options.no_cache(),
    embed_cache: Optional[Path] = options.embed_cache(),
    no_embed_cache: bool = options.no_embed_cache(),
    batch_size: int = typer.Option(512, "--batch-size", help="Items processed (and LLM-batched) at once."),
) -> None:
    """Rank labels from a huge label space for each text (Infer-Retrieve-Rank; retrieval only without --model)."""
    from ..llm import usage_log
    from ..xmc.api import run_xmc

    with options.embedding_store(embed_cache, no_embed_cache):
        res = run_xmc(data, labels, output, model=model, k=k, retriever=retriever, priors=priors,
                      prior_weight=prior_weight, expand_weight=expand_weight, train=train, dev=dev,
                      gold_field=gold_field, program=program, save_program=save_program, task=task,
                      rank_topn=rank_topn, max_tokens=max_tokens, text_field=text_field, id_field=id_field,
                      skip_bad=skip_bad, index_dir=index_dir, no_index_cache=no_index_cache, cache=cache,
                      no_cache=no_cache, batch_size=batch_size, progress=True,
                      log=lambda s: typer.echo(s, err=True))
    typer.echo(res.read, err=True)
    typer.echo(f"wrote {res.rows:,} rows to {output} ({res.rows / max(res.seconds, 1e-9):,.1f} items/s)",
               err=True)
    if res.program is not None:
        s = res.program
        typer.echo(f"program: {s['infer_unparsed']} Infer / {s['rank_unparsed']} Rank replies unparsed "
                   f"(retrieval fallback), {s['truncated']} texts truncated", err=True)
        typer.echo(usage_log.summary(), err=True)


def xmc_eval(
    preds: Path = typer.Argument(..., help="Predictions from llmlabel xmc (JSONL with id and labels)."),
    gold: Path = typer.Argument(..., help="Gold JSONL with id and a list of labels."),
    gold_field: str = typer.Option("labels", "--gold-field", help="Gold label field."),
    pred_field: str = typer.Option("labels", "--pred-field", help="Predicted label field."),
    id_field: str = typer.Option("id", "--id-field", help="Id field in both files (default: id; "
                                                            "rows are matched by it)."),
    ks: str = typer.Option("1,5,10,50,100", "--k", help="Comma-separated cut-offs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """RP@k, recall@k, precision@k and nDCG@k of predictions against gold labels."""
    from ..xmc.api import evaluate_predictions

    try:
        cutoffs = sorted({int(x) for x in ks.split(",") if x.strip()})
    except ValueError as e:
        raise InputError(f"bad --k {ks!r}", hint="e.g. --k 1,5,10") from e
    if not cutoffs or cutoffs[0] < 1:
        raise InputError(f"bad --k {ks!r}", hint="positive integers, e.g. --k 1,5,10")
    res = evaluate_predictions(preds, gold, gold_field=gold_field, pred_field=pred_field, id_field=id_field,
                               ks=cutoffs)
    if as_json:
        typer.echo(json.dumps(res.metrics(), indent=2))
        return
    typer.echo(f"{res.items} items scored ({res.items_without_gold} without gold skipped, "
               f"{res.gold_rows_without_prediction} gold rows without a prediction counted as empty)")
    typer.echo("k\tRP@k\trecall@k\tprecision@k\tnDCG@k")
    for c in res.ks:
        typer.echo(f"{c}\t{res.scores[f'RP@{c}']:.4f}\t{res.scores[f'recall@{c}']:.4f}\t"
                   f"{res.scores[f'precision@{c}']:.4f}\t{res.scores[f'nDCG@{c}']:.4f}")


def register(app: typer.Typer) -> None:
    app.command()(xmc)
    app.command("xmc-eval")(xmc_eval)
