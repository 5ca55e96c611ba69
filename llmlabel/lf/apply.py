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

from collections.abc import Sequence

import numpy as np

from ..artifacts.matrix import ABSTAIN, LabelMatrix, onehot
from ..errors import CacheError, ConfigError, EngineUnavailable, LLMLabelError, ServerError

# Failures of the run, not of an item: abstaining on them would turn an outage into votes that look real
# (and a rerun would keep them). They stop the run; finished shards and cached answers are kept.
_FATAL = (ConfigError, ServerError, EngineUnavailable, CacheError)
from .core import LabelingFunction


def _run_one(lf: LabelingFunction, texts: list[str], items, k: int):
    """(votes, proba | None) for one LF; per-item fallback when the batch call raises."""
    try:
        return lf.apply(texts, items)
    except LLMLabelError as e:
        if isinstance(e, _FATAL):
            raise  # a bad setting or a dead server fails every item the same way: say so once
        first_error: Exception = e
    except Exception as e:  # noqa: BLE001 - user code and engines may raise anything
        first_error = e
    votes = np.full(len(texts), ABSTAIN, np.int16)
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
            v, p = _run_one(lf, bt, bi, k)
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

