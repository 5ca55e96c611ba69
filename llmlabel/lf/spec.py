"""``lfs.yaml``: the labeling functions of a run, validated with pydantic.

.. code-block:: yaml

    defaults: {threshold: 0.0}            # optional, applies to prompted LFs
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

``knn``, ``logreg`` and ``setfit`` need a gold set (``--gold`` or ``gold:``); gold items get out-of-fold votes.
``threshold: auto`` (embedding with gold, knn, logreg, setfit) chooses the abstain cut on the gold out-of-fold: the
lowest score at which the votes there are still right at ``target_precision`` (cross-fitted too).

A taxonomy with ``multi_label: true`` reads the same kinds per label, plus ``prompted_list`` and per-label
``thresholds`` (see :mod:`llmlabel.lf.multispec`).

>>> spec = LFSpecFile.model_validate({"lfs": [{"name": "kw", "kind": "keyword", "patterns": {"a": ["x"]}}]})
>>> spec.lfs[0].kind
'keyword'
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from ..errors import ConfigError

Kind = Literal["keyword", "regex", "keyphrases", "embedding", "knn", "classifier", "logreg", "setfit", "prompted",
               "prompted_list", "python"]
SINGLE_LABEL_ONLY = {"logreg", "setfit"}  # kinds with no multi-label form
AUTO_KINDS = ("embedding", "knn", "logreg", "setfit")  # kinds whose threshold may be "auto"


_SINGLE_KINDS: set[str] = {"knn"}  # kinds above that also have a single-label form here


class LFSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Kind
    name: Optional[str] = None
    patterns: Optional[dict[str, list[str]]] = None  # keyword / regex
    case_sensitive: bool = False
    embedder: str = "minilm"  # embedding, knn, logreg; "tuned": the run's encoder tuned on the gold (llmlabel.tuned)
    num_iterations: Optional[int] = Field(default=None, ge=1)  # setfit: no longer used (the run's encoder is tuned once)
    k: int = Field(default=10, ge=1, le=1000)  # knn: neighbours that vote
    # A number in [0, 1], or "auto" (embedding with gold, knn, logreg): chosen on the gold out-of-fold.
    threshold: Optional[Union[Annotated[float, Field(ge=0.0, le=1.0)], Literal["auto"]]] = None
    target_precision: float = Field(default=0.6, gt=0.0, le=1.0)  # what threshold: auto aims for on the gold
    margin: float = 0.0
    thresholds: Optional[dict[str, float]] = None  # multi-label embedding: per-label thresholds (id or name)
    low: Optional[float] = None  # multi-label embedding: vote 0 below this cosine
    template: Optional[str] = None  # prompted
    model: Optional[str] = None
    models: Optional[list[str]] = None
    few_shot: int = Field(default=0, ge=0, le=20)  # examples per label from the taxonomy, or per item from gold
    few_shot_from: Literal["taxonomy", "gold"] = "taxonomy"
    none_choice: Optional[str] = None
    prior_correction: bool = False
    instruction: Optional[str] = None
    function: Optional[str] = None  # python: "module:function"

    @model_validator(mode="after")
    def _per_kind(self) -> "LFSpec":
        if self.kind != "keyphrases" and not self.name:
            raise ValueError(f"a {self.kind} LF needs a name")
        if self.kind in ("keyword", "regex") and not self.patterns:
            raise ValueError(f"a {self.kind} LF needs patterns: {{label: [pattern, ...]}}")
        if self.few_shot_from == "gold" and (self.kind != "prompted" or not self.few_shot):
            raise ValueError("few_shot_from: gold is for prompted LFs with few_shot > 0")
        if self.threshold == "auto" and self.kind not in AUTO_KINDS:
            raise ValueError(f"threshold: auto is for {', '.join(AUTO_KINDS)} LFs (chosen on the gold)")
        if self.kind == "python" and (not self.function or ":" not in self.function):
            raise ValueError("a python LF needs function: 'module:function'")
        return self


class LFSpecFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: dict[str, Any] = Field(default_factory=dict)
    lfs: list[LFSpec] = Field(min_length=1)
    gold: Optional[str] = None  # gold JSONL/CSV for knn and gold few-shot LFs (relative to the lfs.yaml)
    gold_folds: int = Field(default=5, ge=2, le=100)  # cross-fitting folds on the gold items
    _source: Any = PrivateAttr(default=None)  # (path, YAML node tree) when read from a file: errors name the line

    def where(self, index: int, *loc: str) -> dict[str, Any]:
        """``path``/``line`` of LF ``index`` (and a key inside it) in the file it was read from."""
        if self._source is None:
            return {}
        from ..yamlfile import _node_line

        path, root = self._source
        return {"path": path, "line": _node_line(root, ["lfs", index, *loc])}


def load_lf_spec(path: str | Path) -> LFSpecFile:
    """Read and validate ``lfs.yaml``; errors name the file, line and field."""
    from ..yamlfile import config_error, read_yaml

    root, data = read_yaml(path, what="LF spec file", hint="write an lfs.yaml (see llmlabel.lf.spec)")
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with an 'lfs' list at the top level", path=path, line=1, field="lfs")
    defaults = data.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(data.get("lfs"), list):
        data = dict(data, lfs=[{**{k: v for k, v in defaults.items() if k in LFSpec.model_fields
                                   and (isinstance(x, dict) and x.get("kind") in ("prompted", "embedding"))},
                                **x} if isinstance(x, dict) else x for x in data["lfs"]])
    try:
        spec = LFSpecFile.model_validate(data)
    except ValidationError as e:
        raise config_error(e, path=path, root=root) from None
    spec._source = (str(path), root)
    return spec


def _label_name(taxonomy, key: str, lf: str) -> str:
    for lab in taxonomy.labels:
        if key in (lab.id, lab.name):
            return lab.name
    raise ConfigError(f"LF '{lf}': label {key!r} is not in the taxonomy (ids or names)", field=f"patterns.{key}",
                      hint="labels: " + ", ".join(lab.id for lab in taxonomy.labels[:8])
                      + (" ..." if len(taxonomy.labels) > 8 else ""))


def _short(spec: str) -> str:
    return spec.rstrip("/").replace("#", "/").split("/")[-1].split(":")[-1] or spec


def uses_tuned(spec: LFSpecFile) -> bool:
    """Whether an LF reads the run's tuned encoder (``embedder: tuned``, or ``kind: setfit``)."""
    return any(s.kind == "setfit" or s.embedder == "tuned" for s in spec.lfs)


