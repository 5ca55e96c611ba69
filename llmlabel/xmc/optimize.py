"""Optimise Infer-Retrieve-Rank from a small labeled set: bootstrap few-shot demos with DSPy on RP@k.

Train examples whose gold labels are not in the label space are warned about and counted: the unknown
labels are dropped, and an example left with no label is skipped (it cannot score).

>>> train = make_examples(texts, gold_lists, space)                             # doctest: +SKIP
>>> compiled, report = optimize(program, train.examples, dev=dev.examples)     # doctest: +SKIP
>>> compiled.save_json("program.json")                                           # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dspy

from ..errors import InputError
from ..llm.dspy_lm import dspy_lm
from .labels import LabelSpace
from .metrics import evaluate, rp_at_k
from .program import InferRetrieveRank

__all__ = ["Examples", "make_examples", "rp_metric", "optimize", "load_program"]

log = logging.getLogger(__name__)


@dataclass
class Examples:
    examples: list = field(default_factory=list)  # dspy.Example(text, gold, queries).with_inputs("text")
    unknown_labels: int = 0  # gold labels not in the label space (dropped)
    skipped: int = 0  # examples left without any gold label (not used)
    unknown_examples: list[str] = field(default_factory=list)  # the first few unknown labels

    def summary(self) -> str:
        s = f"{len(self.examples)} examples"
        if self.unknown_labels:
            s += (f"; {self.unknown_labels} gold labels not in the label space dropped "
                  f"(e.g. {', '.join(map(repr, self.unknown_examples))})")
        if self.skipped:
            s += f"; {self.skipped} examples without a known label skipped"
        return s


def make_examples(texts: Sequence[str], gold: Sequence[Sequence[str]], space: LabelSpace) -> Examples:
    """DSPy examples from texts and gold label lists, keeping only labels in ``space`` (counted)."""
    if len(texts) != len(gold):
        raise InputError(f"{len(texts)} texts but {len(gold)} gold label lists")
    out = Examples()
    for text, labs in zip(texts, gold):
        known = []
        for lab in labs:
            i = space.index_of(lab)
            if i is None:
                out.unknown_labels += 1
                if len(out.unknown_examples) < 3:
                    out.unknown_examples.append(str(lab))
            elif space.labels[i] not in known:
                known.append(space.labels[i])
        if not known:
            out.skipped += 1
            continue
        # The gold labels double as the Infer step's labeled demo (queries that would have found them).
        out.examples.append(dspy.Example(text=text, gold=known, queries=known).with_inputs("text"))
    if out.unknown_labels:
        log.warning("%s", out.summary())
    return out


def rp_metric(k: int = 10):
    """A DSPy metric: RP@k of a prediction's ``ranked_labels`` against the example's ``gold``."""

    def metric(example, pred, trace=None) -> float:
        return rp_at_k([list(pred.ranked_labels)], [set(example.gold)], k)

    metric.__name__ = f"rp_at_{k}"
    return metric


def _dev_scores(program: InferRetrieveRank, dev: Sequence, k: int) -> dict:
    preds = program.predict_many([e.text for e in dev], k=max(k, 10))
    return evaluate([p["labels"] for p in preds], [set(e.gold) for e in dev], ks=(5, k) if k != 5 else (5,))


def optimize(program: InferRetrieveRank, train: Sequence, *, dev: Sequence | None = None, k: int = 10,
             max_bootstrapped_demos: int = 3, max_labeled_demos: int = 3, engine=None) -> tuple:
    """Compile ``program`` with ``dspy.BootstrapFewShot`` on RP@k. Returns (compiled program, report).

    The report holds the dev-set metrics before and after (when ``dev`` is given) and the demo counts.
    """
    if not train:
        raise InputError("no usable training examples", hint="train rows need gold labels from the label space")
    engine = engine or program._engine.obj
    if engine is None:
        raise InputError("optimising needs an LLM engine", hint="pass --model SPEC")
    report: dict = {"train": len(train), "dev": len(dev or []), "metric": f"RP@{k}"}
    if dev:
        report["dev_before"] = _dev_scores(program, dev, k)
    tp = dspy.BootstrapFewShot(metric=rp_metric(k), max_bootstrapped_demos=max_bootstrapped_demos,
                               max_labeled_demos=max_labeled_demos, max_rounds=1)
    with dspy.context(lm=dspy_lm(engine, max_tokens=program.config["max_tokens"]),
                      adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        compiled = tp.compile(program, trainset=list(train))
    report["bootstrapped_demos"] = {name: len(p.demos) for name, p in compiled.named_predictors()}
    _add_labeled_demos(compiled, train, max_labeled_demos)
    report["demos"] = {name: len(p.demos) for name, p in compiled.named_predictors()}
    if dev:
        report["dev_after"] = _dev_scores(compiled, dev, k)
    return compiled, report


def _add_labeled_demos(program: InferRetrieveRank, train: Sequence, n: int) -> None:
    """Top up each step's demos from gold labels when bootstrapping found too few (a weak model whose
    replies never parse yields no traces): Infer learns text -> gold labels as queries, Rank learns to put
    the gold labels first in a retrieved shortlist."""
    top = program.config["rank_topn"]
    infer_have = {d.get("text") for d in program.infer.demos}
    rank_have = {d.get("text") for d in program.rank.demos}
    todo = [e for e in train if e.text not in infer_have or e.text not in rank_have]
    if not todo or n <= 0:
        return
    shortlists = program.retriever.retrieve([e.text for e in todo[:n]], top)
    for e, sl in zip(todo[:n], shortlists):
        if len(program.infer.demos) < n and e.text not in infer_have:
            program.infer.demos.append(dspy.Example(text=e.text, queries=list(e.gold)))
        if len(program.rank.demos) < n and e.text not in rank_have:
            options = [s for s, _ in sl]
            missing = [g for g in e.gold if g not in options]
            if missing:
                options = options[: max(top - len(missing), 0)] + missing
            program.rank.demos.append(dspy.Example(text=e.text, options=options,
                                                   ranked=[g for g in e.gold if g in options]))


def load_program(path: str | Path, retriever, *, engine=None) -> InferRetrieveRank:
    """An :class:`InferRetrieveRank` with the state saved by :meth:`InferRetrieveRank.save_json`."""
    return InferRetrieveRank(retriever, engine=engine).load_json(path)
