"""Why the no-LLM taxonomy can lose to plain k-means as a corpus grows: one suspect at a time.

    nice -n 5 python eval/taxonomy_scale.py [--sets b77train,agnews,b77test,b77all] [--sizes 3000,0]
        [--variants default,nn8,...] [--out eval/results/taxonomy-scale]

For each set and size (0 = the whole set; otherwise its first N texts) on the same MiniLM vectors (the cache of
eval/chain_data.py, so nothing is embedded twice): k-means told the true k (``KMeans(k, n_init=3)``) and
``cluster_embeddings`` (the clustering core of ``llmlabel taxonomy``, on the distinct texts as the CLI does)
under each variant: the library default and one setting changed (see VARIANTS). NMI counts ``other`` as one
more cluster, as eval/taxonomy.py does. Banking77 train is where defaults are chosen; AG News (corpus + test,
7,600 texts) and Banking77 test (3,080) only confirm. Spectral embeddings are memoised in /tmp per graph, so a
variant that changes only what follows the eigensolver costs seconds.
"""

from __future__ import annotations

import argparse
import hashlib
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
from _common import machine  # noqa: E402  (one machine description for every results file)

MEMO = Path(os.environ.get("TMPDIR", "/tmp")) / "llmlabel-taxo-spectral"

#: name -> (what it changes, keyword arguments of cluster_embeddings). ``k`` overrides the told k.
VARIANTS = {
    "default": ("library default (8-15 graph neighbours by items per cluster; outliers beyond 5 robust sd; items "
                "off the spectral sample by neighbour vote)", {}),
    "z3.5": ("outliers beyond 3.5 robust sd (the previous default)", {"outlier_z": 3.5}),
    "no_other": ("no outliers marked other", {"outlier_z": 0}),
    "nn8": ("k-NN graph: 8 neighbours", {"n_neighbors": 8}),
    "nn15": ("k-NN graph: 15 neighbours at every size (the previous default)", {"n_neighbors": 15}),
    "nn30": ("k-NN graph: 30 neighbours", {"n_neighbors": 30}),
    "no_vote": ("no neighbour-vote smoothing after spectral k-means", {"vote": False}),
    "no_merge": ("no near-duplicate merging", {"merge_threshold": 1.01}),
    "min20": ("clusters under 20 items dissolved (default 3)", {"min_size": 20}),
    "fit3k": ("spectral fitted on a 3,000-text sample, the rest to the nearest centroid (the previous rule)",
              {"fit_max": 3000, "assign": "centroid"}),
    "fit3k_knn": ("spectral fitted on a 3,000-text sample, the rest by a vote of their fitted neighbours",
                  {"fit_max": 3000}),
    "fit6k": ("spectral fitted on a 6,000-text sample, the rest to the nearest centroid",
              {"fit_max": 6000, "assign": "centroid"}),
    "fit6k_knn": ("spectral fitted on a 6,000-text sample, the rest by a vote of their fitted neighbours",
                  {"fit_max": 6000}),
    "kmeans_method": ("method=kmeans (micro-clusters + Ward + k-means)", {"method": "kmeans"}),
    "k150": ("--max-labels 150 (allowed k above the true k)", {"k": 150}),
}


def load_sets(names: list[str]) -> dict:
    from chain_data import CachedEmbedder, agnews, banking77, embed_bench

    emb = CachedEmbedder()
    out = {}
    if any(n.startswith("b77") for n in names):
        b = banking77()
        c, t = embed_bench(b, emb)
        out["b77train"] = (b.corpus_texts, c, b.corpus_y)
        out["b77test"] = (b.test_texts, t, b.test_y)
        out["b77all"] = (b.corpus_texts + b.test_texts, np.vstack([c, t]), np.r_[b.corpus_y, b.test_y])
    if "b77clean" in names:
        # A diagnosis-only proxy for a clean intent corpus (where k-means is strong): the Banking77 train+test
        # texts whose nearest gold centroid is their own intent. Built with gold, never used to choose a default.
        texts, x, y = out["b77all"]
        cent = np.stack([x[y == c].mean(0) for c in range(y.max() + 1)])
        keep = np.flatnonzero((x @ cent.T).argmax(1) == y)
        keep = keep[np.random.default_rng(0).permutation(len(keep))]  # the first N are then a random subset
        out["b77clean"] = ([texts[i] for i in keep], x[keep], y[keep])
    if "agnews" in names:
        a = agnews()
        c, t = embed_bench(a, emb)
        out["agnews"] = (a.corpus_texts + a.test_texts, np.vstack([c, t]), np.r_[a.corpus_y, a.test_y])
    return {n: out[n] for n in names}


