"""What a user ships with a known label set and N gold labels: llmlabel's chain vs "train on the N labels".

One command (CPU; see eval/results/chain.md for the time it took):

    PYTHONPATH=$PWD nice -n 5 python eval/chain.py   # every row and set + the 50/500/1000 curve: hours on 2 cores
    PYTHONPATH=$PWD python eval/chain.py --sets youtube --budgets 100 --methods a c_lr d e f   # a quick part

Rows (every one scored on the test split only; the gold budget is drawn from the corpus with a fixed seed):
(a) zero-shot embedding: each test text to the nearest label "name. description" (MiniLM);
(b) SmolLM2-135M-Instruct zero-shot (``hf:smollm2``, every label scored) with prior matching, on a fixed
    500-row test subset (CPU time);
(c) few-shot supervised on the N gold alone: frozen MiniLM + logistic regression (``c_lr``) and SetFit (``c_setfit``,
    its default recipe: ``pip install 'llmlabel[setfit]'``);
(d) llmlabel's chain with the N gold: ``taxonomy --labels`` -> LFs (key phrases, embedding, knn over the gold,
    logreg on the gold, every cut ``threshold: auto`` = chosen on the gold out-of-fold; plus WRENCH's own LFs on
    youtube/trec) -> label model with the gold as dev -> gold rows clamped to their labels (source "human",
    weight 1) -> static student; ``d_minilm``: the MiniLM student instead; ``d_setfit`` / ``d_setfit_full``: plus
    a ``kind: setfit`` LF (before issue 26: per-fold SetFit at a quarter of / all SetFit's pairs; now LR over the
    run's tuned encoder, the same for both), both students; ``d_tuned``: every gold LF reads the encoder tuned on
    the gold (``embedder: tuned``) plus ``kind: setfit``; static student and the MiniLM student started from the
    tuned encoder;
(e) the same chain with no gold (key phrases + the embedding LF voting on every item; no dev set); ``e_minilm``;
(f) the same static student on all corpus gold (the ceiling);
(i) no label names (Banking77, AG News): the no-LLM induced taxonomy -> the (e) chain over its labels; NMI of
    the student's test predictions, and accuracy after mapping induced labels to classes with the N gold.

Results are appended to a JSON cache as they finish (``--out``.json), so a stopped run keeps its rows and a
rerun only computes what is missing; the markdown is rebuilt from it every time. A side run with
``--out eval/results/chain-NAME.md`` (to run parts in parallel) keeps its own JSON; chain.md merges every
``chain-*.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402  (one machine description for every results file)
from chain_data import CACHE, LOADERS, CachedEmbedder, embed_bench  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("a", "b", "c_lr", "c_setfit", "d", "e", "f", "i", "d_minilm", "e_minilm", "d_setfit", "d_setfit_full",
           "d_tuned")
NEEDS_GOLD = {"c_lr", "c_setfit", "d", "i", "d_minilm", "d_setfit", "d_setfit_full", "d_tuned"}
B_SUBSET = 500  # (b) runs SmolLM2 on a fixed test subset of this size (CPU time)
INDUCED_SETS = ("banking77", "agnews")  # (i) the induced-taxonomy variant runs on these


def scores(y, pred, k):
    from llmlabel.distill.metrics import accuracy, macro_f1

    return {"acc": round(float(accuracy(y, pred)), 4), "macro_f1": round(float(macro_f1(y, pred, k)), 4)}


def norm(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def draw_gold(n_corpus: int, budget: int, seed: int) -> np.ndarray:
    """The gold budget: ``budget`` corpus rows drawn uniformly with ``seed`` (nested: 50 within 100 within 500...)."""
    return np.random.default_rng(seed).permutation(n_corpus)[:budget]


def label_queries(b) -> list[str]:
    return [f"{n}. {b.descriptions[n]}" if b.descriptions.get(n) else n for n in b.labels]


def make_taxonomy(b, emb):
    from llmlabel.taxonomy.known import KnownLabel, taxonomy_from_labels

    rows = [KnownLabel(n, b.descriptions.get(n, "")) for n in b.labels]
    res = taxonomy_from_labels(rows, list(zip(b.corpus_ids, b.corpus_texts)), embedder=emb, examples=3, keyphrases=8)
    assert res.taxonomy.classes() == b.labels
    return res.taxonomy


def zero_shot(b, emb, Xt):
    q = norm(emb.encode(label_queries(b)))
    return scores(b.test_y, (norm(Xt) @ q.T).argmax(1), len(b.labels))


def test_subset(b, n=None, seed=0):
    """The fixed (b) test subset: ``n`` (default B_SUBSET) test rows drawn with ``seed`` (all when fewer)."""
    return np.sort(np.random.default_rng(seed).permutation(len(b.test_texts))[:n or B_SUBSET])


def smollm2_zero_shot(b, emb, Xt, engine_spec="hf:smollm2"):
    """(b) SmolLM2-135M-Instruct zero-shot: the ``lf_zero_shot`` prompt with the label names and descriptions,
    every label scored as an answer (choice log-probs), then prior matching to a uniform class mix over the
    subset (``PromptedLF(prior_correction=True)``). Also scores (a) on the same subset, and (b) without the prior
    matching, so the row can be read against them."""
    from llmlabel.lf.prompted import PromptedLF
    from llmlabel.llm import load_engine

    sub = test_subset(b)
    texts, y, k = [b.test_texts[i] for i in sub], b.test_y[sub], len(b.labels)
    engine = load_engine(engine_spec)
    descs = [b.descriptions.get(n, "") for n in b.labels]
    lf = PromptedLF("smollm2", engine, b.labels, descriptions=descs, prior_correction=False)
    t0 = time.perf_counter()
    _, raw = lf.apply(texts)
    llm_s = time.perf_counter() - t0
    from llmlabel.lf.prior import match_prior

    matched = match_prior(raw)
    q = norm(emb.encode(label_queries(b)))
    zs = (norm(Xt[sub]) @ q.T).argmax(1)
    return {**scores(y, matched.argmax(1), k), "n_test": len(sub), "no_prior_matching": scores(y, raw.argmax(1), k),
            "a_on_subset": scores(y, zs, k), "llm_seconds": round(llm_s, 1),
            "items_per_second": round(len(sub) / llm_s, 3), "llm_calls_": len(sub)}


def few_shot_lr(b, Xc, Xt, gold):
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(b.corpus_y[gold])) < 2:
        return None
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(norm(Xc[gold]), b.corpus_y[gold])
    pred = clf.classes_[clf.predict_proba(norm(Xt)).argmax(1)]
    return scores(b.test_y, pred, len(b.labels))


def setfit_run(b, gold, seed, tmp):
    """SetFit 1.2's default few-shot recipe on the MiniLM body llmlabel ships (batch 16, one epoch over the
    oversampled contrastive pairs, then a logistic-regression head); checkpoints go to ``tmp``, not the cwd."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from llmlabel.embed.embedders import minilm_path

    model = SetFitModel.from_pretrained(str(minilm_path()))
    train = Dataset.from_dict({"text": [b.corpus_texts[i] for i in gold], "label": b.corpus_y[gold].tolist()})
    args = TrainingArguments(seed=seed, show_progress_bar=False, output_dir=str(Path(tmp) / "setfit"),
                             save_strategy="no")  # defaults otherwise
    Trainer(model=model, args=args, train_dataset=train).train()
    pred = np.asarray(model.predict(b.test_texts, batch_size=64, show_progress_bar=False))
    return scores(b.test_y, pred, len(b.labels))


