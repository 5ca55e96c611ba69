"""The stage functions with a ``backend`` switch: what the commands and ``llmlabel run`` call for the stages
that can run on Ray Data (``label``, ``taxonomy``, ``predict``).

Each takes the local library function's parameters plus ``backend`` (``local`` | ``ray``), ``address``,
``num_workers`` and ``gpus_per_worker`` (and ``batch_size`` for label), declared in full so that
``inspect.signature`` and a pipeline file's options model see them like any other function's
(tests/test_stage_signatures.py checks they match the local functions'). The stage packages cannot import this
layer; this layer picks between them and :mod:`llmlabel.scale.ray`. Ray is imported only when ``backend="ray"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

from ..distill.predict import predict as _local_predict
from ..errors import ConfigError
from ..lf.run import label_corpus as _local_label
from ..results import LabelResult, PredictResult
from ..taxonomy.items import TaxonomyResult
from ..taxonomy.stage import taxonomy_stage as _local_induce  # induce, or keep a known label set (labels:)

#: The options every backend stage adds to its local function's, with their defaults (label adds batch_size).
RAY_OPTIONS = {"address": None, "num_workers": 1, "gpus_per_worker": 0.0}


def _dispatch(local: Callable, ray_fn: Callable, args: dict[str, Any], ray_options: dict[str, Any]):
    """Call ``local`` or ``ray_fn`` with ``args`` (a stage function's ``locals()``)."""
    backend = args.pop("backend")
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend must be local or ray, not {backend!r}", field="backend")
    ray_kw = {k: args.pop(k) for k in ray_options}
    if backend == "local":
        given = [k.replace("_", "-") for k, v in ray_kw.items() if v != ray_options[k]]
        if given:
            raise ConfigError(f"{', '.join('--' + g for g in given)} only apply with --backend ray",
                              hint="add --backend ray (backend: ray in a pipeline file)")
        return local(**args)
    return ray_fn(**args, **ray_kw)


def label_corpus(data: str | Path, taxonomy: str | Path, lfs: str | Path | None = None,
                 output: str | Path | None = None, *,
                 model: list[str] | None = None, cache: str | Path | None = None, no_cache: bool = False,
                 shard_size: int = 1000, text_field: str | None = None, id_field: str | None = None,
                 progress: bool = False, keep_text: bool = True, command: list[str] | None = None,
                 overwrite: bool = False, gold: str | Path | None = None, embedder=None,
                 encoder: str | Path | None = None,
                 backend: str = "local", address: Optional[str] = None, num_workers: int = 1,
                 gpus_per_worker: float = 0.0, batch_size: Optional[int] = None) -> LabelResult:
    """:func:`llmlabel.lf.run.label_corpus`, or :func:`llmlabel.scale.ray.label_corpus_ray` with ``backend="ray"``."""
    return _dispatch(_local_label, _label_ray, locals(), {**RAY_OPTIONS, "batch_size": None})


def predict(model: str | Path, data: str | Path, output: str | Path, *, text_field: str | None = None,
            id_field: str | None = None, cascade_llm: str | None = None, threshold: float | None = None,
            target_accuracy: float | None = None, max_deferral: float | None = None, dev: str | Path | None = None,
            dev_label_field: str = "label", batch_size: int = 4096, cache: str | Path | None = None,
            no_cache: bool = False, int8: bool = False, progress: bool = False,
            make_labeler: Callable[[Any, list[str]], Callable] | None = None,
            row_source: Callable[[Any, Any], Iterator[dict]] | None = None,
            backend: str = "local", address: Optional[str] = None, num_workers: int = 1,
            gpus_per_worker: float = 0.0) -> PredictResult:
    """:func:`llmlabel.distill.predict.predict`; with ``backend="ray"`` the student (and cascade) run on Ray Data."""
    return _dispatch(_local_predict, _predict_ray, locals(), RAY_OPTIONS)


def induce_taxonomy(corpus: Any, output: str | Path | None = None, *, max_labels: int = 30, instruction: str = "",
                    model: Any = None, levels: int = 1, sample: int | None = None, seed: int = 0,
                    embedder: Any = None, text_field: str | None = None, id_field: str | None = None,
                    refine: Any = None, mode: str = "auto", method: str = "spectral",
                    assignments: str | Path | None = None, cache: str | Path | None = None, no_cache: bool = False,
                    progress: bool = False, engine_kwargs: dict | None = None, raw_dir: str | Path | None = None,
                    llm_options: dict | None = None, multi_label: bool = False, labels: Optional[Path] = None,
                    backend: str = "local", address: Optional[str] = None, num_workers: int = 1,
                    gpus_per_worker: float = 0.0) -> TaxonomyResult:
    """:func:`llmlabel.taxonomy.stage.taxonomy_stage`; with ``backend="ray"`` every item is assigned on Ray Data."""
    return _dispatch(_local_induce, _taxonomy_ray, locals(), RAY_OPTIONS)


def _label_ray(gold=None, embedder=None, encoder=None, **kw):
    from .ray import label_corpus_ray

    if gold is not None or embedder is not None or encoder is not None:
        raise ConfigError("gold/embedder/encoder (the gold LFs' options) run on the local "
                          "backend only", hint="drop --backend ray")
    return label_corpus_ray(**kw)


def _predict_ray(model, data, output, *, address=None, num_workers=1, gpus_per_worker=0.0, row_source=None, **kw):
    from .ray import predict_rows_ray

    if row_source is not None:
        raise ConfigError("row_source replaces the Ray backend's own source of rows: give one or the other")

    def source(student, cascade):
        return predict_rows_ray(model, data, text_field=kw.get("text_field"), id_field=kw.get("id_field"),
                                int8=kw.get("int8", False), cascade_llm=kw.get("cascade_llm"),
                                threshold=cascade.threshold if cascade is not None else 0.0,
                                cache=kw.get("cache"), no_cache=kw.get("no_cache", False),
                                make_labeler=kw.get("make_labeler"), batch_size=kw.get("batch_size", 4096),
                                progress=kw.get("progress", False), address=address, num_workers=num_workers,
                                gpus_per_worker=gpus_per_worker)

    return _local_predict(model, data, output, row_source=source, **kw)


def _taxonomy_ray(corpus, output=None, *, refine=None, gpus_per_worker=0.0, **kw):
    from .ray import assign_taxonomy_ray

    if refine is not None or kw.get("labels") is not None or kw.get("multi_label"):
        raise ConfigError("--refine, --labels and --multi-label taxonomies run on the local backend only",
                          hint="drop --backend ray")
    kw.pop("labels", None)
    kw.pop("multi_label", None)
    if output is None:
        raise ConfigError("the Ray backend writes its assignments as it goes: give an output taxonomy.yaml")
    res, paths, full = assign_taxonomy_ray(corpus, output, **kw)
    res.paths = paths
    res.stats["ray"] = {k: v for k, v in full.items() if k != "assigner"}
    return res


__all__ = ["label_corpus", "predict", "induce_taxonomy"]
