"""The votes: what ``llmlabel label`` writes and ``llmlabel aggregate`` / ``lf-report`` read.

A votes folder holds Parquet shards (``id``, optional ``text``, ``v:<lf>`` int16 votes, ``p:<lf>`` class
probabilities of LLM/embedding LFs), ``_lf_errors.json`` and ``_manifest.json``::

    {"kind": "llmlabel.votes", "format_version": 1, "shard_size": ..., "shards": [...], "complete": true,
     "depends_on": {"corpus": "sha256:...", "taxonomy": "sha256:...", "lfs": "sha256:...", "engines": {...}},
     "meta": {"labels": [...], "lf_names": [...], ...provenance}}

Multi-label votes use the same layout: one binary (``no``/``yes``) column per (LF, label), ``v:<lf>/<label
id>``, and ``meta.multi_label`` lists the LFs and labels; :mod:`.multivotes` folds them back into (n, m, k).

``depends_on`` says what the votes were computed from, so a rerun into the same folder with another corpus
is refused instead of mixing two corpora's votes. :func:`read_votes` also reads a LabelMatrix ``.parquet``,
a WRENCH ``.json`` split and a Snorkel-style ``.npy`` int array (-1 = abstain).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ConfigError, InputError, OutputError
from ..ids import check_unique
from ._format import check_format, file_hash, fingerprint, stamp
from .matrix import (
    ABSTAIN,
    FORMAT_VERSION,
    KIND,
    PROBA_PREFIX,
    VOTE_PREFIX,
    LabelMatrix,
    onehot,
)

__all__ = ["ABSTAIN", "FORMAT_VERSION", "LabelMatrix", "VotesRead", "VotesWriter", "depends_on", "onehot",
           "read_votes", "read_votes_manifest", "PROBA_PREFIX", "VOTE_PREFIX"]

ERRORS_FILE = "_lf_errors.json"
LOCK_FILE = "_lock"  # held (flock) by the one process writing the folder; removed when it is done
_HINT = "give a votes folder from `llmlabel label`, a LabelMatrix .parquet, a WRENCH .json or a Snorkel .npy"


class VotesRead(NamedTuple):
    """What :func:`read_votes` returns: the votes, gold labels (WRENCH splits; else None) and texts (or None)."""

    matrix: LabelMatrix
    gold: np.ndarray | None
    texts: list[str] | None


def depends_on(*, corpus: str | Path | None = None, taxonomy: str | Path | None = None,
               lfs: str | Path | None = None, engines: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``depends_on`` record of a votes folder: fingerprints of the corpus, taxonomy and LF spec files and
    the engine spec of every LLM LF."""
    out: dict[str, Any] = {}
    if corpus is not None:
        out["corpus"] = fingerprint(corpus)
    for key, p in (("taxonomy", taxonomy), ("lfs", lfs)):
        if p is not None and Path(p).is_file():
            out[key] = file_hash(p)
    out["engines"] = dict(sorted((engines or {}).items()))
    return out


def _read_manifest(folder: Path) -> dict:
    man_path = folder / "_manifest.json"
    if not man_path.is_file():
        raise InputError("not a votes folder (no _manifest.json)", path=folder, hint="write one with `llmlabel label`")
    hint = "delete the folder and rerun `llmlabel label`"
    try:
        man = json.loads(man_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"corrupt manifest: {e.msg}", path=man_path, line=e.lineno, hint=hint) from None
    except UnicodeDecodeError as e:
        raise InputError(f"corrupt manifest: bytes that are not UTF-8 at offset {e.start}", path=man_path,
                         hint=hint) from None
    if not isinstance(man, dict):
        raise InputError("corrupt manifest: not a JSON object", path=man_path, hint=hint)
    check_format(man, kind=KIND, version=FORMAT_VERSION, path=man_path)
    shards = man.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) and "file" in s and "rows" in s for s in shards):
        raise InputError("corrupt manifest: no list of shards (file, rows)", path=man_path, field="shards", hint=hint)
    return man


