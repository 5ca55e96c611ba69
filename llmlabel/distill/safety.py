"""The safety net: with gold, measure on the gold itself whether the weak labels help, and ship what wins.

A student trained on weak labels can fall below "logistic regression on your gold" on data nobody tuned the
chain on; nothing else in the chain notices. With a gold set, ``label`` and ``aggregate`` keep a cross-fitted
world (:mod:`llmlabel.artifacts.crossfit`): for each fold f of the gold, the label model's labels for a sample
of weak rows made by LFs and a label model that never saw fold f's gold. Here every candidate recipe
(``Recipe``: a student kind and how much the weak rows weigh) is trained, for each fold f, on those labels plus
the gold outside fold f (each class's rows weighted to the class's weight in the full fit: ``prior_weights``),
and scored on fold f's gold: out-of-fold figures no gold row helped to make. The
probe on the gold alone (logistic regression on frozen embeddings of the gold: the baseline a user would pick) is
the reference: the best other recipe replaces it only when it wins by more than 1.645 paired standard errors on the
gold (``paired_se``; a one-sided test at 5%), so a noisy lead keeps the baseline. The winner is trained on every row and shipped;
the table and a one-line verdict go into metrics.json, the model card and the report. Without a baseline to keep
(``unrepresented`` classes: the gold misses a class the weak labels give many items; or no fold's other gold rows
hold two classes) the net weighs only recipes with the weak rows.

Weak weights: ``all`` (weak rows at their label-model confidence, as without the net), ``equal`` (scaled so
the weak rows together weigh as much as the gold rows) and ``none`` (the gold alone). Students: ``static``
(WordLlama + TF-IDF head), ``probe`` (frozen MiniLM + logistic regression: with ``none`` that is exactly
the "train on your gold" baseline) and ``tuned`` (the same head on the run's encoder tuned on the gold,
:mod:`llmlabel.tuned`, trained on the gold alone: ``GOLD_ONLY``): for fold f each gold row is embedded by the
half of that encoder tuned without fold f's gold, so the figure is honest and, the half having seen half the
gold, a little pessimistic for the full encoder that ships; and ``anchored`` (the probe with its head shrunk towards
the embeddings of the label names and descriptions rather than towards zero:
:func:`~llmlabel.distill.probe.fit_linear_head`'s ``prior``), for gold too small to learn what the names say.
``distill --student auto`` weighs static and anchored with every weak weight, the tuned probe on the gold and the
reference; the anchored probe replaced the plain probe's recipes with weak rows (its fit nests the plain one, and on
the suite's Banking77 runs it led them out-of-fold: eval/results/suite.md).
Encoder students are estimated through the probe
(the same frozen encoder with a linear head) rather than fine-tuned once per fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ConfigError
from .choice import MARGIN_SE, REFERENCE, Recipe, choose, paired_se  # noqa: F401 (the net's API)
from .metrics import macro_f1

WEAK_WEIGHTS = ("all", "equal", "none")
METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class SafetyNetResult:
    chosen: Recipe
    metric: str
    rows: list[dict]
    folds: int
    n_scored: int
    weak_sample: int
    verdict: str
    gain_over_gold_only: float
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what a flavour adds (multi-label: the shipped thresholds)

    def to_dict(self) -> dict:
        return {"chosen": asdict(self.chosen), "metric": self.metric, "folds": self.folds,
                "gold_rows_scored": self.n_scored, "weak_rows_per_fold": self.weak_sample,
                "verdict": self.verdict, "gain_over_gold_only": self.gain_over_gold_only,
                "candidates": self.rows, "notes": self.notes, **self.extra}


def scores(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over the classes present in ``y`` or predicted)."""
    f1 = macro_f1(y, pred, k)
    return {"accuracy": float(np.mean(pred == y)), "macro_f1": 0.0 if np.isnan(f1) else f1}


def weak_factor(weak: str, weak_w: np.ndarray, gold_w: np.ndarray) -> float:
    if weak == "all":
        return 1.0
    if weak == "none":
        return 0.0
    if weak == "equal":
        return float(gold_w.sum() / max(weak_w.sum(), 1e-12))
    raise ConfigError(f"unknown weak weight {weak!r}; use one of {', '.join(WEAK_WEIGHTS)}")


#: Students the net trains on the gold alone. With weak rows, each half of the tuned encoder must embed the whole
#: weak sample (two encoder passes over up to 5,000 texts per run: most of the net's time once the static fits got
#: fast); on the 14 single-label suite sets tuned + weak rows never shipped and never scored above every other
#: recipe (a tie at the top on banking77, offensive and youtube; eval/results/suite.md, the run before this rule).
GOLD_ONLY = ("tuned",)


