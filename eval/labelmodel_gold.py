"""What `llmlabel aggregate --gold` costs with many classes -> eval/results/labelmodel-gold.md (+ .json).

Above 100,000 confusion parameters (LFs x classes x classes) the default candidate list leaves out the full
Dawid-Skene models and cross-fits with 3 folds instead of 5 (llmlabel/labelmodel/select.py,
FULL_DS_MAX_PARAMS; until 2026-12-06 the rule was 21+ classes). This times the
selection + out-of-fold reliability step both ways, in the same process, on a synthetic matrix shaped like
the README's banking77 chain (77 classes: three broad LFs + one key-phrase LF per class), and reports what
each chose and its out-of-fold dev accuracy, so the saving is not bought with a worse model.

    python eval/labelmodel_gold.py [--n 3000] [--gold 300] [--classes 77]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402  (one machine description for every results file)

sys.path.insert(0, str(ROOT))

from llmlabel.labelmodel.gold import cross_fitted  # noqa: E402
from llmlabel.labelmodel.select import DEFAULT_CANDIDATES, FULL_DS, select_label_model  # noqa: E402


def synth(n: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    cols = []
    for a in (0.7, 0.6, 0.5):  # broad LFs (an LLM, an embedding LF, a kNN LF)
        v = np.where(rng.random(n) < a, y, rng.integers(0, k, n))
        v[rng.random(n) > 0.95] = -1
        cols.append(v)
    for c in range(k):  # one key-phrase LF per class: recall 0.3, a few false hits
        cols.append(np.where(rng.random(n) < np.where(y == c, 0.3, 0.003), c, -1))
    return np.stack(cols, axis=1), y


def run(L, y, train, sel, candidates, n_folds: int) -> dict:
    from llmlabel.artifacts.matrix import LabelMatrix

    k = int(y.max() + 1)
    t0 = time.perf_counter()
    model = select_label_model(L[train], L[sel], y[sel], candidates, cardinality=k, n_folds=n_folds)
    rep = model.report_
    Lm = LabelMatrix(L[train], [f"lf{j}" for j in range(L.shape[1])], labels=[str(c) for c in range(k)])
    Ls = LabelMatrix(L[sel], Lm.lf_names, labels=Lm.labels)
    raw, cal = cross_fitted(Lm, Ls, y[sel], rep["chosen"], rep["calibration"], n_folds=rep.get("n_folds", n_folds))
    return {"seconds": time.perf_counter() - t0, "chosen": rep["chosen"], "calibration": rep["calibration"],
            "n_folds": rep.get("n_folds", n_folds), "candidates": [c["name"] for c in rep["candidates"]],
            "oof_dev_accuracy": float((cal.argmax(1) == y[sel]).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--gold", type=int, default=300)
    ap.add_argument("--classes", type=int, default=77)
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "labelmodel-gold"))
    args = ap.parse_args()
    L, y = synth(args.n + args.gold, args.classes)
    train, sel = np.arange(args.n), np.arange(args.n, args.n + args.gold)
    res = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + sys.argv[1:]),
           "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
           "n": args.n, "gold": args.gold,
           "classes": args.classes, "lfs": int(L.shape[1])}
    full = list(DEFAULT_CANDIDATES)  # the same names, but not the default tuple itself: no reduction
    res["every_candidate_5_folds"] = run(L, y, train, sel, full, 5)
    print(res["every_candidate_5_folds"], flush=True)
    res["default"] = run(L, y, train, sel, DEFAULT_CANDIDATES, 5)
    print(res["default"], flush=True)
    res["load_average"] = os.getloadavg()
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    a, b = res["every_candidate_5_folds"], res["default"]
    md = ["# `aggregate --gold` with many classes: selection + cross-fitted reliability", "",
          f"Made by `{res['command']}` on {res['date']}; machine: {res['machine']}; load average "
          f"{', '.join(f'{x:.1f}' for x in res['load_average'])}. Synthetic votes: {args.n:,} items, {res['lfs']} LFs "
          f"(3 broad + one key-phrase LF per class), {args.classes} classes, {args.gold} gold items as the dev set. "
          f"Both runs in one process; the default leaves out {', '.join(FULL_DS)} and uses 3 folds from 21 classes on "
          "(the no-dev default's own many-class reduction, no ds-r inside 'heldout', applies to both runs).",
          "", "| run | seconds | folds | chose | out-of-fold dev accuracy | candidates |", "|---|---|---|---|---|---|"]
    for name, r in (("every default candidate, 5 folds (before)", a), ("default: many-class reductions", b)):
        md.append(f"| {name} | {r['seconds']:.1f} | {r['n_folds']} | {r['chosen']} + {r['calibration']} | "
                  f"{r['oof_dev_accuracy']:.3f} | {', '.join(r['candidates'])} |")
    md += ["", f"{a['seconds'] / b['seconds']:.1f}x faster.", ""]
    out.with_suffix(".md").write_text("\n".join(md))
    print("wrote", out.with_suffix(".md"))


if __name__ == "__main__":
    main()
