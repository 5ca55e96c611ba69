"""``llmlabel review export`` / ``review import``: the human review round trip through Label Studio.

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options

review_app = typer.Typer(help="Send the riskiest labels to people (Label Studio) and read their answers back as gold.",
                         no_args_is_help=True)


@review_app.command("export")
def export(
    labeled: Path = typer.Argument(..., help="labeled.parquet from `llmlabel aggregate`."),
    output: Path = typer.Option(..., "--output", "-o", help="Label Studio tasks (.json); the labeling config is "
                                                            "written beside it as <name>.config.xml."),
    n: int = typer.Option(200, "--n", help="How many items to send."),
    strategy: str = typer.Option("review", "--strategy", help="random, uncertainty (lowest confidence), review "
                                                              "(review-queue risk) or diverse (uncertainty spread "
                                                              "over labels, no near-duplicates)."),
    state: Optional[Path] = typer.Option(None, "--state", help="Record of items sent and reviewed (default: "
                                                               "review_state.json beside the labeled file)."),
    exclude: Optional[list[Path]] = typer.Option(None, "--exclude", help="Gold files whose items are never sent."),
    votes: Optional[Path] = typer.Option(None, "--votes", help="Votes folder for the review strategy's disagreement "
                                                               "signal (default: votes/ beside the labeled file)."),
    features: str = typer.Option("tfidf", "--features", help="What the review strategy's out-of-fold classifier "
                                                             "reads (cleanlab-style self-confidence): tfidf (word "
                                                             "counts, no model), an embedder spec such as minilm "
                                                             "(better, embeds every text), tuned (the run's encoder "
                                                             "tuned on the gold), or none."),
    seed: int = typer.Option(0, "--seed", help="Seed for random choices and ties."),
    embed_cache: Optional[Path] = options.embed_cache(),
    no_embed_cache: bool = options.no_embed_cache(),
) -> None:
    """Write Label Studio tasks (our label as a scored prediction) for items nobody has reviewed yet."""
    from ..labelmodel.strategies import select
    from ..review.export import export_review

    with options.embedding_store(embed_cache, no_embed_cache):  # --features minilm: texts labeled before are not re-embedded
        r = export_review(labeled, output, select=select, n=n, strategy=strategy, state=state, exclude=exclude or [],
                          votes=votes, features=features, seed=seed)
    how = strategy
    if strategy == "review":
        how += ("" if r.votes_used else ", no votes found") + (f", {r.features} classifier" if r.features else "")
    typer.echo(f"wrote {r.n} tasks ({how}; "
               f"{r.excluded:,} items already sent, reviewed or human-labeled were left out) to {r.tasks}; "
               f"labeling config {r.config}; record {r.state}", err=True)


@review_app.command("import")
def import_(
    export_file: Path = typer.Argument(..., metavar="EXPORT", help="Label Studio export: JSON, JSON-MIN or CSV."),
    output: Path = typer.Option(..., "--output", "-o", help="Gold JSONL (id, label, agreement); earlier rounds' "
                                                            "rows in it are kept."),
    labeled: Optional[Path] = typer.Option(None, "--labeled", help="The labeled file the tasks came from (checks "
                                                                   "ids and labels)."),
    taxonomy: Optional[Path] = typer.Option(None, "--taxonomy", "-t", help="Taxonomy YAML (checks labels)."),
    add_labels: bool = typer.Option(False, "--add-labels", help="Add labels people used that the taxonomy lacks "
                                                                "(to --taxonomy) instead of stopping."),
    state: Optional[Path] = typer.Option(None, "--state", help="Review record to update (default: "
                                                               "review_state.json beside --output)."),
) -> None:
    """Read people's answers: skipped tasks dropped, several annotators resolved by majority (conflicts reported)."""
    from ..review.roundtrip import import_annotations

    r = import_annotations(export_file, output, taxonomy=taxonomy, labeled=labeled, add_labels=add_labels, state=state)
    msg = (f"{r['annotations']} annotations by {r['annotators']} annotator(s) -> {r['rows']} gold labels "
           f"({r['total']} in {r['gold']}); {r['skipped']} skipped; {len(r['conflicts_resolved'])} conflicts "
           f"resolved by majority, {len(r['ties_dropped'])} ties dropped")
    if r["new_labels"]:
        msg += f"; added labels {', '.join(r['new_labels'])} to {taxonomy} (rerun `llmlabel label` so LFs see them)"
    typer.echo(msg, err=True)
    for c in r["conflicts_resolved"][:10] + r["ties_dropped"][:10]:
        typer.echo(f"  conflict: item {c['id']} (task {c['task_id']}): {c['votes']}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
