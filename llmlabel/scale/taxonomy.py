"""``llmlabel taxonomy --backend ray``: fit the taxonomy on a sample on the driver, assign every item on Ray.

The sample is drawn by a seeded hash of each id (the same items whatever the file layout or the number of
workers), collected on the driver and fitted exactly as ``induce_taxonomy`` fits a corpus. Its items are
embedded once more on the driver to fit a :class:`~llmlabel.taxonomy.assign.TaxonomyAssigner` (label
centroids and per-label cut-offs); then an actor pool embeds and assigns all items, and the driver writes
``<stem>.assignments.jsonl`` row by row in corpus order and the label shares of the whole corpus into the taxonomy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runtime import Source, _ray, actor_pool, check_scale_options, connect, cpus_per_actor, ordered, ray_errors
from .workers import ID, TEXT, EmbedAssignWorker

DEFAULT_SAMPLE = 20_000  # = taxonomy.cluster.FIT_MAX: what the local path would cluster at most anyway


def _hash_sample(batch, *, seed: int, cut: int):
    """Rows whose seeded id hash is below ``cut`` (of 2^64), with the hash for a final exact-size trim."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    ids = batch.column(ID).to_pylist()
    salt = f"{seed}:".encode()
    h = np.array([int.from_bytes(hashlib.blake2b(salt + i.encode(), digest_size=8).digest(), "big") for i in ids],
                 dtype=np.uint64)
    keep = h < np.uint64(cut)
    out = batch.filter(pa.array(keep))
    return out.append_column("_h", pa.array(h[keep], pa.uint64()))


def assign_taxonomy_ray(corpus: str | Path, out: str | Path, *, sample: int | None = None, seed: int = 0,
                        embedder: str | None = None, text_field: str | None = None, id_field: str | None = None,
                        assignments: str | Path | None = None, progress: bool = False, address: str | None = None,
                        num_workers: int = 1, batch_size: int | None = 1024, **induce_kwargs: Any):
    """Induce on a seeded sample of ``sample`` items (default 20,000), assign all items on Ray; write the three
    files of ``llmlabel taxonomy``. Returns (the sample's TaxonomyResult, the paths, stats of the full pass with
    the fitted ``assigner``)."""
    import numpy as np
    import pyarrow as pa

    from ..embed import load_embedder
    from ..io_meta import make_meta
    from ..artifacts.taxonomy import OTHER, save_taxonomy, write_assignments
    from ..io_write import atomic_write
    from ..taxonomy import induce_taxonomy
    from ..taxonomy.assign import TaxonomyAssigner
    from ..taxonomy.induce import embed_texts
    from ..taxonomy.refine import label_prototypes
    from ..taxonomy.report import default_paths, render_markdown

    check_scale_options(num_workers, 0.0, batch_size)
    src = Source(corpus, text_field, id_field)
    connect(address)
    want = sample or DEFAULT_SAMPLE
    with ordered(progress), ray_errors("taxonomy"):
        n = src.dataset().count()
        cut = min(2**64 - 1, int(2**64 * min(1.0, 1.5 * want / max(n, 1))))  # ~1.5x: trimmed to `want` below
        got = src.dataset().map_batches(_hash_sample, batch_format="pyarrow", batch_size=None,
                                        fn_kwargs=dict(seed=seed, cut=cut)).to_arrow_refs()
        tbl = pa.concat_tables(_ray().get(got)) if got else pa.table({ID: [], TEXT: [], "_h": pa.array([], pa.uint64())})
    order = np.argsort(tbl.column("_h").to_numpy(), kind="stable")[:want]
    order.sort()  # back to corpus order, as the local sample keeps it
    pairs = list(zip(tbl.column(ID).take(order).to_pylist(), tbl.column(TEXT).take(order).to_pylist()))
    res = induce_taxonomy(pairs, embedder=embedder, seed=seed, progress=progress, **induce_kwargs)
    emb_name = res.taxonomy.made_with.get("embedder") or embedder
    emb = load_embedder(emb_name)
    text_of = dict(pairs)
    x = embed_texts(emb, [text_of[i] for i in res.ids], progress=progress)
    assigner = TaxonomyAssigner().fit(res.taxonomy, x, res.assignments,
                                      prototypes=label_prototypes(res.taxonomy, emb))
    paths = default_paths(out)
    if assignments is not None:
        paths["assignments"] = Path(assignments)
    counts: dict[str, int] = {}
    with ordered(progress), ray_errors("taxonomy assignment"):
        ds = src.dataset().map_batches(EmbedAssignWorker, batch_format="pyarrow", batch_size=batch_size,
                                       compute=actor_pool(num_workers), num_cpus=cpus_per_actor(num_workers),
                                       fn_constructor_kwargs=dict(assigner=assigner, embedder=emb_name))

        def rows():
            for b in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                labs = b.column("label").to_pylist()
                for lab in labs:
                    counts[lab] = counts.get(lab, 0) + 1
                yield from b.to_pylist()

        meta = make_meta(taxonomy=str(paths["taxonomy"]), stats=res.stats, backend="ray", fitted_on=len(pairs))
        total = write_assignments(paths["assignments"], rows(), meta)
    tax = res.taxonomy
    leaf_ids = {lab.id for lab in tax.leaves()}
    for lab in tax.labels:
        if lab.id in leaf_ids:
            lab.share = round(counts.get(lab.id, 0) / max(total, 1), 4)
    for lab in tax.labels:
        if lab.id not in leaf_ids:
            lab.share = round(sum(k.share or 0 for k in tax.labels if k.parent == lab.id), 4)
    tax.made_with = {**tax.made_with, "backend": "ray", "fitted_on": len(pairs), "assigned": total}
    save_taxonomy(tax, paths["taxonomy"])
    with atomic_write(paths["markdown"]) as f:
        f.write(render_markdown(res))
    stats = {"items": total, "fitted_on": len(pairs), "other_share": round(counts.get(OTHER, 0) / max(total, 1), 4),
             "labels": len(leaf_ids), "assigner": assigner}
    return res, paths, stats
