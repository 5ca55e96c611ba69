"""Few-shot LFs from a gold set: GoldSet folds, kNN LF, gold few-shot prompts, cross-fitting, lfs.yaml + --gold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlabel.errors import ConfigError, InputError
from llmlabel.lf.apply import apply_lfs
from llmlabel.lf.gold import GoldSet, load_gold
from llmlabel.lf.knn import GoldNeighbours, KnnLF
from llmlabel.lf.prompted_gold import GoldFewShotLF
from llmlabel.lf.spec import build_lfs, load_lf_spec
from llmlabel.artifacts.taxonomy import Taxonomy

LABELS = ["refund", "lost card", "transfer"]


class _BagEmbedder:
    """Deterministic bag-of-words vectors (a real, if crude, embedder: no download needed)."""

    vocab = ["refund", "money", "card", "lost", "transfer", "bank", "stolen", "wire"]

    def encode(self, texts, **_kw):
        words = [t.lower().split() for t in texts]
        v = np.array([[ws.count(w) for w in self.vocab] + [sum(w not in self.vocab for w in ws)] for ws in words],
                     np.float32) + 1e-3
        return v / np.linalg.norm(v, axis=1, keepdims=True)


GOLD = [("g1", "refund money", 0), ("g2", "money refund now", 0), ("g3", "lost card", 1), ("g4", "stolen card", 1),
        ("g5", "bank transfer", 2), ("g6", "wire transfer bank", 2)]


def _gold(folds=2):
    ids, texts, y = zip(*GOLD)
    return GoldSet(ids, texts, y, labels=LABELS, folds=folds, seed=0)


def test_gold_folds_are_stratified_and_seeded():
    g = _gold(2)
    for j in range(3):  # every class has one item in each of the two folds
        assert sorted(g.fold[g.y == j].tolist()) == [0, 1]
    assert (g.fold == _gold(2).fold).all()
    assert g.item_folds(["g3", "x", None], 3)[1:].tolist() == [-1, -1]


def test_knn_votes_nearest_gold_and_abstains_far_away():
    lf = KnnLF("knn", _gold(), embedder=_BagEmbedder(), k=3, threshold=0.7)
    v, p = lf.apply(["please refund my money", "lost stolen card", "the weather is nice"])
    assert v.tolist() == [0, 1, -1]
    assert np.allclose(p.sum(1), 1) and p[0, 0] > 0.9


def test_knn_cross_fitting_never_uses_an_items_own_label():
    # A gold item whose only same-class neighbour is itself: in-fold it would vote its own label; out of fold
    # it must not see itself (its id is a gold id), whatever its text.
    ids, texts, y = ["a", "b", "c", "d"], ["refund money", "lost card", "lost card stolen", "bank transfer"], [0, 1, 1, 2]
    g = GoldSet(ids, texts, y, labels=LABELS, folds=4, seed=0)
    lf = KnnLF("knn", g, embedder=_BagEmbedder(), k=1, threshold=0.0)
    same_text_other_id, _ = lf.apply(["refund money"], [{"id": "not-gold"}])
    own, _ = lf.apply(["refund money"], [{"id": "a"}])
    assert same_text_other_id.tolist() == [0]  # a corpus duplicate of a gold text may use it
    assert own.tolist() != [0]  # the gold item itself may not
    sims = GoldNeighbours(g, _BagEmbedder()).similarities(texts, ids)
    assert np.isneginf(sims[np.arange(4), np.arange(4)]).all()
    # Through apply_lfs with item ids, as `llmlabel label` calls it.
    L = apply_lfs([lf], texts, labels=LABELS, items=[{"id": i} for i in ids], ids=ids)
    assert L.votes[0, 0] != 0


def test_gold_few_shot_prompts_pick_nearest_one_per_label_out_of_fold(tiny_qwen2):
    g = _gold(3)
    from llmlabel.llm import load_engine

    lf = GoldFewShotLF("fs", load_engine(f"hf:{tiny_qwen2}", cache=None), LABELS, g, shots=2, embedder=_BagEmbedder())
    prompts = lf.prompts(["money back refund", "refund money"], [{"id": "x"}, {"id": "g1"}])
    ex0 = prompts[0].split("Examples")[1].split("Now the text")[0]
    assert "refund" in ex0 and ex0.count("Label: refund") == 1  # one example per label
    assert ex0.count("Label:") == 2
    # The gold item g1 never sees itself (nor its fold) among its examples.
    ex1 = prompts[1].split("Examples")[1].split("Now the text")[0]
    same_fold = [t for i, t, _ in GOLD if g.fold[g.ids.index(i)] == g.fold[g.ids.index("g1")]]
    assert not any(t in ex1 for t in same_fold)
    v, p = lf.apply(["money back refund", "lost card"], [{"id": "x"}, {"id": "g3"}])
    assert v.dtype == np.int16 and p.shape == (2, 3) and np.allclose(p.sum(1), 1, atol=1e-4)


def _tax():
    return Taxonomy.model_validate({"labels": [{"id": f"l{j}", "name": n} for j, n in enumerate(LABELS)]})


def test_load_gold_errors_name_line_and_field(tmp_path):
    p = tmp_path / "gold.jsonl"
    p.write_text('{"id": "1", "text": "a", "label": "refund"}\n{"id": "2", "text": "b", "label": "nope"}\n')
    with pytest.raises(ConfigError) as e:
        load_gold(p, LABELS)
    assert "gold.jsonl:2: field 'label'" in str(e.value)
    p.write_text('{"id": "1", "text": "a", "label": "refund"}\n{"id": "1", "text": "b", "label": "l1"}\n')
    with pytest.raises(InputError, match="duplicate gold id"):
        load_gold(p, LABELS, ids=["l0", "l1", "l2"])
    p.write_text('{"id": "1", "label": "refund"}\n')
    with pytest.raises(InputError, match="text"):
        load_gold(p, LABELS)


def test_spec_knn_needs_gold_and_gold_path_in_spec(tmp_path):
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "label": LABELS[y]}) + "\n"
                                                 for i, t, y in GOLD))
    (tmp_path / "lfs.yaml").write_text("gold: gold.jsonl\nlfs:\n  - {name: knn, kind: knn, k: 3, threshold: 0.4}\n")
    spec = load_lf_spec(tmp_path / "lfs.yaml")
    with pytest.raises(ConfigError, match="needs a gold set"):
        build_lfs(spec, _tax())
    from llmlabel.lf.run import resolve_gold_path

    path = resolve_gold_path(None, spec.gold, tmp_path / "lfs.yaml")
    g = load_gold(path, LABELS)
    (lf,) = build_lfs(spec, _tax(), gold=g, embedder=_BagEmbedder())
    assert isinstance(lf, KnnLF) and lf.k == 3 and lf.threshold == 0.4
    (tmp_path / "bad.yaml").write_text("lfs:\n  - {name: e, kind: embedding, few_shot: 2, few_shot_from: gold}\n")
    with pytest.raises(ConfigError, match="few_shot_from"):
        load_lf_spec(tmp_path / "bad.yaml")