def recipes(students: Sequence[str], weak: Sequence[str] = WEAK_WEIGHTS) -> list[Recipe]:
    """Every (student, weak weight) pair (``GOLD_ONLY`` students: the gold alone), plus the probe on the gold
    alone (the "train on your gold" baseline) whatever the students."""
    out = [Recipe(s, w) for s in students for w in weak if s not in GOLD_ONLY or w == "none"]
    if Recipe("probe", "none") not in out:
        out.append(Recipe("probe", "none"))
    return out


def matched_rows(ids: Sequence[str], crossfit, max_weak: int | None = None, seed: int = 0):
    """``(g_keep, g_rows, s_keep, s_rows)``: which of the cross-fitting file's gold rows and weak sample rows are
    in the labeled file (``ids``), and their row numbers there; with ``max_weak``, a seeded sample of at most that
    many weak rows."""
    pos = {str(i): r for r, i in enumerate(ids)}
    g_keep = np.array([str(i) in pos for i in crossfit.gold.ids], bool)
    g_rows = np.array([pos[str(i)] for i, ok in zip(crossfit.gold.ids, g_keep) if ok], np.int64)
    s_keep = np.array([str(i) in pos for i in crossfit.ids], bool)
    if max_weak is not None and s_keep.sum() > max_weak:
        s_keep[np.random.default_rng(seed).permutation(np.flatnonzero(s_keep))[max_weak:]] = False
    s_rows = np.array([pos[str(i)] for i, ok in zip(crossfit.ids, s_keep) if ok], np.int64)
    return g_keep, g_rows, s_keep, s_rows


def fold_training(weak: str, s_rows: np.ndarray, weak_targets: np.ndarray, w_weak: np.ndarray, g_rows: np.ndarray,
                  g_targets: np.ndarray, w_gold: np.ndarray | None = None):
    """``(rows, targets, weights)`` one fold trains a recipe on: the gold rows outside the fold at ``w_gold``
    (default 1), and the weak sample (its label model's targets for this fold) at its confidence times
    ``weak_factor``."""
    w_gold = np.ones(len(g_rows), np.float32) if w_gold is None else np.asarray(w_gold, np.float32)
    a = weak_factor(weak, w_weak, w_gold)
    if a <= 0:
        return g_rows, g_targets, w_gold
    return (np.concatenate([s_rows, g_rows]), np.concatenate([weak_targets, g_targets]),
            np.concatenate([w_weak * a, w_gold]).astype(np.float32))


def prior_weights(y: np.ndarray, train: np.ndarray, k: int) -> np.ndarray:
    """Weights of the gold rows ``y[train]`` in a fold: ``n_c / kept_c`` for class c (``n_c`` gold rows in all,
    ``kept_c`` of them outside the fold), so each class weighs in the fold what it weighs when the shipped model
    trains on all the gold. Without it the class of a held-out row is one row short against the classes not in the
    fold, and with one or two gold rows a class the model leans away from it: on Banking77 with 2 gold rows of each
    of 77 intents, logistic regression on the gold scored 0.273 out-of-fold unweighted and 0.416 weighted (0.667 on
    the test split trained on all 154 rows; eval/results/suite-per-class.md). With many rows a class it changes
    little: every row weighs about folds / (folds - 1), and the weights are normalised where they are used."""
    n = np.bincount(y, minlength=k).astype(np.float64)
    kept = np.bincount(y[train], minlength=k).astype(np.float64)
    return (n / np.maximum(kept, 1.0))[y[train]].astype(np.float32)


