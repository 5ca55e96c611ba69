"""``llmlabel label --backend ray``: the LFs of lfs.yaml over a corpus on Ray Data, into the same votes folder.

The driver writes the votes folder with :class:`llmlabel.artifacts.votes.VotesWriter`, the writer of the local
path, from the Arrow blocks the actors return (in corpus order), so the folder is the one a local run writes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..results import LabelResult
from .runtime import Source, actor_pool, add_usage, check_scale_options, connect, cpus_per_actor, ordered, ray_errors
from .workers import ERRORS_PREFIX, TEXT, USAGE_PREFIX, LFWorker, sum_side_columns

PROB_KINDS = ("prompted", "embedding")  # LF kinds whose class distributions the votes folder keeps


def label_corpus_ray(data: str | Path, taxonomy: str | Path, lfs: str | Path | None, output: str | Path, *,
                     model: list[str] | None = None, cache: str | Path | None = None, no_cache: bool = False,
                     shard_size: int = 1000, text_field: str | None = None, id_field: str | None = None,
                     progress: bool = False, keep_text: bool = True, command: list[str] | None = None,
                     overwrite: bool = False, address: str | None = None, num_workers: int = 1,
                     gpus_per_worker: float = 0.0, batch_size: int | None = None) -> LabelResult:
    """What :func:`llmlabel.lf.run.label_corpus` does, with Ray Data doing the reading and the LFs.

    ``num_workers`` actors per pool (one pool for cheap LFs, one for prompted LFs, each prompted actor
    asking for ``gpus_per_worker`` GPUs); ``batch_size`` items per actor call (default: ``shard_size``,
    which keeps ``prior_correction`` statistics per batch the same as the local path's). Returns the local
    path's summary dict plus ``usage`` (what the actors spent, also added to ``llmlabel.usage_log``).
    """
    from ..artifacts.taxonomy import load_taxonomy
    from ..artifacts.votes import VotesWriter
    from ..lf.run import choose_lfs, finish_votes, votes_record
    from ..lf.spec import build_lfs
    from ..progress import Ticker

    check_scale_options(num_workers, gpus_per_worker, batch_size)
    taxonomy_path, out = taxonomy, Path(output)
    full = load_taxonomy(taxonomy_path)
    if full.multi_label:
        raise ConfigError("multi-label taxonomies are labelled on the local backend only", path=taxonomy_path,
                          hint="drop --backend ray")
    tax = full.class_taxonomy()
    lf_set, chosen = choose_lfs(lfs, multi_label=False, gold=False, models=model, data=data, text_field=text_field,
                                id_field=id_field, check_form=False)  # no lfs.yaml: the default LFs
    specs: list[str] = []  # the engines load in the actors; here only their specs are recorded, in LF order
    lfs = build_lfs(lf_set.spec, tax, models=model, engines=lambda m: specs.append(m))  # bad specs fail here
    labels = tax.classes()
    names = [lf.name for lf in lfs]
    engines = dict(zip([lf.name for lf in lfs if lf.cost == "llm"], specs))
    prob_lfs = [lf.name for lf in lfs if lf.kind in PROB_KINDS]
    src = Source(data, text_field, id_field)
    meta, deps = votes_record(lf_set, command=command, engines=engines, taxonomy_path=taxonomy_path, data=data,
                              label_texts=tax.label_texts())
    meta["backend"] = "ray"
    connect(address)
    common = dict(taxonomy=tax, spec=lf_set.spec, models=model, prob_lfs=prob_lfs, no_cache=no_cache,
                  cache=None if cache in (None, False) else str(Path(cache).resolve()))
    usage: dict = {}
    with VotesWriter(out, lf_names=names, labels=labels, prob_lfs=prob_lfs, keep_text=keep_text,
                     shard_size=shard_size, meta=meta, depends=deps, overwrite=overwrite) as w, \
            ordered(progress), ray_errors("label"):
        done = w.done_ids()
        n_done = len(done)  # the writer adds to this set as shards finish
        ds = _lf_pipeline(src, done, lfs, common, batch_size=batch_size or shard_size, num_workers=num_workers,
                          gpus_per_worker=gpus_per_worker)
        with Ticker(progress, src.num_rows, "label") as tick:
            tick(n_done)
            rows = _write_blocks(w, tick, ds, lfs, labels, names, keep_text, usage)
    add_usage("label", usage)
    return finish_votes(out, w, lf_set, rows=rows, embedder_auto=chosen, usage=usage,
                        read=f"read {rows + n_done:,} rows on Ray ({n_done:,} already in finished shards)")


def _lf_pipeline(src: Source, done: set, lfs: list, common: dict, *, batch_size: int, num_workers: int,
                 gpus_per_worker: float):
    """The items not in ``done`` through an actor pool for the cheap LFs, then one for the prompted LFs (on GPUs
    when asked)."""
    cheap = [j for j, lf in enumerate(lfs) if lf.cost != "llm"]
    llm = [j for j, lf in enumerate(lfs) if lf.cost == "llm"]
    cpu = cpus_per_actor(num_workers * (bool(cheap) + (bool(llm) and not gpus_per_worker)))
    ds = src.dataset(done=frozenset(done), keep_extra=any(lf.kind == "python" for lf in lfs))
    if cheap:
        ds = ds.map_batches(LFWorker, batch_format="pyarrow", batch_size=batch_size, compute=actor_pool(num_workers),
                            num_cpus=cpu, fn_constructor_kwargs=dict(common, which=cheap, stage="cheap"))
    if llm:
        ds = ds.map_batches(LFWorker, batch_format="pyarrow", batch_size=batch_size, compute=actor_pool(num_workers),
                            num_cpus=0 if gpus_per_worker else cpu, num_gpus=gpus_per_worker or None,
                            fn_constructor_kwargs=dict(common, which=llm, stage="llm"))
    return ds


def _write_blocks(w, tick, ds, lfs: list, labels: list[str], names: list[str], keep_text: bool, usage: dict) -> int:
    """Write the actors' Arrow blocks (in corpus order) to the votes folder, adding what they spent to ``usage``;
    returns the rows written."""
    from ..artifacts.matrix import LabelMatrix
    from ..lf.apply import ErrorShare

    share = ErrorShare(lfs)
    rows = 0
    for tbl in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
        for k, v in sum_side_columns(tbl, USAGE_PREFIX).items():
            usage[k] = usage.get(k, 0) + v
        L = LabelMatrix.from_table(tbl, labels=labels, lf_names=names)
        L.errors.update(sum_side_columns(tbl, ERRORS_PREFIX))
        share.add(L.errors, tbl.num_rows)  # an LF failing on > 20% of the items stops the run
        w.write(L, tbl.column(TEXT).to_pylist() if keep_text else None)
        rows += tbl.num_rows
        tick(tbl.num_rows)
    return rows
