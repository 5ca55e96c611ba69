"""Moved to :mod:`llmlabel.artifacts.wrench` (the votes formats live in the artifacts floor); kept for imports."""

from ..artifacts.wrench import load_wrench, load_wrench_label_names

__all__ = ["load_wrench", "load_wrench_label_names"]
