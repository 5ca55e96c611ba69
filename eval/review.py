"""What a human label buys -> eval/results/review.md (+ review.json, review_rounds.json for `llmlabel report`).

A simulated annotator answers with the gold label. Each round a strategy picks --batch items nobody reviewed yet
from the current labels; they feed a kNN LF over the reviewed items (``label --gold``) and are clamped into the
label model with ``aggregate --gold`` (labelmodel/gold.py: selection, ``*-dev`` fits and calibration on dev + the
random strategy's gold, cross-fitted; other strategies' picks only clamped, unless --gold-all);
the static student is retrained at --student-at label counts. Round 0 (no human labels) is shared by all
strategies. Sets and their votes: eval/review_data.py (WRENCH youtube/trec with their LFs and valid split as dev;
Banking77 and AG News with llmlabel's own no-LLM LFs and no dev).

Figures: accuracy of the shipped corpus labels (human + model), of the label model on the held-out test votes, and
of the student on the test texts; and at round 0, the label-error rate in the review queue's top 10% vs the corpus.
Each set is written to the results as soon as it finishes (one invocation per set keeps each under ~15 min):

    PYTHONPATH=$PWD nice -n 5 python eval/review.py --datasets youtube [--rounds 10] [--batch 50] [--no-student]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmlabel.artifacts.labeled import write_labeled  # noqa: E402
from llmlabel.labelmodel.gold import aggregate_with_gold, fair_sample  # noqa: E402
from llmlabel.embed.tfidf import text_features  # noqa: E402
from llmlabel.labelmodel.review import oof_proba, review_scores  # noqa: E402
from llmlabel.labelmodel.strategies import STRATEGIES, select  # noqa: E402

sys.path.insert(0, str(ROOT / "eval"))
from _common import machine  # noqa: E402  (one machine description for every results file)
from review_data import load_set, with_knn  # noqa: E402


def student_accuracy(ds: dict, res: dict, tmp: Path, seed: int = 0) -> float:
    from llmlabel.distill import distill

    L = ds["L"]
    path = tmp / "labeled.parquet"
    write_labeled(path, ids=[str(i) for i in L.ids], classes=L.labels, proba=res["proba"], label_index=res["label"],
                  confidence=res["confidence"], uncovered=res["uncovered"], texts=ds["texts"], source=res["source"])
    st = distill(path, None, student="static", seed=seed).student
    return float((st.predict_proba(ds["texts_test"]).argmax(1) == ds["y_test"]).mean())


def evaluate(ds: dict, res: dict, L_test, reviewed: np.ndarray, tmp: Path, with_student: bool) -> dict:
    y = ds["y"]
    right = res["label"] == y
    lm_test = res["model"].predict(L_test)
    out = {"n_labels": int(reviewed.sum()), "accuracy": float(right.mean()),
           "model_rows_accuracy": float(right[~reviewed].mean()),
           "label_model_test_accuracy": float((lm_test == ds["y_test"]).mean()),
           "chosen": res["report"].get("chosen"), "calibration": res["report"].get("calibration")}
    out["student_accuracy"] = student_accuracy(ds, res, tmp) if with_student else None
    return out


def queue_enrichment(ds: dict, res: dict) -> dict:
    """Label-error rate among the top 10% by each ranking vs the corpus (round 0, no human labels).

    ``review`` = votes only (confidence + LF disagreement); ``review_minilm`` = plus the out-of-fold logistic
    regression on MiniLM vectors (``review export --features minilm``); ``review_tfidf`` = the same on hashed
    TF-IDF (the export's default, no model); ``self_conf_minilm`` = that classifier's self-confidence alone.
    """
    wrong = res["label"] != ds["y"]
    n_top = max(1, len(wrong) // 10)
    out = {"base_error_rate": float(wrong.mean()), "max_ratio": float(min(1 / max(wrong.mean(), 1e-12), 10))}
    L, lab, k = ds["L"], res["label"], ds["L"].cardinality
    t0 = time.time()
    p_emb = oof_proba(ds["X"], lab, n_classes=k)
    t1 = time.time()
    p_tfidf = oof_proba(text_features(ds["texts"]), lab, n_classes=k)
    out["oof_seconds"] = {"minilm": round(t1 - t0, 1), "tfidf": round(time.time() - t1, 1)}
    rankings = {"review": review_scores(res["proba"], L.votes, labels=lab)["risk"],
                "uncertainty": -res["confidence"],
                "review_minilm": review_scores(res["proba"], L.votes, p_emb, labels=lab)["risk"],
                "review_tfidf": review_scores(res["proba"], L.votes, p_tfidf, labels=lab)["risk"],
                "self_conf_minilm": -p_emb[np.arange(len(lab)), lab]}
    for name, score in rankings.items():
        top = np.argsort(-score, kind="stable")[:n_top]
        out[f"{name}_top10_error_rate"] = float(wrong[top].mean())
        out[f"{name}_top10_ratio"] = float(wrong[top].mean() / max(wrong.mean(), 1e-12))
    return out


def aggregate_round(ds: dict, rows: np.ndarray, knn: bool, fair: bool = True):
    """``fair``: the rows are a random sample (they select and fit the label model), else only clamped, as
    ``aggregate --gold`` does with the ``strategy`` that ``review import`` writes into gold.jsonl."""
    L, L_dev, L_test = with_knn(ds, rows) if knn else (ds["L"], ds["L_dev"], ds["L_test"])
    res = aggregate_with_gold(L, "auto", L_dev, ds["y_dev"], rows, ds["y"][rows], np.full(len(rows), fair),
                              reliability=False)
    return res, L, L_test


def run_dataset(name: str, args, tmp: Path) -> dict:
    ds = load_set(name)
    n = len(ds["y"])
    t0 = time.time()
    none = np.zeros(n, bool)
    res0, L0, Lt0 = aggregate_round(ds, np.zeros(0, np.int64), args.knn)
    r0 = evaluate(ds, res0, Lt0, none, tmp, args.student and 0 in args.student_at)
    enrich = queue_enrichment(ds, res0)
    print(f"[{name}] round 0: {r0} | queue {enrich} ({time.time() - t0:.1f}s)", flush=True)
    rounds = []
    for strategy in args.strategies:
        res, L, reviewed = res0, L0, none.copy()
        rounds.append({"dataset": name, "strategy": strategy, **r0})
        for r in range(1, args.rounds + 1):
            pick = select(strategy, args.batch, proba=res["proba"], confidence=res["confidence"],
                          label_index=res["label"], votes=L.votes, texts=ds["texts"], exclude=reviewed,
                          seed=args.seed + r, features=ds["X"] if strategy == "review" else None)
            reviewed[pick] = True
            res, L, L_test = aggregate_round(ds, np.flatnonzero(reviewed), args.knn,
                                             fair=args.gold_all or fair_sample(strategy))
            with_st = args.student and int(reviewed.sum()) in args.student_at
            row = {"dataset": name, "strategy": strategy, **evaluate(ds, res, L_test, reviewed, tmp, with_st)}
            rounds.append(row)
            print(f"[{name}] {strategy} {row['n_labels']}: acc {row['accuracy']:.4f} lm-test "
                  f"{row['label_model_test_accuracy']:.4f} student {row['student_accuracy']} "
                  f"({time.time() - t0:.0f}s)", flush=True)
    return {"n_corpus": n, "n_dev": 0 if ds["y_dev"] is None else len(ds["y_dev"]), "n_test": len(ds["y_test"]),
            "classes": ds["L"].labels, "n_lfs": len(ds["L"].lf_names), "lf_source": ds["lf_source"],
            "queue": enrich, "rounds": rounds, "seconds": round(time.time() - t0, 1)}


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


QUEUE_ROWS = (("review", "review risk, votes only (confidence + LF disagreement)"),
              ("uncertainty", "uncertainty (lowest calibrated confidence)"),
              ("review_tfidf", "review risk + out-of-fold classifier on TF-IDF word counts (`review export` default)"),
              ("review_minilm", "review risk + out-of-fold classifier on MiniLM (`--features minilm`; the `review` "
                                "strategy below)"),
              ("self_conf_minilm", "out-of-fold MiniLM classifier's self-confidence alone"))


def write_md(path: Path, results: dict) -> None:
    lines = ["# What a human label buys: review strategies on four sets", "",
             "A simulated annotator answers with the gold label; each round a strategy sends 50 unreviewed items. "
             "Re-aggregation is the product's `label --gold` + `aggregate --gold`: the reviewed items feed a kNN LF "
             "(MiniLM, cross-fitted on them) and are clamped to their labels; only `random`'s labels also join dev "
             "for label-model selection, `*-dev` fits and calibration (cross-fitted): actively picked items are a "
             "biased sample, so they are only clamped (`--gold-all` lets every strategy's labels in, to compare). "
             "*corpus acc* = accuracy of the shipped labels on the corpus "
             "(human + model rows); *model rows* = the rows still labelled by the model; *LM test* = the label "
             "model on the held-out test votes; *student* = static student retrained on the labels, on the test "
             "texts (only at some label counts, to fit the time).", "",
             "Generated by `eval/review.py` (every figure below); each set's own command, date and load are in "
             "its section.", ""]
    for name, res in results.items():
        q, meta = res["queue"], res["meta"]
        lines += [f"## {name} ({res['n_corpus']:,} corpus items, {res['n_lfs']} LFs: {res['lf_source']}; "
                  f"{len(res['classes'])} classes; dev {res['n_dev']}, test {res['n_test']})", "",
                  f"Command: `{meta['command']}`  ", f"Date: {meta['date']}; machine: {meta['machine']}; load "
                  f"average before/after: {meta['load_before']} / {meta['load_after']}; {res['seconds']} s.", "",
                  f"Review queue at round 0 (label model {res['rounds'][0]['chosen']}): base label-error rate "
                  f"{q['base_error_rate']:.3f}, so a top 10% made only of errors would be **{q['max_ratio']:.2f}x**. "
                  "Error rate in the top 10% by:", ""]
        best = max(q[f"{k}_top10_ratio"] for k, _ in QUEUE_ROWS if f"{k}_top10_ratio" in q)
        for key, label in QUEUE_ROWS:
            if f"{key}_top10_ratio" in q:
                lines.append(f"- {label}: {q[f'{key}_top10_error_rate']:.3f} (**{q[f'{key}_top10_ratio']:.2f}x**, "
                             f"{q[f'{key}_top10_ratio'] / q['max_ratio']:.0%} of the maximum)")
        goal = "met" if best >= 3 else ("not met" if q["max_ratio"] >= 3 else
                                        f"out of reach (maximum {q['max_ratio']:.2f}x < 3x)")
        lines += ["", f"Goal >= 3x: {goal}. Out-of-fold classifier fits: MiniLM {q['oof_seconds']['minilm']} s, "
                      f"TF-IDF {q['oof_seconds']['tfidf']} s.", ""]
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
    notes = path.with_name(path.stem + "-notes.md")
    if notes.is_file():
        lines += [f"Notes (by hand): see {notes.name}.", ""]
    path.write_text("\n".join(lines) + "\n")


def efficiencies(res: dict) -> dict:
    return {m: efficiency(res["rounds"], m) for m in ("accuracy", "student_accuracy", "label_model_test_accuracy")}


def _saved(out: Path) -> dict:
    p = Path(f"{out}.json")
    saved = json.loads(p.read_text()) if p.is_file() else {}
    return {k: v for k, v in saved.get("results", {}).items() if "meta" in v}  # older format (no meta): rerun


def write_all(out: Path, results: dict) -> None:
    order = ["youtube", "trec", "banking77", "agnews"]
    results = dict(sorted(results.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9))
    for suffix, obj in ((".json", {"results": results}),
                        ("_rounds.json", {"note": "eval/review.py: simulated annotator (gold labels); corpus label "
                                                  "accuracy", "rounds": [r for res in results.values()
                                                                         for r in res["rounds"]]})):
        tmp = Path(f"{out}{suffix}.tmp")
        tmp.write_text(json.dumps(obj, indent=1, default=float) + "\n")
        tmp.replace(f"{out}{suffix}")
    write_md(Path(f"{out}.md"), results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["youtube", "trec", "banking77", "agnews"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-student", dest="student", action="store_false")
    ap.add_argument("--student-at", type=int, nargs="+", default=[0, 250, 500],
                    help="Label counts at which the static student is retrained and scored.")
    ap.add_argument("--no-knn", dest="knn", action="store_false", help="No kNN LF over the reviewed items.")
    ap.add_argument("--gold-all", action="store_true",
                    help="Let every strategy's labels select and fit the label model (the behaviour before "
                         "clamp-only gold for actively picked items), to compare.")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "review"))
    ap.add_argument("--render", action="store_true", help="Only rewrite OUT.md from OUT.json (no new runs).")
    args = ap.parse_args()
    out = Path(args.out)
    if args.render:
        write_all(out, _saved(out))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:  # each set is saved as soon as it finishes, with its own command and load
            load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
            res = run_dataset(name, args, Path(tmp))
            res["efficiency"] = efficiencies(res)
            res["meta"] = {"command": "PYTHONPATH=$PWD nice -n 5 python eval/review.py " + " ".join(sys.argv[1:]),
                           "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                           "machine": machine(),
                           "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg())}
            # Re-read just before writing: another invocation (another set) may have saved meanwhile.
            write_all(out, {**_saved(out), name: res})
            print(f"[{name}] wrote {out}.md, {out}.json, {out}_rounds.json", flush=True)


if __name__ == "__main__":
    main()
