"""``llmlabel label`` as a library call: apply LFs to a corpus into a resumable votes folder.

The folder holds Parquet shards (``id``, ``text``, ``v:<lf>`` votes, ``p:<lf>`` class probabilities of
LLM/embedding LFs), ``_manifest.json`` and ``_lf_errors.json`` (the layout is owned by :mod:`llmlabel.artifacts.votes`). A rerun
after a kill skips finished shards; items of the unfinished shard are redone, and their LLM calls come
from the engine cache.
"""

from __future__ import annotations

from pathlib import Path

from ..results import LabelResult


def label_corpus(data: str | Path, taxonomy: str | Path, lfs: str | Path | None = None,
                 output: str | Path | None = None, *,
                 model: list[str] | None = None, cache: str | Path | None = None, no_cache: bool = False,
                 shard_size: int = 1000, text_field: str | None = None, id_field: str | None = None,
                 progress: bool = False, keep_text: bool = True, command: list[str] | None = None,
                 overwrite: bool = False, gold: str | Path | None = None, embedder=None,
                 encoder: str | Path | None = None) -> LabelResult:
    """Apply the LFs of ``lfs`` (an lfs.yaml) to ``data`` into the votes folder ``output``.

    Without ``lfs``, the default LFs for the situation (:mod:`llmlabel.lf.defaults`: single- or multi-label
    taxonomy, with or without ``gold``, one prompted LF per ``model``) run, and are saved as
    ``output/lfs.yaml``; the summary's ``default_lfs`` says which set it was.

    The classes are the taxonomy's leaves (parent groups of a two-level taxonomy are not voted on).
    ``model``: specs for prompted LFs that name none (one LF per model). Every engine is built once for the
    run with ``cache`` (a file; default: the user cache) or no cache at all (``no_cache``), and shared by
    the LFs that name the same model. ``overwrite`` discards a votes folder made from another corpus
    instead of refusing it. Returns a summary dict (rows, shards, errors per LF). A taxonomy with
    ``multi_label: true`` runs multi-label LFs (:mod:`llmlabel.lf.multispec`; ``gold``: the gold JSONL/CSV of
    their knn LFs; ``embedder``: an embedder object shared by the embedding-based LFs). ``gold`` (or ``gold:``
    in the LF spec, relative to it) also feeds single-label ``knn`` and gold few-shot prompted LFs; gold
    items get out-of-fold votes (:mod:`llmlabel.lf.gold`). When an LF reads the run's tuned encoder
    (``embedder: tuned``, ``kind: setfit``) it is fitted on the gold once, into ``encoder`` (default: ``encoder/``
    beside the votes folder), or loaded from there when it was fitted on the same inputs
    (:class:`llmlabel.tuned.TunedEncoder`); its identity goes into the votes manifest.
    """
    from ..artifacts.taxonomy import load_taxonomy
    from ..artifacts.votes import VotesWriter
    from ..errors import ConfigError
    from ..io_write import check_writable
    from ..llm import cache_option, engine_factory
    from ..progress import Ticker
    from .forms import label_sets, one_of_k

    if output is None:
        raise ConfigError("missing output: the votes folder to write", field="output")
    taxonomy_path, out = taxonomy, check_writable(output, folder=True)
    full = load_taxonomy(taxonomy_path)
    full.classes_for_votes(taxonomy_path)  # a one-class single-label taxonomy: one line, before the folder exists
    lf_set, chosen = choose_lfs(lfs, multi_label=full.multi_label, gold=gold is not None, models=model, data=data,
                                text_field=text_field, id_field=id_field, embedder=embedder)
    gold = resolve_gold_path(gold, lf_set.spec.gold, lfs)
    corpus, batches = _open_corpus(data, text_field, id_field, shard_size)
    given = dict(gold=gold, models=model, engines=engine_factory(cache=cache_option(cache, no_cache)),
                 embedder=embedder, source=dict(data=data, text_field=text_field, id_field=id_field))
    form = label_sets(full, lf_set.spec, **given) if full.multi_label else \
        one_of_k(full, lf_set.spec, **given, out=out, encoder=encoder, progress=progress)
    meta, deps = votes_record(lf_set, command=command, engines=llm_engines(form.lfs), taxonomy_path=taxonomy_path,
                              data=data, label_texts=form.label_texts)
    _record_inputs(meta, deps, chosen=chosen, gold=gold, tuned=form.tuned)
    meta.update(form.meta)
    with VotesWriter(out, lf_names=form.columns, labels=form.classes, prob_lfs=form.prob_columns,
                     keep_text=keep_text, shard_size=shard_size, meta=meta, depends=deps, overwrite=overwrite) as w, \
            Ticker(progress, corpus.num_rows, "label") as tick:  # num_rows: None for JSONL/CSV (no end to the bar)
        rows = _write_batches(w, tick, batches, form.lfs, form.apply, keep_text)
    crossfit = form.crossfit(out, deps)  # with gold: the safety net's cross-fitted votes (lf/crossfit.py)
    return finish_votes(out, w, lf_set, rows=rows, read=corpus.stats.summary(), embedder_auto=chosen,
                        crossfit=crossfit, multi_label=form.multi_label, errors=form.lf_errors(w.errors))


