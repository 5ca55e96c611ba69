"""A supervised LF that fine-tunes its encoder on the gold: SetFit, cross-fitted (``kind: setfit``).

``kind: logreg`` reads frozen sentence embeddings, so it only knows what the embedder already separates.
SetFit (Tunstall et al., 2022) first tunes the sentence encoder contrastively on pairs of gold items (same
label: close, different: far), then fits a logistic-regression head. With 100 gold labels that is what the
frozen-feature LFs miss where the label set is not what sentence embeddings encode: WRENCH trec's question
types, SetFit alone 0.912 test accuracy against 0.650 for the frozen MiniLM + LR (eval/results/chain.md).

The cross-fitting is :class:`~llmlabel.lf.supervised.GoldLogRegLF`'s: one model per fold, fitted without that
fold, votes that fold's gold items; the model on all the gold votes every other item. That is ``folds + 1``
fine-tunings; the pairs, not the corpus size, set the cost (WRENCH trec, 100 gold, 2 CPU cores: 15 min for
the six). The pair budget is SetFit's own default: a quarter of it (``num_iterations=5``) took the LF from
0.855 to 0.672 accuracy on the trec corpus.

Needs the ``setfit`` package (``pip install 'llmlabel[setfit]'``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EngineError
from .gold import GoldSet
from .supervised import GoldLogRegLF


def _body_path(spec: str) -> str:
    if spec in ("minilm", "all-MiniLM-L6-v2"):
        from ..embed.embedders import minilm_path

        return str(minilm_path())
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


class GoldSetFitLF(GoldLogRegLF):
    """SetFit on the gold (contrastive fine-tuning of ``body`` + a logistic-regression head), cross-fitted.

    gold: a :class:`GoldSet`; body: a sentence-transformers model name or folder (``minilm``: the bundled
    all-MiniLM-L6-v2); num_iterations: contrastive pairs generated per gold item (SetFit's own knob; ``None``,
    the default, = SetFit's oversampling: about 20 per item at 100 gold); batch_size, seed: SetFit's; threshold:
    a probability in [0, 1] or ``"auto"`` (chosen on the gold out-of-fold at ``target_precision``).
    ``models_``: fold -> fitted ``SetFitModel`` (None when that fold's rows hold one class), -1 = all gold.
    """

    kind = "setfit"

    def __init__(self, name: str, gold: GoldSet, *, body: str = "minilm", num_iterations: int | None = None,
                 batch_size: int = 16, seed: int = 0, threshold: float | str = 0.0,
                 target_precision: float = 0.6) -> None:
        super().__init__(name, gold, embedder=body, threshold=threshold, target_precision=target_precision)
        if num_iterations is not None and int(num_iterations) < 1:
            raise ConfigError(f"LF '{name}': num_iterations must be >= 1 (or null for SetFit's default)")
        self.num_iterations = None if num_iterations is None else int(num_iterations)
        self.batch_size, self.seed = int(batch_size), int(seed)

    @property
    def body(self) -> str:
        return self.embedder  # the parent's embedder slot holds the body's spec: there is no frozen embedder here

    def _features(self, texts) -> np.ndarray:
        return np.asarray(list(texts), dtype=object)  # SetFit reads the texts; its encoder is what it tunes

    def _fit_one(self, rows: np.ndarray):
        try:
            from datasets import Dataset
            from setfit import SetFitModel, Trainer, TrainingArguments
        except ImportError as e:
            raise EngineError(f"LF '{self.name}' (kind: setfit) needs the setfit package",
                              hint="pip install 'llmlabel[setfit]'") from e
        y = self.gold.y[rows]
        if len(np.unique(y)) < 2:
            return None
        try:
            model = SetFitModel.from_pretrained(_body_path(self.body))
        except (OSError, ValueError) as e:
            raise EngineError(f"LF '{self.name}': cannot load the SetFit body {self.body!r}: {e}",
                              hint="use minilm or a local sentence-transformers folder") from e
        data = Dataset.from_dict({"text": [self.gold.texts[i] for i in rows], "label": y.tolist()})
        with tempfile.TemporaryDirectory(prefix="llmlabel-setfit-") as tmp:  # SetFit's trainer wants a folder
            args = TrainingArguments(output_dir=tmp, save_strategy="no", seed=self.seed, batch_size=self.batch_size,
                                     num_epochs=1, num_iterations=self.num_iterations, show_progress_bar=False)
            Trainer(model=model, args=args, train_dataset=data).train()
        return model

    def _proba(self, model: Any, X: np.ndarray) -> np.ndarray:
        k = len(self.labels)
        if model is None:
            return np.full((len(X), k), 1.0 / k)
        out = np.zeros((len(X), k))
        p = model.predict_proba(list(X), batch_size=64, as_numpy=True, show_progress_bar=False)
        out[:, np.asarray(model.model_head.classes_, dtype=np.int64)] = p
        return out
