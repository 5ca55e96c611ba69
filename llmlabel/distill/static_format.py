"""Standalone predictor for an llmlabel *static* student folder (no llmlabel needed).

``llmlabel distill --student static`` copies this file into the model folder as ``predict.py``, so anyone can use
the model without llmlabel::

    import sys; sys.path.insert(0, "model")
    from predict import load
    clf = load("model")
    clf.predict(["my card has not arrived"])        # -> ['card_arrival']
    clf.predict_proba(["my card has not arrived"])  # -> (1, n_classes) float32

Needs numpy, scipy, tokenizers and safetensors (threadpoolctl, when installed, keeps BLAS to one thread).

Folder layout (model2vec-style embeddings + a head):

- ``tokenizer.json`` — the `tokenizers` tokenizer (WordLlama's Llama-2 32k vocabulary).
- ``model.safetensors`` — ``embeddings``: (vocab, dim) static token embeddings (frozen, float16).
- ``head.safetensors`` — ``token_index`` (vocab,) int32: token id -> sparse feature (-1 none);
  ``bigram_keys`` (b,) int64 sorted: ``first_id * vocab + second_id`` of known token bigrams;
  ``idf`` (features,) float32; ``sparse_weight`` (features, k); ``bias`` (k,);
  the embedding head: ``emb_weight`` (k, dim) for a linear head, or ``mlp1_weight`` (hidden, dim), ``mlp1_bias``,
  ``mlp2_weight`` (k, hidden) for the MLP head.
- ``llmlabel_student.json`` — kind, classes, multi_label, threshold, max_tokens and training settings.

Scoring: logits = tfidf(unigrams + known bigrams) @ sparse_weight + head(l2norm(mean token embedding)) + bias;
softmax (single-label) or sigmoid (multi-label).
"""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path

import numpy as np

STUDENT_FILE = "llmlabel_student.json"


CHARS_PER_TOKEN_CAP = 64


