"""eval/results/suite.md from suite.json (eval/suite.py writes both; this rebuilds the table from the cache)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

NAMES = {"a": "(a) zero-shot", "c_lr": "(c) LR on gold", "c_setfit": "(c) SetFit", "d": "(d) chain + gold",
         "e": "(e) chain, no gold"}
TIE = 0.01


def _cell(r: dict | None, key: str = "official") -> str:
    return "–" if not r else f"{r[key]:.3f}"


def _sec(x) -> str:
    return "–" if x is None else f"{x:.0f}"


def write_markdown(done: dict, path: Path, budget: int | str = 100, seed: int = 0) -> Path:
    rows = done["rows"]
    sets = list(dict.fromkeys(k.split("|")[0] for k in rows))
    get = lambda s, r: rows.get(f"{s}|{r}|{budget}|{seed}")  # noqa: E731
    per_class = str(budget).endswith("/class")
    drawn = (f"{str(budget).split('/')[0]} gold rows of every class" if per_class else f"{budget} gold labels")
    lines = [f"# The suite: every visible set, {drawn} and none", ""]
    for run in done.get("runs", [])[-1:]:
        lines += [run["header"], f"Wall time {run['seconds']:,} s; load average {run['load_start']} at the start, "
                                 f"{run['load_end']} at the end.", ""]
    for run in done.get("runs", [])[:-1]:
        if run.get("part"):  # rows made by another process and merged in (e.g. the SetFit rows), or a check
            lines += [f"Also {'merged in' if run.get('merged', True) else 'run, its rows not merged'}, "
                      f"{run['part']}: `{run['command']}` ({run['seconds']:,} s, load "
                      f"{run['load_start']} at the start, {run['load_end']} at the end).", ""]
    lines += [n + "\n" for n in done.get("notes", [])]  # how rows from several runs fit together
    lines += [f"{'Gold: ' + drawn if per_class else f'N = {budget} gold'} drawn from the corpus (seed {seed}); every "
              "figure on the test split, in the set's official metric (accuracy and macro-F1 in suite.json). "
              "(d) and (e) are `llmlabel auto` + `llmlabel "
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
    ds = [(s, get(s, "d")["official"] - get(s, "c_setfit")["official"]) for s in sets
          if get(s, "d") and get(s, "c_setfit")]
    if ds:
        lines.append(f"(d) against (c) SetFit on the {len(ds)} sets it ran on: {sum(g > TIE for _, g in ds)} wins, "
                     f"{sum(abs(g) <= TIE for _, g in ds)} ties (within {100 * TIE:.0f} point), "
                     f"{sum(g < -TIE for _, g in ds)} losses; (d) >= SetFit on {sum(g >= 0 for _, g in ds)} ("
                     + ", ".join(f"{x} {100 * g:+.1f}" for x, g in ds) + ").")
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
    lines += _cpu_table(sets, get)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def net_cpu(d: dict) -> float:
    """What the suite counts as the net's CPU: its own, the cross-fitted labels made for it, the full fit."""
    net = d.get("safety_net") or {}
    return ((net.get("cpu_seconds") or 0) + (net.get("encoder_full_cpu_seconds") or 0)
            + (net.get("crossfit_cpu_seconds") or 0))


def cpu_ratio(d: dict) -> float:
    """The (d) chain's CPU over the same chain's without the net (the issue's budget: 2x)."""
    cpu = d["chain_cpu_seconds"]
    return cpu / max(cpu - net_cpu(d), 1e-9)


def _cpu_table(sets, get) -> list[str]:
    """CPU seconds of the (d) chain (``llmlabel auto``, every thread of the child process), of its safety net, of
    the cross-fitted labels ``aggregate`` makes for the net alone (rows from before they were timed: not counted,
    "–") and of the tuned encoder's full fit when that shipped, and the chain's CPU over the same chain's without
    those: what the net costs (the issue's budget: 2x)."""
    have = [s for s in sets if (get(s, "d") or {}).get("chain_cpu_seconds") is not None]
    if not have:
        return []
    out = ["", "CPU seconds of (d) (`llmlabel auto`, every thread; rows above are wall seconds), of its safety net "
               "(metrics.json `safety_net.cpu_seconds`), of the cross-fitted labels `aggregate --gold` makes for the "
               "net alone (`safety_net.crossfit_cpu_seconds`) and of the full fit of the tuned encoder when the net "
               "shipped it; the ratio is the chain's CPU over the chain's CPU without those three:", "",
           "| set | (d) chain CPU s | safety net CPU s | cross-fitted labels CPU s | full fit CPU s | "
           "with the net / without |", "|---|---|---|---|---|---|"]
    ratios = []
    for s in have:
        d = get(s, "d")
        net = d.get("safety_net") or {}
        cpu, own, full = d["chain_cpu_seconds"], net.get("cpu_seconds") or 0, net.get("encoder_full_cpu_seconds")
        side = net.get("crossfit_cpu_seconds")
        r = cpu_ratio(d)
        ratios.append(r)
        out.append(f"| {s} | {cpu:.0f} | {own:.0f} | {_sec(side)} | {_sec(full)} | {r:.1f}x |")
    out += ["", f"With the net over without: {min(ratios):.1f}x to {max(ratios):.1f}x, median "
                f"{float(np.median(ratios)):.1f}x; at most 2x on {sum(r <= 2 for r in ratios)} of {len(ratios)} sets."]
    return out


if __name__ == "__main__":
    p = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "suite.json")
    write_markdown(json.loads(p.read_text()), p.with_suffix(".md"))
