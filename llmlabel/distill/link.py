"""How a student's scores become probabilities, labels and a loss: one class of k (softmax; the argmax) or a set of
labels (a sigmoid per label; those at or above the threshold). Every student (``Student.link``), the probe's
head, the static student's closed-form gradient, the safety net's out-of-fold probabilities, the model folder's
counts and the labeled-file reader (a label field's names, given probabilities, gold labels) read their form from
here instead of branching on ``multi_label`` each: the two forms are two classes of one interface, and what differs
between them is written once.

The standalone ``predict.py`` written into each model folder keeps its own copy of :meth:`Link.proba` and
:meth:`Link.names`: it must run without llmlabel installed.

>>> z = np.array([[2.0, 0.0]], np.float32)
>>> link_for(False).names(link_for(False).proba(z), ["a", "b"], 0.5), link_for(True).names(link_for(True).proba(z),
...                                                                                     ["a", "b"], 0.5)
(['a'], [['a', 'b']])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError


class Link:
    """The one-of-k form (single-label); :class:`LabelSets` is the multi-label one."""

    multi_label = False
    #: what a transformers classification head calls this form
    problem_type = "single_label_classification"
    #: a gold file's label field: split on these characters (none: one name), may a row have no label
    gold_split, gold_may_be_empty = "", False

    def parse(self, value: Any) -> Any:
        """A label field's value as this form reads it: the class name (label sets: a list of names, a string
        split on ``|``)."""
        return str(value)

    def label_array(self, raw: Sequence, index: dict[str, int], path) -> np.ndarray:
        """Parsed labels (:meth:`parse`, None where a row has none) as class indices with -1 for none (label
        sets: (n, k) 0/1 rows); a name outside ``index`` raises :class:`InputError` naming ``path``."""
        labels = np.full(len(raw), -1, dtype=np.int64)
        for i, lab in enumerate(raw):
            if lab is None:
                continue
            if lab not in index:
                raise InputError(f"label {lab!r} is not one of the file's classes ({len(index)} classes)", path=path,
                                 hint="the classes come from the metadata's 'classes' list")
            labels[i] = index[lab]
        return labels

    def check_proba(self, row: np.ndarray, field: str | None, where: dict) -> None:
        """Refuse a row of given probabilities that is not a distribution (label sets: each in [0, 1] is enough)."""
        if abs(row.sum() - 1.0) > 1e-3:
            raise InputError(f"probabilities sum to {row.sum():.4g}, not 1", field=field, **where,
                             hint="single-label targets must be a distribution; use --multi-label for "
                                  "independent per-class probabilities")

    def complete(self, labels: np.ndarray, proba: np.ndarray) -> None:
        """With given probabilities: normalise each row to sum to 1 and give a row without a label the most
        probable class, in place (label sets: both as given)."""
        proba /= proba.sum(1, keepdims=True)
        missing = labels < 0
        labels[missing] = proba[missing].argmax(1)

    def check_classes_used(self, counts: np.ndarray, path) -> None:
        """A classifier needs two classes in its labels (label sets: each label is its own yes / no)."""
        if (counts > 0).sum() < 2:
            raise InputError("only one class is used in the labels", path=path,
                             hint="a classifier needs examples of at least two classes")

    def gold_array(self, gold, classes: Sequence[str], among: str) -> np.ndarray:
        """A gold file's labels (:class:`llmlabel.artifacts.gold.GoldLabels`) over ``classes``: class indices
        (label sets: the 0/1 matrix)."""
        return gold.index(classes, among=among,
                          hint="the dev set must use the same label names as the training file")

    def proba(self, z: np.ndarray) -> np.ndarray:
        """Probabilities from float32 logits ``z`` (n, k); ``z`` is overwritten."""
        z -= z.max(1, keepdims=True)
        np.exp(z, out=z)
        return z / z.sum(1, keepdims=True)

    def names(self, p: np.ndarray, classes: Sequence[str], threshold) -> list:
        """The predicted class name per row (label sets: the list of names at or above ``threshold``)."""
        return [classes[j] for j in p.argmax(1)]

    def label_sets(self, y: Sequence) -> list[list[str]]:
        """Labels as one-element sets of names (label sets: each row's list of names, a lone name as a list)."""
        return [[str(v)] for v in y]

    def gold(self, targets: np.ndarray) -> np.ndarray:
        """Gold rows as the students score them: class indices (label sets: the 0/1 matrix)."""
        return targets.argmax(1)

    def hard_targets(self, labels: np.ndarray, k: int) -> np.ndarray:
        """float32 (n, k) targets of hard labels: one-hot rows of class indices (label sets: the 0/1 matrix)."""
        hard = np.zeros((len(labels), k), np.float32)
        hard[np.arange(len(labels)), labels] = 1.0
        return hard

    def dev_score(self, p: np.ndarray, gold: np.ndarray, threshold) -> float:
        """What early stopping maximises on a gold dev set: accuracy (label sets: micro-F1)."""
        return float((p.argmax(1) == gold).mean())

    def pick_score(self, p: np.ndarray, gold: np.ndarray) -> float:
        """What ``weak_weight='auto'`` maximises on a dev set: accuracy (label sets: macro-F1 at the per-label
        F1-optimal dev thresholds, the ones the student then ships with)."""
        return float((p.argmax(1) == np.asarray(gold)).mean())

    def holdout_score(self, p: np.ndarray, targets: np.ndarray, w: np.ndarray, threshold) -> float:
        """A held-out score against (soft) targets: the weighted target mass of the argmax (label sets: minus the
        mean absolute error of the thresholded predictions)."""
        return float((targets[np.arange(len(p)), p.argmax(1)] * w).sum() / max(w.sum(), 1e-8))

    def per_row(self, z, T):
        """Each row's (soft) cross-entropy, summed over the classes (torch tensors)."""
        import torch.nn.functional as F

        return -(T * F.log_softmax(z, dim=1)).sum(1)

    def per_row_mean(self, z, T):
        """The encoder student's per-row loss: :meth:`per_row` (label sets: averaged over the labels, so its scale
        does not grow with k)."""
        return self.per_row(z, T)

    def per_row_balanced(self, z, T, cw):
        """:meth:`per_row` with each class's terms scaled (``cw`` from :meth:`balanced_weights`, as tensors)."""
        import torch.nn.functional as F

        return -(cw[0] * T * F.log_softmax(z, dim=1)).sum(1)

    def loss_grad(self, z, T, t_sum, grad: bool):
        """``(per-row loss, d loss / d z or None)`` in closed form, without autograd (``t_sum``: T's row sums)."""
        import torch

        logp = torch.log_softmax(z, dim=1)
        return -(T * logp).sum(dim=1), (torch.exp(logp) * t_sum - T if grad else None)

    def balanced_weights(self, T: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """scikit-learn's ``class_weight="balanced"`` from weighted (soft) targets: ``(per class (k,), None)`` with
        n / (k' n_c), k' the classes with any target mass (label sets: ``(pos (k,), neg (k,))``, n / (2 n_pos) and
        n / (2 n_neg) per label). A side with no mass gets 1 (nothing is weighted by it)."""
        n, mass = float(w.sum()), w @ T
        present = max(int((mass > 0).sum()), 1)
        return np.divide(n, present * mass, out=np.ones_like(mass), where=mass > 0).astype(np.float32), None

    def counts(self, labels: np.ndarray, k: int) -> np.ndarray:
        """Rows per class of class indices (label sets: of a 0/1 matrix)."""
        return np.bincount(labels, minlength=k)

    def agreement(self, p: np.ndarray, labels: np.ndarray, threshold) -> float:
        """Share of rows whose prediction is their label (label sets: their whole set)."""
        return float((p.argmax(1) == labels).mean())


class LabelSets(Link):
    """The label-set form (multi-label): a sigmoid per label, each decided at the threshold."""

    multi_label = True
    problem_type = "multi_label_classification"
    gold_split, gold_may_be_empty = "|", True

    def parse(self, value: Any) -> list[str]:
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value if v is not None and str(v) != ""]
        return [p.strip() for p in str(value).split("|") if p.strip()]

    def label_array(self, raw: Sequence, index: dict[str, int], path) -> np.ndarray:
        labels = np.zeros((len(raw), len(index)), dtype=np.int8)
        for i, lab in enumerate(raw):
            for c in lab or []:
                if c not in index:
                    raise InputError(f"label {c!r} is not one of the file's classes", path=path,
                                     hint="the classes come from the metadata's 'classes' list")
                labels[i, index[c]] = 1
        return labels

    def check_proba(self, row: np.ndarray, field: str | None, where: dict) -> None:
        return None

    def complete(self, labels: np.ndarray, proba: np.ndarray) -> None:
        return None

    def check_classes_used(self, counts: np.ndarray, path) -> None:
        return None

    def gold_array(self, gold, classes: Sequence[str], among: str) -> np.ndarray:
        return gold.matrix(classes, among=among)

    def proba(self, z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-z))

    def names(self, p: np.ndarray, classes: Sequence[str], threshold) -> list:
        thr = np.asarray(threshold, dtype=np.float32)  # one number or one per class
        return [[classes[j] for j in np.flatnonzero(row >= thr)] for row in p]

    def label_sets(self, y: Sequence) -> list[list[str]]:
        return [[str(c) for c in (v if isinstance(v, (list, tuple)) else [v])] for v in y]

    def gold(self, targets: np.ndarray) -> np.ndarray:
        return targets

    def hard_targets(self, labels: np.ndarray, k: int) -> np.ndarray:
        return labels.astype(np.float32)

    def dev_score(self, p: np.ndarray, gold: np.ndarray, threshold) -> float:
        from ..multilabel_metrics import multilabel_f1

        return multilabel_f1(gold, p >= np.asarray(threshold, dtype=np.float32))["micro_f1"]

    def pick_score(self, p: np.ndarray, gold: np.ndarray) -> float:
        from ..multilabel_metrics import best_thresholds, multilabel_f1

        g = np.asarray(gold)
        return float(multilabel_f1(g, p >= best_thresholds(p, g, default=0.5))["macro_f1"])

    def holdout_score(self, p: np.ndarray, targets: np.ndarray, w: np.ndarray, threshold) -> float:
        return float(-np.abs((p >= threshold) - targets).mean())

    def per_row(self, z, T):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(z, T, reduction="none").sum(1)

    def per_row_mean(self, z, T):
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(z, T, reduction="none").mean(1)

    def per_row_balanced(self, z, T, cw):
        import torch.nn.functional as F

        return (cw[0] * T * F.softplus(-z) + cw[1] * (1 - T) * F.softplus(z)).sum(1)

    def loss_grad(self, z, T, t_sum, grad: bool):
        import torch

        # binary cross-entropy with logits, the stable form: max(z, 0) - z t + log(1 + exp(-|z|))
        per = (z.clamp(min=0) - z * T + torch.log1p(torch.exp(-z.abs()))).sum(dim=1)
        return per, ((torch.sigmoid(z) - T) if grad else None)

    def balanced_weights(self, T: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n, mass = float(w.sum()), w @ T
        neg = n - mass
        pos_w = np.divide(n, 2.0 * mass, out=np.ones_like(mass), where=mass > 0)
        neg_w = np.divide(n, 2.0 * neg, out=np.ones_like(neg), where=neg > 0)
        return pos_w.astype(np.float32), neg_w.astype(np.float32)

    def counts(self, labels: np.ndarray, k: int) -> np.ndarray:
        return labels.sum(0)

    def agreement(self, p: np.ndarray, labels: np.ndarray, threshold) -> float:
        return float(((p >= np.asarray(threshold, np.float32)) == labels.astype(bool)).all(1).mean())


ONE_OF_K, LABEL_SETS = Link(), LabelSets()


def link_for(multi_label: bool) -> Link:
    return LABEL_SETS if multi_label else ONE_OF_K
