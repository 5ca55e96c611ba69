"""Search-only latency of the XMC label index (query already embedded) at 13.9k and a synthetic 1M labels,
against a numpy float32 mat-vec + argpartition baseline timed in the same run. Threads via T / OMP_NUM_THREADS:

    for t in 1 2; do OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t T=$t python eval/xmc_latency.py; done
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np, torch
torch.set_num_threads(int(os.environ.get("T", "1")))
from xmc import search_latency, synthetic_1m
from llmlabel.xmc import LabelIndex, LabelSpace
rng = np.random.default_rng(0)
v = rng.standard_normal((13896, 384)).astype(np.float32); v /= np.linalg.norm(v, axis=1, keepdims=True)
idx = LabelIndex(LabelSpace([f"l{i}" for i in range(len(v))]), v.astype(np.float16))
print(json.dumps({"threads": os.environ.get("T"), "load": os.getloadavg()[0], "13.9k": search_latency(idx, 384, reps=200), "1M": synthetic_1m()}))
