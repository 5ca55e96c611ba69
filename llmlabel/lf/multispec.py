"""``llmlabel label`` for a multi-label taxonomy (``multi_label: true``): lfs.yaml -> multi-label LFs -> votes.

The same lfs.yaml kinds, read per label (see :mod:`llmlabel.lf.multilabel`):

.. code-block:: yaml

    lfs:
      - {name: kw, kind: keyword, patterns: {gratitude: [thanks, thank you], joy: [haha]}}
      - {name: kw_group, kind: keyword, patterns: {group_anger: [furious]}}   # a parent: all its leaves
      - {kind: keyphrases}                                                    # the taxonomy's key phrases
      - {name: emb, kind: embedding, threshold: 0.45, thresholds: {grief: 0.5}, low: 0.1}
      - {name: knn, kind: knn, k: 10, threshold: 0.3}                         # needs --gold (labels lists)
      - {name: lr, kind: classifier}          # one-vs-rest LR on the gold's embeddings, cross-fitted; --gold
      - {name: yn, kind: prompted, model: "hf:/models/qwen"}                  # yes/no per label
      - {name: ls, kind: prompted_list, model: "hf:/models/qwen"}             # JSON list of label names

The LFs vote on the taxonomy's leaves; a pattern keyed by a parent votes for every leaf under it. Votes
are stored as binary columns in the ordinary votes folder (:mod:`llmlabel.artifacts.multivotes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts.multivotes import MultiVotes
from ..errors import ConfigError
from .apply import run_one
from .core import ABSTAIN


def build_multi_lfs(spec, taxonomy, *, models: list[str] | None = None, gold: str | Path | None = None,
                    embedder=None, engines=None) -> list:
    """Multi-label LF objects over the taxonomy's leaves (``taxonomy`` keeps its parents for pattern keys):
    each kind's multi-label form (:mod:`llmlabel.lf.kinds`). ``engines``: ``spec -> engine`` for the run
    (:func:`llmlabel.llm.engine_factory`); ``gold``: the gold file (``id``, ``text``, ``labels``)."""
    from .spec import build_lfs

    return build_lfs(spec, taxonomy, models=models, gold=gold, embedder=embedder, engines=engines, multi_label=True)


def apply_multi_lfs(lfs: Sequence, texts: Sequence[str], *, labels: Sequence[str], label_ids: Sequence[str],
                    items: Sequence[dict] | None = None, ids: Sequence | None = None) -> MultiVotes:
    """Every multi-label LF on every text (cheap LFs first); ``MultiVotes`` in LF order."""
    texts, labels = list(texts), list(labels)
    for lf in lfs:
        if not getattr(lf, "multi_label", False):
            raise ConfigError(f"LF '{lf.name}' is single-label; a multi-label run needs multi-label LFs")
        if list(lf.labels) != labels:
            raise ConfigError(f"LF '{lf.name}' votes over other labels than the run's", hint="build every LF "
                              "from the same taxonomy")
    n, k = len(texts), len(labels)
    votes = np.full((n, len(lfs), k), ABSTAIN, np.int16)
    p_yes: dict[str, np.ndarray] = {}
    errors0 = {lf.name: lf.errors for lf in lfs}
    for j in sorted(range(len(lfs)), key=lambda j: lfs[j].cost == "llm"):
        if not n:
            break
        v, p = run_one(lfs[j], texts, None if items is None else list(items), k)
        votes[:, j] = v
        if p is not None:
            p_yes[lfs[j].name] = np.where(v >= 0, p, np.nan).astype(np.float32)
    errors = {lf.name: lf.errors - errors0[lf.name] for lf in lfs}
    return MultiVotes(votes, [lf.name for lf in lfs], labels, list(label_ids),
                      None if ids is None else [str(i) for i in ids], p_yes, errors)


def write_crossfit_multi(folder, lfs, gold, *, label_ids: Sequence[str], depends: dict, data=None,
                         text_field=None, id_field=None, size: int | None = None, seed: int = 0) -> dict | None:
    """:func:`llmlabel.lf.crossfit.write_crossfit` for a multi-label votes folder: the multi-label gold LFs'
    votes on the sample, once per fold of ``gold`` (a :class:`~llmlabel.lf.gold.MultiGoldSet`), in the
    multi-label layout (:func:`llmlabel.artifacts.crossfit.write_crossfit_multi_votes`)."""
    from ..artifacts.crossfit import VOTES_FILE, GoldFolds, read_crossfit_multi_votes, write_crossfit_multi_votes
    from .crossfit import SAMPLE_ROWS, sample_items, current_summary, gold_derived

    chosen = [lf for lf in lfs if gold_derived(lf) and lf.cost != "llm"]
    if not chosen:  # nothing to cross-fit; a file left by an earlier spec of this folder would be stale
        (Path(folder) / VOTES_FILE).unlink(missing_ok=True)
        return None
    old = current_summary(folder, read_crossfit_multi_votes, depends)
    if old is not None:
        return old
    ids, texts = sample_items(folder, gold, data, text_field, id_field, size or SAMPLE_ROWS, seed)
    items = [{"id": i, "text": t} for i, t in zip(ids, texts)]
    votes, p_yes = [], []
    for f in range(gold.folds):
        with gold.as_fold(f):
            mv = apply_multi_lfs(chosen, texts, labels=gold.labels, label_ids=list(label_ids), items=items, ids=ids)
        votes.append(mv.votes)
        p_yes.append(mv.p_yes)
    folds = GoldFolds(tuple(gold.ids), np.asarray(gold.fold), gold.folds, np.asarray(gold.Y))
    names = [lf.name for lf in chosen]
    path = write_crossfit_multi_votes(folder, ids=ids, lf_names=names, labels=gold.labels, label_ids=label_ids,
                                      votes=votes, p_yes=p_yes, gold=folds,
                                      meta={"depends_on": depends, "sample_seed": seed,
                                            "llm_stand_ins": [lf.name for lf in lfs
                                                              if gold_derived(lf) and lf.cost == "llm"]})
    return {"file": str(path), "items": len(ids), "lfs": names, "reused": False}