def _train_student(b, ids, proba, source, seed, tmp, classes=None, student="static"):
    from llmlabel.artifacts.labeled import write_labeled
    from llmlabel.distill import distill

    path = Path(tmp) / "labeled.parquet"
    write_labeled(path, ids=ids, classes=classes or b.labels, proba=proba, texts=b.corpus_texts, source=source)
    res = distill(path, student=student, seed=seed)  # the CLI's defaults (minilm: LP-FT, 3 epochs, lr 3e-4)
    return res.student, res.metrics["train_seconds"]


def _student(b, ids, proba, source, seed, tmp, student="static"):
    student, train_s = _train_student(b, ids, proba, source, seed, tmp, student=student)
    pred = student.predict_proba(b.test_texts).argmax(1)
    return scores(b.test_y, pred, len(b.labels)), train_s


# The LFs of pipelines/known_labels_lfs.yaml (the CLI example): with gold, every gold-derived cut is chosen on
# the gold out-of-fold (threshold: auto) and a cross-fitted logistic regression on the gold joins them.
GOLD_LFS = [{"kind": "keyphrases"}, {"name": "emb", "kind": "embedding", "threshold": "auto"},
            {"name": "knn", "kind": "knn", "k": 10, "threshold": "auto"},
            {"name": "logreg", "kind": "logreg", "threshold": "auto"}]
