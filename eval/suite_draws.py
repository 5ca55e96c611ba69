"""The suite's (c) and (d) rows on several draws of the 100 gold rows: does what the table says of one draw hold
on others?

Every figure in suite.md comes from one draw of the gold (seed 0), and the issues' goals are read off it: (d) at
least (c) - 1 everywhere, (d) at least (c) + 3 on most sets, (d) at least (a). A user's gold is another draw, and
so is the gold of the sets held back from us. This script sets the suite's runs of other seeds (``python
eval/suite.py --rows c_lr d --seed N``, each in its own ``LLMLABEL_SUITE_WORK``) beside the table's and counts,
per draw and over all of them, where each goal holds. (a) does not depend on the draw (zero-shot reads no gold).

    python eval/suite_draws.py /tmp/suite-s1/suite.json /tmp/suite-s2/suite.json --out eval/results/suite-draws
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402


def _rows(paths: list[Path]) -> dict:
    out: dict = {}
    for p in paths:
        out.update(json.loads(p.read_text())["rows"])
    return out


def table(rows: dict, sets: list[str], seeds: list[int]) -> dict:
    """Per set and seed: (c), (d), what (d) shipped; and (a)."""
    res = {}
    for s in sets:
        res[s] = {"a": rows[f"{s}|a|100|0"]["official"], "metric": rows[f"{s}|c_lr|100|0"]["metric"], "draws": {}}
        for q in seeds:
            c, d = rows.get(f"{s}|c_lr|100|{q}"), rows.get(f"{s}|d|100|{q}")
            if c is None or d is None:
                continue
            ch = (d.get("safety_net") or {}).get("chosen") or {}
            res[s]["draws"][q] = {"c": c["official"], "d": d["official"],
                                  "shipped": f"{ch.get('student', '?')}, weak: {ch.get('weak', '?')}"}
    return res


def report(res: dict, seeds: list[int], head: str, sources: list[str], note: str = "") -> str:
    lines = ["# The suite on other draws of the gold", "", head, "",
             "Rows read from: " + ", ".join(f"`{p}`" for p in sources) + " (a row in a later file replaces the same "
             "row of an earlier one)." + (f" {note}" if note else ""), "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "Official metric on the test split; `d - c` in points; seed 0 is the draw of suite.md.", "",
             "| set | metric | (a) | " + " | ".join(f"seed {q}: (c) / (d) / d - c / shipped" for q in seeds) + " |",
             "|---|---|---|" + "---|" * len(seeds)]
    for s, r in res.items():
        cells = []
        for q in seeds:
            x = r["draws"].get(q)
            cells.append("–" if x is None else
                         f"{x['c']:.3f} / {x['d']:.3f} / {100 * (x['d'] - x['c']):+.1f} / {x['shipped']}")
        lines.append(f"| {s} | {r['metric']} | {r['a']:.3f} | " + " | ".join(cells) + " |")
    lines += ["", "Per draw: sets where (d) >= (c) + 3, where (d) < (c) - 1 (the floor broken), where (d) < (a); "
              "the worst d - c:", ""]
    every = []
    for q in seeds:
        g = [(s, 100 * (r["draws"][q]["d"] - r["draws"][q]["c"]), r["draws"][q]["d"] < r["a"])
             for s, r in res.items() if q in r["draws"]]
        every += g
        if not g:
            continue
        worst = min(g, key=lambda t: t[1])
        below_a = [s for s, _, b in g if b]
        lines.append(f"- seed {q} ({len(g)} sets): >= +3 on {sum(x >= 3 for _, x, _ in g)}, below -1 on "
                     f"{sum(x < -1 for _, x, _ in g)}, below (a) on {len(below_a)}"
                     + (f" ({', '.join(below_a)})" if below_a else "") + f"; worst {worst[1]:+.1f} ({worst[0]})")
    if every:
        x = np.array([t[1] for t in every])
        lines.append(f"- all draws ({len(x)} set-draws): >= +3 on {int((x >= 3).sum())}, below -1 on "
                     f"{int((x < -1).sum())}, mean d - c {x.mean():+.1f}")
        lines += ["", "Per set over the draws: mean d - c (min, max):", ""]
        for s, r in res.items():
            v = [100 * (x["d"] - x["c"]) for x in r["draws"].values()]
            if v:
                lines.append(f"- {s}: {np.mean(v):+.1f} ({min(v):+.1f}, {max(v):+.1f}) over {len(v)} draws")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="suite.json files of runs at other seeds")
    ap.add_argument("--suite", type=Path, default=Path(__file__).parent / "results" / "suite.json")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite-draws")
    ap.add_argument("--note", default="", help="what the run files are, said under the header")
    args = ap.parse_args(argv)
    rows = _rows([args.suite, *args.runs])
    seeds = sorted({int(k.split("|")[3]) for k in rows if k.count("|") == 3 and "|d|" in k})
    sets = list(dict.fromkeys(k.split("|")[0] for k in rows if k.endswith("|d|100|0")))
    res = table(rows, sets, seeds)
    given = [str(a) for a in sys.argv[1:] if a not in ("--note", args.note)]
    cmd = "python " + " ".join([str(Path(sys.argv[0]))] + given + (["--note '...'"] if args.note else []))
    sources = [str(args.suite), *map(str, args.runs)]
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "sources": sources, "sets": res},
                                                        indent=1) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(report(res, seeds, header(cmd), sources, args.note), encoding="utf-8")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
