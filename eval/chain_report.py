"""eval/results/chain.md from the JSON rows eval/chain.py writes (merged with any sibling chain-*.json)."""

from __future__ import annotations

import json
from pathlib import Path

SETS = ["banking77", "agnews", "youtube", "trec"]
NAMES = {"a": "(a) zero-shot embedding (MiniLM, nearest label)", "c_lr": "(c) N gold: frozen MiniLM + LR",
         "c_setfit": "(c) N gold: SetFit (MiniLM body, default recipe)", "d": "(d) llmlabel chain, N gold, static student",
         "d_minilm": "(d) llmlabel chain, N gold, MiniLM student", "e": "(e) llmlabel chain, no gold, static student",
         "e_minilm": "(e) llmlabel chain, no gold, MiniLM student", "f": "(f) ceiling: static student on all corpus gold",
         "d_setfit": "(d) + `kind: setfit` LF, static student",
         "d_setfit:minilm": "(d) + `kind: setfit` LF, MiniLM student",
         "d_setfit_full": "(d) + `kind: setfit` LF at SetFit's pair budget, static student",
         "d_setfit_full:minilm": "(d) + `kind: setfit` LF at SetFit's pair budget, MiniLM student",
         "d_tuned": "(d) gold LFs on the tuned encoder + `kind: setfit`, static student",
         "d_tuned:tuned": "(d) gold LFs on the tuned encoder + `kind: setfit`, MiniLM student from the tuned encoder"}
ROWS = ("a", "c_lr", "c_setfit", "d", "d_minilm", "d_setfit", "d_setfit:minilm", "d_setfit_full",
        "d_setfit_full:minilm", "d_tuned", "d_tuned:tuned", "e", "e_minilm", "f")
STUDENTS = (("d", "e", "static"), ("d_minilm", "e_minilm", "MiniLM"), ("d_setfit", None, "static + setfit LF"),
            ("d_setfit:minilm", None, "MiniLM + setfit LF"), ("d_setfit_full:minilm", None, "MiniLM + full setfit LF"),
            ("d_tuned", None, "static, tuned encoder"), ("d_tuned:tuned", None, "MiniLM from the tuned encoder"))
GOLD_ROWS = ("c_lr", "c_setfit", "d", "d_minilm", "d_setfit", "d_setfit:minilm", "d_setfit_full",
             "d_setfit_full:minilm", "d_tuned", "d_tuned:tuned")


def merged(done: dict, folder: Path) -> dict:
    rows, runs = dict(done["rows"]), list(done["runs"])
    for p in sorted(folder.glob("chain-*.json")):
        other = json.loads(p.read_text())
        for k, v in other["rows"].items():
            rows.setdefault(k, v)
        runs += [dict(r, file=p.name) for r in other["runs"]]
    return {"rows": rows, "runs": runs}


def _get(rows, s, m, n, seed=0):
    """A row; ``method:student`` is another student trained on that row's labels (its ``by_student``)."""
    if m is None:
        return None
    m, _, student = m.partition(":")
    r = rows.get(f"{s}|{m}|{n}|{seed}")
    return r if not student or r is None else r.get("by_student", {}).get(student)


def _fmt(r, key="acc"):
    return "-" if r is None else f"{r[key]:.3f}"


def _cut(t) -> str:
    return f"{float(t):.2f}" if str(t) not in ("inf", "-inf") else str(t)


def _smollm2(rows, sets) -> list[str]:
    """(b) runs on a fixed test subset, so it gets its own table with (a) scored on the same rows."""
    got = [(s, _get(rows, s, "b", 0)) for s in sets if _get(rows, s, "b", 0)]
    if not got:
        return []
    L = ["", "## (b) SmolLM2-135M-Instruct zero-shot, on a fixed test subset", "",
         "`hf:smollm2` on CPU, the `lf_zero_shot` prompt with label names and descriptions, every label scored as "
         "an answer, then prior matching to a uniform class mix over the subset. (a) is scored on the same rows.", "",
         "| set | test rows | (b) acc / macro-F1 | (b) without prior matching | (a) on the same rows | items/s | "
         "LLM calls |", "|---|---|---|---|---|---|---|"]
    for s, r in got:
        L.append(f"| {s} | {r['n_test']} | {r['acc']:.3f} / {r['macro_f1']:.3f} | {r['no_prior_matching']['acc']:.3f} "
                 f"| {r['a_on_subset']['acc']:.3f} | {r['items_per_second']:.2f} | {r['llm_calls']} |")
    return L


