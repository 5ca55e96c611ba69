"""Does the suite's gold trip the safety net's missing-class rule? -> eval/results/suite-gold-coverage.md

The net weighs only recipes with the weak rows when the gold has no row of a class that the label model gives so
many items that a random sample of that many gold rows would miss it with probability below 0.01 / k
(:func:`llmlabel.distill.safety.unrepresented`). Read from the run folders eval/suite.py leaves (its (d) rows,
``$LLMLABEL_SUITE_WORK/<set>/run-gold100``), with the same function the net calls; a set that trips nothing ships
what the suite's table says, so the table stands.

    python eval/suite.py --rows d ...   # first: it makes the run folders
    python eval/suite_gold_coverage.py [--sets ...] [--out eval/results/suite-gold-coverage]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header  # noqa: E402
from suite import SETS, WORK  # noqa: E402

sys.path.insert(0, str(ROOT))
from llmlabel.artifacts.crossfit import read_crossfit_labels  # noqa: E402
from llmlabel.distill.data import read_labeled  # noqa: E402
from llmlabel.distill.safety import UNREPRESENTED_P, matched_rows, unrepresented  # noqa: E402


def coverage(run: Path) -> dict:
    d = read_labeled(run / "labeled.parquet", min_per_class=1)
    cf = read_crossfit_labels(run / "labeled.parquet")
    g_keep, _, s_keep, _ = matched_rows(d.ids, cf)
    y = cf.gold.labels[g_keep]
    fair = cf.gold.fair[g_keep] if cf.gold.fair is not None else np.ones(len(y), bool)
    k = len(d.classes)
    flagged, share = unrepresented(y[fair], cf.proba[:, s_keep], k)
    absent = np.setdiff1d(np.arange(k), y[fair])
    chance = (1.0 - share[absent]) ** int(fair.sum())
    return {"classes": k, "fair_gold": int(fair.sum()), "absent": len(absent),
            "absent_share": round(float(share[absent].sum()), 3),
            "least_likely_miss": round(float(chance.min()), 4) if len(absent) else None,
            "flagged": [d.classes[j] for j in flagged]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "suite-gold-coverage"))
    args = ap.parse_args(argv)
    rows = {s: coverage(WORK / s / "run-gold100") for s in args.sets}
    cmd = "python eval/suite_gold_coverage.py" + (f" --sets {' '.join(args.sets)}" if args.sets != SETS else "")
    Path(args.out + ".json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1) + "\n")
    md = [f"# The suite's gold against the safety net's missing-class rule\n", header(cmd), "",
          f"A class is flagged when the gold has none of it and a random sample of that many gold rows would miss it "
          f"with probability below {UNREPRESENTED_P:g} / k, at the share the label model gives it. Flagged classes "
          "make the net weigh only recipes with the weak rows.", "",
          "| set | classes | fair gold rows | classes without gold | their share of the weak labels | "
          "least likely miss | flagged |", "|---|---|---|---|---|---|---|"]
    for s, r in rows.items():
        least = "–" if r["least_likely_miss"] is None else f"{r['least_likely_miss']:.3g}"
        md.append(f"| {s} | {r['classes']} | {r['fair_gold']} | {r['absent']} | {r['absent_share']:.3f} | {least} | "
                  f"{', '.join(r['flagged']) or 'none'} |")
    n_flag = sum(bool(r["flagged"]) for r in rows.values())
    md += ["", f"Sets with a flagged class: {n_flag} of {len(rows)}."]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
