"""Local backend vs Ray Data (1 and 2 actors) for an embedding LF and a tiny-LLM prompted LF, on one machine.

    PYTHONPATH=$PWD python eval/bench_ray.py                       # writes eval/results/ray.md
    PYTHONPATH=$PWD python eval/bench_ray.py --n-emb 500 --n-llm 200 --out /tmp/ray.md

Texts: the first N AG News test rows (title + description) from $LLMLABEL_EVAL_DATA/agnews (the warm local
run: the next N rows). Every run writes a fresh votes folder and no LLM answer is in a cache before it runs. All timings come from
this one process, with one local Ray (``num_cpus`` = the machine's cores) started once; each Ray figure is
the wall time of one ``label_corpus_ray`` call, so it includes starting the actors and loading their models.
``local (warm)`` is a second local run with the models already loaded in this process; ``local (cold)``
loads them. The driver's write rate (votes folder) is measured on its own, as it bounds how many replicas
one driver can feed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

TAXONOMY = """labels:
  - {id: world, name: World, description: "International news: politics, elections, wars, diplomacy."}
  - {id: sports, name: Sports, description: "Games, teams, players, matches and tournaments."}
  - {id: business, name: Business, description: "Companies, markets, stocks, the economy and oil prices."}
  - {id: scitech, name: Sci/Tech, description: "Science, technology, computers, software, space and the internet."}
