"""Multi-label LFs: each votes, per item and per label, 1 (applies), 0 (does not) or -1 (abstain).

``apply(texts, items) -> (votes int16 (n, k), p_yes float32 (n, k) | None)``. Kinds:

- :class:`MultiKeywordLF` — keyword / regex patterns per label, each label on its own (1 on a match, else
  abstain: a missing keyword says little).
- :class:`MultiEmbeddingLF` — cosine of the text to each label's prototype (name + description + examples),
  with a threshold per label: 1 at or above it, 0 below ``low`` (per label too), abstain between.
- :class:`MultiKnnLF` — the ``k`` gold items nearest by embedding vote with their label sets (1 when at
  least ``threshold`` of the neighbours' weight carries the label, 0 when none does); an item that is itself
  a gold item never sees itself (with a :class:`~llmlabel.lf.gold.MultiGoldSet`: nor its cross-fitting fold),
  so its votes there are out-of-sample.
- :class:`~llmlabel.lf.prompted.PromptedMultiLabelLF` — yes/no per label through ``choose()`` (prompt text
  first, label last, so all k prompts of an item share their prefix in the engine's cache).
- :class:`PromptedListLF` — one generation per item whose JSON reply lists label names (the schema's enum is
  the label set): 1 for the listed labels, 0 for the others, abstain on all when the reply failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..labelsets import label_set_matrix
from .core import ABSTAIN, LabelingFunction


class MultiLabelLF(LabelingFunction):
    """Base: ``_apply`` returns (n, k) votes in {1, 0, -1} and optional (n, k) P(applies)."""

    multi_label = True

    def apply(self, texts: Sequence[str], items=None):
        votes, p = self._apply(list(texts), items)
        votes = np.asarray(votes, dtype=np.int16)
        if votes.shape != (len(texts), len(self.labels)):
            raise ConfigError(f"LF '{self.name}' returned {votes.shape} votes for {len(texts)} items x "
                              f"{len(self.labels)} labels")
        return votes, None if p is None else np.asarray(p, dtype=np.float32)


def _per_label(value: float | Mapping[str, float] | None, labels: list[str], default: float, what: str,
               lf: str) -> np.ndarray:
    """A per-label array from one number or ``{label: number}`` (others get ``default``)."""
    out = np.full(len(labels), default, np.float32)
    if value is None:
        return out
    if not isinstance(value, Mapping):
        out[:] = float(value)
        return out
    idx = {x: j for j, x in enumerate(labels)}
    for key, v in value.items():
        if key not in idx:
            raise ConfigError(f"LF '{lf}': {what} for unknown label {key!r}")
        out[idx[key]] = float(v)
    return out


def _gold_label_matrix(name: str, gold_texts: Sequence[str], gold_labels: Sequence[Sequence[str]],
                       index: Mapping[str, int], dtype=np.float32) -> np.ndarray:
    """The gold's label sets as an ``n x k`` 0/1 matrix; a bad gold set is a one-line error naming the LF."""
    if not gold_texts:
        raise ConfigError(f"LF '{name}': the gold set is empty")
    if len(gold_labels) != len(gold_texts):
        raise ConfigError(f"LF '{name}': {len(gold_labels)} label sets for {len(gold_texts)} gold texts")
    try:
        return label_set_matrix(gold_labels, index, dtype)
    except KeyError as e:
        raise ConfigError(f"LF '{name}': gold label {e.args[0]!r} is not in the label set") from None


