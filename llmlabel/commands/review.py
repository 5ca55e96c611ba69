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
    from ..errors import InputError
    from ..labelmodel.strategies import select
    from ..review.artifact import read_labeled
    from ..review.roundtrip import STATE_NAME, ReviewState, excluded, write_tasks

    from ..io_write import check_writable

    lab = read_labeled(labeled)
    check_writable(output)  # before any text is embedded: an output that cannot be written is the one error
    st = ReviewState(state if state is not None else labeled.parent / STATE_NAME)
    mask = excluded(lab, st, exclude or [])
    L = None
    vpath = votes if votes is not None else labeled.parent / "votes"
    if strategy == "review" and (votes is not None or (vpath / "_manifest.json").is_file()):
        from ..artifacts.votes import read_votes

        L = read_votes(vpath).matrix
        if L.ids is None or [str(i) for i in L.ids] != lab.ids:
            raise InputError("the votes' items differ from the labeled file's", path=vpath,
                             hint="pass the votes folder this labeled file was aggregated from with --votes")
    with options.embedding_store(embed_cache, no_embed_cache):  # --features minilm: texts labeled before are not re-embedded
        X = _features(features, lab.texts, lab, labeled) if strategy == "review" else None
        rows = select(strategy, n, proba=lab.proba, confidence=lab.confidence, label_index=lab.label_index,
                      votes=None if L is None else L.votes, texts=lab.texts, exclude=mask, seed=seed, features=X)
        r = write_tasks(lab, rows, output, state=st, strategy=strategy)
    how = strategy
    if strategy == "review":
        how += ("" if L is not None else ", no votes found") + (f", {features} classifier" if X is not None else "")
    typer.echo(f"wrote {r['n']} tasks ({how}; "
               f"{int(mask.sum()):,} items already sent, reviewed or human-labeled were left out) to {r['tasks']}; "
               f"labeling config {r['config']}; record {r['state']}", err=True)


def _features(spec: str, texts, lab=None, labeled: Path | None = None):
    """Feature rows for the out-of-fold classifier, or None (``none``, or a labeled file without texts).

    ``tuned``: the run's tuned encoder (recorded in the labeled file's metadata, else ``encoder/`` beside it);
    gold items are embedded by the half that never saw them (:meth:`llmlabel.tuned.TunedEncoder.encode_items`)."""
    if spec == "none" or texts is None:
        return None
    if spec == "tfidf":
        from ..labelmodel.review import text_features

        return text_features(texts)
    if spec == "tuned":
        from ..errors import InputError
        from ..tuned import TunedEncoder

        rec = ((getattr(lab, "meta", None) or {}).get("encoder") or {}).get("path")
        folder = Path(rec) if rec else (labeled.parent / "encoder" if labeled is not None else None)
        if folder is None or not (folder / "tuned.json").is_file():
            raise InputError("--features tuned: no tuned encoder recorded with these labels, nor encoder/ beside them",
                             path=labeled, hint="use --features minilm, or the encoder folder's path")
        return TunedEncoder(folder).encode_items(getattr(lab, "ids", None), list(texts))
    from ..embed import load_embedder

    return load_embedder(spec).encode(list(texts))


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
