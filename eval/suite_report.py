"""eval/results/suite.md from suite.json (eval/suite.py writes both; this rebuilds the table from the cache)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {"a": "(a) zero-shot", "c_lr": "(c) LR on gold", "c_setfit": "(c) SetFit", "d": "(d) chain + gold",
         "e": "(e) chain, no gold"}
TIE = 0.01


def _cell(r: dict | None, key: str = "official") -> str:
    return "–" if not r else f"{r[key]:.3f}"


def _sec(x) -> str:
    return "–" if x is None else f"{x:.0f}"


def write_markdown(done: dict, path: Path, budget: int = 100, seed: int = 0) -> Path:
    rows = done["rows"]
    sets = list(dict.fromkeys(k.split("|")[0] for k in rows))
    get = lambda s, r: rows.get(f"{s}|{r}|{budget}|{seed}")  # noqa: E731
    lines = ["# The suite: every visible set, 100 gold labels and none", ""]
    for run in done.get("runs", [])[-1:]:
        lines += [run["header"], f"Wall time {run['seconds']:,} s; load average {run['load_start']} at the start, "
                                 f"{run['load_end']} at the end.", ""]
    for run in done.get("runs", [])[:-1]:
        if run.get("part"):  # rows made by another process and merged in (e.g. the SetFit rows), or a check
            lines += [f"Also {'merged in' if run.get('merged', True) else 'run, its rows not merged'}, "
                      f"{run['part']}: `{run['command']}` ({run['seconds']:,} s, load "
                      f"{run['load_start']} at the start, {run['load_end']} at the end).", ""]
    lines += [n + "\n" for n in done.get("notes", [])]  # how rows from several runs fit together
    lines += [f"N = {budget} gold drawn from the corpus (seed {seed}); every figure on the test split, in the set's "
              "official metric (accuracy and macro-F1 in suite.json). (d) and (e) are `llmlabel auto` + `llmlabel "
              "predict` exactly as the README documents; (a) and (c) are the baselines a user would pick instead.", "",
              "| set | metric | " + " | ".join(NAMES.values()) + " | (d) - (c) LR | what (d) shipped |",
              "|---|---|" + "---|" * (len(NAMES) + 2)]
    wins = ties = losses = 0
    gaps = []
    for s in sets:
        d, c = get(s, "d"), get(s, "c_lr")
        metric = next((r["metric"] for r in (get(s, x) for x in NAMES) if r), "?")
        gap = "–"
        if d and c:
            g = d["official"] - c["official"]
            gaps.append((s, g))
            gap = f"{100 * g:+.1f}"
            wins += g > TIE
            losses += g < -TIE
            ties += abs(g) <= TIE
        shipped = ""
        if d and d.get("safety_net"):
            ch = d["safety_net"]["chosen"]
            shipped = f"{ch['student']}, weak: {ch['weak']}"
        elif d:
            shipped = str(d.get("student", ""))
        lines.append(f"| {s} | {metric} | " + " | ".join(_cell(get(s, r)) for r in NAMES) + f" | {gap} | {shipped} |")
    lines += ["", f"(d) against (c) LR on the gold: {wins} wins, {ties} ties (within {100 * TIE:.0f} point), "
              f"{losses} losses."]
    if gaps:
        worst = min(gaps, key=lambda x: x[1])
        lines.append(f"Worst gap: {worst[0]} {100 * worst[1]:+.1f} points; (d) >= (c) - 1 point on "
                     f"{sum(g >= -TIE for _, g in gaps)} of {len(gaps)} sets; (d) >= (c) + 3 on "
                     f"{sum(g >= 0.03 for _, g in gaps)}.")
    da = [(s, get(s, "d")["official"] - get(s, "a")["official"]) for s in sets if get(s, "d") and get(s, "a")]
    if da:
        lines.append(f"(d) >= (a) on {sum(g >= -TIE for _, g in da)} of {len(da)} sets.")
    lines += ["", "Wall time per row (seconds, this machine); for (d) also the safety net's share (metrics.json "
              "`safety_net.seconds`) and, within it, getting the tuned encoder's halves (two fine-tunings on half "
              "the gold each); where the tuned candidate shipped, the full fit made after the net (not in the net's "
              "seconds):", "",
              "| set | " + " | ".join(NAMES.values()) + " | (d): safety net | (d): of which tuned halves "
              "| (d): full fit after the net |",
              "|---|" + "---|" * (len(NAMES) + 3)]
    for s in sets:
        net = (get(s, "d") or {}).get("safety_net") or {}
        lines.append(f"| {s} | " + " | ".join("–" if not get(s, r) else f"{get(s, r)['seconds']:.0f}"
                                             for r in NAMES)
                     + f" | {_sec(net.get('seconds'))} | {_sec(net.get('encoder_seconds'))} "
                       f"| {_sec(net.get('encoder_full_seconds'))} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    p = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "suite.json")
    write_markdown(json.loads(p.read_text()), p.with_suffix(".md"))
