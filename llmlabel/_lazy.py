"""Lazy re-exports: a package lists ``{name: (module, attribute)}`` and imports each on first use, so that
``import llmlabel`` and ``llmlabel --help`` never pay for torch, transformers or dspy."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, table: dict[str, tuple[str, str]], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that resolves names from ``table`` and caches them."""

    def __getattr__(name: str) -> Any:
        if name in table:
            mod, attr = table[name]
            value = getattr(importlib.import_module(mod), attr)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