class MultiKeywordLF(MultiLabelLF):
    """``patterns: {label: [pattern, ...]}``; a text matching any pattern of a label votes 1 for it."""

    kind = "keyword"

    def __init__(self, name: str, patterns: Mapping[str, Sequence[str]], *, labels: Sequence[str],
                 regex: bool = False, case_sensitive: bool = False) -> None:
        super().__init__(name, list(labels))
        self.case_sensitive = bool(case_sensitive)
        self.patterns: dict[int, list[str]] = {}
        for lab, pats in patterns.items():
            if lab not in self._index:
                raise ConfigError(f"LF '{name}': label {lab!r} is not in the label set")
            pats = [pats] if isinstance(pats, str) else list(pats)
            if not pats or any(not isinstance(p, str) or not p.strip() for p in pats):
                raise ConfigError(f"LF '{name}': label {lab!r} needs a non-empty list of non-empty patterns")
            for p in pats:
                if regex:
                    try:
                        re.compile(p)
                    except re.error as e:
                        raise ConfigError(f"LF '{name}': bad regex {p!r} for label {lab!r} ({e})") from None
            self.patterns.setdefault(self._index[lab], []).extend(
                pats if regex else [r"\b" + re.escape(p.strip()) + r"\b" for p in pats])

    def _apply(self, texts, items):
        from .keyword import _match

        votes = np.full((len(texts), len(self.labels)), ABSTAIN, np.int16)
        for j, pats in self.patterns.items():  # loops over labels and patterns, never over items
            # one alternation per label: a single RE2 pass instead of one per pattern
            hit = _match(texts, "|".join(f"(?:{p})" for p in pats), not self.case_sensitive)
            votes[hit, j] = 1
        return votes, None


class MultiEmbeddingLF(MultiLabelLF):
    """Per-label cosine to the label prototype: 1 at >= ``threshold[label]``, 0 below ``low[label]``."""

    kind = "embedding"

    def __init__(self, name: str, labels: Sequence, *, embedder: Any = "minilm",
                 threshold: float | Mapping[str, float] = 0.4, low: float | Mapping[str, float] | None = None,
                 temperature: float = 0.05) -> None:
        from .embedding import EmbeddingLF

        self._proto = EmbeddingLF(name, labels, embedder=embedder)  # prototypes: name + description + examples
        super().__init__(name, self._proto.labels)
        self.embedder = embedder
        self.threshold = _per_label(threshold, self.labels, 0.4, "threshold", name)
        self.low = _per_label(low, self.labels, -1.0, "low", name)
        self.temperature = float(temperature)

    def similarities(self, texts: list[str]) -> np.ndarray:
        from .embedding import _embedder

        vecs = np.asarray(_embedder(self.embedder).encode(texts), dtype=np.float32)
        return vecs @ self._proto.prototypes().T

    def _apply(self, texts, items):
        sims = self.similarities(texts)
        votes = np.full(sims.shape, ABSTAIN, np.int16)
        votes[sims < self.low] = 0
        votes[sims >= self.threshold] = 1
        p = 1.0 / (1.0 + np.exp(-(sims - self.threshold) / self.temperature))
        return votes, p


