"""Embeddings for eval scripts, computed once per text and kept under /tmp (chunked .npy files, so a run that is
killed keeps what it finished). ``CachedEmbedder`` answers llmlabel's Embedder interface from that cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

CACHE = Path("/tmp/llmlabel-eval-emb")
CHUNK = 2000


def _key(name: str, texts: list[str]) -> str:
    h = hashlib.sha256(name.encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace") + b"\0")
    return h.hexdigest()[:16]


def embed_cached(embedder, texts: list[str], *, progress: bool = True) -> np.ndarray:
    """Rows for ``texts`` in order; chunks of CHUNK texts are cached by content hash."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for b in range(0, len(texts), CHUNK):
        chunk = texts[b: b + CHUNK]
        f = CACHE / f"{embedder.name.replace('/', '_')}-{_key(embedder.name, chunk)}.npy"
        if f.is_file():
            out.append(np.load(f))
            continue
        x = embedder.encode(chunk, batch_size=128, progress=False).astype(np.float32)
        tmp = f.with_suffix(".tmp.npy")
        np.save(tmp, x)
        tmp.rename(f)
        out.append(x)
        if progress:
            print(f"embedded {b + len(chunk):,}/{len(texts):,} with {embedder.name}", flush=True)
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


class CachedEmbedder:
    """An llmlabel embedder whose ``encode`` looks texts up in a precomputed table (falls back to the model)."""

    def __init__(self, embedder, texts: list[str], vectors: np.ndarray) -> None:
        self.inner, self.name, self.dim = embedder, embedder.name, embedder.dim
        self.truncated = 0
        self.table = {t: i for i, t in enumerate(texts)}
        self.vectors = vectors
        self.misses = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode(self, texts, *, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        idx = np.fromiter((self.table.get(t, -1) for t in texts), np.int64, len(texts))
        out = np.empty((len(texts), self.dim), np.float32)
        hit = idx >= 0
        out[hit] = self.vectors[idx[hit]]
        if (~hit).any():
            miss = [texts[i] for i in np.flatnonzero(~hit)]
            self.misses += len(miss)
            out[~hit] = self.inner.encode(miss, batch_size=batch_size)
        return out
