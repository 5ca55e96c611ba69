"""The callable classes Ray Data runs in its actor pools (one instance per actor, built once).

Each worker gets plain, picklable settings (the parsed taxonomy and lfs.yaml, model specs, a cache path) in
its constructor and builds its models there, so an actor loads its embedder or LLM once and then serves many
batches. Batches come and go as ``pyarrow.Table``; what the driver needs back besides the results (usage,
LF error counts) travels in ``_u:<stage>`` / ``_e:<stage>`` string columns, set on the first row of each
batch and empty elsewhere, so the driver can sum them however Ray re-batches the rows in between.

This module imports neither ray nor torch at module level: Ray imports it in every worker process. Torch's
CPU threads need no setting here: Ray starts each actor with ``OMP_NUM_THREADS`` = its CPU share (at least 1),
so actors sharing a machine do not oversubscribe its cores.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np

#: Columns the driver reads; everything else a worker receives is passed on or dropped.
ID, TEXT = "id", "text"
USAGE_PREFIX, ERRORS_PREFIX = "_u:", "_e:"


def _usage_snapshot() -> dict:
    from ..llm.usage import usage_log

    return asdict(usage_log.total())


def _usage_delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def side_column(n: int, payload: dict):
    """A string column holding ``payload`` as JSON on row 0 and ``""`` elsewhere (see the module docstring)."""
    import pyarrow as pa

    vals = [""] * n
    if n and payload:
        vals[0] = json.dumps(payload, sort_keys=True)
    return pa.array(vals, pa.string())


def sum_side_columns(table, prefix: str) -> dict:
    """Sum the JSON payloads of every ``prefix*`` column of ``table`` (numbers add up key by key)."""
    out: dict[str, Any] = {}
    for name in table.column_names:
        if not name.startswith(prefix):
            continue
        for s in table.column(name).to_pylist():
            if s:
                for k, v in json.loads(s).items():
                    out[k] = out.get(k, 0) + v
    return out


def vote_columns(L, names: list[str], prob_lfs: set[str]) -> dict:
    """Arrow columns ``v:<lf>`` (int16) and ``p:<lf>`` (list<float32>, null where the LF abstained)."""
    import pyarrow as pa

    from ..artifacts.matrix import PROBA_PREFIX, VOTE_PREFIX

    cols = {}
    for j, name in enumerate(names):
        v = L.votes[:, j]
        cols[VOTE_PREFIX + name] = pa.array(v.astype(np.int16), pa.int16())
        if name in prob_lfs:
            voted = v >= 0
            pr = L.vote_probs.get(name)
            if pr is None:  # an LF of a probability kind that gave none this batch: one-hot, as the local path
                pr = np.zeros((int(voted.sum()), L.cardinality), np.float32)
                pr[np.arange(len(pr)), v[voted].astype(np.int64)] = 1
            k = L.cardinality
            offsets = np.zeros(len(v) + 1, np.int32)
            offsets[1:] = np.cumsum(np.where(voted, k, 0))
            values = pa.array(np.asarray(pr, np.float32).reshape(-1), pa.float32())
            cols[PROBA_PREFIX + name] = pa.ListArray.from_arrays(pa.array(offsets), values,
                                                                 mask=pa.array(~voted))
    return cols


class LFWorker:
    """Applies a subset of the run's LFs (``which``: indices into the built LF list) to each batch.

    ``stage`` names the side columns (``cheap`` or ``llm``). Prompted LFs get their engine built here once,
    with ``cache`` (a path on this node's disk, or None for the engine default, which is node-local too), so
    ``choose()`` runs exactly as in the local path: token-id prompts and prefix scoring over the choices.
    """

    def __init__(self, taxonomy, spec, *, models: list[str] | None, which: list[int], stage: str,
                 prob_lfs: list[str], cache: str | None = None, no_cache: bool = False) -> None:
        from ..lf.spec import build_lfs
        from ..llm import cache_option, engine_factory

        # Only the LLM stage loads engines (once each, with the run's cache options); the cheap stage's
        # prompted LFs stay engine-less and are never applied.
        engines = engine_factory(cache=cache_option(cache, no_cache)) if stage == "llm" else (lambda m: None)
        lfs = build_lfs(spec, taxonomy, models=models, engines=engines)
        self.lfs = [lfs[i] for i in which]
        self.labels = taxonomy.classes()
        self.stage = stage
        self.wants_items = any(lf.kind == "python" for lf in self.lfs)
        self.prob_lfs = set(prob_lfs)

    def __call__(self, batch):
        from ..lf.apply import apply_lfs

        ids = batch.column(ID).to_pylist()
        texts = batch.column(TEXT).to_pylist()
        extra = [c for c in batch.column_names if c not in (ID, TEXT) and c[:2] not in ("v:", "p:", "_u", "_e")]
        items = None
        if self.wants_items:  # python LFs see the whole row, as in the local path
            rows = batch.select(extra).to_pylist() if extra else [{} for _ in ids]
            items = [dict(r, text=t, id=i) for r, t, i in zip(rows, texts, ids)]
        before = _usage_snapshot()
        L = apply_lfs(self.lfs, texts, labels=self.labels, items=items, ids=ids)
        usage = _usage_delta(before, _usage_snapshot())
        out = batch.drop_columns(extra) if extra else batch
        for name, col in vote_columns(L, [lf.name for lf in self.lfs], self.prob_lfs).items():
            out = out.append_column(name, col)
        out = out.append_column(USAGE_PREFIX + self.stage, side_column(len(ids), usage))
        errors = {k: v for k, v in L.errors.items() if v}
        return out.append_column(ERRORS_PREFIX + self.stage, side_column(len(ids), errors))


class EmbedAssignWorker:
    """Taxonomy assignment: embed each text and take the nearest label centroid (``TaxonomyAssigner``)."""

    def __init__(self, assigner, embedder: str) -> None:
        from ..embed import load_embedder

        self.assigner = assigner
        self.embedder = load_embedder(embedder)

    def __call__(self, batch):
        import pyarrow as pa

        from ..taxonomy.induce import embed_texts

        x = embed_texts(self.embedder, batch.column(TEXT).to_pylist())
        labels, scores = self.assigner.assign(x)
        return pa.table({ID: batch.column(ID), "label": pa.array(labels, pa.string()),
                         "score": pa.array(np.round(scores.astype(np.float64), 4), pa.float64())})


class PredictWorker:
    """A distilled student (and, for a cascade, the LLM it defers to) predicting each batch."""

    def __init__(self, model_folder: str, *, int8: bool = False, cascade_llm: str | None = None,
                 threshold: float = 0.0, cache: str | None = None, no_cache: bool = False,
                 make_labeler=None) -> None:
        from ..distill.export import load_student

        self.student = load_student(model_folder, quantize=int8)
        self.cascade = None
        if cascade_llm:
            from ..distill.cascade import Cascade
            from ..llm import cache_option, load_engine

            engine = load_engine(cascade_llm, cache=cache_option(cache, no_cache))
            labeler = make_labeler(engine, list(self.student.classes_)) if make_labeler is not None else None
            self.cascade = Cascade(self.student, engine, threshold=threshold, labeler=labeler)

    def __call__(self, batch):
        import pyarrow as pa

        from ..distill.predict import prediction_rows

        before = _usage_snapshot()
        rows, deferred = prediction_rows(self.student, self.cascade, batch.column(ID).to_pylist(),
                                         batch.column(TEXT).to_pylist())
        usage = _usage_delta(before, _usage_snapshot())
        return pa.table({"row": pa.array([json.dumps(r, ensure_ascii=False) for r in rows], pa.string()),
                         USAGE_PREFIX + "predict": side_column(len(rows), usage),
                         ERRORS_PREFIX + "deferred": side_column(len(rows), {"deferred": deferred} if deferred else {})})
