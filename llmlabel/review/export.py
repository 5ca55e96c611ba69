"""``llmlabel review export`` as a library call: a labeled file -> Label Studio tasks for items nobody has
reviewed yet, the labeling config beside them, and the review record updated.

Which rows go out is the label model's choice (``labelmodel.strategies.select``); stage packages never import
each other, so the caller passes it in, as the cascade's caller passes in its LLM labeler:

>>> from llmlabel.labelmodel.strategies import select
>>> export_review("labeled.parquet", "tasks.json", select=select, n=100, strategy="review")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..artifacts.review import STATE_FILE, ReviewState
from ..errors import InputError
from ..results import ReviewExportResult
from .roundtrip import excluded, write_tasks


def export_review(labeled: str | Path, output: str | Path, *, select: Callable, n: int = 200,
                  strategy: str = "review", state: str | Path | None = None, exclude: Sequence[str | Path] = (),
                  votes: str | Path | None = None, features: str = "tfidf", seed: int = 0) -> ReviewExportResult:
    """Write ``n`` Label Studio tasks (our label as a scored prediction) chosen by ``strategy`` from ``labeled``.

    Items already sent or reviewed (``state``, default ``review_state.json`` beside ``labeled``), in an
    ``exclude`` gold file, or human-labeled are never sent. The ``review`` strategy also reads the LF votes
    (``votes``, default ``votes/`` beside ``labeled`` when it is there) and, unless ``features="none"``, an
    out-of-fold classifier on ``features``: ``tfidf`` (word counts), ``tuned`` (the run's tuned encoder) or an
    embedder spec. ``select(strategy, n, *, proba, confidence, label_index, votes, texts, exclude, seed,
    features)`` returns the row indices to send. Returns a :class:`~llmlabel.results.ReviewExportResult`."""
    from ..io_write import check_writable
    from .artifact import read_labeled

    labeled = Path(labeled)
    lab = read_labeled(labeled)
    check_writable(output)  # before any text is embedded: an output that cannot be written is the one error
    st = ReviewState(state if state is not None else labeled.parent / STATE_FILE)
    mask = excluded(lab, st, list(exclude))
    L = _votes(lab, labeled, votes) if strategy == "review" else None
    X = feature_rows(features, lab.texts, lab, labeled) if strategy == "review" else None
    rows = select(strategy, n, proba=lab.proba, confidence=lab.confidence, label_index=lab.label_index,
                  votes=None if L is None else L.votes, texts=lab.texts, exclude=mask, seed=seed, features=X)
    r = write_tasks(lab, rows, output, state=st, strategy=strategy)
    return ReviewExportResult(tasks=r["tasks"], config=r["config"], state=r["state"], n=r["n"], ids=tuple(r["ids"]),
                              strategy=strategy, excluded=int(mask.sum()), votes_used=L is not None,
                              features=features if X is not None else None)


def _votes(lab, labeled: Path, votes: str | Path | None):
    """The LF votes for the disagreement signal: ``votes``, else ``votes/`` beside the labeled file if there."""
    vpath = Path(votes) if votes is not None else labeled.parent / "votes"
    if votes is None and not (vpath / "_manifest.json").is_file():
        return None
    from ..artifacts.votes import read_votes

    L = read_votes(vpath).matrix
    if L.ids is None or [str(i) for i in L.ids] != lab.ids:
        raise InputError("the votes' items differ from the labeled file's", path=vpath,
                         hint="pass the votes folder this labeled file was aggregated from with --votes")
    return L


def feature_rows(spec: str, texts, lab=None, labeled: str | Path | None = None):
    """Feature rows for the out-of-fold classifier, or None (``none``, or a labeled file without texts).

    ``tuned``: the run's tuned encoder (recorded in the labeled file's metadata, else ``encoder/`` beside it);
    gold items are embedded by the half that never saw them (:meth:`llmlabel.tuned.TunedEncoder.encode_items`)."""
    if spec == "none" or texts is None:
        return None
    if spec == "tfidf":
        from ..embed.tfidf import text_features

        return text_features(texts)
    if spec == "tuned":
        from ..tuned import TunedEncoder, recorded_folders

        folder = next(iter(recorded_folders(getattr(lab, "meta", None), labeled)), None)
        if folder is None or not (folder / "tuned.json").is_file():
            raise InputError("--features tuned: no tuned encoder recorded with these labels, nor encoder/ beside them",
                             path=labeled, hint="use --features minilm, or the encoder folder's path")
        return TunedEncoder(folder).encode_items(getattr(lab, "ids", None), list(texts))
    from ..embed import load_embedder

    return load_embedder(spec).encode(list(texts))
