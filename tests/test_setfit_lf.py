"""``kind: setfit``: SetFit fine-tuned on the gold, cross-fitted, on the bundled MiniLM body (a real encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from llmlabel.errors import ConfigError
from llmlabel.lf.gold import GoldSet
from llmlabel.lf.spec import LFSpecFile, build_lfs

from test_knn import LABELS, _tax

pytest.importorskip("setfit")

GOLD = [("r1", "I want my money back for this order", 0), ("r2", "please refund the payment", 0),
        ("r3", "can I get a refund", 0), ("r4", "return the money to my account", 0),
        ("l1", "my card was stolen yesterday", 1), ("l2", "I lost my bank card", 1),
        ("l3", "someone took my card", 1), ("l4", "card missing, please block it", 1),
        ("t1", "send money to my friend abroad", 2), ("t2", "how do I wire funds to another bank", 2),
        ("t3", "transfer 50 euros to my savings", 2), ("t4", "make a bank transfer", 2)]


@pytest.fixture(scope="module")
def fitted():
    from llmlabel.lf.setfit_lf import GoldSetFitLF

    ids, texts, y = zip(*GOLD)
    g = GoldSet(ids, texts, y, labels=LABELS, folds=2, seed=0)
    return g, GoldSetFitLF("sf", g, num_iterations=2, threshold="auto").fit()


def test_setfit_lf_learns_the_gold_and_keeps_gold_votes_out_of_fold(fitted):
    g, lf = fitted
    assert set(lf.models_) == {-1, 0, 1} and lf.models_[0] is not lf.models_[-1]
    new = ["I would like a refund of my purchase", "my debit card has been stolen", "transfer money to my mother"]
    votes, proba = lf.apply(new, [{"id": f"new{i}"} for i in range(3)])
    assert proba.argmax(1).tolist() == [0, 1, 2]  # the all-gold model on texts it never saw
    assert np.allclose(proba.sum(1), 1.0, atol=1e-5)
    # A gold item's probabilities come from the model fitted without its fold, whatever text it carries.
    _, p = lf.apply(g.texts, [{"id": i} for i in g.ids])
    assert np.allclose(p, lf.oof_proba(), atol=1e-5)
    _, p_all = lf.apply(g.texts, [{"id": f"x{i}"} for i in range(len(g))])
    assert not np.allclose(p, p_all, atol=1e-3)
    assert lf.thresholds_ is not None  # threshold: auto was chosen on those out-of-fold probabilities


def test_spec_setfit_needs_gold_and_rejects_a_bad_pair_budget():
    ids, texts, y = zip(*GOLD)
    g = GoldSet(ids, texts, y, labels=LABELS, folds=2, seed=0)
    lfs = build_lfs(LFSpecFile.model_validate({"lfs": [{"name": "sf", "kind": "setfit", "num_iterations": 3,
                                                        "threshold": "auto"}]}), _tax(), gold=g)
    assert lfs[0].kind == "setfit" and lfs[0].num_iterations == 3 and lfs[0].body == "minilm"
    with pytest.raises(ConfigError, match="needs a gold set"):
        build_lfs(LFSpecFile.model_validate({"lfs": [{"name": "sf", "kind": "setfit"}]}), _tax())
    with pytest.raises(Exception, match="num_iterations"):
        LFSpecFile.model_validate({"lfs": [{"name": "sf", "kind": "setfit", "num_iterations": 0}]})