def memoise_spectral() -> None:
    """Keep spectral embeddings on disk keyed by the graph and the number of eigenvectors."""
    import sklearn.manifold

    real = sklearn.manifold.spectral_embedding

    def memo(g, *, n_components, random_state=0, drop_first=False, **kw):
        h = hashlib.sha256()
        for a in (g.indptr, g.indices, g.data):
            h.update(np.ascontiguousarray(a).tobytes())
        path = MEMO / f"{h.hexdigest()[:20]}-{n_components}-{random_state}.npy"
        if path.is_file():
            return np.load(path)
        e = real(g, n_components=n_components, random_state=random_state, drop_first=drop_first, **kw)
        MEMO.mkdir(parents=True, exist_ok=True)
        np.save(path, e)
        return e

    sklearn.manifold.spectral_embedding = memo


def nmi(gold, lab) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return round(float(normalized_mutual_info_score(gold, lab)), 4)


def ami(gold, lab) -> float:
    """Adjusted for chance: NMI of a random k-way split is not 0 and grows as items per cluster shrink, so
    NMI at 3,000 texts and at 15,000 are not comparable; AMI is."""
    from sklearn.metrics import adjusted_mutual_info_score

    return round(float(adjusted_mutual_info_score(gold, lab)), 4)


def run_one(texts, x, y, k, kw, seed):
    from llmlabel.taxonomy.cluster import cluster_embeddings
    from llmlabel.taxonomy.items import _dedupe

    uniq, inv = _dedupe(texts)
    kw = dict(kw)
    k = kw.pop("k", k)
    t0 = time.perf_counter()
    cl = cluster_embeddings(x[uniq], k, seed=seed, **kw)
    dt = time.perf_counter() - t0
    lab = cl.labels[inv]
    sizes = np.bincount(lab[lab >= 0])
    return {"nmi": nmi(y, lab), "ami": ami(y, lab), "labels": int(len(cl.centroids)), "other": round(float((lab < 0).mean()), 4),
            "merged": cl.merged, "size_cv": round(float(sizes.std() / sizes.mean()), 3), "seconds": round(dt, 1)}


def size_bias(seed: int = 0) -> None:
    """NMI of a random split and of a split with 85% of items in their own class, at a few (texts, k): the
    same quality scores higher on fewer texts per class."""
    rng = np.random.default_rng(seed)
    for n, k in [(3000, 150), (15000, 150), (3000, 77), (10003, 77), (13083, 77)]:
        gold = np.arange(n) % k
        moved = rng.random(n) < 0.15
        good = np.where(moved, rng.integers(0, k, n), gold)
        print(json.dumps({"texts": n, "k": k, "random_nmi": nmi(gold, rng.integers(0, k, n)),
                          "random_ami": ami(gold, rng.integers(0, k, n)), "85pct_nmi": nmi(gold, good),
                          "85pct_ami": ami(gold, good)}))


