"""The suite's multi-label sets (GoEmotions): the README's multi-label recipe beside the baselines, per gold budget.

    python eval/suite.py --sets goemotions --budgets 100 1000 --out eval/results/suite-goemotions

Rows, scored on the test split only (GoEmotions: dev.tsv; the corpus is a seeded 6,000-row sample of train.tsv and
the N gold rows are drawn from it with a fixed seed; the 100 are a subset of the 1,000):
(a)    zero-shot embedding: cosine of each test text to each label name (frozen MiniLM); per-label thresholds
       F1-optimal on the N gold's cosines (labels without a gold positive: the one threshold that is best over
       all labels); no model is fitted, only thresholds on the gold;
(c_lr) one-vs-rest logistic regression on frozen MiniLM embeddings of the N gold (scikit-learn, C=1, one binary
       model per label with a gold positive, the others never predicted); class weighting (none or balanced) and
       per-label thresholds chosen on 5-fold out-of-fold probabilities of the gold (thresholds F1-optimal per
       label on the 0.05-step grid, weighting by out-of-fold macro-F1), then refitted on all N gold;
(d)    the chain with the gold: ``llmlabel auto corpus.jsonl -o RUN --multi-label --labels labels.yaml --gold
       gold.jsonl`` then ``llmlabel predict RUN/model test.jsonl``;
(e)    the chain without gold: the same without ``--gold``.
Metric: macro-F1 over the 28 leaf labels (official), with micro-F1 and the Ekman group level beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from llmlabel.multilabel_metrics import best_thresholds, group_matrix, multilabel_f1

ROWS = ("a", "c_lr", "d", "e")


def _jsonl(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def _names(b, y) -> list[str]:
    return [b.labels[j] for j in np.flatnonzero(y)]


def prepare(b, work: Path, budgets, seed: int, draw_gold) -> Path:
    """corpus.jsonl, labels.yaml (the two-level tree), gold-N-seed.jsonl per budget, test.jsonl (scoring only)."""
    import yaml

    d = work / b.name
    d.mkdir(parents=True, exist_ok=True)
    _jsonl(d / "corpus.jsonl", ({"id": i, "text": t} for i, t in zip(b.corpus_ids, b.corpus_texts)))
    (d / "labels.yaml").write_text(yaml.safe_dump(b.tree, sort_keys=False), encoding="utf-8")
    for n in budgets:
        g = draw_gold(len(b.corpus_texts), n, seed)
        _jsonl(d / f"gold-{n}-{seed}.jsonl", ({"id": b.corpus_ids[i], "text": b.corpus_texts[i],
                                               "labels": _names(b, b.corpus_y[i])} for i in g))
    _jsonl(d / "test.jsonl", ({"id": f"test-{j}", "text": t} for j, t in enumerate(b.test_texts)))
    return d


def metrics(b, pred: np.ndarray) -> dict:
    groups = {leaf: g for g, leaves in (b.tree or {}).items() for leaf in leaves}
    leaf = multilabel_f1(b.test_y, pred, b.labels)
    G, gnames = group_matrix(b.test_y, b.labels, groups)
    Gp, _ = group_matrix(pred.astype(np.int8), b.labels, groups)
    grp = multilabel_f1(G, Gp, gnames)
    return {"official": round(leaf["macro_f1"], 4), "metric": "macro_f1", "macro_f1": round(leaf["macro_f1"], 4),
            "micro_f1": round(leaf["micro_f1"], 4), "group_macro_f1": round(grp["macro_f1"], 4),
            "group_micro_f1": round(grp["micro_f1"], 4), "mean_labels": round(float(pred.sum(1).mean()), 3),
            "per_label_f1": {x: v["f1"] for x, v in leaf["per_label"].items()}}


def zero_shot(b, gold: np.ndarray, embed) -> dict:
    q = embed(list(b.labels))
    Yg = b.corpus_y[gold]
    sg = embed([b.corpus_texts[i] for i in gold]) @ q.T
    grid = np.linspace(0.05, 0.8, 31)
    f1 = [multilabel_f1(Yg, sg >= t)["macro_f1"] for t in grid]
    thr = best_thresholds(sg, Yg, grid=grid, default=float(grid[int(np.nanargmax(f1))]))
    return {**metrics(b, embed(b.test_texts) @ q.T >= thr), "thresholds_on": f"the {len(gold)} gold rows"}


def _ovr(X, Y, cw, C=1.0):
    from sklearn.linear_model import LogisticRegression

    fit = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    models = {j: LogisticRegression(C=C, max_iter=2000, class_weight=cw).fit(X, Y[:, j]) for j in fit}

    def proba(Z):
        out = np.zeros((len(Z), Y.shape[1]), np.float32)
        for j, m in models.items():
            out[:, j] = m.predict_proba(Z)[:, 1]
        return out
    return proba


def lr_on_gold(b, gold: np.ndarray, embed, seed: int, folds: int = 5) -> dict:
    Xg, Yg = embed([b.corpus_texts[i] for i in gold]), b.corpus_y[gold]
    fold = np.random.default_rng(seed).permutation(len(gold)) % folds
    best = None
    for cw in (None, "balanced"):
        oof = np.zeros(Yg.shape, np.float32)
        for f in range(folds):
            oof[fold == f] = _ovr(Xg[fold != f], Yg[fold != f], cw)(Xg[fold == f])
        thr = best_thresholds(oof, Yg)
        score = multilabel_f1(Yg, oof >= thr)["macro_f1"]
        if best is None or score > best[0]:
            best = (score, cw, thr)
    score, cw, thr = best
    pred = _ovr(Xg, Yg, cw)(embed(b.test_texts)) >= thr
    return {**metrics(b, pred), "class_weight": cw or "none", "gold_oof_macro_f1": round(float(score), 4)}


def chain(b, d: Path, gold_file: Path | None, tag: str, auto_predict) -> dict:
    """suite.py's README recipe with ``--multi-label`` and the label tree, scored on the label lists."""
    rows, info, chain_s, pred_s = auto_predict(d, gold_file, tag, "labels.yaml", ("--multi-label",))
    index = {n: j for j, n in enumerate(b.labels)}
    pred = np.zeros((len(rows), len(b.labels)), bool)
    for i, r in enumerate(rows):
        pred[i, [index[x] for x in r["labels"]]] = True
    out = {**metrics(b, pred), "chain_seconds": round(chain_s[0], 1), "predict_seconds": round(pred_s[0], 1),
           "chain_cpu_seconds": round(chain_s[1], 1), "predict_cpu_seconds": round(pred_s[1], 1),
           "student": info.get("student"), "thresholds_from": info.get("thresholds_from")}
    out["stage_seconds"] = {p.stem: json.loads(p.read_text())["seconds"] for p in
                            sorted((d / f"run-{tag}" / ".pipeline").glob("*.json"))}
    net = info.get("safety_net")
    if net:
        from llmlabel.artifacts.labeled import read_labeled

        rep = read_labeled(d / f"run-{tag}" / "labeled.parquet").meta.get("label_model") or {}
        out["safety_net"] = {"chosen": net["chosen"], "verdict": net["verdict"], "seconds": net.get("seconds"),
                             "label_model_folds_seconds": rep.get("crossfit_seconds"),
                             "candidates": [{k: r[k] for k in ("student", "weak", "macro_f1", "micro_f1")}
                                            for r in net["candidates"]]}
    return out


