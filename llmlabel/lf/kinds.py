"""The kinds of ``lfs.yaml``: one pydantic class per ``kind``, holding its options, their defaults and
``build()``, which turns one entry into the LF objects it stands for.

A kind has a single-label form (votes one class or abstains), a multi-label form (votes 1 / 0 / abstain per
label, for a taxonomy with ``multi_label: true``), or both; ``build`` picks the form from the run's taxonomy.
The lfs.yaml reference in the docs is generated from these classes (their docstrings, fields and
``example``), so what a user reads is what the parser accepts. The kinds that call an LLM or your own code
are in :mod:`llmlabel.lf.kinds_llm`; :mod:`llmlabel.lf.spec` puts them all into one union on ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
#: A cut in [0, 1], or ``auto``: chosen on the gold out-of-fold (single-label only).
AutoThreshold = Optional[Union[Unit, Literal["auto"]]]
AUTO_HELP = "threshold: auto is for embedding, knn, logreg, setfit LFs (chosen on the gold)"


def short_model_name(spec: str) -> str:
    """``hf:/models/qwen`` -> ``qwen``: the suffix of ``<name>@<model>`` when one prompted LF runs on several."""
    return spec.rstrip("/").replace("#", "/").split("/")[-1].split(":")[-1] or spec


@dataclass
class BuildContext:
    """What every kind builds from: the run's taxonomy (parents kept: pattern keys may name a group), whether
    the run is multi-label, the ``--model`` specs, the engine factory, the gold, a shared embedder and the
    run's tuned encoder (read by ``embedder: tuned`` and ``kind: setfit``).

    ``gold`` is a :class:`~llmlabel.lf.gold.GoldSet` for a single-label run, and a
    :class:`~llmlabel.lf.gold.MultiGoldSet` or the gold file's path (read once, on first use) for a multi-label one."""

    taxonomy: Any
    multi_label: bool = False
    models: list[str] = field(default_factory=list)
    engines: Optional[Callable[[str], Any]] = None
    gold: Any = None
    embedder: Any = None
    tuned: Any = None  # the run's tuned encoder (llmlabel.tuned.TunedEncoder), or a function that fits/loads it
    _multi_gold: Any = None

    @property
    def classes(self):
        """The taxonomy whose labels are the classes (leaves only; vote j = ``labels[j]``)."""
        t = self.taxonomy
        return t.class_taxonomy() if hasattr(t, "class_taxonomy") else t

    @property
    def leaves(self) -> list:
        return self.taxonomy.leaves() if hasattr(self.taxonomy, "leaves") else list(self.taxonomy.labels)

    def engine(self, spec: str):
        if self.engines is None:
            from ..llm import engine_factory

            self.engines = engine_factory()
        return self.engines(spec)

    def need_gold(self, lf: str):
        if self.gold is None:
            hint = ("pass --gold gold.jsonl (id, text, labels)" if self.multi_label
                    else "pass --gold gold.jsonl or add gold: to lfs.yaml")
            raise ConfigError(f"LF '{lf}' needs a gold set", hint=hint)
        if not self.multi_label:
            return self.gold
        if self._multi_gold is None:
            from .gold import MultiGoldSet, load_multi_gold

            self._multi_gold = self.gold if isinstance(self.gold, MultiGoldSet) else \
                load_multi_gold(self.gold, self.taxonomy)
        return self._multi_gold

    def need_tuned(self, lf: str):
        if self.multi_label:
            raise ConfigError(f"LF '{lf}': the tuned encoder is single-label only", field="embedder",
                              hint="use embedder: minilm on a multi-label taxonomy")
        if self.tuned is None:
            raise ConfigError(f"LF '{lf}' reads the run's tuned encoder, which is fitted on a gold set",
                              field="embedder", hint="pass --gold gold.jsonl, or use embedder: minilm")
        if callable(self.tuned) and not hasattr(self.tuned, "for_fold"):
            self.tuned = self.tuned()  # fitted (or loaded) once, on first use
        return self.tuned

    def embedder_for(self, lf: "_Embedded"):
        if getattr(lf, "embedder", None) == "tuned":
            return self.need_tuned(lf.name)
        return self.embedder or lf.embedder or "minilm"

    def instruction(self, own: Optional[str]) -> str:
        return own or getattr(self.taxonomy, "instruction", "") or ""


