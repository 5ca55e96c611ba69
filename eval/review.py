"""What a human label buys -> eval/results/review.md (+ review.json, review_rounds.json for `llmlabel report`).

A simulated annotator answers with the gold label. Each round a strategy picks --batch items nobody reviewed yet
from the current labels; they are clamped into the label model with `aggregate --gold` (labelmodel/gold.py:
selection and calibration on dev + gold), and the static student is retrained on the new labels. Round 0 (no
human labels) is shared by all strategies.

Corpus = the WRENCH train split with its real LF votes (dev = valid split, the student is scored on test).
Figures: accuracy of the shipped corpus labels (human + model), of the label model on the held-out test votes, and
of the student on the test texts; and at round 0, the label-error rate in the review queue's top 10% vs the corpus.

    python eval/review.py [--datasets youtube trec] [--rounds 10] [--batch 50] [--no-student]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmlabel.artifacts.labeled import write_labeled  # noqa: E402
from llmlabel.labelmodel.gold import aggregate_with_gold  # noqa: E402
from llmlabel.labelmodel.pipeline import load_votes  # noqa: E402
from llmlabel.labelmodel.strategies import STRATEGIES, risk_scores, select  # noqa: E402

DATA = Path(os.environ.get("LLMLABEL_EVAL_DATA", ROOT / ".." / "shared" / "data"))


def load_wrench_set(name: str) -> dict:
    d = DATA / "wrench" / name
    L, y, texts = load_votes(d / "train.json")
    Ld, yd, _ = load_votes(d / "valid.json", L.labels)
    Lt, yt, tt = load_votes(d / "test.json", L.labels)
    return {"L": L, "y": y, "texts": texts, "L_dev": Ld, "y_dev": yd, "L_test": Lt, "y_test": yt, "texts_test": tt}


def student_accuracy(ds: dict, res: dict, tmp: Path, seed: int = 0) -> float:
    from llmlabel.distill import distill

    L = ds["L"]
    path = tmp / "labeled.parquet"
    write_labeled(path, ids=[str(i) for i in L.ids], classes=L.labels, proba=res["proba"], label_index=res["label"],
                  confidence=res["confidence"], uncovered=res["uncovered"], texts=ds["texts"], source=res["source"])
    st = distill(path, None, student="static", seed=seed).student
    return float((st.predict_proba(ds["texts_test"]).argmax(1) == ds["y_test"]).mean())


def evaluate(ds: dict, res: dict, reviewed: np.ndarray, tmp: Path, with_student: bool) -> dict:
    y = ds["y"]
    right = res["label"] == y
    lm_test = res["model"].predict(ds["L_test"])
    out = {"n_labels": int(reviewed.sum()), "accuracy": float(right.mean()),
           "model_rows_accuracy": float(right[~reviewed].mean()),
           "label_model_test_accuracy": float((lm_test == ds["y_test"]).mean()),
           "chosen": res["report"].get("chosen"), "calibration": res["report"].get("calibration")}
    out["student_accuracy"] = student_accuracy(ds, res, tmp) if with_student else None
    return out


def student_oof_proba(ds: dict, res: dict, tmp: Path, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold static-student probabilities on the corpus: each fold predicted by a student trained on the
    other folds' labels (the cleanlab-style self-confidence signal of ``labelmodel.review``)."""
    from llmlabel.distill import distill

    L, n = ds["L"], len(ds["y"])
    out = np.zeros((n, L.cardinality))
    for f in np.array_split(np.random.default_rng(seed).permutation(n), n_folds):
        rest = np.setdiff1d(np.arange(n), f)
        path = tmp / "oof.parquet"
        write_labeled(path, ids=[str(L.ids[i]) for i in rest], classes=L.labels, proba=res["proba"][rest],
                      label_index=res["label"][rest], confidence=res["confidence"][rest],
                      texts=[ds["texts"][i] for i in rest])
        st = distill(path, None, student="static", seed=seed).student
        out[f] = st.predict_proba([ds["texts"][i] for i in f])
    return out


