"""How large a lead the safety net must see before it leaves logistic regression on the gold, judged on the suite.

The net ships its reference (the probe on the gold alone) unless the best other recipe leads it out-of-fold by more
than m paired standard errors. For every m >= 1 the outcome of each set is known from one suite run at m = 1: the
best other recipe does not depend on m, so it ships when its z = lead / se (in metrics.json's verdict) is above m,
and otherwise the reference ships, whose test score this script computes (the probe on the 100 gold rows, as
``distill`` fits it, on the suite's cached MiniLM embeddings). Leave-one-set-out: m chosen on the other sets by the
mean gain over (c) LR on the gold, then applied to the set left out.

    python eval/suite_margin.py --suite eval/results/suite-margin1.json --runs /tmp/suite-m1 /tmp/llmlabel-suite
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from suite import LOADERS, WORK, _embed, metrics  # noqa: E402

MARGINS = (1.0, 1.645, 2.0, 2.5)


def reference_on_test(name: str) -> dict:
    """The net's reference, fitted as ``distill`` fits it: the probe head on the 100 gold rows."""
    from llmlabel.distill.api import make_student

    b = LOADERS[name]()
    rows = [json.loads(x) for x in (WORK / name / "gold-100-0.jsonl").read_text().splitlines() if x.strip()]
    classes = list(b.labels)
    y = np.array([classes.index(r["label"]) for r in rows])
    st = make_student("probe", seed=0)
    st.classes_ = classes
    st.fit_features(_embed([r["text"] for r in rows]), np.eye(len(classes), dtype=np.float32)[y],
                    np.ones(len(y), np.float32))
    return metrics(b, st.logits_from_features(_embed(b.test_texts)).argmax(1))


def lead(folder: Path) -> tuple[float, dict]:
    net = json.loads((folder / "model" / "metrics.json").read_text())["safety_net"]
    v = net["verdict"]
    gain = float(re.search(r"([+-]\d+\.\d) points", v).group(1))
    se = float(re.search(r"se (\d+\.\d)", v).group(1))
    return (gain / se if se > 0 else float("inf")), net["chosen"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", required=True, help="suite.json of the run at one standard error")
    ap.add_argument("--runs", nargs="+", type=Path, required=True,
                    help="folders holding <set>/run-gold100 of that run (the first that has a set wins)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite-margin.md")
    args = ap.parse_args(argv)
    rows = json.loads(Path(args.suite).read_text())["rows"]
    sets = [k.split("|")[0] for k in rows if k.endswith("|d|100|0")]
    res = {}
    for s in sets:
        folder = next(r / s / "run-gold100" for r in args.runs if (r / s / "run-gold100" / "model").is_dir())
        z, chosen = lead(folder)
        res[s] = {"z": z, "chosen": chosen, "d": rows[f"{s}|d|100|0"]["official"],
                  "c": rows[f"{s}|c_lr|100|0"]["official"], "ref": reference_on_test(s)["official"]}
        print(s, res[s], flush=True)

    def out(s, m):
        return res[s]["d"] if res[s]["z"] > m else res[s]["ref"]

    lines = ["# The safety net's margin over LR on the gold, judged on the suite", "",
             header("python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:])), "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Test score of what ships at margin m (official metric); z: the best other recipe's out-of-fold lead "
             "over the reference in paired standard errors.", "",
             "| set | best other recipe | z | " + " | ".join(f"m = {m}" for m in MARGINS) + " | (c) LR on gold |",
             "|---|---|---|" + "---|" * len(MARGINS) + "---|"]
    for s in sets:
        ch = res[s]["chosen"]
        name = "(the reference)" if ch == {"student": "probe", "weak": "none"} else f"{ch['student']}, {ch['weak']}"
        lines.append(f"| {s} | {name} | {res[s]['z']:.2f} | " + " | ".join(f"{out(s, m):.3f}" for m in MARGINS)
                     + f" | {res[s]['c']:.3f} |")
    lines.append("")
    for m in MARGINS:
        g = [100 * (out(s, m) - res[s]["c"]) for s in sets]
        lines.append(f"- m = {m}: mean (d) - (c) {np.mean(g):+.2f} points; (d) >= (c) - 1 on {sum(x >= -1 for x in g)} "
                     f"of {len(g)}; >= (c) + 3 on {sum(x >= 3 for x in g)}; worst {min(g):+.1f}")
    loso = []
    for s in sets:
        rest = [t for t in sets if t != s]
        m = max(MARGINS, key=lambda m: (sum(out(t, m) - res[t]["c"] for t in rest), -m))
        loso.append(f"{s}: m = {m}, {100 * (out(s, m) - res[s]['c']):+.1f}")
    lines += ["", "Leave-one-set-out (m chosen on the other 13 sets by mean gain over (c)): " + "; ".join(loso) + "."]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