def choose_lfs(lfs: str | Path | None, *, multi_label: bool, gold: bool, models: list[str] | None, data,
               text_field: str | None, id_field: str | None, embedder=None, check_form: bool = True):
    """The LF set a labeling run (local or Ray) applies, checked before any item is read or folder touched.

    The lfs.yaml ``lfs``, or the default set for the situation (:func:`llmlabel.lf.defaults.resolve_lfs`);
    ``check_form``: refuse here an entry the taxonomy's form cannot run (building the LFs refuses it later
    anyway); LFs naming no embedder get the run's default (:func:`default_embedder`) unless the caller shares
    ``embedder``; every embedder named is found offline. Returns the LF set and the line saying which
    embedder was chosen (None when none was)."""
    from .defaults import resolve_lfs
    from .resolve import check_models

    lf_set = resolve_lfs(lfs, multi_label=multi_label, gold=gold, models=models)
    if check_form:
        lf_set.spec.check_form(multi_label)
    chosen = None if embedder is not None else default_embedder(lf_set.spec,
                                                                 lambda: corpus_size(data, text_field, id_field))
    check_models(lf_set.spec, embedder=embedder)
    return lf_set, chosen


def votes_record(lf_set, *, command: list[str] | None, engines: dict[str, str], taxonomy_path, data,
                 label_texts: list[str] | None = None):
    """The votes manifest's provenance (``meta``: command, engines, taxonomy, lfs.yaml, the classes' label texts)
    and ``depends_on``
    (fingerprints of the corpus, taxonomy, LLM engines and the LF set), shared by the local and Ray runs;
    the caller adds its own keys after these."""
    from ..artifacts.votes import depends_on
    from ..io_meta import make_meta

    meta = make_meta(command=command, engine=",".join(sorted(set(engines.values()))) or None)
    lfs_name, deps_lfs = lf_set.record()
    meta.update(taxonomy=str(taxonomy_path), lfs=lfs_name)
    if label_texts is not None:
        meta["label_texts"] = list(label_texts)
    deps = {**depends_on(corpus=data, taxonomy=taxonomy_path, engines=engines), "lfs": deps_lfs}
    return meta, deps


def finish_votes(out, writer, lf_set, *, rows: int, read: str, embedder_auto: str | None,
                 errors: dict[str, int] | None = None, **extra) -> LabelResult:
    """Save the LF set that ran beside the votes (``out/lfs.yaml``) and say what the run wrote (``errors``: per
    LF, when the folder's columns are not the LFs)."""
    lf_set.save_into(out)
    return LabelResult(out=str(out), rows_labeled=rows, shards=writer.shards,
                       errors=dict(writer.errors) if errors is None else errors, read=read,
                       restarted=getattr(writer, "restarted", None), default_lfs=lf_set.default,
                       embedder_auto=embedder_auto, **extra)


def _open_corpus(data, text_field, id_field, shard_size):
    """The corpus and its batches; a bad first line or an empty corpus fails before the folder is touched."""
    from ..errors import InputError
    from ..io import read_corpus

    corpus = read_corpus(data, text_field=text_field, id_field=id_field, batch_size=shard_size)
    batches = corpus.start(shard_size)
    if batches is None:
        raise InputError("the corpus has no texts to label", path=data, hint=corpus.stats.summary())
    return corpus, batches


