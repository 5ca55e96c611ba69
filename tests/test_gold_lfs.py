"""Gold-derived LFs as a product feature: cuts chosen on the gold out-of-fold, the cross-fitted logreg LF,
key phrases that can tell labels apart, and the lfs.yaml forms of all three."""

from __future__ import annotations

import numpy as np
import pytest

from llmlabel.errors import ConfigError
from llmlabel.lf.embedding import EmbeddingLF
from llmlabel.lf.gold import FoldThresholds, GoldSet, precision_threshold
from llmlabel.lf.keyword import keyphrase_lfs
from llmlabel.lf.knn import KnnLF
from llmlabel.lf.spec import LFSpecFile, build_lfs, load_lf_spec
from llmlabel.lf.supervised import GoldLogRegLF
from llmlabel.artifacts.taxonomy import Taxonomy

from test_knn import LABELS, _BagEmbedder


def test_precision_threshold_is_the_lowest_cut_meeting_the_target():
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    c = np.array([1, 1, 0, 1, 0], bool)  # precision from the top: 1, 1, .67, .75, .6
    assert precision_threshold(s, c, 0.75) == 0.6
    assert precision_threshold(s, c, 1.0) == 0.8
    assert precision_threshold(s, c, 0.5) == float("-inf")  # every vote together meets it: never abstain
    assert precision_threshold(s, ~c, 0.9) == float("inf")  # the most confident vote is wrong: always abstain
    # Tied scores vote together: the cut cannot fall between the two 0.7s.
    assert precision_threshold(np.array([0.9, 0.7, 0.7]), np.array([1, 1, 0], bool), 0.75) == 0.9


