"""Multi-label, two-level labels on GoEmotions: (a) frozen MiniLM + one-vs-rest LR on the gold budget, (b) the
llmlabel chain with that budget, (c) the same student on all train gold; scored on the dev scoring part.

    PYTHONPATH=$PWD python eval/multilabel.py --corpus 10000 --budgets 0 100 1000

Data: ../shared/data/goemotions (LLMLABEL_EVAL_DATA). The dev split is cut with a fixed seed into a selection
half (thresholds, label-model choice and calibration, for every arm alike) and a scoring half (reported); the
test split is not read. Train texts in a seeded order: the first ``--corpus`` are the unlabeled corpus of the
chain, the first ``budget`` of those are the gold. Chain (b): ``taxonomy_from_labels`` on the label tree
(Ekman groups over the 27 emotions + neutral, multi_label), LFs = taxonomy key phrases, MiniLM embedding
similarity with per-label thresholds tuned on the selection half, knn over the gold and the cross-fitted
``classifier`` LF (budget > 0); per-label label models chosen (log-loss) and calibrated on the selection half;
gold items keep their gold labels (source human); a static (WordLlama) student on the labeled corpus's label
sets with per-class thresholds tuned on the selection half. ``--diagnose`` trains the same student on the gold
alone and on the corpus's true labels, to say which stage limits the chain.
MiniLM embeddings are computed once per text and cached under /tmp/llmlabel-eval-emb.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from _embcache import CachedEmbedder, embed_cached  # noqa: E402

from llmlabel.multilabel_metrics import best_thresholds, group_matrix, multilabel_f1  # noqa: E402

sys.path.insert(0, str(ROOT / "eval"))
from _common import DATA as _DATA  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)

DATA = _DATA / "goemotions"


def load_split(name: str, labels: list[str]) -> tuple[list[str], np.ndarray]:
    texts, Y = [], []
    for line in open(DATA / f"{name}.tsv", encoding="utf-8"):
        t, labs, _ = line.rstrip("\n").split("\t")
        y = np.zeros(len(labels), np.int8)
        y[[int(x) for x in labs.split(",")]] = 1
        texts.append(t)
        Y.append(y)
    return texts, np.stack(Y)


def scores(Y, pred, labels, groups) -> dict:
    leaf = multilabel_f1(Y, pred, labels)
    G, gnames = group_matrix(Y, labels, groups)
    Gp, _ = group_matrix(pred, labels, groups)
    grp = multilabel_f1(G, Gp, gnames)
    return {"micro_f1": round(leaf["micro_f1"], 4), "macro_f1": round(leaf["macro_f1"], 4),
            "group_micro_f1": round(grp["micro_f1"], 4), "group_macro_f1": round(grp["macro_f1"], 4),
            "per_label_f1": {x: v["f1"] for x, v in leaf["per_label"].items()},
            "per_group_f1": {x: v["f1"] for x, v in grp["per_label"].items()}}


def baseline_lr(Xg, Yg, Xsel, Ysel, Xsc) -> tuple[np.ndarray, str]:
    """One-vs-rest logistic regression on frozen embeddings, per-label thresholds on the selection half; plain
    and class-balanced fits, the one with the better selection-half macro-F1 kept (a label without a gold
    positive scores 0)."""
    from sklearn.linear_model import LogisticRegression

    fit = [j for j in range(Yg.shape[1]) if 0 < Yg[:, j].sum() < len(Yg)]
    best = None
    for cw in (None, "balanced"):
        models = {j: LogisticRegression(C=1.0, max_iter=2000, class_weight=cw).fit(Xg, Yg[:, j]) for j in fit}

        def proba(X, models=models):
            out = np.zeros((len(X), Yg.shape[1]), np.float32)
            for j, m in models.items():
                out[:, j] = m.predict_proba(X)[:, 1]
            return out

        p_sel = proba(Xsel)
        thr = best_thresholds(p_sel, Ysel)
        sel_f1 = multilabel_f1(Ysel, p_sel >= thr)["macro_f1"]
        if best is None or sel_f1 > best[0]:
            best = (sel_f1, proba(Xsc) >= thr, cw or "none")
    return best[1], best[2]


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def chain(budget, ctx, work: Path, args) -> dict:
    """(b): label -> aggregate (+ gold items keep gold) -> static student; scored on the scoring half."""
    import yaml

    from llmlabel.artifacts.labeled import read_labeled, write_labeled
    from llmlabel.artifacts.multivotes import read_multi_votes
    from llmlabel.distill import distill
    from llmlabel.labelmodel.multilabel import aggregate_multi
    from llmlabel.labelmodel.pipeline import read_labels
    from llmlabel.labelmodel.pipeline import write_labeled as write_with_queue
    from llmlabel.lf.multilabel import MultiEmbeddingLF
    from llmlabel.lf.multispec import apply_multi_lfs, build_multi_lfs
    from llmlabel.lf.run import label_corpus
    from llmlabel.lf.spec import LFSpecFile

    labels, tax, emb = ctx["labels"], ctx["tax"], ctx["emb"]
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # per-label embedding thresholds: F1-optimal cosine on the selection half
    probe = MultiEmbeddingLF("emb", tax.leaves(), embedder=emb)
    thr = best_thresholds(probe.similarities(ctx["sel_texts"]), ctx["Ysel"], grid=np.linspace(0.05, 0.8, 31))
    lfs = [{"kind": "keyphrases"},
           {"name": "emb", "kind": "embedding", "threshold": 0.5, "low": args.low,
            "thresholds": {x: float(t) for x, t in zip(labels, thr)}}]
    gold = None
    if budget:
        gold = write_jsonl(work / "gold.jsonl", ({"id": ctx["corpus_ids"][i], "text": ctx["corpus_texts"][i],
                                                  "labels": [labels[j] for j in np.flatnonzero(ctx["Ycorpus"][i])]}
                                                 for i in range(budget)))
        lfs.append({"name": "knn", "kind": "knn", "k": args.k, "threshold": args.knn_threshold})
        if not args.no_classifier:
            lfs.append({"name": "lr", "kind": "classifier"})
    (work / "lfs.yaml").write_text(yaml.safe_dump({"lfs": lfs}, sort_keys=False))
    votes = work / "votes"
    label_corpus(ctx["corpus_file"], ctx["tax_file"], work / "lfs.yaml", votes, gold=gold, embedder=emb,
                 overwrite=True, shard_size=5000)
    t_label = time.perf_counter() - t0
    mv, texts = read_multi_votes(votes, labels)
    rows, Y, _ = read_labels(ctx["sel_file"], mv, sets=True)
    res = aggregate_multi(mv, "auto", rows, Y)
    labeled = work / "labeled.parquet"
    write_with_queue(labeled, mv, res, texts, review_top=100)
    # label model on the scoring half (same LFs, fitted per-label models, selection thresholds)
    spec = LFSpecFile.model_validate({"lfs": lfs})
    lf_objs = build_multi_lfs(spec, tax, gold=gold, embedder=emb)
    leaves = tax.leaves()
    mv_sc = apply_multi_lfs(lf_objs, ctx["sc_texts"], labels=labels, label_ids=[x.id for x in leaves])
    lm_pred = res["model"].predict_proba(mv_sc.per_label()) >= res["thresholds"]
    # gold items keep their gold labels (what a person's answers are worth); others keep the label model's
    lab = read_labeled(labeled)
    P, src = lab.proba.copy(), np.asarray(["model"] * len(lab), dtype=object)
    pos = {i: r for r, i in enumerate(lab.ids)}
    for i in range(budget):
        r = pos[ctx["corpus_ids"][i]]
        P[r], src[r] = ctx["Ycorpus"][i], "human"
    lists = [[labels[j] for j in np.flatnonzero(p >= t)] for p, t in zip(P, np.broadcast_to(res["thresholds"], P.shape))]
    write_labeled(labeled, ids=lab.ids, classes=labels, proba=P, texts=lab.texts, labels=lists, multi_label=True,
                  source=src, uncovered=lab.uncovered, meta=lab.meta)
    # what the student trains on, scored against the corpus items' hidden train labels (gold rows excluded)
    rows_c = np.asarray([pos[i] for i in ctx["corpus_ids"][budget:]])
    weak = np.zeros((len(rows_c), len(labels)), np.int8)
    for r, rr in enumerate(rows_c):
        weak[r, [labels.index(x) for x in lists[rr]]] = 1
    weak_f1 = scores(ctx["Ycorpus"][budget:], weak, labels, ctx["groups"])
    t1 = time.perf_counter()
    # min_per_class=1: at 100 gold a rare emotion may get a single item in the label sets; train on it anyway
    st_res = distill(labeled, work / "student", student="static", dev=ctx["sel_file"], dev_label_field="labels",
                     epochs=args.epochs, min_per_class=1)
    st = st_res.student
    st_pred = st.predict_proba(ctx["sc_texts"]) >= np.asarray(st.threshold, np.float32)
    return {"label_model": scores(ctx["Ysc"], lm_pred, labels, ctx["groups"]),
            "student": scores(ctx["Ysc"], st_pred, labels, ctx["groups"]),
            "student_weak_weight": st_res.metrics["weak_weight"],
            "student_weak_weight_dev_scores": st_res.metrics.get("weak_weight_dev_scores"),
            "weak_labels_vs_train_gold": {k: v for k, v in weak_f1.items() if not k.startswith("per_")},
            "coverage": float((mv.votes >= 0).any(axis=(1, 2)).mean()),
            "label_seconds": round(t_label, 1), "distill_seconds": round(time.perf_counter() - t1, 1),
            "label_model_report": {k: v for k, v in res["report"].items() if k in ("per_label", "thresholds")}}


def ceiling(ctx, work: Path, args) -> dict:
    from llmlabel.distill import distill

    labels = ctx["labels"]
    f = write_jsonl(work / "train_gold.jsonl", ({"text": t, "label": [labels[j] for j in np.flatnonzero(y)]}
                                               for t, y in zip(ctx["train_texts"], ctx["Ytrain"])))
    if args.ceiling_model:  # score a student an earlier run trained (training takes ~20 min on 2 busy cores)
        from llmlabel.distill import load_student

        st = load_student(args.ceiling_model)
    else:
        st = distill(f, work / "ceiling", student="static", multi_label=True, dev=ctx["sel_file"],
                     dev_label_field="labels", epochs=args.epochs).student
    pred = st.predict_proba(ctx["sc_texts"]) >= np.asarray(st.threshold, np.float32)
    # a user's labeled file gives the classes in sorted order: back to the taxonomy's order
    pred = pred[:, [list(st.classes_).index(x) for x in labels]]
    return scores(ctx["Ysc"], pred, labels, ctx["groups"])


def diagnose(ctx, work: Path, args, budget: int = 1000) -> dict:
    """Which stage limits the chain: the same static student on the ``budget`` gold alone (no weak labels) and on
    the whole corpus with its true train labels (what a perfect label model would hand it)."""
    from llmlabel.distill import distill

    labels, out = ctx["labels"], {"budget": budget, "corpus": len(ctx["corpus_texts"])}
    work.mkdir(parents=True, exist_ok=True)
    for name, n in (("student_on_gold_only", budget), ("student_on_true_corpus_labels", len(ctx["corpus_texts"]))):
        f = write_jsonl(work / f"{name}.jsonl", ({"text": t, "label": [labels[j] for j in np.flatnonzero(y)]}
                                                 for t, y in zip(ctx["corpus_texts"][:n], ctx["Ycorpus"][:n])))
        t0 = time.perf_counter()
        st = distill(f, None, student="static", multi_label=True, dev=ctx["sel_file"], dev_label_field="labels",
                     epochs=args.epochs).student
        pred = st.predict_proba(ctx["sc_texts"]) >= np.asarray(st.threshold, np.float32)
        pred = pred[:, [list(st.classes_).index(x) for x in labels]]
        out[name] = {**scores(ctx["Ysc"], pred, labels, ctx["groups"]), "seconds": round(time.perf_counter() - t0, 1)}
        print(name, {k: v for k, v in out[name].items() if not k.startswith("per_")}, flush=True)
    return out


def _weak_weight(d: dict, b: str):
    """The weak-label weight distill chose at budget b (in the JSON, or in the run's student metrics.json)."""
    ch = d["budgets"][b]["chain"]
    if "student_weak_weight" in ch:
        return ch["student_weak_weight"], ch.get("student_weak_weight_dev_scores")
    f = Path(d["args"]["work"]) / f"b{b}" / "student" / "metrics.json"
    if f.is_file():
        m = json.loads(f.read_text())
        m = m.get("metrics", m)
        return m.get("weak_weight"), m.get("weak_weight_dev_scores")
    return None, None


def _notes(d: dict, c: dict | None, dd: dict | None) -> list[str]:
    out = []
    for b in d["budgets"]:
        a, sc = _weak_weight(d, b)
        if a is not None and sc:
            out.append(f"- gold {int(b):,}: distill chose weak-label weight {a} on the selection half "
                       f"(selection macro-F1 by weight: {', '.join(f'{k}: {v:.4f}' for k, v in sc.items())}).")
    if dd and "1000" in d["budgets"] and c:
        ch = d["budgets"]["1000"]["chain"]
        g, t = dd["student_on_gold_only"]["macro_f1"], dd["student_on_true_corpus_labels"]["macro_f1"]
        out.append(f"- At 1,000 gold the student on the gold alone scores {g:.4f}; with (b)'s weak labels on the "
                   f"other {d['corpus'] - 1000:,} corpus items {ch['student']['macro_f1']:.4f}; with those items' "
                   f"true labels {t:.4f} ({t / c['macro_f1']:.0%} of (c)). The weak labels themselves score "
                   f"{ch['weak_labels_vs_train_gold']['macro_f1']:.4f} macro-F1 against the hidden train labels. "
                   "So the labels, not the student, limit (b): the same student reaches "
                   f"{t / c['macro_f1']:.0%} of (c) with perfect labels on this corpus, and (b)'s cheap LFs at "
                   "1,000 gold are far from perfect labels.")
    return out


def render(main_json: Path, ceiling_json: Path | None, out_md: Path, command: str,
           diag_json: Path | None = None) -> None:
    """eval/results/multilabel.md from the run's JSON (and the ceiling's and the diagnosis's, when run apart)."""
    d = json.loads(main_json.read_text())
    cj = json.loads(ceiling_json.read_text()) if ceiling_json else {}
    c = d.get("ceiling") or cj.get("ceiling")
    dg = json.loads(diag_json.read_text()) if diag_json else {}
    L = ["# Multi-label, two-level: GoEmotions (28 labels; 6 Ekman groups + neutral)", "",
         f"Command: `{command}`", "",
         f"Corpus (b): {d['corpus']:,} train texts (a seeded sample of 43,410, for CPU time on a shared 2-core "
         f"machine) + the dev selection half; dev split with seed 1 into a selection half ({d['selection']:,}: "
         f"thresholds, label-model choice/calibration for every arm) and a scoring half ({d['scoring']:,}: every "
         "figure below). Test split not read.", "",
         "LFs of (b): taxonomy key phrases, MiniLM label-prototype similarity (per-label thresholds on the selection "
         "half), and with gold: kNN over the gold and the `classifier` LF (one-vs-rest logistic regression on the "
         "gold's MiniLM vectors, cross-fitted over 5 folds, per-label thresholds from out-of-fold probabilities). "
         "Label model: one per label, chosen by selection-half log-loss and calibrated there. Gold items keep "
         "their gold labels (weight 1). Student: static (WordLlama + TF-IDF), trained on the label sets "
         "(distill's multi-label default), per-label thresholds on the selection half.", "",
         "| gold | arm | macro-F1 | micro-F1 | group macro-F1 | group micro-F1 |", "|---|---|---|---|---|---|"]
    for b, row in d["budgets"].items():
        arms = ([("(a) MiniLM frozen + one-vs-rest LR", row["lr"])] if "lr" in row else []) + [
            ("(b) llmlabel chain: label model", row["chain"]["label_model"]),
            ("(b) llmlabel chain: static student", row["chain"]["student"])]
        for name, m in arms:
            L.append(f"| {int(b):,} | {name} | {m['macro_f1']:.4f} | {m['micro_f1']:.4f} | {m['group_macro_f1']:.4f} "
                     f"| {m['group_micro_f1']:.4f} |")
    if c:
        L.append(f"| all 43,410 | (c) ceiling: static student on all train gold | {c['macro_f1']:.4f} | "
                 f"{c['micro_f1']:.4f} | {c['group_macro_f1']:.4f} | {c['group_micro_f1']:.4f} |")
    L += ["", "Published reference: fine-tuned BERT-base, *test* macro-F1 0.46 (Demszky et al., 2020).", ""]
    goals = []
    for b in ("100", "1000"):
        row = d["budgets"].get(b)
        if row and "lr" in row:
            bm, am = row["chain"]["student"]["macro_f1"], row["lr"]["macro_f1"]
            goals.append(f"- gold {int(b):,}: (b) student {bm:.4f} vs (a) {am:.4f} macro-F1: "
                         f"{'met' if bm > am else 'NOT met'}.")
    if c and "1000" in d["budgets"]:
        r = d["budgets"]["1000"]["chain"]["student"]["macro_f1"] / max(c["macro_f1"], 1e-9)
        goals.append(f"- (b) at 1,000 gold reaches {r:.1%} of (c) macro-F1 (goal >= 85%): "
                     f"{'met' if r >= 0.85 else 'NOT met'}.")
    L += ["Goals:", ""] + goals + [""]
    L += ["Which stage limits (b): the weak labels the student trains on (the corpus items that are not gold), "
          "scored against their hidden train labels; and the same student given other training sets.", "",
          "| gold | weak labels vs train gold: macro-F1 | micro-F1 |", "|---|---|---|"]
    for b, row in d["budgets"].items():
        w = row["chain"].get("weak_labels_vs_train_gold")
        if w:
            L.append(f"| {int(b):,} | {w['macro_f1']:.4f} | {w['micro_f1']:.4f} |")
    dd = dg.get("diagnosis")
    if dd:
        L += ["", f"| static student trained on | macro-F1 | micro-F1 |", "|---|---|---|",
              f"| the {dd['budget']:,} gold alone | {dd['student_on_gold_only']['macro_f1']:.4f} | "
              f"{dd['student_on_gold_only']['micro_f1']:.4f} |"]
        if "1000" in d["budgets"]:
            m = d["budgets"]["1000"]["chain"]["student"]
            L.append(f"| the {d['corpus']:,} corpus with (b)'s labels (1,000 gold) | {m['macro_f1']:.4f} | "
                     f"{m['micro_f1']:.4f} |")
        L.append(f"| the {dd['corpus']:,} corpus with its true train labels | "
                 f"{dd['student_on_true_corpus_labels']['macro_f1']:.4f} | "
                 f"{dd['student_on_true_corpus_labels']['micro_f1']:.4f} |")
        if c:
            L.append(f"| all 43,410 train items with their labels = (c) | {c['macro_f1']:.4f} | {c['micro_f1']:.4f} |")
    notes = _notes(d, c, dd) + [
        "- No LLM LF ran: this task had no GPU, and SmolLM2 yes/no prompts for every (item, label) pair of the "
        "corpus do not fit 2 shared cores in the time. The yes/no and list LFs are built and tested "
        "(tests/test_multilabel.py) but not measured here; they are what could lift the weak labels."]
    if notes:
        L += ["", "What the figures say (this run):", ""] + notes
    L += ["", "Per-label F1 (scoring half), gold 1,000:", "",
          "| label | (a) LR | (b) student | (c) ceiling |", "|---|---|---|---|"]
    row = d["budgets"].get("1000")
    if row:
        for x in row["chain"]["student"]["per_label_f1"]:
            a = row.get("lr", {}).get("per_label_f1", {}).get(x, float("nan"))
            cc = c["per_label_f1"].get(x, float("nan")) if c else float("nan")
            L.append(f"| {x} | {a:.3f} | {row['chain']['student']['per_label_f1'][x]:.3f} | {cc:.3f} |")
    times = "; ".join(f"gold {int(b):,}: label {r['chain']['label_seconds']} s, distill {r['chain']['distill_seconds']} s"
                      for b, r in d["budgets"].items())
    L += ["", f"Run: (a)+(b) {d.get('seconds', '?')} s ({times}), load average at the end "
          f"{[round(x, 1) for x in d.get('load_average', [])]}; (c) {cj.get('seconds', '-')} s, load "
          f"{[round(x, 1) for x in cj.get('load_average', [])]}; diagnosis {dg.get('seconds', '-')} s, load "
          f"{[round(x, 1) for x in dg.get('load_average', [])]}; machine: 2 cores shared with the other helpers' jobs.",
          ""]
    out_md.write_text("\n".join(L) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=int, default=10000, help="train texts used as the unlabeled corpus")
    ap.add_argument("--budgets", type=int, nargs="+", default=[0, 100, 1000])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--knn-threshold", type=float, default=0.3)
    ap.add_argument("--low", type=float, default=0.1)
    ap.add_argument("--no-classifier", action="store_true", help="leave out the supervised (classifier) LF")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--work", type=Path, default=Path("/tmp/llmlabel-eval-multilabel"))
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "multilabel.json")
    ap.add_argument("--skip-ceiling", action="store_true")
    ap.add_argument("--only-ceiling", action="store_true", help="run (c) alone (in parallel with the rest)")
    ap.add_argument("--ceiling-model", type=Path, help="with --only-ceiling: score this saved student")
    ap.add_argument("--only-lr", action="store_true", help="run (a) alone (fast: cached embeddings)")
    ap.add_argument("--diagnose", action="store_true",
                    help="which stage limits (b) at 1,000 gold: the student on the gold alone / on true corpus labels")
    ap.add_argument("--render", nargs="+", type=Path, metavar="JSON",
                    help="write eval/results/multilabel.md from a run's JSON (and the ceiling's, the diagnosis's) and stop")
    ap.add_argument("--command", default="", help="with --render: the command lines to record")
    args = ap.parse_args()
    if args.render:
        render(args.render[0], args.render[1] if len(args.render) > 1 else None,
               ROOT / "eval" / "results" / "multilabel.md", args.command,
               args.render[2] if len(args.render) > 2 else None)
        return
    if not DATA.is_dir():
        sys.exit(f"no GoEmotions data at {DATA}")
    import yaml

    from llmlabel.artifacts.taxonomy import save_taxonomy
    from llmlabel.embed import load_embedder
    from llmlabel.multilabel_metrics import groups_of
    from llmlabel.taxonomy import taxonomy_from_labels

    t_start = time.perf_counter()
    labels = [x for x in (DATA / "labels.txt").read_text().split("\n") if x]
    train_texts, Ytrain = load_split("train", labels)
    dev_texts, Ydev = load_split("dev", labels)
    perm = np.random.default_rng(0).permutation(len(train_texts))
    dperm = np.random.default_rng(1).permutation(len(dev_texts))
    sel, sc = np.sort(dperm[: len(dperm) // 2]), np.sort(dperm[len(dperm) // 2:])
    corpus_texts = [train_texts[i] for i in perm[: args.corpus]]
    Ycorpus = Ytrain[perm[: args.corpus]]
    minilm = load_embedder("minilm")
    X_dev = embed_cached(minilm, dev_texts)
    X_corpus = embed_cached(minilm, corpus_texts)
    emb = CachedEmbedder(minilm, dev_texts + corpus_texts, np.concatenate([X_dev, X_corpus]))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tree = {**json.loads((DATA / "ekman_mapping.json").read_text()), "neutral": []}
    (work / "labels.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    tax = taxonomy_from_labels(work / "labels.yaml", corpus_texts, multi_label=True, embedder=emb).taxonomy
    order = [x.name for x in tax.leaves()]
    col = [labels.index(x) for x in order]  # the taxonomy's leaf order
    labels, Ytrain, Ydev, Ycorpus = order, Ytrain[:, col], Ydev[:, col], Ycorpus[:, col]
    save_taxonomy(tax, work / "taxonomy.yaml")
    corpus_ids = [f"tr{i}" for i in perm[: args.corpus]]
    sel_ids = [f"dv{i}" for i in sel]
    write_jsonl(work / "corpus.jsonl", [{"id": i, "text": t} for i, t in zip(corpus_ids, corpus_texts)]
                + [{"id": i, "text": dev_texts[j]} for i, j in zip(sel_ids, sel)])
    write_jsonl(work / "selection.jsonl", ({"id": i, "text": dev_texts[j], "labels": [labels[c] for c in
                                            np.flatnonzero(Ydev[j])]} for i, j in zip(sel_ids, sel)))
    ctx = {"labels": labels, "tax": tax, "emb": emb, "groups": groups_of(tax), "tax_file": work / "taxonomy.yaml",
           "corpus_file": work / "corpus.jsonl", "sel_file": work / "selection.jsonl", "corpus_ids": corpus_ids,
           "corpus_texts": corpus_texts, "Ycorpus": Ycorpus, "sel_texts": [dev_texts[i] for i in sel],
           "Ysel": Ydev[sel], "sc_texts": [dev_texts[i] for i in sc], "Ysc": Ydev[sc],
           "train_texts": train_texts, "Ytrain": Ytrain}
    out: dict = {"corpus": args.corpus, "selection": int(len(sel)), "scoring": int(len(sc)), "budgets": {},
                 "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if args.diagnose:
        out = {"diagnosis": diagnose(ctx, work / "diagnose", args), "seconds": round(time.perf_counter() - t_start, 1),
               "load_average": os.getloadavg()}
        args.out.write_text(json.dumps(out, indent=1))
        return
    if args.only_ceiling:
        out = {"ceiling": ceiling(ctx, work, args), "seconds": round(time.perf_counter() - t_start, 1),
               "load_average": os.getloadavg(), "n_train": len(train_texts)}
        args.out.write_text(json.dumps(out, indent=1))
        return
    for b in args.budgets:
        row: dict = {}
        if b:
            pred, cw = baseline_lr(X_corpus[:b], Ycorpus[:b], X_dev[sel], Ydev[sel], X_dev[sc])
            row["lr"] = {**scores(Ydev[sc], pred, labels, ctx["groups"]), "class_weight": cw}
        if args.only_lr:
            if b:
                out["budgets"][str(b)] = row
            continue
        row["chain"] = chain(b, ctx, work / f"b{b}", args)
        out["budgets"][str(b)] = row
        print(json.dumps({"budget": b, **{k: (v if k != "chain" else {kk: vv for kk, vv in v.items()
                                                                         if kk in ("label_model", "student")})
                                          for k, v in row.items()}}, default=str)[:600], flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    if not args.skip_ceiling:
        out["ceiling"] = ceiling(ctx, work, args)
        print("ceiling", {k: v for k, v in out["ceiling"].items() if not k.startswith("per_")}, flush=True)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    out["load_average"] = os.getloadavg()
    out["embedding_cache_misses"] = emb.misses
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
