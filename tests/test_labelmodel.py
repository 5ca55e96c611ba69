"""Label models: the properties users rely on, on small synthetic and real (WRENCH) vote matrices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlabel.errors import ConfigError, InputError
from llmlabel.labelmodel import (ABSTAIN, CalibratedLabelModel, DawidSkene, HeldOutSelect, LFAnalysis, MajorityVote,
                                 OneCoinDawidSkene, TemperatureScaling, TopLabelIsotonic, WeightedVote,
                                 expected_accuracy, expected_calibration_error, load_wrench, review_queue,
                                 select_label_model, to_label_studio, write_csv, write_jsonl,
                                 write_label_studio)
from llmlabel.labelmodel.rowops import dedup_rows

MODELS = [MajorityVote, WeightedVote, DawidSkene, OneCoinDawidSkene,
          lambda **kw: DawidSkene(abstain="missing", **kw)]


def synth(n=4000, m=8, k=3, seed=0, coverage=0.7):
    """Conditionally independent LFs with known accuracies; wrong votes spread evenly over other classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    acc = rng.uniform(0.35, 0.9, m)
    right = rng.random((n, m)) < acc
    wrong = (y[:, None] + rng.integers(1, k, (n, m))) % k
    L = np.where(right, y[:, None], wrong)
    L[rng.random((n, m)) > coverage] = ABSTAIN
    return L.astype(np.int32), y, acc


def wrench(eval_data, name):
    root = eval_data / "wrench" / name
    return {s: load_wrench(root / f"{s}.json") for s in ("train", "valid", "test")}


def wrench_accuracy(model, L, y):
    """Expected accuracy under the WRENCH protocol: ties and rows no LF covers broken at random."""
    proba = model.predict_proba(L)
    proba[~model.covered_mask(L)] = 1.0 / proba.shape[1]
    return expected_accuracy(proba, y)


# --- real data -------------------------------------------------------------------------------------------
def test_load_wrench_format(eval_data):
    L, y, texts, ids = load_wrench(eval_data / "wrench" / "youtube" / "train.json", return_ids=True)
    assert L.shape == (1686, 10) and y.shape == (1686,) and len(texts) == len(ids) == 1686
    assert L.min() == -1 and L.max() == 1 and set(np.unique(y)) == {0, 1}
    assert isinstance(texts[0], str) and ids[0] == "0"


def test_abstention_models_beat_majority_vote_on_youtube(eval_data):
    d = wrench(eval_data, "youtube")
    (Lt, _, _), (Ls, ys, _) = d["train"], d["test"]
    mv = wrench_accuracy(MajorityVote().fit(Lt), Ls, ys)
    textbook = wrench_accuracy(DawidSkene(abstain="missing").fit(Lt), Ls, ys)
    for model in (DawidSkene(), OneCoinDawidSkene()):
        assert wrench_accuracy(model.fit(Lt), Ls, ys) > mv + 0.01
    # Abstains treated as missing collapse on unipolar LFs (the anchor: 0.528).
    assert textbook < 0.6


def test_calibration_lowers_ece_on_held_out_real_data(eval_data):
    d = wrench(eval_data, "youtube")
    (Lt, _, _), (Lv, yv, _), (Ls, ys, _) = d["train"], d["valid"], d["test"]
    for model in (MajorityVote().fit(Lt), DawidSkene().fit(Lt)):
        raw = model.predict_proba(Ls)
        for cal in (TemperatureScaling(), TopLabelIsotonic()):
            cal.fit(model.predict_proba(Lv), yv)  # fitted on valid, judged on test
            assert expected_calibration_error(cal.transform(raw), ys) < expected_calibration_error(raw, ys)


