"""Labeling throughput against the embedder's own encode rate, and the known-labels chain before/after the store.

Every figure is a ratio against a baseline measured in the same run: the bare embedder's encode rate on the same
texts in this process (``load_embedder(spec, store=False)``, all texts in one call), and for the chain the code of
``main`` (a worktree given with ``--base``) run right before this tree's. ``llmlabel`` runs as a subprocess (the
real CLI: imports, model load and Parquet writes included), each label run with a new, empty embedding store
unless it is the rerun. Corpus: Banking77 train (10,003 texts) repeated with distinct suffixes.

    git worktree add /tmp/wt-base main
    nice -n 10 python eval/bench_label.py --base /tmp/wt-base                       # 10^4 rows, chain, WordLlama
    nice -n 10 python eval/bench_label.py --parts minilm100k                         # later: 10^5 MiniLM rows

Writes eval/results/label-throughput.md and .json (parts run later are merged into the same files).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)
OUT = ROOT / "eval" / "results" / "label-throughput"
LF_SETS = {"no-gold": "pipelines/banking77_lfs.yaml", "known-labels": "pipelines/known_labels_lfs.yaml"}
PARTS = ("label10k", "wordllama", "chain", "minilm100k")
EMBED_LINE = re.compile(r"embeddings \((\S+)\): ([\d,]+) encoded \(([\d.]+)s in the model\), ([\d,]+) from the "
                        r"store, ([\d,]+) reused")


def load() -> float:
    return round(os.getloadavg()[0], 2)


def corpus(work: Path, n: int) -> Path:
    """``n`` Banking77 train texts: the 10,003 as they are, then again with " #r" appended (r = 1, 2, ...)."""
    path = work / f"corpus-{n}.jsonl"
    if not path.is_file():
        rows = list(csv.DictReader(open(DATA / "banking77" / "train.csv", encoding="utf-8")))
        with open(path, "w", encoding="utf-8") as f:
            for k in range(n):
                r, i = divmod(k, len(rows))
                text = rows[i]["text"] if r == 0 else f"{rows[i]['text']} #{r}"
                f.write(json.dumps({"id": f"b77-{i}" if r == 0 else f"b77-{i}-{r}", "text": text}) + "\n")
    return path


def texts_of(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in open(path, encoding="utf-8")]


def gold(work: Path, n: int) -> Path:
    """100 gold rows drawn with seed 0 from the first ``n`` (<= 10,000) train rows (ids match the corpora's)."""
    path = work / "gold.jsonl"
    rows = list(csv.DictReader(open(DATA / "banking77" / "train.csv", encoding="utf-8")))[: min(n, 10_000)]
    pick = np.sort(np.random.default_rng(0).choice(len(rows), 100, replace=False))
    path.write_text("".join(json.dumps({"id": f"b77-{i}", "text": rows[i]["text"], "label": rows[i]["category"]})
                            + "\n" for i in pick), encoding="utf-8")
    return path


def lfs_file(work: Path, which: str, embedder: str) -> Path:
    src = (ROOT / LF_SETS[which]).read_text(encoding="utf-8")
    path = work / f"lfs-{which}-{embedder}.yaml"
    path.write_text(src.replace("embedder: minilm", f"embedder: {embedder}"), encoding="utf-8")
    return path


def cli(tree: Path, args: list, work: Path) -> dict:
    """Run ``llmlabel ARGS`` with ``tree``'s code; wall seconds, the load before/after, embedding lines."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               LLMLABEL_CACHE=str(work / "llm-cache.sqlite"), TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "llmlabel.cli", *map(str, args)]
    l0, t0 = load(), time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    embeds = {m[0]: {"encoded": int(m[1].replace(",", "")), "model_s": float(m[2]),
                     "store_hits": int(m[3].replace(",", "")), "reused": int(m[4].replace(",", ""))}
              for m in EMBED_LINE.findall(p.stderr)}
    return {"wall_s": round(wall, 2), "load": [l0, load()], "embeddings": embeds,
            "command": "llmlabel " + " ".join(str(a).replace(str(work), "$W") for a in args)}


def bare_rate(spec: str, texts: list[str]) -> dict:
    from llmlabel.embed import load_embedder

    emb = load_embedder(spec, store=False)
    emb.encode(texts[:64])  # warm-up
    l0, t0 = load(), time.perf_counter()
    emb.encode(texts)
    s = time.perf_counter() - t0
    return {"texts": len(texts), "seconds": round(s, 2), "texts_per_s": round(len(texts) / s, 1), "load": [l0, load()]}


def label_row(tree: Path, work: Path, n: int, which: str, embedder: str, tax: Path, g: Path, bare: dict,
              store: Path | None = None, tag: str = "") -> dict:
    store = store or work / f"store-{which}-{embedder}-{n}{tag}"
    args = ["label", corpus(work, n), "-t", tax, "--lfs", lfs_file(work, which, embedder), "-q",
            "-o", work / f"votes-{which}-{embedder}-{n}{tag}", "--embed-cache", store, "--overwrite"]
    if which == "known-labels":
        args += ["--gold", g]
    r = cli(tree, args, work)
    rate = n / r["wall_s"]
    r.update(lfs=which, embedder=embedder, texts=n, texts_per_s=round(rate, 1), bare_texts_per_s=bare["texts_per_s"],
             ratio=round(rate / bare["texts_per_s"], 3))
    print(json.dumps(r), flush=True)
    return r


def chain(tree: Path, work: Path, tag: str, store: Path | None, g: Path, n: int) -> dict:
    """taxonomy --labels -> label (known-labels LFs + gold) -> aggregate -> distill (static) -> predict, n texts."""
    c, d = corpus(work, n), work / f"chain-{tag}"
    d.mkdir(exist_ok=True)
    extra = [] if store is None else ["--embed-cache", store]
    steps = {
        "taxonomy": ["taxonomy", c, "--labels", ROOT / "examples/known_labels/labels.txt", "-o", d / "taxonomy.yaml",
                     "-q", *extra],
        "label": ["label", c, "-t", d / "taxonomy.yaml", "--lfs", ROOT / LF_SETS["known-labels"], "--gold", g,
                  "-o", d / "votes", "-q", "--overwrite", *extra],
        "aggregate": ["aggregate", d / "votes", "--method", "auto", "--gold", g, "-o", d / "labeled.parquet"],
        "distill": ["distill", d / "labeled.parquet", "-o", d / "model", "--student", "static", "--min-per-class", "1"],
        "predict": ["predict", d / "model", c, "-o", d / "preds.jsonl"],
    }
    out = {k: cli(tree, v, work) for k, v in steps.items()}
    total = sum(v["wall_s"] for v in out.values())
    encoded = sum(e["encoded"] for v in out.values() for e in v["embeddings"].values())
    res = {"tree": str(tree), "stages": out, "wall_s": round(total, 1), "encoded": encoded}
    print(json.dumps({"chain": tag, "wall_s": res["wall_s"], "encoded": encoded}), flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="label10k,wordllama,chain", help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--base", type=Path, default=None, help="worktree of main for the chain's 'today' figure")
    ap.add_argument("--work", type=Path, default=Path("/tmp/llmlabel-bench-label"))
    ap.add_argument("--sizes", default="10000,100000", help="the two corpus sizes (a smoke test: 300,1000)")
    ap.add_argument("--out", type=Path, default=OUT, help="results path without suffix")
    args = ap.parse_args()
    small, big = (int(x) for x in args.sizes.split(","))
    out = args.out
    parts = [p for p in args.parts.split(",") if p]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    res = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    res.setdefault("runs", []).append({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                                       "parts": parts, "command": " ".join(sys.argv), "load_start": load(),
                                       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                                capture_output=True, text=True).stdout.strip()})
    res["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                      "python": platform.python_version(), "threads": "OMP_NUM_THREADS=1 for both sides"}
    g = gold(work, small)
    tax = work / "taxonomy.yaml"
    if not tax.is_file():  # the label rows' taxonomy (its own store, so the label rows start cold)
        cli(ROOT, ["taxonomy", corpus(work, small), "--labels", ROOT / "examples/known_labels/labels.txt",
                   "-o", tax, "-q", "--embed-cache", work / "store-taxonomy"], work)
    rows = {(r["lfs"], r["embedder"], r["texts"], r.get("tag", "")): r for r in res.get("label", [])}

    def add(r, tag=""):
        r["tag"] = tag
        rows[(r["lfs"], r["embedder"], r["texts"], tag)] = r

    if "label10k" in parts:
        t10 = texts_of(corpus(work, small))
        unsorted = bare_rate_unsorted(t10)
        bare = bare_rate("minilm", t10)
        res["bare"] = {**res.get("bare", {}), f"minilm-{small}": bare, f"minilm-{small}-unsorted": unsorted}
        for which in LF_SETS:
            add(label_row(ROOT, work, small, which, "minilm", tax, g, bare))
        store = work / f"store-known-labels-minilm-{small}"
        add(label_row(ROOT, work, small, "known-labels", "minilm", tax, g, bare, store=store, tag="-rerun"), "rerun")
        res["fixed"] = {w: label_row(ROOT, work, 100, w, "minilm", tax, g, bare) for w in LF_SETS}
    if "wordllama" in parts:
        for n in (small, big):
            bare = bare_rate("wordllama", texts_of(corpus(work, n)))
            res.setdefault("bare", {})[f"wordllama-{n}"] = bare
            for which in LF_SETS:
                add(label_row(ROOT, work, n, which, "wordllama", tax, g, bare))
    if "chain" in parts:
        ch = res.setdefault("chain", {})
        if args.base is not None:
            ch["before"] = chain(args.base, work, "before", None, g, small)
        store = work / f"store-chain-{int(time.time())}"
        ch["after"] = chain(ROOT, work, "after", store, g, small)
        ch["rerun"] = chain(ROOT, work, "rerun", store, g, small)
    if "minilm100k" in parts:
        bare = bare_rate("minilm", texts_of(corpus(work, big)))
        res.setdefault("bare", {})[f"minilm-{big}"] = bare
        for which in LF_SETS:
            add(label_row(ROOT, work, big, which, "minilm", tax, g, bare))
    res["label"] = sorted(rows.values(), key=lambda r: (r["embedder"], r["texts"], r["lfs"], r["tag"]))
    res["runs"][-1]["load_end"] = load()
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(res))
    print(f"wrote {out.with_suffix('.md')}")


def bare_rate_unsorted(texts: list[str]) -> dict:
    """MiniLM as the landed code encoded: batches of 256 in corpus order (this tree sorts texts by length first)."""
    from llmlabel.embed import load_embedder

    emb = load_embedder("minilm", store=False)
    l0, t0 = load(), time.perf_counter()
    for b in range(0, len(texts), 256):
        emb._encode(texts[b : b + 256])
    s = time.perf_counter() - t0
    return {"texts": len(texts), "seconds": round(s, 2), "texts_per_s": round(len(texts) / s, 1), "load": [l0, load()]}


def render(res: dict) -> str:
    from bench_label_report import render as _render

    return _render(res)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
