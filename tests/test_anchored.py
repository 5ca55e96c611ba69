"""The anchored probe (issue 24): logistic regression on frozen embeddings whose head is shrunk towards the
embeddings of the label texts, for gold too small to learn what the label names already say. Real texts: the
bundled Banking77 sample (77 intents, every row with its true intent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmlabel.distill.anchors import anchors_for
from llmlabel.distill.probe import ProbeStudent, fit_linear_head

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl"


def _accuracy(anchors, texts, y, gold, rest, classes) -> float:
    st = ProbeStudent(anchors=anchors)
    st.fit([texts[i] for i in gold], proba=np.eye(len(classes), dtype=np.float32)[y[gold]], classes=classes)
    return float(np.mean(st.predict_proba([texts[i] for i in rest]).argmax(1) == y[rest]))


@pytest.mark.parametrize("seed", [0])
def test_with_one_gold_row_an_intent_the_names_carry_the_rest_and_wrong_names_cost_little(seed):
    rows = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]
    classes = sorted({r["category"] for r in rows})
    texts = [r["text"] for r in rows]
    y = np.array([classes.index(r["category"]) for r in rows])
    rng = np.random.default_rng(seed)
    gold = np.array([rng.choice(np.flatnonzero(y == c)) for c in range(len(classes))])
    rest = np.setdiff1d(np.arange(len(rows)), gold)
    names = [c.replace("_", " ") for c in classes]
    plain = _accuracy(None, texts, y, gold, rest, classes)
    anchored = _accuracy(names, texts, y, gold, rest, classes)
    assert anchored > plain + 0.05, (plain, anchored)  # one row per intent: the names add what it cannot show
    # names attached to the wrong classes: the fitted scale on the prior goes to ~0 and the plain fit remains
    wrong = _accuracy(list(np.roll(names, 1)), texts, y, gold, rest, classes)
    assert wrong > plain - 0.05, (plain, wrong)


def test_a_zero_prior_is_the_plain_head_and_the_saved_head_holds_the_whole_weight(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = (X[:, 0] > 0).astype(int)
    T, w = np.eye(2, dtype=np.float32)[y], np.ones(60, np.float32)
    W0, b0 = fit_linear_head(X, T, w, 0.01)
    W1, b1 = fit_linear_head(X, T, w, 0.01, prior=np.zeros((2, 8), np.float32))
    np.testing.assert_allclose(W1, W0, atol=1e-4)
    np.testing.assert_allclose(b1, b0, atol=1e-4)
    # a prior pointing the right way is followed: less of the weight has to be paid for by the penalty
    prior = np.zeros((2, 8), np.float32)
    prior[1, 0], prior[0, 0] = 1.0, -1.0
    W2, _ = fit_linear_head(X, T, w, 1.0, prior=prior)
    W3, _ = fit_linear_head(X, T, w, 1.0)
    assert (W2[1, 0] - W2[0, 0]) > (W3[1, 0] - W3[0, 0])


def test_the_label_texts_come_from_the_labeled_files_metadata_when_they_match_its_classes():
    classes = ["billing", "delivery"]
    assert anchors_for(classes, {"label_texts": ["billing: invoices", "delivery"]}) == ["billing: invoices",
                                                                                         "delivery"]
    assert anchors_for(classes, {"label_texts": ["delivery", "billing"]}) == classes  # reordered since: names
    assert anchors_for(classes, {"label_texts": ["billing"]}) == classes  # another number of classes
    assert anchors_for(classes, None) == classes


def test_with_one_gold_row_an_intent_the_net_ships_the_anchored_probe_and_the_card_says_so(tmp_path):
    """One gold row of each of 20 intents and weak labels that carry nothing: out-of-fold, logistic regression on
    the gold never sees the held-out row's intent, the anchored probe reads it from the names; the net ships the
    anchored probe (the shuffled weak rows at some weight: with 20 rows out-of-fold cannot tell), which beats the
    plain probe on the gold on the rows no one labeled."""
    from test_safety_net import _write_run, sample_rows

    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student

    classes = sorted({r["category"] for r in sample_rows(None)})[:20]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    rng = np.random.default_rng(0)
    gold = np.sort([rng.choice(np.flatnonzero(true == c)) for c in range(len(classes))])
    path, true = _write_run(tmp_path, rng.permutation(true), rows, gold, classes)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    net = res.metrics["safety_net"]
    assert net["chosen"]["student"] == "anchored", net["verdict"]
    rest = np.setdiff1d(np.arange(len(rows)), gold)
    texts = [r["text"] for r in rows]
    shipped = np.mean(load_student(tmp_path / "model").predict_proba([texts[i] for i in rest]).argmax(1) == true[rest])
    assert shipped > _accuracy(None, texts, true, gold, rest, classes) + 0.05
    card = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert "anchored probe" in card and net["verdict"] in card


def test_distill_student_anchored_without_gold_reads_the_label_texts_from_the_labeled_file(tmp_path):
    """`llmlabel distill --student anchored` on a labeled file with no safety net: the anchors come from its
    metadata, and what is saved is a probe that says so in its config."""
    from llmlabel.artifacts.labeled import write_labeled
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student

    rows = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()][:300]
    classes = sorted({r["category"] for r in rows})
    y = np.array([classes.index(r["category"]) for r in rows])
    texts = [f"{c}: a customer message about {c.replace('_', ' ')}" for c in classes]
    path = tmp_path / "labeled.parquet"
    write_labeled(path, ids=[str(i) for i in range(len(rows))], classes=classes,
                  proba=np.eye(len(classes), dtype=np.float32)[y], texts=[r["text"] for r in rows],
                  meta={"label_texts": texts})
    distill(path, tmp_path / "model", student="anchored", min_per_class=1)
    model = load_student(tmp_path / "model")
    assert model.anchors == texts and model.kind == "probe"
    assert "anchored probe" in (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