# d_setfit / d_setfit_full: the same plus a kind: setfit LF. Until issue 26 that LF fine-tuned SetFit per fold (a
# quarter of / all of SetFit's pair budget; the rows in chain-setfitlf.json are from that code); now it is LR over the
# run's one tuned encoder, so the two rows are the same computation.
SETFIT_LFS = GOLD_LFS + [{"name": "setfit", "kind": "setfit", "threshold": "auto"}]
SETFIT_FULL_LFS = SETFIT_LFS
# d_tuned: every gold LF reads the encoder tuned on the gold (embedder: tuned, fold-honest) and kind: setfit joins
# them; students: static, and the MiniLM student started from the tuned encoder (``--student tuned``).
TUNED_LFS = [{"kind": "keyphrases"}, {"name": "emb", "kind": "embedding", "embedder": "tuned", "threshold": "auto"},
             {"name": "knn", "kind": "knn", "embedder": "tuned", "k": 10, "threshold": "auto"},
             {"name": "logreg", "kind": "logreg", "embedder": "tuned", "threshold": "auto"},
             {"name": "setfit", "kind": "setfit", "threshold": "auto"}]
# Without gold there is nothing to place a cut on: the embedding LF votes on every item and the label model
# weighs it.
NO_GOLD_LFS = [{"kind": "keyphrases"}, {"name": "emb", "kind": "embedding", "threshold": 0.0}]


def gold_set(b, gold, seed):
    from llmlabel.lf.gold import GoldSet

    ids = b.corpus_ids
    return GoldSet([ids[i] for i in gold], [b.corpus_texts[i] for i in gold], b.corpus_y[gold], labels=b.labels,
                   folds=5, seed=seed)


def tuned_encoder(b, tax, gold, seed):
    """The run's tuned encoder (what ``label --gold`` fits beside the votes), kept in the eval cache by its inputs:
    a rerun loads it."""
    from llmlabel.lf.spaces import run_encoder

    return run_encoder(gold_set(b, gold, seed), tax, CACHE / f"encoder-{b.name}-{len(gold)}-{seed}")


def chain_votes(b, emb, tax, gold, seed, lfs_yaml=None, tuned=None):
    """(LabelMatrix over the corpus, LF objects, LF seconds) for the chain's LFs (plus WRENCH's own)."""
    from llmlabel.artifacts.matrix import LabelMatrix
    from llmlabel.lf.apply import apply_lfs
    from llmlabel.lf.spec import LFSpecFile, build_lfs

    ids = b.corpus_ids
    lfs_yaml = lfs_yaml or (NO_GOLD_LFS if gold is None else GOLD_LFS)
    gs = None if gold is None else gold_set(b, gold, seed)
    lfs = build_lfs(LFSpecFile.model_validate({"lfs": lfs_yaml}), tax, gold=gs, embedder=emb, tuned=tuned)
    t0 = time.perf_counter()
    L = apply_lfs(lfs, b.corpus_texts, labels=b.labels, items=[{"id": i} for i in ids], ids=ids)
    if b.wrench_corpus is not None:  # the set's own published LFs next to ours
        names = [f"wrench{j}" for j in range(b.wrench_corpus.shape[1])]
        L = LabelMatrix(np.hstack([L.votes, b.wrench_corpus]), L.lf_names + names, labels=b.labels, ids=ids,
                        vote_probs=L.vote_probs)
    return L, lfs, time.perf_counter() - t0


