"""The taxonomy stage of ``llmlabel run``: induce labels, or keep a known label set (``labels:``).

``induce.py`` cannot offer ``labels`` itself: ``known.py`` builds on its helpers, so the choice between them
sits here, one level above both. The stage's options are induce_taxonomy's plus ``labels``, declared below in
full (tests/test_stage_signatures.py checks they match induce_taxonomy's).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError
from .induce import induce_taxonomy
from .items import TaxonomyResult
from .known import taxonomy_from_labels


def taxonomy_stage(corpus: Any, output: str | Path | None = None, *, max_labels: int = 30, instruction: str = "",
                   model: Any = None, levels: int = 1, sample: int | None = None, seed: int = 0,
                   embedder: Any = None, text_field: str | None = None, id_field: str | None = None,
                   refine: Any = None, mode: str = "auto", method: str = "spectral",
                   assignments: str | Path | None = None, cache: str | Path | None = None, no_cache: bool = False,
                   progress: bool = False, engine_kwargs: dict | None = None, raw_dir: str | Path | None = None,
                   llm_options: dict | None = None, multi_label: bool = False,
                   labels: Optional[Path] = None) -> TaxonomyResult:
    """:func:`taxonomy_from_labels` when ``labels`` (a label file) is given, else :func:`induce_taxonomy`.

    With ``labels``, an option only induction uses (``max_labels``, ``levels``, ``refine``, ``mode``, ``method``,
    ``raw_dir``, ``llm_options``) raises :class:`ConfigError` unless it keeps its default: it would do nothing.
    """
    options = {k: v for k, v in locals().items() if k not in ("corpus", "output", "labels")}
    if labels is None:
        return induce_taxonomy(corpus, output, **options)
    return taxonomy_from_labels(labels, corpus, output, **_known_label_options(options))


def _known_label_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options taxonomy_from_labels takes; the others must be at their defaults (nothing is dropped silently)."""
    takes = inspect.signature(taxonomy_from_labels).parameters
    defaults = inspect.signature(taxonomy_stage).parameters
    unused = [k for k, v in options.items() if k not in takes and v != defaults[k].default]
    if unused:
        names = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise ConfigError(f"{names} {'does' if len(unused) == 1 else 'do'} not apply with --labels "
                          "(a given label set is not induced)",
                          hint="those options are for inducing labels: drop them, or drop --labels "
                               "(labels: in a pipeline file)")
    return {k: v for k, v in options.items() if k in takes}