class _Trainer:
    """Fits one candidate on (texts, soft targets, weights) and predicts texts; probe features are embedded
    once per text (per half of the tuned encoder) and reused by every fold and recipe, and static students share
    tokens and training features through one :class:`~llmlabel.distill.static_memo.StaticMemo`."""

    def __init__(self, make_student, texts: list[str], classes: list[str], tuned=None) -> None:
        from .static_memo import StaticMemo

        self.make, self.texts, self.classes, self.tuned = make_student, texts, classes, tuned
        self._X: dict[str, np.ndarray] = {}
        self.memo = StaticMemo()

    def features(self, kind: str, rows: np.ndarray, student, fold: int = -1) -> np.ndarray:
        if kind == "tuned":
            return self._tuned_features(rows, fold)
        kind = "probe" if kind == "anchored" else kind  # the same frozen MiniLM space, another head
        if kind not in self._X:
            self._X[kind] = student.features([self.texts[i] for i in self._rows_all])
        return self._X[kind][self._pos[rows]]

    def _tuned_features(self, rows: np.ndarray, fold: int) -> np.ndarray:
        """``rows`` in the space of the half tuned without fold f's gold, each row embedded once per half and only
        when asked for (the tuned candidate trains on the gold alone: ``GOLD_ONLY``)."""
        key = f"tuned:{self.tuned.part_for_fold(fold)}"
        if key not in self._X:
            self._X[key] = (np.zeros((len(self._rows_all), 0), np.float32), np.zeros(len(self._rows_all), bool))
        x, have = self._X[key]
        pos = self._pos[rows]
        todo = np.unique(pos[~have[pos]])
        if len(todo):
            new = np.asarray(self.tuned.for_fold(fold).encode([self.texts[i] for i in self._rows_all[todo]]),
                             np.float32)
            if x.shape[1] == 0:
                x = np.zeros((len(self._rows_all), new.shape[1]), np.float32)
            x[todo] = new / np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
            have[todo] = True
            self._X[key] = (x, have)
        return x[pos]

    def prepare(self, rows: np.ndarray) -> None:
        self._rows_all = np.unique(rows)
        self._pos = np.full(max(int(self._rows_all.max()) + 1, 1), -1)
        self._pos[self._rows_all] = np.arange(len(self._rows_all))

    def fit_proba(self, kind: str, rows: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                  test_rows: np.ndarray, fold: int = -1) -> np.ndarray:
        """The student's probabilities for ``test_rows`` after training on ``rows`` (softmax, or per-class
        sigmoid for a multi-label student); ``fold``: the fold scored (the tuned candidate's space)."""
        st = self.make(kind)
        if hasattr(st, "fit_features"):
            st.classes_ = list(self.classes)
            st.fit_features(self.features(kind, rows, st, fold), targets, weights)
            return st.link.proba(st.logits_from_features(self.features(kind, test_rows, st, fold)).astype(np.float64))
        if hasattr(st, "memo") and st.memo is None:
            st.memo = self.memo
        st.fit([self.texts[i] for i in rows], proba=targets, classes=self.classes, sample_weight=weights)
        return st.predict_proba([self.texts[i] for i in test_rows])

    def oof_proba(self, rc: Recipe, g_rows: np.ndarray, g_fold: np.ndarray, folds: int, g_targets: np.ndarray,
                  s_rows: np.ndarray, weak_targets: np.ndarray, weak_conf: np.ndarray, one_of_k: bool) -> np.ndarray:
        """Recipe ``rc``'s out-of-fold probabilities for the gold rows, ``(n_gold, k)``: fold f's rows from the
        student trained on the other folds' gold (``g_targets``) and the weak sample with fold f's label-model
        targets (``weak_targets[f]``, weighted by ``weak_conf[f]``). Rows of a fold that could not be scored are
        NaN; ``one_of_k``: a fold whose training rows hold one class is not scored, and each class's gold rows
        weigh what they weigh in the full fit (:func:`prior_weights`)."""
        P = np.full((len(g_rows), len(self.classes)), np.nan)
        for f in range(folds):
            test = g_fold == f
            if not test.any() or test.all():
                continue
            w_gold = prior_weights(g_targets.argmax(1), ~test, len(self.classes)) if one_of_k else None
            rows, targets, weights = fold_training(rc.weak, s_rows, weak_targets[f], weak_conf[f], g_rows[~test],
                                                   g_targets[~test], w_gold)
            if one_of_k and len(np.unique(targets.argmax(1))) < 2:
                continue  # one class cannot train a classifier
            P[test] = self.fit_proba(rc.student, rows, targets, weights, g_rows[test], f)
        return P