def _noisy_gold(n_per=6, folds=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    return GoldSet([f"g{i}" for i in range(len(y))], [f"t{i}" for i in range(len(y))], y, labels=LABELS,
                   folds=folds, seed=0), rng


def test_fold_thresholds_for_a_fold_ignore_that_folds_own_items():
    gold, rng = _noisy_gold()
    score, correct = rng.random(len(gold)), rng.random(len(gold)) < 0.7
    ft = FoldThresholds(gold, score, correct, 0.7)
    for f in range(gold.folds):
        out = gold.fold != f
        assert ft.per_fold[f] == precision_threshold(score[out], correct[out], 0.7)
        # Whatever fold f's own scores and outcomes are, its cut stays the same.
        s2, c2 = score.copy(), correct.copy()
        s2[~out], c2[~out] = rng.random((~out).sum()), ~correct[~out]
        assert FoldThresholds(gold, s2, c2, 0.7).per_fold[f] == ft.per_fold[f]
    cuts = ft.for_items(["g0", "not-gold", "g5"], 3)
    assert cuts[1] == ft.overall and cuts[0] == ft.per_fold[gold.fold[0]] and cuts[2] == ft.per_fold[gold.fold[5]]


def _gold_with_a_noisy_item():
    # "wire wire wire" is labelled refund: only a model that saw that row can vote refund for that text.
    rows = [("r1", "refund money", 0), ("r2", "money refund now", 0), ("r3", "refund refund money", 0),
            ("l1", "lost card", 1), ("l2", "stolen card", 1), ("l3", "lost stolen card", 1),
            ("t1", "bank transfer", 2), ("t2", "wire transfer bank", 2), ("t3", "transfer wire", 2),
            ("odd", "wire wire wire", 0)]
    ids, texts, y = zip(*rows)
    return GoldSet(ids, texts, y, labels=LABELS, folds=3, seed=0)


def test_logreg_vote_on_a_gold_item_never_comes_from_a_model_that_saw_it():
    g = _gold_with_a_noisy_item()
    lf = GoldLogRegLF("lr", g, embedder=_BagEmbedder(), C=1e4)
    text = ["wire wire wire"]
    as_gold, _ = lf.apply(text, [{"id": "odd"}])
    as_new, _ = lf.apply(text, [{"id": "someone-else"}])
    assert as_new.tolist() == [0]  # the all-gold model memorised the row
    assert as_gold.tolist() == [2]  # out of fold: the model without "odd" reads "wire" as transfer
    # Every gold item's probabilities are those of the model fitted without its fold.
    _, p = lf.apply(g.texts, [{"id": i} for i in g.ids])
    assert np.allclose(p, lf.oof_proba(), atol=1e-6)
    for f in range(g.folds):
        assert set(lf.models_[f].classes_) <= set(g.y[g.fold != f])
        assert lf.models_[f].n_features_in_ == 9 and lf.models_[f] is not lf.models_[-1]


def test_logreg_auto_threshold_comes_from_the_out_of_fold_probabilities():
    g = _gold_with_a_noisy_item()
    lf = GoldLogRegLF("lr", g, embedder=_BagEmbedder(), threshold="auto", target_precision=0.9)
    v, _ = lf.apply(["refund money please", "the weather"], [{"id": "x"}, {"id": "y"}])
    oof = lf.oof_proba()
    want = FoldThresholds(g, oof.max(1), oof.argmax(1) == g.y, 0.9)
    assert lf.threshold_ == want.overall and (lf.thresholds_.per_fold == want.per_fold).all()
    assert v[0] == 0


def test_knn_and_embedding_auto_thresholds_come_from_the_gold_folds():
    g = _gold_with_a_noisy_item()
    knn = KnnLF("knn", g, embedder=_BagEmbedder(), k=3, threshold="auto", target_precision=0.9)
    knn.apply(["refund money"])
    votes, _, best = knn._vote(knn.neighbours.similarities(g.texts, g.ids))  # out-of-fold by construction
    want = FoldThresholds(g, best, votes == g.y, 0.9)
    assert knn.threshold_ == want.overall and (knn.thresholds_.per_fold == want.per_fold).all()

    labels = {"refund": ["refund money"], "lost card": ["lost card"], "transfer": ["bank transfer"]}
    emb = EmbeddingLF("emb", labels, embedder=_BagEmbedder(), threshold="auto", gold=g, target_precision=0.9)
    v, _ = emb.apply(["refund", "wire wire wire"], [{"id": "x"}, {"id": "odd"}])
    sims = emb._sims(g.texts)
    assert emb.threshold_ == precision_threshold(sims.max(1), sims.argmax(1) == g.y, 0.9)
    with pytest.raises(ConfigError, match="needs a gold set"):
        EmbeddingLF("emb", labels, embedder=_BagEmbedder(), threshold="auto")


def _tax():
    return Taxonomy.model_validate({"labels": [
        {"id": "refund", "name": "refund", "keyphrases": ["refund", "money", "s", "my card"]},
        {"id": "lost_card", "name": "lost card", "keyphrases": ["lost", "stolen", "My Card"]},
        {"id": "transfer", "name": "transfer", "keyphrases": ["transfer", "money"]}]})


def test_keyphrase_lfs_drop_phrases_that_cannot_tell_labels_apart():
    lfs = {lf.name: lf for lf in keyphrase_lfs(_tax())}
    votes = {n: lf.apply(["money", "my card", "it s", "refund", "stolen"])[0].tolist() for n, lf in lfs.items()}
    assert votes["kw:refund"] == [-1, -1, -1, 0, -1]  # "money" and "my card" are shared, "s" is one letter
    assert votes["kw:lost_card"] == [-1, -1, -1, -1, 1]
    assert votes["kw:transfer"] == [-1] * 5  # only "transfer" is left
    assert "kw:transfer" in lfs


def test_spec_logreg_and_auto_thresholds(tmp_path):
    g = _gold_with_a_noisy_item()
    spec = LFSpecFile.model_validate({"lfs": [
        {"name": "lr", "kind": "logreg", "threshold": "auto", "target_precision": 0.7},
        {"name": "knn", "kind": "knn", "threshold": "auto"}, {"name": "emb", "kind": "embedding", "threshold": "auto"}]})
    lfs = build_lfs(spec, _tax(), gold=g, embedder=_BagEmbedder())
    assert [lf.kind for lf in lfs] == ["logreg", "knn", "embedding"]
    assert lfs[0].target_precision == 0.7 and lfs[1].target_precision == 0.6 and lfs[2].threshold == "auto"
    with pytest.raises(ConfigError, match="needs a gold set"):
        build_lfs(LFSpecFile.model_validate({"lfs": [{"name": "lr", "kind": "logreg"}]}), _tax())
    p = tmp_path / "lfs.yaml"
    p.write_text("lfs:\n  - {name: kw, kind: keyword, patterns: {refund: [x]}, threshold: auto}\n")
    with pytest.raises(ConfigError) as e:
        load_lf_spec(p)
    assert e.value.line == 2 and "threshold: auto" in str(e.value)


def test_student_trains_on_soft_labels_with_gold_rows_at_full_weight(tmp_path):
    from llmlabel.artifacts.labeled import write_labeled
    from llmlabel.distill.data import read_labeled

    proba = np.array([[0.6, 0.3, 0.1], [1.0, 0.0, 0.0], [0.2, 0.5, 0.3]], np.float32)
    p = tmp_path / "labeled.parquet"
    write_labeled(p, ids=["a", "gold-1", "c"], classes=LABELS, proba=proba, texts=["x", "y", "z"],
                  source=["model", "human", "model"])
    d = read_labeled(p, min_per_class=1)
    assert d.weights.tolist() == pytest.approx([0.6, 1.0, 0.5])  # label-model rows by confidence, gold at 1
    assert np.allclose(d.targets(True), proba) and d.n_human == 1


def test_multi_label_taxonomy_refuses_logreg_and_auto_with_the_line(tmp_path):
    from llmlabel.artifacts.taxonomy import save_taxonomy
    from llmlabel.lf.run import label_corpus

    tax = Taxonomy.model_validate({"multi_label": True, "labels": [
        {"id": "a", "name": "a"}, {"id": "b", "name": "b"}]})
    save_taxonomy(tax, tmp_path / "tax.yaml")
    (tmp_path / "c.jsonl").write_text('{"id": "1", "text": "x"}\n')
    for body, line in [("lfs:\n  - {name: e, kind: embedding, threshold: 0.3}\n  - {name: lr, kind: logreg}\n", 3),
                       ("lfs:\n  - {name: e, kind: embedding, threshold: auto}\n", 2)]:
        (tmp_path / "lfs.yaml").write_text(body)
        with pytest.raises(ConfigError, match="single-label taxonomies") as e:
            label_corpus(tmp_path / "c.jsonl", tmp_path / "tax.yaml", tmp_path / "lfs.yaml", tmp_path / "votes")
        assert e.value.line == line and not (tmp_path / "votes").exists()
