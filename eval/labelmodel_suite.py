"""The label model on every visible vote set -> eval/results/labelmodel.md (+ .json).

Sets (eval/lm_votes.py makes and caches the votes): WRENCH youtube, sms, trec, semeval with their published LFs
(fit on train votes, dev = valid, scored on test), and the votes llmlabel's own no-gold LFs make through the
CLI (``taxonomy --labels`` then ``label`` with key phrases + one MiniLM embedding LF, at threshold 0.35 and 0)
on Banking77, AG News, TweetEval irony, offensive, emoji and stance (five targets), and GoEmotions'
single-label rows (fit on every row, no gold read; scored on the non-dev rows).

Every model is scored by accuracy with ties and uncovered rows broken at random (mean of ``--seeds`` seeds,
as WRENCH does) and macro-F1 the same way; MV = plain majority vote. Also: what the default chose and why,
the no-gold selection criterion against the accuracy it is meant to track (rank correlation over every set and
candidate), ``auto`` with the dev rows, HyperLM (transductive, as its README runs it) and Snorkel 0.10 when
importable (eval-only: run with the eval virtualenv's python, see the results file's header).

    python eval/labelmodel_suite.py [--sets ...] [--seeds 20] [--out eval/results/labelmodel]
    python eval/labelmodel_suite.py --dev-only --merge eval/results/labelmodel.json   # remake the auto (dev) rows
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header  # noqa: E402
from lm_votes import OWN_SETS, WRENCH, own_votes, wrench_votes  # noqa: E402

sys.path.insert(0, str(ROOT))
from llmlabel.labelmodel import make_model, select_label_model  # noqa: E402
from llmlabel.labelmodel.hyperlm import hyperlm_available  # noqa: E402

NO_DEV = ["mv", "mv-r", "mvb", "mvb-r", "wv-r", "onecoin-r", "ds-r", "heldout"]
# Settings of the no-gold selection rule compared on every set (leave-one-set-out below); "default" is what
# llmlabel ships (HeldOutSelect's own defaults).
VARIANTS = {
    "default": {},
    "+ mv-r, mvb-r, wv-r": {"candidates": ("mv", "mv-r", "mvb", "mvb-r", "wv-r", "onecoin-r", "ds-r", "hyperlm")},
    "vote counts only (mv, mvb)": {"candidates": ("mv", "mvb")},
    "margin 1.645": {"margin": 1.645},
    "margin 2.5": {"margin": 2.5},
    "min 5 LFs": {"min_lfs": 5},
    "EM class-share guard 0.2": {"max_shift": 0.2},
}
EM_MAX_CLASSES = 21  # as the default: EM candidates are left out from this many classes (HeldOutSelect)


def set_names(args) -> list[str]:
    if args.sets:
        return args.sets
    return list(WRENCH) + [f"{s}:{v}" for s in OWN_SETS for v in ("emb35", "emb0")]


def load(name: str):
    return wrench_votes(name) if name in WRENCH else own_votes(*name.split(":"))


def hard_of(L) -> np.ndarray:
    return np.asarray(L if isinstance(L, np.ndarray) else L.votes)


def random_tie_scores(proba: np.ndarray, covered: np.ndarray, y: np.ndarray, k: int, seeds: int) -> dict:
    """Accuracy and macro-F1 with ties and uncovered rows broken at random: mean and sd over seeds."""
    p = np.array(proba, dtype=float)
    p[~covered] = 1.0 / k
    tied = p >= p.max(axis=1, keepdims=True) - 1e-9
    acc, f1 = [], []
    true = np.bincount(y, minlength=k)
    for s in range(seeds):
        noise = np.random.default_rng(s).random(p.shape)
        pred = np.argmax(np.where(tied, noise, -1.0), axis=1)
        acc.append(float(np.mean(pred == y)))
        tp = np.bincount(y[pred == y], minlength=k)
        den = np.bincount(pred, minlength=k) + true
        f1.append(float(np.mean(np.divide(2 * tp, den, out=np.zeros(k), where=den > 0)[true > 0])))
    pred0 = np.argmax(np.where(tied, np.random.default_rng(0).random(p.shape), -1.0), axis=1)
    return {"acc": float(np.mean(acc)), "acc_sd": float(np.std(acc)), "macro_f1": float(np.mean(f1)),
            "pred_share_max": float(np.bincount(pred0[covered], minlength=k).max() / max(1, covered.sum()))}


def fit_score(spec, vs, seeds: int, dev: bool = False, metric: str = "accuracy") -> dict:
    from llmlabel.labelmodel.heldout import HeldOutSelect

    t0 = time.perf_counter()
    if dev and spec == "hyperlm-dev":
        model = make_model(spec, vs.k).fit(vs.L, vs.y_dev, vs.L_dev)
    elif dev:
        model = select_label_model(vs.L, vs.L_dev, vs.y_dev, metric=metric)
    elif isinstance(spec, dict):
        model = HeldOutSelect(vs.k, **spec).fit(vs.L)
    else:
        model = make_model(spec, vs.k).fit(vs.L)
    proba = model.predict_proba(vs.L_test)
    sec = time.perf_counter() - t0
    row = random_tie_scores(proba, (hard_of(vs.L_test) >= 0).any(axis=1), vs.y_test, vs.k, seeds)
    row["seconds"] = round(sec, 2)
    sel = getattr(model, "selection_", None) or (getattr(model, "report_", {}) or {})
    if sel:
        row["chosen"] = sel.get("chosen")
        row["reason"] = sel.get("reason")
        if "candidates" in sel and not dev:
            row["candidates"] = [{k: c.get(k) for k in ("name", "gain_over_reference", "se", "lfs_scored",
                                                        "class_shift", "passes")} for c in sel["candidates"]]
    return row


def snorkel_score(vs, seeds: int) -> dict | str:
    try:
        import torch
        from snorkel.labeling.model import LabelModel
    except ImportError as exc:
        return f"not installed ({exc.name})"
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    lm = LabelModel(cardinality=vs.k, verbose=False)
    lm.fit(hard_of(vs.L), seed=0, progress_bar=False)
    proba = lm.predict_proba(hard_of(vs.L_test))
    row = random_tie_scores(proba, (hard_of(vs.L_test) >= 0).any(axis=1), vs.y_test, vs.k, seeds)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def criterion_rows(res: dict) -> list[dict]:
    """(set, candidate): the default's held-out-LF agreement gain over its reference and the accuracy gain."""
    out = []
    for name, r in res.items():
        d = r["models"].get("heldout", {})
        cands = d.get("candidates", [])
        ref = cands[0]["name"] if cands else "mv"
        for c in cands:
            if c["name"] == ref or c["name"] not in r["models"]:
                continue
            out.append({"set": name, "candidate": c["name"], "criterion_gain": c["gain_over_reference"],
                        "se": c["se"], "lfs_scored": c["lfs_scored"], "passes": c.get("passes"),
                        "accuracy_gain": r["models"][c["name"]]["acc"] - r["models"][ref]["acc"]})
    return out