def _record_inputs(meta: dict, deps: dict, *, chosen: str | None, gold: Path | None, tuned) -> None:
    """Add the local run's own inputs to the manifest: the embedder chosen, the gold file, the tuned encoder."""
    if chosen:
        meta["embedder_auto"] = chosen
    if gold is not None:
        from ..artifacts._format import file_hash

        deps["gold"] = file_hash(gold)
        meta["gold"] = str(gold)
    if tuned is not None:
        deps["encoder"] = tuned.fingerprint
        meta["encoder"] = tuned.identity()


def llm_engines(lfs) -> dict[str, str]:
    """LF name -> the spec of the LLM engine it runs (what the votes depend on)."""
    return {lf.name: lf.engine.spec for lf in lfs if lf.cost == "llm" and getattr(lf, "engine", None) is not None}


def _write_batches(w, tick, batches, lfs: list, apply, keep_text: bool) -> int:
    """Apply the LFs to the items not yet in finished shards, batch by batch (``apply``: ``(texts, items, ids) ->
    (LabelMatrix to store, errors per LF)``); returns the rows written."""
    from .apply import ErrorShare, with_last

    done = w.done_ids()
    tick(len(done))
    share = ErrorShare(lfs)
    rows = 0
    for b, last in with_last(batches):
        keep = [i for i, x in enumerate(b.ids) if x not in done]
        if not keep:
            continue
        texts = [b.texts[i] for i in keep]
        items = [dict(b.rows[i], text=b.texts[i], id=b.ids[i]) for i in keep]
        L, errors = apply(texts, items, [b.ids[i] for i in keep])
        share.add(errors, len(keep), last=last)  # before writing: a failed batch is redone by the rerun
        w.write(L, texts if keep_text else None)
        rows += len(keep)
        tick(len(keep))
    return rows


EMBEDDING_KINDS = ("embedding", "knn", "logreg", "classifier")  # LF kinds that read a frozen embedder's vectors


def default_embedder(spec, size) -> str | None:
    """Give the LFs whose lfs.yaml names no ``embedder`` the run's default, chosen by corpus size as the taxonomy
    chooses it (:func:`llmlabel.embed.stored.auto_embedder`: MiniLM up to 30k texts, WordLlama above; ``size()``
    counts them, called only when some LF needs it). SetFit's body is fine-tuned, so it stays MiniLM. Returns
    the line saying what was chosen and why, or None when every LF named its embedder."""
    from ..embed.stored import auto_embedder, auto_reason

    open_ = [s for s in spec.lfs if getattr(s, "embedder", "") is None]
    for s in open_:
        if s.kind == "setfit":
            s.embedder = "minilm"
    uses = [s for s in open_ if s.kind in EMBEDDING_KINDS or getattr(s, "few_shot_from", None) == "gold"]
    if not uses:
        return None
    n = size()
    for s in uses:
        s.embedder = auto_embedder(n)
    return auto_reason(n) + f" for {', '.join(s.name for s in uses)}"


def corpus_size(data, text_field=None, id_field=None) -> int:
    """Rows in a corpus: from the metadata where the format has it (Parquet, datasets), else by counting lines
    (JSONL; a CSV header or a quoted newline is off by a few rows, which the size rule does not notice)."""
    import gzip

    from ..io import read_corpus

    c = read_corpus(data, text_field=text_field, id_field=id_field)
    if c.num_rows is not None:
        return int(c.num_rows)
    n = 0
    with (gzip.open(c.path, "rb") if c.path.name.lower().endswith(".gz") else open(c.path, "rb")) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def resolve_gold_path(cli: str | Path | None, in_spec: str | None, lfs_path: str | Path | None) -> Path | None:
    """``--gold`` as given, else the spec's ``gold:`` (relative to the lfs.yaml when not found from here)."""
    if cli is not None:
        return Path(cli)
    if not in_spec:
        return None
    p = Path(in_spec)
    return p if p.is_absolute() or p.is_file() else Path(lfs_path).parent / p
