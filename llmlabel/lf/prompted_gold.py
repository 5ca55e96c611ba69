"""A prompted LF whose few-shot examples are each item's nearest gold examples (one per label).

Fixed examples from the taxonomy show the model the same few texts whatever it labels; examples picked per
item from the gold set show the labelled texts most like this one, which is where a small model gains most
from in-context examples. On a gold item the examples come only from the other cross-fitting folds, so the
item's own label is never in its prompt (see :class:`~llmlabel.lf.gold.GoldSet`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .gold import GoldSet
from .knn import GoldNeighbours
from .prompted import PromptedLF, fill


class GoldFewShotLF(PromptedLF):
    """:class:`PromptedLF` with ``shots`` gold examples chosen per item by embedding similarity."""

    kind = "prompted"

    def __init__(self, name: str, engine: Any, labels: Sequence, gold: GoldSet, *, shots: int = 4,
                 embedder: Any = "minilm", template: str | None = None, **kw: Any) -> None:
        # The base class only needs one example to pick the few-shot template; the real ones are per item.
        super().__init__(name, engine, labels, template=template or "lf_few_shot",
                         examples=[(gold.texts[0], int(gold.y[0]))], **kw)
        self.shots = int(shots)
        self.neighbours = GoldNeighbours(gold, embedder)
        self._items: Sequence[dict] | None = None

    def prompts(self, texts: Sequence[str], items: Sequence[dict] | None = None) -> list[str]:
        from ..llm.prompting import quote_text

        from .prompted import _snippet

        items = self._items if items is None else items  # the base _apply calls prompts(texts) alone
        ids = None if items is None else [it.get("id") for it in items]
        per_item = self.neighbours.examples(texts, ids, self.shots)
        inst = (" " + self.instruction.strip()) if self.instruction.strip() else ""
        head = fill(self.template, labels=self._label_block(), instruction=inst)
        out = []
        for t, exs in zip(texts, per_item):
            block = "\n\n".join(f"{quote_text(_snippet(x))}\nLabel: {self.labels[j]}" for x, j in exs)
            out.append(fill(head, examples=block, text=quote_text(t)))
        return out

    def _apply(self, texts, items):
        self._items = items
        try:
            return super()._apply(texts, items)
        finally:
            self._items = None