def probe_on_labels(b, Xc, Xt, proba):
    """Diagnostic, not shipped: frozen MiniLM + LR trained on the chain's training targets (argmax, weighted by
    their probability), scored on test. Against the student's figure it tells the student stage's loss from the
    labels' own quality."""
    from sklearn.linear_model import LogisticRegression

    y, w = proba.argmax(1), proba.max(1)
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(norm(Xc), y, sample_weight=w)
    return scores(b.test_y, clf.classes_[clf.predict_proba(norm(Xt)).argmax(1)], len(b.labels))


def chain(b, emb, tax, gold, seed, tmp, lfs_yaml=None, X=None, student="static", also=()):
    """(d) with ``gold`` rows, (e) with ``gold=None``: LFs -> label model (gold = dev) -> clamped gold -> student
    (``student``: ``static``, or ``minilm`` for the ``d_minilm`` / ``e_minilm`` rows; ``also``: more students
    trained on the same labels, scored under ``by_student``).

    ``X``: the cached (corpus, test) MiniLM vectors, for the ``probe_on_labels`` diagnostic."""
    from llmlabel.labelmodel.pipeline import aggregate

    from llmlabel.lf.spec import LFSpecFile, uses_tuned

    k = len(b.labels)
    ids = b.corpus_ids
    tuned, enc = None, {}
    if gold is not None and lfs_yaml and uses_tuned(LFSpecFile.model_validate({"lfs": lfs_yaml})):
        tuned = tuned_encoder(b, tax, gold, seed)
        enc = {"encoder_seconds": round(tuned.seconds(), 1), "encoder": tuned.identity()}
        also = tuple(str(tuned.folder) if a == "tuned" else a for a in also)
    L, lfs, lf_s = chain_votes(b, emb, tax, gold, seed, lfs_yaml, tuned=tuned)
    dev = None if gold is None else (L.take(gold), b.corpus_y[gold])
    res = aggregate(L, "auto", *(dev or (None, None)))
    proba = np.asarray(res["proba"], dtype=np.float32).copy()
    rest = np.ones(len(ids), bool)
    source = None
    if gold is not None:
        rest[gold] = False
        proba[gold] = np.eye(k, dtype=np.float32)[b.corpus_y[gold]]  # gold rows at their labels, weight 1
        source = np.where(rest, "model", "human")
    lm = scores(b.corpus_y[rest], np.asarray(res["label"])[rest], k)
    cov = float(L.covered()[rest].mean())
    lf_acc = {}
    for j, name in enumerate(L.lf_names):
        if not name.startswith(("kw:", "wrench")):
            v = L.votes[rest, j]
            on = v >= 0
            lf_acc[name] = {"coverage": round(float(on.mean()), 3),
                            "acc": round(float((v[on] == b.corpus_y[rest][on]).mean()), 3) if on.any() else None}
    for lf in lfs:
        if getattr(lf, "thresholds_", None) is not None:  # the cut chosen on the gold out-of-fold
            lf_acc[lf.name]["chosen"] = lf.thresholds_.report()
    st, train_s = _student(b, ids, proba, source, seed, tmp, student=student)
    by = {}
    for other in also:
        o, o_s = _student(b, ids, proba, source, seed, tmp, student=other)
        by["tuned" if tuned is not None and other == str(tuned.folder) else other] = {**o, "train_seconds": o_s}
    diag = {} if X is None else {"probe_on_labels": probe_on_labels(b, X[0], X[1], proba)}
    return {**st, **diag, "label_model": {"chosen": res["report"].get("chosen"), **lm, "coverage": round(cov, 4)},
            "lfs": lf_acc, "n_lfs": len(L.lf_names), "lf_seconds": round(lf_s, 1), "train_seconds": train_s, **enc,
            **({"by_student": by} if by else {})}


