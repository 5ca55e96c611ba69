"""Run a list of LFs over a batch of items into a :class:`~llmlabel.labelmodel.LabelMatrix`.

Cheap LFs (keyword, regex, embedding) run vectorised on the whole batch; LLM LFs send the whole batch
through their engine (which batches, caches and counts usage). An LF that raises on a batch is retried
item by item, and the items that still fail abstain and count as that LF's errors; a bad setting, a server
that kept failing after its retries or an unusable cache stops the run instead.

>>> from llmlabel.lf.keyword import KeywordLF
>>> lfs = [KeywordLF("kw", {"spam": ["free", "win"]}, labels=["ham", "spam"])]
>>> L = apply_lfs(lfs, ["win a free phone", "see you"], labels=["ham", "spam"])
>>> L.votes.tolist()
[[1], [-1]]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..artifacts.matrix import ABSTAIN, LabelMatrix, onehot
from ..errors import CacheError, ConfigError, EngineError, EngineUnavailable, LLMLabelError, ServerError

# Failures of the run, not of an item: abstaining on them would turn an outage into votes that look real
# (and a rerun would keep them). They stop the run; finished shards and cached answers are kept.
_FATAL = (ConfigError, ServerError, EngineUnavailable, CacheError)
from .core import LabelingFunction


def run_one(lf: LabelingFunction, texts: list[str], items, k: int):
    """(votes, proba | None) for one LF on a batch: votes ``(n,)`` class ids, or ``(n, k)`` 1 / 0 / -1 for a
    multi-label LF; proba ``(n, k)``. When the batch call raises, each item is tried alone; items that still
    fail abstain and count as the LF's errors. A failure of the run (:data:`_FATAL`) is raised at once."""
    try:
        return lf.apply(texts, items)
    except LLMLabelError as e:
        if isinstance(e, _FATAL):
            raise  # a bad setting or a dead server fails every item the same way: say so once
        first_error: Exception = e
    except Exception as e:  # noqa: BLE001 - user code and engines may raise anything
        first_error = e
    votes = np.full((len(texts), k) if getattr(lf, "multi_label", False) else len(texts), ABSTAIN, np.int16)
    proba = None
    for i in range(len(texts)):  # failure path only
        try:
            v, p = lf.apply(texts[i : i + 1], None if items is None else items[i : i + 1])
        except _FATAL:
            raise
        except Exception as e:  # noqa: BLE001
            lf.errors += 1
            lf.last_error = f"{type(e).__name__}: {e}"
            continue
        votes[i] = v[0]
        if p is not None:
            if proba is None:
                proba = np.zeros((len(texts), k), np.float32)
            proba[i] = p[0]
    if lf.errors == 0:
        lf.last_error = f"{type(first_error).__name__}: {first_error}"
    return votes, proba


def apply_lfs(lfs: Sequence[LabelingFunction], texts: Sequence[str], *, labels: Sequence[str],
              items: Sequence[dict] | None = None, ids: Sequence | None = None, batch_size: int = 4096,
              keep_probs: bool = True) -> LabelMatrix:
    """Apply every LF to every text; returns a LabelMatrix (LF order = ``lfs``; votes index ``labels``).

    ``items`` (rows with extra fields) go to Python LFs; ``keep_probs`` stores LLM/embedding LFs' class
    distributions for their votes. Per-LF error counts are in ``result.errors``.
    """
    texts = list(texts)
    labels = list(labels)
    k = len(labels)
    names = [lf.name for lf in lfs]
    if len(set(names)) != len(names):
        dup = next(x for x in names if names.count(x) > 1)
        raise ConfigError(f"LF name '{dup}' is used twice; LF names must be unique")
    for lf in lfs:
        if lf.labels is not None and list(lf.labels) != labels:
            raise ConfigError(f"LF '{lf.name}' votes over labels {lf.labels[:5]}..., not the run's label set",
                              hint="build every LF from the same taxonomy")
    n = len(texts)
    votes = np.full((n, len(lfs)), ABSTAIN, np.int16)
    probs: dict[str, list] = {}
    has_probs: set[str] = set()
    errors0 = {lf.name: lf.errors for lf in lfs}
    # Cheap LFs first: if they fail on a setting, we learn it before paying for LLM calls.
    order = sorted(range(len(lfs)), key=lambda j: lfs[j].cost == "llm")
    for start in range(0, max(n, 1), batch_size):
        sl = slice(start, min(start + batch_size, n))
        bt = texts[sl]
        bi = None if items is None else list(items[sl])
        if not bt:
            break
        for j in order:
            lf = lfs[j]
            v, p = run_one(lf, bt, bi, k)
            votes[sl, j] = v
            if p is not None and p.shape != (len(bt), k):
                raise ConfigError(f"LF '{lf.name}' returned probabilities of shape {p.shape}, not ({len(bt)}, {k})")
            # Per batch: the voted rows' distributions, or one-hot rows when the LF gave none this time.
            probs.setdefault(lf.name, []).append(onehot(v, k) if p is None else p[v >= 0].astype(np.float16))
            if p is not None:
                has_probs.add(lf.name)
    vote_probs = {name: np.concatenate(probs[name]) for name in names
                  if keep_probs and name in has_probs}
    errors = {lf.name: lf.errors - errors0[lf.name] for lf in lfs}
    return LabelMatrix(votes, names, labels=labels, ids=ids, vote_probs=vote_probs, errors=errors)



#: Past this share of items an LF failed on (raised, or got an empty or unparseable LLM answer), the run stops:
#: votes that are mostly abstains from a broken server or a broken LF are not a result to build on.
MAX_ERROR_SHARE = 0.2
#: The share is judged once this many items are done (or at the last batch of a smaller corpus).
MIN_ITEMS_FOR_SHARE = 20


class ErrorShare:
    """Counts each LF's failed items over a run and stops it past :data:`MAX_ERROR_SHARE`.

    Call :meth:`add` with a batch's per-LF error counts *before* writing the batch: the batch that crosses
    the line is not written, so the rerun (after the server is fixed) redoes it instead of keeping abstains."""

    def __init__(self, lfs: Sequence[LabelingFunction]) -> None:
        self.lfs = {lf.name: lf for lf in lfs}
        self.errors: Counter = Counter()
        self.items = 0

    def add(self, errors: Mapping[str, int], n: int, *, last: bool = False) -> None:
        self.items += n
        self.errors.update({k: int(v) for k, v in errors.items() if v})
        if not self.items or (self.items < MIN_ITEMS_FOR_SHARE and not last):
            return
        for name, e in self.errors.most_common():
            if e <= MAX_ERROR_SHARE * self.items:
                break
            lf = self.lfs.get(name)
            engine = getattr(getattr(lf, "engine", None), "spec", None)
            why = getattr(lf, "last_error", None)
            raise EngineError(f"LF '{name}' failed on {e} of {self.items} items ({e / self.items:.0%}, more than "
                              f"{MAX_ERROR_SHARE:.0%})" + (f" with {engine}" if engine else "")
                              + (f": {why}" if why else ""),
                              hint="fix the server or the LF and rerun; finished shards and cached answers are kept")


def with_last(items: Iterable) -> Iterator[tuple[object, bool]]:
    """(item, is it the last one) for each item of ``items``."""
    it = iter(items)
    try:
        cur = next(it)
    except StopIteration:
        return
    for nxt in it:
        yield cur, False
        cur = nxt
    yield cur, True