def leave_one_set_out(res: dict) -> dict:
    """For each set: the variant that does best on the *other* sets (first the worst accuracy gap to majority
    vote, then the mean gap), and what it scores on the set left out."""
    names = list(res)
    variants = list(next(iter(res.values()))["variants"])
    gap = {v: np.array([res[n]["variants"][v]["acc"] - res[n]["models"]["mv"]["acc"] for n in names])
           for v in variants}
    out = {}
    for i, n in enumerate(names):
        rest = np.arange(len(names)) != i
        pick = max(variants, key=lambda v: (round(float(gap[v][rest].min()), 3), float(gap[v][rest].mean())))
        out[n] = {"chosen_on_the_others": pick, "acc": res[n]["variants"][pick]["acc"],
                  "gap_to_mv": float(gap[pick][i])}
    out["_summary"] = {v: {"worst_gap": float(gap[v].min()), "mean_gap": float(gap[v].mean())} for v in variants}
    return out


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")


def run(args) -> dict:
    warnings.filterwarnings("ignore")
    res = {}
    for name in set_names(args):
        t0 = time.perf_counter()
        vs = load(name)
        hard = hard_of(vs.L)
        r = {"k": vs.k, "lfs": int(hard.shape[1]), "rows_fit": int(hard.shape[0]), "rows_scored": len(vs.y_test),
             "coverage": float((hard_of(vs.L_test) >= 0).any(axis=1).mean()), "source": vs.source,
             "largest_class_share": float(np.bincount(vs.y_test, minlength=vs.k).max() / len(vs.y_test)),
             "models": {}}
        for spec in ([] if args.dev_only else args.models):
            if spec in ("onecoin-r", "ds-r") and vs.k >= EM_MAX_CLASSES:
                continue  # minutes per fit at 77 classes; the default does not run them there either
            r["models"][spec] = fit_score(spec, vs, args.seeds)
        if args.variants and not args.dev_only:
            r["variants"] = {v: fit_score(kw, vs, args.seeds) for v, kw in VARIANTS.items()}
        hyper = (hyperlm_available() and not args.no_hyperlm and not args.dev_only and hard.shape[0] <= 100_000
                 and vs.k <= 20)
        if hyper:
            r["models"]["hyperlm"] = fit_score("hyperlm", vs, args.seeds)
        if not args.no_snorkel and not args.dev_only:
            r["models"]["snorkel"] = snorkel_score(vs, args.seeds)
        if vs.L_dev is not None:
            r["models"][dev_key(args.dev_metric)] = fit_score("auto", vs, args.seeds, dev=True, metric=args.dev_metric)
            r["dev_rows"] = int(len(vs.y_dev))
            if hyper:
                r["models"]["hyperlm-semi (dev)"] = fit_score("hyperlm-dev", vs, args.seeds, dev=True)
        res[name] = r
        mv = r["models"]["mv"]["acc"] if "mv" in r["models"] else float("nan")
        print(f"[{name}] {time.perf_counter() - t0:.0f} s  MV {mv:.3f}  " + "  ".join(
            f"{m} {v['acc']:.3f}" for m, v in r["models"].items() if isinstance(v, dict) and m != "mv"), flush=True)
    return res


