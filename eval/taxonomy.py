"""Benchmark of the no-LLM taxonomy path against gold labels, with baselines in the same run.

    python eval/taxonomy.py [--data ../shared/data] [--out eval/results/taxonomy] [--datasets banking77,agnews]

For each dataset: embed once per embedder (timed), then
- ``llmlabel`` = ``induce_taxonomy(..., max_labels=<true k>)`` (spectral k-NN graph clustering, near-duplicate
  merging, outliers -> ``other``; ``other`` counts as one more cluster in NMI/ARI),
- k-means told the true k (``KMeans(k, n_init=4)``) on the same embeddings,
- a BERTopic-style baseline: HDBSCAN(min_cluster_size=10) on the same embeddings, outliers kept as their own
  cluster (BERTopic's default outlier handling).
Writes ``<out>.md`` and ``<out>.json`` (machine, date, command). Data is read from ../shared/data; the
script exits with a message if it is absent. Nothing is tuned on these labels: every setting is a default.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))
from _common import DATA, machine  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)


def load_banking(data: Path):
    rows = list(csv.DictReader(open(data / "banking77" / "train.csv", encoding="utf-8")))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def load_agnews(data: Path):
    path = data / "agnews" / "test.csv"
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows and not rows[0][0].strip().isdigit():
        rows = rows[1:]
    return [f"{r[1]}. {r[2]}".replace("\\", " ") for r in rows], [r[0] for r in rows]


class Precomputed:
    """An embedder that serves vectors computed (and timed) once, so every method sees the same embeddings."""

    def __init__(self, name: str, texts: list[str], x: np.ndarray) -> None:
        self.name, self.dim, self.truncated = name, x.shape[1], 0
        self.row = {t: i for i, t in enumerate(texts)}
        self.x = x

    def encode(self, texts, progress=False, **kw):
        return self.x[[self.row[t] for t in texts]]


def cached_embed(emb_name: str, texts: list[str], cache_dir: str | None) -> tuple[np.ndarray, float]:
    """Embed once (timed); with ``cache_dir`` the vectors and the measured time are kept on disk between runs,
    keyed by embedder and a hash of the texts (so re-running a benchmark skips minutes of embedding)."""
    import hashlib

    from llmlabel.embed import load_embedder
    from llmlabel.taxonomy.induce import embed_texts

    key = hashlib.sha256(("\x00".join([emb_name] + texts)).encode()).hexdigest()[:16]
    path = Path(cache_dir, f"{emb_name}-{key}.npz") if cache_dir else None
    if path is not None and path.exists():
        z = np.load(path)
        return z["x"], float(z["seconds"])
    emb = load_embedder(emb_name, store=False)  # timed: the bare model, not the embedding store
    if emb_name == "minilm":  # reuse eval/chain_data.py's MiniLM cache: the same texts, embedded once per machine
        from chain_data import CachedEmbedder, LOADERS, embed_bench

        emb = CachedEmbedder("minilm")
        for name in ("banking77", "agnews"):
            embed_bench(LOADERS[name](), emb)
    t0 = time.perf_counter()
    x = embed_texts(emb, texts)
    dt = time.perf_counter() - t0
    if getattr(emb, "encoded", None) == 0:
        dt = float("nan")  # every vector came from the chain cache: no embedding time was measured here
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x, seconds=dt)
    return x, dt


def run(args) -> dict:
    from sklearn.cluster import HDBSCAN, KMeans

    from llmlabel.taxonomy import evaluate_assignments, induce_taxonomy

    data = Path(args.data)
    loaders = {"banking77": load_banking, "agnews": load_agnews}
    results = []
    for ds in args.datasets.split(","):
        texts, gold = loaders[ds](data)
        k = len(set(gold))
        print(f"== {ds}: {len(texts):,} texts, {k} gold labels", flush=True)
        for emb_name in args.embedders.split(","):
            uniq = list(dict.fromkeys(texts))
            xu, t_embed = cached_embed(emb_name, uniq, args.emb_cache)
            row_of = {t: i for i, t in enumerate(uniq)}
            x = xu[[row_of[t] for t in texts]]
            base = {"dataset": ds, "n": len(texts), "embedder": emb_name, "embed_s": round(t_embed, 1)}
            # llmlabel default path
            pre = Precomputed(emb_name, uniq, xu)
            t0 = time.perf_counter()
            res = induce_taxonomy(list(zip(map(str, range(len(texts))), texts)), max_labels=k, embedder=pre,
                                  seed=args.seed)
            t_cl = time.perf_counter() - t0
            results.append({**base, "method": f"llmlabel taxonomy --max-labels {k}", "cluster_s": round(t_cl, 1),
                            **evaluate_assignments(res.assignments, gold)})
            print(results[-1], flush=True)
            if ds == "banking77" and emb_name == args.embedders.split(",")[0]:
                names = [lab.name for lab in res.taxonomy.labels]
            # k-means with the true k
            t0 = time.perf_counter()
            km = KMeans(k, n_init=4, random_state=args.seed).fit(x)
            results.append({**base, "method": f"k-means, true k={k}", "cluster_s": round(time.perf_counter() - t0, 1),
                            **evaluate_assignments(km.labels_.astype(str), gold)})
            print(results[-1], flush=True)
            if not args.no_hdbscan:
                t0 = time.perf_counter()
                hl = HDBSCAN(min_cluster_size=10).fit(x).labels_
                pred = np.where(hl < 0, "other", hl.astype(str))
                results.append({**base, "method": "HDBSCAN min_cluster_size=10 (BERTopic-style)",
                                "cluster_s": round(time.perf_counter() - t0, 1), **evaluate_assignments(pred, gold)})
                print(results[-1], flush=True)
    return {"results": results, "banking77_label_names": names if "names" in locals() else []}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def scale(args) -> None:
    from llmlabel.taxonomy import induce_taxonomy

    data = Path(args.data)
    base = load_banking(data)[0] + load_agnews(data)[0]
    rng = np.random.default_rng(args.seed)
    texts = [f"{base[i]} ({j})" for j, i in enumerate(rng.integers(0, len(base), args.scale))]
    emb = args.embedders.split(",")[0]
    import resource

    cpu0 = time.process_time()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t0 = time.perf_counter()
    res = induce_taxonomy(texts, max_labels=77, embedder=emb, seed=args.seed)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0  # all threads: on a shared machine CPU seconds / 2 bounds a quiet 2-core wall time
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps({"n": args.scale, "embedder": emb, "seconds": round(dt, 1), "cpu_seconds": round(cpu, 1),
                      "torch_threads": torch_threads(), "max_rss_gb_before": round(rss0, 2),
                      "embed_s": res.stats["embed_seconds"],
                      "labels": res.stats["labels"], "other": res.stats["other_share"], "max_rss_gb": round(rss, 2),
                      "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "taxonomy"))
    ap.add_argument("--datasets", default="banking77,agnews")
    ap.add_argument("--embedders", default="minilm,wordllama")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hdbscan", action="store_true")
    ap.add_argument("--emb-cache", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "llmlabel-eval-emb"),
                    help="folder keeping embeddings (and their measured embed time) between runs; '' = off")
    ap.add_argument("--scale", type=int, default=0,
                    help="only time `llmlabel taxonomy` end to end on N distinct texts (real texts, each made "
                         "distinct by a numeric suffix) with --embedder from --embedders' first entry")
    args = ap.parse_args()
    if not Path(args.data, "banking77").is_dir():
        sys.exit(f"evaluation data not found at {args.data} (set LLMLABEL_EVAL_DATA)")
    import torch

    if args.scale:
        return scale(args)
    load0 = os.getloadavg()[0]
    out = run(args)
    out["load"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
    out.update({"command": "python " + " ".join(sys.argv), "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": f"{machine()}; torch threads {torch.get_num_threads()}"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(out, indent=2))
    lines = ["# Taxonomy induction benchmark (no LLM)", "",
             f"Command: `{out['command']}`  ", f"Machine: {out['machine']}  ", f"Date: {out['date_utc']}", "",
             "`other` is scored as one more cluster. Times: embed = embedding the distinct texts once (shared by "
             "the methods of that embedder; with --emb-cache, the time measured when the vectors were first "
             "computed); cluster = everything after embedding. The machine was shared with other jobs (1-min load "
             f"average {out['load'][0]} at the start, {out['load'][1]} at the end, on 2 cores): wall times are "
             "several times a quiet machine's, compare methods only within this table.", "",
             "| dataset | embedder | method | NMI | ARI | purity | other | labels | embed s | cluster s | texts/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["results"]:
        cached = r["embed_s"] != r["embed_s"]  # NaN: vectors from the chain cache, embed time not measured
        tps = "n/a" if cached else f"{r['n'] / max(r['embed_s'] + r['cluster_s'], 1e-9):,.0f}"
        lines.append(f"| {r['dataset']} | {r['embedder']} | {r['method']} | {r['nmi']:.3f} | {r['ari']:.3f} | "
                     f"{r['purity']:.3f} | {r['other_share']:.1%} | {r['n_labels']} | {'cached' if cached else r['embed_s']} | "
                     f"{r['cluster_s']} | {tps} |")
    if out["banking77_label_names"]:
        lines += ["", "Banking77 label names (key phrases, no LLM), first 20:", "",
                  ", ".join(f"`{n}`" for n in out["banking77_label_names"][:20])]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
