"""llmlabel: turn unlabeled text into a labeled dataset and a cheap classifier, with local LLMs as annotators."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LLMLabelError  # noqa: E402  (cheap; everything heavy is imported lazily below)

from ._lazy import lazy_getattr  # noqa: E402

_LAZY = {
    "load_engine": ("llmlabel.llm", "load_engine"),
    "LLM": ("llmlabel.llm", "LLM"),
    "Completion": ("llmlabel.llm", "Completion"),
    "Cache": ("llmlabel.llm.cache", "Cache"),
    "usage_log": ("llmlabel.llm.usage", "usage_log"),
    "read_corpus": ("llmlabel.io", "read_corpus"),
    "write_jsonl": ("llmlabel.io_write", "write_jsonl"),
    "write_parquet": ("llmlabel.io_write", "write_parquet"),
    "make_meta": ("llmlabel.io_meta", "make_meta"),
    "read_meta": ("llmlabel.io_meta", "read_meta"),
    "ShardWriter": ("llmlabel.io_shards", "ShardWriter"),
    # One entry point per stage (the subpackages hold the rest): the functions the CLI commands and
    # `llmlabel run` call, file in, file out.
    "induce_taxonomy": ("llmlabel.taxonomy", "induce_taxonomy"),
    "label_corpus": ("llmlabel.lf.run", "label_corpus"),
    "aggregate_votes": ("llmlabel.labelmodel.run", "aggregate_votes"),
    "lf_report": ("llmlabel.labelmodel.run", "lf_report"),
    "run_xmc": ("llmlabel.xmc.api", "run_xmc"),
    "evaluate_predictions": ("llmlabel.xmc.api", "evaluate_predictions"),
    "export_review": ("llmlabel.review.export", "export_review"),
    "predict": ("llmlabel.distill.predict", "predict"),
    "Taxonomy": ("llmlabel.artifacts.taxonomy", "Taxonomy"),
    "load_taxonomy": ("llmlabel.artifacts.taxonomy", "load_taxonomy"),
    "labeling_function": ("llmlabel.lf", "labeling_function"),
    "PromptedLF": ("llmlabel.lf", "PromptedLF"),
    "apply_lfs": ("llmlabel.lf", "apply_lfs"),
    "LabelMatrix": ("llmlabel.labelmodel", "LabelMatrix"),
    "DawidSkene": ("llmlabel.labelmodel", "DawidSkene"),
    "MajorityVote": ("llmlabel.labelmodel", "MajorityVote"),
    "select_label_model": ("llmlabel.labelmodel", "select_label_model"),
    "load_pipeline": ("llmlabel.pipeline", "load_pipeline"),
    "run_pipeline": ("llmlabel.pipeline", "run_pipeline"),
}

__all__ = ["__version__", "LLMLabelError", *_LAZY]


__getattr__ = lazy_getattr("llmlabel", _LAZY, globals())
