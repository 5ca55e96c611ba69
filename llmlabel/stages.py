"""The stages ``llmlabel run`` chains, each one library function (the one its CLI command calls too).

A stage's options in a pipeline file are that function's keyword parameters, validated against a pydantic
model built from its signature, so the file, the command and the function cannot drift apart: a new
parameter is a new option everywhere, and a typo is one line naming the stage, the option and the valid
ones. The runner passes the parameters listed in ``wired`` itself (the pipeline's corpus and the files of
earlier stages in the work folder); ``progress`` defaults to on, and ``quiet: true`` (the command-line
spelling) turns it off.

>>> sorted(STAGES)
['aggregate', 'distill', 'label', 'predict', 'push', 'taxonomy', 'xmc']
>>> options_model("aggregate").model_validate({"method": "mv"}).method
'mv'
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import ConfigError

CORPUS = "{corpus}"
#: Parameters the runner owns: never options in a pipeline file.
RUNNER_PARAMS = frozenset({"command", "log", "raw_dir", "make_labeler", "row_source"})


def _resolve(ref: str) -> Any:
    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


@dataclass(frozen=True)
class StageDef:
    """One stage: ``function`` (``module:name``) and the parameters the runner wires for it."""

    function: str
    wired: dict[str, str]  # parameter -> CORPUS or a path in the work folder
    outputs: tuple[str, ...] = ()
    runner: dict[str, Any] = field(default_factory=lambda: {"progress": True})  # runner defaults
    # Objects the runner passes (parameter -> "module:name"): code from another stage package that the
    # stage function takes as an argument because it may not import it (layers).
    provides: dict[str, str] = field(default_factory=dict)

    @property
    def reads(self) -> list[str]:
        """Wired inputs (the corpus and earlier stages' outputs): a change to one of them reruns the stage."""
        return [v for v in self.wired.values() if v not in self.outputs]

    def load(self) -> Callable[..., Any]:
        return _resolve(self.function)

    def runtime_arguments(self, log: Callable[[str], None]) -> dict[str, Any]:
        """What the runner adds to the call: ``log`` where the function reports progress lines, and ``provides``."""
        params = inspect.signature(self.load()).parameters
        out = {p: _resolve(ref) for p, ref in self.provides.items()}
        if "log" in params:
            out["log"] = log
        return out


STAGES: dict[str, StageDef] = {
    # taxonomy, label and predict run through llmlabel.scale.backend: the local function plus `backend: ray`.
    # induce labels from the corpus
    "taxonomy": StageDef("llmlabel.scale.backend:induce_taxonomy",
                         {"corpus": CORPUS, "output": "taxonomy.yaml"}, ("taxonomy.yaml",)),
    # labeling functions -> votes folder
    "label": StageDef("llmlabel.scale.backend:label_corpus",
                      {"data": CORPUS, "taxonomy": "taxonomy.yaml", "output": "votes"}, ("votes",)),
    # label model -> labeled.parquet + review queue
    "aggregate": StageDef("llmlabel.labelmodel.run:aggregate_votes",
                          {"votes": "votes", "output": "labeled.parquet"}, ("labeled.parquet",)),
    # Infer-Retrieve-Rank over a label file
    "xmc": StageDef("llmlabel.xmc.api:run_xmc", {"data": CORPUS, "output": "xmc_preds.jsonl"}, ("xmc_preds.jsonl",)),
    # labeled.parquet -> student model folder
    "distill": StageDef("llmlabel.distill.api:distill", {"data": "labeled.parquet", "output": "model"}, ("model",)),
    # the student's labels for the corpus (a cascade with cascade-llm)
    "predict": StageDef("llmlabel.scale.backend:predict",
                        {"model": "model", "data": CORPUS, "output": "predictions.jsonl"}, ("predictions.jsonl",),
                        provides={"make_labeler": "llmlabel.lf.prompted:prompted_labeler"}),
    # upload the model folder to the Hub
    "push": StageDef("llmlabel.distill.hub:push_model", {"folder": "model"}),
}


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list or any(typing.get_origin(a) is list for a in typing.get_args(tp))


@functools.lru_cache(maxsize=None)
def options_model(kind: str) -> type[BaseModel]:
    """The pydantic model of a stage's options: the function's keyword parameters minus the wired ones."""
    st = STAGES[kind]
    fn = st.load()
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in st.wired or name in RUNNER_PARAMS or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = st.runner.get(name, p.default)
        fields[name] = (hints.get(name, Any), ... if default is p.empty else default)
    return create_model(f"{kind.capitalize()}Options", __config__=ConfigDict(extra="forbid",
                                                                              arbitrary_types_allowed=True),
                        **fields)


def option_names(kind: str) -> list[str]:
    """As a pipeline file spells them (``max-labels``)."""
    return [n.replace("_", "-") for n in options_model(kind).model_fields]


class OptionError(ConfigError, ValueError):
    """A bad option: ``key`` is the option as the file spells it (None: the stage as a whole).

    A ValueError too, so pydantic validators can raise it while a pipeline file is read."""

    def __init__(self, key: str | None, msg: str) -> None:
        super().__init__(msg, field=key, hint="fix this stage's options in the pipeline file")
        self.key, self.msg = key, msg


def validate_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options a file gives a stage, checked and converted: ``{parameter: value}`` of those given.

    Raises :class:`OptionError` naming the option as the file spells it.
    """
    model = options_model(kind)
    fields = model.model_fields
    given: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in options.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name == "quiet" and "quiet" not in fields and "progress" in fields and isinstance(value, bool):
            name, value = "progress", not value  # the command line's --quiet
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1)
            hint = f" (did you mean {close[0].replace('_', '-')}?)" if close else ""
            raise OptionError(key, f"stage {kind}: unknown option {key!r}{hint}; options: "
                                   f"{', '.join(option_names(kind))}")
        if name in given:
            raise OptionError(key, f"stage {kind}: option {name.replace('_', '-')} is given twice")
        if _is_list(fields[name].annotation) and value is not None and not isinstance(value, list):
            value = [value]  # `model: hf:x` for a repeatable option
        given[name], spelled[name] = value, key
    try:
        checked = model.model_validate(given)
    except ValidationError as e:
        err = e.errors()[0]
        loc = err.get("loc") or ()
        name = str(loc[0]) if loc else None
        what = "required option is missing" if err.get("type") == "missing" else err.get("msg", "invalid")
        opt = (name or "").replace("_", "-")
        raise OptionError(spelled.get(name) if name else None,
                          f"stage {kind}: option {opt}: {what}"
                          + (f" (got {given[name]!r})" if name in given else "")) from None
    return {n: getattr(checked, n) for n in given}


def call_arguments(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The runner's defaults (``progress=True``) under the validated options."""
    fields = options_model(kind).model_fields
    out = dict(options)
    for k, v in STAGES[kind].runner.items():
        if k in fields:
            out.setdefault(k, v)
    return out
