"""The probe student's class weighting: balanced per label by default when multi-label (a rare label is not fitted
to "never"), scikit-learn's meaning, kept in the saved folder; single-label probes unchanged (unweighted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlabel.distill.probe import ProbeStudent, balanced_class_weights, fit_linear_head
from llmlabel.errors import ConfigError


def _rare_label_problem(n: int = 600, seed: int = 0):
    """Three labels on unit-length 16-d "embeddings": two common, one with ~3% positives whose signal is weak
    next to the noise, so an unweighted head's probabilities for it stay under 0.5."""
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, 3)) < np.array([0.4, 0.3, 0.03])).astype(np.float32)
    X = rng.normal(size=(n, 16)).astype(np.float32)
    X[:, :3] += 1.2 * Y
    return X / np.linalg.norm(X, axis=1, keepdims=True), Y


def _fitted(X, Y, class_weight):
    st = ProbeStudent(multi_label=True, class_weight=class_weight, seed=0)
    st.classes_ = ["a", "b", "rare"]
    return st.fit_features(X, Y, np.ones(len(Y), np.float32))


def _recall(st, X, Y, j):
    p = 1.0 / (1.0 + np.exp(-st.logits_from_features(X)))
    return float(((p[:, j] >= 0.5) & (Y[:, j] == 1)).sum() / Y[:, j].sum())


def test_multi_label_default_is_balanced_and_lifts_a_rare_label():
    X, Y = _rare_label_problem()
    Xt, Yt = _rare_label_problem(seed=1)  # held-out rows of the same problem
    assert 5 <= Y[:, 2].sum() <= 40
    default, plain = _fitted(X, Y, "auto"), _fitted(X, Y, None)
    assert default.class_weight == "balanced" and plain.class_weight is None
    rare_bal, rare_plain = _recall(default, Xt, Yt, 2), _recall(plain, Xt, Yt, 2)
    assert rare_plain <= 0.2  # unweighted, the rare label almost never reaches 0.5
    assert rare_bal >= rare_plain + 0.3, (rare_bal, rare_plain)


def test_balanced_head_is_scikit_learns_balanced_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    X, Y = _rare_label_problem(n=300)
    C = 2.0
    w, b = fit_linear_head(X, Y, np.ones(len(Y), np.float32), 1.0 / (C * len(Y)), multi_label=True,
                           class_weight="balanced")
    for j in range(Y.shape[1]):
        m = LogisticRegression(C=C, class_weight="balanced", max_iter=5000, tol=1e-10).fit(X, Y[:, j])
        np.testing.assert_allclose(w[j], m.coef_[0], atol=2e-3)
        assert b[j] == pytest.approx(m.intercept_[0], abs=2e-3)


def test_a_multi_label_probe_on_the_gold_is_the_one_vs_rest_baseline():
    """The safety net's multi-label reference must be the baseline a user fits: scikit-learn's
    ``LogisticRegression(class_weight="balanced")`` with its default C per label."""
    from sklearn.linear_model import LogisticRegression

    from llmlabel.distill.probe import ProbeStudent

    X, Y = _rare_label_problem(n=300)
    st = ProbeStudent(multi_label=True).fit_features(X, Y.astype(np.float32), np.ones(len(Y), np.float32))
    assert (st.C, st.class_weight) == (1.0, "balanced")
    assert ProbeStudent().C == 10.0 and ProbeStudent().class_weight is None  # single-label: as the suite measured
    for j in range(Y.shape[1]):
        m = LogisticRegression(class_weight="balanced", max_iter=5000, tol=1e-10).fit(X, Y[:, j])
        np.testing.assert_allclose(st.weight_[j], m.coef_[0], atol=2e-3)


def test_balanced_weights_from_weighted_soft_targets():
    T = np.array([[1.0, 0.5], [0.0, 0.5], [0.0, 0.0], [0.0, 0.0]], np.float32)
    w = np.array([2.0, 1.0, 1.0, 0.0], np.float32)  # n = 4; label 0: 2 positive, 2 negative mass
    pos, neg = balanced_class_weights(T, w, multi_label=True)
    np.testing.assert_allclose(pos, [4 / (2 * 2), 4 / (2 * 1.5)])
    np.testing.assert_allclose(neg, [4 / (2 * 2), 4 / (2 * 2.5)])
    per_class, none = balanced_class_weights(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32),
                                             np.ones(3, np.float32), multi_label=False)
    assert none is None  # two classes present (k' = 2), the absent one weighs 1
    np.testing.assert_allclose(per_class, [3 / (2 * 2), 3 / (2 * 1), 1.0])