"""


def agnews(n: int) -> list[dict]:
    from _common import DATA as root  # the one data path: $LLMLABEL_EVAL_DATA or ../shared/data
    with open(root / "agnews" / "test.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # past the 7,600 rows the texts repeat (with new ids): only the keyword run asks for that many
    return [{"id": f"ag{i}", "text": f"{rows[i % len(rows)]['Title']}. {rows[i % len(rows)]['Description']}"}
            for i in range(n)]


def timed(fn):
    t0 = time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, res


def bench_lfs(tmp: Path, name: str, lfs_yaml: str, n: int, workers: list[int], shard: int) -> list[dict]:
    from llmlabel.lf import embedding
    from llmlabel.lf.run import label_corpus
    from llmlabel.scale.ray import label_corpus_ray

    rows = agnews(2 * n)
    data = tmp / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]))
    # The warm local run labels the next n rows: same work, models loaded, and no answer in any cache.
    other = tmp / f"{name}-next.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows[n:]))
    (tmp / f"{name}.yaml").write_text(lfs_yaml)
    out = []
    embedding._EMBEDDERS.clear()  # (engines are built per label_corpus call: nothing to clear for them)
    os.environ["LLMLABEL_CACHE"] = str(tmp / f"cache-{name}-local.sqlite")
    for run, src in (("local (cold)", data), ("local (warm)", other)):
        sec, res = timed(lambda: label_corpus(src, tmp / "taxonomy.yaml", tmp / f"{name}.yaml",
                                              tmp / f"v-{name}-{run[7:11]}", shard_size=shard))
        out.append({"lf": name, "run": run, "items": res["rows_labeled"], "seconds": sec})
    for w in workers:
        sec, res = timed(lambda: label_corpus_ray(data, tmp / "taxonomy.yaml", tmp / f"{name}.yaml",
                                                  tmp / f"v-{name}-ray{w}", shard_size=shard, num_workers=w,
                                                  cache=tmp / f"cache-{name}-ray{w}.sqlite"))
        out.append({"lf": name, "run": f"ray, {w} actor{'s' if w > 1 else ''}", "items": res["rows_labeled"],
                    "seconds": sec})
    base = next(r["seconds"] for r in out if r["run"] == "local (warm)")
    for r in out:
        r["items_per_s"] = r["items"] / r["seconds"]
        r["vs_local_warm"] = base / r["seconds"]
    return out


def driver_write_rate(tmp: Path, n: int = 100_000, m: int = 5, k: int = 4, block: int = 10_000) -> float:
    """Rows/s the driver writes into a votes folder (VotesWriter): m LFs, the first with probabilities."""
    import numpy as np

    from llmlabel.artifacts.matrix import LabelMatrix
    from llmlabel.artifacts.votes import VotesWriter

    rng = np.random.default_rng(0)
    names, labels = [f"lf{j}" for j in range(m)], [f"c{i}" for i in range(k)]
    blocks = []
    for s in range(0, n, block):
        v = rng.integers(-1, k, size=(block, m)).astype(np.int16)
        p = rng.dirichlet(np.ones(k), size=int((v[:, 0] >= 0).sum())).astype(np.float16)
        blocks.append(LabelMatrix(v, names, labels=labels, ids=[str(i) for i in range(s, s + block)],
                                  vote_probs={"lf0": p}))
    texts = ["a short news text of about eighty characters, like the AG News rows in this benchmark"] * block
    t0 = time.perf_counter()
    with VotesWriter(tmp / "write-rate", lf_names=names, labels=labels, prob_lfs=["lf0"], shard_size=block) as w:
        for L in blocks:
            w.write(L, texts)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-emb", type=int, default=2000)
    ap.add_argument("--n-llm", type=int, default=600)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--shard-size", type=int, default=200)
    ap.add_argument("--kinds", default="embedding,prompted,keyword", help="which LF runs (comma-separated)")
    ap.add_argument("--n-kw", type=int, default=400, help="items for the keyword (no model) run")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "ray.md"))
    args = ap.parse_args()
    import ray
    import ray.data
    import torch

    from llmlabel.testing import build_tiny_model

    workers = [int(x) for x in args.workers.split(",")]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as d:
        tmp = Path(d)
        (tmp / "taxonomy.yaml").write_text(TAXONOMY)
        tiny = build_tiny_model(tmp / "tiny", arch="qwen2")
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        ray_start = time.perf_counter() - t0
        # The first Ray Data job of a fresh Ray starts its pool of worker processes (tens of seconds on a loaded
        # machine); one throwaway job here keeps that out of the first timed row.
        t0 = time.perf_counter()
        ray.data.range(1000, override_num_blocks=4).map_batches(lambda b: b).materialize()
        warmup = time.perf_counter() - t0
        kinds = args.kinds.split(",")
        rows = []
        if "embedding" in kinds:
            rows += bench_lfs(tmp, "embedding (minilm)", "lfs:\n  - {name: emb, kind: embedding, embedder: minilm}\n",
                              args.n_emb, workers, args.shard_size)
        if "prompted" in kinds:
            rows += bench_lfs(tmp, "prompted (tiny LLM)",
                              f"lfs:\n  - {{name: zs, kind: prompted, model: 'hf:{tiny}'}}\n",
                              args.n_llm, workers, args.shard_size)
        if "keyword" in kinds:
            rows += bench_lfs(tmp, "keyword (no model)", "lfs:\n  - {name: kw, kind: keyword, patterns: "
                              "{sports: [game, match, team], business: [stock, oil, profit]}}\n",
                              args.n_kw, workers, args.shard_size)
        write_rate = driver_write_rate(tmp)
        ray.shutdown()
    load1 = os.getloadavg()
    cmd = "PYTHONPATH=$PWD python eval/bench_ray.py " + shlex.join(sys.argv[1:])
    lines = [f"Command: `{cmd.strip()}`  ",
             f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores (shared with other jobs), "
             f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end; torch {torch.__version__}, "
             f"ray {ray.__version__}, python {platform.python_version()}; no GPU.  ",
             f"Starting the local Ray took {ray_start:.1f} s and a first throwaway Ray Data job {warmup:.1f} s "
             "(neither is in the figures below).", "",
             "| LF | run | items | seconds | items/s | speed vs local (warm) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['lf']} | {r['run']} | {r['items']:,} | {r['seconds']:.1f} | {r['items_per_s']:.1f} | "
                     f"{r['vs_local_warm']:.2f}x |")
    lines += ["", f"Driver write rate (VotesWriter, 100,000 rows x 5 LFs, one with probabilities, texts kept): "
                  f"**{write_rate:,.0f} rows/s**."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    text = out.read_text() if out.exists() else ""
    tag = "".join(ch for ch in args.kinds if ch.isalnum())
    start, end = f"<!-- bench_ray:{tag}:begin -->", f"<!-- bench_ray:{tag}:end -->"
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
    else:
        text = (text or "# Ray Data backend\n") + f"\n{start}\n{table}\n{end}\n"
    out.write_text(text)
    out.with_name(f"{out.stem}-{tag}.json").write_text(json.dumps({"rows": rows, "driver_write_rows_per_s": write_rate,
                                                    "ray_start_s": ray_start, "warmup_s": warmup, "load": [load0, load1]}, indent=1))


if __name__ == "__main__":
    main()
