"""Markdown for eval/bench_label.py's results (kept apart so the runner stays short)."""

from __future__ import annotations

LOAD_WARN = 3.0


def _emb(r: dict, key: str) -> int:
    return sum(e.get(key, 0) for e in r.get("embeddings", {}).values())


def _loads(r: dict) -> str:
    return "/".join(f"{x:.1f}" for x in r.get("load", []))


def _label_table(res: dict) -> list[str]:
    fixed = {k: v["wall_s"] for k, v in res.get("fixed", {}).items()}
    out = ["| LFs | embedder | texts | `llmlabel label` wall s | texts/s | bare encode texts/s (same run) | ratio | "
           "ratio without the fixed start-up | encoded | from the store | reused in the run | load before/after |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("label", []):
        start = fixed.get(r["lfs"]) if r["embedder"] == "minilm" and not r.get("tag") else None
        net = "" if start is None or r["wall_s"] <= start else \
            f"{r['texts'] / (r['wall_s'] - start) / r['bare_texts_per_s']:.2f}x"
        name = r["lfs"] + (" (rerun, same store)" if r.get("tag") == "rerun" else "")
        out.append(f"| {name} | {r['embedder']} | {r['texts']:,} | {r['wall_s']:.1f} | {r['texts_per_s']:,.0f} | "
                   f"{r['bare_texts_per_s']:,.0f} | {r['ratio']:.2f}x | {net} | {_emb(r, 'encoded'):,} | "
                   f"{_emb(r, 'store_hits'):,} | {_emb(r, 'reused'):,} | {_loads(r)} |")
    return out


def _wordllama(res: dict) -> list[str]:
    rows = {(r["lfs"], r["texts"]): r for r in res.get("label", []) if r["embedder"] == "wordllama"}
    out = []
    for lfs in ("no-gold", "known-labels"):
        sizes = sorted(n for f, n in rows if f == lfs)
        a, b = (rows[(lfs, sizes[0])], rows[(lfs, sizes[-1])]) if len(sizes) > 1 else (None, None)
        if not (a and b) or b["wall_s"] <= a["wall_s"]:
            continue
        slope = (b["wall_s"] - a["wall_s"]) / (b["texts"] - a["texts"])
        out.append(f"- {lfs} LFs with WordLlama: {a['wall_s']:.1f} s for {a['texts']:,} texts, {b['wall_s']:.1f} s for "
                   f"{b['texts']:,}; "
                   f"measured slope {slope * 1e3:.3f} ms a text = **{3600 / slope:,.0f} texts/hour** "
                   f"(the whole 10^5 run, start-up included: {b['texts'] / b['wall_s'] * 3600:,.0f} texts/hour)")
    return out


def _chain(res: dict) -> list[str]:
    ch = res.get("chain", {})
    if "after" not in ch:
        return []
    cols = [k for k in ("before", "after", "rerun") if k in ch]
    stages = list(ch["after"]["stages"])
    out = ["| stage | " + " | ".join(f"{c} (s)" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for s in stages:
        out.append(f"| {s} | " + " | ".join(f"{ch[c]['stages'][s]['wall_s']:.1f}" for c in cols) + " |")
    out.append("| **total** | " + " | ".join(f"**{ch[c]['wall_s']:.1f}**" for c in cols) + " |")
    out.append("| texts encoded | " + " | ".join("(not counted)" if c == "before" else f"{ch[c]['encoded']:,}"
                                                   for c in cols) + " |")
    if "before" in ch:
        out.append("")
        out.append(f"After / before: **{ch['after']['wall_s'] / ch['before']['wall_s']:.2f}** of today's wall time; "
                   f"the rerun (same store, new output folders): {ch['rerun']['wall_s'] / ch['before']['wall_s']:.2f}.")
    loads = [v["load"][0] for c in cols for v in ch[c]["stages"].values()]
    out.append(f"Load average (1 min) at the start of the stages: {min(loads):.1f} to {max(loads):.1f}.")
    out.append("")
    out.append("Commands (`$W` = the work folder; `before` ran the same ones on a worktree of `main`, without the "
               "`--embed-cache` option it does not have):")
    out.append("```")
    out.extend(v["command"] for v in ch["after"]["stages"].values())
    out.append("```")
    return out


def render(res: dict) -> str:
    runs = res.get("runs", [])
    high = [r for r in runs if max(r.get("load_start", 0), r.get("load_end", 0)) > LOAD_WARN]
    b = res.get("bare", {})
    lines = ["# Labeling at the embedder's own speed: the embedding store", "",
             "`python eval/bench_label.py` (see its docstring). Each `llmlabel` command runs as a subprocess (imports, "
             "model load, Parquet writes included), `OMP_NUM_THREADS=1` for it and for the bare encode it is "
             "compared with. Corpus: Banking77 train repeated with distinct suffixes; gold: 100 train rows drawn "
             "with seed 0. Every label row starts from an empty embedding store, except the rerun.", "",
             f"Machine: {res['machine']['cpus']} CPUs ({res['machine']['processor']}), Python "
             f"{res['machine']['python']}; shared with other work, under `nice -n 10`.", ""]
    for r in runs:
        lines.append(f"- {r['date']} (commit {r['commit']}): `{r['command']}`; load average {r.get('load_start')} "
                     f"at the start, {r.get('load_end')} at the end")
    if high:
        lines += ["", f"**The load average was above {LOAD_WARN:.0f} during {len(high)} of these runs** (other "
                  "engineers' jobs on the 2 cores): absolute seconds are slower than on a quiet machine; the ratios "
                  "compare runs made minutes apart under similar load, and each row records its own load."]
    lines += ["", "## `llmlabel label` against one bare encode pass", ""]
    lines += _label_table(res)
    lines += ["", "*ratio* = label texts/s / the bare embedder's texts/s on the same texts. *without the fixed "
              "start-up*: the label wall less that of the same command on 100 texts (imports, model load, LF set-up), "
              "the rate a longer run approaches. *reused in the run*: vectors one LF (or the gold / label texts) "
              "asked for that another had already encoded in this process."]
    for key in [k for k in b if k.endswith("-unsorted")]:
        u, s = b[key], b[key.removesuffix("-unsorted")]
        lines += ["", f"Bare MiniLM on {u['texts']:,} texts: {s['texts_per_s']:,.0f} texts/s with texts batched by "
                  f"length (this tree's `Embedder.encode`), {u['texts_per_s']:,.0f} texts/s in corpus order as "
                  f"the landed code did it ({s['texts_per_s'] / u['texts_per_s']:.1f}x); the ratios above use the "
                  "faster one."]
    wl = _wordllama(res)
    if wl:
        lines += ["", "## WordLlama LFs at 10^5 texts", ""] + wl
    chain = _chain(res)
    if chain:
        lines += ["", "## The known-labels chain on 10^4 texts: today (`main`) and with the store", ""] + chain
    return "\n".join(lines) + "\n"
