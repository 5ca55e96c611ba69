"""``kind: setfit``: SetFit's idea (an encoder tuned on the gold, then a logistic-regression head) on the run's
one tuned encoder.

SetFit (Tunstall et al., 2022) fine-tunes the sentence encoder contrastively on the gold, then fits a head.
Cross-fitted the way the other gold LFs are, that cost ``folds + 1`` fine-tunings per LF (15 min on WRENCH
trec at 100 gold, 2 cores). Now the run fits one encoder on the gold (:class:`llmlabel.tuned.TunedEncoder`:
the full encoder plus two halves, the label names as extra examples) and every consumer reads it; this LF is
:class:`~llmlabel.lf.supervised.GoldLogRegLF` on that encoder: each fold's head is fitted in the space of the
encoder tuned without that fold's rows, with the label anchors as extra rows, so a gold row's vote never
comes from an encoder or a head that saw its label. How it compares with SetFit itself:
eval/results/encoder.md.
"""

from __future__ import annotations

import warnings

from ..errors import ConfigError
from .gold import GoldSet
from .spaces import is_tuned
from .supervised import GoldLogRegLF


class GoldSetFitLF(GoldLogRegLF):
    """Logistic regression over the run's tuned encoder (``tuned``: a :class:`~llmlabel.tuned.TunedEncoder`),
    cross-fitted; ``threshold``/``target_precision`` as for ``logreg``. ``num_iterations`` (the old per-LF
    SetFit pair budget) no longer applies: the encoder's fit is the run's (``llmlabel.tuned.TuneSettings``)."""

    kind = "setfit"

    def __init__(self, name: str, gold: GoldSet, *, tuned, threshold: float | str = 0.0,
                 target_precision: float = 0.6, num_iterations: int | None = None, C: float = 10.0) -> None:
        if not is_tuned(tuned):
            raise ConfigError(f"LF '{name}' (kind: setfit) needs the run's tuned encoder",
                              hint="pass --gold gold.jsonl: the label stage fits it beside the votes folder")
        if list(tuned.meta.get("labels") or []) != list(gold.labels):
            raise ConfigError(f"LF '{name}': the tuned encoder was fitted on other labels than the gold set's",
                              hint="refit it (delete the encoder folder) for this taxonomy")
        if num_iterations is not None:
            warnings.warn(f"LF '{name}': num_iterations is ignored; kind: setfit now reads the run's one tuned "
                          "encoder (see llmlabel.tuned)", UserWarning, stacklevel=2)
        anchors = tuned.meta.get("anchors") if tuned.meta.get("settings", {}).get("anchors", True) else None
        super().__init__(name, gold, embedder=tuned, C=C, threshold=threshold, target_precision=target_precision,
                         anchors=anchors)
