"""``llmlabel predict --backend ray``: batch inference of a distilled student (and its cascade) on Ray Data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .runtime import Source, actor_pool, add_usage, check_scale_options, connect, cpus_per_actor, ordered, ray_errors
from .workers import ERRORS_PREFIX, USAGE_PREFIX, PredictWorker, sum_side_columns


def predict_rows_ray(model_folder: str | Path, data: str | Path, *, text_field: str | None = None,
                     id_field: str | None = None, int8: bool = False, cascade_llm: str | None = None,
                     threshold: float = 0.0, cache: str | Path | None = None, no_cache: bool = False,
                     make_labeler=None, address: str | None = None,
                     num_workers: int = 1, gpus_per_worker: float = 0.0, batch_size: int | None = 4096,
                     progress: bool = False, stats: dict | None = None) -> Iterator[dict]:
    """Prediction rows (the format of :func:`llmlabel.distill.predict.prediction_rows`) in input order.

    Each of ``num_workers`` actors loads the student folder once (and, with ``cascade_llm``, the LLM the
    unsure items are deferred to at ``threshold``, chosen beforehand on the driver). ``stats`` (a dict) is
    filled with ``rows``, ``deferred`` and ``usage`` as the rows are consumed; the usage is also added to
    ``llmlabel.usage_log`` when the last row has been yielded.
    """
    check_scale_options(num_workers, gpus_per_worker, batch_size)
    src = Source(data, text_field, id_field)
    connect(address)
    stats = {} if stats is None else stats
    stats.update(rows=0, deferred=0, usage={})
    with ordered(progress), ray_errors("predict"):
        ds = src.dataset().map_batches(
            PredictWorker, batch_format="pyarrow", batch_size=batch_size, compute=actor_pool(num_workers),
            num_cpus=0 if gpus_per_worker else cpus_per_actor(num_workers), num_gpus=gpus_per_worker or None,
            fn_constructor_kwargs=dict(model_folder=str(Path(model_folder).resolve()), int8=int8,
                                       cascade_llm=cascade_llm, threshold=threshold,
                                       cache=None if cache is None else str(Path(cache).resolve())))
        for tbl in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
            for k, v in sum_side_columns(tbl, USAGE_PREFIX).items():
                stats["usage"][k] = stats["usage"].get(k, 0) + v
            stats["deferred"] += sum_side_columns(tbl, ERRORS_PREFIX).get("deferred", 0)
            stats["rows"] += tbl.num_rows
            for s in tbl.column("row").to_pylist():
                yield json.loads(s)
    add_usage("predict", stats["usage"])
