"""``bias-dev`` (labelmodel/classbias.py): the no-gold default shifted by one bias per class fitted on the dev set."""

import numpy as np
import pytest

from llmlabel.errors import ConfigError
from llmlabel.labelmodel import DEFAULT_CANDIDATES, make_model, select_label_model
from llmlabel.labelmodel.classbias import ClassBias, fit_class_bias


def _skewed_votes(n: int, seed: int):
    """Three classes, 20/60/20; eight LFs right 55% of the time and otherwise voting class 0: majority vote
    (and any model that reads only the votes) over-labels class 0, which the dev labels show."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, size=n, p=[0.2, 0.6, 0.2])
    right = rng.random((n, 8)) < 0.55
    L = np.where(right, y[:, None], 0)
    L[rng.random((n, 8)) < 0.5] = -1
    return L, y


def test_fit_class_bias_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    logp = np.log(rng.dirichlet(np.ones(4), size=20_000))
    b = np.array([0.8, -0.5, 0.0, -0.3])
    z = logp + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = (p.cumsum(1) > rng.random((len(p), 1))).argmax(1)
    got = fit_class_bias(logp, y, penalty=1.0)
    # The loss is invariant to adding a constant to every class; the penalty picks the zero-mean solution.
    assert np.allclose(got - got.mean(), b - b.mean(), atol=0.08)


def test_the_penalty_keeps_a_few_dev_rows_from_moving_it_far():
    logp = np.log(np.full((4, 3), 1 / 3))
    few = fit_class_bias(logp, np.array([1, 1, 1, 1]), penalty=1.0)
    many = fit_class_bias(np.repeat(logp, 100, axis=0), np.ones(400, int), penalty=1.0)
    assert 0 < few[1] - few[0] < many[1] - many[0]


def test_select_takes_it_when_the_votes_over_label_a_class_and_it_labels_better():
    L, y = _skewed_votes(6000, seed=1)
    train, dev, test = slice(0, 4000), slice(4000, 4150), slice(4150, None)
    default = make_model("heldout", 3).fit(L[train])
    # Dawid-Skene models this noise exactly; the comparison here is with the default alone.
    chosen = select_label_model(L[train], L[dev], y[dev], ("heldout", "bias-dev"), cardinality=3)
    assert chosen.report_["chosen"] == "bias-dev"
    acc_default = (default.predict(L[test]) == y[test]).mean()
    acc_chosen = (chosen.predict(L[test]) == y[test]).mean()
    assert acc_chosen > acc_default + 0.05
    # It shifts towards the class the votes under-label; it does not collapse onto it.
    pred = chosen.predict(L[test])
    assert 0.05 < (pred == 0).mean() < (default.predict(L[test]) == 0).mean()


def test_it_is_a_default_candidate_and_needs_a_dev_set():
    assert "bias-dev" in DEFAULT_CANDIDATES
    L, _ = _skewed_votes(200, seed=2)
    with pytest.raises(ConfigError, match="dev set"):
        ClassBias(3).fit(L)
    with pytest.raises(ConfigError, match="penalty"):
        ClassBias(3, penalty=0).fit(L, np.zeros(10, int), L[:10])


def test_rows_no_lf_voted_on_get_the_dev_class_shares():
    L, y = _skewed_votes(1000, seed=3)
    L[:50] = -1
    m = ClassBias(3).fit(L[100:], y[:100], L[:100])
    expect = (np.bincount(y[:100], minlength=3) + 1) / 103
    assert np.allclose(m.predict_proba(L[:50]), expect)


def test_by_macro_f1_a_one_class_labeler_does_not_replace_the_default():
    """By accuracy, a model that gives every item the commonest class wins on imbalanced dev rows; by macro-F1
    (``metric='macro_f1'``, ``aggregate --metric``) it does not, and a model better on both still wins."""
    from llmlabel.labelmodel.select import _choose

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)                     # 80 / 20
    ref = np.where(rng.random(400) < 0.7, y, 1 - y)             # right 70% of the time on both classes
    better = np.where(rng.random(400) < 0.9, y, 1 - y)
    eye = np.eye(2)
    probas = {"heldout": eye[ref] * 0.8 + 0.1, "one-class": np.tile([0.9, 0.1], (400, 1)),
              "better": eye[better] * 0.8 + 0.1}

    def rows():
        return [{"name": n, "dev_log_loss_calibrated_cv": 0.5, "dev_accuracy": float((p.argmax(1) == y).mean()),
                 "dev_macro_f1": 0.0} for n, p in probas.items()]

    two = {n: p for n, p in probas.items() if n != "better"}
    r = [x for x in rows() if x["name"] != "better"]
    assert r[_choose(r, "accuracy", 400, two, y)]["name"] == "one-class"
    r = [x for x in rows() if x["name"] != "better"]
    assert r[_choose(r, "macro_f1", 400, two, y)]["name"] == "heldout"
    r = rows()
    assert r[_choose(r, "macro_f1", 400, probas, y)]["name"] == "better"


def test_aggregate_metric_flag_reaches_the_choice_and_a_bad_value_is_one_line(tmp_path, capsys):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from clirun import run_cli

    L, y = _skewed_votes(600, seed=4)

    def wrench(rows):  # WRENCH's JSON: id -> label, weak_labels, data
        return json.dumps({str(i): {"label": int(y[i]), "weak_labels": [int(v) for v in L[i]],
                                    "data": {"text": f"item {i}"}} for i in rows})

    votes, dev = tmp_path / "train.json", tmp_path / "valid.json"
    votes.write_text(wrench(range(100, 600)))
    dev.write_text(wrench(range(100)))
    tax = tmp_path / "taxonomy.yaml"
    tax.write_text("labels:\n" + "".join(f"  - {{id: c{j}, name: '{j}'}}\n" for j in range(3)))
    out = tmp_path / "labeled.parquet"
    assert run_cli("aggregate", votes, "-o", out, "-t", tax, "--dev", dev, "--metric", "macro_f1") == 0
    from llmlabel.artifacts.labeled import read_labeled

    meta = read_labeled(out).meta
    assert meta["label_model"]["metric"] == "macro_f1"
    capsys.readouterr()
    assert run_cli("aggregate", votes, "-o", tmp_path / "x.parquet", "-t", tax, "--metric", "f1") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "metric must be accuracy or macro_f1" in err, err


def test_top_label_calibration_leaves_tied_rows_tied():
    """A row the model leaves tied stays tied (predict breaks it at random, as the dev rows were scored);
    before, calibration raised the first tied class, so every tie went to class 0."""
    from llmlabel.labelmodel import TopLabelIsotonic

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=300)
    y = p.argmax(1)
    cal = TopLabelIsotonic().fit(p, y)
    tied = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [1 / 3, 1 / 3, 1 / 3]])
    assert np.allclose(cal.transform(tied), tied)
    assert (cal.transform(p).argmax(1) == p.argmax(1)).all()


@pytest.mark.parametrize("candidates", [("heldout", "bias-dev"), ("bias-dev",)])
def test_select_fits_the_default_under_it_once_and_scores_it_as_a_refit_would(candidates, monkeypatch):
    """bias-dev's base reads the training votes alone, so select_label_model fits it once (or takes the heldout
    candidate's) for every dev fold; its out-of-fold probabilities are those of a ClassBias fitted from scratch."""
    from llmlabel.labelmodel import select as sel
    from llmlabel.labelmodel.heldout import HeldOutSelect

    L, y = _skewed_votes(3000, seed=3)
    train, dev = slice(0, 2800), slice(2800, None)
    fits = []
    real = HeldOutSelect._fit
    monkeypatch.setattr(HeldOutSelect, "_fit", lambda self, *a: fits.append(1) or real(self, *a))
    chosen = select_label_model(L[train], L[dev], y[dev], candidates, cardinality=3)
    assert len(fits) == 1
    folds = sel._folds(200, 5, np.random.default_rng(0))
    want = np.empty((200, 3))
    for f in folds:
        rest = np.setdiff1d(np.arange(200), f)
        want[f] = ClassBias(3).fit(L[train], y[dev][rest], L[dev][rest]).predict_proba(L[dev][f])
    row = next(r for r in chosen.report_["candidates"] if r["name"] == "bias-dev")
    from llmlabel.labelmodel.calibrate import expected_accuracy

    assert row["dev_accuracy"] == pytest.approx(expected_accuracy(want, y[dev]))
    with pytest.raises(ConfigError, match="prefit"):
        ClassBias(3, prefit=True).fit(L[train], y[dev], L[dev])
