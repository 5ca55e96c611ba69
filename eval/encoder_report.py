"""Markdown for eval/encoder.py: one table per split (rows x sets), scores and encoder-training seconds."""

from __future__ import annotations

from pathlib import Path

SETS = ["youtube", "trec", "agnews", "banking77", "irony", "stance"]
LABELS = {"lr": "frozen MiniLM + LR on the gold", "lr_names": "frozen MiniLM + LR on gold + label anchors",
          "setfit": "SetFit (default recipe, MiniLM body)"}


def _label(row: str) -> str:
    kind, _, v = row.partition(":")
    if kind == "t":
        return f"tuned `{v}` + LR"
    if kind == "h":
        return f"tuned `{v}` + LR (full encoder of a run's fit: full + 2 halves)"
    return LABELS.get(row, row)


def _cell(r: dict) -> str:
    main = f"{r['acc']:.3f} / {r['macro_f1']:.3f}"
    return main + (f" ({r['official']:.3f})" if "official" in r else "")


def write_markdown(done: dict, path: Path) -> None:
    rows = done["rows"]
    lines = ["# A tuned encoder on 100 gold labels vs SetFit (issue 26)", "",
             "Written by `eval/encoder.py`. Runs (2 shared cores; seconds are wall time at the 1-minute load given):", ""]
    for r in done["runs"]:
        took = f"{r['seconds']} s" if r.get("seconds") is not None else "stopped before the end (its finished rows kept)"
        lines.append(f"- `{r['command']}`: {r['date']}, {took}, torch threads {r.get('threads')}, "
                     f"{r['machine']}, load {r['load_start']} at start / {r.get('load_end')} at end")
    for split in ("test", "dev"):
        keys = [k for k in rows if k.split("|")[2] == split]
        if not keys:
            continue
        sets = [s for s in SETS if any(k.split("|")[0] == s for k in keys)]
        order = list(dict.fromkeys(k.split("|")[1] for k in keys))
        lines += ["", f"## {split}: accuracy / macro-F1 (official TweetEval metric), N = 100 gold, seed 0", "",
                  "Mean: macro-F1 averaged over the sets (only for rows run on all of them).", "",
                  "| row | " + " | ".join(sets) + " | mean |", "|---|" + "---|" * (len(sets) + 1)]
        for row in order:
            cells, f1 = [], []
            for s in sets:
                r = next((rows[k] for k in keys if k.split("|")[:2] == [s, row]), None)
                cells.append(_cell(r) if r else "-")
                f1.append(r["macro_f1"] if r else None)
            mean = f"{sum(f1) / len(f1):.3f}" if None not in f1 else "-"
            lines.append(f"| {_label(row)} | " + " | ".join(cells) + f" | {mean} |")
        lines += ["", f"### {split}: encoder-training seconds (x SetFit's on the same set, same process) "
                      "[1-min load before / after]", "",
                  "| row | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
        for row in order:
            if row in ("lr", "lr_names"):
                continue
            cells = []
            for s in sets:
                r = next((rows[k] for k in keys if k.split("|")[:2] == [s, row]), None)
                # SetFit's row of the same split only: rows of another split ran in another process and load
                sf = next((rows[k] for k in keys if k.split("|")[:2] == [s, "setfit"]), None)
                if r is None:
                    cells.append("-")
                    continue
                ratio = f" (x{r['train_s'] / sf['train_s']:.2f})" if sf and sf["train_s"] else ""
                cells.append(f"{r['train_s']:.0f}{ratio} [{r['load'][0]}/{r['load'][1]}]")
            lines.append(f"| {_label(row)} | " + " | ".join(cells) + " |")
        hk = [k for k in keys if k.split("|")[1].startswith("h:")]
        if hk:
            lines += ["", f"### {split}: the gold's own out-of-fold LR accuracy (5 folds), by the space its fold is "
                          "embedded in", "", "| set | row | honest (`for_fold`: the other half's encoder) | "
                          "full encoder (saw those rows) | frozen MiniLM | fits: full / half0 / half1 s | "
                          "all three x SetFit |", "|---|---|---|---|---|---|---|"]
            for k in hk:
                r = rows[k]
                f = r.get("fits_s", {})
                sf = rows.get("|".join([k.split("|")[0], "setfit", "test"] + k.split("|")[3:]))
                ratio = f"x{sum(f.values()) / sf['train_s']:.2f}" if sf and sf["train_s"] else "-"
                lines.append(f"| {k.split('|')[0]} | `{k.split('|')[1]}` | {r['oof_honest']:.3f} | {r['oof_full']:.3f} | "
                             f"{r['oof_frozen']:.3f} | {f.get('full', 0):.0f} / {f.get('half0', 0):.0f} / "
                             f"{f.get('half1', 0):.0f} | {ratio} |")
    extra = path.with_name(path.stem + "-notes.md")  # hand-written reading of the figures, kept beside them
    if extra.is_file():
        lines += ["", extra.read_text(encoding="utf-8").strip()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