def induced(b, emb, gold, seed, tmp):
    """No label names: the no-LLM taxonomy (``--max-labels`` = the true number of classes) -> the no-gold
    chain's LFs over its labels -> label model -> static student. Scored by NMI of the student's test
    predictions vs gold, and by accuracy after mapping each induced label to the gold class most of the gold
    budget's items predicted as it carry (labels no gold item falls in: the budget's most common class)."""
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from llmlabel.labelmodel.pipeline import aggregate
    from llmlabel.lf.apply import apply_lfs
    from llmlabel.lf.spec import LFSpecFile, build_lfs
    from llmlabel.taxonomy.induce import induce_taxonomy

    ids, k = b.corpus_ids, len(b.labels)
    t0 = time.perf_counter()
    tax = induce_taxonomy(list(zip(ids, b.corpus_texts)), max_labels=k, embedder=emb, seed=seed)
    assign = np.asarray(tax.assignments, dtype=object)
    tax = tax.taxonomy.class_taxonomy()
    names = tax.classes()
    tax_s = time.perf_counter() - t0
    lfs = build_lfs(LFSpecFile.model_validate({"lfs": NO_GOLD_LFS}), tax, embedder=emb)
    L = apply_lfs(lfs, b.corpus_texts, labels=names, items=[{"id": i} for i in ids], ids=ids)
    res = aggregate(L, "auto")
    student, train_s = _train_student(b, ids, np.asarray(res["proba"], np.float32), None, seed, tmp, classes=names)
    pred_test = student.predict_proba(b.test_texts).argmax(1)
    pred_gold = student.predict_proba([b.corpus_texts[i] for i in gold]).argmax(1)
    counts = np.zeros((len(names), k))
    np.add.at(counts, (pred_gold, b.corpus_y[gold]), 1)
    to_gold = np.where(counts.sum(1) > 0, counts.argmax(1), np.bincount(b.corpus_y[gold], minlength=k).argmax())
    return {**scores(b.test_y, to_gold[pred_test], k), "nmi": round(float(nmi(b.test_y, pred_test)), 4),
            "taxonomy_nmi_on_corpus": round(float(nmi(b.corpus_y, assign)), 4), "n_induced": len(names),
            "mapped_to_classes": int(len(np.unique(to_gold))), "label_model": res["report"].get("chosen"),
            "taxonomy_seconds": round(tax_s, 1), "train_seconds": train_s}


def ceiling(b, seed, tmp):
    k = len(b.labels)
    st, train_s = _student(b, b.corpus_ids, np.eye(k, dtype=np.float32)[b.corpus_y], None, seed, tmp)
    return {**st, "train_seconds": train_s}


