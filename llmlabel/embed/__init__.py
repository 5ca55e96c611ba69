"""Embedders (offline defaults shipped in wheels) and exact top-k search."""

from .embedders import DEFAULT_EMBEDDER, Embedder, load_embedder
from .index import TopKIndex

__all__ = ["DEFAULT_EMBEDDER", "Embedder", "TopKIndex", "load_embedder"]
