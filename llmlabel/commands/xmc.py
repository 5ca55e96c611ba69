"""``llmlabel xmc`` (Infer-Retrieve-Rank over 10^4-10^6 labels) and ``llmlabel xmc-eval`` (RP@k, recall@k, ...).

Nothing heavy is imported at module level: ``llmlabel --help`` imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import options

from ..errors import InputError

DEFAULT_RETRIEVER = "minilm+wordllama+bm25"  # = llmlabel.xmc.retrieve.DEFAULT_RETRIEVER (kept light here)


def _gold_of(row: dict, field: str, where: Path, line: int) -> list[str]:
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


def _read_labeled(path: Path, text_field: Optional[str], gold_field: str) -> tuple[list[str], list[list[str]]]:
    from ..io import read_corpus

    corpus = read_corpus(path, text_field=text_field)
    texts, gold = [], []
    for b in corpus.iter_batches():
        for t, row, pos in zip(b.texts, b.rows, b.positions):
            texts.append(t)
            gold.append(_gold_of(row, gold_field, path, pos + 1))
    return texts, gold


def _file_hash(path: Optional[Path]) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path is not None and path.is_file() else "-"


def _program_cache_path(index_dir: Optional[Path], space, model: str, retriever: str, k: int, task: str,
                        rank_topn: int, max_tokens: int, train: Optional[Path], dev: Optional[Path]) -> Path:
    """Where a compiled program lives: beside the label indexes, keyed by everything that shaped it."""
    import hashlib

    from ..xmc.index import default_index_dir

    key = json.dumps([model, retriever, k, task, rank_topn, max_tokens, _file_hash(train), _file_hash(dev)])
    root = Path(index_dir).expanduser() if index_dir is not None else default_index_dir()
    return root / "programs" / f"{space.fingerprint}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def register(app: typer.Typer) -> None:
    @app.command()
    def xmc(
        data: Path = typer.Argument(..., help="Texts to label (JSONL, CSV, Parquet, datasets folder)."),
        labels: Path = typer.Option(..., "--labels", "-l", help="Label file: one label a line (or a JSON list)."),
        output: Path = typer.Option(..., "--output", "-o", help="Predictions (JSONL: id, labels, scores)."),
        model: Optional[str] = typer.Option(None, "--model", "-m",
                                            help="LLM for Infer and Rank (hf:..., vllm:..., openai:...#...). "
                                                 "Without it: retrieval only."),
        k: int = typer.Option(10, "-k", help="Labels per item."),
        retriever: str = typer.Option(DEFAULT_RETRIEVER, "--retriever",
                                      help="'+'-joined embedders (minilm, wordllama, any sentence-transformers "
                                           "name) and bm25; scores are z-normalised and added."),
        priors: Optional[Path] = typer.Option(None, "--priors", help="JSON {label: frequency}: label priors."),
        prior_weight: float = typer.Option(1.0, "--prior-weight", help="Weight of the (z-scored log) prior."),
        expand_weight: float = typer.Option(0.0, "--expand-weight",
                                            help="Weight of key-phrase queries cut from the text (no LLM)."),
        train: Optional[Path] = typer.Option(None, "--train", help="Labeled examples to optimise the program."),
        dev: Optional[Path] = typer.Option(None, "--dev", help="Labeled examples to score before/after."),
        gold_field: str = typer.Option("labels", "--gold-field", help="Gold label field in --train/--dev."),
        program: Optional[Path] = typer.Option(None, "--program", help="Load a saved (optimised) program JSON."),
        save_program: Optional[Path] = typer.Option(None, "--save-program",
                                                    help="Also save the optimised program here (it is always "
                                                         "saved next to the label index and reused)."),
        task: str = typer.Option("labels", "--task", help="What the labels are, for the prompts (e.g. 'skills')."),
        rank_topn: int = typer.Option(20, "--rank-topn", help="Shortlist size the Rank step sees."),
        max_tokens: int = typer.Option(256, "--max-tokens", help="Reply budget of each Infer / Rank call."),
        text_field: Optional[str] = options.text_field(),
        id_field: Optional[str] = options.id_field(),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed rows instead of stopping."),
        index_dir: Optional[Path] = typer.Option(None, "--index-dir",
                                                 help="Label-index cache (default: $LLMLABEL_INDEX_DIR or "
                                                      "the user cache dir)."),
        no_index_cache: bool = typer.Option(False, "--no-index-cache", help="Embed the labels, cache nothing."),
        cache: Optional[Path] = options.cache(),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the LLM cache."),
        batch_size: int = typer.Option(512, "--batch-size", help="Items processed (and LLM-batched) at once."),
    ) -> None:
        """Rank labels from a huge label space for each text (Infer-Retrieve-Rank; retrieval only without --model)."""
        import time

        from ..artifacts.predictions import sidecar_meta, write_predictions
        from ..io import atomic_write, make_meta, read_corpus
        from ..llm import usage_log
        from ..xmc import build_retriever, load_labels, load_priors

        if k < 1:
            raise InputError(f"-k must be >= 1, got {k}")
        if (train or dev or program) and not model:
            raise InputError("--train, --dev and --program need an LLM", hint="add --model SPEC")
        corpus = read_corpus(data, text_field=text_field, id_field=id_field, skip_bad=skip_bad,
                             batch_size=batch_size)
        space = load_labels(labels)
        if len(space) == 1:
            raise InputError(f"the label file holds one label ({space.summary()}): nothing to rank", path=labels,
                             hint="an XMC label space needs at least 2 labels, one a line")
        typer.echo(f"labels: {space.summary()}", err=True)
        prior = load_priors(priors, space) if priors else None
        t0 = time.perf_counter()
        ret = build_retriever(retriever, space, prior=prior, prior_weight=prior_weight if prior is not None else 0.0,
                              expand_weight=expand_weight, cache_dir=index_dir, use_cache=not no_index_cache,
                              progress=True)
        built = [c.index.built for c, _ in ret.components if hasattr(c, "index")]
        typer.echo(f"retriever {ret.name} ready in {time.perf_counter() - t0:.1f}s "
                   f"({sum(built)} label index(es) built, {len(built) - sum(built)} loaded from cache)", err=True)
        irr = report = None
        if model:
            from ..llm import load_engine
            from ..xmc.optimize import load_program, make_examples, optimize
            from ..xmc.program import InferRetrieveRank

            engine = load_engine(model, cache=False if no_cache else cache)
            irr = InferRetrieveRank(ret, engine=engine, task=task, rank_topn=rank_topn, k=k, max_tokens=max_tokens)
            if program:
                irr = load_program(program, ret, engine=engine)
            cached = _program_cache_path(index_dir, space, model, retriever, k, task, rank_topn, max_tokens, train, dev)
            if train and not program and cached.is_file():
                # Same labels, model, retriever, settings and train/dev files: reuse the compiled program.
                irr = load_program(cached, ret, engine=engine)
                report = json.loads(cached.read_text(encoding="utf-8")).get("report")
                typer.echo(f"optimised program loaded from {cached} (delete it to optimise again)", err=True)
            elif train:
                tr = make_examples(*_read_labeled(train, text_field, gold_field), space)
                typer.echo(f"train: {tr.summary()}", err=True)
                dv = make_examples(*_read_labeled(dev, text_field, gold_field), space) if dev else None
                if dv is not None:
                    typer.echo(f"dev: {dv.summary()}", err=True)
                with usage_log.stage("xmc-optimize"):
                    irr, report = optimize(irr, tr.examples, dev=dv.examples if dv else None, k=k)
                report.update(train_unknown_labels=tr.unknown_labels, train_skipped=tr.skipped)
                meta = dict(report=report, labels_fingerprint=space.fingerprint, retriever=retriever, model=model)
                cached.parent.mkdir(parents=True, exist_ok=True)
                irr.save_json(cached, **meta)  # next to the label index, found again by the next run
                if save_program:
                    irr.save_json(save_program, **meta)
                typer.echo(f"optimised program saved to {save_program or cached}", err=True)
                if "dev_after" in report:
                    b, a = report["dev_before"], report["dev_after"]
                    typer.echo(f"dev RP@{k}: {b.get(f'RP@{k}', float('nan')):.3f} -> "
                               f"{a.get(f'RP@{k}', float('nan')):.3f}", err=True)
            elif dev:
                raise InputError("--dev is used with --train", hint="add --train FILE")

        def rows():
            for b in corpus.iter_batches():
                if irr is not None:
                    with usage_log.stage("xmc"):
                        res = irr.predict_many(b.texts, k=k)
                    for rid, r in zip(b.ids, res):
                        yield {"id": rid, "labels": r["labels"], "scores": [round(s, 4) for s in r["scores"]],
                               "queries": r["queries"]}
                else:
                    for rid, r in zip(b.ids, ret.retrieve(b.texts, k)):
                        yield {"id": rid, "labels": [x for x, _ in r], "scores": [round(s, 4) for _, s in r]}

        t1 = time.perf_counter()
        n = write_predictions(output, rows(), task="xmc", meta={})
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
        typer.echo(corpus.stats.summary(), err=True)
        typer.echo(f"wrote {n:,} rows to {output} ({n / max(secs, 1e-9):,.1f} items/s)", err=True)
        if irr is not None:
            s = irr.summary()
            typer.echo(f"program: {s['infer_unparsed']} Infer / {s['rank_unparsed']} Rank replies unparsed "
                       f"(retrieval fallback), {s['truncated']} texts truncated", err=True)
            typer.echo(usage_log.summary(), err=True)

    @app.command("xmc-eval")
    def xmc_eval(
        preds: Path = typer.Argument(..., help="Predictions from llmlabel xmc (JSONL with id and labels)."),
        gold: Path = typer.Argument(..., help="Gold JSONL with id and a list of labels."),
        gold_field: str = typer.Option("labels", "--gold-field", help="Gold label field."),
        pred_field: str = typer.Option("labels", "--pred-field", help="Predicted label field."),
        id_field: str = typer.Option("id", "--id-field", help="Id field in both files (default: id; "
                                                                "rows are matched by it)."),
        ks: str = typer.Option("1,5,10,50,100", "--k", help="Comma-separated cut-offs."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """RP@k, recall@k, precision@k and nDCG@k of predictions against gold labels."""
        from ..io import read_records
        from ..xmc.metrics import evaluate

        try:
            cutoffs = sorted({int(x) for x in ks.split(",") if x.strip()})
        except ValueError as e:
            raise InputError(f"bad --k {ks!r}", hint="e.g. --k 1,5,10") from e
        if not cutoffs or cutoffs[0] < 1:
            raise InputError(f"bad --k {ks!r}", hint="positive integers, e.g. --k 1,5,10")
        predicted: dict[str, list[str]] = {}
        for n, row in read_records(preds):
            if id_field not in row:
                raise InputError(f"missing id field '{id_field}'", path=preds, line=n, field=id_field,
                                 hint=f"available fields: {', '.join(row)}")
            predicted[str(row[id_field])] = _gold_of(row, pred_field, preds, n)
        golds, plist, missing = [], [], 0
        for n, row in read_records(gold):
            if id_field not in row:
                raise InputError(f"missing id field '{id_field}'", path=gold, line=n, field=id_field,
                                 hint=f"available fields: {', '.join(row)}")
            rid = str(row[id_field])
            if rid not in predicted:
                missing += 1
            golds.append(set(_gold_of(row, gold_field, gold, n)))
            plist.append(predicted.get(rid, []))
        if not golds:
            raise InputError("the gold file has no rows", path=gold)
        res = evaluate(plist, golds, ks=cutoffs)
        res["gold_rows_without_prediction"] = missing
        if as_json:
            typer.echo(json.dumps(res, indent=2))
            return
        typer.echo(f"{res['items']} items scored ({res['items_without_gold']} without gold skipped, "
                   f"{missing} gold rows without a prediction counted as empty)")
        typer.echo("k\tRP@k\trecall@k\tprecision@k\tnDCG@k")
        for c in cutoffs:
            typer.echo(f"{c}\t{res[f'RP@{c}']:.4f}\t{res[f'recall@{c}']:.4f}\t{res[f'precision@{c}']:.4f}\t"
                       f"{res[f'nDCG@{c}']:.4f}")
