"""The run's encoder tuned on the gold: fitted once, saved in the run folder, honest for the gold's own rows.

Three fits share one folder: ``full`` (all the gold) and two halves. A gold row in cross-fitting fold ``f``
(:class:`llmlabel.lf.gold.GoldSet`) belongs to half ``f % 2``; the encoder tuned on half ``h`` never saw the
rows of half ``1 - h``. :meth:`TunedEncoder.for_fold` gives, for fold ``f``, the encoder tuned on the *other*
half, so a gold row's votes never come from an encoder that saw its label; ``for_fold(-1)`` (any non-gold item)
is the full one. That is one extra fit's worth of work (two fits on half the gold), not ``folds + 1``.

Folder layout (``RUN/encoder/``): the full encoder as a plain sentence-transformers folder (so
``load_embedder("RUN/encoder")``, ``SentenceTransformer("RUN/encoder")`` and ``distill --init RUN/encoder`` read
it offline), ``halves/half0`` and ``halves/half1`` (the same format), and ``tuned.json`` (what it was fitted on:
a fingerprint of the base encoder, settings, gold texts, labels, halves; the seconds each fit took). A rerun with
the same inputs loads the folder; any change refits. A killed fit keeps its finished parts beside the folder
(``.encoder.partial-<fingerprint>``) and resumes from them.

``fit(..., full=False)`` fits the halves only and leaves them in that partial folder: the safety net scores its
``tuned`` candidate on the halves alone, and most runs ship another student, so the full fit (half of the
fine-tuning time at 100 gold) is deferred to :meth:`TunedEncoder.complete`, which resumes from the halves.
``encoder/`` itself only ever holds a complete fit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from .train import TuneSettings, anchor_texts, base_path, tune_encoder

KIND = "llmlabel.tuned_encoder"
FILE = "tuned.json"
PARTS = ("full", "half0", "half1")


def base_identity(base: str) -> str:
    """``path:fingerprint`` of the base folder (config + weight file names, sizes, mtimes)."""
    from ..llm.hf_local import fingerprint

    p = base_path(base).resolve()
    return f"{p}:{fingerprint(p)}"


def fit_fingerprint(base: str, texts: Sequence[str], y, halves_of: np.ndarray | None, labels: Sequence[str],
                    anchors: Sequence[str], settings: TuneSettings, ids: Sequence | None = None) -> str:
    h = hashlib.sha256()
    head = {"base": base_identity(base), "settings": settings.key(), "labels": list(labels), "anchors": list(anchors),
            "halves": None if halves_of is None else np.asarray(halves_of).tolist(), "y": np.asarray(y).tolist(),
            "ids": None if ids is None else [str(i) for i in ids]}
    h.update(json.dumps(head, sort_keys=True).encode())
    for t in texts:
        h.update(str(t).encode("utf-8", "replace") + b"\0")
    return h.hexdigest()[:20]


def recorded_folders(meta: dict | None, source: str | Path | None) -> list[Path]:
    """Where a labeled file's tuned encoder may be, in order: the folder the label stage recorded in its metadata
    (``meta["encoder"]["path"]``), then ``encoder/`` beside the file (``source``)."""
    rec = ((meta or {}).get("encoder") or {}).get("path")
    return ([Path(rec)] if rec else []) + ([Path(source).parent / "encoder"] if source else [])


class TunedEncoder:
    """A fitted (or loaded) tuned-encoder folder; ``full``/``half(h)``/``for_fold(f)`` give embedders.

    Embedders are :func:`llmlabel.embed.load_embedder` objects over the part folders (``encode(texts)`` ->
    unit rows), loaded on first use.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / FILE
        if not meta_path.is_file():
            raise InputError(f"{self.folder} is not a tuned-encoder folder (no {FILE})", path=self.folder,
                             hint="fit one with `llmlabel encoder --gold gold.jsonl -o RUN/encoder`")
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"unreadable {FILE}: {e.msg}", path=meta_path, line=e.lineno) from e
        if self.meta.get("kind") != KIND:
            raise InputError(f"{meta_path} is a {self.meta.get('kind')!r} file, not {KIND}", path=meta_path, field="kind")
        self._emb: dict[str, Any] = {}
        self._staged: tuple[Path, dict] | None = None  # (partial folder, fit arguments) while the full fit is deferred

    # -- identity --------------------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def has_halves(self) -> bool:
        return bool(self.meta.get("halves"))

    @property
    def has_full(self) -> bool:
        """False while the full fit is deferred (``fit(..., full=False)``): the halves alone are usable."""
        return self._staged is None

    def identity(self) -> dict:
        """What a votes manifest, labeled metadata or model card records about the encoder."""
        return {"path": str(self.folder.resolve()), "fingerprint": self.fingerprint, "base": self.meta.get("base"),
                "method": self.meta.get("settings", {}).get("method"), "gold_items": self.meta.get("gold_items"),
                "halves": self.has_halves}

    # -- embedders -------------------------------------------------------------------------------------------
    def _load(self, part: str):
        if part not in self._emb:
            from ..embed import load_embedder

            if part == "full" and not self.has_full:
                raise ConfigError(f"the tuned encoder {self.folder} has its halves only; complete() fits the full one")
            halves = self.folder / "halves" if self._staged is None else self._staged[0]
            where = self.folder if part == "full" else halves / part
            if part != "full" and not where.is_dir():  # no halves fitted: gold rows fall back to the base encoder
                self._emb[part] = load_embedder(self.meta.get("base") or "minilm")
            else:
                self._emb[part] = load_embedder(str(where))
        return self._emb[part]

    @property
    def full(self):
        """The encoder tuned on all the gold: for every item that is not a gold row."""
        return self._load("full")

    def half(self, h: int):
        """The encoder tuned on half ``h`` of the gold (the rows whose fold % 2 == h)."""
        if h not in (0, 1):
            raise ConfigError(f"half must be 0 or 1, got {h}")
        return self._load(f"half{h}")

    @staticmethod
    def part_for_fold(fold: int) -> str:
        """``full`` for ``fold < 0`` (not a gold row), else the half the fold's rows were *not* tuned on."""
        return "full" if fold < 0 else f"half{1 - int(fold) % 2}"

    def for_fold(self, fold: int):
        """An embedder honest for the gold rows of ``fold`` (usable on any texts: "as if they were in fold f")."""
        return self._load(self.part_for_fold(int(fold)))

    def item_folds(self, ids: Sequence | None, n: int) -> np.ndarray:
        """Per item: the half-fold of a gold id the encoder was fitted with (0 or 1), -1 for any other item.

        A fold ``f`` and ``f % 2`` map to the same part, so the half stands in for the fold."""
        half = self.meta.get("gold_halves") or {}
        if ids is None or not half:
            return np.full(n, -1, dtype=np.int64)
        return np.fromiter((half.get(str(i), -1) for i in ids), dtype=np.int64, count=n)

    def encode_items(self, ids: Sequence | None, texts: Sequence[str]) -> np.ndarray:
        """Vectors for corpus items: a gold item (by id) from the encoder tuned without it, the rest from ``full``."""
        return self.encode_by_fold(texts, self.item_folds(ids, len(texts)))

    def encode_by_fold(self, texts: Sequence[str], folds: np.ndarray) -> np.ndarray:
        """Each text embedded by ``for_fold`` of its fold (-1: the full encoder): one call per part."""
        folds = np.asarray(folds, dtype=np.int64)
        texts = list(texts)
        parts = np.array([self.part_for_fold(int(f)) for f in np.unique(folds)], dtype=object)
        out: np.ndarray | None = None
        for f, part in zip(np.unique(folds), parts):
            rows = np.flatnonzero(folds == f)
            v = self._load(part).encode([texts[i] for i in rows])
            if out is None:
                out = np.zeros((len(texts), v.shape[1]), np.float32)
            out[rows] = v
        return out if out is not None else np.zeros((0, 0), np.float32)

    # -- fitting ---------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, folder: str | Path, *, texts: Sequence[str], y, labels: Sequence[str], fold=None, ids=None,
            descriptions: Sequence[str] | None = None, anchors: Sequence[str] | None = None,
            base: str = "minilm", settings: TuneSettings | None = None,
            halves: bool = True, threads: int | None = None, source: str | None = None,
            full: bool = True, progress: bool | Callable[[int], None] = False) -> "TunedEncoder":
        """Fit the full encoder and (``halves``, needs ``fold``) the two halves into ``folder``; load it instead
        when ``folder`` already holds a fit of the same inputs. ``ids`` (the gold rows' corpus ids) are recorded
        with their half, so :meth:`encode_items` can route gold items to the honest encoder later. ``full=False``
        fits (or finds) the halves only and defers the full fit to :meth:`complete` (module docstring). The
        anchors are ``anchors`` (one text per label) when given, else ``name: description`` from ``descriptions``.
        ``progress``: a bar per fine-tuning (or a callable given each step, as :class:`~llmlabel.progress.Ticker`)."""
        args = {k: v for k, v in locals().items() if k not in ("cls", "full")}
        settings = settings or TuneSettings()
        if not (full or halves):
            raise ConfigError("encoder tuning with full=False needs halves=True: there would be nothing to fit")
        y = np.asarray(y, dtype=np.int64)
        if len(texts) != len(y) or len(y) == 0:
            raise ConfigError("encoder tuning needs gold texts and labels of the same, non-zero length")
        halves_of = None
        if halves:
            if fold is None:
                raise ConfigError("encoder tuning with halves needs each gold row's cross-fitting fold")
            halves_of = np.asarray(fold, dtype=np.int64) % 2
        if anchors is not None and len(anchors) != len(labels):
            raise ConfigError(f"encoder tuning: {len(anchors)} anchor texts for {len(labels)} labels")
        anchors = [str(a) for a in anchors] if anchors is not None else \
            anchor_texts(list(labels), list(descriptions) if descriptions else None)
        fp = fit_fingerprint(base, texts, y, halves_of, labels, anchors, settings, ids)
        folder = Path(folder)
        if (folder / FILE).is_file():
            try:
                old = cls(folder)
                if old.fingerprint == fp:
                    return old
            except InputError:
                pass  # unreadable: refit over it
        stage = folder.parent / f".{folder.name}.partial-{fp}"
        facts: dict[str, dict] = {}
        for part in PARTS[1:] if not full else PARTS if halves else ("full",):
            rows = np.arange(len(y)) if part == "full" else np.flatnonzero(halves_of == int(part[-1]))
            done = stage / part / "part.json"
            if done.is_file() and json.loads(done.read_text()).get("fingerprint") == fp:
                facts[part] = json.loads(done.read_text())["facts"]
                continue
            tmp = stage / f"{part}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            what = f"all {len(y)} gold" if part == "full" else f"half {part[-1]}, {len(rows)} gold"
            facts[part] = tune_encoder(base, [texts[i] for i in rows], y[rows], anchors, settings, tmp, threads=threads,
                                       stamp={"fingerprint": fp, "part": part}, progress=progress,
                                       desc=f"tuning encoder ({what})")
            (tmp / "part.json").write_text(json.dumps({"fingerprint": fp, "facts": facts[part]}), encoding="utf-8")
            shutil.rmtree(stage / part, ignore_errors=True)
            tmp.rename(stage / part)
        meta = {"kind": KIND, "format_version": 1, "fingerprint": fp, "base": base, "base_identity": base_identity(base),
                "settings": settings.key(), "labels": list(labels), "anchors": anchors, "gold_items": int(len(y)),
                "gold_source": source, "halves": bool(halves), "fits": facts,
                "gold_halves": ({str(i): int(h) for i, h in zip(ids, halves_of)} if halves and ids is not None else {}),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if not full:
            return cls._deferred(folder, stage, meta, args)
        final = stage / "final"
        shutil.rmtree(final, ignore_errors=True)
        (stage / "full").rename(final)
        (final / "part.json").unlink()
        if halves:
            (final / "halves").mkdir()
            for h in ("half0", "half1"):
                (stage / h / "part.json").unlink()
                (stage / h).rename(final / "halves" / h)
        (final / FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)  # a fit of other inputs: this folder is ours to replace
        final.rename(folder)
        shutil.rmtree(stage, ignore_errors=True)
        return cls(folder)

    @classmethod
    def _deferred(cls, folder: Path, stage: Path, meta: dict, args: dict) -> "TunedEncoder":
        enc = cls.__new__(cls)
        enc.folder, enc.meta, enc._emb, enc._staged = folder, meta, {}, (stage, args)
        return enc

    def complete(self) -> "TunedEncoder":
        """This encoder with its full fit: itself when it has one, else the deferred fit finished into its folder
        (the halves already fitted are reused, not refitted)."""
        if self._staged is None:
            return self
        return type(self).fit(**self._staged[1], full=True)

    def seconds(self) -> float:
        """Training seconds of all parts together (as recorded when they were fitted)."""
        return float(sum(f.get("seconds", 0.0) for f in self.meta.get("fits", {}).values()))

    def __repr__(self) -> str:
        return f"TunedEncoder({str(self.folder)!r}, fingerprint={self.fingerprint!r}, halves={self.has_halves})"
