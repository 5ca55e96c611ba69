"""eval/results/labelmodel.md from labelmodel.json (eval/labelmodel_suite.py writes both)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

WRENCH = ("youtube", "sms", "trec", "semeval")


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _acc(r: dict, name: str):
    m = r["models"].get(name)
    return m["acc"] if isinstance(m, dict) else None


def _m(r: dict, name: str, key: str):
    m = r["models"].get(name)
    return m.get(key) if isinstance(m, dict) else None


F1_ROW = "auto (dev, macro_f1)"
F1_HEAD = " auto chosen by macro-F1 | it chose | its top share |"


def _f1_cells(r: dict) -> str:
    if F1_ROW not in r["models"]:
        return " – | – | – |"
    return (f" {_acc(r, F1_ROW):.3f} / {_m(r, F1_ROW, 'macro_f1'):.3f} | {_m(r, F1_ROW, 'chosen') or ''} | "
            f"{_m(r, F1_ROW, 'pred_share_max'):.2f} |")


def _dev_section(sets: dict) -> list[str]:
    """The with-dev table: accuracy and macro-F1 of auto and of HyperLM semi-supervised, and the share of the
    commonest predicted class (a label model that wins on accuracy by predicting one class is no labeler)."""
    rows = [(n, r) for n, r in sets.items() if "auto (dev)" in r["models"]]
    by_f1 = any(F1_ROW in r["models"] for _, r in rows)
    head = ("| set | dev rows | MV | auto | auto - MV | auto chose | auto top share | HyperLM semi-supervised "
            "| its top share |" + (F1_HEAD if by_f1 else ""))
    lines = ["", "## With a dev set (`aggregate --dev`: `auto`)", "",
             "Accuracy / macro-F1 (ties and uncovered rows at random, as above); `top share` is the share of the "
             "voted rows given the commonest predicted class (seed 0).", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for n, r in rows:
        a, mv = _acc(r, "auto (dev)"), _acc(r, "mv")
        h = "hyperlm-semi (dev)"
        hs = "–" if _acc(r, h) is None else f"{_acc(r, h):.3f} / {_m(r, h, 'macro_f1'):.3f}"
        hshare = _m(r, h, "pred_share_max")
        lines.append(f"| {n} | {r.get('dev_rows', '')} | {mv:.3f} / {_m(r, 'mv', 'macro_f1'):.3f} | "
                     f"{a:.3f} / {_m(r, 'auto (dev)', 'macro_f1'):.3f} | {100 * (a - mv):+.1f} | "
                     f"{_m(r, 'auto (dev)', 'chosen') or ''} | {_m(r, 'auto (dev)', 'pred_share_max'):.2f} | {hs} | "
                     f"{'–' if hshare is None else f'{hshare:.2f}'} |" + (_f1_cells(r) if by_f1 else ""))
    gaps = [(n, _acc(r, "auto (dev)") - _acc(r, "mv")) for n, r in rows]
    hyp = [(n, r) for n, r in rows if _acc(r, "hyperlm-semi (dev)") is not None
           and _acc(r, "hyperlm-semi (dev)") > _acc(r, "mv")]
    both = [n for n, r in hyp if _acc(r, "hyperlm-semi (dev)") > _acc(r, "auto (dev)") + 0.005
            and _m(r, "hyperlm-semi (dev)", "macro_f1") > _m(r, "auto (dev)", "macro_f1") + 0.005]
    acc_only = [n for n, r in hyp if _acc(r, "hyperlm-semi (dev)") > _acc(r, "auto (dev)") + 0.005 and n not in both]
    if gaps:
        worst = min(gaps, key=lambda g: g[1])
        lines += ["", f"auto against majority vote: worst {worst[0]} {100 * worst[1]:+.1f} points; within one point on "
                      f"{sum(g >= -0.01 for _, g in gaps)} of {len(gaps)} sets. HyperLM semi-supervised is above "
                      f"majority vote on {len(hyp)} sets; it is more than half a point ahead of auto in accuracy and "
                      f"in macro-F1 on {len(both)} ({', '.join(both) or 'none'}), in accuracy only on {len(acc_only)}"
                      f" ({', '.join(acc_only) or 'none'})."]
    f1 = [(n, _m(r, F1_ROW, "macro_f1") - _m(r, "mv", "macro_f1"), _m(r, F1_ROW, "macro_f1")
           - _m(r, "auto (dev)", "macro_f1")) for n, r in rows if F1_ROW in r["models"]]
    if f1:
        worst = min(f1, key=lambda g: g[1])
        up, down = sum(d >= 0.01 for _, _, d in f1), sum(d <= -0.01 for _, _, d in f1)
        lines += ["", f"Chosen by macro-F1 (`aggregate --metric macro_f1`), on {len(f1)} sets: macro-F1 against "
                      f"majority vote's worst {worst[0]} {100 * worst[1]:+.1f} points, within one point on "
                      f"{sum(g >= -0.01 for _, g, _ in f1)}; against auto by accuracy, macro-F1 up a point or more "
                      f"on {up}, down a point or more on {down}, "
                      f"mean {100 * np.mean([d for _, _, d in f1]):+.2f}."]
    return lines


def write_markdown(out: dict, path: Path) -> Path:
    sets = out["sets"]
    lines = ["# Label model without gold, on every visible vote set", "", out["header"], ""]
    for run in out.get("runs", []):
        when = run["header"].split(" on ", 1)[-1]
        lines += [f"Its `{run['replaced']}` rows were then remade by `{run['command']}`: {when}", ""]
    lines += [
             "Accuracy with ties and rows no LF covers broken at random (mean of the seeds; WRENCH's protocol), on "
             "the rows each set scores. WRENCH sets: their published LFs, fitted on the train votes, scored on test. "
             "The other sets: the votes llmlabel's own no-gold LFs make through the CLI (`taxonomy --labels`, then "
             "`label` with key phrases + one MiniLM embedding LF at threshold 0.35, `:emb35`, or voting on every "
             "item, `:emb0`, the default LF set), fitted on every row without gold. MV = plain majority vote; the "
             "default is `aggregate`'s no-gold default (`heldout`).", "",
             "## No gold", "",
             "| set | classes | LFs | MV | **default** | default - MV | chose | mvb | onecoin-r | ds-r | wv-r | HyperLM | Snorkel |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    gaps = []
    for n, r in sets.items():
        mv, de = _acc(r, "mv"), _acc(r, "heldout")
        gaps.append((n, de - mv))
        chose = r["models"]["heldout"].get("chosen", "")
        lines.append(f"| {n} | {r['k']} | {r['lfs']} | {_f(mv)} | **{_f(de)}** | {100 * (de - mv):+.1f} | {chose} | "
                     + " | ".join(_f(_acc(r, m)) for m in ("mvb", "onecoin-r", "ds-r", "wv-r", "hyperlm", "snorkel"))
                     + " |")
    worst = min(gaps, key=lambda g: g[1])
    lines += ["", f"Default against majority vote: worst {worst[0]} {100 * worst[1]:+.1f} points; mean "
                  f"{100 * np.mean([g for _, g in gaps]):+.2f}; within one point on "
                  f"{sum(g >= -0.01 for _, g in gaps)} of {len(gaps)} sets, ahead by a point or more on "
                  f"{sum(g >= 0.01 for _, g in gaps)}."]
    wr = [n for n in WRENCH if n in sets]
    if wr:
        avg = {m: np.mean([_acc(sets[n], m) or np.nan for n in wr]) for m in ("mv", "heldout", "hyperlm", "snorkel")}
        lines.append("WRENCH average accuracy (" + ", ".join(wr) + "): " +
                     ", ".join(f"{m} {v:.3f}" for m, v in avg.items() if np.isfinite(v)) + ".")
    lines += ["", "Why each set's default kept or left majority vote:", ""]
    for n, r in sets.items():
        lines.append(f"- **{n}**: {r['models']['heldout'].get('reason', '')}")
    lines += _dev_section(sets)
    crit = out.get("criterion", [])
    if crit:
        passed = [c for c in crit if c.get("passes")]
        good = sum(c["accuracy_gain"] > 0 for c in passed)
        lines += ["", "## Does the evidence track accuracy?", "",
                  f"Over every (set, candidate) pair ({len(crit)}), the rank correlation between a candidate's "
                  f"held-out-LF agreement gain over majority vote and its accuracy gain is "
                  f"**{out['criterion_spearman']:.2f}** (Spearman). The default leaves majority vote only when a "
                  f"candidate passes the test (one-sided t over the LFs, at least 10 LFs scored, class shares within "
                  f"0.1 of majority vote's): {len(passed)} pairs passed, {good} of them with a real accuracy gain."]
        if passed:
            lines += ["", "| set | candidate | held-out gain | se | LFs | accuracy gain |", "|---|---|---|---|---|---|"]
            for c in passed:
                lines.append(f"| {c['set']} | {c['candidate']} | {c['criterion_gain']:+.4f} | {c['se'] or 0:.4f} | "
                             f"{c['lfs_scored']} | {100 * c['accuracy_gain']:+.1f} |")
    loso = out.get("loso")
    if loso:
        summ = loso.pop("_summary")
        lines += ["", "## Settings of the rule, and leave-one-set-out", "",
                  "Every setting scored on every set (accuracy minus majority vote's):", "",
                  "| setting | worst set | mean |", "|---|---|---|"]
        for v, s in summ.items():
            lines.append(f"| {v} | {100 * s['worst_gap']:+.1f} | {100 * s['mean_gap']:+.2f} |")
        lines += ["", "Leave one set out: the setting that does best on the other sets (worst gap first, then the "
                      "mean), scored on the set left out:", "", "| left out | chosen on the others | gap to MV |",
                  "|---|---|---|"]
        for n, r in loso.items():
            lines.append(f"| {n} | {r['chosen_on_the_others']} | {100 * r['gap_to_mv']:+.1f} |")
        loso["_summary"] = summ
    if out.get("notes"):
        lines += ["", "## Notes (added by hand after the runs)", ""] + [f"- {n}" for n in out["notes"]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    p = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "labelmodel.json")
    write_markdown(json.loads(p.read_text()), p.with_suffix(".md"))