def command() -> str:
    """This run's command line, the script's path relative to the repository."""
    script = Path(sys.argv[0])
    return "python " + " ".join([str(script.relative_to(ROOT)) if script.is_absolute() else sys.argv[0]]
                                + sys.argv[1:])


def dev_key(metric: str) -> str:
    """The row name of auto with a dev set: ``auto (dev)`` chooses by accuracy, the default."""
    return "auto (dev)" if metric == "accuracy" else f"auto (dev, {metric})"


def merge_dev_rows(path: Path, res: dict, key: str = "auto (dev)") -> None:
    """Replace the ``auto (dev)`` rows of an earlier full run's JSON with this run's; the run is recorded in
    ``runs`` with the rows it replaced."""
    out = json.loads(path.read_text())
    before = {}
    for name, r in res.items():
        old = out["sets"][name]["models"].get(key)
        before[name] = {k: old.get(k) for k in ("acc", "macro_f1", "chosen")} if isinstance(old, dict) else None
        out["sets"][name]["models"][key] = r["models"][key]
    cmd = command()
    out.setdefault("runs", []).append({"command": cmd, "header": header(cmd), "replaced": key,
                                       "before": before})
    path.write_text(json.dumps(out, indent=1))
    from labelmodel_suite_report import write_markdown

    write_markdown(out, path.with_suffix(".md"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+")
    ap.add_argument("--models", nargs="+", default=NO_DEV)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--no-hyperlm", action="store_true")
    ap.add_argument("--no-snorkel", action="store_true")
    ap.add_argument("--variants", action="store_true", help="also score every VARIANTS setting (leave-one-set-out)")
    ap.add_argument("--out", default=None, help="write OUT.json (and OUT.md through labelmodel_report.py)")
    ap.add_argument("--dev-only", action="store_true", help="only the auto (dev) rows (with --merge)")
    ap.add_argument("--dev-metric", default="accuracy", choices=["accuracy", "macro_f1"],
                    help="what auto chooses by on the dev rows (macro_f1: the row 'auto (dev, macro_f1)')")
    ap.add_argument("--merge", default=None, help="replace the auto (dev) rows of this results JSON (and its .md)")
    args = ap.parse_args(argv)
    if args.merge and not args.dev_only:
        ap.error("--merge replaces the auto (dev) rows: pass --dev-only with it")
    res = run(args)
    if args.merge:
        merge_dev_rows(Path(args.merge), res, dev_key(args.dev_metric))
        return
    out = {"command": command(),
           "header": header("python " + " ".join(sys.argv)), "sets": res, "criterion": criterion_rows(res)}
    if args.variants:
        out["loso"] = leave_one_set_out(res)
    crit = out["criterion"]
    out["criterion_spearman"] = spearman([c["criterion_gain"] for c in crit], [c["accuracy_gain"] for c in crit])
    if args.out:
        Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1))
        from labelmodel_suite_report import write_markdown

        write_markdown(out, Path(args.out).with_suffix(".md"))
    print("criterion vs accuracy gain, Spearman over (set, candidate):", round(out["criterion_spearman"], 3))


if __name__ == "__main__":
    main()
