"""llmlabel: turn unlabeled text into a labeled dataset and a cheap classifier, with local LLMs as annotators."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LLMLabelError  # noqa: E402  (cheap; everything heavy is imported lazily below)

_LAZY = {
    "load_engine": ("llmlabel.llm", "load_engine"),
    "LLM": ("llmlabel.llm", "LLM"),
    "Completion": ("llmlabel.llm", "Completion"),
    "Cache": ("llmlabel.llm.cache", "Cache"),
    "usage_log": ("llmlabel.llm.usage", "usage_log"),
    "read_corpus": ("llmlabel.io", "read_corpus"),
}

__all__ = ["__version__", "LLMLabelError", *_LAZY]


def __getattr__(name: str):
    # Lazy imports keep `import llmlabel` and `llmlabel --help` fast: torch/transformers load on first use.
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmlabel' has no attribute {name!r}")
