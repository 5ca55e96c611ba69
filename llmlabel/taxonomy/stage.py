"""The taxonomy stage of ``llmlabel run``: induce labels, or keep a known label set (``labels:``).

``induce.py`` cannot offer ``labels`` itself: ``known.py`` builds on its helpers, so the choice between them
sits here, one level above both. The stage's options are induce_taxonomy's plus ``labels``.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any, Optional

from .induce import induce_taxonomy
from .known import taxonomy_from_labels


def taxonomy_stage(corpus: Any, output: str | Path | None = None, *, labels: Optional[Path] = None, **options: Any):
    """:func:`taxonomy_from_labels` when ``labels`` (a label file) is given, else :func:`induce_taxonomy`."""
    if labels is not None:
        keep = inspect.signature(taxonomy_from_labels).parameters
        return taxonomy_from_labels(labels, corpus, output, **{k: v for k, v in options.items() if k in keep})
    return induce_taxonomy(corpus, output, **options)


_base = inspect.signature(induce_taxonomy)
_params = [p for p in _base.parameters.values()]
_params.append(inspect.Parameter("labels", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Optional[Path]))
taxonomy_stage.__signature__ = _base.replace(parameters=_params)  # the pipeline reads the options from this
taxonomy_stage.__annotations__ = {**typing.get_type_hints(induce_taxonomy), "labels": Optional[Path]}