def test_single_label_default_is_unweighted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = np.r_[np.zeros(180, int), np.ones(20, int)]
    X[:, 0] += 0.8 * y
    T = np.eye(2, dtype=np.float32)[y]
    w = rng.uniform(0.2, 1.0, 200).astype(np.float32)
    st = ProbeStudent(seed=5)
    assert st.class_weight is None
    st.classes_ = ["x", "y"]
    st.fit_features(X, T, w)
    n_eff = float(w.sum() ** 2 / (w ** 2).sum())
    ref_w, ref_b = fit_linear_head(X, T, w, 1.0 / (st.C * n_eff), seed=5)
    np.testing.assert_array_equal(st.weight_, ref_w)
    np.testing.assert_array_equal(st.bias_, ref_b)
    bal_w, _ = fit_linear_head(X, T, w, 1.0 / (st.C * n_eff), seed=5, class_weight="balanced")
    assert not np.allclose(bal_w, ref_w)  # the weighting is a real change, so "unweighted" above means something


def test_class_weight_round_trips_through_the_folder(tmp_path):
    X, Y = _rare_label_problem(n=120)
    st = _fitted(X, Y, "balanced")
    # the folder's encoder is copied from the probe's encoder folder: a stand-in, no model download
    enc = tmp_path / "enc"
    enc.mkdir()
    (enc / "config.json").write_text("{}", encoding="utf-8")
    st.embedder = str(enc)
    st.save(tmp_path / "model")
    cfg = json.loads((tmp_path / "model" / "llmlabel_student.json").read_text(encoding="utf-8"))
    assert cfg["class_weight"] == "balanced"
    back = ProbeStudent.load(tmp_path / "model")
    assert back.class_weight == "balanced" and back.multi_label
    np.testing.assert_array_equal(back.weight_, st.weight_)
    # a folder written before the key existed was trained unweighted, and loads so
    del cfg["class_weight"]
    (tmp_path / "model" / "llmlabel_student.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert ProbeStudent.load(tmp_path / "model").class_weight is None


def test_unknown_class_weight_is_refused():
    with pytest.raises(ConfigError, match="class_weight"):
        ProbeStudent(class_weight="inverse")
    with pytest.raises(ConfigError, match="class_weight"):
        fit_linear_head(np.zeros((2, 2), np.float32), np.eye(2, dtype=np.float32), np.ones(2), 0.1,
                        class_weight="inverse")


@pytest.mark.parametrize("k", [2, 3])
def test_a_single_label_probe_on_the_gold_is_scikit_learns_logistic_regression_at_the_same_c(k):
    """The safety net's reference is "logistic regression on your gold": for two classes too, where scikit-learn
    fits one weight vector and the softmax head two (each half the difference: the penalty is doubled there)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(k)
    y = np.arange(90) % k
    X = rng.normal(size=(90, 12)).astype(np.float32)
    X[np.arange(90), y] += 1.0
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    st = ProbeStudent(seed=0)
    st.classes_ = [str(j) for j in range(k)]
    st.fit_features(X, np.eye(k, dtype=np.float32)[y], np.ones(90, np.float32))
    m = LogisticRegression(C=st.C, max_iter=5000, tol=1e-10).fit(X, y)
    ours = st.logits_from_features(X)
    theirs = m.decision_function(X)
    if k == 2:  # one score per row: the difference of the two class scores
        np.testing.assert_allclose(ours[:, 1] - ours[:, 0], theirs, atol=2e-3)
    else:  # one score per class, each up to a shift the softmax ignores
        np.testing.assert_allclose(ours - ours.mean(1, keepdims=True), theirs - theirs.mean(1, keepdims=True),
                                   atol=2e-3)
