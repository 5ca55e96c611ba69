"""``llmlabel xmc`` as a library call: texts + a huge label file -> ranked labels per text (JSONL); and
``llmlabel xmc-eval``'s: those predictions scored against gold label lists (:func:`evaluate_predictions`).

Without ``model`` it is retrieval only; with one it runs Infer-Retrieve-Rank, optionally optimised on
``train`` (and scored on ``dev``). An optimised program is saved next to the label index, keyed by
everything that shaped it, and reused by the next run with the same settings.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..results import XmcEvalResult, XmcResult
from .retrieve import DEFAULT_RETRIEVER


def gold_of(row: dict, field: str, where: Path, line: int) -> list[str]:
    """The labels of one predictions row (a label or a list of labels); a missing field names the line.
    (Gold files are read by :mod:`llmlabel.artifacts.gold`.)"""
    if field not in row:
        raise InputError(f"missing gold field '{field}'", path=where, line=line, field=field,
                         hint=f"available fields: {', '.join(map(str, row)) or '(none)'}; choose it with --gold-field")
    v = row[field]
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, (list, tuple)):
        return [str(x) for x in v if x is not None]
    raise InputError(f"gold field '{field}' must be a label or a list of labels", path=where, line=line, field=field)


def read_gold_texts(path: Path, text_field: str | None, gold_field: str) -> tuple[list[str], list[list[str]]]:
    """Texts and gold label lists of a train/dev file (:mod:`llmlabel.artifacts.gold`; an empty list is allowed)."""
    from ..artifacts.gold import read_gold

    g = read_gold(path, label_field=gold_field, text_field=text_field, need_ids=False, need_text=True,
                  allow_empty=True, split="")
    return list(g.texts), [list(x) for x in g.labels]


def _file_hash(path: Path | None) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path is not None and Path(path).is_file() else "-"


def program_cache_path(index_dir: Path | None, space, model: str, retriever: str, k: int, task: str,
                       rank_topn: int, max_tokens: int, train: Path | None, dev: Path | None) -> Path:
    """Where a compiled program lives: beside the label indexes, keyed by everything that shaped it."""
    from .index import default_index_dir

    key = json.dumps([model, retriever, k, task, rank_topn, max_tokens, _file_hash(train), _file_hash(dev)])
    root = Path(index_dir).expanduser() if index_dir is not None else default_index_dir()
    return root / "programs" / f"{space.fingerprint}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def run_xmc(data: str | Path, labels: str | Path, output: str | Path, *, model: str | None = None, k: int = 10,
            retriever: str = DEFAULT_RETRIEVER, priors: str | Path | None = None, prior_weight: float = 1.0,
            expand_weight: float = 0.0, train: str | Path | None = None, dev: str | Path | None = None,
            gold_field: str = "labels", program: str | Path | None = None, save_program: str | Path | None = None,
            task: str = "labels", rank_topn: int = 20, max_tokens: int = 256, text_field: str | None = None,
            id_field: str | None = None, skip_bad: bool = False, index_dir: str | Path | None = None,
            no_index_cache: bool = False, cache: str | Path | None = None, no_cache: bool = False,
            batch_size: int = 512, progress: bool = False, log: Callable[[str], None] | None = None) -> XmcResult:
    """Rank ``k`` labels of the label file ``labels`` for every text of ``data`` into ``output`` (JSONL: id,
    labels, scores; provenance in ``output.meta.json``). Returns an :class:`~llmlabel.results.XmcResult`; ``log``
    gets progress lines.
    """
    from ..artifacts.predictions import sidecar_meta, write_predictions
    from ..io import read_corpus
    from ..io_meta import make_meta
    from ..io_write import atomic_write, check_writable
    from .labels import load_labels, load_priors
    from .retrieve import build_retriever

    say = log or (lambda s: None)
    output, labels = Path(output), Path(labels)
    train, dev = (Path(train) if train else None), (Path(dev) if dev else None)
    if k < 1:
        raise InputError(f"-k must be >= 1, got {k}", field="k")
    if (train or dev or program) and not model:
        raise InputError("--train, --dev and --program need an LLM", hint="add --model SPEC")
    if dev and not train:
        raise InputError("--dev is used with --train", hint="add --train FILE")
    check_writable(output)
    corpus = read_corpus(data, text_field=text_field, id_field=id_field, skip_bad=skip_bad, batch_size=batch_size,
                         keep_empty=True)
    batches = corpus.start()  # a bad first line or an empty input fails before the label index is built
    if batches is None:
        raise InputError("the input has no rows to rank", path=data, hint=corpus.stats.summary())
    space = load_labels(labels)
    if len(space) == 1:
        raise InputError(f"the label file holds one label ({space.summary()}): nothing to rank", path=labels,
                         hint="an XMC label space needs at least 2 labels, one a line")
    say(f"labels: {space.summary()}")
    prior = load_priors(priors, space) if priors else None
    t0 = time.perf_counter()
    ret = build_retriever(retriever, space, prior=prior, prior_weight=prior_weight if prior is not None else 0.0,
                          expand_weight=expand_weight, cache_dir=index_dir, use_cache=not no_index_cache,
                          progress=progress)
    built = [c.index.built for c, _ in ret.components if hasattr(c, "index")]
    say(f"retriever {ret.name} ready in {time.perf_counter() - t0:.1f}s "
        f"({sum(built)} label index(es) built, {len(built) - sum(built)} loaded from cache)")
    irr = report = None
    if model:
        irr, report = _program(model, ret, space, k=k, retriever=retriever, task=task, rank_topn=rank_topn,
                               max_tokens=max_tokens, train=train, dev=dev, gold_field=gold_field,
                               text_field=text_field, program=program, save_program=save_program,
                               index_dir=index_dir, cache=cache, no_cache=no_cache, say=say)

    t1 = time.perf_counter()
    n = write_predictions(output, _rows(batches, irr, ret, k), task="xmc", meta={})
    secs = time.perf_counter() - t1
    meta = make_meta(engine=model, stage="xmc", retriever=retriever, k=k, label_file=str(labels),
                     labels=len(space), labels_fingerprint=space.fingerprint, label_duplicates=space.duplicates,
                     label_empty=space.empty, priors=str(priors) if priors else None,
                     prior_weight=prior_weight if priors else None, expand_weight=expand_weight,
                     read=corpus.stats.summary(), program=irr.summary() if irr is not None else None,
                     optimise_report=report)
    meta = sidecar_meta(meta, task="xmc")
    with atomic_write(output.with_name(output.name + ".meta.json")) as f:  # read_meta() finds it
        f.write(json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str) + "\n")
    return XmcResult(rows=n, seconds=secs, output=output, read=corpus.stats.summary(),
                     program=irr.summary() if irr is not None else None, report=report)


def _rows(batches, irr, ret, k: int):
    """One output row per input row, in input order; an empty text gets no labels and says why."""
    from ..llm import usage_log

    def ranked(ids, texts):
        if irr is not None:
            with usage_log.stage("xmc"):
                res = irr.predict_many(texts, k=k)
            for rid, r in zip(ids, res):
                yield {"id": rid, "labels": r["labels"], "scores": [round(s, 4) for s in r["scores"]],
                       "queries": r["queries"]}
        else:
            for rid, r in zip(ids, ret.retrieve(texts, k)):
                yield {"id": rid, "labels": [x for x, _ in r], "scores": [round(s, 4) for _, s in r]}

    for b in batches:
        full = [i for i, t in enumerate(b.texts) if t]
        got = ranked([b.ids[i] for i in full], [b.texts[i] for i in full]) if full else iter(())
        for rid, t in zip(b.ids, b.texts):
            yield next(got) if t else {"id": rid, "labels": [], "scores": [], "reason": "empty text"}


def _program(model, ret, space, *, k, retriever, task, rank_topn, max_tokens, train, dev, gold_field, text_field,
             program, save_program, index_dir, cache, no_cache, say):
    """The Infer-Retrieve-Rank program to run: loaded, reused from the program cache, or optimised now."""
    from ..llm import cache_option, load_engine, usage_log
    from .optimize import load_program, make_examples, optimize
    from .program import InferRetrieveRank

    engine = load_engine(model, cache=cache_option(cache, no_cache))
    irr = InferRetrieveRank(ret, engine=engine, task=task, rank_topn=rank_topn, k=k, max_tokens=max_tokens)
    report = None
    if program:
        irr = load_program(program, ret, engine=engine)
    cached = program_cache_path(index_dir, space, model, retriever, k, task, rank_topn, max_tokens, train, dev)
    if train and not program and cached.is_file():
        # Same labels, model, retriever, settings and train/dev files: reuse the compiled program.
        irr = load_program(cached, ret, engine=engine)
        report = json.loads(cached.read_text(encoding="utf-8")).get("report")
        say(f"optimised program loaded from {cached} (delete it to optimise again)")
    elif train:
        tr = make_examples(*read_gold_texts(train, text_field, gold_field), space)
        say(f"train: {tr.summary()}")
        dv = make_examples(*read_gold_texts(dev, text_field, gold_field), space) if dev else None
        if dv is not None:
            say(f"dev: {dv.summary()}")
        with usage_log.stage("xmc-optimize"):
            irr, report = optimize(irr, tr.examples, dev=dv.examples if dv else None, k=k)
        report.update(train_unknown_labels=tr.unknown_labels, train_skipped=tr.skipped)
        meta = dict(report=report, labels_fingerprint=space.fingerprint, retriever=retriever, model=model)
        cached.parent.mkdir(parents=True, exist_ok=True)
        irr.save_json(cached, **meta)  # next to the label index, found again by the next run
        if save_program:
            irr.save_json(save_program, **meta)
        say(f"optimised program saved to {save_program or cached}")
        if "dev_after" in report:
            b, a = report["dev_before"], report["dev_after"]
            say(f"dev RP@{k}: {b.get(f'RP@{k}', float('nan')):.3f} -> {a.get(f'RP@{k}', float('nan')):.3f}")
    return irr, report


def evaluate_predictions(preds: str | Path, gold: str | Path, *, gold_field: str = "labels",
                         pred_field: str = "labels", id_field: str = "id",
                         ks: Sequence[int] = (1, 5, 10, 50, 100)) -> XmcEvalResult:
    """RP@k, recall@k, precision@k and nDCG@k of ``preds`` (JSONL from :func:`run_xmc`: id and a label list,
    best first) against ``gold`` (id and a list of labels), rows matched by ``id_field``. A gold row with no
    prediction is scored as an empty one; a gold row with no label is skipped. Returns an
    :class:`~llmlabel.results.XmcEvalResult`."""
    from ..artifacts.gold import read_gold
    from ..ids import UniqueIds, canonical_id
    from ..io_records import read_records
    from .metrics import evaluate

    cutoffs = sorted({int(k) for k in ks})
    if not cutoffs or cutoffs[0] < 1:
        raise InputError(f"bad cut-offs {list(ks)!r}", field="ks", hint="positive integers, e.g. ks=(1, 5, 10)")
    preds, gold = Path(preds), Path(gold)
    predicted: dict[str, list[str]] = {}
    seen = UniqueIds(preds, what="prediction")
    for n, row in read_records(preds):
        if id_field not in row:
            raise InputError(f"missing id field '{id_field}'", path=preds, line=n, field=id_field,
                             hint=f"available fields: {', '.join(row)}")
        rid = canonical_id(row[id_field])
        if rid is None:
            raise InputError(f"id {row[id_field]!r} is not a usable id", path=preds, line=n, field=id_field)
        seen.add(rid, n)
        predicted[rid] = gold_of(row, pred_field, preds, n)
    if not predicted:
        raise InputError("the predictions file has no rows", path=preds, hint="write it with `llmlabel xmc`")
    g = read_gold(gold, label_field=gold_field, id_field=id_field, allow_empty=True, split="")
    if not g.ids:
        raise InputError("the gold file has no rows", path=gold)
    golds = [set(labs) for labs in g.labels]
    plist = [predicted.get(rid, []) for rid in g.ids]
    missing = sum(rid not in predicted for rid in g.ids)
    res = evaluate(plist, golds, ks=cutoffs)
    return XmcEvalResult(items=res.pop("items"), items_without_gold=res.pop("items_without_gold"),
                         gold_rows_without_prediction=missing, ks=tuple(cutoffs), scores=res)
