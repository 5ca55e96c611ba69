"""Markdown for eval/bench_label.py's results (kept apart so the runner stays short)."""

from __future__ import annotations

LOAD_WARN = 3.0


def _emb(r: dict, key: str) -> int:
    return sum(e.get(key, 0) for e in r.get("embeddings", {}).values())


def _loads(r: dict) -> str:
    return "/".join(f"{x:.1f}" for x in r.get("load", []))


def _label_table(res: dict) -> list[str]:
    out = ["| LFs | embedder | texts | `llmlabel label` wall s | texts/s | bare encode texts/s (same run) | ratio | "
           "encode texts/s inside the command | wall in the model | encoded | from the store | reused in the run | "
           "load before/after |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.get("label", []):
        enc, model_s = _emb(r, "encoded"), sum(e.get("model_s", 0.0) for e in r.get("embeddings", {}).values())
        inside = f"{enc / model_s:,.0f}" if enc and model_s else ""
        name = r["lfs"] + (" (rerun, same store)" if r.get("tag") == "rerun" else "")
        out.append(f"| {name} | {r['embedder']} | {r['texts']:,} | {r['wall_s']:.1f} | {r['texts_per_s']:,.0f} | "
                   f"{r['bare_texts_per_s']:,.0f} | {r['ratio']:.2f}x | {inside} | {model_s / r['wall_s']:.0%} | "
                   f"{enc:,} | {_emb(r, 'store_hits'):,} | {_emb(r, 'reused'):,} | {_loads(r)} |")
    fixed = res.get("fixed", {})
    if fixed:
        out += ["", "The same commands on 100 texts (imports, model load, LF set-up, the label texts' encode): "
                + ", ".join(f"{k} {v['wall_s']:.1f} s" for k, v in fixed.items()) + "."]
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
                   f"measured slope {slope * 1e3:.3f} ms a text = **{3600 / slope / 1e6:.1f} million texts/hour** on "
                   f"2 shared cores (the whole {b['texts']:,}-text run, start-up included: "
                   f"{b['texts'] / b['wall_s'] * 3600 / 1e6:.1f} million/hour)")
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
    out.append(f"Load average (1 min) at the start of the stages: {min(loads):.1f} to {max(loads):.1f}. What is left "
               "after the store is mostly `aggregate` (the label model's selection with the gold, no embeddings) and "
               "`distill`.")
    out.append("")
    out.append("Commands (`$W` = the work folder; `before` ran the same ones on a worktree of `main`, without the "
               "`--embed-cache` option it does not have):")
    out.append("```")
    out.extend(v["command"] for v in ch["after"]["stages"].values())
    out.append("```")
    return out


def _summary(res: dict) -> list[str]:
    out = []
    for r in res.get("label", []):
        if r["embedder"] == "minilm" and not r.get("tag"):
            today = {"no-gold": "0.29x", "known-labels": "0.08x"}[r["lfs"]]
            out.append(f"- `label` with the {r['lfs']} LFs (MiniLM), {r['texts']:,} texts: **{r['ratio']:.2f}x** the bare "
                       f"encode rate (the issue measured {today} on the landed code)")
    rerun = [r for r in res.get("label", []) if r.get("tag") == "rerun"]
    if rerun:
        out.append(f"- the same labeling again into a new folder: {_emb(rerun[0], 'encoded')} texts encoded, "
                   f"{_emb(rerun[0], 'store_hits'):,} from the store, {rerun[0]['wall_s']:.0f} s")
    ch = res.get("chain", {})
    if "before" in ch and "after" in ch:
        out.append(f"- the known-labels chain: **{ch['after']['wall_s'] / ch['before']['wall_s']:.2f}** of today's wall "
                   f"time ({ch['after']['wall_s']:.0f} s against {ch['before']['wall_s']:.0f} s); its rerun encodes "
                   f"{ch['rerun']['encoded']} texts")
    return out + [f"- {line[2:]}" for line in _wordllama(res)]


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
    lines += ["", "## Summary", ""] + _summary(res)
    lines += ["", "## `llmlabel label` against one bare encode pass", ""]
    lines += _label_table(res)
    lines += ["", "*ratio* = label texts/s (whole command: start-up, every LF, Parquet writes) / the bare embedder's "
              "texts/s on the same texts, measured in the benchmark's process minutes before. *encode texts/s inside "
              "the command* and *wall in the model*: what the command itself reported (texts encoded, seconds in the "
              "model). *reused in the run*: vectors an LF (or the gold / label texts) asked for that another had "
              "already encoded in the process. Under a load of 5 to 8 the same encode varies by +-20% from minute to "
              "minute, which is why a ratio can exceed 1."]
    for key in [k for k in b if k.endswith("-unsorted")]:
        u, s = b[key], b[key.removesuffix("-unsorted")]
        lines += ["", f"Bare MiniLM on {u['texts']:,} texts: {s['texts_per_s']:,.0f} texts/s with texts batched by "
                  f"length (this tree's `Embedder.encode`), {u['texts_per_s']:,.0f} texts/s in corpus order as "
                  f"the landed code did it ({s['texts_per_s'] / u['texts_per_s']:.1f}x); the ratios above use the "
                  "faster one."]
    wl = _wordllama(res)
    if wl:
        lines += ["", "## WordLlama LFs at 10^5 texts", ""] + wl + [
            "", "With WordLlama the embedder is no longer what labeling waits for (the *wall in the model* column): "
            "start-up, the 77 key-phrase keyword LFs (one Arrow regex scan each per shard: about 0.35 s per 1,000 "
            "texts, 0.73 s before their phrases were joined into one pattern per LF) and, for the known-labels LFs, "
            "fitting the cross-fitted logistic regressions take the rest."]
    chain = _chain(res)
    if chain:
        lines += ["", "## The known-labels chain on 10^4 texts: today (`main`) and with the store", ""] + chain
    return "\n".join(lines) + "\n"
