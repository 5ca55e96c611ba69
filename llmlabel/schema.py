"""Pydantic models for the files people edit by hand: the taxonomy (labels with ids, names, descriptions).

>>> tax = load_taxonomy("taxonomy.yaml")          # doctest: +SKIP
>>> [lab.id for lab in tax.labels][:3]            # doctest: +SKIP
['card_arrival', 'lost_card', 'exchange_rate']

Loading validates everything and raises :class:`~llmlabel.errors.ConfigError` naming the file, the line
and the field (``labels[3].name``) of the first problem, e.g. a duplicate id or a missing name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = ["Example", "LabelDef", "Taxonomy", "load_taxonomy", "save_taxonomy", "OTHER", "slugify"]

#: The id given to items that fit no label. It cannot be used as a label id.
OTHER = "other"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


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
        v = " ".join(v.split())
        if not v:
            raise ValueError("name is empty")
        return v


class Taxonomy(BaseModel):
    """A set of labels plus what they are for and how they were made."""

    model_config = ConfigDict(extra="forbid")
    instruction: str = ""
    labels: list[LabelDef] = Field(min_length=1)
    made_with: dict[str, Any] = Field(default_factory=dict)  # engine, embedder, seed, sizes, version

    @model_validator(mode="after")
    def _check_ids(self) -> "Taxonomy":
        seen: dict[str, int] = {}
        for i, lab in enumerate(self.labels):
            if lab.id in seen:
                raise _FieldError(f"labels.{i}.id", f"duplicate label id {lab.id!r} (also labels[{seen[lab.id]}])")
            seen[lab.id] = i
        for i, lab in enumerate(self.labels):
            if lab.parent is not None:
                if lab.parent not in seen:
                    raise _FieldError(f"labels.{i}.parent", f"parent {lab.parent!r} is not a label id")
                if lab.parent == lab.id:
                    raise _FieldError(f"labels.{i}.parent", "a label cannot be its own parent")
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
        """Labels that are nobody's parent (what items are assigned to)."""
        parents = {lab.parent for lab in self.labels if lab.parent}
        return [lab for lab in self.labels if lab.id not in parents]


class _FieldError(ValueError):
    """Raised inside validators to point at a precise path (pydantic would only name the model)."""

    def __init__(self, loc: str, msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def _loc_str(loc: tuple | list) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _node_line(root: Any, loc: list) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one that exists)."""
    import yaml

    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if nxt is None:
                return line
            line = next(k for k, v in node.value if v is nxt).start_mark.line + 1
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def read_yaml(path: str | Path, *, what: str, hint: str | None = None) -> tuple[Any, Any]:
    """(node tree for line numbers, parsed data) of a YAML file a person edits; one-line errors with the line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found", path=path, hint=hint)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        return yaml.compose(text), yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        what_went_wrong = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"not valid YAML: {what_went_wrong}", path=path, line=mark.line + 1 if mark else None,
                          hint="fix the indentation or quoting on that line") from None


def config_error(e: ValidationError, *, path: str | Path | None, root: Any = None,
                 hint: str | None = None) -> ConfigError:
    """The first pydantic error as one ConfigError naming the file, the YAML line and the field path."""
    errs = e.errors()
    err = errs[0]
    loc = list(err.get("loc", ()))
    msg = err.get("msg", "invalid")
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _FieldError):
        loc = [int(p) if p.isdigit() else p for p in ctx_err.loc.split(".")]
        msg = ctx_err.msg
    loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]  # validator wrappers
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "required field is missing"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown field (a typo?)"
    more = f" (and {len(errs) - 1} more problems)" if len(errs) > 1 else ""
    return ConfigError(f"{msg}{more}", path=path, line=_node_line(root, loc) if root is not None else None,
                       field=_loc_str(loc) or None, hint=hint)


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read and validate a taxonomy YAML (or JSON) file; errors name the file, line and field."""
    root, data = read_yaml(path, what="taxonomy file", hint="create one with `llmlabel taxonomy CORPUS -o FILE`")
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with a 'labels' list at the top level", path=path, line=1,
                          field="labels", hint="see the file `llmlabel taxonomy` writes for the layout")
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

    from .io_write import atomic_write

    data = tax.model_dump(mode="json", exclude_none=True)
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
