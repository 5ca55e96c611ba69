"""Exact top-k search over normalised embeddings: blocked matrix products and argpartition.

Never a full sort per query: each block of queries is scored against all rows with one matmul, the k
best are found with ``argpartition`` (O(n)) and only those k are sorted.

>>> idx = TopKIndex(np.eye(4, dtype=np.float32))
>>> scores, ids = idx.search(np.eye(4, dtype=np.float32)[:1], k=2)
>>> ids[0, 0]
0
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


class TopKIndex:
    """Holds an (n, d) matrix (float32 or float16, memory-mapped is fine) and answers top-k queries."""

    def __init__(self, vectors: np.ndarray, *, block_rows: int = 65_536) -> None:
        if vectors.ndim != 2:
            raise ConfigError(f"index vectors must be 2-D, got shape {vectors.shape}")
        self.vectors = vectors
        self.block_rows = block_rows

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def search(self, queries: np.ndarray, k: int = 10, *, prior: np.ndarray | None = None,
               prior_weight: float = 0.0, query_block: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, ids) per query, best first. ``prior`` (n,) is added with ``prior_weight``."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1] != self.vectors.shape[1]:
            raise ConfigError(f"query dim {q.shape[1]} does not match index dim {self.vectors.shape[1]}")
        n = len(self)
        k = min(k, n)
        out_s = np.empty((len(q), k), dtype=np.float32)
        out_i = np.empty((len(q), k), dtype=np.int64)
        for a in range(0, len(q), query_block):
            qb = q[a : a + query_block]
            best_s = np.full((len(qb), 0), -np.inf, dtype=np.float32)
            best_i = np.zeros((len(qb), 0), dtype=np.int64)
            for r in range(0, n, self.block_rows):
                block = np.asarray(self.vectors[r : r + self.block_rows], dtype=np.float32)
                s = qb @ block.T
                if prior is not None and prior_weight:
                    s += prior_weight * prior[r : r + len(block)][None].astype(np.float32)
                kk = min(k, s.shape[1])
                part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
                best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
                best_i = np.concatenate([best_i, part + r], axis=1)
                if best_s.shape[1] > k:  # keep only the running top-k between blocks
                    keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                    best_s = np.take_along_axis(best_s, keep, 1)
                    best_i = np.take_along_axis(best_i, keep, 1)
            order = np.argsort(-best_s, axis=1, kind="stable")
            out_s[a : a + len(qb)] = np.take_along_axis(best_s, order, 1)
            out_i[a : a + len(qb)] = np.take_along_axis(best_i, order, 1)
        return out_s, out_i
