"""``llmlabel label --backend ray``: the LFs of lfs.yaml over a corpus on Ray Data, into the same votes folder."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError
from .runtime import Source, actor_pool, add_usage, check_scale_options, connect, cpus_per_actor, ordered, ray_errors
from .workers import ERRORS_PREFIX, TEXT, USAGE_PREFIX, LFWorker, sum_side_columns

PROB_KINDS = ("prompted", "embedding")  # LF kinds whose class distributions the votes folder keeps


def label_corpus_ray(data: str | Path, taxonomy_path: str | Path, lfs_path: str | Path, out: str | Path, *,
                     models: list[str] | None = None, shard_size: int = 1000, text_field: str | None = None,
                     id_field: str | None = None, progress: bool = False, keep_text: bool = True,
                     command: list[str] | None = None, address: str | None = None, num_workers: int = 1,
                     gpus_per_worker: float = 0.0, batch_size: int | None = None, cache: str | Path | None = None,
                     threads_per_worker: int | None = 1) -> dict:
    """What :func:`llmlabel.lf.run.label_corpus` does, with Ray Data doing the reading and the LFs.

    ``num_workers`` actors per pool (one pool for cheap LFs, one for prompted LFs, each prompted actor
    asking for ``gpus_per_worker`` GPUs); ``batch_size`` items per actor call (default: ``shard_size``,
    which keeps ``prior_correction`` statistics per batch the same as the local path's). Returns the local
    path's summary dict plus ``usage`` (what the actors spent, also added to ``llmlabel.usage_log``).
    """
    from ..io_write import make_meta
    from ..lf.spec import build_lfs, load_lf_spec
    from ..progress import Ticker
    from ..schema import load_taxonomy

    check_scale_options(num_workers, gpus_per_worker, batch_size)
    tax = load_taxonomy(taxonomy_path)
    spec = load_lf_spec(lfs_path)
    lfs = build_lfs(spec, tax, models=models)  # bad specs fail here, before any cluster work
    labels = [lab.name for lab in tax.labels]
    names = [lf.name for lf in lfs]
    prob_lfs = [lf.name for lf in lfs if lf.kind in PROB_KINDS]
    cheap = [j for j, lf in enumerate(lfs) if lf.cost != "llm"]
    llm = [j for j, lf in enumerate(lfs) if lf.cost == "llm"]
    src = Source(data, text_field, id_field)
    meta = make_meta(command=command, engine=",".join(sorted({str(getattr(lf, "engine", "")) for j, lf in
                                                              enumerate(lfs) if j in llm})) or None)
    meta.update(labels=labels, lf_names=names, taxonomy=str(taxonomy_path), lfs=str(lfs_path), backend="ray")
    connect(address)
    bs = batch_size or shard_size
    common = dict(taxonomy=tax, spec=spec, models=models, prob_lfs=prob_lfs,
                  cache=None if cache is None else str(Path(cache).resolve()))
    usage: dict = {}
    rows = 0
    with VotesShim(out, lf_names=names, labels=labels, prob_lfs=prob_lfs, keep_text=keep_text,
                   shard_size=shard_size, meta=meta) as w, ordered(progress), ray_errors("label"):
        done = w.done_ids()
        n_done = len(done)  # the writer adds to this set as shards finish
        cpu = cpus_per_actor(num_workers * (bool(cheap) + (bool(llm) and not gpus_per_worker)))
        ds = src.dataset(done=frozenset(done), keep_extra=any(lf.kind == "python" for lf in lfs))
        if cheap:
            ds = ds.map_batches(LFWorker, batch_format="pyarrow", batch_size=bs, compute=actor_pool(num_workers),
                                num_cpus=cpu, fn_constructor_kwargs=dict(common, which=cheap, stage="cheap",
                                                                       threads=threads_per_worker))
        if llm:
            ds = ds.map_batches(LFWorker, batch_format="pyarrow", batch_size=bs, compute=actor_pool(num_workers),
                                num_cpus=0 if gpus_per_worker else cpu, num_gpus=gpus_per_worker or None,
                                fn_constructor_kwargs=dict(common, which=llm, stage="llm",
                                                           threads=None if gpus_per_worker else threads_per_worker))
        with Ticker(progress, src.num_rows, "label") as tick:
            tick(n_done)
            for tbl in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                for k, v in sum_side_columns(tbl, USAGE_PREFIX).items():
                    usage[k] = usage.get(k, 0) + v
                w.write_table(tbl, errors=sum_side_columns(tbl, ERRORS_PREFIX))
                rows += tbl.num_rows
                tick(tbl.num_rows)
    add_usage("label", usage)
    return {"rows_labeled": rows, "shards": w.shards, "errors": dict(w.errors), "out": str(out),
            "read": f"read {rows + n_done:,} rows on Ray ({n_done:,} already in finished shards)",
            "usage": usage}


class VotesShim:
    """The votes folder writer of the local path (``ShardWriter`` with its schema, manifest and
    ``_lf_errors.json``), fed Arrow blocks; same files, same resume rules."""

    def __init__(self, folder, *, lf_names, labels, prob_lfs, keep_text, shard_size, meta) -> None:
        import pyarrow as pa

        from ..io_write import ShardWriter
        from ..labelmodel.matrix import PROBA_PREFIX, VOTE_PREFIX

        self.folder = Path(folder)
        self.lf_names, self.labels, self.keep_text = list(lf_names), list(labels), keep_text
        man = self.folder / "_manifest.json"
        if man.is_file():
            old = json.loads(man.read_text(encoding="utf-8")).get("meta") or {}
            if old.get("lf_names") != self.lf_names or old.get("labels") != self.labels:
                raise ConfigError("the votes folder was written with other LFs or labels", path=self.folder,
                                  hint="use the same --lfs/--taxonomy/--model to resume, or a new output folder")
        fields = [pa.field("id", pa.string())] + ([pa.field(TEXT, pa.string())] if keep_text else [])
        fields += [pa.field(VOTE_PREFIX + x, pa.int16()) for x in self.lf_names]
        fields += [pa.field(PROBA_PREFIX + x, pa.list_(pa.float32())) for x in self.lf_names if x in set(prob_lfs)]
        self._w = ShardWriter(self.folder, shard_size, meta=meta, schema=pa.schema(fields))
        self.errors = {x: 0 for x in self.lf_names}
        err = self.folder / "_lf_errors.json"
        if err.is_file() and self._w.next_shard_index:
            self.errors.update(json.loads(err.read_text(encoding="utf-8")))

    @property
    def shards(self) -> int:
        return self._w.next_shard_index

    def done_ids(self) -> set[str]:
        return self._w.done_ids()

    def write_table(self, tbl, *, errors: dict) -> None:
        from ..io_write import atomic_write
        from ..labelmodel.matrix import LabelMatrix

        L = LabelMatrix.from_table(tbl, labels=self.labels, lf_names=self.lf_names)
        recs = L.rows()
        if self.keep_text:
            for r, t in zip(recs, tbl.column(TEXT).to_pylist()):
                r[TEXT] = t
        self._w.write_many(recs)
        for x, e in errors.items():
            self.errors[x] += e
        with atomic_write(self.folder / "_lf_errors.json") as f:
            json.dump(self.errors, f)

    def __enter__(self) -> VotesShim:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._w.close()
