"""``lfs.yaml``: the labeling functions of a run, validated with pydantic.

.. code-block:: yaml

    defaults: {threshold: 0.0}            # optional, applies to prompted and embedding LFs
    lfs:
      - {name: refund_kw, kind: keyword, patterns: {refund: [refund, money back]}}   # label id or name
      - {name: iban_re, kind: regex, patterns: {transfer: ['\\bIBAN\\b']}}
      - {kind: keyphrases}                 # one LF per taxonomy label with keyphrases (kw:<id>)
      - {name: emb, kind: embedding, embedder: minilm, threshold: 0.35}   # or threshold: auto (needs gold)
      - {name: knn, kind: knn, k: 10, threshold: auto, target_precision: 0.6}   # nearest gold examples
      - {name: lr, kind: logreg}          # logistic regression on the gold embeddings (cross-fitted)
      - {name: sf, kind: setfit}          # LR over the run's encoder tuned on the gold (cross-fitted)
      - {name: knn_t, kind: knn, embedder: tuned}   # any embedding LF can read the tuned encoder
      - {name: zs, kind: prompted, template: lf_zero_shot, model: "hf:/models/qwen", threshold: 0.3,
         none_choice: none of these, prior_correction: false}
      - {name: fs, kind: prompted, few_shot: 2}   # no model: one LF per --model given on the command line
      - {name: mine, kind: python, function: "mypkg.lfs:is_refund"}

Each ``kind`` is one class in :mod:`llmlabel.lf.kinds` (its options, defaults and ``build()``); the docs'
lfs.yaml reference is generated from them. ``knn``, ``logreg`` and ``setfit`` need a gold set (``--gold`` or
``gold:``); gold items get out-of-fold votes.
``threshold: auto`` (embedding with gold, knn, logreg, setfit) chooses the abstain cut on the gold out-of-fold: the
lowest score at which the votes there are still right at ``target_precision`` (cross-fitted too).

A taxonomy with ``multi_label: true`` reads the same kinds per label, plus ``prompted_list`` and per-label
``thresholds`` (see :mod:`llmlabel.lf.multispec`); ``classifier`` and ``prompted_list`` are multi-label only,
``logreg``, ``setfit`` and ``python`` single-label only.

>>> spec = LFSpecFile.model_validate({"lfs": [{"name": "kw", "kind": "keyword", "patterns": {"a": ["x"]}}]})
>>> spec.lfs[0].kind
'keyword'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import ConfigError
from .kinds import (AUTO_HELP, BuildContext, ClassifierSpec, EmbeddingSpec, KeyphrasesSpec, KeywordSpec, KnnSpec,
                    LFKind, LogRegSpec, RegexSpec, SetFitSpec, short_model_name)
from .kinds_llm import PromptedListSpec, PromptedSpec, PythonSpec

__all__ = ["KINDS", "LFSpec", "LFSpecFile", "build_lfs", "load_lf_spec", "lf_spec_error", "uses_tuned"]

#: Every kind, in the order the reference lists them.
KINDS: tuple[type[LFKind], ...] = (KeywordSpec, RegexSpec, KeyphrasesSpec, EmbeddingSpec, KnnSpec, LogRegSpec,
                                   SetFitSpec, ClassifierSpec, PromptedSpec, PromptedListSpec, PythonSpec)
BY_KIND: dict[str, type[LFKind]] = {c.model_fields["kind"].annotation.__args__[0]: c for c in KINDS}
#: One lfs.yaml entry: the class its ``kind`` names.
LFSpec = Annotated[Union[KINDS], Field(discriminator="kind")]  # type: ignore[valid-type]

_short = short_model_name  # older name


def uses_tuned(spec: "LFSpecFile") -> bool:
    """Whether an LF reads the run's tuned encoder (``embedder: tuned``, or ``kind: setfit``)."""
    return any(s.kind == "setfit" or getattr(s, "embedder", None) == "tuned" for s in spec.lfs)


