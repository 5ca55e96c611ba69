"""How much the net's tuned candidate, fitted on all the gold, varies with its seed (dropout masks, batch order).

Reads a suite run folder's gold and label texts (``python eval/suite.py --sets SET --rows d``), fits the tuned
encoder as the net's full fit does with ``TuneSettings(seed=s)`` for each seed, fits the probe head as ``distill``
does and prints the test split's official figure. Run it with each code on ``PYTHONPATH`` to compare two versions
of the fine-tuning beyond one seed (eval/results/suite-passes.md).

    python eval/suite_tuned_seeds.py trec 0 1 2 3
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from suite import LOADERS, WORK, metrics  # noqa: E402


def main(argv=None) -> None:
    from llmlabel.distill.anchors import anchors_for
    from llmlabel.distill.api import make_student
    from llmlabel.distill.data import read_labeled
    from llmlabel.tuned import TunedEncoder, TuneSettings

    args = sys.argv[1:] if argv is None else argv
    name, seeds = args[0], [int(s) for s in args[1:]] or [0]
    b = LOADERS[name]()
    d = read_labeled(WORK / name / "run-gold100" / "labeled.parquet", min_per_class=0)
    rows = [json.loads(x) for x in (WORK / name / "gold-100-0.jsonl").read_text().splitlines() if x.strip()]
    classes = list(b.labels)
    texts = [r["text"] for r in rows]
    y = np.array([classes.index(r["label"]) for r in rows])
    scores = []
    for seed in seeds:
        enc = TunedEncoder.fit(Path(tempfile.mkdtemp()) / "encoder", texts=texts, y=y, labels=classes,
                               anchors=anchors_for(d.classes, d.meta), halves=False, full=True,
                               settings=TuneSettings(seed=seed))
        st = make_student(f"probe:{enc.folder}", seed=0)  # what distill ships when the tuned candidate wins
        st.classes_ = classes
        st.fit_features(st.features(texts), np.eye(len(classes), dtype=np.float32)[y], np.ones(len(y), np.float32))
        scores.append(metrics(b, st.logits_from_features(st.features(b.test_texts)).argmax(1))["official"])
        print(f"{name} seed {seed}: {scores[-1]:.4f}", flush=True)
    print(f"{name}: mean {np.mean(scores):.4f}, sd {np.std(scores, ddof=1) if len(scores) > 1 else 0.0:.4f} "
          f"over {len(scores)} seeds")


if __name__ == "__main__":
    main()
