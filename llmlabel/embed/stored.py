"""Embedders that encode each text once: an in-run memo, then the on-disk store, then the model.

:func:`llmlabel.embed.load_embedder` hands out one :class:`StoredEmbedder` per model and process, so every
consumer (taxonomy, each embedding/kNN/logreg LF, the review queue, XMC queries) keeps calling
``encode(texts)`` and gets:

1. the **memo** (this process, bounded LRU): LFs that share an embedder share one encode per batch, with or
   without the store;
2. the **store** (:class:`~llmlabel.embed.store.EmbeddingStore`, shared by processes and runs): a rerun, or the
   next stage of a chain, pays no encode for a text this model already embedded;
3. the **model**, for what is left, whose vectors then go to the store and the memo.

Vectors are float16 in the store, so every vector handed out is float16-rounded (then scaled back to unit
length), whichever of the three gave it: a run yields the same votes from a cold store, a warm store or no
store at all.

Which store: ``use_embed_store(path | False)`` for a block of code (the CLI's ``--embed-cache PATH`` /
``--no-embed-cache``), else ``$LLMLABEL_EMBED_CACHE``, else ``embeddings/`` in the user cache folder.
What was encoded, found or reused is counted in :data:`embed_log` (the commands print it).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .embedders import DEFAULT_EMBEDDER, Embedder, load_model
from .store import EmbeddingStore

#: Embedder used when none is given ("auto"): MiniLM up to AUTO_MINILM_MAX texts, WordLlama above. Measured on
#: Banking77 train (eval/results/taxonomy.md): MiniLM gives NMI 0.79 where WordLlama gives 0.75, but embeds
#: ~150-300 texts/s on 2 CPU cores against ~4,000/s, so beyond ~30k texts MiniLM alone takes many minutes.
AUTO_MINILM_MAX = 30_000
MEMO_BYTES = 256 * 1024**2  # per model: 10^5 MiniLM vectors take 77 MB

_MINILM_ALIASES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def auto_embedder(n: int) -> str:
    """The embedder for ``n`` texts when the user named none: ``minilm`` up to :data:`AUTO_MINILM_MAX`, else
    ``wordllama``."""
    return "minilm" if n <= AUTO_MINILM_MAX else "wordllama"


def auto_reason(n: int, what: str = "texts") -> str:
    """One line saying which embedder the size rule picked and why (printed by the commands)."""
    return f"{auto_embedder(n)} ({n:,} {what}; minilm up to {AUTO_MINILM_MAX:,}, wordllama above)"


# ------------------------------------------------------------------------------------------------ counters
@dataclass
class EmbedCounts:
    encoded: int = 0  # texts the model really encoded
    store_hits: int = 0  # texts read from the store
    reused: int = 0  # texts answered from this process's memo (another LF, or stage, had asked)
    seconds: float = 0.0  # inside the model


@dataclass
class EmbedLog:
    """Per embedder name: what was encoded, read from the store, or reused in this process."""

    models: dict[str, EmbedCounts] = field(default_factory=dict)

    def get(self, name: str) -> EmbedCounts:
        return self.models.setdefault(name, EmbedCounts())

    def as_dict(self) -> dict:
        return {k: dict(vars(v), seconds=round(v.seconds, 3)) for k, v in self.models.items()}

    def summary(self) -> str:
        rows = [f"embeddings ({name}): {c.encoded:,} encoded ({c.seconds:.1f}s in the model), {c.store_hits:,} "
                f"from the store, {c.reused:,} reused in this run" for name, c in self.models.items()]
        return "\n".join(rows) if rows else "no embeddings"

    def reset(self) -> None:
        self.models.clear()


#: The process-wide embedding counters the store-backed embedders add to.
embed_log = EmbedLog()


# ------------------------------------------------------------------------------------------------ the store
_UNSET = object()
_active: list[Any] = [_UNSET]  # the store setting of the running block: a path, False, or unset (= default)
_stores: dict[str, EmbeddingStore] = {}
_lock = threading.RLock()


def embed_store_option(path: Any = None, no_store: bool = False) -> Any:
    """What :func:`use_embed_store` takes from a command's ``--embed-cache`` / ``--no-embed-cache``."""
    if no_store:
        if path not in (None, False):
            raise ConfigError("give --embed-cache PATH or --no-embed-cache, not both")
        return False
    return path


