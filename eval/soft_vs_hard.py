"""Soft vs hard targets from the same aggregate run: a static student on Banking77, scored on the test split.

    nice -n 10 python eval/soft_vs_hard.py [--n-train 10003] [--seeds-per-class 5]

The chain is the one a user runs (taxonomy.yaml -> `llmlabel label` -> `llmlabel aggregate` -> `llmlabel
distill`), as library calls into one work folder:

- taxonomy: the 77 Banking77 intents as labels (name = the intent id with spaces), each with its first
  ``--seeds-per-class`` train texts as examples (a user who knows the intents and gives a handful of examples);
- LFs: ``pipelines/banking77_lfs.yaml`` (key phrases + the MiniLM embedding LF) plus a WordLlama embedding LF;
  no LLM, no gold label is seen past the seed examples;
- corpus: train.csv texts only (no labels); aggregate with ``--method auto`` and no dev set (as in the pipeline);
- the same labeled.parquet trains two static students (WordLlama + TF-IDF, linear head, same seed), one with
  ``soft=True`` (the p:<class> probabilities) and one with ``soft=False`` (the label one-hot), both weighted by
  the confidence as ``llmlabel distill`` does by default; a third on the gold train labels is the ceiling.

Test labels are used for scoring only. Writes eval/results/soft_vs_hard.md (+ .json).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)
OUT = ROOT / "eval" / "results" / "soft_vs_hard"


def _read(split: str) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader(open(DATA / "banking77" / f"{split}.csv", encoding="utf-8")))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def _scores(pred: list[str], gold: list[str], classes: list[str]) -> dict:
    p, g = np.asarray(pred), np.asarray(gold)
    f1 = []
    for c in classes:
        tp = np.sum((p == c) & (g == c))
        denom = np.sum(p == c) + np.sum(g == c)
        f1.append(0.0 if denom == 0 else 2 * tp / denom)
    return {"accuracy": round(float((p == g).mean()), 4), "macro_f1": round(float(np.mean(f1)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=None, help="N random train rows as the corpus (default: all)")
    ap.add_argument("--seeds-per-class", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None, help="keep the work folder here (default: a temp folder)")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json, run nothing")
    args = ap.parse_args()
    if args.render_only:
        return render(json.loads(OUT.with_suffix(".json").read_text()))
    if not (DATA / "banking77" / "train.csv").is_file():
        sys.exit(f"Banking77 not found under {DATA} (set LLMLABEL_EVAL_DATA)")
    sys.path.insert(0, str(ROOT))
    import yaml

    from llmlabel.artifacts.labeled import read_labeled
    from llmlabel.artifacts.model import read_metrics
    from llmlabel.artifacts.taxonomy import load_taxonomy, slugify
    from llmlabel.distill.api import distill
    from llmlabel.labelmodel.pipeline import aggregate, load_votes, write_labeled
    from llmlabel.lf.run import label_corpus

    tr_x, tr_y = _read("train")
    if args.n_train:  # train.csv is sorted by intent: a prefix would hold a few intents only
        keep = np.sort(np.random.default_rng(0).permutation(len(tr_x))[: args.n_train])
        tr_x, tr_y = [tr_x[i] for i in keep], [tr_y[i] for i in keep]
    te_x, te_y = _read("test")
    classes = sorted(set(tr_y))
    work = args.work or Path(tempfile.mkdtemp(prefix="soft_vs_hard_"))
    work.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, list[str]] = {c: [] for c in classes}
    for x, y in zip(tr_x, tr_y):
        if len(seeds[y]) < args.seeds_per_class:
            seeds[y].append(x)
    tax = {"instruction": "Classify the banking customer message by its intent.",
           "labels": [{"id": slugify(c), "name": c.replace("_", " "), "description": c.replace("_", " "),
                       "keyphrases": [c.replace("_", " ")],
                       "examples": [{"id": f"seed-{slugify(c)}-{i}", "text": t} for i, t in enumerate(seeds[c])]}
                      for c in classes]}
    (work / "taxonomy.yaml").write_text(yaml.safe_dump(tax, sort_keys=False))
    lfs = yaml.safe_load((ROOT / "pipelines" / "banking77_lfs.yaml").read_text())
    lfs["lfs"].append({"name": "emb_wordllama", "kind": "embedding", "embedder": "wordllama", "threshold": 0.35})
    (work / "lfs.yaml").write_text(yaml.safe_dump(lfs, sort_keys=False))
    (work / "corpus.jsonl").write_text("".join(json.dumps({"id": f"t{i}", "text": x}) + "\n"
                                               for i, x in enumerate(tr_x)))
    t0 = time.perf_counter()
    # a rerun with --work resumes the finished votes (the manifest's depends_on checks it is the same corpus)
    summary = label_corpus(work / "corpus.jsonl", work / "taxonomy.yaml", work / "lfs.yaml", work / "votes",
                           shard_size=2000)
    t_label = time.perf_counter() - t0
    names = load_taxonomy(work / "taxonomy.yaml").classes()
    L, _, texts = load_votes(work / "votes", names)
    res = aggregate(L, "auto")
    write_labeled(work / "labeled.parquet", L, res, texts)
    lab = read_labeled(work / "labeled.parquet")
    name_to_id = {c.replace("_", " "): c for c in classes}
    lab_ids = [name_to_id[x] for x in lab.label]
    onehot = np.eye(len(lab.classes), dtype=np.float32)[lab.label_index]
    label_stats = {"items": len(lab), "label_model": res["report"].get("chosen"),
                   "coverage": round(float(1 - lab.uncovered.mean()), 4),
                   "label_accuracy_vs_gold": round(float(np.mean(np.asarray(lab_ids) == np.asarray(tr_y))), 4),
                   "label_accuracy_covered": round(float(np.mean((np.asarray(lab_ids) == np.asarray(tr_y))[~lab.uncovered])), 4),
                   "mean_confidence": round(float(lab.confidence.mean()), 4),
                   "mean_abs_diff_from_onehot": round(float(np.abs(lab.proba - onehot).sum(1).mean() / 2), 4),
                   "label_seconds": round(t_label, 1), "labeled_in_this_run": summary["rows_labeled"]}
    print(json.dumps(label_stats), flush=True)
    runs, correct = {}, {}
    for tag, soft, weighted in (("soft", True, True), ("hard", False, True), ("soft, unweighted", True, False),
                                ("hard, unweighted", False, False)):
        t1 = time.perf_counter()
        folder = work / ("model_" + tag.replace(", ", "_"))
        r = distill(work / "labeled.parquet", folder, student="static", soft=soft, confidence_weights=weighted,
                    seed=0)
        pred = [name_to_id[c] for c in r.student.predict(te_x)]
        correct[tag] = np.asarray(pred) == np.asarray(te_y)
        m = read_metrics(folder)
        runs[tag] = {**_scores(pred, te_y, classes), "metrics_targets": m["training"]["targets"],
                     "weighted": m["training"]["weighted"], "train_seconds": round(time.perf_counter() - t1, 1)}
        print(tag, json.dumps(runs[tag]), flush=True)
    boot = np.random.default_rng(0).integers(0, len(te_y), size=(2000, len(te_y)))  # paired bootstrap on test
    ci = {}
    for a, b in (("soft", "hard"), ("soft, unweighted", "hard, unweighted")):
        d = (correct[a][boot].mean(1) - correct[b][boot].mean(1))
        ci[f"{a} - {b}"] = {"diff": round(float(correct[a].mean() - correct[b].mean()), 4),
                            "ci95": [round(float(np.quantile(d, 0.025)), 4), round(float(np.quantile(d, 0.975)), 4)]}
    from llmlabel.distill.static import StaticStudent

    t1 = time.perf_counter()
    gold = StaticStudent(seed=0).fit(tr_x, tr_y)
    runs["gold"] = {**_scores(list(gold.predict(te_x)), te_y, classes), "metrics_targets": "hard (gold labels)",
                    "train_seconds": round(time.perf_counter() - t1, 1)}
    print("gold", json.dumps(runs["gold"]), flush=True)

    cmd = "nice -n 10 python eval/soft_vs_hard.py " + " ".join(sys.argv[1:])
    info = {"command": cmd.strip(), "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine() + " (at the end)", "train_rows": len(tr_x),
            "test_rows": len(te_x), "seeds_per_class": args.seeds_per_class, "labels": label_stats, "students": runs,
            "paired_bootstrap": ci}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    render(info)


def render(info: dict) -> None:
    """eval/results/soft_vs_hard.md from the run's JSON (``--render-only`` redoes just this)."""
    lab, runs, ci = info["labels"], info["students"], info["paired_bootstrap"]
    md = ["# Soft vs hard targets from the same aggregate run (Banking77, static student)", "",
          f"Command: `{info['command']}`  ", f"Date: {info['date_utc']}  ", f"Machine: {info['machine']}", "",
          f"Corpus: Banking77 train.csv, {info['train_rows']:,} texts (labels hidden); taxonomy = the 77 intents, "
          f"{info['seeds_per_class']} seed examples each; LFs = pipelines/banking77_lfs.yaml (key phrases, MiniLM "
          "embedding) + a WordLlama embedding LF; `aggregate --method auto`, no dev set. "
          f"Scored on test.csv ({info['test_rows']:,} rows, used for nothing else).", "",
          "## The labels (one aggregate run, one labeled.parquet)", "",
          f"- label model: {lab['label_model']}; coverage {lab['coverage']:.3f}; "
          f"label accuracy vs the hidden gold {lab['label_accuracy_vs_gold']:.3f} "
          f"({lab['label_accuracy_covered']:.3f} on covered items)",
          f"- mean confidence {lab['mean_confidence']:.3f}; mean total-variation distance of the "
          f"p:<class> rows from the label one-hot {lab['mean_abs_diff_from_onehot']:.3f}",
          f"- votes: {lab['labeled_in_this_run']:,} items labeled in this run, {lab['label_seconds']} s "
          "(0 = resumed from an earlier run's complete votes folder in --work)", "",
          "## Students (static: WordLlama + TF-IDF features, linear head, seed 0)", "",
          "Weighted = per-item weights from the label confidence (the `llmlabel distill` default).", "",
          "| targets | test accuracy | test macro-F1 | metrics.json says | train s |", "|---|---|---|---|---|"]
    for tag in ("soft", "hard", "soft, unweighted", "hard, unweighted", "gold"):
        r = runs[tag]
        md.append(f"| {tag} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['metrics_targets']} | "
                  f"{r['train_seconds']} |")
    md += ["", "Paired bootstrap over the test items (2,000 resamples), accuracy difference and 95% interval:", ""]
    for k, v in ci.items():
        lo, hi = v["ci95"]
        verdict = "no measurable difference" if lo <= 0 <= hi else ("soft better" if lo > 0 else "hard better")
        md.append(f"- {k}: {v['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]: {verdict}")
    if all(v["ci95"][0] <= 0 <= v["ci95"][1] for v in ci.values()):
        md += ["", "Soft targets reach the student (metrics.json says soft for the soft runs) but do not move test "
               "accuracy here. A likely reason: the label model's posteriors are confident (the mean distance from "
               "one-hot above), so soft targets carry little beyond the label and its confidence weight. The gap "
               "to the gold-trained student is the labels' error, which the target form cannot undo."]
    md += [""]
    OUT.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))

if __name__ == "__main__":
    main()
