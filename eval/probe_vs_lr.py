"""The safety net's reference against the baseline it stands for: the probe head on the gold (as ``distill`` fits
it) beside scikit-learn's ``LogisticRegression(C=10)`` on the same embeddings, on every suite set and several draws.

The net ships its reference, "logistic regression on your gold", unless another recipe leads it out-of-fold by
1.645 paired standard errors, so the floor (the chain at least that baseline - 1 point) holds by construction only
if the reference *is* that baseline. With two classes the probe's softmax head has two weight rows where
scikit-learn's binary model has one; at the same L2 penalty per row it was scikit-learn's model at twice the C.
This script scores the head before the fix (``head 2C``: the penalty halved for two classes, as it was) and as
``distill`` fits it now, minus the suite's (c), for the 100-row gold of seeds 0-2 (the suite's draw).

    python eval/probe_vs_lr.py --out eval/results/probe-vs-lr
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from suite import LOADERS, SETS, _embed, draw_gold, lr_on_gold, metrics  # noqa: E402

C = 10.0  # the C of the suite's (c) row (suite.lr_on_gold) and of the probe's single-label default


def one(name: str, seeds: list[int]) -> dict:
    from llmlabel.distill.probe import ProbeStudent, _unit, fit_linear_head

    b = LOADERS[name]()
    k = len(b.labels)
    test = _unit(_embed(b.test_texts))
    out = {}
    for seed in seeds:
        g = draw_gold(len(b.corpus_texts), 100, seed)
        y = np.asarray(b.corpus_y)[g]
        if len(np.unique(y)) < 2:
            continue
        X = _unit(_embed([b.corpus_texts[i] for i in g]))
        row = {"c": lr_on_gold(b, g)["official"]}  # the suite's (c) row itself
        T, w = np.eye(k, dtype=np.float32)[y], np.ones(len(y), np.float32)
        st = ProbeStudent(C=C, seed=0)
        st.classes_ = list(b.labels)
        st.fit_features(X, T, w)
        row["head"] = metrics(b, st.logits_from_features(test).argmax(1))["official"]
        # as it was: the same per-row penalty for two classes (fit_linear_head doubles it now)
        W, bias = fit_linear_head(X, T, w, (0.5 if k == 2 else 1.0) / (C * len(y)))
        row["head 2C" if k == 2 else "head (unchanged)"] = metrics(b, (test @ W.T + bias).argmax(1))["official"]
        out[str(seed)] = row
    return {"classes": k, "metric": b.metric, "draws": out}


def report(res: dict, head: str) -> str:
    lines = ["# The safety net's reference against logistic regression on the gold", "", head, "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Official metric on the test split; each cell `head - (c)` in points, for seeds 0 / 1 / 2.", "",
             "| set | classes | (c) at seeds 0 / 1 / 2 | before: head 2C - (c) | now: head - (c) |",
             "|---|---|---|---|---|"]
    before, now = [], []
    for s, r in res.items():
        d = r["draws"]
        old = [100 * (x.get("head 2C", x.get("head (unchanged)")) - x["c"]) for x in d.values()]
        new = [100 * (x["head"] - x["c"]) for x in d.values()]
        before += old
        now += new
        lines.append(f"| {s} | {r['classes']} | " + " / ".join(f"{x['c']:.3f}" for x in d.values()) + " | "
                     + " / ".join(f"{v:+.1f}" for v in old) + " | " + " / ".join(f"{v:+.1f}" for v in new) + " |")
    for name, v in (("before", before), ("now", now)):
        v = np.array(v)
        lines.append("")
        lines.append(f"{name}: {len(v)} set-draws, more than a point below (c) on {int((v < -1).sum())}, worst "
                     f"{v.min():+.1f}, largest gap either way {np.abs(v).max():.1f} points.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe-vs-lr")
    args = ap.parse_args(argv)
    cmd = "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:])
    res = {s: one(s, args.seeds) for s in args.sets}
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "sets": res}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(report(res, header(cmd)), encoding="utf-8")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
