"""Does reading a corpus stream? Peak RSS growth and rows/s for 10k vs 1M rows, per format.

    python eval/bench_io.py                 # 1M rows, writes eval/results/io.md
    python eval/bench_io.py --rows 200000 --out /tmp/io.md

Each measurement runs in a fresh child process, so the peak resident set (``VmHWM``) belongs to that
read alone; growth = peak after streaming minus peak after imports and ``read_corpus()`` setup.
Texts are short synthetic sentences (~80 chars): enough to show whether memory grows with row count,
not a test of long-document throughput.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

WORDS = ("the battery died after two days but support replaced it quickly and the new one works great "
         "screen bright sound tinny delivery late refund requested app crashes login fails love it").split()


def _rss_mb() -> float:
    """Peak resident set of this process so far (MiB)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec, so a child
    # started by a big parent would report the parent's peak.
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anon_mb() -> float:
    """Anonymous (heap) resident memory now (MiB): RSS without pages of memory-mapped files."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("RssAnon")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def child(path: str, limit: int, text_field: str | None, passes: int) -> None:
    import pyarrow as pa

    from llmlabel.io import read_corpus

    corpus = read_corpus(path, limit=limit, text_field=text_field)
    base, anon_base = _rss_mb(), _anon_mb()
    anon_peak, pool_peak = anon_base, 0
    t0 = time.perf_counter()
    n = chars = 0
    for _ in range(passes):  # several passes = a corpus several times larger, without the disk space
        for batch in corpus.iter_batches():
            n += len(batch)
            chars += sum(map(len, batch.texts))  # touch every text, as a real consumer would
            anon_peak = max(anon_peak, _anon_mb())  # sampled once per batch, while the batch is alive
            pool_peak = max(pool_peak, pa.total_allocated_bytes())
    dt = time.perf_counter() - t0
    print(json.dumps({"rows": n, "chars": chars, "seconds": dt, "base_mb": base, "peak_mb": _rss_mb(),
                      "anon_growth_mb": anon_peak - anon_base, "arrow_pool_mb": pool_peak / 2**20,
                      "stats": corpus.stats.summary()}))


def make_files(root: Path, n: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llmlabel.io_write import write_parquet

    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(8, 20))) for _ in range(1000)]
    files = {"jsonl": root / "c.jsonl", "csv": root / "c.csv"}
    with open(files["jsonl"], "w") as fj, open(files["csv"], "w") as fc:
        fc.write("id,label,text\n")
        for i in range(n):
            t = f"{i} {texts[i % 1000]}"
            fj.write(json.dumps({"id": f"r{i}", "label": i % 7, "text": t}) + "\n")
            fc.write(f"r{i},{i % 7},{t}\n")
    table = pa.table({"id": [f"r{i}" for i in range(n)], "label": [i % 7 for i in range(n)],
                      "text": [f"{i} {texts[i % 1000]}" for i in range(n)]})
    files["parquet (write_parquet)"] = root / "c.parquet"
    write_parquet(files["parquet (write_parquet)"], table)
    files["parquet (1 row group)"] = root / "c1.parquet"
    pq.write_table(table, files["parquet (1 row group)"], row_group_size=n)
    try:
        import datasets

        datasets.disable_progress_bars()
        files["datasets folder"] = root / "ds"
        datasets.Dataset(table).save_to_disk(str(files["datasets folder"]))
    except ImportError:
        pass
    return files


def machine() -> str:
    """The shared machine line (eval/_common.py) and the pyarrow version, which the I/O figures depend on."""
    import pyarrow

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine as common

    return f"{common()}, pyarrow {pyarrow.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "io.md"))
    ap.add_argument("--passes", type=int, default=3, help="extra run reading the big file this many times")
    ap.add_argument("--child", nargs=4, metavar=("PATH", "LIMIT", "TEXT_FIELD", "PASSES"))
    args = ap.parse_args()
    if args.child:
        path, limit, tf, passes = args.child
        return child(path, int(limit), tf if tf != "-" else None, int(passes))

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = make_files(Path(tmp), args.rows)
        print(f"generated {args.rows:,} rows per format in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        sizes = {name: sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*"))) for name, p in
                 files.items()}
        for name, path in files.items():
            for limit, passes in ((args.small, 1), (args.rows, 1), (args.rows, args.passes)):
                cmd = [sys.executable, __file__, "--child", str(path), str(limit), "text", str(passes)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                r.update(format=name, limit=limit, passes=passes, file_mb=sizes[name] / 2**20)
                results.append(r)
                print(f"{name:26s} {r['rows']:>9,} rows {r['rows'] / r['seconds']:>11,.0f} rows/s "
                      f"peak growth {r['peak_mb'] - r['base_mb']:7.1f} MB, heap {r['anon_growth_mb']:7.1f} MB",
                      file=sys.stderr)

    lines = [
        "# Reading corpora: memory and speed (eval/bench_io.py)",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date (UTC): {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {machine()}; the 2 cores were shared with other jobs, so rows/s is a floor",
        "- data: synthetic rows `{id, label, text}`, text = row number + 8-20 words (~80 chars). Short texts are",
        "  enough to show whether memory grows with the row count; they are not a long-document throughput test.",
        "- method: each read in a fresh child process; `read_corpus(path, limit=N)` then iterate `iter_batches()`",
        "  (batch 10,000) touching every text. RSS growth = peak RSS (`VmHWM`) after the read minus peak after",
        "  imports and setup. Heap growth = peak anonymous RSS (`RssAnon`, sampled once per batch) minus its",
        "  value after setup: it leaves out pages of memory-mapped files (datasets folders are mmapped Arrow",
        "  files), which count in RSS but belong to the page cache and are dropped under memory pressure.",
        "  Arrow pool = peak `pyarrow.total_allocated_bytes()`: the Arrow buffers actually alive. The last row",
        f"  of each format streams the big file {args.passes} times in one process (a corpus {args.passes}x larger).",
        "",
        "| format | file MB | rows streamed | rows/s | base RSS MB | peak RSS MB | RSS growth MB | heap growth MB "
        "| Arrow pool peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['format']} | {r['file_mb']:.0f} | {r['rows']:,} | {r['rows'] / r['seconds']:,.0f} | "
                     f"{r['base_mb']:.0f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['base_mb']:.1f} | "
                     f"{r['anon_growth_mb']:.1f} | {r['arrow_pool_mb']:.1f} |")
    lines += ["", f"Heap growth for {args.small:,} / {args.rows:,} / {args.passes * args.rows:,} rows streamed:", ""]
    by = {(r["format"], r["limit"], r["passes"]): r for r in results}
    for name in files:
        g = [by[(name, lim, p)]["anon_growth_mb"] for lim, p in
             ((args.small, 1), (args.rows, 1), (args.rows, args.passes))]
        lines.append(f"- {name}: {g[0]:.1f} MB / {g[1]:.1f} MB / {g[2]:.1f} MB")
    lines += [
        "",
        "Notes:",
        "- JSONL/CSV are read line by line; memory is one batch being built plus the one the consumer holds.",
        "- Parquet is read with `ParquetFile.iter_batches`, which holds one row group's compressed column chunks",
        "  (Arrow pool column: small for `write_parquet`'s ~64 MB row groups, the whole compressed file when it is",
        "  one row group). So Parquet memory is bounded by the file's row-group size, not its row count. The larger",
        "  heap figure is pyarrow's mimalloc pool keeping freed pages for reuse; it levels off as more rows stream.",
        "- datasets folders are memory-mapped: their RSS grows with the pages touched (page cache, reclaimable),",
        "  their heap does not.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