def queue_enrichment(ds: dict, res: dict, tmp: Path, with_student: bool) -> dict:
    """Label-error rate among the top 10% by each ranking vs the corpus (round 0, no human labels)."""
    wrong = res["label"] != ds["y"]
    n_top = max(1, len(wrong) // 10)
    out = {"base_error_rate": float(wrong.mean())}
    rankings = {"review": -risk_scores(res["proba"], ds["L"].votes, res["label"]),
                "uncertainty": res["confidence"]}
    if with_student:
        from llmlabel.labelmodel.review import review_scores

        oof = student_oof_proba(ds, res, tmp)
        rankings["review_student"] = -review_scores(res["proba"], ds["L"].votes, oof, labels=res["label"])["risk"]
    for name, key in rankings.items():
        top = np.argsort(key, kind="stable")[:n_top]
        out[f"{name}_top10_error_rate"] = float(wrong[top].mean())
        out[f"{name}_top10_ratio"] = float(wrong[top].mean() / max(wrong.mean(), 1e-12))
    return out


def run_dataset(name: str, args, tmp: Path) -> dict:
    ds = load_wrench_set(name)
    n = len(ds["y"])
    t0 = time.time()
    res0 = aggregate_with_gold(ds["L"], "auto", ds["L_dev"], ds["y_dev"], reliability=False)
    none = np.zeros(n, bool)
    r0 = evaluate(ds, res0, none, tmp, args.student)
    enrich = queue_enrichment(ds, res0, tmp, args.student)
    print(f"[{name}] round 0: {r0} | queue {enrich} ({time.time() - t0:.1f}s)", flush=True)
    rounds = []
    for strategy in args.strategies:
        res, reviewed = res0, none.copy()
        rounds.append({"dataset": name, "strategy": strategy, **r0})
        for r in range(1, args.rounds + 1):
            pick = select(strategy, args.batch, proba=res["proba"], confidence=res["confidence"],
                          label_index=res["label"], votes=ds["L"].votes, texts=ds["texts"], exclude=reviewed,
                          seed=args.seed + r)
            reviewed[pick] = True
            rows = np.flatnonzero(reviewed)
            res = aggregate_with_gold(ds["L"], "auto", ds["L_dev"], ds["y_dev"], rows, ds["y"][rows],
                                      reliability=False)
            row = {"dataset": name, "strategy": strategy, **evaluate(ds, res, reviewed, tmp, args.student)}
            rounds.append(row)
            print(f"[{name}] {strategy} {row['n_labels']}: acc {row['accuracy']:.4f} lm-test "
                  f"{row['label_model_test_accuracy']:.4f} student {row['student_accuracy']} "
                  f"({time.time() - t0:.0f}s)", flush=True)
    return {"n_corpus": n, "n_dev": len(ds["y_dev"]), "n_test": len(ds["y_test"]), "classes": ds["L"].labels,
            "n_lfs": len(ds["L"].lf_names), "queue": enrich, "rounds": rounds, "seconds": round(time.time() - t0, 1)}


def efficiency(rounds: list[dict], metric: str) -> dict:
    """Labels the best strategy needs to reach random's accuracy at the largest budget."""
    by = {}
    for r in rounds:
        by.setdefault(r["strategy"], []).append((r["n_labels"], r[metric]))
    if "random" not in by or by["random"][-1][1] is None:
        return {}
    budget, target = by["random"][-1]
    start = by["random"][0][1]
    out = {"metric": metric, "budget": budget, "random_at_budget": target, "needed": {},
           "vacuous": start is not None and target <= start}  # random's labels bought nothing: no goal to reach
    for s, pts in by.items():
        hit = [nl for nl, v in pts if v is not None and v >= target - 1e-12]
        out["needed"][s] = min(hit) if hit else None
    best = min((v for s, v in out["needed"].items() if s != "random" and v is not None), default=None)
    out["best_needed"] = best
    out["goal_met"] = best is not None and best <= budget / 2 and not out["vacuous"]
    return out


def write_md(path: Path, results: dict, meta: dict) -> None:
    lines = ["# What a human label buys: review strategies on WRENCH", "",
             f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; machine: {meta['machine']}; "
             f"load average before/after: {meta['load_before']} / {meta['load_after']}; {meta['seconds']} s.", "",
             "A simulated annotator answers with the gold label; each round a strategy sends "
             f"{meta['batch']} unreviewed items, `aggregate --gold` clamps them and re-selects/calibrates the label "
             "model on dev + gold, and the static student is retrained. *corpus acc* = accuracy of the shipped labels "
             "on the train split (human + model rows); *model rows* = the rows still labelled by the model; "
             "*LM test* = the label model on the held-out test votes; *student* = static student on the test texts.",
             ""]
    for name, res in results.items():
        q = res["queue"]
        lines += [f"## {name} ({res['n_corpus']:,} corpus items, {res['n_lfs']} LFs, {len(res['classes'])} classes; "
                  f"dev {res['n_dev']}, test {res['n_test']})", "",
                  f"Review queue at round 0: base label-error rate {q['base_error_rate']:.3f}; top 10% by review "
                  f"risk {q['review_top10_error_rate']:.3f} (**{q['review_top10_ratio']:.2f}x**), by uncertainty "
                  f"{q['uncertainty_top10_error_rate']:.3f} ({q['uncertainty_top10_ratio']:.2f}x)"
                  + (f", by review risk with the out-of-fold student's self-confidence "
                     f"{q['review_student_top10_error_rate']:.3f} (**{q['review_student_top10_ratio']:.2f}x**)"
                     if "review_student_top10_ratio" in q else "")
                  + f". Goal >= 3x: {'met' if max(v for k_, v in q.items() if k_.endswith('_ratio')) >= 3 else 'not met'}"
                  f" (a top 10% made only of errors would be {min(1 / max(q['base_error_rate'], 1e-9), 10):.2f}x).", ""]
        for metric, label in (("accuracy", "corpus label accuracy"), ("student_accuracy", "student test accuracy"),
                              ("label_model_test_accuracy", "label-model test accuracy")):
            e = res["efficiency"].get(metric) or {}
            if e:
                need = ", ".join(f"{s} {v if v is not None else '>' + str(e['budget'])}" for s, v in e["needed"].items())
                lines.append(f"- {label}: random reaches {e['random_at_budget']:.4f} with {e['budget']} labels; "
                             f"labels needed to match it: {need}. 2x goal (<= {e['budget'] // 2}): "
                             + ("no goal: random's labels bought nothing here (no better than round 0)."
                                if e["vacuous"] else f"**{'met' if e['goal_met'] else 'not met'}**."))
        lines += ["", "| strategy | labels | corpus acc | model rows | LM test | student | model |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in res["rounds"]:
            st = "–" if r["student_accuracy"] is None else f"{r['student_accuracy']:.4f}"
            lines.append(f"| {r['strategy']} | {r['n_labels']} | {r['accuracy']:.4f} | {r['model_rows_accuracy']:.4f} "
                         f"| {r['label_model_test_accuracy']:.4f} | {st} | {r['chosen']}/{r['calibration']} |")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["youtube", "trec"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-student", dest="student", action="store_false")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "review"))
    ap.add_argument("--render", action="store_true", help="Only rewrite OUT.md from OUT.json (no new runs).")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(Path(f"{args.out}.json").read_text())
        for res in saved["results"].values():
            res["efficiency"] = {m: efficiency(res["rounds"], m)
                                 for m in ("accuracy", "student_accuracy", "label_model_test_accuracy")}
        write_md(Path(f"{args.out}.md"), saved["results"], saved["meta"])
        return
    if not (DATA / "wrench").is_dir():
        sys.exit(f"evaluation data not found at {DATA} (set LLMLABEL_EVAL_DATA)")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t0 = time.time()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            res = run_dataset(name, args, Path(tmp))
            res["efficiency"] = {m: efficiency(res["rounds"], m)
                                 for m in ("accuracy", "student_accuracy", "label_model_test_accuracy")}
            results[name] = res
    meta = {"command": "python eval/review.py " + " ".join(sys.argv[1:]), "date": dt.datetime.now(dt.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC"), "machine": f"{os.cpu_count()} cores (shared), {platform.machine()}",
            "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "seconds": round(time.time() - t0, 1), "batch": args.batch}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=float) + "\n")
    rounds = [r for res in results.values() for r in res["rounds"]]
    Path(f"{out}_rounds.json").write_text(json.dumps({"note": f"eval/review.py, {meta['date']}: simulated annotator "
                                                      "(gold labels) on WRENCH train splits", "rounds": rounds},
                                                     indent=1) + "\n")
    write_md(Path(f"{out}.md"), results, meta)
    print(f"wrote {out}.md, {out}.json, {out}_rounds.json")


if __name__ == "__main__":
    main()
