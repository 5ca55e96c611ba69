"""Would the mean of the net's reference and its tuned candidate ship? Out-of-fold, on every suite set's gold.

The tuned candidate (logistic regression on MiniLM tuned on the gold) scored 7.3 points above the plain probe on
average over the 14 test splits (eval/results/suite-tuned.md), but the net ships it on 4 only: its out-of-fold
lead on 100 gold rows rarely reaches 1.645 paired standard errors. Averaging the two models' probabilities is the
usual way to keep most of a stronger model's gain at a lower variance, and a blend agrees more with the reference,
so its paired standard error is smaller. This script measures whether that would let the net ship more: it
rebuilds, from each suite run folder (``python eval/suite.py ... --rows d``), the net's out-of-fold probabilities of
the probe, the tuned probe and the anchored probe on the gold alone (the same folds, halves of the tuned encoder
and label texts ``distill`` uses; the halves are read from the run folder, not refitted), scores the blends
(probe + tuned, and probe + tuned + anchored, probabilities averaged) and applies the net's rule: a blend ships
only if it leads the reference by more than 1.645 paired standard errors and is ahead of every recipe the net
scored (metrics.json). It changes no default.

    python eval/suite_blend.py --out eval/results/suite-blend
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from suite import SETS, WORK  # noqa: E402

BLENDS = {"probe+tuned": ("probe", "tuned"), "probe+tuned+anchored": ("probe", "tuned", "anchored")}


def one_set(name: str) -> dict:
    from llmlabel.artifacts.crossfit import read_crossfit_labels
    from llmlabel.distill import safety as S
    from llmlabel.distill.anchors import anchors_for
    from llmlabel.distill.api import make_student
    from llmlabel.distill.choice import MARGIN_SE, REFERENCE, paired_se
    from llmlabel.distill.data import read_labeled
    from llmlabel.distill.tuned_net import net_encoder

    run = WORK / name / "run-gold100"
    d = read_labeled(run / "labeled.parquet", min_per_class=1)
    cf = read_crossfit_labels(d.source)
    tuned, anchors = net_encoder(d, cf), anchors_for(d.classes, d.meta)

    def make(kind: str):
        return make_student(f"probe:{tuned.folder}" if kind == "tuned" else kind, seed=0, anchors=anchors)

    k, gold = len(d.classes), cf.gold
    g_keep, g_rows, s_keep, s_rows = S.matched_rows(d.ids, cf)
    g_fold, g_y = gold.fold[g_keep], gold.labels[g_keep]
    proba = cf.proba[:, s_keep]
    trainer = S._Trainer(make, list(d.texts), list(d.classes), tuned)
    trainer.prepare(np.concatenate([s_rows, g_rows]))
    onehot = np.eye(k, dtype=np.float32)[g_y]
    P = {st: trainer.oof_proba(S.Recipe(st, "none"), g_rows, g_fold, gold.folds, onehot, s_rows, proba,
                               proba.max(2), True) for st in ("probe", "tuned", "anchored")}
    P.update({b: np.mean([P[m] for m in parts], 0) for b, parts in BLENDS.items()})
    pred = {m: np.where(np.isnan(p).any(1), -1, np.nan_to_num(p).argmax(1)) for m, p in P.items()}
    net = json.loads((run / "model" / "metrics.json").read_text())["safety_net"]
    others = [r for r in net["candidates"] if (r["student"], r["weak"]) != (REFERENCE.student, REFERENCE.weak)]
    best = max(others, key=lambda r: r["accuracy"])
    ref = S.scores(g_y[pred["probe"] >= 0], pred["probe"][pred["probe"] >= 0], k)["accuracy"]
    rows = {}
    for m in P:
        ok = pred[m] >= 0
        sc = S.scores(g_y[ok], pred[m][ok], k)
        se = paired_se(pred[m], pred["probe"], g_y, k, "accuracy") if m != "probe" else 0.0
        passes = m != "probe" and sc["accuracy"] - ref > MARGIN_SE * se
        rows[m] = {"accuracy": sc["accuracy"], "macro_f1": sc["macro_f1"], "se_vs_probe": se, "passes": passes,
                   "ships": m in BLENDS and passes and sc["accuracy"] > best["accuracy"]}
    return {"oof": rows, "net_best_other": best, "shipped": net["chosen"]}


def write_markdown(out: dict, path: Path) -> None:
    lines = ["# Blends of the net's reference and its tuned candidate, out-of-fold on the gold", "", out["header"], "",
             f"Wall time {out['seconds']:,} s.", "", " ".join(__doc__.split("\n\n")[1].split()), "",
             "Out-of-fold accuracy on the suite's 100 gold rows (seed 0), each model trained on the gold alone; "
             "`se`: the paired standard error of the lead over the probe (the reference); `passes`: a lead of "
             "more than 1.645 se; `net's best other`: the best recipe other than the reference in the run's "
             "metrics.json; a blend ships only if it passes and is ahead of that.", "",
             "| set | probe | tuned | anchored | probe+tuned (se) | probe+tuned+anchored (se) | net's best other | "
             "shipped | a blend would ship |", "|---|---|---|---|---|---|---|---|---|"]
    n_ship = 0
    for name, r in out["sets"].items():
        o = r["oof"]

        def cell(m):
            return f"{o[m]['accuracy']:.2f} ({o[m]['se_vs_probe']:.3f}{', passes' if o[m]['passes'] else ''})"
        ships = [m for m in BLENDS if o[m]["ships"]]
        n_ship += bool(ships)
        b, c = r["net_best_other"], r["shipped"]
        lines.append(f"| {name} | {o['probe']['accuracy']:.2f} | {o['tuned']['accuracy']:.2f} | "
                     f"{o['anchored']['accuracy']:.2f} | {cell('probe+tuned')} | {cell('probe+tuned+anchored')} | "
                     f"{b['student']}, {b['weak']}: {b['accuracy']:.2f} | {c['student']}, {c['weak']} | "
                     f"{', '.join(ships) or 'no'} |")
    lines += ["", f"A blend would ship on {n_ship} of {len(out['sets'])} sets."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=[s for s in SETS if (WORK / s / "run-gold100").is_dir()])
    ap.add_argument("--out", type=Path, default=Path("eval/results/suite-blend"))
    ap.add_argument("--report", type=Path, help="rewrite the page from this run's json instead of running")
    args = ap.parse_args()
    if args.report:
        return write_markdown(json.loads(args.report.read_text()), args.report.with_suffix(".md"))
    command = "python eval/suite_blend.py " + " ".join(sys.argv[1:])
    t0, out = time.perf_counter(), {"header": header(command), "sets": {}}
    for name in args.sets:
        out["sets"][name] = one_set(name)
        print(name, {m: round(v["accuracy"], 3) for m, v in out["sets"][name]["oof"].items()}, flush=True)
    out["seconds"] = round(time.perf_counter() - t0)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    write_markdown(out, args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
