"""``llmlabel label`` as a library call: apply LFs to a corpus into a resumable votes folder.

The folder holds Parquet shards (``id``, ``text``, ``v:<lf>`` votes, ``p:<lf>`` class probabilities of
LLM/embedding LFs), ``_manifest.json`` and ``_lf_errors.json`` (the layout is owned by :mod:`llmlabel.artifacts.votes`). A rerun
after a kill skips finished shards; items of the unfinished shard are redone, and their LLM calls come
from the engine cache.
"""

from __future__ import annotations

from pathlib import Path


def label_corpus(data: str | Path, taxonomy: str | Path, lfs: str | Path, output: str | Path, *,
                 model: list[str] | None = None, cache: str | Path | None = None, no_cache: bool = False,
                 shard_size: int = 1000, text_field: str | None = None, id_field: str | None = None,
                 progress: bool = False, keep_text: bool = True, command: list[str] | None = None,
                 overwrite: bool = False, gold: str | Path | None = None, embedder=None,
                 encoder: str | Path | None = None) -> dict:
    """Apply the LFs of ``lfs`` (an lfs.yaml) to ``data`` into the votes folder ``output``.

    The classes are the taxonomy's leaves (parent groups of a two-level taxonomy are not voted on).
    ``model``: specs for prompted LFs that name none (one LF per model). Every engine is built once for the
    run with ``cache`` (a file; default: the user cache) or no cache at all (``no_cache``), and shared by
    the LFs that name the same model. ``overwrite`` discards a votes folder made from another corpus
    instead of refusing it. Returns a summary dict (rows, shards, errors per LF). A taxonomy with
    ``multi_label: true`` runs multi-label LFs (:mod:`llmlabel.lf.multispec`; ``gold``: the gold JSONL/CSV of
    their knn LFs; ``embedder``: an embedder object shared by the embedding-based LFs). ``gold`` (or ``gold:``
    in the LF spec, relative to it) also feeds single-label ``knn`` and gold few-shot prompted LFs; gold
    items get out-of-fold votes (:mod:`llmlabel.lf.gold`). When an LF reads the run's tuned encoder
    (``embedder: tuned``, ``kind: setfit``) it is fitted on the gold once, into ``encoder`` (default: ``encoder/``
    beside the votes folder), or loaded from there when it was fitted on the same inputs
    (:class:`llmlabel.tuned.TunedEncoder`); its identity goes into the votes manifest.
    """
    from ..artifacts.taxonomy import load_taxonomy
    from ..errors import ConfigError, InputError
    from ..artifacts.votes import VotesWriter, depends_on
    from ..io import read_corpus
    from ..io_write import check_writable, make_meta
    from ..progress import Ticker
    from .apply import apply_lfs
    from ..llm import cache_option, engine_factory
    from .spec import build_lfs, load_lf_spec, uses_tuned

    taxonomy_path, lfs_path, out = taxonomy, lfs, check_writable(output, folder=True)
    full = load_taxonomy(taxonomy_path)
    spec = load_lf_spec(lfs_path)
    gold = resolve_gold_path(gold, spec.gold, lfs_path)
    if full.multi_label:
        from .multispec import label_corpus_multi
        from .spec import SINGLE_LABEL_ONLY

        for j, s in enumerate(spec.lfs):
            if s.kind in SINGLE_LABEL_ONLY or s.threshold == "auto":
                what = f"kind {s.kind}" if s.kind in SINGLE_LABEL_ONLY else "threshold: auto"
                raise ConfigError(f"LF '{s.name}': {what} is for single-label taxonomies",
                                  hint="use a number, or a kind listed in llmlabel.lf.multispec",
                                  **spec.where(j, "kind" if s.kind in SINGLE_LABEL_ONLY else "threshold"))

        return label_corpus_multi(data, full, spec, out, taxonomy_path=taxonomy_path, lfs_path=lfs_path,
                                  models=model, gold=gold, shard_size=shard_size, text_field=text_field,
                                  id_field=id_field, progress=progress, keep_text=keep_text, command=command,
                                  overwrite=overwrite, embedder=embedder,
                                  engines=engine_factory(cache=cache_option(cache, no_cache)))
    corpus = read_corpus(data, text_field=text_field, id_field=id_field, batch_size=shard_size)
    batches = corpus.start(shard_size)  # a bad first line or an empty corpus fails before the folder is touched
    if batches is None:
        raise InputError("the corpus has no texts to label", path=data, hint=corpus.stats.summary())
    tax = full.class_taxonomy()
    labels = tax.classes()
    gold_set = None
    if gold is not None:
        from .gold import load_gold

        gold_set = load_gold(gold, labels, ids=[lab.id for lab in tax.labels], folds=spec.gold_folds)
    tuned = None
    if gold_set is not None and uses_tuned(spec):
        from .spaces import run_encoder

        tuned = run_encoder(gold_set, tax, Path(encoder) if encoder is not None else Path(out).parent / "encoder")
    lfs = build_lfs(spec, tax, models=model, engines=engine_factory(cache=cache_option(cache, no_cache)),
                    gold=gold_set, embedder=embedder, tuned=tuned)
    names = [lf.name for lf in lfs]
    engines = {lf.name: lf.engine.spec for lf in lfs if lf.cost == "llm" and getattr(lf, "engine", None) is not None}
    meta = make_meta(command=command, engine=",".join(sorted(set(engines.values()))) or None)
    meta.update(taxonomy=str(taxonomy_path), lfs=str(lfs_path))
    deps = depends_on(corpus=data, taxonomy=taxonomy_path, lfs=lfs_path, engines=engines)
    if gold is not None:
        from ..artifacts._format import file_hash

        deps["gold"] = file_hash(gold)
        meta["gold"] = str(gold)
    if tuned is not None:
        deps["encoder"] = tuned.fingerprint
        meta["encoder"] = tuned.identity()
    rows = 0
    total = corpus.num_rows  # None for JSONL/CSV: the bar then counts items without an end
    prob_lfs = [lf.name for lf in lfs if lf.kind in ("prompted", "embedding", "knn", "logreg", "setfit")]
    with VotesWriter(out, lf_names=names, labels=labels, prob_lfs=prob_lfs, keep_text=keep_text,
                     shard_size=shard_size, meta=meta, depends=deps, overwrite=overwrite) as w, \
            Ticker(progress, total, "label") as tick:
        done = w.done_ids()
        tick(len(done))
        for b in batches:
            keep = [i for i, x in enumerate(b.ids) if x not in done]
            if not keep:
                continue
            texts = [b.texts[i] for i in keep]
            items = [dict(b.rows[i], text=b.texts[i], id=b.ids[i]) for i in keep]
            L = apply_lfs(lfs, texts, labels=labels, items=items, ids=[b.ids[i] for i in keep])
            w.write(L, texts if keep_text else None)
            rows += len(keep)
            tick(len(keep))
    return {"rows_labeled": rows, "restarted": w.restarted, "shards": w.shards, "errors": dict(w.errors), "out": str(out),
            "read": corpus.stats.summary()}


def resolve_gold_path(cli: str | Path | None, in_spec: str | None, lfs_path: str | Path) -> Path | None:
    """``--gold`` as given, else the spec's ``gold:`` (relative to the lfs.yaml when not found from here)."""
    if cli is not None:
        return Path(cli)
    if not in_spec:
        return None
    p = Path(in_spec)
    return p if p.is_absolute() or p.is_file() else Path(lfs_path).parent / p