def read_votes_manifest(folder: str | Path) -> dict:
    """The validated manifest of a votes folder (kind, format_version, depends_on, meta, shards)."""
    return _read_manifest(Path(folder))


def _lock(folder: Path):
    """Take the folder's write lock or say who holds it. flock dies with its process, so a kill -9 never
    leaves a stale lock behind; the file is removed on release and re-checked after locking (an unlinked
    file's lock would be worthless)."""
    import fcntl
    import os

    from ..io_write import _output_error

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _output_error(folder, e) from None
    path = folder / LOCK_FILE
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise _output_error(folder, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputError(f"another process (pid {holder}) is writing this votes folder", path=folder,
                              hint="wait for it to finish (it resumes the same work), or use another -o/--output")
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            return fd
        os.close(fd)  # the holder removed the file between our open and flock: take the new one
    raise OutputError("could not take the votes folder's lock", path=folder)


def _unlock(folder: Path, fd: int | None) -> None:
    import os
    from contextlib import suppress

    if fd is None:
        return
    with suppress(FileNotFoundError):
        os.unlink(folder / LOCK_FILE)
    os.close(fd)


def _changed_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Which recorded inputs other than the corpus differ (old folders without a record: none known)."""
    names = {"taxonomy": "the taxonomy", "lfs": "lfs.yaml", "engines": "the LLM engines", "gold": "the gold set"}
    return [names[k] for k in names if k in old and k in new and old[k] != new[k]]


class VotesWriter:
    """Write (or resume) a votes folder block by block.

    >>> with VotesWriter("votes/", lf_names=["kw"], labels=["ham", "spam"], depends={...}) as w:  # doctest: +SKIP
    ...     done = w.done_ids()
    ...     w.write(L, texts)

    Resuming checks that the finished shards were made with the same LFs and labels, and (unless
    ``overwrite``) from the same corpus; ``overwrite=True`` discards the old shards. When the taxonomy,
    lfs.yaml or an LF's engine changed, the old votes are stale: the folder starts over (``restarted`` says
    why; LLM answers to unchanged prompts still come from the engine cache). One process at a time may write
    a folder (a lock; a second one gets a one-line error naming the holder's pid).
    """

    def __init__(self, folder: str | Path, *, lf_names: Sequence[str], labels: Sequence[str],
                 prob_lfs: Sequence[str] = (), keep_text: bool = True, shard_size: int = 1000,
                 meta: Mapping[str, Any] | None = None, depends: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.lf_names, self.labels = list(lf_names), list(labels)
        self.keep_text = keep_text
        self.restarted: str | None = None
        self._lock_fd = _lock(self.folder)
        try:
            self._open(prob_lfs, shard_size, meta, depends, overwrite)
        except BaseException:
            self._release()
            raise

    def _open(self, prob_lfs, shard_size, meta, depends, overwrite) -> None:
        import pyarrow as pa

        from ..io_meta import make_meta
        from ..io_shards import ShardWriter

        for tmp in self.folder.glob(".*.tmp"):  # a kill -9 mid-write left it; we hold the lock, so it is no one's
            tmp.unlink()
        resume = (self.folder / "_manifest.json").is_file() and not overwrite
        if resume:
            old = _read_manifest(self.folder)
            om = old.get("meta") or {}
            od, nd = old.get("depends_on") or {}, depends or {}
            oc, nc = od.get("corpus"), nd.get("corpus")
            if oc and nc and oc != nc:
                raise ConfigError("the votes folder was made from another corpus (its fingerprint differs)",
                                  path=self.folder, hint="write to a new folder, or pass --overwrite to start over")
            changed = _changed_inputs(od, nd)
            if changed:
                self.restarted = " and ".join(changed) + " changed since these votes were written"
                resume = False
            elif om.get("lf_names") != self.lf_names or om.get("labels") != self.labels:
                raise ConfigError("the votes folder was written with other LFs or labels", path=self.folder,
                                  hint="use the same --lfs/--taxonomy/--model to resume, or a new output folder")
        fields = [pa.field("id", pa.string())] + ([pa.field("text", pa.string())] if self.keep_text else [])
        fields += [pa.field(VOTE_PREFIX + x, pa.int16()) for x in self.lf_names]
        fields += [pa.field(PROBA_PREFIX + x, pa.list_(pa.float32())) for x in self.lf_names if x in set(prob_lfs)]
        info = dict(meta or make_meta())
        info.update(labels=self.labels, lf_names=self.lf_names)
        header = {**stamp(KIND, FORMAT_VERSION), "depends_on": dict(depends or {})}
        self._w = ShardWriter(self.folder, shard_size, meta=info, schema=pa.schema(fields), resume=resume,
                              header=header)
        self.errors = {x: 0 for x in self.lf_names}
        err_path = self.folder / ERRORS_FILE
        if resume and err_path.is_file() and self._w.next_shard_index:
            self.errors.update(json.loads(err_path.read_text(encoding="utf-8")))
        elif err_path.is_file():
            err_path.unlink()

    @property
    def shards(self) -> int:
        return self._w.next_shard_index

    def done_ids(self) -> set[str]:
        """Ids already in finished shards (a resumed run skips them)."""
        return self._w.done_ids()

    def write(self, L: LabelMatrix, texts: Sequence[str] | None = None) -> None:
        """Append a block of votes (rows in corpus order); LF error counts are kept in ``_lf_errors.json``."""
        from ..io_write import atomic_write

        if L.lf_names != self.lf_names:
            raise ConfigError("vote block has other LFs than the votes folder", path=self.folder)
        recs = L.rows()
        if self.keep_text:
            if texts is None or len(texts) != len(recs):
                raise InputError("the votes folder keeps texts: pass one text per vote row", path=self.folder)
            for r, t in zip(recs, texts):
                r["text"] = t
        self._w.write_many(recs)
        for x, e in L.errors.items():
            self.errors[x] += e
        with atomic_write(self.folder / ERRORS_FILE) as f:
            json.dump(self.errors, f)

    def close(self) -> None:
        try:
            self._w.close()
        finally:
            self._release()

    def _release(self) -> None:
        _unlock(self.folder, self._lock_fd)
        self._lock_fd = None

    def __enter__(self) -> VotesWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._release()


def _read_folder(folder: Path, labels, cardinality) -> VotesRead:
    import pyarrow as pa
    import pyarrow.parquet as pq

    man = _read_manifest(folder)
    meta = man.get("meta") or {}
    if not man.get("complete"):
        raise InputError("votes folder is incomplete (the labeling run did not finish)", path=folder,
                         hint="rerun the same `llmlabel label` command to resume it")
    missing = [s["file"] for s in man["shards"] if not (folder / s["file"]).is_file()]
    if missing:
        raise InputError(f"votes folder is missing shard {missing[0]}"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""), path=folder,
                         hint="restore the file, or delete the folder and rerun `llmlabel label`")
    if not man["shards"]:
        raise InputError("votes folder has no shards (empty corpus?)", path=folder)
    known = meta.get("labels")
    if labels is not None and known is not None and list(known) != list(labels):
        raise ConfigError("the taxonomy's classes differ from the ones the votes were made with", path=folder,
                          hint=f"the votes have {len(known)} classes ({', '.join(map(str, known[:4]))} ...); "
                               "pass the taxonomy used for `llmlabel label`")
    tables = []
    for s in man["shards"]:
        try:
            t = pq.read_table(folder / s["file"])
        except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid/OSError for a truncated file
            raise InputError(f"shard {s['file']} is not a readable Parquet file (truncated or damaged: "
                             f"{type(e).__name__})", path=folder / s["file"],
                             hint="restore it, or delete the folder and rerun `llmlabel label`") from None
        if t.num_rows != s["rows"]:
            raise InputError(f"shard {s['file']} has {t.num_rows} rows, the manifest says {s['rows']}", path=folder)
        tables.append(t)
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowInvalid as e:
        raise InputError(f"the shards do not share one schema ({e})", path=folder) from None
    if "id" in table.column_names:
        check_unique([str(x) for x in table.column("id").to_pylist()], path=folder, what="item")
    lm = LabelMatrix.from_table(table, labels=labels or known, cardinality=cardinality, lf_names=meta.get("lf_names"))
    err_path = folder / ERRORS_FILE
    if err_path.is_file():
        try:
            counts = json.loads(err_path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise InputError(f"not valid JSON ({e})", path=err_path) from None
        if not isinstance(counts, dict):
            raise InputError("the LF error counts must be a JSON object", path=err_path)
        lm.errors.update(counts)
    lm.meta = {**meta, "depends_on": man.get("depends_on") or {}}
    texts = table.column("text").to_pylist() if "text" in table.column_names else None
    return VotesRead(lm, None, texts)


def read_votes(path: str | Path, labels: Sequence[str] | None = None, cardinality: int | None = None) -> VotesRead:
    """Votes from a votes folder, a LabelMatrix ``.parquet``, a WRENCH ``.json`` split or a ``.npy`` array.

    ``labels`` (class names, e.g. the taxonomy's leaves) or ``cardinality`` fix the number of classes; a vote
    outside ``[-1, k)`` is then a one-line error naming its row and LF column.
    """
    path = Path(path)
    labels = None if labels is None else [str(x) for x in labels]
    if not path.exists():
        raise InputError("votes not found", path=path, hint=_HINT)
    if path.is_dir():
        return _read_folder(path, labels, cardinality)
    suf = path.suffix.lower()
    try:
        if suf == ".json":
            from .wrench import load_wrench, load_wrench_label_names

            L, y, texts, ids = load_wrench(path, return_ids=True)
            names = labels or load_wrench_label_names(path.parent)
            k = None if names else (cardinality or max(int(L.max(initial=0)) + 1, int(y.max(initial=0)) + 1, 2))
            lm = LabelMatrix(L, [f"lf_{j}" for j in range(L.shape[1])], labels=names, ids=ids, cardinality=k)
            return VotesRead(lm, (y if (y >= 0).any() else None), texts)
        if suf == ".npy":
            try:
                L = np.load(path, allow_pickle=False)
            except ValueError as e:
                raise InputError(f"not a numeric .npy array ({e})", path=path) from None
            names = [f"lf_{j}" for j in range(L.shape[1] if L.ndim == 2 else 0)]
            return VotesRead(LabelMatrix(L, names, labels=labels, cardinality=cardinality), None, None)
        if suf == ".parquet":
            import pyarrow.parquet as pq

            lm = LabelMatrix.load(path)
            if lm.ids is not None:
                check_unique([str(x) for x in lm.ids], path=path, what="item")
            if labels is not None and lm.labels is not None and list(lm.labels) != labels:
                raise ConfigError("the taxonomy's classes differ from the ones the votes were made with", path=path)
            if labels is not None and lm.labels is None:
                lm = LabelMatrix(lm.votes, lm.lf_names, labels=labels, ids=lm.ids, vote_probs=lm.vote_probs,
                                 errors=lm.errors)
            texts = (pq.read_table(path, columns=["text"]).column(0).to_pylist()
                     if "text" in pq.read_schema(path).names else None)
            return VotesRead(lm, None, texts)
    except ConfigError as e:  # a vote out of range etc.: say which file
        if e.path is None:
            e.path = str(path)
        raise
    raise InputError(f"unknown votes format {suf!r}", path=path, hint=_HINT)
