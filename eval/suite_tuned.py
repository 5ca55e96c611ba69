"""What the net's ``tuned`` candidate scores on each suite set's test split when it ships.

The safety net ships its reference unless another recipe leads it out-of-fold by 1.645 paired standard errors.
The reference is logistic regression on frozen MiniLM (the gold alone); the ``tuned`` candidate (the same head on
MiniLM tuned on the gold, :mod:`llmlabel.tuned`) is scored out-of-fold on the encoder's two halves, and its full
fit is made only when it ships. This script makes that full fit for every set (the settings, gold rows and label
anchors the chain's net uses: the 100 gold rows of the suite run and ``anchors_for`` of its labeled file), fits
the head as ``distill`` does and scores the test split beside the plain probe's. It measured the case for a tuned
reference (tried at commit b8f85b7 and not kept: eval/results/suite.md, the tenth note); it changes no default, and
it reads the suite's run folders (``python eval/suite.py ... --rows d``) for the gold and the label texts.

    python eval/suite_tuned.py --out eval/results/suite-tuned
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from suite import LOADERS, SETS, WORK, metrics  # noqa: E402
from suite_margin import reference_on_test  # noqa: E402


def tuned_on_test(name: str, folder: Path, settings=None) -> tuple[dict, object, float, float]:
    """The net's full fit of the tuned encoder on the suite run's gold (``settings``: ``TuneSettings``, default the
    net's) into ``folder``, the probe head on it as ``distill`` fits it, and the test split's metrics. Returns
    ``(metrics, encoder, fit seconds, fit CPU seconds)``."""
    from llmlabel.distill.anchors import anchors_for
    from llmlabel.distill.api import make_student
    from llmlabel.distill.data import read_labeled
    from llmlabel.tuned import TunedEncoder

    b = LOADERS[name]()
    d = read_labeled(WORK / name / "run-gold100" / "labeled.parquet", min_per_class=0)
    rows = [json.loads(x) for x in (WORK / name / "gold-100-0.jsonl").read_text().splitlines() if x.strip()]
    classes = list(b.labels)
    if list(d.classes) != classes:
        raise SystemExit(f"{name}: the run's classes differ from the set's")
    texts = [r["text"] for r in rows]
    y = np.array([classes.index(r["label"]) for r in rows])
    t0, c0 = time.perf_counter(), time.process_time()
    enc = TunedEncoder.fit(folder, texts=texts, y=y, labels=classes, anchors=anchors_for(d.classes, d.meta),
                           halves=False, full=True, **({"settings": settings} if settings is not None else {}))
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    st = make_student(f"probe:{enc.folder}", seed=0)  # what distill ships when the tuned candidate wins
    st.classes_ = classes
    st.fit_features(st.features(texts), np.eye(len(classes), dtype=np.float32)[y], np.ones(len(y), np.float32))
    return metrics(b, st.logits_from_features(st.features(b.test_texts)).argmax(1)), enc, fit_s, fit_cpu


def one_set(name: str, fits: Path) -> dict:
    tuned, enc, fit_s, fit_cpu = tuned_on_test(name, fits / name)
    return {"tuned": tuned, "lr": reference_on_test(name), "fit_seconds": round(fit_s, 1),
            "fit_cpu_seconds": round(fit_cpu, 1), "recorded_seconds": enc.seconds()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--suite", type=Path, default=Path(__file__).parent / "results" / "suite.json")
    ap.add_argument("--fits", type=Path, default=Path("/tmp/llmlabel-suite-tuned"),
                    help="where the full fits go (reused when their inputs match)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite-tuned")
    ap.add_argument("--suite-note", default="", help="what the --suite file is, said under the table")
    ap.add_argument("--report", type=Path, help="only write the table again from this script's .json")
    args = ap.parse_args(argv)
    suite = json.loads(args.suite.read_text())["rows"]
    if args.report:
        old = json.loads(args.report.read_text())
        cmd, secs, (load0, load1), res = old["command"], old["seconds"], old["load"], old["sets"]
        head = old["header"]
        args.sets = list(res)
    else:
        cmd = "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:])
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        res = {}
        for s in args.sets:
            res[s] = one_set(s, args.fits)
            print(s, res[s], flush=True)
        secs, load1, head = time.perf_counter() - t0, os.getloadavg()[0], header(cmd)
        args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "header": head, "seconds": round(secs),
                                                             "load": [load0, load1], "sets": res}, indent=1) + "\n",
                                                 encoding="utf-8")

    def off(s, row):
        r = suite.get(f"{s}|{row}|100|0")
        return None if r is None else r["official"]

    lines = ["# The net's tuned candidate on the test split, when it ships", "", head, "",
             f"Wall time {secs:.0f} s; load average {load0:.1f} at the start, {load1:.1f} at the end.", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Official metric, test split, the suite's 100 gold rows (seed 0). `LR` is the probe head on frozen "
             "MiniLM as `distill` fits it (the plain probe, the net's reference); `(c)` the "
             "suite's row, scikit-learn's logistic regression on the same embeddings; `tuned` is the tuned encoder's "
             "full fit + the same head; (d) and SetFit are the suite's rows ([suite.md](suite.md)); `shipped` what (d) "
             "shipped; `full fit s`: the full fit's training seconds as recorded when it was made.", "",
             "| set | (c) | LR on gold | tuned on gold | tuned - LR | SetFit | (d) chain | shipped | full fit s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in args.sets:
        r, d = res[s], suite.get(f"{s}|d|100|0", {})
        ch = (d.get("safety_net") or {}).get("chosen") or {}
        sf = off(s, "c_setfit")
        c = off(s, "c_lr")
        lines.append(f"| {s} | {'–' if c is None else f'{c:.3f}'} | {r['lr']['official']:.3f} | "
                     f"{r['tuned']['official']:.3f} | "
                     f"{100 * (r['tuned']['official'] - r['lr']['official']):+.1f} | "
                     f"{'–' if sf is None else f'{sf:.3f}'} | {d.get('official', float('nan')):.3f} | "
                     f"{ch.get('student', '?')}, {ch.get('weak', '?')} | {r['recorded_seconds']:.0f} |")
    g = [100 * (res[s]["tuned"]["official"] - res[s]["lr"]["official"]) for s in args.sets]
    lines += ["", f"tuned - LR over {len(g)} sets: mean {np.mean(g):+.1f} points, worst {min(g):+.1f}, "
              f"ahead by a point or more on {sum(x >= 1 for x in g)}, behind by a point or more on "
              f"{sum(x <= -1 for x in g)}."]
    if args.suite_note:
        lines += ["", f"The (d), SetFit and (c) columns: {args.suite_note}"]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
