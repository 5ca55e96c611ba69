"""The lfs.yaml kinds that run a model or your code: ``prompted``, ``prompted_list`` and ``python`` (see
:mod:`llmlabel.lf.kinds` for the others and for what ``build()`` gets)."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from ..errors import ConfigError
from .kinds import AUTO_HELP, BuildContext, LFKind, Unit, short_model_name


class _Prompted(LFKind):
    template: Optional[str] = Field(None, description="Prompt template: a file in prompts/ or a path (default: "
                                                      "zero-shot, or few-shot when there are examples).")
    model: Optional[str] = Field(None, description="Engine spec. With neither `model` nor `models`: one LF per "
                                                   "--model given on the command line (`<name>@<model>`).")
    models: Optional[list[str]] = Field(None, description="Several engine specs: one LF each.")
    instruction: Optional[str] = Field(None, description="What to decide (default: the taxonomy's instruction).")

    def specs(self, ctx: BuildContext) -> list[str]:
        specs = self.models or ([self.model] if self.model else list(ctx.models or []))
        if not specs:
            raise ConfigError(f"prompted LF '{self.name}' names no model", hint="add model: SPEC or pass --model SPEC")
        return specs

    def named(self, specs: list[str]) -> list[tuple[str, str]]:
        return [(self.name if len(specs) == 1 else f"{self.name}@{short_model_name(m)}", m) for m in specs]


class PromptedSpec(_Prompted):
    """An LLM picks one label with ``choose()`` over the label names, so it cannot answer outside the taxonomy
    (zero-shot, or few-shot from the taxonomy's examples or from the gold nearest each item). Multi-label: a
    yes/no question per label."""

    kind: Literal["prompted"]
    threshold: Optional[Unit] = Field(None, description="Abstain when the chosen label's probability is below "
                                                        "this. Default: 0 (multi-label: 0.5, the least allowed).")
    few_shot: int = Field(0, ge=0, le=20, description="Examples per label from the taxonomy, or per item from the "
                                                      "gold with `few_shot_from: gold`.")
    few_shot_from: Literal["taxonomy", "gold"] = Field("taxonomy", description="Where the examples come from.")
    embedder: str = Field("minilm", description="With `few_shot_from: gold`: the embedder that finds each item's "
                                                "nearest gold examples.")
    none_choice: Optional[str] = Field(None, description="An extra answer meaning none of the labels (an "
                                                         "abstain), e.g. `none of these`.")
    prior_correction: bool = Field(False, description="Re-weight the LF's class distribution so its mean over the "
                                                      "items is uniform (small models favour some label names).")
    example: ClassVar[dict] = {"name": "zs", "kind": "prompted", "model": "hf:Qwen/Qwen2.5-0.5B-Instruct",
                               "prior_correction": True}

    @field_validator("threshold", mode="before")
    @classmethod
    def _no_auto(cls, v: Any) -> Any:
        if v == "auto":
            raise ValueError(AUTO_HELP)
        return v

    @model_validator(mode="after")
    def _gold_shots(self) -> "PromptedSpec":
        if self.few_shot_from == "gold" and not self.few_shot:
            raise ValueError("few_shot_from: gold is for prompted LFs with few_shot > 0")
        return self

    def build_single(self, ctx: BuildContext) -> list:
        from .prompted import PromptedLF
        from .prompted_gold import GoldFewShotLF

        specs, tax = self.specs(ctx), ctx.classes
        common = dict(threshold=self.threshold or 0.0, none_choice=self.none_choice,
                      prior_correction=self.prior_correction, instruction=ctx.instruction(self.instruction))
        if self.few_shot_from == "gold":
            gold = ctx.need_gold(self.name)
            return [GoldFewShotLF(name, ctx.engine(m), tax.labels, gold, shots=self.few_shot,
                                  embedder=ctx.embedder_for(self), template=self.template, **common)
                    for name, m in self.named(specs)]
        shots = []
        if self.few_shot:
            shots = [(e.text, j) for j, lab in enumerate(tax.labels) for e in lab.examples[: self.few_shot]]
            if not shots:
                raise ConfigError(f"prompted LF '{self.name}' asks for few_shot examples but the taxonomy has none")
        return [PromptedLF(name, ctx.engine(m), tax.labels, template=self.template, examples=shots, **common)
                for name, m in self.named(specs)]

    def build_multi(self, ctx: BuildContext) -> list:
        from .prompted import PromptedMultiLabelLF

        return [PromptedMultiLabelLF(name, ctx.engine(m), ctx.leaves, template=self.template,
                                     instruction=ctx.instruction(self.instruction),
                                     threshold=max(self.threshold or 0.5, 0.5))
                for name, m in self.named(self.specs(ctx))]


class PromptedListSpec(_Prompted):
    """Multi-label only: an LLM answers a JSON list of label names (schema-constrained where the engine can)."""

    kind: Literal["prompted_list"]
    forms: ClassVar[tuple[str, ...]] = ("multi",)
    example: ClassVar[dict] = {"name": "ls", "kind": "prompted_list", "model": "hf:Qwen/Qwen2.5-0.5B-Instruct"}

    def build_multi(self, ctx: BuildContext) -> list:
        from .multilabel import PromptedListLF

        return [PromptedListLF(name, ctx.engine(m), ctx.leaves, template=self.template,
                               instruction=ctx.instruction(self.instruction))
                for name, m in self.named(self.specs(ctx))]


class PythonSpec(LFKind):
    """Your own function ``fn(item) -> label name, class index or -1 (abstain)``, or a ``@labeling_function``;
    ``item`` is the corpus row (a dict with its ``text`` and ``id``). An exception on one item is an abstain."""

    kind: Literal["python"]
    function: str = Field(description="`module:function`, importable from where you run llmlabel.")
    forms: ClassVar[tuple[str, ...]] = ("single",)
    example: ClassVar[dict] = {"name": "mine", "kind": "python", "function": "mypkg.lfs:is_refund"}

    @field_validator("function")
    @classmethod
    def _module_function(cls, v: str) -> str:
        if ":" not in v:
            raise ValueError("a python LF needs function: 'module:function'")
        return v

    def build_single(self, ctx: BuildContext) -> list:
        from .core import PythonLF

        mod, _, fn = self.function.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"python LF '{self.name}': cannot import {self.function} ({e})") from None
        return [PythonLF(self.name, obj.fn if isinstance(obj, PythonLF) else obj,
                         [lab.name for lab in ctx.classes.labels])]
