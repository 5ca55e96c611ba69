"""What the no-gold default chooses on every visible vote set, and how long it takes -> eval/results/labelmodel-choices.md

A regression check for changes that should not change the default's behaviour (speed work, refactors): it fits
``HeldOutSelect`` with its shipped defaults on the 26 vote sets of eval/labelmodel_suite.py (the same loaders),
records the chosen model, every candidate's held-out agreement, gain, standard error and LFs scored, the test
accuracy (ties and uncovered rows at random, mean of 5 seeds) and the fit seconds. ``--against OLD.json`` puts an
earlier run beside it and lists every set whose choice, accuracy or evidence moved.

    python eval/labelmodel_choices.py [--against OLD.json] [--out eval/results/labelmodel-choices]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header  # noqa: E402
from labelmodel_suite import hard_of, load, random_tie_scores, set_names  # noqa: E402

sys.path.insert(0, str(ROOT))
from llmlabel.labelmodel.heldout import HeldOutSelect  # noqa: E402


def run_set(name: str) -> dict:
    vs = load(name)
    t0 = time.perf_counter()
    model = HeldOutSelect(vs.k).fit(vs.L)
    sec = time.perf_counter() - t0
    proba = model.predict_proba(vs.L_test)
    acc = random_tie_scores(proba, (hard_of(vs.L_test) >= 0).any(axis=1), vs.y_test, vs.k, 5)["acc"]
    cands = {r["name"]: {"heldout_agreement": r["heldout_agreement"], "gain": r["gain_over_reference"],
                         "se": r["se"], "lfs_scored": r["lfs_scored"]} for r in model.selection_["candidates"]}
    return {"chosen": model.chosen_, "acc": acc, "fit_seconds": round(sec, 2),
            "rows_scored": model.selection_["rows_scored"], "candidates": cands}


def moved(a: dict, b: dict, tol: float = 1e-9) -> list[str]:
    out = []
    if a["chosen"] != b["chosen"]:
        out.append(f"chose {a['chosen']} -> {b['chosen']}")
    if abs(a["acc"] - b["acc"]) > tol:
        out.append(f"accuracy {a['acc']:.4f} -> {b['acc']:.4f}")
    for c, old in a["candidates"].items():
        new = b["candidates"].get(c)
        if new and any(old[f] is not None and new[f] is not None and abs(old[f] - new[f]) > 1e-6
                       for f in ("heldout_agreement", "gain")):
            out.append(f"{c} evidence {old['gain']:+.4f} -> {new['gain']:+.4f}")
    return out


def render(res: dict, old: dict | None) -> str:
    lines = ["# The no-gold default's choice on every visible vote set", "", res["header"], "",
             "| set | chosen | test accuracy | rows scored | fit s |" + (" before: chosen | before: fit s | what moved |"
                                                                        if old else ""),
             "|---|---|---|---|---|" + ("---|---|---|" if old else "")]
    for name, r in res["sets"].items():
        row = f"| {name} | {r['chosen']} | {r['acc']:.4f} | {r['rows_scored']:,} | {r['fit_seconds']:.2f} |"
        if old and name in old["sets"]:
            o = old["sets"][name]
            row += f" {o['chosen']} | {o['fit_seconds']:.2f} | {'; '.join(moved(o, r)) or 'nothing'} |"
        lines.append(row)
    if old:
        same = sum(1 for n, r in res["sets"].items() if n in old["sets"] and old["sets"][n]["chosen"] == r["chosen"])
        lines += ["", f"Same choice as `{res['against']}` on {same} of {len(res['sets'])} sets."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+")
    ap.add_argument("--against", default=None, help="an earlier OUT.json to compare with")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "labelmodel-choices"))
    args = ap.parse_args()
    command = "python eval/labelmodel_choices.py " + " ".join(sys.argv[1:])
    res = {"command": command.strip(), "header": header(command.strip()) + f" Load average {os.getloadavg()[0]:.1f}.",
           "against": args.against, "sets": {}}
    for name in set_names(args):
        res["sets"][name] = run_set(name)
        print(name, res["sets"][name]["chosen"], round(res["sets"][name]["acc"], 4), res["sets"][name]["fit_seconds"],
              flush=True)
    old = json.loads(Path(args.against).read_text()) if args.against else None
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(render(res, old))
    print(render(res, old))


if __name__ == "__main__":
    main()
