"""Embedders (offline defaults shipped in wheels), the embedding store that encodes each text once, and exact
top-k search."""

from .embedders import DEFAULT_EMBEDDER, Embedder, load_model
from .index import TopKIndex
from .store import EmbeddingStore
from .stored import (AUTO_MINILM_MAX, StoredEmbedder, auto_embedder, embed_log, embed_store_option, load_embedder,
                     open_store, use_embed_store)

__all__ = ["AUTO_MINILM_MAX", "DEFAULT_EMBEDDER", "Embedder", "EmbeddingStore", "StoredEmbedder", "TopKIndex",
           "auto_embedder", "embed_log", "embed_store_option", "load_embedder", "load_model", "open_store",
           "use_embed_store"]
