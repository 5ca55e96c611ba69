"""The suite every default is chosen on: every visible single-label set, with 100 gold labels and with none,
through the CLI recipe the README documents, beside the baselines a user would pick instead.

    python eval/suite.py                              # every set and row (hours on 2 cores)
    python eval/suite.py --sets trec youtube --rows a c_lr d e

Rows, each scored on the set's test split only (the gold budget is drawn from the corpus with a fixed seed):
(a)       zero-shot embedding: each test text to the nearest "name: description" (frozen MiniLM);
(c_lr)    frozen MiniLM + logistic regression on the N gold (C=10);
(c_setfit) SetFit 1.2's default recipe on the N gold, same MiniLM body (``pip install 'llmlabel[setfit]'``);
(d)       the chain with the gold: ``llmlabel auto corpus.jsonl --labels labels.txt --gold gold.jsonl -o RUN``
          then ``llmlabel predict RUN/model test.jsonl`` (the README's recipe, nothing else);
(e)       the chain without gold: the same without ``--gold``.
Multi-label sets (``--sets goemotions``) run the multi-label recipe at every ``--budgets`` value instead
(eval/suite_multi.py: rows a, c_lr, d, e; macro-F1) and write their own OUT.md.
Each set is scored by its official metric (TweetEval: macro-F1, irony = F1 of the irony class, stance = mean F1 of
against/favor; sms: F1 of spam; else accuracy), with accuracy and macro-F1 beside it. Results are cached per
row in OUT.json as they finish (a stopped run keeps its rows; ``--redo`` recomputes, a chain row from an empty
run folder), and OUT.md is rebuilt from it every time with wins / ties / losses of (d) against (c_lr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOADERS, ROOT, header, score  # noqa: E402

WORK = Path(os.environ.get("LLMLABEL_SUITE_WORK", "/tmp/llmlabel-suite"))
SETS = ["banking77", "agnews", "youtube", "trec", "sms", "semeval", "irony", "offensive", "emoji",
        "stance-abortion", "stance-atheism", "stance-climate", "stance-feminist", "stance-hillary"]
ROWS = ("a", "c_lr", "c_setfit", "d", "e")
SETFIT_SETS = ("trec", "youtube", "irony", "stance-abortion", "stance-atheism", "stance-climate",
               "stance-feminist", "stance-hillary", "agnews", "banking77")
TIE = 0.01  # within a point: a tie


def draw_gold(n: int, budget: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:budget])


def draw_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` corpus rows of every class (all of a class with fewer), seeded: the gold of a user who wrote
    down a few examples of each label (the held-back intent job: 2 per intent)."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]))


def gold_rows(b, args) -> tuple[np.ndarray, str]:
    """The gold rows of the corpus and the budget's name in keys and file names (``100``, ``2/class``)."""
    if args.per_class:
        return draw_per_class(b.corpus_y, args.per_class, args.seed), f"{args.per_class}/class"
    return draw_gold(len(b.corpus_texts), args.budget, args.seed), str(args.budget)


def _jsonl(path: Path, rows) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def prepare(b, gold: np.ndarray, budget: str, seed: int) -> Path:
    """The files a user would have: corpus.jsonl, labels.txt, gold.jsonl (the ``gold`` rows of the corpus), and
    the test split as test.jsonl (scoring only)."""
    d = WORK / b.name
    d.mkdir(parents=True, exist_ok=True)
    _jsonl(d / "corpus.jsonl", ({"id": i, "text": t} for i, t in zip(b.corpus_ids, b.corpus_texts)))
    (d / "labels.txt").write_text(b.labels_txt(), encoding="utf-8")
    _jsonl(d / gold_file_name(budget, seed), ({"id": b.corpus_ids[i], "text": b.corpus_texts[i],
                                              "label": b.labels[b.corpus_y[i]]} for i in gold))
    _jsonl(d / "test.jsonl", ({"id": f"test-{j}", "text": t} for j, t in enumerate(b.test_texts)))
    return d


def gold_file_name(budget: str, seed: int) -> str:
    return f"gold-{budget.replace('/class', 'pc')}-{seed}.jsonl"


def metrics(b, pred) -> dict:
    k = len(b.labels)
    pred = np.asarray(pred)
    return {"official": round(score(b.metric, b.test_y, pred, k), 4), "metric": b.metric,
            "acc": round(score("accuracy", b.test_y, pred, k), 4),
            "macro_f1": round(score("macro_f1", b.test_y, pred, k), 4)}