class LFSpecFile(BaseModel):
    """An lfs.yaml file: the LFs, and the gold their gold-based kinds learn from."""

    model_config = ConfigDict(extra="forbid")
    defaults: dict[str, Any] = Field(default_factory=dict, description="Options given to every prompted and "
                                                                       "embedding LF that has them (its own win).")
    lfs: list[LFSpec] = Field(min_length=1, description="The labeling functions, one entry per kind (see below).")
    gold: Optional[str] = Field(None, description="Gold JSONL/CSV for the gold-based kinds (relative to the "
                                                  "lfs.yaml); `--gold` on the command line wins.")
    gold_folds: int = Field(5, ge=2, le=100, description="Cross-fitting folds on the gold items.")
    _source: Any = PrivateAttr(default=None)  # (path, YAML node tree) when read from a file: errors name the line

    def where(self, index: int, *loc: str) -> dict[str, Any]:
        """``path``/``line`` of LF ``index`` (and a key inside it) in the file it was read from."""
        if self._source is None:
            return {}
        from ..yamlfile import _node_line

        path, root = self._source
        return {"path": path, "line": _node_line(root, ["lfs", index, *loc])}

    def check_form(self, multi_label: bool) -> None:
        """Refuse, naming the line, an entry that cannot run on a single- or multi-label taxonomy."""
        for j, s in enumerate(self.lfs):
            try:
                s.check_form(multi_label)
            except ConfigError as e:
                raise ConfigError(e.message, hint=e.hint, **self.where(j, e.field or "kind")) from None


def _with_defaults(data: Any) -> Any:
    """``defaults:`` merged into every prompted and embedding LF that has those options (its own win)."""
    defaults = data.get("defaults") or {}
    if not (isinstance(defaults, dict) and isinstance(data.get("lfs"), list)):
        return data
    out = []
    for x in data["lfs"]:
        cls = BY_KIND.get(x.get("kind")) if isinstance(x, dict) else None
        if cls is not None and x.get("kind") in ("prompted", "embedding"):
            x = {**{k: v for k, v in defaults.items() if k in cls.model_fields}, **x}
        out.append(x)
    return dict(data, lfs=out)


def lf_spec_error(e: ValidationError, *, path, root) -> ConfigError:
    """The first validation error of an lfs.yaml as one line naming the file, line and field. The kind's tag
    pydantic puts in the location is dropped; an unknown kind or option says what the kind accepts."""
    from ..yamlfile import config_error

    errs = e.errors()
    err = errs[0]
    loc = list(err.get("loc", ()))
    if len(loc) >= 3 and err.get("type") == "missing":
        # an unknown option beside a missing one is usually the same mistake (keywords: for patterns:): name it
        extra = next((x for x in errs if x.get("type") == "extra_forbidden" and list(x["loc"][:3]) == loc[:3]), None)
        if extra is not None:
            err, loc = extra, list(extra["loc"])
    if len(loc) >= 2 and loc[0] == "lfs" and isinstance(loc[1], int):
        i = loc[1]
        entry = ((root_value(root, ["lfs", i]) or {}) if root is not None else {})
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            given = entry.get("kind") if isinstance(entry, dict) else None
            msg = ("required field is missing" if given is None else
                   f"unknown kind {given!r}; kinds: {', '.join(BY_KIND)}")
            return _at(path, root, ["lfs", i, "kind"], msg)
        if len(loc) >= 3 and loc[2] in BY_KIND:
            kind, rest = loc[2], loc[3:]
            if err.get("type") == "extra_forbidden" and rest:
                keys = [str(x["loc"][3]) for x in e.errors() if x.get("type") == "extra_forbidden"
                        and list(x["loc"][:3]) == loc[:3] and len(x["loc"]) > 3]
                return _at(path, root, ["lfs", i, rest[0]], _unknown_options(kind, keys, entry))
            loc = loc[:2] + rest
    return config_error(e, path=path, root=root, loc=loc)


def root_value(root: Any, loc: list) -> Any:
    """The plain value of the YAML node at ``loc`` (for error messages)."""
    import yaml

    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
        if node is None:
            return None
    if isinstance(node, yaml.MappingNode):
        return {getattr(k, "value", None): getattr(v, "value", None) for k, v in node.value}
    return getattr(node, "value", None)


