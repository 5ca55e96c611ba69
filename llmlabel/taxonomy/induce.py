"""``induce_taxonomy``: corpus -> Taxonomy + per-item assignments, with or without an LLM; and ``--refine``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..artifacts.taxonomy import OTHER, Taxonomy, load_taxonomy
from .cluster import cluster_embeddings
from .items import (  # noqa: F401  (re-exported: callers import them from here)
    AUTO_MINILM_MAX, DEFAULT_TAXONOMY_EMBEDDER, MIN_PER_LABEL, TaxonomyResult, _dedupe, _load_embedder, auto_embedder,
    auto_reason, load_items)
from .labeldefs import add_parents, build_labels, embed_distinct, embed_texts


def induce_taxonomy(corpus: Any, output: str | Path | None = None, *, max_labels: int = 30, instruction: str = "",
                    model: Any = None, levels: int = 1, sample: int | None = None, seed: int = 0,
                    embedder: Any = None, text_field: str | None = None, id_field: str | None = None,
                    refine: Any = None, mode: str = "auto", method: str = "spectral",
                    assignments: str | Path | None = None, cache: str | Path | None = None, no_cache: bool = False,
                    progress: bool = False, engine_kwargs: dict | None = None, raw_dir: str | Path | None = None,
                    llm_options: dict | None = None, multi_label: bool = False) -> TaxonomyResult:
    """Induce a label taxonomy from raw texts; with ``output``, also write taxonomy.yaml and its companions.
    ``multi_label``: mark the taxonomy ``multi_label: true`` (items may carry several leaves).

    ``corpus``: a file path (any format :func:`llmlabel.read_corpus` reads), or a list of texts / (id, text).
    ``model``: an engine spec or :class:`~llmlabel.llm.LLM`; None runs the no-LLM default (embed + cluster +
    key-phrase names). With a model, ``mode="tnt"`` runs the TnT-LLM generate/update/review loop over
    minibatches and ``mode="seeded"`` (default with a model) lets the LLM name, describe and merge the clusters.
    ``llm_options``: TnT minibatching (``batch_items``, ``max_batches``, ``snippet_chars``).
    ``refine``: an existing Taxonomy (or its YAML path) whose labels and ids are kept; new items are
    assigned and new labels are proposed only from items that fit none.
    ``output``: taxonomy.yaml to write, with ``assignments`` (default: ``<stem>.assignments.jsonl`` beside
    it) and ``<stem>.md``; raw LLM replies that fail their schema go beside it too (``<stem>.llm-*-reply.txt``). ``cache`` / ``no_cache``: the LLM
    answer cache (a file, default the user cache; or none).
    """
    engine_kwargs = _check_args(max_labels, levels, cache, no_cache, engine_kwargs, output, assignments)
    base = None
    if refine is not None:
        base = refine if isinstance(refine, Taxonomy) else load_taxonomy(refine)
    raw_prefix = "taxonomy"
    if raw_dir is None and output is not None:
        raw_dir, raw_prefix = Path(output).parent, Path(output).stem
    t0 = time.perf_counter()
    ids, texts, info = load_items(corpus, text_field=text_field, id_field=id_field, sample=sample, seed=seed)
    src = str(corpus) if isinstance(corpus, (str, Path)) else None
    if not texts:
        raise InputError("the corpus has no non-empty texts", path=src, hint="check --text-field")
    uniq, inv = _dedupe(texts)
    emb, utexts, x = embed_distinct(texts, uniq, embedder, info, progress)
    made = {"embedder": emb.name, "seed": seed, "max_labels": max_labels, "levels": levels,
            "items": len(texts), "distinct_texts": len(uniq), "engine": None, "method": method}
    if refine is not None:
        from .refine import refine_taxonomy

        res = refine_taxonomy(base, x, utexts, [ids[i] for i in uniq], emb, max_new=max_labels, seed=seed)
    else:
        if len(uniq) == 1 and len(texts) > 1:
            raise InputError(f"all {len(texts):,} texts are the same after normalising case and spaces",
                             path=src, hint="a taxonomy needs different texts")
        need = MIN_PER_LABEL * max_labels
        if len(uniq) < need:
            raise InputError(
                f"{len(uniq):,} distinct texts are too few for up to {max_labels} labels "
                f"(need at least {need:,}: {MIN_PER_LABEL} per label)", path=src,
                hint=f"lower --max-labels to {max(1, len(uniq) // MIN_PER_LABEL)} or add texts")
        res = _cluster_taxonomy(x, utexts, [ids[i] for i in uniq], max_labels, levels, seed, method)
    tax, ulab, usc = res
    if model is not None:
        from .tnt import llm_taxonomy

        tax, ulab, usc, llm_info = llm_taxonomy(model, tax, x, utexts, [ids[i] for i in uniq], ulab, usc, emb,
                                                instruction=instruction, max_labels=max_labels, levels=levels,
                                                mode=mode, seed=seed, engine_kwargs=engine_kwargs or {},
                                                raw_dir=raw_dir, raw_prefix=raw_prefix, progress=progress,
                                                **(llm_options or {}))
        made["engine"] = llm_info.pop("engine", None)
        made["llm_mode"] = llm_info.pop("mode", None)
        info.update(llm_info)
    tax.instruction = instruction or tax.instruction
    tax.multi_label = bool(multi_label or tax.multi_label)
    assign, scores, counts = _assign_and_share(tax, ulab[inv], usc[inv])
    made.update({k: v for k, v in tax.made_with.items() if k not in made})
    tax.made_with = made
    info["other_share"] = round(counts.get(OTHER, 0) / len(assign), 4)
    info["labels"] = len(tax.leaves())
    info["seconds"] = round(time.perf_counter() - t0, 2)
    res = TaxonomyResult(tax, ids, assign, scores, info)
    if output is not None:
        from .report import write_outputs

        res.paths = write_outputs(res, output, assignments=assignments)
    return res


def _check_args(max_labels: int, levels: int, cache, no_cache: bool, engine_kwargs: dict | None, output,
                assignments) -> dict | None:
    """Refuse bad settings and unwritable outputs before the embedding work, not after it; returns the engine
    keyword arguments with the answer cache set."""
    if max_labels < 1:
        raise ConfigError(f"--max-labels must be at least 1, got {max_labels}", field="max_labels")
    if levels not in (1, 2):
        raise ConfigError(f"--levels must be 1 or 2, got {levels}", field="levels")
    if cache is not None or no_cache:
        from ..llm import cache_option

        engine_kwargs = {**(engine_kwargs or {}), "cache": cache_option(cache, no_cache)}
    if output is not None:
        from ..io_write import check_writable

        check_writable(output)
        if assignments is not None:
            check_writable(assignments)
    return engine_kwargs


def _assign_and_share(tax: Taxonomy, item_lab: np.ndarray, scores: np.ndarray):
    """``(leaf id per item, score per item, count per leaf id)``: -1 becomes ``other``; each label's ``share``
    is set (a parent without items of its own: the sum of its children's)."""
    leaf_ids = [lab.id for lab in tax.leaves()]
    names = np.asarray(leaf_ids + [OTHER], dtype=object)
    col = np.where(item_lab >= 0, item_lab, len(leaf_ids))
    assign = names[col].tolist()
    tally = np.bincount(col, minlength=len(names))
    counts = {str(names[j]): int(c) for j, c in enumerate(tally) if c}
    for lab in tax.labels:
        if lab.id in counts:
            lab.share = round(counts[lab.id] / len(assign), 4)
    for lab in tax.labels:
        if lab.parent is None and lab.id not in counts:
            kids = [k for k in tax.labels if k.parent == lab.id]
            if kids:
                lab.share = round(sum(k.share or 0 for k in kids), 4)
    return assign, scores, counts


def _cluster_taxonomy(x: np.ndarray, texts: list[str], ids: list[str], max_labels: int, levels: int, seed: int,
                      method: str) -> tuple[Taxonomy, np.ndarray, np.ndarray]:
    cl = cluster_embeddings(x, max_labels, seed=seed, method=method)
    k = len(cl.centroids)
    sizes = np.bincount(cl.labels[cl.labels >= 0], minlength=k)
    order = np.argsort(-sizes, kind="stable")  # biggest label first
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    lab = np.where(cl.labels >= 0, rank[np.maximum(cl.labels, 0)], -1)
    cent = cl.centroids[order]
    labels = build_labels(x, texts, ids, lab, cent, seed=seed)
    if levels == 2 and k >= 4:
        labels = add_parents(labels, x, texts, lab, cent, seed=seed)
    tax = Taxonomy(labels=labels, made_with={"merged_near_duplicates": cl.merged})
    return tax, lab, cl.scores


__all__ = ["induce_taxonomy", "TaxonomyResult", "load_items", "embed_texts", "DEFAULT_TAXONOMY_EMBEDDER"]
