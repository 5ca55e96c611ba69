"""``taxonomy.yaml``: the labels (ids, names, descriptions, examples), what ``llmlabel taxonomy`` writes and
every later stage reads. In a two-level taxonomy (``--levels 2``) the **leaves are the classes** items get;
parent labels only group them (:meth:`Taxonomy.leaves`, :meth:`Taxonomy.classes`, :meth:`Taxonomy.parents`).

>>> tax = load_taxonomy("taxonomy.yaml")          # doctest: +SKIP
>>> [lab.id for lab in tax.labels][:3]            # doctest: +SKIP
['card_arrival', 'lost_card', 'exchange_rate']

Loading validates everything and raises :class:`~llmlabel.errors.ConfigError` naming the file, the line
and the field (``labels[3].name``) of the first problem, e.g. a duplicate id or a missing name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ..yamlfile import FieldError, config_error, read_yaml

__all__ = ["Assignments", "Example", "FORMAT_VERSION", "LabelDef", "Taxonomy", "assignments_path", "load_taxonomy",
           "read_assignments", "save_taxonomy", "OTHER", "normalize_name", "slugify", "validate_taxonomy",
           "write_assignments"]

#: Files without ``format_version`` (written before it existed) have this layout.
FORMAT_VERSION = 1

#: The id given to items that fit no label. It cannot be used as a label id.
OTHER = "other"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def normalize_name(name: str) -> str:
    """A label name as every file stores and compares it: spaces collapsed, none at either end.

    The one place names are normalised: the taxonomy, review import (``--add-labels``) and the gold reader
    all call it, so a label a person typed with a trailing space is the label the taxonomy has."""
    return " ".join(str(name).split())


def slugify(text: str, max_len: int = 40) -> str:
    """A readable id from a name: ``"Card arrival / delivery"`` -> ``card_arrival_delivery``."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", text.lower()).strip("_")
    s = s[:max_len].rstrip("_")
    return s or "label"


