"""How much the net's tuned candidate, fitted on all the gold, varies with its seed (dropout masks, batch order).

Reads a suite run folder's gold and label texts (``python eval/suite.py --sets SET --rows d``), fits the tuned
encoder as the net's full fit does with ``TuneSettings(seed=s)`` for each seed, fits the probe head as ``distill``
does and prints the test split's official figure (``suite_tuned.tuned_on_test``). Run it with each code on
``PYTHONPATH`` to compare two versions of the fine-tuning beyond one seed (eval/results/suite-passes.md).

    python eval/suite_tuned_seeds.py trec 0 1 2 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from suite import SETS  # noqa: E402
from suite_tuned import tuned_on_test  # noqa: E402


def main(argv=None) -> None:
    from llmlabel.tuned import TuneSettings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set", choices=SETS)
    ap.add_argument("seeds", nargs="*", type=int, default=[0])
    args = ap.parse_args(argv)
    scores = []
    for seed in args.seeds:
        m, *_ = tuned_on_test(args.set, Path(tempfile.mkdtemp()) / "encoder", TuneSettings(seed=seed))
        scores.append(m["official"])
        print(f"{args.set} seed {seed}: {scores[-1]:.4f}", flush=True)
    sd = np.std(scores, ddof=1) if len(scores) > 1 else 0.0
    print(f"{args.set}: mean {np.mean(scores):.4f}, sd {sd:.4f} over {len(scores)} seeds")


if __name__ == "__main__":
    main()