def run_safety_net(texts: Sequence[str], ids: Sequence[str], classes: Sequence[str], crossfit, make_student, *,
                   students: Sequence[str] = ("static", "probe"), weak: Sequence[str] = WEAK_WEIGHTS,
                   metric: str = "accuracy", soft: bool = True, tuned=None) -> SafetyNetResult:
    """Score every recipe out-of-fold on the gold (module docstring) and choose one.

    ``crossfit``: :class:`llmlabel.artifacts.crossfit.CrossFitLabels` of the labeled file whose ``texts`` and
    ``ids`` are given; ``make_student(kind)`` returns an unfitted student of that kind. Gold rows score only when
    they are a fair sample (``fair``); rows an active strategy picked still train. ``tuned``: the run's
    :class:`~llmlabel.tuned.TunedEncoder` (fitted with this gold's folds), needed by the ``tuned`` student.
    """
    if metric not in METRICS:
        raise ConfigError(f"safety-net metric must be one of {', '.join(METRICS)}, got {metric!r}")
    k = len(classes)
    if list(crossfit.classes) != list(classes):
        raise ConfigError("the cross-fitting labels were made over other classes than the labeled file's",
                          hint="rerun `llmlabel aggregate` so both come from the same run")
    gold = crossfit.gold
    g_keep, g_rows, s_keep, s_rows = matched_rows(ids, crossfit)
    g_fold, g_y = gold.fold[g_keep], gold.labels[g_keep]
    g_fair = gold.fair[g_keep] if gold.fair is not None else np.ones(len(g_rows), bool)
    proba = crossfit.proba[:, s_keep]
    if not soft:
        proba = np.eye(k, dtype=np.float32)[proba.argmax(2)]
    notes = []
    if not g_fair.any():
        raise ConfigError("no gold row is a fair sample (all were picked by an active review strategy): "
                          "nothing to score the safety net on", hint="add randomly drawn gold rows")
    if "tuned" in students and tuned is None:
        raise ConfigError("the tuned candidate needs the run's tuned encoder")
    missing, share = unrepresented(g_y[g_fair], proba, k)
    todo = recipes(students, weak)
    if len(missing) and any(rc.weak != "none" for rc in todo):
        todo = [rc for rc in todo if rc.weak != "none"]  # they could never predict the missing classes
    trainer = _Trainer(make_student, list(texts), list(classes), tuned)
    trainer.prepare(np.concatenate([s_rows, g_rows]))
    onehot = np.eye(k, dtype=np.float32)[g_y]
    table, oof = [], {}
    for rc in todo:
        P = trainer.oof_proba(rc, g_rows, g_fold, gold.folds, onehot, s_rows, proba, proba.max(2), one_of_k=True)
        pred = np.where(np.isnan(P).any(1), -1, np.nan_to_num(P).argmax(1))
        scored = g_fair & (pred >= 0)
        row = {"student": rc.student, "weak": rc.weak, "n": int(scored.sum()),
               **scores(g_y[scored], pred[scored], k)}
        table.append(row)
        oof[len(table) - 1] = np.where(scored, pred, -1)
    if all(r["weak"] != "none" for r in table):
        best, chosen, verdict, gain = _gold_misses_classes(table, metric, int(g_fair.sum()), k,
                                                           [classes[j] for j in missing], share[missing])
    else:
        best, chosen, verdict, gain = choose(table, metric, len(g_rows),
                                             lambda a, b: paired_se(oof[a], oof[b], g_y, k, metric))
    return SafetyNetResult(chosen, metric, table, gold.folds, int(best["n"]), len(s_rows), verdict, float(gain),
                           notes)


#: A fair random sample of n gold rows misses a class that the label model gives a share p of the rows with
#: probability (1 - p)^n. A missing class below ``UNREPRESENTED_P / k`` (split over the k classes) says the gold is
#: not a random sample of the label set (or the weak labels are far off on that class); either way the out-of-fold
#: figures cannot see what a model trained on the gold alone loses there: it never predicts the class.
UNREPRESENTED_P = 0.01


def unrepresented(gold_y: np.ndarray, weak_proba: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes missing from the fair gold rows beyond chance (above), every class's share of the weak
    sample's labels)``; ``weak_proba``: the cross-fitted label model's (folds, rows, k) probabilities."""
    votes = weak_proba.argmax(-1).ravel()
    share = np.bincount(votes, minlength=k) / max(len(votes), 1)
    absent = np.setdiff1d(np.arange(k), gold_y)
    return absent[(1.0 - share[absent]) ** len(gold_y) < UNREPRESENTED_P / k], share


def _gold_misses_classes(table: list[dict], metric: str, n_fair: int, k: int, names: list[str],
                         share: np.ndarray) -> tuple[dict, Recipe, str, float]:
    """The gold has no row of classes the weak labels give a large share of the items (:func:`unrepresented`): only
    recipes with the weak rows were scored; the best out-of-fold ships (the first listed on a tie)."""
    i = max(range(len(table)), key=lambda j: (table[j][metric], -j))
    win = table[i]
    what = ", ".join(f"'{n}' ({100 * s:.0f}%)" for n, s in zip(names[:5], share[:5])) + (" ..." if len(names) > 5
                                                                                           else "")
    verdict = (f"the gold has no row of {len(names)} class(es) the label model gives many items, {what}, which a "
               f"random sample of {n_fair} rows misses with probability < {UNREPRESENTED_P:g}/{k} (so the gold is "
               f"not a random sample of your items, or the weak labels are far off on them): a model trained on the "
               f"gold alone would never predict them, so only recipes with the weak rows were weighed; shipped: "
               f"{win['student']}, weak rows weighted '{win['weak']}' (out-of-fold {metric.replace('_', '-')} "
               f"{win[metric]:.3f} on the gold)")
    return win, Recipe(win["student"], win["weak"]), verdict, 0.0


def no_fair_gold(crossfit) -> str | None:
    """Why the safety net cannot run on this gold: every row was picked by an active review strategy, so none is a
    fair sample to score recipes on (the run goes on as without the net; metrics.json and the card say so)."""
    fair = None if crossfit is None else crossfit.gold.fair
    if fair is None or len(fair) == 0 or fair.any():
        return None
    return (f"none of the {len(fair)} gold rows is a fair sample (all were picked by an active review strategy), so "
            "no recipe could be scored honestly; trained as without the net. Add randomly drawn gold rows "
            "(`review export --strategy random`) for it to run")