def _finite(x):
    """JSON without the non-standard Infinity: a cut of +-inf (never / always abstain) is written as a string."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return str(x) if isinstance(x, float) and not np.isfinite(x) else x


def run(args):
    out_json = Path(args.out).with_suffix(".json")
    done = json.loads(out_json.read_text()) if out_json.is_file() else {"rows": {}, "runs": []}
    emb = CachedEmbedder()
    started = time.time()
    load0 = os.getloadavg()[0]
    for name in args.sets:
        b = LOADERS[name]()
        t = time.perf_counter()
        Xc, Xt = embed_bench(b, emb)
        print(f"[{name}] {len(b.corpus_texts):,} corpus / {len(b.test_texts):,} test texts embedded "
              f"({time.perf_counter() - t:.0f} s, {emb.encoded:,} encoded this run)", flush=True)
        tax = None
        for method in args.methods:
            for budget in (args.budgets if method in NEEDS_GOLD else [0]):
                if (method == "c_setfit" and budget not in args.setfit_budgets) or (
                        method == "i" and (name not in INDUCED_SETS or budget != 100)):
                    continue
                key = f"{name}|{method}|{budget}|{args.seed}"
                if key in done["rows"] and not args.redo:
                    continue
                gold = draw_gold(len(b.corpus_texts), budget, args.seed) if budget else None
                t0 = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    if method.startswith(("d", "e")) and tax is None:
                        tax = make_taxonomy(b, emb)
                    row = {"a": lambda: zero_shot(b, emb, Xt), "c_lr": lambda: few_shot_lr(b, Xc, Xt, gold),
                           "c_setfit": lambda: setfit_run(b, gold, args.seed, tmp),
                           "d": lambda: chain(b, emb, tax, gold, args.seed, tmp, X=(Xc, Xt)),
                           "e": lambda: chain(b, emb, tax, None, args.seed, tmp, X=(Xc, Xt)),
                           "d_minilm": lambda: chain(b, emb, tax, gold, args.seed, tmp, X=(Xc, Xt), student="minilm"),
                           "e_minilm": lambda: chain(b, emb, tax, None, args.seed, tmp, X=(Xc, Xt), student="minilm"),
                           "b": lambda: smollm2_zero_shot(b, emb, Xt),
                           "d_setfit": lambda: chain(b, emb, tax, gold, args.seed, tmp, lfs_yaml=SETFIT_LFS,
                                                     X=(Xc, Xt), also=("minilm",)),
                           "d_setfit_full": lambda: chain(b, emb, tax, gold, args.seed, tmp, lfs_yaml=SETFIT_FULL_LFS,
                                                          X=(Xc, Xt), also=("minilm",)),
                           "d_tuned": lambda: chain(b, emb, tax, gold, args.seed, tmp, lfs_yaml=TUNED_LFS,
                                                    X=(Xc, Xt), also=("tuned",)),
                           "f": lambda: ceiling(b, args.seed, tmp),
                           "i": lambda: induced(b, emb, gold, args.seed, tmp)}[method]()
                if row is None:
                    continue
                row.update(seconds=round(time.perf_counter() - t0, 1), llm_calls=row.pop("llm_calls_", 0))
                done["rows"][key] = row
                print(f"[{name}] {method} N={budget}: acc {row['acc']:.4f} macro-F1 {row['macro_f1']:.4f} "
                      f"({row['seconds']:.0f} s)" + (f" label model {row['label_model']}" if "label_model" in row
                                                     else ""), flush=True)
                out_json.write_text(json.dumps(_finite(done), indent=1))
    done["runs"].append({"command": " ".join(["python"] + sys.argv), "date": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "seconds": round(time.time() - started), "load_start": round(load0, 1),
        "load_end": round(os.getloadavg()[0], 1), "machine": machine()})
    out_json.write_text(json.dumps(_finite(done), indent=1))
    from chain_report import write_markdown

    md = Path(args.out).with_suffix(".md")
    if md.stem.startswith("chain-"):  # a side run (chain-curve.json ...): its rows go into the sibling chain.md
        main = md.with_name("chain.json")
        md, done = md.with_name("chain.md"), (json.loads(main.read_text()) if main.is_file() else
                                              {"rows": {}, "runs": []})
    write_markdown(done, md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["youtube", "trec", "agnews", "banking77"], choices=list(LOADERS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--budgets", nargs="+", type=int, default=[100, 50, 500, 1000])
    ap.add_argument("--setfit-budgets", nargs="+", type=int, default=[100])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--redo", action="store_true", help="recompute rows already in the JSON cache")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "chain.md"))
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