def write_markdown(done: dict, path: Path, budget: int = 100) -> None:
    d = merged(done, path.parent)
    rows = d["rows"]
    sets = [s for s in SETS if any(k.startswith(s + "|") for k in rows)]
    L = ["# What a user ships: known label set + N gold labels (issue 14)", ""]
    L += ["Commands, dates, machine and 1-minute load (2 shared cores: seconds are wall time at the load given; "
          "a load of ~2 is one job on both cores, 10-21 is several helpers' jobs at once):", ""]
    for r in d["runs"]:
        L.append(f"- `{r['command']}` ({r.get('file', 'chain.json')}): {r['date']}, {r['seconds']} s, "
                 f"{r['machine']}, 1-min load {r['load_start']} at start / {r['load_end']} at end")
    L += ["", f"## Test accuracy / macro-F1 at N = {budget} gold (drawn from the corpus, seed 0)", "",
          "| method | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for m in ROWS:
        n = budget if m in GOLD_ROWS else 0
        cells = [f"{_fmt(_get(rows, s, m, n))} / {_fmt(_get(rows, s, m, n), 'macro_f1')}" for s in sets]
        L.append(f"| {NAMES[m]} | " + " | ".join(cells) + " |")
    L += _smollm2(rows, sets)
    L += ["", "## Goals at N = 100", "",
          "| set | student | best (c) | (d) | (d) - best (c) | share of the (c)->(f) gap closed by (d) | (d) >= (a) "
          "| (e) >= (a) |", "|---|---|---|---|---|---|---|---|"]
    for s in sets:
        cs = [r for r in (_get(rows, s, "c_lr", budget), _get(rows, s, "c_setfit", budget)) if r]
        a, f = _get(rows, s, "a", 0), _get(rows, s, "f", 0)
        for dm, em, student in STUDENTS:
            dd, e = _get(rows, s, dm, budget), _get(rows, s, em, 0)
            if not cs or dd is None:
                continue
            c = max(r["acc"] for r in cs)
            gap = f"{(dd['acc'] - c) / (f['acc'] - c):+.0%}" if f and f["acc"] > c else "-"
            L.append(f"| {s} | {student} | {c:.3f} | {dd['acc']:.3f} | {100 * (dd['acc'] - c):+.1f} pts | {gap} | "
                     f"{'yes' if a and dd['acc'] >= a['acc'] else 'no'} | "
                     f"{'-' if e is None or a is None else ('yes' if e['acc'] >= a['acc'] else 'no')} |")
    budgets = sorted({int(k.split("|")[2]) for k in rows if k.split("|")[1] in ("c_lr", "d")})
    if budgets:
        L += ["", "## Gold-budget curve (test accuracy): (c) frozen MiniLM + LR vs (d) the chain", "",
              "| set | " + " | ".join(f"N={n} (c) / (d)" for n in budgets) + " |", "|---|" + "---|" * len(budgets)]
        for s in sets:
            L.append(f"| {s} | " + " | ".join(f"{_fmt(_get(rows, s, 'c_lr', n))} / {_fmt(_get(rows, s, 'd', n))}"
                                              for n in budgets) + " |")
    L += ["", "## Where the chain's accuracy comes from (label model on the corpus, gold rows excluded)", "",
          "LFs: coverage / accuracy on the corpus (gold rows excluded); `cut` is the abstain threshold `threshold: auto` "
          "chose on the gold out-of-fold (-inf: votes everywhere; inf: never). *Probe on labels* is a diagnostic, "
          "not shipped: frozen MiniLM + LR trained on the same targets as the student, on test; when it beats the "
          "student by far, the student stage loses what the labels hold.", "",
          "| set | run | label model | LM acc on corpus | LM coverage | LFs (coverage / acc on corpus; cut) | "
          "student test acc | probe on labels | LF s | student train s | total s | LLM calls |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sets:
        for m, n in [("e", 0), ("e_minilm", 0)] + [("d", b) for b in budgets] + [("d_minilm", budget),
                                                                                  ("d_setfit", budget),
                                                                                  ("d_setfit_full", budget),
                                                                                  ("d_tuned", budget)]:
            r = _get(rows, s, m, n)
            if r is None:
                continue
            lm = r["label_model"]
            lfs = "; ".join(f"{k} {v['coverage']:.2f} / " + ("-" if v["acc"] is None else f"{v['acc']:.2f}")
                            + (f" (cut {_cut(v['chosen']['threshold'])})" if "chosen" in v else "")
                            for k, v in r["lfs"].items())
            probe = r.get("probe_on_labels")
            L.append(f"| {s} | {m} N={n} | {lm['chosen']} | {lm['acc']:.3f} | {lm['coverage']:.3f} | {lfs} "
                     f"(+ {r['n_lfs'] - len(r['lfs'])} keyword/WRENCH LFs) | {r['acc']:.3f} | "
                     f"{'-' if probe is None else format(probe['acc'], '.3f')} | {r['lf_seconds']} | "
                     f"{r['train_seconds']:.0f} | {r['seconds']:.0f} | {r['llm_calls']} |")
    ind = [(s, _get(rows, s, "i", budget)) for s in SETS if _get(rows, s, "i", budget)]
    if ind:
        L += ["", f"## Induced taxonomy, no label names given (N = {budget} gold used only to map labels to classes)",
              "", "`taxonomy` with no `--labels` (no LLM, `--max-labels` = the true number of classes) -> the no-gold "
              "chain's LFs over the induced labels -> label model -> static student. NMI: student's test predictions "
              "vs gold; mapped: each induced label -> the class most of the gold budget's items predicted as it carry.",
              "", "| set | induced labels | taxonomy NMI on corpus | label model | student NMI on test | "
              "mapped acc / macro-F1 on test | classes reached by the mapping | total s |",
              "|---|---|---|---|---|---|---|---|"]
        for s, r in ind:
            L.append(f"| {s} | {r['n_induced']} | {r['taxonomy_nmi_on_corpus']:.3f} | {r['label_model']} | "
                     f"{r['nmi']:.3f} | {r['acc']:.3f} / {r['macro_f1']:.3f} | {r['mapped_to_classes']} | "
                     f"{r['seconds']:.0f} |")
    extra = path.with_name(path.stem + "-notes.md")
    if extra.is_file():
        L += ["", extra.read_text().strip()]
    path.write_text("\n".join(L) + "\n")