def run_set(b, args, done: dict, out_json: Path, work: Path, draw_gold, auto_predict, embed) -> None:
    """Every row of a multi-label set at every budget of ``args.budgets`` (rows cached in ``done``)."""
    d = prepare(b, work, args.budgets, args.seed, draw_gold)
    for budget in args.budgets:
        gold = draw_gold(len(b.corpus_texts), budget, args.seed)
        for row in [r for r in args.rows if r in ROWS]:
            key = f"{b.name}|{row}|{budget if row != 'e' else 0}|{args.seed}"
            if key in done["rows"] and not args.redo:
                continue
            if args.redo and row in ("d", "e"):  # a first run, as a user's (suite.py does the same): no stage to reuse
                shutil.rmtree(d / f"run-{'nogold' if row == 'e' else f'gold{budget}'}", ignore_errors=True)
            t0 = time.perf_counter()
            res = {"a": lambda: zero_shot(b, gold, embed), "c_lr": lambda: lr_on_gold(b, gold, embed, args.seed),
                   "d": lambda: chain(b, d, d / f"gold-{budget}-{args.seed}.jsonl", f"gold{budget}",
                                      auto_predict),
                   "e": lambda: chain(b, d, None, "nogold", auto_predict)}[row]()
            res["seconds"] = round(time.perf_counter() - t0, 1)
            res["load"] = round(os.getloadavg()[0], 1)
            done["rows"][key] = res
            print(f"[{b.name} {budget}] {row}: macro-F1 {res['macro_f1']:.4f} (micro {res['micro_f1']:.4f}, group "
                  f"macro {res['group_macro_f1']:.4f}) {res['seconds']:.0f} s", flush=True)
            out_json.write_text(json.dumps(done, indent=1))