class MultiKnnLF(MultiLabelLF):
    """The label sets of the ``k`` nearest gold items, weighted by ``exp((cos - best) / temperature)``."""

    kind = "knn"

    def __init__(self, name: str, gold_texts: Sequence[str], gold_labels: Sequence[Sequence[str]], *,
                 labels: Sequence[str], gold_ids: Sequence[str] | None = None, embedder: Any = "minilm", k: int = 10,
                 threshold: float = 0.5, min_similarity: float = 0.0, temperature: float = 0.05,
                 gold=None) -> None:
        super().__init__(name, list(labels))
        Y = _gold_label_matrix(name, gold_texts, gold_labels, self._index)
        self.gold_texts, self.Y = [str(t) for t in gold_texts], Y
        self.gold_ids = None if gold_ids is None else [str(i) for i in gold_ids]
        self.gold = gold  # a MultiGoldSet over these rows: fold masks (and ``as_fold``) instead of leave-one-out
        if gold is not None and len(gold) != len(self.gold_texts):
            raise ConfigError(f"LF '{name}': the gold folds cover {len(gold)} rows, not {len(self.gold_texts)}")
        self.embedder, self.k = embedder, int(k)
        self.threshold, self.min_similarity, self.temperature = float(threshold), float(min_similarity), float(temperature)
        self._vecs: np.ndarray | None = None

    def _gold_vectors(self) -> np.ndarray:
        if self._vecs is None:
            from .embedding import _embedder

            self._vecs = np.asarray(_embedder(self.embedder).encode(self.gold_texts), dtype=np.float32)
        return self._vecs

    def _apply(self, texts, items):
        from .embedding import _embedder

        vecs = np.asarray(_embedder(self.embedder).encode(texts), dtype=np.float32)
        sims = vecs @ self._gold_vectors().T
        if self.gold is not None:  # a gold item sees the other folds; inside ``as_fold(f)`` other items too
            own = self.gold.item_folds(None if items is None else [it.get("id") for it in items], len(sims))
            sims[(own[:, None] >= 0) & (own[:, None] == self.gold.fold[None, :])] = -np.inf
        elif self.gold_ids is not None and items is not None:  # a gold item never votes for itself
            pos = {g: j for j, g in enumerate(self.gold_ids)}
            rows = [(i, pos[str(it.get("id"))]) for i, it in enumerate(items) if str(it.get("id")) in pos]
            if rows:
                r, c = np.asarray(rows).T
                sims[r, c] = -np.inf
        k = min(self.k, sims.shape[1])
        nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sims, nn, 1)
        best = s.max(1, keepdims=True)
        seen = np.isfinite(best[:, 0])
        w = np.where(np.isfinite(s), np.exp((s - np.where(seen[:, None], best, 0.0)) / self.temperature), 0.0)
        w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
        p = np.einsum("nk,nkc->nc", w, self.Y[nn])
        votes = np.where(p >= self.threshold, 1, np.where(p <= 1e-6, 0, ABSTAIN)).astype(np.int16)
        votes[~seen | (best[:, 0] < self.min_similarity)] = ABSTAIN
        return votes, p


class PromptedListLF(MultiLabelLF):
    """One JSON reply per item, ``{"labels": [names]}`` with the names constrained to the label set."""

    kind = "prompted_list"

    def __init__(self, name: str, engine: Any, labels: Sequence, *, template: str | None = None,
                 instruction: str = "", max_tokens: int = 96) -> None:
        from .prompted import _check_engine, _label_parts, load_template

        names, descs, _ = _label_parts(labels, None, [])
        super().__init__(name, names)
        self.descriptions = descs
        self.engine = _check_engine(name, engine)  # an LLM object (built by the run's engine factory)
        self.instruction, self.max_tokens = instruction, int(max_tokens)
        self.template = load_template(template or "lf_label_list")
        if "{text}" not in self.template:
            raise ConfigError(f"LF '{name}': the prompt template has no {{text}} placeholder")

    @property
    def cost(self) -> str:
        return "llm"

    def schema(self) -> dict:
        return {"type": "object", "properties": {"labels": {"type": "array", "items": {"enum": list(self.labels)},
                                                            "maxItems": len(self.labels)}},
                "required": ["labels"], "additionalProperties": False}

    def prompts(self, texts: Sequence[str]) -> list[str]:
        from ..llm.prompting import quote_text
        from .prompted import fill

        block = "\n".join(f"- {n}" + (f": {d}" if d else "") for n, d in zip(self.labels, self.descriptions))
        inst = (" " + self.instruction.strip()) if self.instruction.strip() else ""
        head = fill(self.template, labels=block, instruction=inst)
        return [fill(head, text=quote_text(t)) for t in texts]

    def _apply(self, texts, items):
        from ..llm import usage_log

        if self.engine is None:
            raise ConfigError(f"LF '{self.name}' has no engine", hint="pass engine=load_engine(spec) to apply it")
        with usage_log.stage("label"):
            comps = self.engine.generate(self.prompts(texts), json_schema=self.schema(), max_tokens=self.max_tokens,
                                    on_error="keep")
        votes = np.full((len(texts), len(self.labels)), ABSTAIN, np.int16)
        for i, c in enumerate(comps):
            if c.error is None and isinstance(c.parsed, dict):
                votes[i] = 0
                for x in c.parsed.get("labels") or []:
                    if x in self._index:
                        votes[i, self._index[x]] = 1
            else:
                self.errors += 1
        return votes, None
