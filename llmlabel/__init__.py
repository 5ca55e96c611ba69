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
    "write_jsonl": ("llmlabel.io", "write_jsonl"),
    "write_parquet": ("llmlabel.io", "write_parquet"),
    "make_meta": ("llmlabel.io", "make_meta"),
    "read_meta": ("llmlabel.io", "read_meta"),
    "ShardWriter": ("llmlabel.io", "ShardWriter"),
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
