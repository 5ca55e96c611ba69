"""What every student shares: scikit-learn-shaped ``fit``/``predict_proba``/``predict``, soft or hard targets,
per-item weights, a seeded mini-batch loop with a progress bar and early stopping on a gold dev set."""

from __future__ import annotations

from pathlib import Path

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..labelsets import label_set_matrix
from .link import link_for


def bucketed_order(order: np.ndarray, lengths: np.ndarray, batch_size: int, gen, chunk_batches: int = 50) -> np.ndarray:
    """Re-order a shuffled index so each batch holds items of similar length (less padding: ~1.7x faster steps on
    Banking77), keeping randomness: sort within chunks of ``chunk_batches`` batches, then shuffle the batches.

    >>> import torch; o = bucketed_order(np.arange(8), np.array([5, 1, 5, 1, 5, 1, 5, 1]), 2, torch.Generator())
    >>> sorted(np.array([5, 1, 5, 1, 5, 1, 5, 1])[o].reshape(4, 2).tolist())
    [[1, 1], [1, 1], [5, 5], [5, 5]]
    """
    import torch

    span = batch_size * chunk_batches
    parts = [c[np.argsort(lengths[c], kind="stable")] for c in np.split(order, range(span, len(order), span))]
    sorted_order = np.concatenate(parts)
    batches = np.split(sorted_order, range(batch_size, len(sorted_order), batch_size))
    perm = torch.randperm(len(batches), generator=gen).numpy()
    return np.concatenate([batches[i] for i in perm])


