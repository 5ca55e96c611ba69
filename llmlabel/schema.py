"""Moved: the taxonomy file lives in :mod:`llmlabel.artifacts.taxonomy`, the YAML reader and pydantic error
formatter in :mod:`llmlabel.yamlfile`. This module re-exports both so existing imports keep working."""

from .artifacts.taxonomy import (
                                 OTHER,
                                 Example,
                                 LabelDef,
                                 Taxonomy,
                                 load_taxonomy,
                                 save_taxonomy,
                                 slugify,
                                 validate_taxonomy,
)
from .yamlfile import FieldError, config_error, read_yaml

__all__ = ["Example", "FieldError", "LabelDef", "OTHER", "Taxonomy", "config_error", "load_taxonomy", "read_yaml",
           "save_taxonomy", "slugify", "validate_taxonomy"]