def token_ids(tokenizer, texts: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat token ids, tokens per text) with each text cut to ``max_tokens`` tokens."""
    # Tokenising a 5 MB text to keep its first few hundred tokens takes seconds, at every epoch: cut the text
    # first, far enough out (CHARS_PER_TOKEN_CAP characters a token) that the kept tokens are the same.
    cap = max_tokens * CHARS_PER_TOKEN_CAP
    encs = tokenizer.encode_batch([t if len(t) <= cap else t[:cap] for t in texts], add_special_tokens=False)
    ids = [e.ids[:max_tokens] for e in encs]
    lens = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lens.sum()))
    return flat, lens


def count_matrix(flat: np.ndarray, lens: np.ndarray, vocab: int):
    """Sparse (n_texts, vocab) token counts."""
    from scipy import sparse

    indptr = np.concatenate([[0], np.cumsum(lens)])
    m = sparse.csr_matrix((np.ones(len(flat), np.float32), flat, indptr), shape=(len(lens), vocab))
    m.sum_duplicates()
    return m


def mean_embedding(emb: np.ndarray, counts, lens: np.ndarray) -> np.ndarray:
    """L2-normalised mean of the token embeddings of each text (zeros for a text without tokens)."""
    out = np.asarray(counts @ emb, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def sparse_features(flat: np.ndarray, lens: np.ndarray, counts, token_index: np.ndarray, bigram_keys: np.ndarray,
                    idf: np.ndarray, vocab: int):
    """TF-IDF (sublinear tf, L2-normalised rows) over known unigrams and bigrams: a scipy CSR (n, features)."""
    from scipy import sparse

    n, nf = len(lens), len(idf)
    cr = np.repeat(np.arange(n, dtype=np.int64), np.diff(counts.indptr))
    uni = token_index[counts.indices]
    keep = uni >= 0
    r_parts, c_parts, v_parts = [cr[keep]], [uni[keep].astype(np.int64)], [counts.data[keep]]
    if flat.size > 1 and bigram_keys.size:
        rows = np.repeat(np.arange(n, dtype=np.int64), lens)
        same = rows[:-1] == rows[1:]
        keys = flat[:-1] * vocab + flat[1:]
        pos = np.minimum(np.searchsorted(bigram_keys, keys), bigram_keys.size - 1)
        hit = same & (bigram_keys[pos] == keys)
        r_parts.append(rows[:-1][hit])
        c_parts.append(nf - bigram_keys.size + pos[hit])
        v_parts.append(np.ones(int(hit.sum()), np.float32))
    m = sparse.csr_matrix((np.concatenate(v_parts), (np.concatenate(r_parts), np.concatenate(c_parts))),
                          shape=(n, nf), dtype=np.float32)
    m.sum_duplicates()
    m.data = (1.0 + np.log(m.data)) * idf[m.indices]
    norm = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel())
    m.data /= np.repeat(np.maximum(norm, 1e-12), np.diff(m.indptr)).astype(np.float32)
    return m


def features(tokenizer, texts: list[str], max_tokens: int, emb: np.ndarray, head: dict, tokens=None):
    """(dense mean embeddings (n, dim), sparse TF-IDF (n, features) or None); ``tokens``: ``token_ids`` of
    ``texts`` when the caller has them already (tokenising is most of the cost)."""
    flat, lens = token_ids(tokenizer, texts, max_tokens) if tokens is None else tokens
    counts = count_matrix(flat, lens, emb.shape[0])
    x = mean_embedding(emb, counts, lens)
    s = None
    if "idf" in head and len(head["idf"]):
        s = sparse_features(flat, lens, counts, head["token_index"], head["bigram_keys"], head["idf"], emb.shape[0])
    return x, s


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(1, keepdims=True)
    return z


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


_BLAS = []


def _one_blas_thread():
    """A context with BLAS limited to one thread (a no-op without threadpoolctl). Why: the per-batch matmuls here are
    tiny, and OpenBLAS's spin-waiting worker threads make them ~100x slower when the cores are busy (measured 25 ms vs
    0.3 ms per batch of 64 on a loaded 2-core box)."""
    import contextlib

    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:
            _BLAS.append(None)
    return contextlib.nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=1, user_api="blas")


class StaticPredictor:
    """Loads a static student folder and predicts with numpy alone."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.config = json.loads((folder / STUDENT_FILE).read_text(encoding="utf-8"))
        self.classes = list(self.config["classes"])
        self.multi_label = bool(self.config.get("multi_label", False))
        t = self.config.get("threshold", 0.5)  # one number, or one per class (multi-label, tuned on dev)
        self.threshold = [float(x) for x in t] if isinstance(t, list) else float(t)
        self.max_tokens = int(self.config.get("max_tokens", 256))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.embeddings = load_file(str(folder / "model.safetensors"))["embeddings"].astype(np.float32)
        self.head = load_file(str(folder / "head.safetensors"))
        self._check_shapes(folder)

    def _check_shapes(self, folder: Path) -> None:
        """Refuse a head that does not fit the class list or the embeddings (a folder mixed from two models)."""
        k, h = len(self.classes), self.head
        if "bias" not in h:
            raise ValueError(f"{folder / 'head.safetensors'} has no 'bias' tensor")
        got = {"bias": h["bias"].shape[0]}
        for name, axis in (("emb_weight", 0), ("mlp2_weight", 0), ("sparse_weight", 1)):
            if name in h:
                got[name] = h[name].shape[axis]
        bad = {n: v for n, v in got.items() if v != k}
        if bad:
            name, v = next(iter(bad.items()))
            raise ValueError(f"head.safetensors scores {v} classes ({name}) but {STUDENT_FILE} names {k}")
        dim = self.embeddings.shape[1]
        w = h.get("emb_weight", h.get("mlp1_weight"))
        if w is not None and w.shape[1] != dim:
            raise ValueError(f"head.safetensors expects {w.shape[1]}-d embeddings, model.safetensors has {dim}-d")

    def logits(self, texts: list[str], batch_size: int = 1024) -> np.ndarray:
        with _one_blas_thread():
            return self._logits(texts, batch_size)

    def _logits(self, texts: list[str], batch_size: int) -> np.ndarray:
        h = self.head
        out = []
        for b in range(0, len(texts), batch_size):
            chunk = list(texts[b : b + batch_size])
            x, s = features(self.tokenizer, chunk, self.max_tokens, self.embeddings, h, self._tokens(chunk))
            z = np.zeros((len(chunk), len(self.classes)), dtype=np.float32) + h["bias"]
            if s is not None:
                z += s @ h["sparse_weight"]
            if "mlp1_weight" in h:
                hid = np.maximum(x @ h["mlp1_weight"].T + h["mlp1_bias"], 0)
                z += hid @ h["mlp2_weight"].T
            elif "emb_weight" in h:
                z += x @ h["emb_weight"].T
            out.append(z)
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return token_ids(self.tokenizer, texts, self.max_tokens)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        z = self.logits(texts)
        return sigmoid(z) if self.multi_label else softmax(z)

    def predict(self, texts: list[str]) -> list:
        p = self.predict_proba(texts)
        if self.multi_label:
            thr = np.asarray(self.threshold, dtype=np.float32)
            return [[self.classes[j] for j in np.flatnonzero(row >= thr)] for row in p]
        return [self.classes[j] for j in p.argmax(1)]


def load(folder: str | Path) -> StaticPredictor:
    return StaticPredictor(folder)
