"""The two forms of a labeling run's votes: one class per item (one-of-k) and label sets (multi-label).

Everything :func:`llmlabel.lf.run.label_corpus` does is the same for both: reading the corpus, the manifest and
its dependencies, the shards and their resume, the error share, the saved LF set. A :class:`VoteForm` is what
differs: which LFs run and on which gold, the votes folder's columns and their classes, how one batch is voted,
and how the safety net's cross-fitted votes are made (:mod:`llmlabel.lf.crossfit`). A multi-label run stores
each (LF, label) pair as a binary ``no``/``yes`` column (:mod:`llmlabel.artifacts.multivotes`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: LF kinds whose class probabilities are stored beside their votes.
PROB_KINDS = ("prompted", "embedding", "knn", "logreg", "setfit")
PROB_KINDS_MULTI = ("embedding", "knn", "classifier", "prompted_multilabel")


@dataclass(frozen=True)
class VoteForm:
    """How one run's LFs vote and how the votes folder stores them.

    ``apply(texts, items, ids)`` votes one batch: ``(LabelMatrix to store, items failed per LF)``;
    ``crossfit(folder, depends)`` writes the safety net's cross-fitted votes (None without gold LFs)."""

    lfs: list
    columns: list[str]
    classes: list[str]
    prob_columns: list[str]
    label_texts: list[str]
    apply: Callable
    crossfit: Callable[[Path, dict], dict | None]
    meta: dict = field(default_factory=dict)
    tuned: Any = None
    multi_label: bool = False

    def lf_errors(self, column_errors: Mapping[str, int]) -> dict[str, int]:
        """Items failed per LF from the votes folder's per-column counts (a multi-label LF's count is on its first
        column)."""
        if not self.multi_label:
            return dict(column_errors)
        return {lf.name: int(sum(v for x, v in column_errors.items() if x.startswith(lf.name + "/")))
                for lf in self.lfs}


def one_of_k(full, spec, *, gold: Path | None, models, engines, embedder, source: dict, out, encoder,
             progress: bool = False) -> VoteForm:
    """One class per item over the taxonomy's leaves; a gold file gives the gold-derived LFs their folds, and the
    run's tuned encoder when an LF reads it."""
    from .apply import apply_lfs
    from .spec import build_lfs

    tax = full.class_taxonomy()
    labels = tax.classes()
    gold_set, tuned = _gold_and_encoder(gold, tax, labels, spec, out, encoder, progress)
    lfs = build_lfs(spec, tax, models=models, engines=engines, gold=gold_set, embedder=embedder, tuned=tuned)

    def apply(texts, items, ids):
        L = apply_lfs(lfs, texts, labels=labels, items=items, ids=ids)
        return L, L.errors

    def crossfit(folder, depends):
        if gold_set is None:
            return None
        from .crossfit import write_crossfit

        return write_crossfit(folder, lfs, gold_set, labels, depends=depends, **source)

    return VoteForm(lfs, [lf.name for lf in lfs], labels, [lf.name for lf in lfs if lf.kind in PROB_KINDS],
                    tax.label_texts(), apply, crossfit, tuned=tuned)


def label_sets(full, spec, *, gold: Path | None, models, engines, embedder, source: dict) -> VoteForm:
    """Label sets over the taxonomy's leaves (:mod:`llmlabel.lf.multispec`): the votes folder holds one binary
    column per (LF, label)."""
    import numpy as np

    from ..artifacts.multivotes import BINARY, MultiVotes
    from .multispec import apply_multi_lfs, build_multi_lfs, write_crossfit_multi

    gold_set = None
    if gold is not None:  # read once, with the cross-fitting folds every gold-derived LF shares
        from .gold import load_multi_gold

        gold_set = load_multi_gold(gold, full, folds=spec.gold_folds)
    lfs = build_multi_lfs(spec, full, models=models, gold=gold_set, embedder=embedder, engines=engines)
    leaves = full.leaves()
    labels, lids = [lab.name for lab in leaves], [lab.id for lab in leaves]
    shape = MultiVotes(np.zeros((0, len(lfs), len(labels)), np.int16), [lf.name for lf in lfs], labels, lids)

    def apply(texts, items, ids):
        mv = apply_multi_lfs(lfs, texts, labels=labels, label_ids=lids, items=items, ids=ids)
        return mv.to_matrix(), mv.errors

    def crossfit(folder, depends):
        if gold_set is None:
            return None
        return write_crossfit_multi(folder, lfs, gold_set, label_ids=lids, depends=depends, **source)

    return VoteForm(lfs, shape.flat_names(), BINARY,
                    [f"{lf.name}/{lid}" for lf in lfs if lf.kind in PROB_KINDS_MULTI for lid in lids],
                    full.label_texts(), apply, crossfit, meta=shape.manifest_meta(), multi_label=True)


def _gold_and_encoder(gold: Path | None, tax, labels: list[str], spec, out, encoder, progress: bool = False):
    """The gold set (k folds, for out-of-fold votes) and the run's tuned encoder when an LF reads it."""
    from .spec import uses_tuned

    gold_set = None
    if gold is not None:
        from .gold import load_gold

        gold_set = load_gold(gold, labels, ids=[lab.id for lab in tax.labels], folds=spec.gold_folds)
    tuned = None
    if gold_set is not None and uses_tuned(spec):
        from .spaces import run_encoder

        tuned = run_encoder(gold_set, tax, Path(encoder) if encoder is not None else Path(out).parent / "encoder",
                            progress=progress is True)
    return gold_set, tuned
