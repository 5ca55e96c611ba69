"""Distillation benchmark: students vs frozen-feature anchors on Banking77 (train -> test) and AG News, gold vs noisy
labels (controlled symmetric noise, soft vs hard) and real LLM labels (refuel autolabel's Banking77 rows).

    nice -n 10 python eval/distill.py [--minilm-epochs 1] [--train-threads 1] [--skip-minilm] [--skip-agnews]

Data from $LLMLABEL_EVAL_DATA (default ../shared/data); a dataset that is absent is skipped. Timings: 2 threads,
inference at batch 64 after a warm-up, featurisation included, median of 3 passes over the test set.

Noise model (an assumption, stated in the report): a fraction r of training labels is replaced by a uniformly random
*other* class. The simulated label model's confidence is Beta(4,2) on items whose label is right and Beta(2,4) on
flipped ones; "soft" targets put that confidence on the given label and spread the rest uniformly, with the confidence
also used as the item weight (what ``llmlabel distill`` does with a ``confidence`` column); "hard" = the noisy label
alone, unweighted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, machine  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)
THREADS = 2
MINILM_LR = 1e-4  # --minilm-lr
MINILM_HEAD = "probe"  # --minilm-head-init
KEEP_MODEL = None  # --keep-model: write the fine-tuned MiniLM student there (else a temporary folder)
SAMPLE = 640  # MiniLM rows: throughput on the first 640 test texts, one pass (CPU time is scarce)


def banking():
    d = DATA / "banking77"
    if not (d / "train.csv").exists():
        return None
    rd = lambda p: [(r["text"], r["category"]) for r in csv.DictReader(open(p, encoding="utf-8"))]  # noqa: E731
    tr, te = rd(d / "train.csv"), rd(d / "test.csv")
    return [t for t, _ in tr], [y for _, y in tr], [t for t, _ in te], [y for _, y in te]


def agnews(seed: int = 0):
    p = DATA / "agnews" / "test.csv"
    if not p.exists():
        return None
    names = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
    rows = [(f"{r['Title']} {r['Description']}".strip(), names[r["Class Index"]])
            for r in csv.DictReader(open(p, encoding="utf-8"))]
    idx = np.random.default_rng(seed).permutation(len(rows))
    cut = int(0.8 * len(rows))
    tr, te = [rows[i] for i in idx[:cut]], [rows[i] for i in idx[cut:]]
    return [t for t, _ in tr], [y for _, y in tr], [t for t, _ in te], [y for _, y in te]


CPU_RATE: list = [None]  # texts per CPU-second (all threads of this process) of the last throughput() call


def throughput(predict, texts, batch=64, passes=3) -> float:
    """Median wall-clock texts/s; also stores texts per CPU-second in CPU_RATE (less sensitive to other jobs on a
    shared machine, though spin-waiting threads still count)."""
    predict(texts[:batch])  # warm-up
    rates, cpu = [], []
    for _ in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for b in range(0, len(texts), batch):
            predict(texts[b : b + batch])
        rates.append(len(texts) / (time.perf_counter() - t0))
        cpu.append(len(texts) / max(time.process_time() - c0, 1e-9))
    CPU_RATE[0] = float(np.median(cpu))
    return float(np.median(rates))


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def noisy_targets(y_idx, k, rate, seed=0):
    rng = np.random.default_rng(seed)
    n = len(y_idx)
    flip = rng.random(n) < rate
    noisy = np.where(flip, (y_idx + rng.integers(1, k, n)) % k, y_idx)
    conf = np.where(flip, rng.beta(2, 4, n), rng.beta(4, 2, n)).astype(np.float32)
    soft = np.tile(((1 - conf) / (k - 1))[:, None], (1, k)).astype(np.float32)
    soft[np.arange(n), noisy] = conf
    return noisy, soft, conf


# ------------------------------------------------------------------ anchors (frozen features + logistic regression)

def anchors(name, tr, ytr, te, yte, rows, minilm=True, only_minilm=False, frozen_train=None):
    """``only_minilm`` + ``frozen_train=N``: the reduced run (frozen MiniLM + LR fit on N train texts, for the
    throughput comparison; its accuracy is then not the anchor's)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression


    def lr():
        return LogisticRegression(max_iter=2000, C=10.0)

    if only_minilm:
        st, se = max(1, len(tr) // frozen_train), max(1, len(te) // SAMPLE)  # strided: the files are sorted by class
        return _frozen(name, tr[::st], ytr[::st], te[::se][:SAMPLE], yte[::se][:SAMPLE], rows, "minilm",
                       f"anchor: all-MiniLM-L6-v2 frozen + LR (LR on every {st}th train text, acc on "
                       f"{SAMPLE} strided test texts: throughput reference only)")
    # TF-IDF word 1-2 grams
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    clf = lr().fit(vec.fit_transform(tr), ytr)
    train_s = time.perf_counter() - t0
    acc = float(np.mean(clf.predict(vec.transform(te)) == np.array(yte)))
    tps = throughput(lambda b: clf.predict(vec.transform(b)), te)
    rows.append(dict(dataset=name, student="anchor: TF-IDF word 1-2 grams + LR", labels="gold", acc=acc,
                     train_s=train_s, texts_s=tps, texts_cpu_s=CPU_RATE[0]))
    print(rows[-1], flush=True)

    for spec, label in (("wordllama", "anchor: wordllama 256-d + LR"), ("minilm", "anchor: all-MiniLM-L6-v2 frozen + LR")):
        if spec == "minilm" and not minilm:
            continue
        _frozen(name, tr, ytr, te, yte, rows, spec, label)


def _frozen(name, tr, ytr, te, yte, rows, spec, label):
    from sklearn.linear_model import LogisticRegression

    from llmlabel.embed import load_embedder

    def lr():
        return LogisticRegression(max_iter=2000, C=10.0)

    emb = load_embedder(spec, store=False)  # timed: the bare model, not the embedding store
    t0 = time.perf_counter()
    xtr = emb.encode(tr, batch_size=64)
    clf = lr().fit(xtr, ytr)
    train_s = time.perf_counter() - t0
    acc = float(np.mean(clf.predict(emb.encode(te, batch_size=64)) == np.array(yte)))
    sample = te if spec == "wordllama" else te[:SAMPLE]
    tps = throughput(lambda b: clf.predict(emb.encode(b, batch_size=64)), sample, passes=3 if spec == "wordllama" else 1)
    rows.append(dict(dataset=name, student=label, labels="gold", acc=acc, train_s=train_s, texts_s=tps,
                     texts_cpu_s=CPU_RATE[0]))
    if spec == "minilm":  # one call over the sample: sentence-transformers sorts by length inside encode()
        rows[-1]["texts_s_bulk"] = throughput(lambda b: clf.predict(emb.encode(b, batch_size=64)), sample,
                                              batch=len(sample), passes=1)
    print(rows[-1], flush=True)


# ------------------------------------------------------------------ students

def static_runs(name, tr, ytr, te, yte, rows, tmp: Path, noise=(0.2, 0.4)):
    from llmlabel.distill import StaticStudent
    from llmlabel.distill.static_format import StaticPredictor

    classes = sorted(set(ytr))
    k = len(classes)
    y_idx = np.array([classes.index(y) for y in ytr])
    yte_i = np.array([classes.index(y) for y in yte])
    eye = np.eye(k, dtype=np.float32)
    settings = [("gold", eye[y_idx], None)]
    for r in noise:
        noisy, soft, conf = noisy_targets(y_idx, k, r)
        settings += [(f"{int(r * 100)}% noise, hard", eye[noisy], None), (f"{int(r * 100)}% noise, soft", soft, conf)]
    for labels, targets, w in settings:
        t0 = time.perf_counter()
        st = StaticStudent().fit(tr, proba=targets, classes=classes, sample_weight=w)
        train_s = time.perf_counter() - t0
        folder = tmp / f"static-{name}-{labels.replace(' ', '_').replace('%', 'pct').replace(',', '')}"
        st.save(folder)
        pred = StaticPredictor(folder)  # measure the exported folder, as a user would run it
        acc = float(np.mean(pred.predict_proba(te).argmax(1) == yte_i))
        row = dict(dataset=name, student="static (wordllama + TF-IDF 1-2 gram tokens, linear head)", labels=labels,
                   acc=acc, train_s=train_s, wd=st.weight_decay_)
        if labels == "gold":
            row["texts_s"] = throughput(pred.predict_proba, te)
            row["texts_cpu_s"] = CPU_RATE[0]
            row["size_mb"] = dir_mb(folder)
        rows.append(row)
        print(row, flush=True)


def llm_label_runs(rows, te, yte, tmp: Path):
    """refuel autolabel's 500 Banking77 rows: train on the LLM's labels vs on the gold labels of the same rows."""
    p = DATA / "llm_labels" / "banking_labeled.csv"
    if not p.exists():
        return
    from llmlabel.distill import StaticStudent

    allowed = set(yte)
    data = [r for r in csv.DictReader(open(p, encoding="utf-8")) if r["label"] in allowed]
    texts = [r["description"] for r in data]
    gold = [r["label"] for r in data]
    llm = [r["llm_label"] for r in data]
    ok = [i for i, y in enumerate(llm) if y in allowed]
    llm_acc = float(np.mean([llm[i] == gold[i] for i in range(len(data))]))
    classes = sorted(allowed)
    for labels, ys, idx in (("500 rows, gold labels", gold, list(range(len(data)))),
                            (f"500 rows, LLM labels (LLM acc {llm_acc:.3f}; {len(data) - len(ok)} off-list dropped)",
                             llm, ok)):
        st = StaticStudent().fit([texts[i] for i in idx], [ys[i] for i in idx], classes=classes)
        acc = float(np.mean(np.array(st.predict(te)) == np.array(yte)))
        rows.append(dict(dataset="banking77", student="static", labels=labels, acc=acc))
        print(rows[-1], flush=True)


def minilm_run(tr, ytr, te, yte, rows, tmp: Path, epochs: int, train_threads: int, sample: int,
               max_steps: int | None = None, test_n: int | None = None):
    """Fine-tune all-MiniLM-L6-v2 on Banking77 gold labels (CPU budget: ``epochs``, max_length 64), then measure the
    exported folder (:func:`minilm_serve`)."""
    from llmlabel.distill import EncoderStudent

    classes = sorted(set(ytr))
    if test_n:  # strided: the test file is sorted by class
        se = max(1, len(te) // test_n)
        te, yte = te[::se][:test_n], yte[::se][:test_n]
    t0 = time.perf_counter()
    st = EncoderStudent("minilm", epochs=epochs, batch_size=32, lr=MINILM_LR, max_length=64, progress=True,
                        threads=train_threads, max_steps=max_steps, head_init=MINILM_HEAD)
    st.fit(tr, ytr, classes=classes)
    train_s = time.perf_counter() - t0
    folder = st.save(Path(KEEP_MODEL) if KEEP_MODEL else tmp / "minilm-banking77")
    budget = f"{max_steps} steps x 32" if max_steps else f"{epochs} epoch(s)"
    acc_on = f", acc on {len(te)} strided test texts" if test_n else ""
    minilm_serve(folder, te, yte, rows, sample, train_s, f"minilm fine-tuned ({budget}, max_length 64{acc_on})")


def minilm_serve(folder: Path, te, yte, rows, sample: int, train_s: float | None, what: str):
    """A fine-tuned MiniLM student folder served three ways: a plain transformers pipeline (fp32), and llmlabel's
    predict path (length-sorted batches of 64) in float32 and with dynamic int8."""
    import torch
    from transformers import pipeline

    from llmlabel.distill import load_student

    torch.set_num_threads(THREADS)
    yte_a = np.array(yte)
    base = dict(dataset="banking77", labels="gold", train_s=train_s, size_mb=dir_mb(folder))
    st = load_student(folder)
    acc = float(np.mean(np.array(st.predict(te)) == yte_a))
    clf = pipeline("text-classification", model=str(folder), device="cpu")
    tps = throughput(lambda b: clf(b, batch_size=64, truncation=True, max_length=64), te[:sample], passes=1)
    rows.append(dict(base, student=f"{what}, transformers pipeline fp32", acc=acc, texts_s=tps,
                     texts_cpu_s=CPU_RATE[0]))
    print(rows[-1], flush=True)
    for quant, label in ((False, "fp32"), (True, "dynamic int8")):
        q = load_student(folder, quantize=quant)
        acc_q = acc if not quant else float(np.mean(np.array(q.predict(te)) == yte_a))
        tps_q = throughput(q.predict_proba, te[:sample], passes=1)
        cpu_q = CPU_RATE[0]
        bulk_q = throughput(q.predict_proba, te[:sample], batch=len(te[:sample]), passes=1)  # one call: length-sorted
        rows.append(dict(base, student=f"{what}, llmlabel predict: {label} + length-sorted batches of 64",
                         acc=acc_q, texts_s=tps_q, texts_cpu_s=cpu_q, texts_s_bulk=bulk_q))
        print(rows[-1], flush=True)


def render(rows, meta) -> str:
    out = ["# Distillation benchmark", "",
           f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ", f"Date (UTC): {meta['date']}", "",
           meta["notes"], "", "| dataset | student | training labels | test acc | train s | texts/s (batch 64) | texts per CPU-s | texts/s (one call, inner batch 64) | size MB |",
           "|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, fmt: (fmt.format(v) if v is not None else "")  # noqa: E731
    for r in rows:
        out.append(f"| {r['dataset']} | {r['student']} | {r['labels']} | {r['acc']:.4f} | {f(r.get('train_s'), '{:.1f}')} "
                   f"| {f(r.get('texts_s'), '{:,.0f}')} | {f(r.get('texts_cpu_s'), '{:,.0f}')} | {f(r.get('texts_s_bulk'), '{:,.0f}')} | {f(r.get('size_mb'), '{:.1f}')} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm-epochs", type=int, default=1)
    ap.add_argument("--train-threads", type=int, default=1, help="torch threads for fine-tuning (1 on a shared box)")
    ap.add_argument("--skip-agnews", action="store_true")
    ap.add_argument("--minilm-only", action="store_true", help="reduced run: frozen MiniLM anchor + MiniLM student")
    ap.add_argument("--minilm-max-steps", type=int, default=None)
    ap.add_argument("--minilm-test", type=int, default=None, help="score the MiniLM student on the first N test texts")
    ap.add_argument("--frozen-train", type=int, default=1000, help="--minilm-only: LR of the frozen anchor on N texts")
    ap.add_argument("--minilm-lr", type=float, default=1e-4, help="fine-tuning learning rate")
    ap.add_argument("--minilm-head-init", choices=["probe", "random"], default="probe",
                    help="probe: LP-FT (head initialised from a linear probe on the frozen encoder); random: plain")
    ap.add_argument("--keep-model", default=None, help="folder to keep the fine-tuned MiniLM student in")
    ap.add_argument("--serve-only", default=None, help="skip training: measure this kept MiniLM student folder "
                                                         "beside a fresh frozen-MiniLM anchor")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--skip-frozen-minilm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "eval" / "results" / "distill"))
    args = ap.parse_args()
    global MINILM_LR, MINILM_HEAD, KEEP_MODEL
    MINILM_LR, MINILM_HEAD, KEEP_MODEL = args.minilm_lr, args.minilm_head_init, args.keep_model
    import torch

    torch.set_num_threads(THREADS)
    os.environ["OMP_NUM_THREADS"] = str(THREADS)
    rows: list[dict] = []
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="llmlabel-distill-bench-"))

    def save() -> str:  # after every part, so a run cut short still leaves its figures
        meta = {"command": "python eval/distill.py " + " ".join(sys.argv[1:]),
                "machine": (f"{machine()} (at the end; 1-min load {load_start[0]:.1f} at the start); torch threads "
                            f"{THREADS} for inference, {args.train_threads} for fine-tuning"),
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "notes": ("Banking77: train.csv (10,003) -> test.csv (3,080). AG News: only the 7,600-row test split ships, "
                          "so it is split 80/20 (seed 0) into train/test. Anchors: logistic regression (C=10) on frozen "
                          "features. Noise: symmetric, with a simulated label-model confidence Beta(4,2) on right / "
                          "Beta(2,4) on flipped labels (soft = confidence on the given label, rest uniform, confidence as "
                          "weight; hard = the noisy label alone). The static student's L2 strength is chosen automatically "
                          "on a 20% hold-out of the (noisy) training labels. MiniLM anchor/student throughput is measured on "
                          "the first 640 test texts, one pass; 'one call' hands all 640 texts to one predict call (both sort by "
                          "length inside). The MiniLM student is fine-tuned for a CPU budget (epochs as in the command, "
                          f"max_length 64, batch 32, lr {args.minilm_lr:g} with warm-up + linear decay, head init: {args.minilm_head_init}, length-bucketed batches) on gold "
                          "labels only; noisy-label runs use the static student.")}
        Path(args.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
        Path(args.out + ".md").write_text(render(rows, meta))
        return render(rows, meta)

    try:
        b = banking()
        if b and args.serve_only:  # a kept student re-measured beside a fresh anchor (a quiet machine)
            anchors("banking77", *b, rows, only_minilm=True, frozen_train=args.frozen_train)
            save()
            meta = json.loads((Path(args.serve_only) / "metrics.json").read_text()) \
                if (Path(args.serve_only) / "metrics.json").exists() else {}
            minilm_serve(Path(args.serve_only), b[2], b[3], rows, SAMPLE, meta.get("train_seconds"),
                         f"minilm fine-tuned, kept folder {args.serve_only}")
            b = None
            args.skip_agnews = True
        if b and args.minilm_only:
            anchors("banking77", *b, rows, only_minilm=True, frozen_train=args.frozen_train)
            save()
            minilm_run(*b, rows, tmp, args.minilm_epochs, args.train_threads, SAMPLE, args.minilm_max_steps,
                       args.minilm_test)
            b = None
            args.skip_agnews = True
        if b:
            anchors("banking77", *b, rows, minilm=not args.skip_frozen_minilm)
            save()
            if not args.skip_minilm:  # the slowest part first: a run cut short still has it
                minilm_run(*b, rows, tmp, args.minilm_epochs, args.train_threads, SAMPLE)
                save()
            static_runs("banking77", *b, rows, tmp)
            llm_label_runs(rows, b[2], b[3], tmp)
            save()
        a = None if args.skip_agnews else agnews()
        if a:
            anchors("agnews", *a, rows, minilm=False)
            static_runs("agnews", *a, rows, tmp)
            save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(save())


if __name__ == "__main__":
    main()
