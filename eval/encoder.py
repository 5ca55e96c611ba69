"""A tuned encoder on N gold labels vs SetFit vs frozen MiniLM + LR (issue 26), on the test or dev split.

    PYTHONPATH=$PWD nice -n 10 python eval/encoder.py --split dev --rows lr_names t:supcon t:pairs_i5   # choose
    PYTHONPATH=$PWD nice -n 10 python eval/encoder.py --split test --rows lr lr_names setfit t:supcon   # report

Rows (the gold: N corpus rows drawn with a fixed seed, as eval/chain.py draws them; every head is a logistic
regression, C = 10 on unit vectors):
  lr          frozen MiniLM + LR on the gold;
  lr_names    the same with each label's anchor text (its name, ``name: description`` when the set has
              descriptions) as one more training row of its class;
  setfit      setfit 1.2's default recipe on the same MiniLM body (the peer; its own LR head);
  t:VARIANT   MiniLM tuned on the gold + anchors by llmlabel.tuned (VARIANTS below), LR on gold + anchors;
  h:VARIANT   the same through ``TunedEncoder.fit`` with the two halves (3 fits: what a run pays), scored with
              the full encoder (``train_s``: the full fit, the figure to set beside SetFit's; ``train_all_s``: all
              three), plus the gold's out-of-fold accuracy when each fold is embedded by ``for_fold`` (honest) vs by
              the full encoder (which saw those rows: optimistic) vs frozen MiniLM.
Timing: ``train_s`` is the encoder-training step only (SetFit: ``Trainer.train()``, body and head; ours: the
contrastive fit), in this process with torch threads fixed by ``--threads``; the 1-minute load is recorded
before and after each row. Results accumulate in ``--out``.json (a rerun computes only missing rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402  (one machine description for every results file)
from chain_data import LOADERS, CachedEmbedder, official  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Each variant spells out what it changes from TuneSettings()'s values when the dev grid ran (lr 5e-5, temperature
# 0.1, 10 epochs, batch 32, anchors): "supcon_lr1e-4" was chosen on dev and is now TuneSettings()'s default.
VARIANTS: dict[str, dict] = {
    "supcon": {"lr": 5e-5},
    "supcon_lr2e-5": {"lr": 2e-5},
    "supcon_lr1e-4": {"lr": 1e-4},
    "supcon_t0.05": {"lr": 5e-5, "temperature": 0.05},
    "supcon_t0.2": {"lr": 5e-5, "temperature": 0.2},
    "supcon_lr1e-4_t0.2": {"lr": 1e-4, "temperature": 0.2},
    "supcon_e5": {"lr": 5e-5, "epochs": 5},
    "supcon_e20": {"lr": 5e-5, "epochs": 20},
    "supcon_lr1e-4_e20": {"lr": 1e-4, "epochs": 20},
    "supcon_bs16": {"lr": 5e-5, "batch_size": 16},
    "supcon_noanchors": {"lr": 5e-5, "anchors": False},
    "pairs_i5": {"method": "pairs", "lr": 5e-5, "epochs": 1, "pair_iterations": 5, "batch_size": 16},
    "pairs_i10": {"method": "pairs", "lr": 5e-5, "epochs": 1, "pair_iterations": 10, "batch_size": 16},
    "pairs_i5_noanchors": {"method": "pairs", "lr": 5e-5, "epochs": 1, "pair_iterations": 5, "batch_size": 16,
                           "anchors": False},
}


def norm(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def draw_gold(n: int, budget: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)[:budget]  # = eval/chain.py's draw


def eval_split(b, split: str, gold: np.ndarray, seed: int):
    """(texts, y) to score on: the test split, or the dev split (a validation split when the set has one,
    else 1,000 corpus rows outside the gold, drawn with ``seed + 1``)."""
    if split == "test":
        return b.test_texts, np.asarray(b.test_y)
    if b.dev_texts:
        return b.dev_texts, np.asarray(b.dev_y)
    rest = np.setdiff1d(np.arange(len(b.corpus_texts)), gold)
    pick = np.random.default_rng(seed + 1).permutation(rest)[:1000]
    return [b.corpus_texts[i] for i in pick], np.asarray(b.corpus_y)[pick]


def scores(name, y, pred, k):
    from llmlabel.distill.metrics import accuracy, macro_f1

    out = {"acc": round(float(accuracy(y, pred)), 4), "macro_f1": round(float(macro_f1(y, pred, k)), 4)}
    off = official(name, y, pred)
    if off is not None:
        out["official"] = round(off, 4)
    return out


def anchors_of(b) -> list[str]:
    from llmlabel.tuned import anchor_texts

    return anchor_texts(b.labels, [b.descriptions.get(n, "") for n in b.labels])


def lr_head(Xg, yg, Xa=None):
    from sklearn.linear_model import LogisticRegression

    X, y = norm(Xg), np.asarray(yg)
    if Xa is not None:
        X, y = np.vstack([X, norm(Xa)]), np.r_[y, np.arange(len(Xa))]
    return LogisticRegression(C=10.0, max_iter=2000).fit(X, y)


def predict(clf, X):
    return clf.classes_[clf.predict_proba(norm(X)).argmax(1)]


def row_frozen(b, gold, texts, y, emb, names: bool, split: str):
    g = [b.corpus_texts[i] for i in gold]
    clf = lr_head(emb.encode(g), b.corpus_y[gold], emb.encode(anchors_of(b)) if names else None)
    X = emb.load(f"{b.name}-{split}", texts)  # cached in /tmp (the test key is eval/chain.py's)
    return {**scores(b.name, y, predict(clf, X), len(b.labels)), "train_s": 0.0}


def row_setfit(b, gold, texts, y, seed, tmp):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from llmlabel.embed.embedders import minilm_path

    model = SetFitModel.from_pretrained(str(minilm_path()))
    train = Dataset.from_dict({"text": [b.corpus_texts[i] for i in gold], "label": b.corpus_y[gold].tolist()})
    args = TrainingArguments(seed=seed, show_progress_bar=False, output_dir=str(Path(tmp) / "setfit"),
                             save_strategy="no")  # defaults otherwise, as eval/chain.py runs it
    trainer = Trainer(model=model, args=args, train_dataset=train)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = np.asarray(model.predict(texts, batch_size=64, show_progress_bar=False))
    return {**scores(b.name, y, pred, len(b.labels)), "train_s": round(train_s, 1),
            "encode_s": round(time.perf_counter() - t1, 1), "steps": int(trainer.state.global_step)
            if hasattr(trainer, "state") else None}


def _settings(variant: str, seed: int):
    from llmlabel.tuned import TuneSettings

    return TuneSettings(**{**VARIANTS[variant], "seed": seed})


def row_tuned(b, gold, texts, y, variant, seed, tmp, threads):
    from llmlabel.embed import load_embedder
    from llmlabel.tuned import tune_encoder

    s = _settings(variant, seed)
    facts = tune_encoder("minilm", [b.corpus_texts[i] for i in gold], b.corpus_y[gold], anchors_of(b), s,
                         Path(tmp) / "enc", threads=threads)
    t1 = time.perf_counter()
    emb = load_embedder(str(Path(tmp) / "enc"))
    clf = lr_head(emb.encode([b.corpus_texts[i] for i in gold]), b.corpus_y[gold],
                  emb.encode(anchors_of(b)) if s.anchors else None)
    pred = predict(clf, emb.encode(texts, batch_size=64))
    return {**scores(b.name, y, pred, len(b.labels)), "train_s": facts["seconds"], "steps": facts["steps"],
            "encode_s": round(time.perf_counter() - t1, 1)}


def row_halves(b, gold, texts, y, variant, seed, tmp, threads, frozen):
    """TunedEncoder.fit with halves; the gold's out-of-fold LR accuracy per fold space (honest / full / frozen)."""
    from llmlabel.lf.gold import GoldSet
    from llmlabel.tuned import TunedEncoder

    s = _settings(variant, seed)
    g = GoldSet([str(i) for i in gold], [b.corpus_texts[i] for i in gold], b.corpus_y[gold], labels=b.labels)
    enc = TunedEncoder.fit(Path(tmp) / "encoder", texts=g.texts, y=g.y, labels=b.labels, fold=g.fold,
                           descriptions=[b.descriptions.get(n, "") for n in b.labels], settings=s, threads=threads)
    anchors = anchors_of(b)

    def oof(space_of_fold):
        right = np.zeros(len(g), bool)
        for f in range(g.folds):
            emb = space_of_fold(f)
            X = emb.encode(g.texts)
            tr, te = g.fold != f, g.fold == f
            clf = lr_head(X[tr], g.y[tr], emb.encode(anchors) if s.anchors else None)
            right[te] = predict(clf, X[te]) == g.y[te]
        return round(float(right.mean()), 4)

    t1 = time.perf_counter()
    clf = lr_head(enc.full.encode(g.texts), g.y, enc.full.encode(anchors) if s.anchors else None)
    pred = predict(clf, enc.full.encode(texts, batch_size=64))
    fits = {k: v["seconds"] for k, v in enc.meta["fits"].items()}
    return {**scores(b.name, y, pred, len(b.labels)), "train_s": fits["full"], "train_all_s": round(enc.seconds(), 1),
            "encode_s": round(time.perf_counter() - t1, 1), "fits_s": fits, "steps": enc.meta["fits"]["full"]["steps"],
            "oof_honest": oof(enc.for_fold), "oof_full": oof(lambda f: enc.full), "oof_frozen": oof(lambda f: frozen)}