@contextlib.contextmanager
def use_embed_store(path: Any = None, no_store: bool = False):
    """Inside the block, store-backed embedders use the store at ``path`` (None: the default one), or none
    (``no_store`` or ``path=False``). Blocks nest; the setting before is restored on exit."""
    setting = embed_store_option(path, no_store)
    before = _active[0]
    _active[0] = _UNSET if setting is None else setting
    try:
        yield
    finally:
        _active[0] = before


def open_store(path: Any = None) -> EmbeddingStore:
    """The process's one :class:`EmbeddingStore` object for ``path`` (None: the default location)."""
    if isinstance(path, EmbeddingStore):
        return path
    from .store import default_store_path

    p = Path(path).expanduser() if path is not None else default_store_path()
    key = str(p.resolve()) if p.exists() else str(p.absolute())
    with _lock:
        if key not in _stores:
            _stores[key] = EmbeddingStore(p)
        return _stores[key]


def active_store() -> EmbeddingStore | None:
    """The store the running block uses (see :func:`use_embed_store`), or None when it is turned off."""
    setting = _active[0]
    if setting is False:
        return None
    return open_store(None if setting is _UNSET else setting)


# ------------------------------------------------------------------------------------------------ embedders
class _Memo:
    """text hash -> float16 row, least recently used dropped past ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.rows, self.data = max_bytes, 0, OrderedDict()

    def get_into(self, keys: list[bytes], out: np.ndarray, have: np.ndarray) -> None:
        for j, k in enumerate(keys):
            v = self.data.get(k)
            if v is not None:
                out[j] = v
                have[j] = True
                self.data.move_to_end(k)

    def put(self, keys: list[bytes], rows: np.ndarray) -> None:
        if not len(keys) or rows.nbytes // len(keys) == 0:
            return
        cap = self.max_bytes // (rows.nbytes // len(keys))
        rows = rows.copy()  # own rows, so a caller's batch array is not kept alive by a few of them
        for k, r in zip(keys, rows):
            self.data[k] = r
            self.data.move_to_end(k)
        while len(self.data) > cap:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


def text_keys(texts: list[str]) -> list[bytes]:
    """16-byte content hashes of texts (the store's keys)."""
    return [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]


class StoredEmbedder(Embedder):
    """An embedder that asks the memo, then the store, then the model; see the module docstring.

    ``store``: None to follow :func:`use_embed_store` (what :func:`~llmlabel.embed.load_embedder` hands out),
    or a path / :class:`EmbeddingStore` to always use that one, or False for the memo alone.
    """

    def __init__(self, base: Embedder, *, store: Any = None, memo_bytes: int = MEMO_BYTES) -> None:
        super().__init__()
        self.base, self.name, self.dim, self.max_chars = base, base.name, base.dim, base.max_chars
        self._store = store
        self.memo = _Memo(memo_bytes)
        self._memo_for: Any = None  # the store the memo's rows are known to be in (None: no store)
        self.counts = EmbedCounts()  # this object's own tally (embed_log holds the process's)

    @property
    def identity(self) -> str:
        return self.base.identity

    @property
    def bare(self) -> Embedder:
        return self.base

    @property
    def store(self) -> EmbeddingStore | None:
        if self._store is None:
            return active_store()
        return None if self._store is False else open_store(self._store)

    def __getattr__(self, name: str):  # model-specific attributes (``model``, ...) of the wrapped embedder
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.base._encode(texts)

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.truncated += int(sum(len(t) > self.max_chars for t in texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = text_keys(texts)
        first: dict[bytes, int] = {}
        inv = np.fromiter((first.setdefault(k, len(first)) for k in keys), dtype=np.int64, count=len(keys))
        ukeys = list(first)
        upos = np.full(len(ukeys), -1, dtype=np.int64)
        upos[inv[::-1]] = np.arange(len(keys) - 1, -1, -1)  # first position of each distinct text
        rows = np.zeros((len(ukeys), self.dim), dtype=np.float16)
        have = np.zeros(len(ukeys), dtype=bool)
        store = self.store
        with _lock:
            if store is not None and store is not self._memo_for:  # rows the memo got elsewhere (another store,
                self.memo.clear()                                    # or none) may be missing from this one
            self._memo_for = store
            self.memo.get_into(ukeys, rows, have)
        from_memo = have.copy()
        reused = int(from_memo.sum())
        stored = 0
        if store is not None and not have.all():
            miss = np.flatnonzero(~have)
            found, vecs = store.get(self.identity, self.dim, [ukeys[j] for j in miss], name=self.name)
            rows[miss[found]] = vecs[found]
            have[miss[found]] = True
            stored = int(found.sum())
        todo = np.flatnonzero(~have)
        seconds = 0.0
        if len(todo):
            t0 = time.perf_counter()
            x = self.base.encode([texts[i] for i in upos[todo]], batch_size=batch_size, progress=progress)
            seconds = time.perf_counter() - t0
            rows[todo] = np.asarray(x, dtype=np.float32).astype(np.float16)
            if store is not None:
                store.put(self.identity, [ukeys[j] for j in todo], rows[todo], name=self.name)
        fresh = np.flatnonzero(~from_memo)
        with _lock:
            self.memo.put([ukeys[j] for j in fresh], rows[fresh])
            for c in (self.counts, embed_log.get(self.name)):
                c.encoded += len(todo)
                c.store_hits += stored
                c.reused += reused + (len(texts) - len(ukeys))
                c.seconds += seconds
        out = rows[inv].astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)  # unit length again after the float16 rounding
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def __repr__(self) -> str:
        return f"StoredEmbedder({self.name!r}, dim={self.dim})"


# ------------------------------------------------------------------------------------------------ the factory
_models: dict[tuple[str, str | None], Embedder] = {}
_shared: dict[tuple[str, str | None], StoredEmbedder] = {}


def canonical_spec(spec: str | None) -> str:
    """One name per model: ``None``/``auto`` -> the default, MiniLM's aliases -> ``minilm``, a local folder ->
    its absolute path."""
    spec = DEFAULT_EMBEDDER if spec in (None, "auto") else spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"bad embedder spec {spec!r}", hint="use minilm, wordllama or a model name/path")
    if spec in _MINILM_ALIASES:
        return "minilm"
    p = Path(spec).expanduser()
    return str(p.resolve()) if p.exists() else spec


def load_embedder(spec: str | None = None, *, device: str | None = None, store: Any = True) -> Embedder:
    """The embedder for a spec (``minilm`` default, ``wordllama``, a sentence-transformers name or folder), loaded
    once per process and shared.

    ``store=True`` (default): the model's one process-wide :class:`StoredEmbedder` (one memo; the store of
    :func:`use_embed_store`): a text already embedded by this model, in this run or an earlier one, is not
    encoded again. ``store=False``: the bare model. A path or an :class:`EmbeddingStore`: a new store-backed
    embedder bound to that store.
    """
    key = (canonical_spec(spec), device)
    with _lock:
        if key not in _models:
            _models[key] = load_model(key[0], device=device)
        base = _models[key]
        if store is False:
            return base
        if store is True or store is None:
            if key not in _shared:
                _shared[key] = StoredEmbedder(base)
            return _shared[key]
        return StoredEmbedder(base, store=store)


def forget_memos() -> None:
    """Empty every shared embedder's in-process memo (tests; a long-lived process that wants its memory back)."""
    with _lock:
        for e in _shared.values():
            e.memo.clear()