def build_lfs(spec: LFSpecFile, taxonomy, *, models: list[str] | None = None,
              engines: Callable[[str], Any] | None = None, gold=None, embedder=None, tuned=None) -> list:
    """The LF objects a spec describes (see :func:`_build_lfs`); a bad entry's error names lfs.yaml and its line."""
    at = [0]
    try:
        return _build_lfs(spec, taxonomy, models=models, engines=engines, gold=gold, embedder=embedder, tuned=tuned,
                          at=at)
    except ConfigError as e:
        if e.path is None:
            loc = ["patterns", e.field.split(".", 1)[1]] if (e.field or "").startswith("patterns.") else []
            w = spec.where(at[0], *loc)
            e.path, e.line = w.get("path"), w.get("line")
        raise


def _build_lfs(spec: LFSpecFile, taxonomy, *, models, engines, gold, embedder, tuned, at: list[int]) -> list:
    """The LF objects a spec describes, over the taxonomy's labels (vote j = ``taxonomy.labels[j]``).

    A prompted LF without ``model``/``models`` becomes one LF per entry of ``models`` (the ``--model``
    options), named ``<name>@<model>`` when there are several. ``engines`` turns a model spec into the engine
    the LF runs on (:func:`llmlabel.llm.engine_factory`, which carries the run's cache options; default:
    one with the default cache). ``gold`` (a :class:`~llmlabel.lf.gold.GoldSet`) feeds ``knn`` LFs and
    prompted LFs with ``few_shot_from: gold``; ``embedder`` (an embedder object) replaces the spec's embedder
    names for embedding-based LFs, so a caller can share one cached embedder. ``tuned``: the run's tuned
    encoder (a :class:`llmlabel.tuned.TunedEncoder`, or a no-argument function that fits or loads it), read by
    ``embedder: tuned`` and ``kind: setfit`` LFs.
    """
    from .core import PythonLF
    from .embedding import EmbeddingLF
    from .keyword import KeywordLF, keyphrase_lfs
    from .knn import KnnLF
    from .prompted import PromptedLF
    from .prompted_gold import GoldFewShotLF
    from .setfit_lf import GoldSetFitLF
    from .supervised import GoldLogRegLF

    def need_gold(s):
        if gold is None:
            raise ConfigError(f"LF '{s.name}' needs a gold set", hint="pass --gold gold.jsonl or add gold: to lfs.yaml")
        return gold

    def need_tuned(s):
        nonlocal tuned
        if tuned is None:
            raise ConfigError(f"LF '{s.name}' reads the run's tuned encoder, which is fitted on a gold set",
                              hint="pass --gold gold.jsonl, or use embedder: minilm")
        if callable(tuned) and not hasattr(tuned, "for_fold"):
            tuned = tuned()
        return tuned

    def emb(s):
        return need_tuned(s) if s.embedder == "tuned" else (embedder or s.embedder)

    taxonomy = taxonomy.class_taxonomy() if hasattr(taxonomy, "class_taxonomy") else taxonomy  # leaves only
    labels = [lab.name for lab in taxonomy.labels]
    out: list = []
    for at[0], s in enumerate(spec.lfs):
        if s.kind in ("keyword", "regex"):
            pats = {_label_name(taxonomy, key, s.name): v for key, v in s.patterns.items()}
            out.append(KeywordLF(s.name, pats, labels=labels, regex=s.kind == "regex",
                                 case_sensitive=s.case_sensitive))
        elif s.kind == "keyphrases":
            out.extend(keyphrase_lfs(taxonomy, prefix=s.name or "kw"))
        elif s.kind == "embedding":
            if s.threshold == "auto":
                need_gold(s)
            out.append(EmbeddingLF(s.name, taxonomy.labels, embedder=emb(s),
                                   threshold=0.3 if s.threshold is None else s.threshold, margin=s.margin,
                                   gold=gold, target_precision=s.target_precision))
        elif s.kind == "prompted":
            specs = s.models or ([s.model] if s.model else list(models or []))
            if not specs:
                raise ConfigError(f"prompted LF '{s.name}' names no model", hint="add model: SPEC or pass --model SPEC")
            if engines is None:
                from ..llm import engine_factory

                engines = engine_factory()
            if s.few_shot_from == "gold":
                for m in specs:
                    out.append(GoldFewShotLF(s.name if len(specs) == 1 else f"{s.name}@{_short(m)}", engines(m),
                                             taxonomy.labels, need_gold(s), shots=s.few_shot,
                                             embedder=emb(s), template=s.template,
                                             threshold=s.threshold or 0.0, none_choice=s.none_choice,
                                             prior_correction=s.prior_correction,
                                             instruction=s.instruction or getattr(taxonomy, "instruction", "") or ""))
                continue
            shots = None
            if s.few_shot:
                shots = [(e.text, j) for j, lab in enumerate(taxonomy.labels) for e in lab.examples[: s.few_shot]]
                if not shots:
                    raise ConfigError(f"prompted LF '{s.name}' asks for few_shot examples but the taxonomy has none")
            for m in specs:
                name = s.name if len(specs) == 1 else f"{s.name}@{_short(m)}"
                if engines is None:
                    from ..llm import engine_factory

                    engines = engine_factory()
                out.append(PromptedLF(name, engines(m), taxonomy.labels, template=s.template, examples=shots or [],
                                      threshold=s.threshold or 0.0, none_choice=s.none_choice,
                                      prior_correction=s.prior_correction,
                                      instruction=s.instruction or getattr(taxonomy, "instruction", "") or ""))
        elif s.kind == "knn":
            out.append(KnnLF(s.name, need_gold(s), embedder=emb(s), k=s.k,
                             threshold=0.5 if s.threshold is None else s.threshold,
                             target_precision=s.target_precision))
        elif s.kind == "logreg":
            out.append(GoldLogRegLF(s.name, need_gold(s), embedder=emb(s),
                                    threshold=0.0 if s.threshold is None else s.threshold,
                                    target_precision=s.target_precision))
        elif s.kind == "setfit":  # logreg over the run's one tuned encoder, with the label anchors
            if s.embedder not in ("minilm", "tuned"):
                raise ConfigError(f"LF '{s.name}': kind setfit reads the run's tuned encoder; its embedder option "
                                  "is not used", field="embedder", hint="drop embedder:, or use kind: logreg")
            out.append(GoldSetFitLF(s.name, need_gold(s), tuned=need_tuned(s), num_iterations=s.num_iterations,
                                    threshold=0.0 if s.threshold is None else s.threshold,
                                    target_precision=s.target_precision))
        elif s.kind in ("knn", "classifier", "prompted_list") and s.kind not in _SINGLE_KINDS:
            raise ConfigError(f"LF '{s.name}': kind {s.kind} needs a multi-label taxonomy here",
                              hint="set multi_label: true in the taxonomy (llmlabel taxonomy --multi-label)")
        else:  # python
            mod, _, fn = s.function.partition(":")
            try:
                obj = getattr(importlib.import_module(mod), fn)
            except (ImportError, AttributeError) as e:
                raise ConfigError(f"python LF '{s.name}': cannot import {s.function} ({e})") from None
            fn_ = obj.fn if isinstance(obj, PythonLF) else obj
            out.append(PythonLF(s.name, fn_, labels))
    names = [lf.name for lf in out]
    dup = next((x for x in names if names.count(x) > 1), None)
    if dup:
        raise ConfigError(f"LF name '{dup}' is used twice; LF names must be unique")
    return out
