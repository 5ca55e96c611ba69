"""Probe student: a frozen sentence encoder and a linear head, i.e. logistic regression on the embeddings.

"Frozen MiniLM + logistic regression on your gold" is the baseline an informed user reaches for with ~100
labels; as a student it is also what trains best on a few thousand weak labels when the task needs the
encoder's sentence space more than word features (trec's question types: the static student 0.620, the same
labels through a frozen MiniLM + LR 0.762; eval/results/chain.md). The cross-fitting safety net
(:mod:`llmlabel.distill.safety`) weighs it against the other students, so it ships when it wins.

The head is fitted by full-batch L-BFGS on the weighted soft cross-entropy (sigmoid cross-entropy when
multi-label) with an L2 penalty scaled like scikit-learn's ``LogisticRegression(C)``: ``1 / (C * n)`` on
unit-length embeddings, so a 100-row gold set and 10,000 weak rows are regularised alike; with two classes
twice that, on the softmax's two rows, so that a single-label probe is scikit-learn's model at the same C for
any number of classes (tests/test_probe_class_weight.py).

``class_weight="balanced"`` (scikit-learn's meaning, from the weighted, possibly soft, targets) is the default of
multi-label probes: each label's positives weigh n / (2 n_pos) and its negatives n / (2 n_neg), so a label with a
handful of positives is not fitted to "never". Unweighted, a rare GoEmotions label's probabilities stayed far
below any threshold, and the safety net's reference (this probe on the gold) fell 0.5 macro-F1 points short of
one-vs-rest LR whose weighting was chosen out-of-fold on the same gold (``balanced`` at 100 and 1,000 gold;
eval/results/suite-goemotions.md). Multi-label probes also take scikit-learn's default ``C = 1``: weighting alone
left the net's reference below that baseline (0.2309 vs 0.2384 at 1,000 gold), and the net's own out-of-fold
score on the gold ranked C = 1 above C = 10 (0.2316 vs 0.2284), so a multi-label probe *is* the one-vs-rest
``LogisticRegression(class_weight="balanced")`` a user would fit. Single-label probes stay unweighted at C = 10
unless asked (the 14-set suite was measured so).

The saved folder holds the encoder (``encoder/``, a sentence-transformers folder), ``head.safetensors``
(``weight`` (k, dim), ``bias`` (k,)), ``llmlabel_student.json`` and a standalone ``predict.py``:
``sys.path.insert(0, "model"); from predict import load; load("model").predict(["..."])`` works without
llmlabel (sentence-transformers and safetensors needed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Student
from .link import link_for
from .static_format import STUDENT_FILE

PREDICT_PY = '''"""Standalone predictor for an llmlabel probe student (frozen sentence encoder + linear head)."""
import json
from pathlib import Path

import numpy as np


class ProbeModel:
    def __init__(self, folder):
        from safetensors.numpy import load_file
        from sentence_transformers import SentenceTransformer

        folder = Path(folder)
        cfg = json.loads((folder / "llmlabel_student.json").read_text(encoding="utf-8"))
        self.classes, self.multi_label = cfg["classes"], cfg["multi_label"]
        self.threshold = np.asarray(cfg.get("threshold", 0.5), dtype=np.float32)
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = head["weight"], head["bias"]
        self.encoder = SentenceTransformer(str(folder / "encoder"), device="cpu")

    def predict_proba(self, texts):
        x = self.encoder.encode(list(texts), convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        z = x @ self.weight.T + self.bias
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict(self, texts):
        p = self.predict_proba(texts)
        if self.multi_label:
            return [[c for c, on in zip(self.classes, row >= self.threshold) if on] for row in p]
        return [self.classes[j] for j in p.argmax(1)]


def load(folder):
    return ProbeModel(folder)
'''


CLASS_WEIGHTS = (None, "balanced")


def balanced_class_weights(targets: np.ndarray, weights: np.ndarray, *,
                           multi_label: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """scikit-learn's ``class_weight="balanced"`` from weighted (soft) targets (:meth:`.link.Link.balanced_weights`
    of the form: ``(per class, None)``, or ``(pos, neg)`` per label when multi-label)."""
    return link_for(multi_label).balanced_weights(np.asarray(targets, np.float64), np.asarray(weights, np.float64))


def fit_linear_head(X: np.ndarray, targets: np.ndarray, weights: np.ndarray, l2: float, *,
                    multi_label: bool = False, max_iter: int = 200, seed: int = 0,
                    class_weight: str | None = None,
                    prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(weight (k, d), bias (k,))`` minimising the weighted (soft) cross-entropy + ``l2/2 * |weight|^2`` (with two
    softmax classes ``l2 * |weight|^2``: scikit-learn's binary model, see below); ``class_weight="balanced"``:
    each class's (label side's) terms scaled by :func:`balanced_class_weights`.

    ``prior`` (k, d), the unit embeddings of the label names: the weight is ``s * prior + D`` with the scale ``s``
    fitted freely and only ``D`` penalised, so the head is shrunk towards zero-shot classification by the names
    (at a strength the data choose) rather than towards "no opinion"; ``s = 0`` is the plain head, so on names that
    say nothing the fit can fall back to it. Still convex (the logits are linear in ``s``, ``D`` and the bias).

    Convex: full-batch L-BFGS on one torch thread reaches the optimum in a few dozen steps on 10^4 rows."""
    if class_weight not in CLASS_WEIGHTS:
        raise ConfigError(f"class_weight must be None or 'balanced', got {class_weight!r}")
    import torch

    link = link_for(multi_label)
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        T = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        W = torch.from_numpy(np.asarray(weights, dtype=np.float32))
        W = W / W.sum().clamp_min(1e-8)
        k = T.shape[1]
        cw = None
        if class_weight == "balanced":  # per-class factors; their weighted sum over the rows stays 1
            a, b_ = balanced_class_weights(targets, weights, multi_label=multi_label)
            cw = (torch.from_numpy(a), None if b_ is None else torch.from_numpy(b_))
        w = torch.zeros(k, Xt.shape[1], requires_grad=True)
        b = torch.zeros(k, requires_grad=True)
        scale = torch.zeros(1, requires_grad=True)
        A = None if prior is None else torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32))
        Z0 = None if A is None else Xt @ A.T  # the zero-shot scores, computed once
        # With two classes the softmax's two rows carry half the class-score difference each (w1 = -w0 at the
        # optimum), so |w0|^2 + |w1|^2 is half the |w1 - w0|^2 scikit-learn's binary logistic regression
        # penalises: doubling the penalty makes the head that model at the same C (as with more classes, where
        # both fit one row per class). Without it a binary probe was scikit-learn's at 2 C, and the safety net's
        # reference, "logistic regression on your gold", fell 1.2-2.1 points below that baseline on some draws.
        l2 = l2 * (2.0 if k == 2 and not multi_label else 1.0)
        opt = torch.optim.LBFGS([w, b] + ([scale] if A is not None else []), lr=1.0, max_iter=max_iter,
                                history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-7, tolerance_change=1e-10)

        def closure():
            opt.zero_grad()
            z = Xt @ w.T + b if Z0 is None else Xt @ w.T + b + scale * Z0
            per = link.per_row(z, T) if cw is None else link.per_row_balanced(z, T, cw)
            loss = (per * W).sum() + 0.5 * l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        weight = w.detach() if A is None else w.detach() + scale.detach() * A
        return weight.numpy().copy(), b.detach().numpy().copy()
    finally:
        torch.set_num_threads(saved)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ProbeStudent(Student):
    """Frozen sentence embeddings (``embedder``: ``minilm`` or a sentence-transformers folder, e.g. a tuned
    encoder) + a linear head; ``C`` is scikit-learn's inverse regularisation strength (``"auto"``: 1 when
    multi-label, else 10), ``class_weight`` None or ``"balanced"`` (``"auto"``: balanced when multi-label, else
    None; module docstring). ``anchors``: one text per class (``name: description``, as the tuned encoder's
    anchors), whose embeddings the head is shrunk towards (:func:`fit_linear_head`'s ``prior``): the safety net's ``anchored``
    candidate, for gold too small for logistic regression to learn what the names already say. The saved head
    holds the whole weight, so an anchored probe loads and serves like any other."""

    kind = "probe"

    def __init__(self, embedder: str = "minilm", *, C: float | str = "auto", max_iter: int = 200,
                 multi_label: bool = False, threshold: float = 0.5, seed: int = 0, progress: bool = False,
                 embedder_obj: Any = None, class_weight: str | None = "auto",
                 anchors: list[str] | None = None) -> None:
        if C == "auto":
            C = 1.0 if multi_label else 10.0
        if isinstance(C, str) or C <= 0:
            raise ConfigError(f"C must be > 0, got {C}")
        if class_weight == "auto":
            class_weight = "balanced" if multi_label else None
        if class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"class_weight must be None, 'balanced' or 'auto', got {class_weight!r}")
        self.class_weight = class_weight
        super().__init__(epochs=1, batch_size=1, lr=1.0, weight_decay=0.0, seed=seed, multi_label=multi_label,
                         threshold=threshold, patience=1, progress=progress)
        self.embedder, self.C, self.max_iter = embedder, float(C), int(max_iter)
        self.anchors = None if anchors is None else [str(a) for a in anchors]
        self._emb = embedder_obj  # an already-loaded embedder (shared with the run); else loaded on first use

    def _encoder(self):
        if self._emb is None:
            from ..embed import load_embedder

            self._emb = load_embedder(self.embedder)
        return self._emb

    def features(self, texts: list[str]) -> np.ndarray:
        return _unit(self._encoder().encode(list(texts), progress=self.progress))

    def _fit(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev) -> None:
        self.fit_features(self.features(texts), targets, weights)

    def fit_features(self, X: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> "ProbeStudent":
        """The head alone, on embeddings already computed (``features``): the safety net embeds each text
        once and fits many heads."""
        n_eff = float(weights.sum() ** 2 / max((weights ** 2).sum(), 1e-12))
        self.weight_, self.bias_ = fit_linear_head(X, targets, weights, 1.0 / (self.C * max(n_eff, 1.0)),
                                                   multi_label=self.multi_label, max_iter=self.max_iter,
                                                   seed=self.seed, class_weight=self.class_weight,
                                                   prior=self._prior())
        self.history_ = [{"epoch": 1}]
        self.best_epoch_ = 1
        return self

    def _prior(self) -> np.ndarray | None:
        if self.anchors is None:
            return None
        if len(self.anchors) != len(self.classes_):
            raise ConfigError(f"{len(self.anchors)} anchor texts for {len(self.classes_)} classes")
        if getattr(self, "_prior_", None) is None:  # embedded once, however many heads are fitted
            self._prior_ = self.features(self.anchors)
        return self._prior_

    def logits_from_features(self, X: np.ndarray) -> np.ndarray:
        return X @ self.weight_.T + self.bias_

    def _logits(self, texts: list[str]) -> np.ndarray:
        return self.logits_from_features(self.features(texts))

    def _set_state(self, state) -> None:  # no epochs to choose between
        pass

    # ------------------------------------------------------------------ save / load

    def _encoder_folder(self) -> Path:
        if self.embedder in ("minilm", "all-MiniLM-L6-v2"):
            from ..embed.embedders import minilm_path

            return minilm_path()
        path = Path(self.embedder).expanduser()
        if not (path / "config.json").exists():
            raise ConfigError(f"probe encoder {self.embedder!r} is not a local sentence-transformers folder",
                              hint="use 'minilm' (bundled) or a folder saved by sentence-transformers")
        return path

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "format_version": 1, "classes": list(self.classes_),
                "multi_label": self.multi_label, "threshold": self.threshold, "embedder": str(self.embedder),
                "C": self.C, "class_weight": self.class_weight, "seed": self.seed, "anchors": self.anchors}

    def _write(self, folder: Path) -> None:
        """The folder's files (``Student.save`` writes them whole into a temporary sibling and swaps it in)."""
        from safetensors.numpy import save_file

        from ..embed.embedders import NOT_MODEL, UNREAD

        enc = folder / "encoder"
        if enc.exists():
            shutil.rmtree(enc)
        # a tuned encoder's folder also holds its two halves (cross-fitting only): not part of the model
        shutil.copytree(self._encoder_folder(), enc, ignore=shutil.ignore_patterns(*UNREAD, *NOT_MODEL))
        save_file({"weight": np.ascontiguousarray(self.weight_, np.float32),
                   "bias": np.ascontiguousarray(self.bias_, np.float32)}, str(folder / "head.safetensors"))
        (folder / STUDENT_FILE).write_text(json.dumps(self._config(), indent=2) + "\n", encoding="utf-8")
        (folder / "predict.py").write_text(PREDICT_PY, encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> "ProbeStudent":
        from safetensors.numpy import load_file

        folder = Path(folder)
        cfg = json.loads((folder / STUDENT_FILE).read_text(encoding="utf-8"))
        head = load_file(str(folder / "head.safetensors"))
        w, b = head["weight"], head["bias"]
        classes = list(cfg["classes"])
        if w.ndim != 2 or w.shape[0] != len(classes) or b.shape != (len(classes),):
            raise ValueError(f"head.safetensors has {w.shape[0]} classes, llmlabel_student.json {len(classes)}")
        self = cls(str(folder / "encoder"), C=float(cfg.get("C", 10.0)), multi_label=bool(cfg["multi_label"]),
                   threshold=cfg.get("threshold", 0.5), seed=int(cfg.get("seed", 0)),
                   class_weight=cfg.get("class_weight"), anchors=cfg.get("anchors"))  # no key: unweighted
        self.classes_, self.weight_, self.bias_ = classes, w, b
        self.n_outputs_ = int(b.shape[0])
        return self