NAMES = {"a": "(a) zero-shot embedding", "c_lr": "(c) OvR-LR on the gold", "d": "(d) chain + gold",
         "e": "(e) chain, no gold"}


def write_markdown(done: dict, path: Path, budgets, seed: int = 0, name: str = "goemotions") -> Path:
    rows = done["rows"]
    get = lambda r, n: rows.get(f"{name}|{r}|{n if r != 'e' else 0}|{seed}")  # noqa: E731
    L = ["# The suite, multi-label: GoEmotions at 100 and 1,000 gold", ""]
    for run in done.get("runs", [])[-1:]:
        L += [run["header"], f"Wall time {run['seconds']:,} s; load average {run['load_start']} at the start, "
                             f"{run['load_end']} at the end.", ""]
    L += [__doc__.split("\n\n", 2)[2].strip().replace("\n", " "), "",
          "| gold | row | macro-F1 | micro-F1 | group macro-F1 | group micro-F1 | labels per item | wall s |",
          "|---|---|---|---|---|---|---|---|"]
    for n in budgets:
        for r, label in NAMES.items():
            m = get(r, n)
            if m:
                L.append(f"| {n:,} | {label} | {m['macro_f1']:.4f} | {m['micro_f1']:.4f} | {m['group_macro_f1']:.4f} "
                         f"| {m['group_micro_f1']:.4f} | {m['mean_labels']:.2f} | {m['seconds']:,.0f} |")
    L += ["", "(e) uses no gold, so it is the same run at every budget.", "", "(d) against (c):", ""]
    for n in budgets:
        d, c = get("d", n), get("c_lr", n)
        if d and c:
            g = d["macro_f1"] - c["macro_f1"]
            L.append(f"- {n:,} gold: {100 * g:+.1f} points of macro-F1 ({'>=' if g >= 0 else '<'} (c); goal at 1,000: "
                     f">= (c)); shipped: {d.get('student')}"
                     + (f", weak rows '{d['safety_net']['chosen']['weak']}'" if d.get("safety_net") else ""))
    for n in budgets:
        d = get("d", n)
        if d and d.get("safety_net"):
            net = d["safety_net"]
            L += ["", f"Safety net at {n:,} gold (out-of-fold on the gold; thresholds: {d.get('thresholds_from')}): "
                      f"{net['verdict']}.", "", "| student | weak rows | macro-F1 | micro-F1 |", "|---|---|---|---|"]
            L += [f"| {r['student']} | {r['weak']} | {r['macro_f1']:.4f} | {r['micro_f1']:.4f} |"
                  for r in net["candidates"]]
    path.write_text("\n".join(L) + "\n", encoding="utf-8")
    return path
