"""``llmlabel taxonomy CORPUS -o taxonomy.yaml``: induce labels from raw text (imports nothing heavy here)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options

MODEL_HELP = "LLM engine spec (hf:PATH, vllm:MODEL, openai:URL#MODEL). Without it: embeddings + clustering only."


def taxonomy(
    corpus: str = typer.Argument(..., help="Corpus file (.jsonl/.csv/.tsv/.txt/.parquet, folder, or hf://NAME)."),
    output: Optional[Path] = options.output("Taxonomy YAML to write (default: taxonomy.yaml).", None),
    out: Optional[Path] = options.hidden_alias("--out"),
    instruction: str = typer.Option("", "--instruction", "-i", help="What the labels are for."),
    max_labels: Optional[int] = typer.Option(None, "--max-labels", "-k", help="Most labels to produce (default 30, "
                                             "fewer when the corpus has under 90 distinct texts: 3 a label)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    mode: str = typer.Option("seeded", "--mode", help="With --model: 'seeded' (LLM names/merges clusters) "
                                                      "or 'tnt' (TnT-LLM loop over minibatches)."),
    levels: int = typer.Option(1, "--levels", help="1 = flat, 2 = labels grouped under parents."),
    sample: Optional[int] = typer.Option(None, "--sample", help="Use a seeded random sample of N items."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed + input = same output)."),
    embedder: Optional[str] = typer.Option(None, "--embedder", "-e",
                                           help="auto (default: minilm up to 30k distinct texts, wordllama "
                                                "above), minilm (better), wordllama (~20x faster) or a "
                                                "sentence-transformers model name/path."),
    text_field: Optional[str] = options.text_field(),
    id_field: Optional[str] = options.id_field(),
    refine: Optional[Path] = typer.Option(None, "--refine", help="Keep this taxonomy's labels and ids; "
                                                                 "assign items and propose new labels."),
    assignments: Optional[Path] = typer.Option(None, "--assignments",
                                               help="Where to write per-item labels (default: "
                                                    "<output stem>.assignments.jsonl next to --output)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Use your own labels (labels.txt: a name per "
                                          "line, optional TAB description; labels.yaml: a list, or parents "
                                          "mapping to children): no clustering; descriptions, examples and "
                                          "key phrases are filled in from the corpus."),
    multi_label: bool = typer.Option(False, "--multi-label", help="Items may carry several labels "
                                                                  "(writes multi_label: true)."),
    cache: Optional[Path] = options.cache(),
    no_cache: bool = options.no_cache(),
    embed_cache: Optional[Path] = options.embed_cache(),
    no_embed_cache: bool = options.no_embed_cache(),
    quiet: bool = options.quiet("No progress bars or table."),
    backend: str = options.backend(),
    address: Optional[str] = options.address(),
    num_workers: int = options.num_workers(),
) -> None:
    """Induce a taxonomy (labels with ids, names, descriptions, examples) from raw texts.

    With --backend ray the taxonomy is fitted on a seeded sample (--sample, default 20,000) on this machine
    and every item is embedded and assigned to its nearest label on Ray.
    """
    from ..scale.backend import induce_taxonomy

    output = options.pick_output(output, out, "--out", default=Path("taxonomy.yaml"))
    with options.embedding_store(embed_cache, no_embed_cache):
        if labels is not None:
            _refuse_induce_options(max_labels=max_labels is not None, mode=mode != "seeded", levels=levels != 1,
                                   refine=refine is not None, address=address is not None,
                                   num_workers=num_workers != 1)
            res = _from_labels(labels, corpus, output, backend=backend, multi_label=multi_label, model=model,
                               embedder=embedder, instruction=instruction, sample=sample, seed=seed,
                               text_field=text_field, id_field=id_field, assignments=assignments, cache=cache,
                               no_cache=no_cache, progress=not quiet)
        else:
            if max_labels is None:
                max_labels = _room(corpus, sample, refine, text_field, id_field)
            res = induce_taxonomy(corpus, output, max_labels=max_labels, instruction=instruction, model=model,
                                  mode=mode, levels=levels, sample=sample, seed=seed, embedder=embedder,
                                  text_field=text_field, id_field=id_field, refine=refine, assignments=assignments,
                                  cache=cache, no_cache=no_cache, progress=not quiet, multi_label=multi_label,
                                  backend=backend, address=address, num_workers=num_workers)
    _print_result(res, quiet=quiet, model=model)


def _room(corpus: str, sample: Optional[int], refine, text_field: Optional[str], id_field: Optional[str]) -> int:
    """The default number of labels, fewer for a small corpus (said on stderr); a sample or a refined taxonomy
    keeps the default (the sample is drawn later; refining proposes new labels on top)."""
    from ..taxonomy.items import MAX_LABELS, labels_room

    if sample is not None or refine is not None:
        return MAX_LABELS
    return labels_room(corpus, text_field=text_field, id_field=id_field, say=lambda m: typer.echo(m, err=True))


def _refuse_induce_options(**given: bool) -> None:
    """A given label set is not induced: options that only shape induction would be ignored, so say so."""
    named = ["--" + k.replace("_", "-") for k, v in given.items() if v]
    if named:
        from ..errors import ConfigError

        raise ConfigError(f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply with --labels "
                          "(a given label set is not induced)", hint="drop them, or drop --labels")


def _from_labels(labels: Path, corpus: str, output: Path, *, backend: str, **kw):
    """``--labels``: the user's label set, filled in from the corpus (local only: there is nothing to cluster)."""
    if backend != "local":
        from ..errors import ConfigError

        raise ConfigError("--labels runs on the local backend only (nothing to cluster)",
                          hint="drop --backend ray")
    from ..taxonomy import taxonomy_from_labels

    return taxonomy_from_labels(labels, corpus, output, **kw)


def _print_result(res, *, quiet: bool, model: Optional[str]) -> None:
    """The summary table (unless ``quiet``) and the run's lines on stderr, ending with the files written."""
    from rich.console import Console

    from ..taxonomy.report import summary_table

    paths = res.paths
    if "ray" in res.stats:
        r = res.stats["ray"]
        typer.echo(f"assigned {r['items']:,} items on Ray ({r['other_share']:.1%} other); "
                   f"fitted on {r['fitted_on']:,}", err=True)
    if not quiet:
        Console().print(summary_table(res))
    s = res.stats
    typer.echo(f"{s.get('read', str(s['items_read']) + ' items')}; {s['distinct_texts']:,} distinct; "
               f"{s['labels']} labels, {s['other_share']:.1%} other, {s['seconds']:.1f}s", err=True)
    if s.get("embedder_auto"):
        typer.echo(f"embedder: {s['embedder_auto']}", err=True)
    if s.get("truncated_for_embedding"):
        typer.echo(f"{s['truncated_for_embedding']:,} long texts were truncated for embedding", err=True)
    if s.get("llm_fallbacks"):
        typer.echo(f"{s['llm_fallbacks']} LLM replies failed the schema; key-phrase names kept "
                   f"(raw replies: {', '.join(s.get('raw_replies', []))})", err=True)
    if model:
        from ..llm import usage_log

        typer.echo(usage_log.summary(), err=True)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()), err=True)


def register(app: typer.Typer) -> None:
    app.command("taxonomy")(taxonomy)