class Example(BaseModel):
    """One item that shows what a label means: its corpus id and a (short) snippet of its text."""

    model_config = ConfigDict(extra="forbid")
    id: str
    text: str

    @field_validator("id", mode="before")
    @classmethod
    def _id_str(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class LabelDef(BaseModel):
    """One label. ``id`` is stable across edits and reruns; everything else a person may rewrite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    id: str
    name: str = Field(min_length=1)
    description: str = ""
    examples: list[Example] = Field(default_factory=list)
    keyphrases: list[str] = Field(default_factory=list)
    share: Optional[float] = Field(default=None, ge=0.0, le=1.0)  # estimated share of the corpus
    parent: Optional[str] = None  # id of the parent label (two-level taxonomies)
    proposed: bool = False  # suggested by --refine; a person accepts it by setting this to false

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"id {v!r} must start with a letter or digit and use only letters, digits, _ . -")
        if v == OTHER:
            raise ValueError(f"id {OTHER!r} is reserved for items that fit no label")
        return v

    @field_validator("name")
    @classmethod
    def _strip_name(cls, v: str) -> str:
        v = normalize_name(v)
        if not v:
            raise ValueError("name is empty")
        return v


class Taxonomy(BaseModel):
    """A set of labels plus what they are for and how they were made."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = FORMAT_VERSION
    instruction: str = ""
    multi_label: bool = False  # items may carry several leaf labels (read by later stages that support it)
    labels: list[LabelDef] = Field(min_length=1)
    made_with: dict[str, Any] = Field(default_factory=dict)  # engine, embedder, seed, sizes, version

    @field_validator("format_version")
    @classmethod
    def _check_version(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"format_version {v}: this llmlabel reads taxonomy format {FORMAT_VERSION}")
        return v

    @model_validator(mode="after")
    def _check_ids(self) -> "Taxonomy":
        seen: dict[str, int] = {}
        for i, lab in enumerate(self.labels):
            if lab.id in seen:
                raise FieldError(f"labels.{i}.id", f"duplicate label id {lab.id!r} (also labels[{seen[lab.id]}])")
            seen[lab.id] = i
        leaf_ids = {lab.id for lab in self.leaves()}
        names: dict[str, int] = {}
        for i, lab in enumerate(self.labels):  # the classes: votes, gold and labeled files name them
            if lab.id in leaf_ids:
                if lab.name in names:
                    raise FieldError(f"labels.{i}.name", f"duplicate label name {lab.name!r} (also labels"
                                     f"[{names[lab.name]}]); the classes' names must be unique")
                names[lab.name] = i
        for i, lab in enumerate(self.labels):
            if lab.parent is not None:
                if lab.parent not in seen:
                    raise FieldError(f"labels.{i}.parent", f"parent {lab.parent!r} is not a label id")
                if lab.parent == lab.id:
                    raise FieldError(f"labels.{i}.parent", "a label cannot be its own parent")
        return self

    # ---- helpers --------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return [lab.id for lab in self.labels]

    def get(self, label_id: str) -> LabelDef:
        for lab in self.labels:
            if lab.id == label_id:
                return lab
        raise KeyError(label_id)

    def leaves(self) -> list[LabelDef]:
        """Labels that are nobody's parent: the classes items are assigned to (all labels when flat)."""
        parents = {lab.parent for lab in self.labels if lab.parent}
        return [lab for lab in self.labels if lab.id not in parents]

    def parents(self) -> list[LabelDef]:
        """Parent groups of a two-level taxonomy (never classes)."""
        parents = {lab.parent for lab in self.labels if lab.parent}
        return [lab for lab in self.labels if lab.id in parents]

    def classes(self) -> list[str]:
        """The class names the label stage votes over, in file order: the leaves' names."""
        return [lab.name for lab in self.leaves()]

    def label_texts(self) -> list[str]:
        """One text per class, in :meth:`classes` order: ``name: description``, or the name when undescribed (what
        label-name priors embed; the votes record them for later stages)."""
        from ..labelsets import label_texts

        leaves = self.leaves()
        return label_texts([lab.name for lab in leaves], [lab.description or "" for lab in leaves])

    def classes_for_votes(self, path: str | Path | None = None) -> list[str]:
        """:meth:`classes`, refusing fewer than two for a single-label taxonomy: votes, label models and
        students all choose between classes (one class is one line naming the file, not a library error)."""
        classes = self.classes()
        if len(classes) < 2 and not self.multi_label:
            raise ConfigError(f"the taxonomy has {len(classes)} class ({', '.join(classes) or 'none'}); labeling "
                              "needs at least two", path=path, field="labels",
                              hint="add the other label(s), or mark it multi_label: true for a yes/no label")
        return classes

    def class_taxonomy(self) -> "Taxonomy":
        """The leaves as a flat taxonomy (what LFs are built over); ``self`` when it is flat already."""
        if not any(lab.parent for lab in self.labels):
            return self
        leaves = [lab.model_copy(update={"parent": None}) for lab in self.leaves()]
        return self.model_copy(update={"labels": leaves})


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and validate a taxonomy YAML (or JSON) file; errors name the file, line and field."""
    from ._format import check_format

    root, data = read_yaml(path, what="taxonomy file", hint="create one with `llmlabel taxonomy CORPUS -o FILE`")
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with a 'labels' list at the top level", path=path, line=1,
                          field="labels", hint="see the file `llmlabel taxonomy` writes for the layout")
    if "format_version" in data or str(data.get("kind", "")).startswith("llmlabel."):
        check_format(data, kind="taxonomy", version=FORMAT_VERSION, path=path)
    return validate_taxonomy(data, path=path, yaml_root=root)


def validate_taxonomy(data: Any, *, path: str | Path | None = None, yaml_root: Any = None) -> Taxonomy:
    """Validate a dict as a :class:`Taxonomy`, turning pydantic errors into one precise ConfigError."""
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as e:
        raise config_error(e, path=path, root=yaml_root,
                           hint="each label needs a unique id and a name; see the taxonomy docs") from None


def save_taxonomy(tax: Taxonomy, path: str | Path) -> Path:
    """Write a taxonomy as readable YAML (block style, keys in model order), atomically."""
    import yaml

    from ..io_write import atomic_write

    data = tax.model_dump(mode="json", exclude_none=True)
    data["format_version"] = FORMAT_VERSION
    if not data.get("multi_label"):
        data.pop("multi_label", None)
    for lab in data["labels"]:
        if not lab.get("proposed"):
            lab.pop("proposed", None)

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper, s: str):
        style = "|" if "\n" in s else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)

    _Dumper.add_representer(str, _str)
    path = Path(path)
    with atomic_write(path) as f:
        f.write("# llmlabel taxonomy: edit names, descriptions and examples freely; keep ids stable.\n")
        yaml.dump(data, f, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return path


# -- <stem>.assignments.jsonl: each item's label from the taxonomy run ----------------------------------------------
# One row per item in corpus order, ``{"id", "label", "score"}`` (``label`` a leaf id or ``other``), with the run's
# metadata in ``<file>.meta.json``; written by ``taxonomy`` (and its Ray driver, row by row), read by users and tests.


@dataclass(frozen=True)
class Assignments:
    """The items of a taxonomy run with their label ids and assignment scores, in file order."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def assignments_path(taxonomy: str | Path) -> Path:
    """``x.yaml`` -> ``x.assignments.jsonl``: named after the taxonomy so two runs in one folder never collide."""
    stem = Path(taxonomy).with_suffix("")
    return stem.with_name(stem.name + ".assignments.jsonl")


def write_assignments(path: str | Path, rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any] | None) -> int:
    """Stream the rows to JSONL atomically (metadata beside it); returns the row count."""
    from ..io_write import write_jsonl

    return write_jsonl(path, rows, meta=meta)


def read_assignments(path: str | Path) -> Assignments:
    """The validated file: each line an object with a unique ``id``, a ``label`` id and a numeric ``score``."""
    from ..errors import InputError
    from ..ids import UniqueIds, canonical_id
    from ..io_meta import read_meta
    from ..io_records import read_records
    from ._format import check_format

    path = Path(path)
    if not path.is_file():
        raise InputError("assignments file not found", path=path)
    meta = read_meta(path) or {}
    check_format(meta, kind="assignments", version=1, path=path)
    ids, labels, scores, seen = [], [], [], UniqueIds(path, where="line")
    for i, row in read_records(path, what="assignments file"):
        rid = canonical_id(row.get("id"))
        if rid is None:
            raise InputError("assignment row has no 'id'", path=path, line=i, field="id")
        if not isinstance(row.get("label"), str) or not row["label"]:
            raise InputError("assignment row has no 'label' id", path=path, line=i, field="label")
        s = row.get("score")
        if not isinstance(s, (int, float)) or isinstance(s, bool):
            raise InputError(f"assignment score is not a number: {s!r}", path=path, line=i, field="score")
        seen.add(rid, i)
        ids.append(rid)
        labels.append(row["label"])
        scores.append(float(s))
    return Assignments(tuple(ids), tuple(labels), tuple(scores), meta)