def main() -> None:
    from sklearn.cluster import KMeans

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="b77train,agnews,b77test,b77all")
    ap.add_argument("--sizes", default="3000,0")
    ap.add_argument("--variants", default=",".join(v for v in VARIANTS if v not in ("kmeans_method", "k150")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "taxonomy-scale"))
    ap.add_argument("--size-bias", action="store_true", help="only print how NMI of a fixed-quality split moves "
                    "with the number of texts per class, and stop")
    ap.add_argument("--render", metavar="LOG", help="only write --out's .md/.json from the JSON rows a run printed "
                    "(a run stopped early for time keeps the rows it finished)")
    ap.add_argument("--render-command", default="", help="with --render: the command that printed LOG")
    ap.add_argument("--render-load", default="", help="with --render: 'start,end' 1-min load averages of that run")
    args = ap.parse_args()
    if args.render:
        rows = [json.loads(line) for line in open(args.render, encoding="utf-8") if line.startswith("{")]
        load = [float(v) for v in args.render_load.split(",")] if args.render_load else [float("nan")] * 2
        out = {"rows": rows, "command": args.render_command + " (stopped after the rows below, for time)",
               "date_utc": datetime.fromtimestamp(os.path.getmtime(args.render), timezone.utc).isoformat(
                   timespec="seconds"), "machine": machine(),
               "load_avg_start_end": load}
        Path(args.out + ".json").write_text(json.dumps(out, indent=2))
        Path(args.out + ".md").write_text(markdown(out))
        return None
    if args.size_bias:
        return size_bias(args.seed)
    memoise_spectral()
    sets = load_sets(args.sets.split(","))
    rows = []
    load0 = os.getloadavg()
    for name, (texts, x, y) in sets.items():
        k = len(set(y.tolist()))
        for size in [int(s) for s in args.sizes.split(",")]:
            n = len(texts) if size <= 0 or size >= len(texts) else size
            tx, xx, yy = texts[:n], x[:n], y[:n]
            t0 = time.perf_counter()
            km = KMeans(k, n_init=3, random_state=args.seed).fit(xx)
            base = {"set": name, "n": n, "k": k}
            rows.append({**base, "variant": "k-means true k", "nmi": nmi(yy, km.labels_),
                         "ami": ami(yy, km.labels_), "labels": k, "other": 0.0,
                         "merged": 0, "size_cv": round(float(np.bincount(km.labels_).std() / (n / k)), 3),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
            for v in args.variants.split(","):
                rows.append({**base, "variant": v, **run_one(tx, xx, yy, k, VARIANTS[v][1], args.seed)})
                print(json.dumps(rows[-1]), flush=True)
                write(args, rows, load0, partial=True)  # a run stopped for time keeps what it finished
    write(args, rows, load0, partial=False)
    print(f"wrote {args.out}.json and .md")


def write(args, rows: list[dict], load0, *, partial: bool) -> None:
    out = {"rows": rows, "command": "python " + " ".join(sys.argv) + (" (still running)" if partial else ""),
           "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(),
           "load_avg_start_end": [round(load0[0], 1), round(os.getloadavg()[0], 1)]}
    Path(args.out + ".json").write_text(json.dumps(out, indent=2))
    Path(args.out + ".md").write_text(markdown(out))


def markdown(out: dict) -> str:
    lines = ["# Taxonomy at scale: which step costs NMI as the corpus grows (no LLM, MiniLM)", "",
             f"Command: `{out['command']}`  ", f"Machine: {out['machine']}  ",
             f"Date: {out['date_utc']}; load average (1 min) {out['load_avg_start_end'][0]} at the start, "
             f"{out['load_avg_start_end'][1]} at the end (2 cores shared by 5 jobs: seconds compare only "
             "within this table)", "",
             "NMI and AMI count `other` as one more cluster. d NMI = NMI minus k-means' on the same texts. "
             "size cv = std/mean of cluster sizes.", "",
             "| set | texts | variant | NMI | AMI | d NMI | labels | other | size cv | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    km = {}
    for r in out["rows"]:
        key = (r["set"], r["n"])
        if r["variant"] == "k-means true k":
            km[key] = r["nmi"]
        d = r["nmi"] - km.get(key, r["nmi"])
        lines.append(f"| {r['set']} | {r['n']:,} | {r['variant']} | {r['nmi']:.4f} | {r['ami']:.4f} | {d:+.4f} | "
                     f"{r['labels']} | {r['other']:.1%} | {r['size_cv']} | {r['seconds']} |")
    lines += ["", "Variants:", ""] + [f"- `{v}`: {VARIANTS[v][0]}" for v in dict.fromkeys(
        r["variant"] for r in out["rows"]) if v in VARIANTS]
    return "\n".join(lines) + "\n"

if __name__ == "__main__":
    main()
