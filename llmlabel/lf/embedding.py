"""Embedding LFs: cosine similarity of a text to each label's description and examples.

Each label gets a prototype (the mean of the normalised embeddings of ``"name: description"`` and its
example texts); the LF votes the most similar label and abstains when the best cosine is under
``threshold``. ``proba`` is a softmax of the cosines at ``temperature``.

>>> lf = EmbeddingLF("emb", taxonomy.labels, embedder="minilm", threshold=0.3)   # doctest: +SKIP
>>> votes, proba = lf.apply(["where is my new card?"])                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .core import ABSTAIN, LabelingFunction

_EMBEDDERS: dict[str, Any] = {}


def _embedder(spec: Any):
    if not isinstance(spec, str) and spec is not None:
        return spec
    key = spec or "minilm"
    if key not in _EMBEDDERS:
        from ..embed import load_embedder

        _EMBEDDERS[key] = load_embedder(key)
    return _EMBEDDERS[key]


class EmbeddingLF(LabelingFunction):
    """Nearest label prototype by cosine similarity; abstain below ``threshold``.

    labels: taxonomy ``LabelDef`` objects, or ``{label name: [description or example texts]}``.
    embedder: an embedder object or a spec for :func:`llmlabel.embed.load_embedder`.
    margin: also abstain when the best and second-best cosines differ by less than this.
    """

    kind = "embedding"

    def __init__(self, name: str, labels: Sequence | dict, *, embedder: Any = "minilm", threshold: float = 0.3,
                 margin: float = 0.0, temperature: float = 0.05, use_examples: bool = True) -> None:
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
        self.label_texts = texts
        self.embedder = embedder
        self.threshold, self.margin, self.temperature = float(threshold), float(margin), float(temperature)
        self._protos: np.ndarray | None = None

    def prototypes(self) -> np.ndarray:
        if self._protos is None:
            emb = _embedder(self.embedder)
            flat = [t for ts in self.label_texts for t in ts]
            owner = np.repeat(np.arange(len(self.label_texts)), [len(ts) for ts in self.label_texts])
            vecs = np.asarray(emb.encode(flat), dtype=np.float32)
            protos = np.zeros((len(self.label_texts), vecs.shape[1]), dtype=np.float32)
            np.add.at(protos, owner, vecs)
            protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
            self._protos = protos
        return self._protos

    def _apply(self, texts, items):
        protos = self.prototypes()
        vecs = np.asarray(_embedder(self.embedder).encode(texts), dtype=np.float32)
        sims = vecs @ protos.T
        order = np.sort(sims, axis=1)
        best, second = order[:, -1], order[:, -2]
        votes = sims.argmax(1).astype(np.int16)
        votes[(best < self.threshold) | (best - second < self.margin)] = ABSTAIN
        z = sims / self.temperature
        z -= z.max(1, keepdims=True)
        proba = np.exp(z)
        proba /= proba.sum(1, keepdims=True)
        return votes, proba
