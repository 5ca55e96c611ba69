"""The label space: read a label file (one label a line), clean it, count what was dropped; label priors.

>>> space = LabelSpace.from_list(["python", "python", " ", "java"])
>>> space.labels, space.duplicates, space.empty
(['python', 'java'], 1, 1)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io_records import read_json

__all__ = ["LabelSpace", "load_labels", "load_priors"]


@dataclass
class LabelSpace:
    """Unique, non-empty labels in file order (first occurrence wins), and what cleaning removed."""

    labels: list[str]
    duplicates: int = 0  # lines dropped because the same label (after trimming spaces) came earlier
    empty: int = 0  # blank lines dropped
    source: str | None = None
    _pos: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._pos = {lab: i for i, lab in enumerate(self.labels)}

    @classmethod
    def from_list(cls, raw: list[str], *, source: str | None = None) -> "LabelSpace":
        labels: list[str] = []
        seen: set[str] = set()
        dup = empty = 0
        for lab in raw:
            lab = " ".join(str(lab).split())  # trim and collapse inner whitespace
            if not lab:
                empty += 1
            elif lab in seen:
                dup += 1
            else:
                seen.add(lab)
                labels.append(lab)
        if not labels:
            raise InputError("the label file holds no labels", path=source,
                             hint="write one label per line")
        return cls(labels, dup, empty, source)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self._pos

    def index_of(self, label: str) -> int | None:
        """Position of a label (whitespace-normalised), or None when it is not in the space."""
        return self._pos.get(" ".join(str(label).split()))

    @property
    def fingerprint(self) -> str:
        """Hash of the cleaned label list: the label-index cache key."""
        h = hashlib.sha256()
        for lab in self.labels:
            h.update(lab.encode("utf-8"))
            h.update(b"\n")
        return h.hexdigest()[:20]

    def summary(self) -> str:
        extra = [f"{n:,} {what} dropped" for n, what in ((self.duplicates, "duplicates"), (self.empty, "empty lines"))
                 if n]
        return f"{len(self):,} labels" + (f" ({', '.join(extra)})" if extra else "")


def load_labels(path: str | Path) -> LabelSpace:
    """Read a label file: plain text one label a line (``.txt``), or a JSON list of strings (``.json``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError("label file not found", path=path, hint="pass --labels FILE with one label per line")
    if path.suffix.lower() == ".json":
        raw = read_json(path, what="label file")
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise InputError("a JSON label file must be a list of strings", path=path)
    else:
        raw = path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    return LabelSpace.from_list(raw, source=str(path))


def load_priors(path: str | Path, space: LabelSpace) -> np.ndarray:
    """Label priors (e.g. label frequencies) from a JSON object ``{label: weight}``, as an (n,) float array
    aligned with ``space``. Labels missing from the file get the smallest weight found; weights are
    normalised to sum to 1."""
    path = Path(path).expanduser()
    obj = read_json(path, what="prior file")
    if not isinstance(obj, dict):
        raise InputError("a prior file must be a JSON object {label: weight}", path=path)
    p = np.full(len(space), np.nan, dtype=np.float64)
    for lab, w in obj.items():
        i = space.index_of(lab)
        if i is not None and isinstance(w, (int, float)) and w > 0:
            p[i] = np.nan_to_num(p[i]) + float(w)
    found = np.isfinite(p)
    if not found.any():
        raise InputError("no label in the prior file is in the label space", path=path)
    p[~found] = p[found].min()
    return p / p.sum()
