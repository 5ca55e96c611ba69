"""One half of the net's tuned encoder (50 gold rows, the default settings) fine-tuned at 1 and 2 torch threads:
would the two halves gain from running side by side, one core each? (issue 24's cost)

    python eval/tuned_threads.py --sets trec youtube irony --repeats 2 --out eval/results/tuned-threads

Each fit runs in its own process (torch's thread pool is per process), alternating 2 and 1 threads; it reports the
training seconds ``tune_encoder`` records, and the process's wall and CPU seconds (imports and the base model's
loading included). The gold: 50 corpus rows drawn with seed 0, anchors from the set's label texts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(name: str, threads: int, out: str) -> dict:
    """The fit itself, in this process (``--one``)."""
    import numpy as np

    from _common import LOADERS
    from llmlabel.tuned.train import TuneSettings, anchor_texts, tune_encoder

    w0, c0 = time.perf_counter(), time.process_time()
    b = LOADERS[name]()
    idx = np.random.default_rng(0).choice(len(b.corpus_texts), 50, replace=False)
    anchors = anchor_texts(list(b.labels), [b.descriptions.get(n, "") for n in b.labels])
    facts = tune_encoder("minilm", [b.corpus_texts[i] for i in idx], np.asarray(b.corpus_y)[idx], anchors,
                         TuneSettings(), out, threads=threads)
    return {"set": name, "threads": threads, "train_s": facts["seconds"], "steps": facts["steps"],
            "process_wall_s": round(time.perf_counter() - w0, 1), "process_cpu_s": round(time.process_time() - c0, 1)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["trec", "youtube", "irony"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "tuned-threads"))
    ap.add_argument("--one", nargs=3, metavar=("SET", "THREADS", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.one[2])))
        return
    from _common import header

    rows = []
    for name in args.sets:
        for _ in range(args.repeats):
            for threads in (2, 1):
                cmd = [sys.executable, __file__, "--one", name, str(threads), f"/tmp/tuned-threads-{name}"]
                got = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows.append(json.loads(got.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    command = "python eval/tuned_threads.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# One half of the tuned encoder at 1 and 2 torch threads", "", header(command), "",
             "| set | threads | training s | process wall s | process CPU s |", "|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['threads']} | {r['train_s']} | {r['process_wall_s']} | {r['process_cpu_s']} |"
              for r in rows]
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
