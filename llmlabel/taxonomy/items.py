"""What both ways of making a taxonomy share (clustering in induce.py, a known label set in known.py): reading
the items, de-duplicating them, loading the embedder, and the result type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifacts.taxonomy import Taxonomy

from ..embed.stored import AUTO_MINILM_MAX, auto_embedder, auto_reason  # noqa: F401  (the size rule, shared with label)

#: Embedder used when none is given ("auto"): :func:`llmlabel.embed.stored.auto_embedder` on the number of distinct
#: texts (MiniLM up to AUTO_MINILM_MAX, WordLlama above). Pass ``embedder="minilm"`` to force it at any size.
DEFAULT_TAXONOMY_EMBEDDER = "auto"
MIN_PER_LABEL = 2  # distinct texts needed per requested label
#: Most labels induced when none is asked for (``--max-labels``).
MAX_LABELS = 30


def labels_room(corpus: Any, *, max_labels: int = MAX_LABELS, text_field: str | None = None,
                id_field: str | None = None, say: Callable[[str], None] | None = None) -> int:
    """``max_labels``, or fewer when the corpus has too few distinct texts for that many (clusters under
    ``MIN_CLUSTER`` distinct texts are dissolved), told to ``say`` when fewer. A first try on a small sample
    should run, not stop on a default the user never set; reads only until it has seen enough distinct texts."""
    from ..io import read_corpus
    from .cluster import MIN_CLUSTER

    if str(corpus).startswith("hf://") or not isinstance(corpus, (str, Path)):
        return max_labels
    per = max(MIN_PER_LABEL, MIN_CLUSTER)
    seen: set[str] = set()
    for b in read_corpus(corpus, text_field=text_field, id_field=id_field).iter_batches(10_000):
        seen.update(" ".join(t.lower().split()) for t in b.texts)
        if len(seen) >= per * max_labels:
            return max_labels
    room = max(2, len(seen) // per)
    if say is not None:
        say(f"{len(seen):,} distinct texts: at most {room} labels (--max-labels sets it)")
    return room


@dataclass
class TaxonomyResult:
    taxonomy: Taxonomy
    ids: list[str]  # the items used, in corpus order
    assignments: list[str]  # label id or "other", aligned with ids
    scores: np.ndarray  # similarity of each item to its label
    stats: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # files written (with ``output=``)

    def rows(self):
        for i, a, s in zip(self.ids, self.assignments, self.scores):
            yield {"id": i, "label": a, "score": round(float(s), 4)}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.assignments:
            out[a] = out.get(a, 0) + 1
        return out


def load_items(corpus: Any, *, text_field: str | None = None, id_field: str | None = None,
               sample: int | None = None, seed: int = 0, progress: bool = False) -> tuple[list[str], list[str], dict]:
    """(ids, texts, read stats) from a path / ``hf://`` name, a list of texts, or a list of (id, text) pairs."""
    info: dict[str, Any] = {}
    if isinstance(corpus, (str, Path)):
        from ..io import read_corpus

        c = read_corpus(corpus, text_field=text_field, id_field=id_field)
        ids, texts = [], []
        for b in c.iter_batches():
            ids.extend(b.ids)
            texts.extend(b.texts)
        info["read"] = c.stats.summary()
        info["text_field"] = c.text_field
    else:
        items = list(corpus)
        if items and isinstance(items[0], (tuple, list)):
            ids, texts = [str(a) for a, _ in items], [str(b) for _, b in items]
        else:
            ids, texts = [str(i) for i in range(len(items))], [str(t) for t in items]
        keep = [i for i, t in enumerate(texts) if t.strip()]
        info["empty_skipped"] = len(texts) - len(keep)
        ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
    info["items_read"] = len(texts)
    if sample is not None and 0 < sample < len(texts):
        pick = np.sort(np.random.default_rng(seed).choice(len(texts), sample, replace=False))
        ids, texts = [ids[i] for i in pick], [texts[i] for i in pick]
        info["sampled"] = sample
    return ids, texts, info


def _dedupe(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(first index of each distinct text, inverse map item -> distinct) on case/space-normalised text."""
    first: dict[str, int] = {}
    inv = np.empty(len(texts), dtype=np.int64)
    uniq: list[int] = []
    for i, t in enumerate(texts):
        key = " ".join(t.lower().split())
        j = first.get(key)
        if j is None:
            j = first[key] = len(uniq)
            uniq.append(i)
        inv[i] = j
    return np.asarray(uniq, dtype=np.int64), inv


def _load_embedder(embedder: Any):
    if embedder is None or isinstance(embedder, str):
        from ..embed import load_embedder

        return load_embedder(embedder)
    return embedder