def run(args):
    import torch

    torch.set_num_threads(args.threads)
    out_json = Path(args.out).with_suffix(".json")
    done = json.loads(out_json.read_text()) if out_json.is_file() else {"rows": {}, "runs": []}
    started, load0 = time.time(), os.getloadavg()[0]
    record = {"command": " ".join(["python"] + sys.argv), "date": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "seconds": None, "load_start": round(load0, 1), "load_end": None, "threads": args.threads,
        "machine": machine()}
    done["runs"].append(record)  # written now, completed at the end: a run that is stopped is still listed
    out_json.write_text(json.dumps(done, indent=1))
    frozen = CachedEmbedder()
    for name in args.sets:
        b = LOADERS[name]()
        gold = draw_gold(len(b.corpus_texts), args.budget, args.seed)
        texts, y = eval_split(b, args.split, gold, args.seed)
        for row in args.rows:
            key = f"{name}|{row}|{args.split}|{args.budget}|{args.seed}"
            if key in done["rows"] and not args.redo:
                continue
            la = os.getloadavg()[0]
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix="llmlabel-enc-eval-") as tmp:
                kind, _, variant = row.partition(":")
                res = {"lr": lambda: row_frozen(b, gold, texts, y, frozen, False, args.split),
                       "lr_names": lambda: row_frozen(b, gold, texts, y, frozen, True, args.split),
                       "setfit": lambda: row_setfit(b, gold, texts, y, args.seed, tmp),
                       "t": lambda: row_tuned(b, gold, texts, y, variant, args.seed, tmp, args.threads),
                       "h": lambda: row_halves(b, gold, texts, y, variant, args.seed, tmp, args.threads, frozen),
                       }[kind]()
            res.update(seconds=round(time.perf_counter() - t0, 1), load=[round(la, 1), round(os.getloadavg()[0], 1)],
                       threads=args.threads, date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       n_eval=len(texts), gold_classes=int(len(np.unique(b.corpus_y[gold]))))
            done["rows"][key] = res
            print(f"[{name}/{args.split}] {row}: acc {res['acc']:.4f} macro-F1 {res['macro_f1']:.4f}"
                  + (f" official {res['official']:.4f}" if "official" in res else "")
                  + f" train {res['train_s']:.0f} s (load {res['load']})", flush=True)
            out_json.write_text(json.dumps(done, indent=1))
    record.update(seconds=round(time.time() - started), load_end=round(os.getloadavg()[0], 1))
    out_json.write_text(json.dumps(done, indent=1))
    from encoder_report import write_markdown

    write_markdown(done, Path(args.out).with_suffix(".md"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["youtube", "trec", "agnews", "banking77", "irony", "stance"],
                    choices=list(LOADERS))
    ap.add_argument("--rows", nargs="+", default=["lr", "lr_names", "setfit", "t:supcon"])
    ap.add_argument("--split", choices=["test", "dev"], default="test")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for every row (fixed, recorded)")
    ap.add_argument("--redo", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "encoder.md"))
    args = ap.parse_args(argv)
    bad = [r for r in args.rows if r.partition(":")[0] in ("t", "h") and r.partition(":")[2] not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; known: {', '.join(VARIANTS)}")
    run(args)


if __name__ == "__main__":
    main()
