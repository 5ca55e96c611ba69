"""What the static students of one safety net share: each text's tokens, and the features of a training set.

The net trains a static student per fold and weak weight on the same weak sample (plus the gold outside the fold),
and with ``weight_decay="auto"`` every fit builds a vocabulary and features twice (its 80% grid split, then all its
rows). Profiled on AG News (5,000 weak rows, 100 gold): tokenising and building vocabularies were 18.7 of the 45 s
its 16 static fits took. The ``all`` and ``equal`` recipes of a fold train on the very same texts with other
weights, so their features are the same; tokens are the same for every fold. A memo hands them back instead of
recomputing them, so a fit with one gives the same head, bit for bit, as a fit without (tests/test_static_memo.py).
It lives as long as the net does (``run_safety_net`` makes one); a student without one computes everything itself.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .static_format import token_ids


class StaticMemo:
    """Tokens per text (per tokenizer and cut) and the last ``max_fits`` training sets' vocabulary and features."""

    def __init__(self, max_fits: int = 12) -> None:
        self.max_fits = int(max_fits)
        self._tokens: dict[tuple, dict[str, np.ndarray]] = {}
        self._fits: OrderedDict[tuple, tuple] = OrderedDict()
        self.hits = self.misses = 0

    def tokens(self, key: tuple, tokenizer, texts: list[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~llmlabel.distill.static_format.token_ids` of ``texts``, tokenising only texts not seen under
        ``key`` (the tokenizer's identity) and ``max_tokens`` before."""
        seen = self._tokens.setdefault((key, int(max_tokens)), {})
        todo = list(dict.fromkeys(t for t in texts if t not in seen))
        if todo:
            flat, lens = token_ids(tokenizer, todo, max_tokens)
            for t, ids in zip(todo, np.split(flat, np.cumsum(lens)[:-1])):
                seen[t] = ids
        parts = [seen[t] for t in texts]
        lens = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return flat.astype(np.int64, copy=False), lens

    def fit_features(self, key: tuple, texts: list[str]):
        """The ``(vocabulary arrays, features)`` stored for exactly these texts under ``key``, or None."""
        t = tuple(texts)
        slot = (key, len(t), hash(t))
        hit = self._fits.get(slot)
        if hit is None or hit[0] != t:  # equal hashes of other texts: recompute (and keep the newer)
            self.misses += 1
            return None
        self._fits.move_to_end(slot)
        self.hits += 1
        return hit[1]

    def keep_fit(self, key: tuple, texts: list[str], value) -> None:
        t = tuple(texts)
        slot = (key, len(t), hash(t))
        self._fits[slot] = (t, value)
        self._fits.move_to_end(slot)
        while len(self._fits) > self.max_fits:
            self._fits.popitem(last=False)
