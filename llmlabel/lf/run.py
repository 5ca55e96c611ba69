"""``llmlabel label`` as a library call: apply LFs to a corpus into a resumable votes folder.

The folder holds Parquet shards (``id``, ``text``, ``v:<lf>`` votes, ``p:<lf>`` class probabilities of
LLM/embedding LFs), ``_manifest.json`` (labels and LF names in its meta) and ``_lf_errors.json``. A rerun
after a kill skips finished shards; items of the unfinished shard are redone, and their LLM calls come
from the engine cache.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError


def label_corpus(data: str | Path, taxonomy: str | Path, lfs: str | Path, output: str | Path, *,
                 model: list[str] | None = None, cache: str | Path | None = None, no_cache: bool = False,
                 shard_size: int = 1000, text_field: str | None = None, id_field: str | None = None,
                 progress: bool = False, keep_text: bool = True, command: list[str] | None = None) -> dict:
    """Apply the LFs of ``lfs`` (an lfs.yaml) to ``data`` into the votes folder ``output``.

    ``model``: specs for prompted LFs that name none (one LF per model). Every engine is built once for the
    run with ``cache`` (a file; default: the user cache) or no cache at all (``no_cache``), and shared by
    the LFs that name the same model. Returns a summary dict (rows, shards, errors per LF).
    """
    from ..io import read_corpus
    from ..io_write import ShardWriter, atomic_write, make_meta
    from ..progress import Ticker
    from ..schema import load_taxonomy
    from .apply import apply_lfs
    from .spec import build_lfs, load_lf_spec

    from ..llm import cache_option, engine_factory

    taxonomy_path, lfs_path = taxonomy, lfs
    tax = load_taxonomy(taxonomy_path)
    labels = [lab.name for lab in tax.labels]
    engines = engine_factory(cache=cache_option(cache, no_cache))
    lfs = build_lfs(load_lf_spec(lfs_path), tax, models=model, engines=engines)
    names = [lf.name for lf in lfs]
    out = Path(output)
    man = out / "_manifest.json"
    if man.is_file():  # resuming: the LFs and labels must be the ones the done shards were made with
        old = (json.loads(man.read_text(encoding="utf-8")).get("meta") or {})
        if old.get("lf_names") != names or old.get("labels") != labels:
            raise ConfigError("the votes folder was written with other LFs or labels", path=out,
                              hint="use the same --lfs/--taxonomy/--model to resume, or a new output folder")
    corpus = read_corpus(data, text_field=text_field, id_field=id_field, batch_size=shard_size)
    from ..labelmodel.matrix import LabelMatrix

    probe = LabelMatrix([[0] * len(names)], names, labels=labels,
                        vote_probs={lf.name: [[1.0] + [0.0] * (len(labels) - 1)] for lf in lfs
                                    if lf.kind in ("prompted", "embedding")})
    schema = probe.arrow_schema()
    if keep_text:
        import pyarrow as pa

        schema = schema.insert(1, pa.field("text", pa.string()))
    meta = make_meta(command=command, engine=",".join(sorted({lf.engine.spec for lf in lfs
                                                              if getattr(lf, "engine", None) is not None})) or None)
    meta.update(labels=labels, lf_names=names, taxonomy=str(taxonomy_path), lfs=str(lfs_path))
    errors = {x: 0 for x in names}
    err_path = out / "_lf_errors.json"
    rows = 0
    total = corpus.num_rows or 0
    with ShardWriter(out, shard_size, meta=meta, schema=schema) as w, Ticker(progress, total, "label") as tick:
        if err_path.is_file() and w.next_shard_index:
            errors.update(json.loads(err_path.read_text(encoding="utf-8")))
        done = w.done_ids()
        tick(len(done))
        for b in corpus.iter_batches(shard_size):
            keep = [i for i, x in enumerate(b.ids) if x not in done]
            if not keep:
                continue
            texts = [b.texts[i] for i in keep]
            items = [dict(b.rows[i], text=b.texts[i], id=b.ids[i]) for i in keep]
            L = apply_lfs(lfs, texts, labels=labels, items=items, ids=[b.ids[i] for i in keep])
            recs = L.rows()
            if keep_text:
                for r, t in zip(recs, texts):
                    r["text"] = t
            w.write_many(recs)
            for x, e in L.errors.items():
                errors[x] += e
            with atomic_write(err_path) as f:
                json.dump(errors, f)
            rows += len(keep)
            tick(len(keep))
    return {"rows_labeled": rows, "shards": w.next_shard_index, "errors": errors, "out": str(out),
            "read": corpus.stats.summary()}
