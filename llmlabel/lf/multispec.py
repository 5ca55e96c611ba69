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
from ..errors import ConfigError, LLMLabelError
from ..results import LabelResult
from .core import ABSTAIN


def build_multi_lfs(spec, taxonomy, *, models: list[str] | None = None, gold: str | Path | None = None,
                    embedder=None, engines=None) -> list:
    """Multi-label LF objects over the taxonomy's leaves (``taxonomy`` keeps its parents for pattern keys):
    each kind's multi-label form (:mod:`llmlabel.lf.kinds`). ``engines``: ``spec -> engine`` for the run
    (:func:`llmlabel.llm.engine_factory`); ``gold``: the gold file (``id``, ``text``, ``labels``)."""
    from .spec import build_lfs

    return build_lfs(spec, taxonomy, models=models, gold=gold, embedder=embedder, engines=engines, multi_label=True)


def _run_one(lf, texts: list[str], items, k: int):
    """(votes (n, k), p | None); on an unexpected error the batch is retried item by item."""
    try:
        return lf.apply(texts, items)
    except ConfigError:
        raise
    except (LLMLabelError, Exception) as e:  # noqa: BLE001 - user code and engines may raise anything
        lf.last_error = f"{type(e).__name__}: {e}"
    votes = np.full((len(texts), k), ABSTAIN, np.int16)
    p = None
    for i in range(len(texts)):  # failure path only
        try:
            v, pi = lf.apply(texts[i: i + 1], None if items is None else items[i: i + 1])
        except Exception:  # noqa: BLE001
            lf.errors += 1
            continue
        votes[i] = v[0]
        if pi is not None:
            p = np.full((len(texts), k), np.nan, np.float32) if p is None else p
            p[i] = pi[0]
    return votes, p


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
        v, p = _run_one(lfs[j], texts, None if items is None else list(items), k)
        votes[:, j] = v
        if p is not None:
            p_yes[lfs[j].name] = np.where(v >= 0, p, np.nan).astype(np.float32)
    errors = {lf.name: lf.errors - errors0[lf.name] for lf in lfs}
    return MultiVotes(votes, [lf.name for lf in lfs], labels, list(label_ids),
                      None if ids is None else [str(i) for i in ids], p_yes, errors)


def label_corpus_multi(data, tax, spec, out, *, taxonomy_path, lfs_record, models=None, gold=None,
                       shard_size: int = 1000, text_field=None, id_field=None, progress: bool = False,
                       keep_text: bool = True, command=None, overwrite: bool = False, embedder=None,
                       engines=None) -> LabelResult:
    """The multi-label body of :func:`llmlabel.lf.run.label_corpus` (same folder, shards and resume);
    ``lfs_record``: (the LF spec's name for the metadata, its fingerprint for ``depends_on``)."""
    from ..artifacts._format import file_hash
    from ..artifacts.multivotes import BINARY
    from ..artifacts.votes import VotesWriter, depends_on
    from ..io import read_corpus
    from ..io_meta import make_meta
    from ..progress import Ticker
    from .apply import ErrorShare, with_last

    gold_set = None
    if gold is not None:  # read once, with the cross-fitting folds every gold-derived LF shares
        from .gold import load_multi_gold

        gold_set = load_multi_gold(gold, tax, folds=spec.gold_folds)
    lfs = build_multi_lfs(spec, tax, models=models, gold=gold_set, embedder=embedder, engines=engines)
    leaves = tax.leaves()
    labels, lids = [lab.name for lab in leaves], [lab.id for lab in leaves]
    used = {lf.name: getattr(lf.engine, "spec", None) or str(lf.engine)
            for lf in lfs if lf.cost == "llm" and getattr(lf, "engine", None) is not None}
    corpus = read_corpus(data, text_field=text_field, id_field=id_field, batch_size=shard_size)
    meta = make_meta(command=command, engine=",".join(sorted(set(used.values()))) or None)
    probe = MultiVotes(np.zeros((0, len(lfs), len(labels))), [lf.name for lf in lfs], labels, lids)
    meta.update(taxonomy=str(taxonomy_path), lfs=lfs_record[0], label_texts=tax.label_texts(),
                **probe.manifest_meta())
    deps = {**depends_on(corpus=data, taxonomy=taxonomy_path, engines=used), "lfs": lfs_record[1]}
    if gold is not None:
        deps["gold"] = file_hash(gold)
    prob_lfs = [f"{lf.name}/{lid}" for lf in lfs if lf.kind in ("embedding", "knn", "classifier", "prompted_multilabel")
                for lid in lids]
    rows, total = 0, corpus.num_rows or 0
    with VotesWriter(out, lf_names=probe.flat_names(), labels=BINARY, prob_lfs=prob_lfs, keep_text=keep_text,
                     shard_size=shard_size, meta=meta, depends=deps, overwrite=overwrite) as w, \
            Ticker(progress, total, "label") as tick:
        done = w.done_ids()
        tick(len(done))
        share = ErrorShare(lfs)
        for b, last in with_last(corpus.iter_batches(shard_size)):
            keep = [i for i, x in enumerate(b.ids) if x not in done]
            if not keep:
                continue
            texts = [b.texts[i] for i in keep]
            items = [dict(b.rows[i], text=b.texts[i], id=b.ids[i]) for i in keep]
            mv = apply_multi_lfs(lfs, texts, labels=labels, label_ids=lids, items=items,
                                 ids=[b.ids[i] for i in keep])
            share.add(mv.errors, len(keep), last=last)
            w.write(mv.to_matrix(), texts if keep_text else None)
            rows += len(keep)
            tick(len(keep))
    errors = {lf.name: int(sum(v for x, v in w.errors.items() if x.startswith(lf.name + "/"))) for lf in lfs}
    crossfit = None
    if gold_set is not None:  # the safety net's cross-fitted votes (lf/crossfit.py)
        crossfit = write_crossfit_multi(out, lfs, gold_set, label_ids=lids, depends=deps, data=data,
                                        text_field=text_field, id_field=id_field)
    return LabelResult(out=str(out), rows_labeled=rows, shards=w.shards, errors=dict(errors),
                       read=corpus.stats.summary(), restarted=getattr(w, "restarted", None), multi_label=True,
                       crossfit=crossfit)


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
