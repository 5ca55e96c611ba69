"""The label texts the ``anchored`` probe is shrunk towards: one per class, ``name: description`` as the label
stage recorded them from the taxonomy (``label_texts`` in the votes' and then the labeled file's metadata), else
the class names (a labeled file from elsewhere, or one made before the key)."""

from __future__ import annotations

from collections.abc import Sequence


def anchors_for(classes: Sequence[str], meta: dict | None) -> list[str]:
    """``meta["label_texts"]`` when it holds one text per class, each starting with its class's name (so a file
    whose classes were renamed or reordered since falls back), else the names."""
    texts = (meta or {}).get("label_texts")
    if (isinstance(texts, list) and len(texts) == len(classes)
            and all(isinstance(t, str) and t.startswith(str(c)) for t, c in zip(texts, classes))):
        return list(texts)
    return [str(c) for c in classes]
