"""Prompted LLM labeling functions: a prompt template x a model = one LF.

The label comes from ``engine.choose`` over the label names, so the vote is always one of the labels
(whatever the text says: free-text LLM labeling returns names outside the label set), and the full class
distribution is kept for the label model. Texts go into prompts through ``quote_text``.

>>> from llmlabel.llm import load_engine
>>> lf = PromptedLF("zs", load_engine("hf:/models/qwen"), ["positive", "negative"], threshold=0.6)  # doctest: +SKIP
>>> votes, proba = lf.apply(["great film", "dull and long"])                           # doctest: +SKIP
>>> votes.dtype, proba.shape                                                          # doctest: +SKIP
(dtype('int16'), (2, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..llm.prompting import fill, load_prompt
from .core import ABSTAIN, LabelingFunction
from .prior import match_prior



def load_template(template: str) -> str:
    """A template by name (``lf_zero_shot`` -> prompts/lf_zero_shot.txt), by file path, or literal text.

    Literal text must contain ``{text}``; anything else is looked up with :func:`~llmlabel.llm.prompting.load_prompt`.
    """
    return template if "{text}" in template else load_prompt(template)


def _check_engine(name: str, engine: Any) -> Any:
    # Engines are built by whoever owns the run's cache options (the label stage's factory, or the caller)
    # and passed in; a spec string here would load a second copy of the model with default cache settings.
    if engine is None or hasattr(engine, "choose"):
        return engine
    if isinstance(engine, str):
        raise ConfigError(f"LF '{name}': pass an engine, not the spec string {engine!r}",
                          hint="engine=llmlabel.llm.load_engine(spec, cache=...), or list the LF in lfs.yaml")
    raise ConfigError(f"LF '{name}': engine must be an LLM with choose(), not {type(engine).__name__}")


def _softmax(logp: np.ndarray) -> np.ndarray:
    logp = np.where(np.isnan(logp), -np.inf, logp)
    top = logp.max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(logp - top)
    s = e.sum(1, keepdims=True)
    # A row with no finite score (an engine that could not answer) becomes uniform, and then abstains
    # through the threshold / tie rules rather than inventing a label.
    return np.where(s > 0, e / np.where(s > 0, s, 1.0), 1.0 / logp.shape[1])


def _label_parts(labels, descriptions, examples):
    """Names, descriptions and (text, label index) examples from strings or taxonomy LabelDefs."""
    names, descs, exs = [], [], []
    for i, lab in enumerate(labels):
        if isinstance(lab, str):
            names.append(lab)
            descs.append("")
        else:  # a LabelDef (duck-typed): name, description, examples
            names.append(str(lab.name))
            descs.append(str(getattr(lab, "description", "") or ""))
            exs.extend((str(e.text), i) for e in (getattr(lab, "examples", None) or []))
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"label name {dup!r} is used twice; prompted LFs choose among names, which must be unique")
    if descriptions is not None:
        if isinstance(descriptions, dict):
            descs = [str(descriptions.get(n, d) or "") for n, d in zip(names, descs)]
        else:
            descs = [str(d or "") for d in descriptions]
            if len(descs) != len(names):
                raise ConfigError(f"{len(descs)} descriptions for {len(names)} labels")
    if examples is not None:
        exs = []
        for ex in examples:
            text, lab = (ex["text"], ex["label"]) if isinstance(ex, dict) else ex
            if isinstance(lab, (int, np.integer)):
                j = int(lab)
            elif lab in names:
                j = names.index(lab)
            else:
                raise ConfigError(f"few-shot example label {lab!r} is not one of the labels")
            exs.append((str(text), j))
    return names, descs, exs


def _snippet(t: str, n: int = 300) -> str:
    t = " ".join(t.split())
    return t if len(t) <= n else t[: n - 1] + "…"


class PromptedLF(LabelingFunction):
    """One prompt template on one model, voting one of ``labels`` per text.

    Parameters
    ----------
    name: LF name (unique in a run).
    engine: an :class:`~llmlabel.llm.LLM` (``None`` builds prompts only: :meth:`prompts`, no :meth:`apply`).
    labels: label names, or taxonomy ``LabelDef`` objects (names, descriptions and examples are used).
    template: a name in ``prompts/`` (``lf_zero_shot``, ``lf_few_shot``), a file path, or literal text with
        ``{text}`` and optionally ``{labels}``, ``{examples}``, ``{instruction}``. Default: few-shot when
        examples exist, zero-shot otherwise.
    descriptions: per-label descriptions (list aligned with labels, or name -> text).
    examples: few-shot examples as ``(text, label name or index)`` pairs or ``{"text", "label"}`` dicts;
        default: the LabelDefs' examples.
    threshold: abstain when the top class probability is below it (0 = never abstain on confidence).
    none_choice: an extra answer such as ``"none of these"``; the LF abstains when it wins.
    prior_correction: re-weight the class probabilities so their mean over the applied batch is uniform
        (:func:`~llmlabel.lf.match_prior`); apply on the whole corpus or on large shards.

    ``apply(texts) -> (votes int16 (n,), proba float32 (n, k))``: ``proba`` is the distribution over the k
    labels (the none answer's mass removed and the rest renormalised); ``votes`` is its argmax or -1.
    """

    kind = "prompted"

    def __init__(self, name: str, engine: Any, labels: Sequence, *, template: str | None = None,
                 descriptions: Sequence[str] | dict | None = None, examples: Sequence | None = None,
                 threshold: float = 0.0, none_choice: str | None = None, prior_correction: bool = False,
                 instruction: str = "", max_examples: int = 8) -> None:
        names, descs, exs = _label_parts(labels, descriptions, examples)
        super().__init__(name, names)
        if len(names) < 2:
            raise ConfigError(f"LF '{name}': a prompted LF needs at least 2 labels")
        if none_choice is not None and none_choice in names:
            raise ConfigError(f"LF '{name}': none_choice {none_choice!r} is also a label name")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ConfigError(f"LF '{name}': threshold must be in [0, 1], got {threshold}")
        self.engine = _check_engine(name, engine)
        self.descriptions = descs
        self.examples = exs[: int(max_examples)]
        self.template = load_template(template or ("lf_few_shot" if self.examples else "lf_zero_shot"))
        if "{text}" not in self.template:
            raise ConfigError(f"LF '{name}': the prompt template has no {{text}} placeholder")
        self.threshold = float(threshold)
        self.none_choice = none_choice
        self.prior_correction = bool(prior_correction)
        self.instruction = instruction

    @property
    def cost(self) -> str:
        return "llm"

    def _engine(self):
        if self.engine is None:
            raise ConfigError(f"LF '{self.name}' has no engine", hint="pass engine=load_engine(spec) to apply it")
        return self.engine

    @property
    def choices(self) -> list[str]:
        return self.labels + ([self.none_choice] if self.none_choice else [])

    def _label_block(self) -> str:
        lines = [f"- {n}" + (f": {d}" if d else "") for n, d in zip(self.labels, self.descriptions)]
        if self.none_choice:
            lines.append(f"- {self.none_choice}: the text fits none of the labels above")
        return "\n".join(lines)

    def _example_block(self) -> str:
        from ..llm.prompting import quote_text

        return "\n\n".join(f"{quote_text(_snippet(t))}\nLabel: {self.labels[j]}" for t, j in self.examples)

    def prompts(self, texts: Sequence[str]) -> list[str]:
        """The prompt for each text (label list and examples are filled once)."""
        from ..llm.prompting import quote_text

        head = fill(self.template, labels=self._label_block(), examples=self._example_block(),
                    instruction=(" " + self.instruction.strip()) if self.instruction.strip() else "")
        return [fill(head, text=quote_text(t)) for t in texts]

    def _apply(self, texts, items):
        from ..llm import usage_log

        with usage_log.stage("label"):
            logp = self._engine().choose(self.prompts(texts), self.choices)
        missing = self._count_no_answers(logp)
        full = _softmax(logp)
        k = len(self.labels)
        lab = full[:, :k]
        mass = lab.sum(1, keepdims=True)
        proba = np.where(mass > 0, lab / np.where(mass > 0, mass, 1.0), 1.0 / k)
        if self.prior_correction and len(texts):
            proba = match_prior(proba)
        votes = proba.argmax(1).astype(np.int16)
        abstain = proba.max(1) < self.threshold
        if self.none_choice:
            abstain |= full[:, k] >= lab.max(1)
        votes[abstain | missing] = ABSTAIN
        return votes, proba.astype(np.float32)

    def _count_no_answers(self, logp: np.ndarray) -> np.ndarray:
        """(n,) True where the engine gave no usable answer (an empty or unparseable reply): those items
        abstain and count as this LF's errors (``_lf_errors.json``), never as a vote for the first label."""
        from ..llm.replies import no_answer

        missing = no_answer(logp)
        if missing.any():
            self.errors += int(missing.sum())
            self.last_error = (f"{int(missing.sum())} empty or unparseable answers from "
                               f"{getattr(self.engine, 'spec', self.engine)}")
        return missing


def prompted_labeler(engine: Any, classes: Sequence[str], template: str = "lf_zero_shot"):
    """``texts -> (n, k)`` class probabilities from a zero-shot prompted LF on ``engine`` (the cascade's LLM)."""
    lf = PromptedLF("cascade", engine, list(classes), template=template)
    return lambda texts: lf.apply(list(texts))[1]


class PromptedMultiLabelLF(PromptedLF):
    """Multi-label: one yes/no question per (text, label); ``apply`` returns (n, k) votes and P(yes).

    Votes are 1 (applies), 0 (does not) or -1 (abstain: neither answer reaches ``threshold``, which is
    at least 0.5). Feed the columns to :class:`~llmlabel.labelmodel.MultiLabel` as k binary LFs.
    The default template puts the text first and the label last, so an item's k prompts share one prefix
    (engines with prefix caching encode the text once).
    """

    kind = "prompted_multilabel"
    multi_label = True

    def __init__(self, name: str, engine: Any, labels: Sequence, *, template: str | None = None,
                 descriptions=None, threshold: float = 0.5, instruction: str = "") -> None:
        super().__init__(name, engine, labels, template=template or "lf_yes_no_text_first",
                         descriptions=descriptions,
                         examples=[], threshold=max(float(threshold), 0.5), instruction=instruction)

    def prompts(self, texts: Sequence[str]) -> list[str]:
        from ..llm.prompting import quote_text

        inst = (" " + self.instruction.strip()) if self.instruction.strip() else ""
        heads = [fill(self.template, label=n, description=d, instruction=inst)
                 for n, d in zip(self.labels, self.descriptions)]
        quoted = [quote_text(t) for t in texts]
        return [fill(h, text=q) for q in quoted for h in heads]  # item-major: row i*k + j

    def apply(self, texts: Sequence[str], items=None):
        from ..llm import usage_log

        texts = list(texts)
        with usage_log.stage("label"):
            logp = self._engine().choose(self.prompts(texts), ["yes", "no"])
        from ..llm.replies import no_answer

        missing = no_answer(logp).reshape(len(texts), len(self.labels))
        if missing.any():  # an item counts once, however many of its questions went unanswered
            self.errors += int(missing.any(1).sum())
            self.last_error = f"empty or unparseable answers from {getattr(self.engine, 'spec', self.engine)}"
        p_yes = _softmax(logp)[:, 0].reshape(len(texts), len(self.labels))
        votes = np.full(p_yes.shape, ABSTAIN, dtype=np.int16)
        votes[p_yes >= self.threshold] = 1
        votes[(1 - p_yes) >= self.threshold] = 0
        if self.threshold == 0.5:  # exact ties vote "no" rather than both
            votes[p_yes == 0.5] = 0
        votes[missing] = ABSTAIN
        return votes, p_yes.astype(np.float32)
