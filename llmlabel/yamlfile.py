"""Reading the YAML files people edit (taxonomy.yaml, lfs.yaml, pipeline files) with one-line errors.

:func:`read_yaml` gives the parsed data plus the node tree (for line numbers); :func:`config_error` turns
the first pydantic validation error into a :class:`~llmlabel.errors.ConfigError` naming the file, the YAML
line and the field path (``labels[3].name``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError

__all__ = ["FieldError", "config_error", "read_yaml"]


class FieldError(ValueError):
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


_TYPE_TAGS = {"int", "float", "str", "bool", "none", "list", "dict"}


def _field_loc(loc) -> list:
    """A pydantic error location without the type tags a union adds (``constrained-float``, ``literal['auto']``)."""
    return [p for p in loc if not (isinstance(p, str) and ("[" in p or "-" in p or p in _TYPE_TAGS))]


def config_error(e: ValidationError, *, path: str | Path | None, root: Any = None,
                 hint: str | None = None, loc: list | None = None) -> ConfigError:
    """The first pydantic error as one ConfigError naming the file, the YAML line and the field path
    (``loc``: that error's location as the file spells it, where the caller knows better than pydantic)."""
    errs = e.errors()
    err = errs[0]
    # one field that may take several types (a number or 'auto') fails once per type: one problem, said once
    same = [x for x in errs if _field_loc(x.get("loc", ())) == _field_loc(err.get("loc", ()))]
    loc = _field_loc(err.get("loc", ()) if loc is None else loc)
    msg = err.get("msg", "invalid") + "".join(
        " or " + x.get("msg", "").replace("Input should be ", "be ", 1) for x in same[1:])
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, FieldError):
        loc = [int(p) if p.isdigit() else p for p in ctx_err.loc.split(".")]
        msg = ctx_err.msg
    loc = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]  # validator wrappers
    msg = msg.removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "required field is missing"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown field (a typo?)"
    others = len({tuple(_field_loc(x.get("loc", ()))) for x in errs}) - 1
    more = f" (and {others} more problems)" if others else ""
    return ConfigError(f"{msg}{more}", path=path, line=_node_line(root, loc) if root is not None else None,
                       field=_loc_str(loc) or None, hint=hint)
