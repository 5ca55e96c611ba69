"""Cascade: the student answers when its confidence >= T; the rest go to an LLM labeling function.

T is given, or chosen on a gold dev set for a target accuracy (the lowest deferral that reaches it) or for a
deferral budget (the best accuracy within it). The accuracy/deferral curve is kept so users can pick another point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

DEFAULT_INSTRUCTION = "Classify the text into exactly one of the labels."


def llm_prompts(texts: Sequence[str], classes: Sequence[str], instruction: str = DEFAULT_INSTRUCTION) -> list[str]:
    from ..llm.prompting import quote_text

    labels = ", ".join(classes)
    return [f"{instruction}\n{quote_text(t)}\nLabels: {labels}\nAnswer with one label." for t in texts]


def cascade_curve(confidence: np.ndarray, student_correct: np.ndarray, llm_correct: np.ndarray) -> list[dict]:
    """Accuracy and deferral rate for every distinct threshold (items with confidence < T are deferred)."""
    conf = np.asarray(confidence, float)
    s, l = np.asarray(student_correct, bool), np.asarray(llm_correct, bool)
    n = len(conf)
    order = np.argsort(conf, kind="stable")
    cs, s_sorted, l_sorted = conf[order], s[order], l[order]
    # deferring the first j items (lowest confidence): accuracy = (llm right on first j + student right on rest) / n
    llm_cum = np.concatenate([[0], np.cumsum(l_sorted)])
    stu_rest = np.concatenate([[0], np.cumsum(s_sorted[::-1])])[::-1]
    points = []
    cuts = [0] + [j for j in range(1, n) if cs[j] > cs[j - 1]] + [n]
    for j in cuts:
        t = float(cs[j]) if j < n else float(np.nextafter(cs[-1], np.inf)) if n else 1.0
        points.append({"threshold": t, "deferral": j / n if n else 0.0,
                       "accuracy": float((llm_cum[j] + stu_rest[j]) / n) if n else float("nan")})
    return points


def choose_threshold(curve: list[dict], *, target_accuracy: float | None = None,
                     max_deferral: float | None = None) -> tuple[float, dict, bool]:
    """(threshold, its curve point, whether the goal was met). With a target accuracy: the lowest deferral that
    reaches it (else the most accurate point); with a deferral budget: the most accurate point within it."""
    if (target_accuracy is None) == (max_deferral is None):
        raise ConfigError("give exactly one of target_accuracy and max_deferral")
    if target_accuracy is not None:
        ok = [p for p in curve if p["accuracy"] >= target_accuracy - 1e-12]
        if ok:
            best = min(ok, key=lambda p: (p["deferral"], -p["accuracy"]))
            return best["threshold"], best, True
        best = max(curve, key=lambda p: (p["accuracy"], -p["deferral"]))
        return best["threshold"], best, False
    ok = [p for p in curve if p["deferral"] <= max_deferral + 1e-12]
    best = max(ok, key=lambda p: (p["accuracy"], -p["deferral"]))
    return best["threshold"], best, True


@dataclass
class Cascade:
    """``student`` (fitted, with ``predict_proba`` and ``classes_``) + ``llm`` (an engine with ``choose``).

    ``labeler`` (optional): ``texts -> (n, k)`` class probabilities in the student's class order, e.g. the
    zero-shot prompted LF that labeled the data (the caller builds it: distill does not import the LF stage);
    without it the cascade makes one ``choose`` call per text with :func:`llm_prompts`.
    """

    student: Any
    llm: Any = None
    threshold: float = 0.0
    instruction: str = DEFAULT_INSTRUCTION
    curve: list[dict] = field(default_factory=list)
    labeler: Any = None

    def llm_labels(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """The LLM's class index per text (``engine.choose`` over the class names, so always a class): through
        ``labeler`` when given, else one direct ``choose`` call with this module's prompt."""
        if not len(texts):
            return np.zeros(0, dtype=np.int64)
        if self.llm is None and self.labeler is None:
            raise ConfigError("the cascade has no LLM to defer to", hint="pass --cascade-llm SPEC")
        classes = list(self.student.classes_)
        if self.labeler is not None:
            return np.asarray(self.labeler(list(texts))).argmax(1)
        return np.asarray(self.llm.choose(llm_prompts(texts, classes, self.instruction), classes,
                                          progress=progress)).argmax(1)

    def calibrate(self, texts: Sequence[str], gold: np.ndarray, *, target_accuracy: float | None = None,
                  max_deferral: float | None = None, progress: bool = False) -> dict:
        """Pick T on a gold dev set (runs the LLM on every dev item once) and keep the curve. With neither goal, keep
        the current T and report its point on the curve."""
        p = self.student.predict_proba(list(texts))
        conf, pred = p.max(1), p.argmax(1)
        llm_pred = self.llm_labels(list(texts), progress)
        self.curve = cascade_curve(conf, pred == gold, llm_pred == gold)
        if target_accuracy is None and max_deferral is None:
            deferred = conf < self.threshold
            point = {"threshold": self.threshold, "deferral": float(deferred.mean()),
                     "accuracy": float(np.where(deferred, llm_pred == gold, pred == gold).mean())}
            met = True
        else:
            self.threshold, point, met = choose_threshold(self.curve, target_accuracy=target_accuracy,
                                                          max_deferral=max_deferral)
        return {"threshold": self.threshold, "point": point, "goal_met": met, "n_dev": int(len(gold)),
                "student_accuracy": float((pred == gold).mean()), "llm_accuracy": float((llm_pred == gold).mean()),
                "target_accuracy": target_accuracy, "max_deferral": max_deferral}

    def predict(self, texts: Sequence[str], progress: bool = False) -> dict[str, np.ndarray]:
        """``label`` (class index), ``confidence`` (student's), ``deferred`` (bool), ``student_label``."""
        p = self.student.predict_proba(list(texts))
        conf, pred = p.max(1), p.argmax(1)
        deferred = conf < self.threshold
        final = pred.copy()
        idx = np.flatnonzero(deferred)
        if idx.size:
            final[idx] = self.llm_labels([texts[i] for i in idx], progress)
        return {"label": final, "confidence": conf, "deferred": deferred, "student_label": pred, "proba": p}