def _label_name(taxonomy, key: str, lf: str) -> str:
    for lab in taxonomy.labels:
        if key in (lab.id, lab.name):
            return lab.name
    raise ConfigError(f"LF '{lf}': label {key!r} is not in the taxonomy (ids or names)", field=f"patterns.{key}",
                      hint="labels: " + ", ".join(lab.id for lab in taxonomy.labels[:8])
                      + (" ..." if len(taxonomy.labels) > 8 else ""))


def _leaf_names(taxonomy, key: str, lf: str) -> list[str]:
    """Leaf names a label key (id or name, leaf or parent) stands for."""
    for lab in taxonomy.labels:
        if key in (lab.id, lab.name):
            kids = [k.name for k in taxonomy.labels if k.parent == lab.id]
            return kids or [lab.name]
    raise ConfigError(f"LF '{lf}': label {key!r} is not in the taxonomy (ids or names)", field=f"patterns.{key}")


class LFKind(BaseModel):
    """Options every kind has."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    name: str = Field(description="The LF's name: its column in the votes folder and its row in the reports.")
    forms: ClassVar[tuple[str, ...]] = ("single", "multi")
    example: ClassVar[dict] = {}

    def build(self, ctx: BuildContext) -> list:
        """The LF objects this entry stands for, in the form the run's taxonomy asks for."""
        self.check_form(ctx.multi_label)
        return self.build_multi(ctx) if ctx.multi_label else self.build_single(ctx)

    def check_form(self, multi_label: bool) -> None:
        """A one-line error (``field`` set) when this entry cannot run on such a taxonomy."""
        if multi_label and "multi" not in self.forms:
            raise ConfigError(f"LF '{self.name}': kind {self.kind} is for single-label taxonomies", field="kind",
                              hint="use a number, or a kind listed in llmlabel.lf.multispec")
        if not multi_label and "single" not in self.forms:
            raise ConfigError(f"LF '{self.name}': kind {self.kind} needs a multi-label taxonomy here", field="kind",
                              hint="set multi_label: true in the taxonomy (llmlabel taxonomy --multi-label)")
        if multi_label and getattr(self, "threshold", None) == "auto":
            raise ConfigError(f"LF '{self.name}': threshold: auto is for single-label taxonomies", field="threshold",
                              hint="use a number, or a kind listed in llmlabel.lf.multispec")

    def build_single(self, ctx: BuildContext) -> list:  # pragma: no cover - check_form refuses first
        raise NotImplementedError

    def build_multi(self, ctx: BuildContext) -> list:  # pragma: no cover - check_form refuses first
        raise NotImplementedError


class KeywordSpec(LFKind):
    """Votes a label when one of its patterns occurs in the text (case-insensitive unless asked); abstains
    otherwise. Several labels matching: the one with the most matching patterns, a tie abstains. Multi-label:
    a vote per label whose patterns match (a key naming a parent group stands for all its leaves)."""

    kind: Literal["keyword"]
    patterns: dict[str, list[str]] = Field(description="label id or name -> the phrases that vote for it.")
    case_sensitive: bool = Field(False, description="Match case as written.")
    example: ClassVar[dict] = {"name": "refund_kw", "kind": "keyword", "patterns": {"refund": ["refund", "money back"]}}

    @property
    def regex(self) -> bool:
        return self.kind == "regex"

    def build_single(self, ctx: BuildContext) -> list:
        from .keyword import KeywordLF

        tax = ctx.classes
        pats = {_label_name(tax, key, self.name): v for key, v in self.patterns.items()}
        return [KeywordLF(self.name, pats, labels=[lab.name for lab in tax.labels], regex=self.regex,
                          case_sensitive=self.case_sensitive)]

    def build_multi(self, ctx: BuildContext) -> list:
        from .multilabel import MultiKeywordLF

        pats: dict[str, list[str]] = {}
        for key, v in self.patterns.items():
            for leaf in _leaf_names(ctx.taxonomy, key, self.name):
                pats.setdefault(leaf, []).extend(v)
        return [MultiKeywordLF(self.name, pats, labels=[lab.name for lab in ctx.leaves], regex=self.regex,
                               case_sensitive=self.case_sensitive)]


class RegexSpec(KeywordSpec):
    """As ``keyword``, with regular expressions (RE2 syntax over a whole batch; Python's ``re`` for patterns
    RE2 cannot compile)."""

    kind: Literal["regex"]
    patterns: dict[str, list[str]] = Field(description="label id or name -> regular expressions that vote for it.")
    example: ClassVar[dict] = {"name": "iban_re", "kind": "regex", "patterns": {"transfer": ["\\bIBAN\\b"]}}


