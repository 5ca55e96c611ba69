"""Two suite runs' (d) rows side by side: official score, shipped recipe, the tuned encoder's seconds, the safety
net's CPU and the chain's CPU with the net over without it. For a change measured as an A/B on one machine (both
runs in one session, each on an empty embedding store).

    python eval/suite_compare.py BEFORE.json AFTER.json --out eval/results/NAME --title "..." [--note "..."]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite_report import cpu_ratio, net_cpu  # noqa: E402


def _recipe(r: dict) -> str:
    c = r["safety_net"]["chosen"]
    return f"{c['student']}, weak: {c['weak']}"


def _s(x) -> str:
    return "–" if x is None else f"{x:.0f}"


def compare(before: dict, after: dict) -> dict:
    rows = {}
    for key, b in after["rows"].items():
        a = before["rows"].get(key)
        if "|d|" not in key or a is None:
            continue
        rows[key.split("|")[0]] = {
            side: {"official": r["official"], "recipe": _recipe(r), "halves_s": r["safety_net"]["encoder_seconds"],
                   "full_fit_s": r["safety_net"].get("encoder_full_seconds"), "net_cpu_s": round(net_cpu(r), 1),
                   "chain_cpu_s": r["chain_cpu_seconds"], "ratio": round(cpu_ratio(r), 2)}
            for side, r in (("before", a), ("after", b))}
    return rows


def render(rows: dict, title: str, commands: list[str], notes: list[str]) -> str:
    out = [f"# {title}", ""] + [f"- {c}" for c in commands] + [""]
    out += ["| set | official before | after | shipped before | after | tuned halves s before | after | full fit s "
            "before | after | net CPU s before | after | chain CPU s before | after | with / without net before "
            "| after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        b, a = r["before"], r["after"]
        out.append(f"| {name} | {b['official']:.4f} | {a['official']:.4f} | {b['recipe']} | {a['recipe']} | "
                   f"{_s(b['halves_s'])} | {_s(a['halves_s'])} | {_s(b['full_fit_s'])} | {_s(a['full_fit_s'])} | "
                   f"{b['net_cpu_s']:.0f} | {a['net_cpu_s']:.0f} | {b['chain_cpu_s']:.0f} | {a['chain_cpu_s']:.0f} | "
                   f"{b['ratio']:.1f}x | {a['ratio']:.1f}x |")
    tot = {s: sum(r[s]["halves_s"] + (r[s]["full_fit_s"] or 0) for r in rows.values()) for s in ("before", "after")}
    rb = np.array([r["before"]["ratio"] for r in rows.values()])
    ra = np.array([r["after"]["ratio"] for r in rows.values()])
    same = sum(r["before"]["recipe"] == r["after"]["recipe"] for r in rows.values())
    out += ["", f"Over the {len(rows)} sets: the tuned encoder's fits (halves + full fit, wall seconds) "
            f"{tot['before']:,.0f} -> {tot['after']:,.0f} s; the chain with the net over without it, median "
            f"{np.median(rb):.1f}x -> {np.median(ra):.1f}x, at most 2x on {int((rb <= 2.0).sum())} -> "
            f"{int((ra <= 2.0).sum())} sets; the same shipped recipe on {same} of {len(rows)}."]
    return "\n\n".join(["\n".join(out)] + list(notes)) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args(argv)
    runs = [json.loads(Path(p).read_text()) for p in (args.before, args.after)]
    commands = [f"{side}: " + "; ".join(f"{r['header']} Wall time {r['seconds']:,} s, load {r['load_start']} at the "
                                        f"start, {r['load_end']} at the end." for r in run.get("runs", []))
                for side, run in zip(("before", "after"), runs)]
    rows = compare(*runs)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "commands": commands, "notes": args.note},
                                                   indent=1))
    out.with_suffix(".md").write_text(render(rows, args.title, commands, args.note))
    print(f"wrote {out}.md / .json")


if __name__ == "__main__":
    main()
