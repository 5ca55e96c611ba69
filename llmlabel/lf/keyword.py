"""Keyword and regex LFs: ``label -> patterns``, matched over a whole batch at once.

Matching runs in Arrow's RE2 engine over the batch (no Python loop per item); a pattern RE2 cannot
compile (look-arounds, back-references) falls back to Python's ``re``. When patterns of several labels
match one text, the LF votes the label with the most matching patterns and abstains on a tie.

>>> lf = KeywordLF("kw", {"refund": ["refund", "money back"], "lost": ["lost card"]}, labels=["refund", "lost"])
>>> lf.apply(["I want a Refund", "my lost card", "hello", "refund my lost card"])[0].tolist()
[0, 1, -1, -1]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN, LabelingFunction


def _match(texts: list[str], pattern: str, ignore_case: bool, arr=None) -> np.ndarray:
    """Boolean (n,) 'pattern occurs in text', vectorised (``arr``: the texts already as an Arrow array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(texts, type=pa.large_string()) if arr is None else arr
    try:
        return pc.match_substring_regex(arr, pattern, ignore_case=ignore_case).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        rx = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        return np.fromiter((rx.search(t) is not None for t in texts), bool, len(texts))


class KeywordLF(LabelingFunction):
    """Votes the label whose patterns occur in the text (keywords match whole words, case-insensitively).

    patterns: ``{label name: [pattern, ...]}``; regex: patterns are regular expressions, else literal
    keywords/phrases; labels: the class order (default: the mapping's keys).
    """

    kind = "keyword"

    def __init__(self, name: str, patterns: Mapping[str, Sequence[str]], *, labels: Sequence[str] | None = None,
                 regex: bool = False, case_sensitive: bool = False) -> None:
        super().__init__(name, list(labels) if labels is not None else list(patterns))
        self.regex = bool(regex)
        self.case_sensitive = bool(case_sensitive)
        self.patterns: dict[int, list[str]] = {}
        for lab, pats in patterns.items():
            if lab not in self._index:
                raise ConfigError(f"LF '{name}': label {lab!r} is not in the label set",
                                  hint=f"labels are: {', '.join(map(str, self.labels[:10]))}")
            pats = [pats] if isinstance(pats, str) else list(pats)
            if not pats or any(not isinstance(p, str) or not p.strip() for p in pats):
                raise ConfigError(f"LF '{name}': label {lab!r} needs a non-empty list of non-empty patterns")
            compiled = []
            for p in pats:
                if self.regex:
                    try:
                        re.compile(p)
                    except re.error as e:
                        raise ConfigError(f"LF '{name}': bad regex {p!r} for label {lab!r} ({e})") from None
                    compiled.append(p)
                else:
                    compiled.append(r"\b" + re.escape(p.strip()) + r"\b")
            self.patterns[self._index[lab]] = compiled

    def _apply(self, texts, items):
        import pyarrow as pa

        n, k = len(texts), len(self.labels)
        hits = np.zeros((n, k), dtype=np.int32)
        arr = pa.array(list(texts), type=pa.large_string())
        for j, pats in self.patterns.items():  # loops over patterns, never over items
            if len(self.patterns) == 1 and not self.regex:  # one label (keyphrase LFs): whether any keyword occurs
                pats = ["|".join(pats)]                     # is all that counts, so one scan for all of them
            for p in pats:
                hits[:, j] += _match(texts, p, not self.case_sensitive, arr)
        best = hits.max(1)
        votes = hits.argmax(1).astype(np.int16)
        tie = (hits == best[:, None]).sum(1) > 1
        votes[(best == 0) | tie] = ABSTAIN
        return votes, None


def keyphrase_lfs(taxonomy, *, prefix: str = "kw") -> list[KeywordLF]:
    """One unipolar keyword LF per taxonomy label that has keyphrases (``kw:<label id>``).

    Unipolar LFs (one label or abstain) let the label model learn each keyword list's accuracy apart. A
    phrase listed under several labels ("said", "new" in news) cannot tell them apart, and a one-character
    one is a tokeniser leftover ("s" of "it's"): both would fire on most items for every label, so they are
    left out.
    """
    from collections import Counter

    names = [lab.name for lab in taxonomy.labels]
    shared = Counter(p.strip().lower() for lab in taxonomy.labels for p in set(lab.keyphrases or []))
    out = []
    for lab in taxonomy.labels:
        phrases = [p for p in (lab.keyphrases or []) if len(p.strip()) > 1 and shared[p.strip().lower()] == 1]
        if phrases:
            out.append(KeywordLF(f"{prefix}:{lab.id}", {lab.name: phrases}, labels=names))
    return out