class Student:
    kind = "base"

    def __init__(self, *, epochs: int, batch_size: int, lr: float, weight_decay: float, seed: int,
                 multi_label: bool, threshold: float, patience: int, progress: bool) -> None:
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.seed, self.multi_label, self.threshold = seed, multi_label, threshold
        self.patience, self.progress = patience, progress
        self.history_: list[dict[str, float]] = []

    @property
    def link(self):
        """The output form (:mod:`.link`): one class of k, or a label set when ``multi_label``."""
        return link_for(self.multi_label)

    # ------------------------------------------------------------------ public API

    def fit(self, texts: Sequence[str], y: Sequence[Any] | None = None, *, proba: np.ndarray | None = None,
            classes: Sequence[str] | None = None, sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], Sequence[Any]] | None = None) -> "Student":
        """Train on hard labels ``y`` (class names; lists of names when multi-label) or soft targets ``proba``
        ((n, k), columns in ``classes`` order). ``dev=(texts, labels)``: gold labels for early stopping."""
        texts = [str(t) for t in texts]
        if proba is not None:
            proba = np.asarray(proba, dtype=np.float32)
            if proba.ndim != 2 or proba.shape[0] != len(texts):
                raise InputError(f"proba must be (n_texts, n_classes); got {proba.shape} for {len(texts)} texts")
            if classes is None:
                raise InputError("soft targets need the class names", hint="pass classes=[...] in column order")
            if not np.all(np.isfinite(proba)):
                raise InputError("proba holds values that are not finite")
            self.classes_ = [str(c) for c in classes]
            if len(self.classes_) != proba.shape[1]:
                raise InputError(f"{proba.shape[1]} probability columns but {len(self.classes_)} classes")
            targets = proba
        elif y is not None:
            if len(y) != len(texts):
                raise InputError(f"{len(y)} labels for {len(texts)} texts")
            targets = self._targets_from_labels(y, classes)
        else:
            raise InputError("fit() needs labels y or soft targets proba")
        if len(self.classes_) < 2:
            raise InputError("a classifier needs at least two classes")
        w = np.ones(len(texts), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
        if w.shape != (len(texts),) or not np.all(np.isfinite(w)) or (w < 0).any():
            raise InputError("sample_weight must be finite, >= 0, one per text")
        dev_enc = None
        if dev is not None:
            dev_enc = (list(map(str, dev[0])), self._encode_gold(dev[1]))
        self.history_ = []
        self._has_dev = dev_enc is not None
        self._fit(texts, targets, w, dev_enc)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, k) probabilities in :attr:`classes_` order (softmax, or per-class sigmoid when multi-label)."""
        self._check_fitted()
        return self.link.proba(self._logits([str(t) for t in texts]).astype(np.float32))

    def predict(self, texts: Sequence[str]) -> list:
        """Class names (single-label) or lists of class names with probability >= ``threshold`` (multi-label)."""
        return self.link.names(self.predict_proba(texts), self.classes_, self.threshold)

    # ------------------------------------------------------------------ helpers

    def save(self, folder: str | Path, *, atomic: bool = True) -> Path:
        """Write the model folder. ``atomic`` (the default): whole, into a temporary sibling that replaces
        ``folder`` only once complete (:func:`llmlabel.io_swap.atomic_folder`), so a kill or a full disk leaves
        the earlier folder or this one, never a mix; ``atomic=False`` writes into ``folder`` as it is (a caller
        that is itself filling a temporary folder)."""
        self._check_fitted()
        folder = Path(folder)
        if not atomic:
            folder.mkdir(parents=True, exist_ok=True)
            self._write(folder)
            return folder
        from ..io_swap import atomic_folder
        from .folder import check_replaceable, seal

        check_replaceable(folder)
        with atomic_folder(folder) as tmp:
            self._write(tmp)
            seal(tmp)
        return folder

    def _write(self, folder: Path) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet", hint="call fit() first")

    def _targets_from_labels(self, y, classes) -> np.ndarray:
        lists = self.link.label_sets(y)
        self.classes_ = list(classes) if classes is not None else sorted({c for v in lists for c in v})
        try:
            return label_set_matrix(lists, {c: i for i, c in enumerate(self.classes_)})
        except KeyError as e:
            raise InputError(f"label {e.args[0]!r} is not in classes") from None

    def _encode_gold(self, y) -> np.ndarray:
        """Gold labels as class indices (or a 0/1 matrix); already-encoded arrays pass through."""
        arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
        if isinstance(arr, np.ndarray) and arr.dtype.kind in "iub":
            return arr
        return self.link.gold(self._targets_from_labels_keep(y))

    def _targets_from_labels_keep(self, y) -> np.ndarray:
        saved = self.classes_
        try:
            return self._targets_from_labels(y, saved)
        finally:
            self.classes_ = saved

    def _dev_score(self, dev) -> float:
        """Accuracy (single-label) or micro-F1 (multi-label) on the gold dev set."""
        texts, gold = dev
        return self.link.dev_score(self.predict_proba(texts), gold, self.threshold)

    def _train_loop(self, n: int, forward: Callable, loss_fn: Callable, opt, gen, snapshot: Callable,
                    evaluate: Callable, params: list, *, max_steps: int | None = None, lengths: np.ndarray | None = None,
                    scheduler=None) -> None:
        """Seeded shuffled mini-batches; with a dev set keep the best epoch and stop after ``patience`` worse ones.

        ``lengths`` (one per item): length-bucketed batches (see :func:`bucketed_order`); ``scheduler`` steps with
        the optimizer."""
        import torch

        from ..progress import Ticker

        steps_per_epoch = (n + self.batch_size - 1) // self.batch_size
        total = self.epochs * steps_per_epoch if max_steps is None else min(max_steps, self.epochs * steps_per_epoch)
        best, best_state, bad, step = -1.0, None, 0, 0
        self.dev_scores_: list[float] = []
        with Ticker(self.progress, total, f"training {self.kind} student") as tick:
            for epoch in range(self.epochs):
                order = torch.randperm(n, generator=gen).numpy()
                if lengths is not None:
                    order = bucketed_order(order, lengths, self.batch_size, gen)
                running = 0.0
                for b in range(0, n, self.batch_size):
                    idx = order[b : b + self.batch_size]
                    opt.zero_grad()
                    loss = loss_fn(forward(idx, True), idx)
                    loss.backward()
                    opt.step()
                    if scheduler is not None:
                        scheduler.step()
                    running += float(loss.detach()) * len(idx)
                    step += 1
                    tick(1)
                    if step >= total:
                        break
                entry = {"epoch": epoch + 1, "train_loss": running / n}
                state = snapshot()
                if evaluate is not None and self._has_dev:
                    score = evaluate(state)
                    entry["dev_score"] = score
                    self.dev_scores_.append(score)
                    if score > best:
                        best, best_state, bad = score, state, 0
                        self.best_epoch_ = epoch + 1
                    else:
                        bad += 1
                else:
                    best_state = state
                    self.best_epoch_ = epoch + 1
                self.history_.append(entry)
                if step >= total or (self._has_dev and bad >= self.patience):
                    break
        self._set_state(best_state)

    _has_dev = False

    # ------------------------------------------------------------------ to implement

    def _fit(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev) -> None:
        raise NotImplementedError

    def _logits(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _set_state(self, state) -> None:
        raise NotImplementedError