class KeyphrasesSpec(LFKind):
    """The taxonomy's key phrases as keyword LFs: one unipolar LF per label that has key phrases (named
    ``<name>:<label id>``), so the label model learns each list's accuracy apart. Multi-label: one LF over
    all labels."""

    kind: Literal["keyphrases"]
    name: Optional[str] = Field(None, description="Prefix of the LF names (default: `kw`).")
    example: ClassVar[dict] = {"kind": "keyphrases"}

    def build_single(self, ctx: BuildContext) -> list:
        from .keyword import keyphrase_lfs

        return keyphrase_lfs(ctx.classes, prefix=self.name or "kw")

    def build_multi(self, ctx: BuildContext) -> list:
        from .multilabel import MultiKeywordLF

        pats = {lab.name: [p for p in lab.keyphrases if p.strip()] for lab in ctx.leaves}
        pats = {k: v for k, v in pats.items() if v}
        return [MultiKeywordLF(self.name or "kw", pats, labels=[lab.name for lab in ctx.leaves])] if pats else []


class _Embedded(LFKind):
    embedder: Optional[str] = Field(None, description="Embedder spec: `minilm`, `wordllama`, a sentence-transformers "
                                                      "model, or `tuned`: the run's encoder tuned on the gold "
                                                      "(single-label; a gold item is embedded by the half tuned "
                                                      "without it). Omitted: the run's default (MiniLM up to 30,000 "
                                                      "texts, WordLlama above; a run may pass one shared embedder).")


class _GoldCut(_Embedded):
    target_precision: float = Field(0.6, gt=0.0, le=1.0,
                                    description="What `threshold: auto` aims for: the lowest cut at which the "
                                                "LF's out-of-fold votes on the gold are still this precise.")


class EmbeddingSpec(_GoldCut):
    """Votes the label whose name, description and examples are closest to the text (cosine of sentence
    embeddings), abstaining below ``threshold`` or when the best two are closer than ``margin``. Multi-label: a
    vote of 1 per label at or above its threshold, 0 below ``low``, abstain between."""

    kind: Literal["embedding"]
    threshold: AutoThreshold = Field(None, description="Abstain below this cosine; `auto` chooses it on the gold "
                                                       "out-of-fold (needs gold). Default: 0.3 (multi-label 0.4).")
    margin: float = Field(0.0, description="Single-label: abstain when the best label beats the second by less.")
    thresholds: Optional[dict[str, float]] = Field(None, description="Multi-label: a threshold per label (id or "
                                                                     "name), over `threshold`.")
    low: Optional[float] = Field(None, description="Multi-label: vote 0 below this cosine (default: never 0).")
    example: ClassVar[dict] = {"name": "emb", "kind": "embedding", "embedder": "minilm", "threshold": 0.35}

    def build_single(self, ctx: BuildContext) -> list:
        from .embedding import EmbeddingLF

        if self.threshold == "auto":
            ctx.need_gold(self.name)
        return [EmbeddingLF(self.name, ctx.classes.labels, embedder=ctx.embedder_for(self),
                            threshold=0.3 if self.threshold is None else self.threshold, margin=self.margin,
                            gold=ctx.gold, target_precision=self.target_precision)]

    def build_multi(self, ctx: BuildContext) -> list:
        from .multilabel import MultiEmbeddingLF

        leaves = ctx.leaves
        thr = {**{lab.name: (0.4 if self.threshold is None else self.threshold) for lab in leaves},
               **{_leaf_names(ctx.taxonomy, k, self.name)[0]: v for k, v in (self.thresholds or {}).items()}}
        return [MultiEmbeddingLF(self.name, leaves, embedder=ctx.embedder_for(self), threshold=thr, low=self.low)]