def test_select_label_model_reports_and_matches_best_anchor_on_youtube(eval_data):
    d = wrench(eval_data, "youtube")
    (Lt, _, _), (Lv, yv, _), (Ls, ys, _) = d["train"], d["valid"], d["test"]
    model = select_label_model(Lt, Lv, yv)
    rep = model.report_
    assert rep["chosen"] in {c["name"] for c in rep["candidates"]} and rep["reason"]
    assert all({"dev_accuracy", "dev_log_loss", "calibration"} <= set(c) for c in rep["candidates"])
    assert wrench_accuracy(model, Ls, ys) >= 0.83  # Snorkel 0.10 anchor: 0.840, majority vote 0.812
    np.testing.assert_allclose(model.predict_proba(Ls).sum(axis=1), 1.0)
    default = select_label_model(Lt)
    assert "no dev set" in default.report_["reason"]


def test_review_queue_top_ranks_are_enriched_for_errors(eval_data):
    d = wrench(eval_data, "youtube")
    (Lt, _, _), (Ls, ys, texts) = d["train"], d["test"]
    proba = DawidSkene().fit(Lt).predict_proba(Ls)
    rows = review_queue(proba, Ls, texts=texts)
    wrong = proba.argmax(axis=1) != ys
    top = [r["index"] for r in rows[: len(rows) // 10]]
    assert wrong[top].mean() >= 2 * wrong.mean()
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


# --- synthetic: known truth --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene])
def test_em_recovers_lf_accuracies_and_beats_majority(cls):
    L, y, acc = synth()
    model = cls().fit(L)
    np.testing.assert_allclose(model.lf_accuracy_, acc, atol=0.05)
    assert (model.predict(L) == y).mean() > (MajorityVote().fit(L).predict(L) == y).mean() + 0.05


def test_semi_supervised_dev_rows_and_weighted_vote_from_dev():
    L, y, acc = synth(seed=1)
    dev = slice(0, 300)
    semi = DawidSkene().fit(L[300:], y_dev=y[dev], L_dev=L[dev])
    unsup = DawidSkene().fit(L[300:])
    mv = MajorityVote().fit(L[300:])
    acc_semi = (semi.predict(L[300:]) == y[300:]).mean()
    assert acc_semi > (mv.predict(L[300:]) == y[300:]).mean() + 0.05
    assert acc_semi > (unsup.predict(L[300:]) == y[300:]).mean() - 0.02
    assert semi.n_iter_ >= 1 and np.isfinite(semi.log_likelihood_)
    wv = WeightedVote(weights="dev").fit(L[300:], y[dev], L[dev])
    assert np.corrcoef(wv.accuracy_, acc)[0, 1] > 0.9


@pytest.mark.parametrize("make", MODELS)
def test_proba_rows_sum_to_one_and_uncovered_rows_get_the_prior(make):
    L, _, _ = synth(n=600)
    L[:25] = ABSTAIN
    model = make(random_state=0).fit(L)
    proba = model.predict_proba(L)
    assert proba.shape == (600, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    cov = model.covered_mask(L)
    assert not cov[:25].any() and cov[25:].all()
    np.testing.assert_allclose(proba[:25], np.broadcast_to(model.class_prior_, (25, 3)))
    assert np.isclose(model.class_prior_.sum(), 1.0)
    pred = model.predict(L, uncovered="abstain")
    assert len(pred) == 600 and (pred[:25] == ABSTAIN).all()


def test_deterministic_under_random_state():
    L = np.array([[0, 1], [1, 0], [0, 1], [-1, -1], [0, -1]] * 40)
    a = MajorityVote(cardinality=2, random_state=3).fit(L)
    b = MajorityVote(cardinality=2, random_state=3).fit(L)
    assert (a.predict(L) == b.predict(L)).all()
    tied = a.predict(L, tie_break="abstain")
    assert (tied[np.all(L[:, :1] != L[:, 1:], axis=1) & (L >= 0).all(axis=1)] == ABSTAIN).all()
    Ls, _, _ = synth(n=500, seed=4)
    p1 = DawidSkene(random_state=0).fit(Ls).predict_proba(Ls)
    p2 = DawidSkene(random_state=0).fit(Ls).predict_proba(Ls)
    np.testing.assert_array_equal(p1, p2)


def test_soft_votes_match_hard_votes_when_one_hot_and_dense_equals_sparse():
    import scipy.sparse as sp

    L, y, _ = synth(n=800, m=5, k=3, seed=2)
    soft = np.zeros(L.shape + (3,))
    r, c = np.nonzero(L >= 0)
    soft[r, c, L[r, c]] = 1.0
    hard_p = DawidSkene().fit(L).predict_proba(L)
    soft_p = DawidSkene().fit(soft).predict_proba(soft)
    np.testing.assert_allclose(soft_p, hard_p, atol=1e-6)
    sparse = sp.csr_matrix(soft.reshape(800, -1))
    np.testing.assert_allclose(DawidSkene(cardinality=3).fit(sparse).predict_proba(sparse), hard_p, atol=1e-6)
    # Genuinely soft votes (an LLM's class distribution) give proper probabilities too.
    blurred = np.where(soft > 0, 0.8, 0.1) * (L >= 0)[..., None]
    hard_acc = (hard_p.argmax(axis=1) == y).mean()
    for cls in (MajorityVote, DawidSkene, OneCoinDawidSkene):
        p = cls().fit(blurred).predict_proba(blurred)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        if cls is not MajorityVote:  # EM must not drift to flat confusion rows on hedged votes
            assert (p.argmax(axis=1) == y).mean() > hard_acc - 0.03


def test_a_label_matrix_gives_its_votes_as_the_hard_view_and_its_probabilities_on_voted_cells_as_the_soft_one():
    """A LabelMatrix with stored class probabilities: the hard view is its votes (not the probabilities' argmax, which
    is no longer computed), the soft view its probabilities where the LF voted; an LF that kept none is one-hot."""
    from llmlabel.artifacts.matrix import LabelMatrix
    from llmlabel.labelmodel.base import as_votes

    rng = np.random.default_rng(0)
    V = rng.integers(-1, 3, size=(50, 3)).astype(np.int16)
    probs = {"p": rng.dirichlet(np.ones(3), size=int((V[:, 0] >= 0).sum()))}  # argmax often not the vote
    L = LabelMatrix(V, ["p", "q", "r"], labels=["a", "b", "c"], vote_probs=probs)
    v = as_votes(L)
    assert (v.hard == V).all()
    dense = v.soft.toarray().reshape(50, 3, 3)
    voted = V[:, 0] >= 0
    np.testing.assert_allclose(dense[voted, 0], probs["p"], rtol=2e-3)  # stored as float16
    assert not dense[~voted, 0].any()
    for j in (1, 2):  # no stored probabilities: the vote, one-hot
        r = np.flatnonzero(V[:, j] >= 0)
        assert (dense[r, j, V[r, j]] == 1).all() and dense[:, j].sum() == len(r)
    with pytest.raises(InputError, match="probs cover"):
        as_votes(type("Bad", (), {"votes": V, "probs": L.probs[:10], "lf_names": L.lf_names, "cardinality": 3})())


def test_a_label_matrix_builds_its_soft_votes_once_and_again_when_given_new_arrays():
    from llmlabel.artifacts.matrix import LabelMatrix

    V = np.array([[0, 1], [1, -1], [-1, 0]], np.int16)
    L = LabelMatrix(V, ["p", "q"], labels=["a", "b"], vote_probs={"p": np.array([[0.7, 0.3], [0.2, 0.8]])})
    first = L.probs
    assert L.probs is first  # every label model fitted on the matrix reads the same build
    L.vote_probs = {"p": np.array([[0.1, 0.9], [0.2, 0.8]])}
    assert L.probs is not first and L.probs[0, 1] == np.float32(0.9)
    L.votes = np.array([[1, 1], [1, -1], [-1, 0]], np.int16)
    assert L.probs[0, 3] == 1 and L.probs[0, 2] == 0


def test_collapsing_repeated_rows_is_exact():
    L, _, _ = synth(n=3000, m=4, k=2, seed=5, coverage=0.5)
    assert dedup_rows(L) is not None  # 3^4 patterns for 3000 rows
    fast = DawidSkene().fit(L)
    import llmlabel.labelmodel.dawid_skene as dsmod

    orig = dsmod.dedup_rows
    dsmod.dedup_rows = lambda hard: None
    try:
        slow = DawidSkene().fit(L)
    finally:
        dsmod.dedup_rows = orig
    np.testing.assert_allclose(fast.confusion_, slow.confusion_, atol=1e-8)
    np.testing.assert_allclose(fast.predict_proba(L), slow.predict_proba(L), atol=1e-8)


@pytest.mark.parametrize("make", [MajorityVote, lambda **kw: MajorityVote(class_balance="auto", ties="balanced", **kw),
                                  WeightedVote, DawidSkene, OneCoinDawidSkene,
                                  lambda **kw: CalibratedLabelModel(OneCoinDawidSkene(**kw), calibration="temperature"),
                                  HeldOutSelect])
@pytest.mark.parametrize("soft", [False, True])
def test_predict_in_row_blocks_equals_one_pass(monkeypatch, make, soft):
    """Row-wise models predict in blocks of rows (faster in cache); the rows' answers must not change, with
    repeated rows (found once over all rows), rows no LF covers, and a last block shorter than the rest."""
    import llmlabel.labelmodel.base as base

    L, y, _ = synth(n=2300, m=5, k=3, seed=11, coverage=0.4)
    L[:40] = ABSTAIN
    if soft:  # one confident soft LF vote per item where the LF voted; an abstain stays all-zero
        P = np.zeros(L.shape + (3,))
        P[L >= 0, :] = 0.1
        P[np.nonzero(L >= 0) + (L[L >= 0],)] = 0.8
        L = P
    model = make(cardinality=3)
    model = model.fit(L, y[:300], L[:300]) if isinstance(model, CalibratedLabelModel) else model.fit(L)
    monkeypatch.setattr(base, "PREDICT_BLOCK", 10**9)
    whole = model.predict_proba(L)
    monkeypatch.setattr(base, "PREDICT_BLOCK", 256)
    assert model._row_wise()
    np.testing.assert_allclose(model.predict_proba(L), whole, atol=1e-12)
    np.testing.assert_array_equal(model.predict(L), model.predict(L, proba=whole))


# --- bad input -------------------------------------------------------------------------------------------------
def test_bad_votes_name_the_lf_in_one_line():
    L = np.array([[0, 1, -1], [1, 7, 0]])
    with pytest.raises(ConfigError) as e:
        DawidSkene(cardinality=3).fit(L, lf_names=["kw_a", "kw_b", "llm"])
    msg = str(e.value)
    assert "'kw_b'" in msg and "7" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="column 0"):
        MajorityVote().fit(np.array([[-2, 0], [1, 0]]))
    with pytest.raises(InputError, match="integer"):
        MajorityVote().fit(np.array([[0.5, 1.0]]))
    with pytest.raises(InputError, match="empty"):
        MajorityVote().fit(np.zeros((0, 3), dtype=int))
    with pytest.raises(InputError, match="2-D"):
        MajorityVote().fit(np.array([0, 1, 1]))
    with pytest.raises(ConfigError, match="used twice"):
        MajorityVote().fit(np.array([[0, 1]]), lf_names=["a", "a"])
    model = MajorityVote().fit(np.array([[0, 1], [1, 1]]))
    with pytest.raises(InputError, match="fitted on 2"):
        model.predict_proba(np.array([[0, 1, 1]]))
    with pytest.raises(ConfigError, match="not a class id"):
        DawidSkene(cardinality=2).fit(np.array([[0, 1]]), y_dev=[5], L_dev=np.array([[0, 1]]))
    with pytest.raises(ConfigError, match="not fitted"):
        DawidSkene().predict(np.array([[0, 1]]))


def test_load_wrench_errors_are_typed(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_wrench(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0": {"label": 1, "weak_labels": [0, 1]}, "1": {"label": 0, "weak_labels": [0]}}))
    with pytest.raises(InputError, match="weak labels"):
        load_wrench(bad)


# --- analysis and exports --------------------------------------------------------------------------------------------
def test_lf_analysis_on_a_hand_checked_matrix():
    L = np.array([[0, 0, -1], [0, 1, -1], [-1, 1, 1], [-1, -1, -1]])
    y = np.array([0, 1, 1, 0])
    rows = LFAnalysis(L, y, lf_names=["a", "b", "c"]).rows()
    a, b, c = rows
    assert a["polarity"] == [0] and b["polarity"] == [0, 1] and c["polarity"] == [1]
    assert a["coverage"] == 0.5 and c["coverage"] == 0.25
    assert a["overlap"] == 0.5 and a["conflict"] == 0.25 and c["conflict"] == 0.0
    assert a["correct"] == 1 and a["incorrect"] == 1 and b["accuracy"] == 1.0
    assert a["confusion"] == [[1, 0], [1, 0]]
    summary = LFAnalysis(L).summary()
    assert summary["uncovered"] == 1 and summary["conflict"] == 0.25 and summary["unipolar_lfs"] == 2
    assert "accuracy" in LFAnalysis(L, y).table() and "accuracy" not in LFAnalysis(L).table()


def test_review_exports(tmp_path):
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    L = np.array([[0, 0], [0, 1], [1, -1]])
    student = np.array([[0.1, 0.9], [0.5, 0.5], [0.1, 0.9]])
    rows = review_queue(proba, L, student_proba=student, ids=np.array([10, 11, 12]), texts=["a", "b", "c"],
                        class_names=["ham", "spam"])
    assert rows[0]["id"] == 11 and {"self_confidence", "disagreement", "low_confidence"} <= set(rows[0])
    write_csv(rows, tmp_path / "q.csv")
    write_jsonl(rows, tmp_path / "q.jsonl")
    write_label_studio(rows, tmp_path / "ls.json")
    assert (tmp_path / "q.csv").read_text().splitlines()[0].startswith("rank,index,id")
    assert json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])["id"] == 11
    task = json.loads((tmp_path / "ls.json").read_text())[0]
    assert task["data"]["text"] == "b"
    assert task["predictions"][0]["result"][0]["value"]["choices"] == [rows[0]["label_name"]]
    assert to_label_studio(rows[:1])[0]["predictions"][0]["score"] == rows[0]["confidence"]


def test_calibrated_model_keeps_interface_and_argmax():
    L, y, _ = synth(n=1500, seed=6)
    base = MajorityVote().fit(L[:1000])
    cal = TopLabelIsotonic().fit(base.predict_proba(L[1000:1250]), y[1000:1250])
    model = CalibratedLabelModel(base, cal, prefit=True).fit(L[:1000])
    p = model.predict_proba(L[1250:])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    raw = base.predict_proba(L[1250:])
    clear = raw.max(axis=1) > np.sort(raw, axis=1)[:, -2] + 1e-9
    assert (p.argmax(axis=1)[clear] == raw.argmax(axis=1)[clear]).all()
    assert model.predict(L[1250:]).shape == (250,)


def test_accepts_a_label_matrix_like_object_and_its_abstains_win():
    from types import SimpleNamespace

    L, y, _ = synth(n=600, m=4, k=2, seed=7)
    probs = np.zeros(L.shape + (2,), dtype=np.float16)
    r, c = np.nonzero(L >= 0)
    probs[r, c, L[r, c]] = 0.9
    probs[r, c, 1 - L[r, c]] = 0.1
    probs[L < 0] = 0.5  # probabilities kept for votes the LF withheld must not count
    lm = SimpleNamespace(votes=L, probs=probs, lf_names=["w", "x", "y", "z"], cardinality=2)
    model = DawidSkene().fit(lm)
    assert model.lf_names_ == ["w", "x", "y", "z"]
    np.testing.assert_array_equal(model.covered_mask(lm), (L >= 0).any(axis=1))
    assert (model.predict(lm) == y).mean() > (MajorityVote().fit(L).predict(L) == y).mean() - 0.02


def _keyword_votes_with_a_silent_class(n: int, rng):
    """Two LFs that vote classes 0 and 1 (80% right) and never class 2, the class of most rows they miss:
    the "neutral" shape of GoEmotions, where no LF votes the commonest class."""
    y = rng.choice(3, n, p=[0.3, 0.3, 0.4])
    L = np.full((n, 2), -1)
    for j, c in enumerate((0, 1)):
        fire = (y == c) & (rng.random(n) < 0.8) | (y != c) & (y != 2) & (rng.random(n) < 0.1)
        L[fire, j] = c
    return L, y


def test_rows_no_lf_voted_on_get_the_dev_estimate_of_their_classes():
    rng = np.random.default_rng(4)
    L, y = _keyword_votes_with_a_silent_class(3000, rng)
    L_dev, y_dev = _keyword_votes_with_a_silent_class(300, rng)
    model = select_label_model(L, L_dev, y_dev, cardinality=3)
    unc = (L < 0).all(axis=1)
    n_unc_dev = int((L_dev < 0).all(axis=1).sum())
    assert model.report_["uncovered_prior_from_dev_rows"] == n_unc_dev > 50
    assert model.class_prior_.argmax() == 2 and model.class_prior_[2] > 0.7
    assert (model.predict(L)[unc] == 2).all()  # majority vote's own prior never names class 2
    assert MajorityVote(3).fit(L).class_prior_.argmax() != 2
    np.testing.assert_array_equal(model.predict(L)[~unc], model.base_.predict(L)[~unc])


def test_dev_choice_reads_only_the_rows_some_lf_voted_on():
    """A candidate worse on every voted dev row but right on the unvoted ones (it guesses their class) must not
    replace the no-dev default: what it guesses there is settled by the dev rows themselves, not by the model."""
    from llmlabel.labelmodel.select import _choose

    rng = np.random.default_rng(0)
    n, k = 400, 3
    y = rng.integers(0, k, n)
    covered = rng.random(n) < 0.5
    y[~covered] = 2
    good = np.eye(k)[np.where(rng.random(n) < 0.8, y, (y + 1) % k)]
    good[~covered] = np.eye(k)[0]
    guess = np.eye(k)[np.where(rng.random(n) < 0.6, y, (y + 1) % k)]
    guess[~covered] = np.eye(k)[2]
    rows = [{"name": "heldout", "dev_accuracy": float(np.mean(good.argmax(1) == y)), "dev_log_loss_calibrated_cv": 1.0},
            {"name": "wv-dev", "dev_accuracy": float(np.mean(guess.argmax(1) == y)), "dev_log_loss_calibrated_cv": 1.0}]
    probas = {"heldout": good, "wv-dev": guess}
    assert rows[1]["dev_accuracy"] > rows[0]["dev_accuracy"] + 0.2  # on every dev row the guesser looks far better
    assert rows[_choose([dict(r) for r in rows], "accuracy", n, probas, y)]["name"] == "wv-dev"
    assert rows[_choose([dict(r) for r in rows], "accuracy", n, probas, y, covered=covered)]["name"] == "heldout"


def test_one_dev_row_skips_the_candidates_that_learn_from_it():
    """A model fitted on the dev labels is scored out-of-fold, which one dev row cannot do (cross-fitting on a
    gold set of two rows gives each fold one): those candidates are skipped with the reason, not a crash."""
    rng = np.random.default_rng(1)
    L, y = _keyword_votes_with_a_silent_class(300, rng)
    covered = np.flatnonzero((L >= 0).any(axis=1))[:1]
    model = select_label_model(L, L[covered], y[covered], cardinality=3)
    skipped = model.report_["skipped"]
    assert {"ds-dev", "onecoin-dev", "wv-dev"} <= set(skipped)
    assert "1 dev row" in skipped["wv-dev"]
    assert model.predict(L).shape == (300,)