def _unknown_options(kind: str, keys: list[str], entry: Any) -> str:
    def shown(key: str) -> str:
        value = entry.get(key) if isinstance(entry, dict) else None
        return f"{key}: {value}" if isinstance(value, str) and len(value) < 40 else key

    if keys == ["threshold"] and isinstance(entry, dict) and entry.get("threshold") == "auto":
        return f"{AUTO_HELP}; a {kind} LF has no threshold"
    import difflib

    owners = sorted({k for k, c in BY_KIND.items() for key in keys if key in c.model_fields})
    opts = [f for f in BY_KIND[kind].model_fields if f != "kind"]
    close = difflib.get_close_matches(keys[0], opts, n=1) if not owners else []
    article = "an" if kind[0] in "aeiou" else "a"
    return (f"{', '.join(map(shown, keys))} {'is not an option' if len(keys) == 1 else 'are not options'} of "
            f"{article} {kind} LF" + (f" (options of {', '.join(owners)} LFs)" if owners else "")
            + (f" (did you mean {close[0]}?)" if close else "") + f"; its options: {', '.join(opts)}")


def _at(path, root, loc: list, msg: str) -> ConfigError:
    from ..yamlfile import _loc_str, _node_line

    return ConfigError(msg, path=path, line=_node_line(root, loc) if root is not None else None, field=_loc_str(loc))


def load_lf_spec(path: str | Path) -> LFSpecFile:
    """Read and validate ``lfs.yaml``; errors name the file, line and field."""
    from ..yamlfile import read_yaml

    root, data = read_yaml(path, what="LF spec file", hint="write an lfs.yaml (see llmlabel.lf.spec)")
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with an 'lfs' list at the top level", path=path, line=1, field="lfs")
    try:
        spec = LFSpecFile.model_validate(_with_defaults(data))
    except ValidationError as e:
        raise lf_spec_error(e, path=path, root=root) from None
    spec._source = (str(path), root)
    return spec


def build_lfs(spec: LFSpecFile, taxonomy, *, models: list[str] | None = None,
              engines: Callable[[str], Any] | None = None, gold=None, embedder=None,
              multi_label: bool = False, tuned=None) -> list:
    """The LF objects a spec describes, over the taxonomy's leaves (vote j = class j); a bad entry's error
    names lfs.yaml and its line.

    A prompted LF without ``model``/``models`` becomes one LF per entry of ``models`` (the ``--model``
    options), named ``<name>@<model>`` when there are several. ``engines`` turns a model spec into the engine
    the LF runs on (:func:`llmlabel.llm.engine_factory`, which carries the run's cache options; default:
    one with the default cache). ``gold``: a :class:`~llmlabel.lf.gold.GoldSet` (single-label), or a
    :class:`~llmlabel.lf.gold.MultiGoldSet` or the gold file (``multi_label``); ``embedder`` (an embedder object) replaces the spec's embedder names for
    embedding-based LFs, so a caller can share one cached embedder. ``multi_label``: the multi-label form of
    every kind (:mod:`llmlabel.lf.multispec`). ``tuned``: the run's tuned encoder (a
    :class:`llmlabel.tuned.TunedEncoder`, or a no-argument function that fits or loads it), read by
    ``embedder: tuned`` and ``kind: setfit`` LFs.
    """
    ctx = BuildContext(taxonomy, multi_label=multi_label, models=list(models or []), engines=engines, gold=gold,
                       embedder=embedder, tuned=tuned)
    out: list = []
    for j, s in enumerate(spec.lfs):
        try:
            out.extend(s.build(ctx))
        except ConfigError as e:
            if e.path is None:
                f = e.field or ""
                loc = ["patterns", f.split(".", 1)[1]] if f.startswith("patterns.") else [f] if f else []
                w = spec.where(j, *loc)
                e.path, e.line = w.get("path"), w.get("line")
            raise
    names = [lf.name for lf in out]
    dup = next((x for x in names if names.count(x) > 1), None)
    if dup:
        raise ConfigError(f"LF name '{dup}' is used twice; LF names must be unique")
    return out
