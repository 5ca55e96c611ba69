"""Embedding LFs: cosine similarity of a text to each label's description and examples.

Each label gets a prototype (the mean of the normalised embeddings of ``"name: description"`` and its
example texts); the LF votes the most similar label and abstains when the best cosine is under
``threshold``. ``proba`` is a softmax of the cosines at ``temperature``. With a gold set,
``threshold="auto"`` places the cut where the votes on the gold are still right at ``target_precision``
(cross-fitted: a gold item's cut is chosen on the other folds; :class:`~llmlabel.lf.gold.FoldThresholds`).
With the run's tuned encoder (``embedder: tuned``) a gold item and the prototypes it is compared with are
embedded by the encoder tuned without its fold's half (:class:`~llmlabel.lf.spaces.FoldSpaces`).

>>> lf = EmbeddingLF("emb", taxonomy.labels, embedder="minilm", threshold=0.3)   # doctest: +SKIP
>>> votes, proba = lf.apply(["where is my new card?"])                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN, LabelingFunction
from .spaces import FoldSpaces

def _embedder(spec: Any):
    """An embedder object as given, else the process's shared store-backed one for the spec (None: the default):
    LFs naming the same model share one encode per batch, and texts in the embedding store are not encoded."""
    if not isinstance(spec, str) and spec is not None:
        return spec
    from ..embed import load_embedder

    return load_embedder(spec)


class EmbeddingLF(LabelingFunction):
    """Nearest label prototype by cosine similarity; abstain below ``threshold``.

    labels: taxonomy ``LabelDef`` objects, or ``{label name: [description or example texts]}``.
    embedder: an embedder object or a spec for :func:`llmlabel.embed.load_embedder`.
    margin: also abstain when the best and second-best cosines differ by less than this.
    threshold: a cosine, or ``"auto"`` with ``gold`` (a :class:`~llmlabel.lf.gold.GoldSet`): chosen on the gold.
    """

    kind = "embedding"

    def __init__(self, name: str, labels: Sequence | dict, *, embedder: Any = "minilm", threshold: float = 0.3,
                 margin: float = 0.0, temperature: float = 0.05, use_examples: bool = True, gold=None,
                 target_precision: float = 0.6) -> None:
        if isinstance(labels, dict):
            names = [str(k) for k in labels]
            texts = [[str(t) for t in ([v] if isinstance(v, str) else v)] or [k] for k, v in labels.items()]
        else:
            names = [lab.name for lab in labels]
            texts = [[f"{lab.name}: {lab.description}".strip(": ")]
                     + ([e.text for e in lab.examples] if use_examples else []) for lab in labels]
        super().__init__(name, names)
        if len(names) < 2:
            raise ConfigError(f"LF '{name}': an embedding LF needs at least 2 labels")
        if temperature <= 0:
            raise ConfigError(f"LF '{name}': temperature must be > 0")
        if threshold == "auto":
            if gold is None:
                raise ConfigError(f"LF '{name}': threshold: auto needs a gold set to choose it on",
                                  hint="pass --gold gold.jsonl, or give a number")
            if list(gold.labels) != names:
                raise ConfigError(f"LF '{name}': the gold set's labels differ from the taxonomy's")
        elif not isinstance(threshold, (int, float)):
            raise ConfigError(f"LF '{name}': threshold must be a number or 'auto'")
        self.spaces = FoldSpaces(embedder, _embedder)
        if self.spaces.tuned and gold is None:
            raise ConfigError(f"LF '{name}': the tuned encoder needs the gold set (to embed gold items honestly)")
        self.label_texts = texts
        self.embedder = embedder
        self.threshold = threshold if threshold == "auto" else float(threshold)
        self.margin, self.temperature, self.target_precision = float(margin), float(temperature), float(target_precision)
        self.gold = gold
        self.thresholds_ = None  # FoldThresholds once chosen (threshold="auto")
        self._protos: dict[str, np.ndarray] = {}

    def prototypes(self, key: str | None = None) -> np.ndarray:
        """(k, d) unit label prototypes in the space ``key`` (default: the space of non-gold items)."""
        key = self.spaces.key(-1) if key is None else key
        if key not in self._protos:
            flat = [t for ts in self.label_texts for t in ts]
            owner = np.repeat(np.arange(len(self.label_texts)), [len(ts) for ts in self.label_texts])
            vecs = self.spaces.of(flat, key)
            protos = np.zeros((len(self.label_texts), vecs.shape[1]), dtype=np.float32)
            np.add.at(protos, owner, vecs)
            protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
            self._protos[key] = protos
        return self._protos[key]

    @property
    def threshold_(self) -> float:
        return self.thresholds_.overall if self.thresholds_ is not None else self.threshold

    def _sims(self, texts, ids=None) -> np.ndarray:
        texts = list(texts)
        own = self.gold.item_folds(ids, len(texts)) if self.gold is not None else np.full(len(texts), -1)
        sims = np.empty((len(texts), len(self.label_texts)), dtype=np.float32)
        for key, rows in self.spaces.groups(own):
            sims[rows] = self.spaces.of([texts[i] for i in rows], key) @ self.prototypes(key).T
        return sims

    def choose_threshold(self):
        """The cross-fitted cuts from the votes on the gold (the prototypes never see the gold)."""
        from .gold import FoldThresholds

        if self.thresholds_ is None:
            sims = self._sims(self.gold.texts, self.gold.ids)
            self.thresholds_ = FoldThresholds(self.gold, sims.max(1), sims.argmax(1) == self.gold.y,
                                              self.target_precision)
        return self.thresholds_

    def _apply(self, texts, items):
        sims = self._sims(texts, None if items is None else [it.get("id") for it in items])
        order = np.sort(sims, axis=1)
        best, second = order[:, -1], order[:, -2]
        votes = sims.argmax(1).astype(np.int16)
        cut = self.threshold
        if cut == "auto":
            cut = self.choose_threshold().for_items(None if items is None else [it.get("id") for it in items],
                                                    len(texts))
        votes[(best < cut) | (best - second < self.margin)] = ABSTAIN
        z = sims / self.temperature
        z -= z.max(1, keepdims=True)
        proba = np.exp(z)
        proba /= proba.sum(1, keepdims=True)
        return votes, proba
