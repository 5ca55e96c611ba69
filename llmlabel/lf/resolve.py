"""Everything an lfs.yaml names is found before any item is read: an unknown embedder is one line naming the
lfs.yaml line, not minutes of Hub retries or an LF that abstains on every item."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, LLMLabelError

#: LF kinds that load an embedder (or, ``setfit``, the body they fine-tune) by the spec's ``embedder`` name.
EMBEDDER_KINDS = ("embedding", "knn", "logreg", "setfit", "classifier")


def check_models(spec: Any, *, embedder: Any = None) -> None:
    """Resolve every embedder the spec names (:func:`llmlabel.embed.embedders.resolve_embedder`), offline.

    ``embedder``: an embedder object the caller shares with the LFs; it stands in for their names (not for a
    ``setfit`` body, which is fine-tuned from its own)."""
    from ..embed.embedders import resolve_embedder

    for j, s in enumerate(spec.lfs):
        name = getattr(s, "embedder", None)
        if s.kind not in EMBEDDER_KINDS or not isinstance(name, str) or (embedder is not None and s.kind != "setfit"):
            continue
        try:
            resolve_embedder(name)
        except LLMLabelError as e:
            raise ConfigError(f"LF '{s.name or s.kind}': {e.message}", hint=e.hint, field="embedder",
                              **spec.where(j, "embedder")) from None
