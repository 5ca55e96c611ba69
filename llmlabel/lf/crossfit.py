"""Votes for the cross-fitted world of the safety net: the gold-derived LFs on a sample of corpus items, as if
each item were in fold f of the gold, for every fold f.

An LF built from the gold (kNN, logistic regression, SetFit, any ``threshold: auto`` cut) votes on a gold item
without that item's fold (:mod:`llmlabel.lf.gold`). To ask honestly whether the weak labels help, a student
trained without fold f must also learn from weak labels that fold f's gold did not shape: here the same LFs
vote on a seeded sample of the other items with fold f held out (``GoldSet.as_fold``), once per fold, and
:mod:`llmlabel.artifacts.crossfit` writes them beside the votes. LFs that do not read the gold keep their
votes in the main shards; prompted LFs that pick few-shot examples from the gold are not re-asked (one LLM
call per item and fold): their main votes stand in, and the file's metadata says so.

Multi-label runs (:func:`llmlabel.lf.multispec.write_crossfit_multi`) do the same with the multi-label gold LFs (kNN and the one-vs-rest
classifier over a :class:`~llmlabel.lf.gold.MultiGoldSet`), in the multi-label votes layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Items (not in the gold) per fold whose votes are re-made: enough for a student to learn from, small
#: enough that folds x sample stays a fraction of the run.
SAMPLE_ROWS = 5000


def gold_derived(lf) -> bool:
    """Whether an LF's votes depend on the gold labels."""
    return getattr(lf, "gold", None) is not None


def crossfit_sample(ids: Sequence[str], gold_ids: set[str], size: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """Sorted positions of a seeded uniform sample of at most ``size`` items that are not gold."""
    pool = np.flatnonzero([str(i) not in gold_ids for i in ids])
    if len(pool) <= size:
        return pool
    return np.sort(np.random.default_rng(seed).choice(pool, size, replace=False))


def crossfit_votes(lfs, gold, texts: Sequence[str], ids: Sequence[str], labels: Sequence[str]):
    """``(lf_names, votes, probs, stand_ins)``: for each fold f, the (n, m) votes of the gold-derived cheap LFs
    on ``texts`` as if they were in fold f, and their (n, k) class probabilities; ``stand_ins`` names the
    gold-derived LLM LFs left out (their main votes are used)."""
    from .apply import apply_lfs

    chosen = [lf for lf in lfs if gold_derived(lf) and lf.cost != "llm"]
    stand_ins = [lf.name for lf in lfs if gold_derived(lf) and lf.cost == "llm"]
    names = [lf.name for lf in chosen]
    items = [{"id": str(i), "text": t} for i, t in zip(ids, texts)]
    votes, probs = [], []
    for f in range(gold.folds):
        with gold.as_fold(f):
            L = apply_lfs(chosen, list(texts), labels=list(labels), items=items, ids=list(ids))
        votes.append(np.asarray(L.votes, np.int16))
        probs.append(L.dense_vote_probs())
    return names, votes, probs, stand_ins


def write_crossfit(folder, lfs, gold, labels: Sequence[str], *, depends: dict, data=None, text_field=None,
                   id_field=None, size: int = SAMPLE_ROWS, seed: int = 0) -> dict | None:
    """Make and write ``folder/_crossfit.parquet`` for a finished votes folder (once: an up-to-date file made
    from the same inputs is kept). Texts come from the votes' shards, or from ``data`` when the votes keep
    none. Returns a summary, or None when no LF reads the gold."""
    from ..artifacts.crossfit import GoldFolds, read_crossfit_votes, write_crossfit_votes

    if not any(gold_derived(lf) for lf in lfs):
        return None
    old = current_summary(folder, read_crossfit_votes, depends)
    if old is not None:
        return old
    sample_ids, sample_texts = sample_items(folder, gold, data, text_field, id_field, size, seed)
    names, votes, probs, stand_ins = crossfit_votes(lfs, gold, sample_texts, sample_ids, labels)
    folds = GoldFolds(tuple(gold.ids), np.asarray(gold.fold), gold.folds, np.asarray(gold.y))
    path = write_crossfit_votes(folder, ids=sample_ids, lf_names=names, votes=votes, probs=probs, gold=folds,
                                meta={"depends_on": depends, "sample_seed": seed, "llm_stand_ins": stand_ins})
    return {"file": str(path), "items": len(sample_ids), "lfs": names, "llm_stand_ins": stand_ins, "reused": False}


def current_summary(folder, read, depends: dict) -> dict | None:
    """The summary of a cross-fitting file already made from the same inputs, else None."""
    from ..artifacts.crossfit import VOTES_FILE

    try:
        old = read(folder)
    except Exception:  # noqa: BLE001 - a damaged or foreign file is simply made again
        old = None
    if old is not None and old.meta.get("depends_on") == depends:
        return {"file": str(folder / VOTES_FILE), "items": len(old.ids), "reused": True}
    return None


def sample_items(folder, gold, data, text_field, id_field, size: int, seed: int) -> tuple[list[str], list[str]]:
    """(ids, texts) of the seeded sample of the votes folder's items that are not gold; texts from the shards,
    or from ``data`` when the votes keep none."""
    from ..artifacts.votes import read_votes

    L, _, texts = read_votes(folder)
    ids = [str(i) for i in L.ids]
    pick = crossfit_sample(ids, set(gold.ids), size, seed)
    sample_ids = [ids[i] for i in pick]
    if texts is None:
        by_id = _texts_from_corpus(data, set(sample_ids), text_field, id_field)
        return sample_ids, [by_id[i] for i in sample_ids]
    return sample_ids, [texts[i] for i in pick]


def _texts_from_corpus(data, wanted: set[str], text_field, id_field) -> dict[str, str]:
    from ..io import read_corpus

    out: dict[str, str] = {}
    for b in read_corpus(data, text_field=text_field, id_field=id_field).iter_batches():
        out.update((str(i), t) for i, t in zip(b.ids, b.texts) if str(i) in wanted)
    return out
