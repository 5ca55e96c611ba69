"""The stage functions with a ``backend`` switch: what the commands and ``llmlabel run`` call for the stages
that can run on Ray Data (``label``, ``taxonomy``, ``predict``).

Each is the local library function's signature plus ``backend`` (``local`` | ``ray``), ``address``,
``num_workers`` and ``gpus_per_worker`` (and ``batch_size`` for label), so a pipeline file validates them like
any other option. The stage packages cannot import this layer; this layer picks between them and
:mod:`llmlabel.scale.ray`. Ray is imported only when ``backend="ray"``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional

from ..distill.predict import predict as _local_predict
from ..errors import ConfigError
from ..lf.run import label_corpus as _local_label
from ..taxonomy.stage import taxonomy_stage as _local_induce  # induce, or keep a known label set (labels:)

_RAY = {"address": (Optional[str], None), "num_workers": (int, 1), "gpus_per_worker": (float, 0.0)}


def _with_backend(local: Callable, ray_fn: Callable, extra: dict[str, tuple] | None = None) -> Callable:
    added = {"backend": (str, "local"), **_RAY, **(extra or {})}

    @functools.wraps(local)
    def stage(*args: Any, backend: str = "local", **kw: Any):
        if backend not in ("local", "ray"):
            raise ConfigError(f"backend must be local or ray, not {backend!r}", field="backend")
        ray_kw = {k: kw.pop(k, d) for k, (_, d) in added.items() if k != "backend"}
        if backend == "local":
            given = [k.replace("_", "-") for k, v in ray_kw.items() if v != added[k][1]]
            if given:
                raise ConfigError(f"{', '.join('--' + g for g in given)} only apply with --backend ray",
                                  hint="add --backend ray (backend: ray in a pipeline file)")
            return local(*args, **kw)
        return ray_fn(*args, **kw, **ray_kw)

    sig = inspect.signature(local)
    params = list(sig.parameters.values())
    tail = [p for p in params if p.kind == p.VAR_KEYWORD]
    params = [p for p in params if p.kind != p.VAR_KEYWORD]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=t)
               for k, (t, d) in added.items()]
    stage.__signature__ = sig.replace(parameters=params + tail)  # what stages.options_model reads
    stage.__annotations__ = {**local.__annotations__, **{k: t for k, (t, _) in added.items()}}
    return stage


def _label_ray(*args, gold=None, embedder=None, encoder=None, **kw):
    from .ray import label_corpus_ray

    if gold is not None or embedder is not None or encoder is not None:
        raise ConfigError("gold/embedder/encoder (the gold LFs' options) run on the local "
                          "backend only", hint="drop --backend ray")
    return label_corpus_ray(*args, **kw)


def _predict_ray(model, data, output, *, address=None, num_workers=1, gpus_per_worker=0.0, **kw):
    from .ray import predict_rows_ray

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


label_corpus = _with_backend(_local_label, _label_ray, {"batch_size": (Optional[int], None)})
predict = _with_backend(_local_predict, _predict_ray)
induce_taxonomy = _with_backend(_local_induce, _taxonomy_ray)

__all__ = ["label_corpus", "predict", "induce_taxonomy"]
