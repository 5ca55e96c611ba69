"""The two forms of a student's output (llmlabel/distill/link.py) against their definitions: softmax / argmax for
one class of k, a sigmoid and a threshold per label for label sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax

from llmlabel.distill.link import LABEL_SETS, ONE_OF_K, link_for


def test_each_form_turns_logits_into_its_probabilities_labels_and_scores():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 5)).astype(np.float32) * 3
    classes = list("abcde")
    p1 = ONE_OF_K.proba(z.copy())
    np.testing.assert_allclose(p1, softmax(z, axis=1), rtol=1e-5)
    assert ONE_OF_K.names(p1, classes, 0.5) == [classes[j] for j in z.argmax(1)]
    p2 = LABEL_SETS.proba(z.copy())
    np.testing.assert_allclose(p2, expit(z), rtol=1e-5)
    thr = np.array([0.1, 0.3, 0.5, 0.7, 0.9], np.float32)  # one threshold per label
    assert LABEL_SETS.names(p2, classes, thr) == [[c for c, q, t in zip(classes, row, thr) if q >= t] for row in p2]
    y = rng.integers(0, 5, 40)
    onehot = np.eye(5, dtype=np.float32)[y]
    assert (ONE_OF_K.gold(onehot) == y).all() and LABEL_SETS.gold(onehot) is onehot
    assert ONE_OF_K.agreement(p1, y, 0.5) == pytest.approx(np.mean(z.argmax(1) == y))
    sets = (rng.random((40, 5)) < 0.3).astype(np.float32)
    assert LABEL_SETS.agreement(p2, sets, thr) == pytest.approx(np.mean(((p2 >= thr) == sets.astype(bool)).all(1)))
    assert ONE_OF_K.counts(y, 5).tolist() == [int((y == j).sum()) for j in range(5)]
    assert LABEL_SETS.counts(sets, 5).tolist() == sets.sum(0).tolist()
    assert ONE_OF_K.label_sets(["a", "b"]) == [["a"], ["b"]]
    assert LABEL_SETS.label_sets([["a", "b"], "c", []]) == [["a", "b"], ["c"], []]
    assert link_for(False) is ONE_OF_K and link_for(True) is LABEL_SETS
    assert ONE_OF_K.pick_score(p1, y) == pytest.approx(np.mean(z.argmax(1) == y))
    from llmlabel.multilabel_metrics import best_thresholds, multilabel_f1

    best = multilabel_f1(sets, p2 >= best_thresholds(p2, sets, default=0.5))["macro_f1"]
    assert LABEL_SETS.pick_score(p2, sets) == pytest.approx(best)
    assert LABEL_SETS.pick_score(p2, sets) >= multilabel_f1(sets, p2 >= 0.5)["macro_f1"]  # thresholds chosen on it
    np.testing.assert_array_equal(ONE_OF_K.hard_targets(y, 5), onehot)
    assert LABEL_SETS.hard_targets(sets.astype(np.int8), 5).dtype == np.float32


@pytest.mark.parametrize("link", [ONE_OF_K, LABEL_SETS], ids=["one-of-k", "label-sets"])
def test_the_closed_form_gradient_is_the_autograd_of_the_loss(link):
    import torch

    rng = np.random.default_rng(1)
    z = torch.tensor(rng.normal(size=(30, 4)), dtype=torch.float32, requires_grad=True)
    T = rng.random((30, 4)).astype(np.float32)
    T = torch.from_numpy((T > 0.5).astype(np.float32) if link.multi_label else T / T.sum(1, keepdims=True))
    per = link.per_row(z, T)
    per.sum().backward()
    closed, g = link.loss_grad(z.detach(), T, T.sum(1, keepdim=True), True)
    np.testing.assert_allclose(closed.numpy(), per.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.numpy(), z.grad.numpy(), rtol=1e-4, atol=1e-6)
    # uniform class weights of 1 leave the loss as it is
    ones = (torch.ones(4), torch.ones(4) if link.multi_label else None)
    np.testing.assert_allclose(link.per_row_balanced(z.detach(), T, ones).numpy(), per.detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_each_form_reads_a_label_field_and_refuses_what_it_cannot_train_on(tmp_path):
    """The labeled-file reader's per-form steps: parsing a label field, names to arrays, the probability and
    class checks, each against what a user's file means in that form."""
    from llmlabel.errors import InputError

    index = {"a": 0, "b": 1, "c": 2}
    assert ONE_OF_K.parse(3) == "3" and ONE_OF_K.parse("b|c") == "b|c"  # one name, whatever it holds
    assert LABEL_SETS.parse("b| c||") == ["b", "c"] and LABEL_SETS.parse(np.array(["a", ""])) == ["a"]
    y = ONE_OF_K.label_array(["c", None, "a"], index, "f.jsonl")
    assert y.tolist() == [2, -1, 0]
    Y = LABEL_SETS.label_array([["c", "a"], None, []], index, "f.jsonl")
    assert Y.tolist() == [[1, 0, 1], [0, 0, 0], [0, 0, 0]]
    for link, raw in ((ONE_OF_K, ["d"]), (LABEL_SETS, [["a", "d"]])):
        with pytest.raises(InputError, match="'d' is not one of the file's classes"):
            link.label_array(raw, index, "f.jsonl")
    where = {"path": "f.jsonl", "line": 4}
    with pytest.raises(InputError, match="sum to 1.5"):
        ONE_OF_K.check_proba(np.array([0.5, 0.5, 0.5]), "proba", where)
    LABEL_SETS.check_proba(np.array([0.5, 0.5, 0.5]), "proba", where)  # independent per label
    P = np.array([[2.0, 1.0, 1.0], [1.0, 3.0, 0.0]])
    y = np.array([-1, 0])
    ONE_OF_K.complete(y, P)
    np.testing.assert_allclose(P, [[0.5, 0.25, 0.25], [0.25, 0.75, 0.0]])
    assert y.tolist() == [0, 0]  # the unlabeled row takes its most probable class; a labeled one keeps its own
    with pytest.raises(InputError, match="only one class"):
        ONE_OF_K.check_classes_used(np.array([0, 5, 0]), "f.jsonl")
    LABEL_SETS.check_classes_used(np.array([0, 5, 0]), "f.jsonl")  # one label can still be yes / no
