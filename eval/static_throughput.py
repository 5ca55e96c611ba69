"""CPU throughput of a static student vs the WordLlama + logistic-regression anchor, same run, batch 64.

    llmlabel distill ../shared/data/banking77/train.csv --label-field category --student static -o /tmp/b77static
    for t in 1 2; do OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t python eval/static_throughput.py /tmp/b77static; done
"""
import os, sys, time, csv
import numpy as np
from llmlabel.distill import load_student
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import DATA  # the one data path: $LLMLABEL_EVAL_DATA or ../shared/data
texts = [r["text"] for r in csv.DictReader(open(DATA / "banking77" / "test.csv"))]
st = load_student(sys.argv[1])
def bench(fn, reps=3):
    fn(texts[:256])
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        for i in range(0, len(texts), 64):
            fn(texts[i:i+64])
        best = min(best, time.perf_counter() - t)
    return len(texts) / best
print("static student texts/s (batch 64):", round(bench(lambda b: st.predict_proba(b))))
from wordllama import WordLlama
import wordllama
from pathlib import Path
wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = wl.embed(texts[:1000]); y = rng.integers(0, 77, 1000)
lr = LogisticRegression(max_iter=200).fit(X, y)
print("wordllama+LR texts/s (batch 64):", round(bench(lambda b: lr.predict_proba(wl.embed(b)))))