def _embed(texts: list[str]) -> np.ndarray:
    from llmlabel.embed import load_embedder

    x = np.asarray(load_embedder("minilm").encode(texts), np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def zero_shot(b) -> dict:
    q = _embed([f"{n}: {b.descriptions[n]}" if b.descriptions.get(n) else n for n in b.labels])
    return metrics(b, (_embed(b.test_texts) @ q.T).argmax(1))


def lr_on_gold(b, gold: np.ndarray) -> dict | None:
    from sklearn.linear_model import LogisticRegression

    y = b.corpus_y[gold]
    if len(np.unique(y)) < 2:
        return None
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(_embed([b.corpus_texts[i] for i in gold]), y)
    return metrics(b, clf.classes_[clf.predict_proba(_embed(b.test_texts)).argmax(1)])


def setfit_on_gold(b, gold: np.ndarray, seed: int) -> dict:
    """SetFit 1.2's default recipe on the bundled MiniLM (checkpoints to a temp folder, not the cwd)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from llmlabel.embed.embedders import minilm_path

    model = SetFitModel.from_pretrained(str(minilm_path()))
    train = Dataset.from_dict({"text": [b.corpus_texts[i] for i in gold], "label": b.corpus_y[gold].tolist()})
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(seed=seed, show_progress_bar=False, output_dir=tmp, save_strategy="no")
        t0 = time.perf_counter()
        Trainer(model=model, args=args, train_dataset=train).train()
        train_s = time.perf_counter() - t0
    out = metrics(b, np.asarray(model.predict(b.test_texts, batch_size=64, show_progress_bar=False)))
    return {**out, "train_seconds": round(train_s, 1)}


def _cli(args: list[str], log: Path) -> tuple[float, float]:
    """``llmlabel ARGS`` in a child process, its output appended to ``log``: (wall seconds, CPU seconds of the
    child, every thread)."""
    t0, cpu0 = time.perf_counter(), _child_cpu()
    with log.open("a", encoding="utf-8") as f:
        f.write("$ llmlabel " + " ".join(args) + "\n")
        f.flush()
        rc = subprocess.run([sys.executable, "-m", "llmlabel.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                            cwd=ROOT).returncode
    if rc:
        raise RuntimeError(f"llmlabel {' '.join(args)} failed ({rc}); see {log}")
    return time.perf_counter() - t0, _child_cpu() - cpu0


def _child_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def auto_predict(d: Path, gold_file: Path | None, tag: str, labels: str = "labels.txt",
                 extra: tuple[str, ...] = ()) -> tuple[list[dict], dict, tuple[float, float], tuple[float, float]]:
    """The README recipe: ``llmlabel auto`` on the corpus, then ``llmlabel predict`` on the test split;
    (prediction rows, the model's metrics.json, chain (wall, CPU) seconds, predict (wall, CPU) seconds)."""
    run = d / f"run-{tag}"
    log = d / f"{tag}.log"
    args = ["auto", str(d / "corpus.jsonl"), "-o", str(run), *extra, "--labels", str(d / labels), "--no-report"]
    if gold_file is not None:
        args += ["--gold", str(gold_file)]
    chain_s = _cli(args, log)
    preds = run / "test-predictions.jsonl"
    pred_s = _cli(["predict", str(run / "model"), str(d / "test.jsonl"), "-o", str(preds)], log)
    rows = [json.loads(x) for x in preds.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows, json.loads((run / "model" / "metrics.json").read_text(encoding="utf-8")), chain_s, pred_s


def select_metric_for(b, choice: str | None) -> str | None:
    """``--select-metric`` for ``llmlabel auto`` on set ``b``: None (the default, accuracy), a metric name, or
    ``official``: macro-F1 where the set's official metric is an F1 (what a user who scores by F1 is told to pass)."""
    if choice == "official":
        return None if b.metric == "accuracy" else "macro_f1"
    return choice


def chain(b, d: Path, gold_file: Path | None, tag: str, select_metric: str | None = None) -> dict:
    """The README recipe (:func:`auto_predict`), scored."""
    extra = ("--select-metric", select_metric) if select_metric and gold_file is not None else ()
    rows, info, chain_s, pred_s = auto_predict(d, gold_file, tag, extra=extra)
    index = {n: j for j, n in enumerate(b.labels)}
    pred = np.array([index[r["label"]] for r in rows])
    net = info.get("safety_net")
    out = {**metrics(b, pred), "chain_seconds": round(chain_s[0], 1), "predict_seconds": round(pred_s[0], 1),
           "chain_cpu_seconds": round(chain_s[1], 1), "predict_cpu_seconds": round(pred_s[1], 1),
           "student": info.get("student")}
    if net:
        out["safety_net"] = {"chosen": net["chosen"], "verdict": net["verdict"], "seconds": net.get("seconds"),
                             "encoder_seconds": net.get("encoder_seconds"),
                             "encoder_full_seconds": net.get("encoder_full_seconds"),
                             "cpu_seconds": net.get("cpu_seconds"),
                             "encoder_full_cpu_seconds": net.get("encoder_full_cpu_seconds"),
                             "crossfit_seconds": net.get("crossfit_seconds"),
                             "crossfit_cpu_seconds": net.get("crossfit_cpu_seconds"),
                             "candidates": [{k: r[k] for k in ("student", "weak", "accuracy", "macro_f1")}
                                            for r in net["candidates"]]}
    return out


def run(args) -> dict:
    out_json = Path(args.out).with_suffix(".json")
    out_json.parent.mkdir(parents=True, exist_ok=True)  # else the first finished row is lost
    done = json.loads(out_json.read_text()) if out_json.is_file() else {"rows": {}, "runs": []}
    started, load0 = time.time(), os.getloadavg()[0]
    os.environ.setdefault("LLMLABEL_EMBED_CACHE", str(WORK / "embed-store"))
    multi = []
    for name in args.sets:
        b = LOADERS[name]()
        if b.multi_label:  # the multi-label recipe, at every --budgets value (suite_multi.py)
            import suite_multi

            suite_multi.run_set(b, args, done, out_json, WORK, draw_gold, auto_predict, _embed)
            multi.append(name)
            continue
        gold, budget = gold_rows(b, args)
        d = prepare(b, gold, budget, args.seed)
        sm = select_metric_for(b, args.select_metric)
        for row in args.rows:
            key = f"{name}|{row}|{budget}|{args.seed}" + (f"|{sm}" if sm and row == "d" else "")
            tag = "nogold" if row == "e" else f"gold{budget.replace('/class', 'pc')}" + (f"-{sm}" if sm else "")
            if (key in done["rows"] and not args.redo) or (row == "c_setfit" and name not in args.setfit_sets):
                continue
            if args.redo and row in ("d", "e"):  # a first run, as a user's: no stage or tuned encoder to reuse
                shutil.rmtree(d / f"run-{tag}", ignore_errors=True)
            t0 = time.perf_counter()
            res = {"a": lambda: zero_shot(b), "c_lr": lambda: lr_on_gold(b, gold),
                   "c_setfit": lambda: setfit_on_gold(b, gold, args.seed),
                   "d": lambda: chain(b, d, d / gold_file_name(budget, args.seed), tag, sm),
                   "e": lambda: chain(b, d, None, tag)}[row]()
            if res is None:
                continue
            res["seconds"] = round(time.perf_counter() - t0, 1)
            res["load"] = round(os.getloadavg()[0], 1)
            done["rows"][key] = res
            print(f"[{name}] {row}: {res['metric']} {res['official']:.4f} (acc {res['acc']:.4f}, "
                  f"macro-F1 {res['macro_f1']:.4f}) {res['seconds']:.0f} s", flush=True)
            out_json.write_text(json.dumps(done, indent=1))
    done["runs"].append({"command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
                         "header": header("python " + " ".join(sys.argv)), "seconds": round(time.time() - started),
                         "load_start": round(load0, 1), "load_end": round(os.getloadavg()[0], 1)})
    out_json.write_text(json.dumps(done, indent=1))
    if multi:
        import suite_multi

        for name in multi:
            suite_multi.write_markdown(done, Path(args.out).with_suffix(".md") if len(multi) == len(args.sets)
                                       else Path(args.out).with_name(f"suite-{name}.md"), args.budgets,
                                       args.seed, name)
    if len(multi) < len(args.sets):
        from suite_report import write_markdown

        write_markdown(done, Path(args.out).with_suffix(".md"), gold_rows_name(args), args.seed)
    return done


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


def gold_rows_name(args) -> str:
    return f"{args.per_class}/class" if args.per_class else str(args.budget)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS, choices=list(LOADERS))
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    ap.add_argument("--setfit-sets", nargs="+", default=list(SETFIT_SETS))
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--per-class", type=_positive, default=None,
                    help="gold: this many corpus rows of every class (seeded) instead of --budget random rows")
    ap.add_argument("--budgets", type=int, nargs="+", default=[100, 1000], help="gold budgets of multi-label sets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--redo", action="store_true")
    ap.add_argument("--select-metric", choices=["accuracy", "macro_f1", "official"], default=None,
                    help="pass --select-metric to the (d) chain ('official': macro_f1 where the set's metric is "
                         "an F1); its rows are kept under their own key")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "suite"))
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
