"""``LabelMatrix``: the votes of m LFs on n items, with LF names, item ids and optional vote probabilities.

Votes are int16 ``n x m`` (-1 = abstain). LFs that produce a class distribution (prompted LLM LFs,
embedding LFs) may keep it per vote as float16, stored only where the LF voted, so a mostly-abstaining
matrix stays small. Every label model accepts a LabelMatrix wherever it accepts an int array.

>>> L = LabelMatrix([[0, -1], [1, 1]], ["kw", "llm"], labels=["ham", "spam"], ids=["a", "b"])
>>> L.shape, L.coverage().tolist()
((2, 2), [1.0, 0.5])
>>> from llmlabel.labelmodel import MajorityVote
>>> MajorityVote().fit(L).predict(L).tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, InputError
from ._format import check_format, stamp

#: The vote of a labeling function with no opinion (the one definition; lf/ and labelmodel/ import it).
ABSTAIN = -1
VOTE_PREFIX, PROBA_PREFIX = "v:", "p:"
KIND, FORMAT_VERSION = "votes", 1


def onehot(votes: np.ndarray, k: int, dtype=np.float16) -> np.ndarray:
    """One row per non-abstain vote with a 1 at the voted class: what a hard vote means as a distribution."""
    voted = np.asarray(votes)[np.asarray(votes) >= 0].astype(np.int64)
    out = np.zeros((len(voted), k), dtype)
    out[np.arange(len(voted)), voted] = 1
    return out


def check_lf_names(names, m: int, what: str) -> list[str]:
    """``m`` unique LF names as strings (``lf_0`` ... when None)."""
    if names is None:
        return [f"lf_{j}" for j in range(m)]
    names = [str(x) for x in names]
    if len(names) != m:
        raise ConfigError(f"{what}: {len(names)} LF names for {m} LF columns")
    seen: set[str] = set()
    for x in names:
        if x in seen:
            raise ConfigError(f"{what}: LF name '{x}' is used twice; names must be unique")
        seen.add(x)
    return names


class LabelMatrix:
    """Votes (int16 n x m), ``lf_names``, ``labels`` (class names; k = len), ``ids``, per-LF vote probs.

    ``vote_probs``: ``{lf name: float (n_votes, k)}`` rows for that LF's non-abstain votes in item order,
    or ``{lf name: float (n, k)}`` (rows where it abstains are dropped). ``errors``: per-LF error counts.
    """

    def __init__(self, votes, lf_names: Sequence[str], *, labels: Sequence[str] | None = None,
                 cardinality: int | None = None, ids: Sequence | None = None,
                 vote_probs: dict[str, np.ndarray] | None = None, errors: dict[str, int] | None = None) -> None:
        arr = np.asarray(votes)
        if arr.ndim != 2:
            raise InputError(f"votes must be 2-D (items x LFs), got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not (np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise InputError(f"votes must be integers (-1 = abstain), got dtype {arr.dtype}")
        n, m = arr.shape
        names = check_lf_names(list(lf_names), m, "LabelMatrix")
        if labels is not None:
            labels = [str(x) for x in labels]
            if cardinality is not None and cardinality != len(labels):
                raise ConfigError(f"cardinality={cardinality} but {len(labels)} label names")
            cardinality = len(labels)
        hi = int(arr.max()) if arr.size else -1
        k = int(cardinality) if cardinality is not None else max(hi + 1, 2)
        if k < 2:
            raise ConfigError(f"cardinality must be >= 2, got {k}")
        if arr.size:
            lo_c, hi_c = arr.min(0), arr.max(0)
            bad = np.flatnonzero((lo_c < ABSTAIN) | (hi_c >= k))
            if bad.size:
                j = int(bad[0])
                i = int(np.flatnonzero((arr[:, j] < ABSTAIN) | (arr[:, j] >= k))[0])
                who = f" (id {ids[i]!r})" if ids is not None and len(ids) == n else ""
                raise ConfigError(f"row {i}{who}, LF '{names[j]}' (column {j}): vote {int(arr[i, j])} is outside "
                                  f"[-1, {k}) (-1 = abstain, {k} classes)")
        self.votes = arr.astype(np.int16, copy=False)
        self.lf_names, self.labels, self.cardinality = names, labels, k
        self.ids = None if ids is None else np.asarray([str(i) for i in ids], dtype=object)
        if self.ids is not None and len(self.ids) != n:
            raise InputError(f"{len(self.ids)} ids for {n} vote rows")
        self.errors = {x: int((errors or {}).get(x, 0)) for x in names}
        self.meta: dict = {}  # provenance of the votes when read from a file (labels, LFs, depends_on)
        self.vote_probs: dict[str, np.ndarray] = {}
        for name, pr in (vote_probs or {}).items():
            if name not in names:
                raise ConfigError(f"vote_probs for unknown LF '{name}'")
            pr = np.asarray(pr, dtype=np.float16)
            col = self.votes[:, names.index(name)] >= 0
            if pr.shape == (n, k) and col.sum() != n:
                pr = pr[col]
            if pr.shape != (int(col.sum()), k):
                raise InputError(f"vote_probs['{name}'] has shape {pr.shape}; expected ({int(col.sum())}, {k}) "
                                 f"(one row per non-abstain vote) or ({n}, {k})")
            if not np.isfinite(pr).all() or (pr < 0).any():
                raise InputError(f"vote_probs['{name}'] must hold finite probabilities >= 0")
            self.vote_probs[name] = pr

    # ---- views ------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.votes.shape

    def __len__(self) -> int:
        return self.votes.shape[0]

    def covered(self) -> np.ndarray:
        """True where at least one LF voted."""
        return (self.votes >= 0).any(1)

    def coverage(self) -> np.ndarray:
        """Fraction of items each LF voted on."""
        return (self.votes >= 0).mean(0)

    def dense_vote_probs(self) -> dict[str, np.ndarray]:
        """``{lf: float32 (n, k)}`` for the LFs that kept probabilities, every row (zeros where the LF abstained)."""
        out = {}
        for name, pr in self.vote_probs.items():
            out[name] = np.zeros((len(self), self.cardinality), np.float32)
            out[name][self.votes[:, self.lf_names.index(name)] >= 0] = pr
        return out

    @property
    def probs(self) -> sp.csr_matrix | None:
        """Soft votes as csr ``n x (m*k)`` (LF-major), or None when no LF kept probabilities.

        LFs without probabilities contribute a one-hot row per vote, so soft-vote models see every vote.
        """
        if not self.vote_probs:
            return None
        # Built once per matrix: every label model fitted on it (a selection fits ~10 per gold fold) reads it.
        # Keyed by the arrays it was built from (held with it, so their ids stay theirs): new arrays, a new build.
        key = (id(self.votes), tuple((name, id(pr)) for name, pr in self.vote_probs.items()))
        cached = getattr(self, "_probs", None)
        if cached is not None and cached[0] == key:
            return cached[2]
        n, m = self.votes.shape
        k = self.cardinality
        rows, cols, data = [], [], []
        for j, name in enumerate(self.lf_names):  # loops over LFs, not items
            r = np.flatnonzero(self.votes[:, j] >= 0)
            if name in self.vote_probs:
                pr = self.vote_probs[name].astype(np.float32)
                s = pr.sum(1, keepdims=True)
                pr = np.where(s > 0, pr / np.where(s > 0, s, 1), 0)
                # Rows whose stored distribution is empty fall back to the hard vote.
                empty = s[:, 0] <= 0
                pr[empty, self.votes[r[empty], j]] = 1.0
                rows.append(np.repeat(r, k))
                cols.append(np.tile(j * k + np.arange(k), len(r)))
                data.append(pr.ravel())
            else:
                rows.append(r)
                cols.append(j * k + self.votes[r, j].astype(np.int64))
                data.append(np.ones(len(r), np.float32))
        out = sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(n, m * k))
        out.eliminate_zeros()
        self._probs = (key, (self.votes, list(self.vote_probs.values())), out)
        return out

    def hard(self) -> LabelMatrix:
        """The same votes without probabilities (for models that should see hard votes only)."""
        return LabelMatrix(self.votes, self.lf_names, labels=self.labels, cardinality=self.cardinality,
                           ids=self.ids, errors=self.errors)

    def take(self, rows) -> LabelMatrix:
        """A row subset (boolean mask or indices)."""
        idx = np.arange(len(self))[rows]
        keep = {}
        for name, pr in self.vote_probs.items():
            col = self.votes[:, self.lf_names.index(name)] >= 0
            pos = np.cumsum(col) - 1  # row of each voted item in the compact array
            keep[name] = pr[pos[idx][col[idx]]]
        return LabelMatrix(self.votes[idx], self.lf_names, labels=self.labels, cardinality=self.cardinality,
                           ids=None if self.ids is None else self.ids[idx], vote_probs=keep, errors=self.errors)

    @classmethod
    def concat(cls, parts: Sequence[LabelMatrix]) -> LabelMatrix:
        """Stack row blocks (shards) with the same LFs and labels."""
        if not parts:
            raise InputError("no vote blocks to concatenate")
        first = parts[0]
        for p in parts[1:]:
            if p.lf_names != first.lf_names or p.cardinality != first.cardinality:
                raise InputError("vote shards disagree on LF names or number of classes")
        names_p = set().union(*(p.vote_probs for p in parts))
        probs = {}
        for name in names_p:
            j = first.lf_names.index(name)
            probs[name] = np.concatenate([p.vote_probs.get(name, onehot(p.votes[:, j], p.cardinality))
                                          for p in parts])
        ids = None if any(p.ids is None for p in parts) else np.concatenate([p.ids for p in parts])
        errors = {x: sum(p.errors.get(x, 0) for p in parts) for x in first.lf_names}
        return cls(np.concatenate([p.votes for p in parts]), first.lf_names, labels=first.labels,
                   cardinality=first.cardinality, ids=ids, vote_probs=probs, errors=errors)

    # ---- storage ----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """One dict per item (``id``, ``v:<lf>`` votes, ``p:<lf>`` probability lists or None), for shards."""
        n = len(self)
        ids = self.ids if self.ids is not None else np.arange(n).astype(str)
        cols: dict[str, list] = {"id": [str(i) for i in ids]}
        for j, name in enumerate(self.lf_names):
            cols[VOTE_PREFIX + name] = self.votes[:, j].tolist()
        for name, pr in self.vote_probs.items():
            full: list = [None] * n
            for i, row in zip(np.flatnonzero(self.votes[:, self.lf_names.index(name)] >= 0), pr.tolist()):
                full[i] = row
            cols[PROBA_PREFIX + name] = full
        keys = list(cols)
        return [dict(zip(keys, vals)) for vals in zip(*cols.values())]

    def arrow_schema(self):
        import pyarrow as pa

        fields = [pa.field("id", pa.string())] + [pa.field(VOTE_PREFIX + x, pa.int16()) for x in self.lf_names]
        fields += [pa.field(PROBA_PREFIX + x, pa.list_(pa.float32())) for x in self.lf_names if x in self.vote_probs]
        return pa.schema(fields)

    @classmethod
    def from_table(cls, table, *, labels: Sequence[str] | None = None, cardinality: int | None = None,
                   lf_names: Sequence[str] | None = None) -> LabelMatrix:
        """Back from an Arrow table with ``id``, ``v:<lf>`` and optional ``p:<lf>`` columns."""
        names = list(lf_names) if lf_names else [c[len(VOTE_PREFIX):] for c in table.column_names
                                                  if c.startswith(VOTE_PREFIX)]
        if not names:
            raise InputError("the votes table has no 'v:<lf>' vote columns")
        missing = [x for x in names if VOTE_PREFIX + x not in table.column_names]
        if missing:
            raise InputError(f"the votes table lacks the vote column of LF '{missing[0]}'")
        votes = np.stack([table.column(VOTE_PREFIX + x).to_numpy(zero_copy_only=False) for x in names], 1)
        k = len(labels) if labels is not None else cardinality
        probs = {}
        for x in names:
            c = PROBA_PREFIX + x
            if c in table.column_names:
                col = table.column(c).combine_chunks()
                valid = col.is_valid().to_numpy(zero_copy_only=False)
                flat = col.drop_null().flatten().to_numpy(zero_copy_only=False)
                kk = k or (len(flat) // max(int(valid.sum()), 1))
                pr = np.asarray(flat, dtype=np.float32).reshape(-1, kk) if len(flat) else np.zeros((0, kk))
                voted = votes[:, names.index(x)] >= 0
                if not np.array_equal(valid, voted):
                    raise InputError(f"LF '{x}': probabilities present on rows where it did not vote")
                probs[x] = pr
                k = k or kk
        ids = table.column("id").to_pylist() if "id" in table.column_names else None
        return cls(votes, names, labels=labels, cardinality=k, ids=ids, vote_probs=probs)

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        """Write one Parquet file (labels and LF names in its metadata sidecar)."""
        import pyarrow as pa

        from ..io_meta import make_meta
        from ..io_write import write_parquet

        table = pa.Table.from_pylist(self.rows(), schema=self.arrow_schema())
        info = dict(meta or make_meta())
        info.update(stamp(KIND, FORMAT_VERSION))
        info.update(labels=self.labels, lf_names=self.lf_names, cardinality=self.cardinality, lf_errors=self.errors)
        write_parquet(path, table, meta=info)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> LabelMatrix:
        import pyarrow.parquet as pq

        from ..io_meta import read_meta

        meta = read_meta(path) or {}
        check_format(meta, kind=KIND, version=FORMAT_VERSION, path=path)
        lm = cls.from_table(pq.read_table(path), labels=meta.get("labels"), cardinality=meta.get("cardinality"),
                            lf_names=meta.get("lf_names"))
        lm.errors.update(meta.get("lf_errors") or {})
        return lm

    def __repr__(self) -> str:
        return (f"LabelMatrix(n={len(self)}, lfs={len(self.lf_names)}, k={self.cardinality}, "
                f"coverage={self.covered().mean():.3f})")