class KnnSpec(_GoldCut):
    """A similarity-weighted vote of the ``k`` gold examples nearest the text (needs gold); abstains when the
    winning share is under ``threshold``. A gold item's own vote comes from neighbours outside its fold.
    Multi-label: each label's share among the neighbours' label sets."""

    kind: Literal["knn"]
    k: int = Field(10, ge=1, le=1000, description="Neighbours that vote.")
    threshold: AutoThreshold = Field(None, description="Abstain below this share of the vote; `auto`: chosen on "
                                                       "the gold out-of-fold. Default: 0.5.")
    example: ClassVar[dict] = {"name": "knn", "kind": "knn", "k": 10, "threshold": "auto"}

    def build_single(self, ctx: BuildContext) -> list:
        from .knn import KnnLF

        return [KnnLF(self.name, ctx.need_gold(self.name), embedder=ctx.embedder_for(self), k=self.k,
                      threshold=0.5 if self.threshold is None else self.threshold,
                      target_precision=self.target_precision)]

    def build_multi(self, ctx: BuildContext) -> list:
        from .multilabel import MultiKnnLF

        g = ctx.need_gold(self.name)
        return [MultiKnnLF(self.name, g.texts, g.label_sets, labels=[lab.name for lab in ctx.leaves], gold_ids=g.ids,
                           embedder=ctx.embedder_for(self), k=self.k,
                           threshold=0.5 if self.threshold is None else self.threshold, gold=g)]


class LogRegSpec(_GoldCut):
    """Logistic regression on the gold's embeddings ("train on your labels", as one LF; needs gold),
    cross-fitted: a gold item is voted by the model fitted without its fold. Abstains below ``threshold``."""

    kind: Literal["logreg"]
    threshold: AutoThreshold = Field(None, description="Abstain when the top probability is below this; `auto`: "
                                                       "chosen on the gold out-of-fold. Default: 0 (always vote).")
    forms: ClassVar[tuple[str, ...]] = ("single",)
    example: ClassVar[dict] = {"name": "logreg", "kind": "logreg", "threshold": "auto"}

    def build_single(self, ctx: BuildContext) -> list:
        from .supervised import GoldLogRegLF

        return [GoldLogRegLF(self.name, ctx.need_gold(self.name), embedder=ctx.embedder_for(self),
                             threshold=0.0 if self.threshold is None else self.threshold,
                             target_precision=self.target_precision)]


class SetFitSpec(LogRegSpec):
    """SetFit's recipe on the run's one tuned encoder: logistic regression (with the label names as extra rows)
    over MiniLM fine-tuned on the gold (:mod:`llmlabel.tuned`), cross-fitted like ``logreg``: a gold item's
    vote comes from a head and an encoder that never saw it. Needs gold; no extra package."""

    kind: Literal["setfit"]
    embedder: Optional[str] = Field(None, description="Not used: the LF reads the run's tuned encoder (omit it, or "
                                                      "`tuned`).")
    num_iterations: Optional[int] = Field(None, ge=1, description="No longer used (the run's encoder is tuned "
                                                                  "once; see llmlabel.tuned.TuneSettings).")
    example: ClassVar[dict] = {"name": "setfit", "kind": "setfit", "threshold": "auto"}

    def build_single(self, ctx: BuildContext) -> list:
        from .setfit_lf import GoldSetFitLF

        if self.embedder not in (None, "minilm", "tuned"):
            raise ConfigError(f"LF '{self.name}': kind setfit reads the run's tuned encoder; its embedder option "
                              "is not used", field="embedder", hint="drop embedder:, or use kind: logreg")
        return [GoldSetFitLF(self.name, ctx.need_gold(self.name), tuned=ctx.need_tuned(self.name),
                             num_iterations=self.num_iterations,
                             threshold=0.0 if self.threshold is None else self.threshold,
                             target_precision=self.target_precision)]


class ClassifierSpec(_Embedded):
    """Multi-label only: one-vs-rest logistic regression on the gold's embeddings (needs gold), cross-fitted,
    with a threshold per label from its out-of-fold probabilities."""

    kind: Literal["classifier"]
    threshold: Optional[Unit] = Field(None, description="One threshold for every label instead of the per-label "
                                                        "out-of-fold ones.")
    low: Optional[float] = Field(None, description="Vote 0 below this probability (default: never 0).")
    forms: ClassVar[tuple[str, ...]] = ("multi",)
    example: ClassVar[dict] = {"name": "lr", "kind": "classifier"}

    def build_multi(self, ctx: BuildContext) -> list:
        from .multiclassifier import MultiClassifierLF

        g = ctx.need_gold(self.name)
        return [MultiClassifierLF(self.name, g.texts, g.label_sets, labels=[lab.name for lab in ctx.leaves],
                                  gold_ids=g.ids, embedder=ctx.embedder_for(self), threshold=self.threshold,
                                  low=self.low, gold=g)]
