"""The run's tuned encoder (llmlabel.tuned): one fit per run, reused; a gold row is never embedded by an encoder
tuned on it; ``kind: setfit`` and ``embedder: tuned`` LFs read it. A real (tiny) fit of the bundled MiniLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlabel.errors import ConfigError
from llmlabel.lf.gold import GoldSet
from llmlabel.tuned import TunedEncoder, TuneSettings
from llmlabel.tuned import encoder as tuned_encoder

LABELS = ["refund", "lost card", "transfer"]
GOLD = [("r1", "I want my money back for this order", 0), ("r2", "please refund the payment", 0),
        ("r3", "can I get a refund", 0), ("r4", "return the money to my account", 0),
        ("l1", "my card was stolen yesterday", 1), ("l2", "I lost my bank card", 1),
        ("l3", "someone took my card", 1), ("l4", "card missing, please block it", 1),
        ("t1", "send money to my friend abroad", 2), ("t2", "how do I wire funds to another bank", 2),
        ("t3", "transfer 50 euros to my savings", 2), ("t4", "make a bank transfer", 2)]
FAST = TuneSettings(epochs=1, batch_size=6, max_length=32)  # two steps on the full gold: a test, not a model


def _gold(folds=4):
    ids, texts, y = zip(*GOLD)
    return GoldSet(ids, texts, y, labels=LABELS, folds=folds, seed=0)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(gold, encoder, {part: texts it was tuned on}) from one real fit, recording what each part saw."""
    seen: dict[str, list[str]] = {}
    real = tuned_encoder.tune_encoder

    def spy(base, texts, y, anchors, settings, out, **kw):
        seen[out.name.removesuffix(".tmp")] = list(texts)
        return real(base, texts, y, anchors, settings, out, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(tuned_encoder, "tune_encoder", spy)
    g = _gold()
    folder = tmp_path_factory.mktemp("run") / "encoder"
    enc = TunedEncoder.fit(folder, texts=g.texts, y=g.y, labels=LABELS, fold=g.fold, ids=g.ids, settings=FAST)
    mp.undo()
    return g, enc, seen


def test_a_gold_row_is_never_embedded_by_an_encoder_tuned_on_it(fitted):
    g, enc, seen = fitted
    assert set(seen) == {"full", "half0", "half1"}
    assert sorted(seen["full"]) == sorted(g.texts)
    assert sorted(seen["half0"] + seen["half1"]) == sorted(g.texts)  # the halves split the gold
    for text, f in zip(g.texts, g.fold):
        part = enc.part_for_fold(int(f))
        assert part == f"half{1 - int(f) % 2}"
        assert text not in seen[part]  # the encoder that embeds this row for its own votes never saw it
    assert enc.part_for_fold(-1) == "full"
    # encode_items routes a gold id to that half, any other id to the full encoder
    v = enc.encode_items(["r1", "new"], ["can I get a refund", "can I get a refund"])
    own = enc.for_fold(int(g.fold[g.ids.index("r1")])).encode(["can I get a refund"])[0]
    assert np.allclose(v[0], own, atol=1e-5) and np.allclose(v[1], enc.full.encode(["can I get a refund"])[0], atol=1e-5)
    assert not np.allclose(v[0], v[1], atol=1e-4)


def test_the_folder_is_a_sentence_transformers_model_and_a_rerun_loads_it(fitted, monkeypatch):
    g, enc, _ = fitted
    from llmlabel.embed import load_embedder

    x = load_embedder(str(enc.folder)).encode(["a refund please"])
    assert x.shape == (1, 384) and np.isclose(np.linalg.norm(x), 1.0, atol=1e-4)
    meta = json.loads((enc.folder / "tuned.json").read_text())
    assert meta["kind"] == "llmlabel.tuned_encoder" and meta["fits"]["full"]["steps"] == 2

    fits = []

    def no_fit(*a, **k):
        fits.append(a)
        raise RuntimeError("a fit was started")

    monkeypatch.setattr(tuned_encoder, "tune_encoder", no_fit)
    again = TunedEncoder.fit(enc.folder, texts=g.texts, y=g.y, labels=LABELS, fold=g.fold, ids=g.ids, settings=FAST)
    assert fits == [] and again.fingerprint == enc.fingerprint  # same inputs: loaded, not refitted
    with pytest.raises(RuntimeError, match="a fit was started"):  # another label set: refitted
        TunedEncoder.fit(enc.folder, texts=g.texts, y=g.y, labels=[*LABELS[:2], "wire"], fold=g.fold, ids=g.ids,
                         settings=FAST)
    assert len(fits) == 1 and TunedEncoder(enc.folder).fingerprint == enc.fingerprint  # the old fit is intact


def test_setfit_kind_reads_the_tuned_encoder_with_honest_gold_votes(fitted):
    from llmlabel.lf.spec import LFSpecFile, build_lfs

    from test_knn import _tax

    g, enc, _ = fitted
    tax = _tax()
    spec = LFSpecFile.model_validate({"lfs": [{"name": "sf", "kind": "setfit", "threshold": "auto"},
                                              {"name": "knn", "kind": "knn", "embedder": "tuned", "k": 3}]})
    sf, knn = build_lfs(spec, tax, gold=g, tuned=lambda: enc)
    assert sf.spaces.tuned and knn.neighbours.spaces.tuned
    new = ["I would like a refund of my purchase", "my debit card has been stolen", "transfer money to my mother"]
    _, proba = sf.apply(new, [{"id": f"n{i}"} for i in range(3)])
    assert proba.argmax(1).tolist() == [0, 1, 2]
    # a gold row's vote: its fold's head, in the space of the encoder tuned without its half
    _, p = sf.apply(g.texts, [{"id": i} for i in g.ids])
    assert np.allclose(p, sf.oof_proba(), atol=1e-5)
    f0 = np.flatnonzero(g.fold == 0)
    X = enc.for_fold(0).encode([g.texts[i] for i in f0])
    assert np.allclose(p[f0], sf._proba(sf.models_[0], X), atol=1e-5)
    with pytest.raises(ConfigError, match="tuned encoder"):
        build_lfs(LFSpecFile.model_validate({"lfs": [{"name": "k", "kind": "knn", "embedder": "tuned"}]}), tax, gold=g)


def test_label_stage_fits_once_and_records_the_encoder(fitted, tmp_path, monkeypatch):
    """label --gold with a tuned LF fits encoder/ beside the votes (here: reused from the fit above, same inputs)."""
    from llmlabel.lf.run import label_corpus

    g, enc, _ = fitted
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t, _ in GOLD)
                      + json.dumps({"id": "n1", "text": "refund my order"}) + "\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": i, "text": t, "label": LABELS[y]}) + "\n" for i, t, y in GOLD))
    (tmp_path / "tax.yaml").write_text("labels:\n" + "".join(f"  - {{id: l{j}, name: {n}}}\n" for j, n in enumerate(LABELS)))
    (tmp_path / "lfs.yaml").write_text("gold_folds: 4\nlfs:\n  - {name: sf, kind: setfit}\n")
    fits = []
    monkeypatch.setattr(tuned_encoder, "tune_encoder", lambda *a, **k: fits.append(a) or {})  # must not run
    from llmlabel.lf import spaces

    monkeypatch.setattr(spaces, "run_encoder", lambda gs, tax, folder, settings=None, **kw: TunedEncoder.fit(
        folder, texts=gs.texts, y=gs.y, labels=gs.labels, fold=gs.fold, ids=gs.ids, settings=FAST))
    import shutil

    shutil.copytree(enc.folder, tmp_path / "encoder")  # what a first label run left beside its votes
    label_corpus(corpus, tmp_path / "tax.yaml", tmp_path / "lfs.yaml", tmp_path / "votes", gold=gold)
    assert fits == []  # loaded: one fit per run
    man = json.loads((tmp_path / "votes" / "_manifest.json").read_text())
    assert man["meta"]["encoder"]["fingerprint"] == enc.fingerprint
    assert man["depends_on"]["encoder"] == enc.fingerprint


def test_the_full_fit_can_wait_until_it_is_needed_and_then_reuses_the_halves(tmp_path, monkeypatch):
    """``full=False`` (the safety net): the halves only, nothing in ``encoder/`` yet; ``complete()`` adds the full fit
    without refitting the halves, into a folder a later run loads as it is."""
    g = _gold()
    fits: list[str] = []
    real = tuned_encoder.tune_encoder

    def spy(base, texts, y, anchors, settings, out, **kw):
        fits.append(out.name.removesuffix(".tmp"))
        return real(base, texts, y, anchors, settings, out, **kw)

    monkeypatch.setattr(tuned_encoder, "tune_encoder", spy)
    folder = tmp_path / "encoder"
    kw = dict(texts=g.texts, y=g.y, labels=LABELS, fold=g.fold, ids=g.ids, settings=FAST)
    ticks: list[int] = []
    part = TunedEncoder.fit(folder, full=False, progress=ticks.append, **kw)
    assert sorted(fits) == ["half0", "half1"] and not part.has_full and not folder.exists()
    assert sum(ticks) == sum(f["steps"] for f in part.meta["fits"].values()) > 0  # the bar counts optimiser steps
    v = part.for_fold(0).encode(["can I get a refund"])
    with pytest.raises(ConfigError, match="halves only"):
        part.full
    assert TunedEncoder.fit(folder, full=False, **kw).fingerprint == part.fingerprint and len(fits) == 2  # found
    enc = part.complete()
    assert fits == ["half0", "half1", "full"] and enc.has_full and (folder / "tuned.json").is_file()
    assert np.allclose(enc.for_fold(0).encode(["can I get a refund"]), v, atol=1e-5)  # the very halves it scored on
    assert TunedEncoder(folder).fingerprint == part.fingerprint
    assert TunedEncoder.fit(folder, **kw).fingerprint == enc.fingerprint and len(fits) == 3  # loaded, not refitted
    assert not list(tmp_path.glob(".encoder.partial-*"))
    with pytest.raises(ConfigError, match="nothing to fit"):
        TunedEncoder.fit(folder, full=False, halves=False, **kw)


def test_bad_settings_and_folders_say_what_is_wrong(tmp_path):
    from llmlabel.errors import InputError

    with pytest.raises(ConfigError, match="method"):
        TuneSettings(method="triplet")
    with pytest.raises(ConfigError, match="epochs"):
        TuneSettings(epochs=0)
    with pytest.raises(InputError, match="tuned.json"):
        TunedEncoder(tmp_path)


def test_distill_student_tuned_and_the_card_name_the_run_encoder(fitted, tmp_path):
    from llmlabel.distill.api import tuned_encoder_path
    from llmlabel.distill.card import render_card
    from llmlabel.distill.data import LabeledData

    _, enc, _ = fitted
    one = np.eye(2, dtype=np.float32)
    d = LabeledData(["a", "b"], ["x", "y"], one, np.arange(2), np.ones(2), meta={"encoder": enc.identity()},
                    source=str(tmp_path / "labeled.parquet"))
    assert tuned_encoder_path(d) == str(enc.folder.resolve())
    with pytest.raises(ConfigError, match="no tuned encoder"):
        tuned_encoder_path(LabeledData(["a"], ["x", "y"], one[:1], np.zeros(1), np.ones(1), source=str(tmp_path / "l.parquet")))
    card = render_card(name="m", kind="encoder", classes=["x", "y"], n_items=2, source="labeled.parquet",
                       source_meta={"encoder": enc.identity()}, soft=True, multi_label=False, dev_metrics=None,
                       dev_source=None, train_seconds=1.0, settings={}, label_stats={})
    assert "Encoder tuned on the gold" in card and enc.fingerprint in card


def test_review_features_tuned_embed_gold_items_with_the_half_that_never_saw_them(fitted, tmp_path):
    from types import SimpleNamespace

    from llmlabel.review.export import feature_rows as _features
    from llmlabel.errors import InputError

    _, enc, _ = fitted
    lab = SimpleNamespace(ids=["r1", "n1"], meta={"encoder": enc.identity()})
    X = _features("tuned", ["can I get a refund", "can I get a refund"], lab, tmp_path / "labeled.parquet")
    assert np.allclose(X, enc.encode_items(["r1", "n1"], ["can I get a refund"] * 2), atol=1e-5)
    with pytest.raises(InputError, match="no tuned encoder"):
        _features("tuned", ["x"], SimpleNamespace(ids=["a"], meta={}), tmp_path / "labeled.parquet")


def test_length_groups_cut_the_sorted_texts_where_padding_costs_more_than_a_pass():
    from itertools import combinations

    from llmlabel.tuned.train import length_groups

    def cost(groups, lengths, c):
        return sum(c + len(g) * max(lengths[i] for i in g) for g in groups)

    rng = np.random.default_rng(0)
    for _ in range(30):  # the dynamic programme's cut is the cheapest of every cut of the sorted order
        lengths = list(np.minimum(rng.lognormal(3, 0.9, 9).astype(int) + 2, 128))
        groups = length_groups(lengths, pass_cost=40)
        assert sorted(np.concatenate(groups).tolist()) == list(range(9))
        s = sorted(range(9), key=lambda i: lengths[i])
        best = min(cost([s[a:b] for a, b in zip((0,) + cuts, cuts + (9,))], lengths, 40)
                   for r in range(9) for cuts in combinations(range(1, 9), r))
        assert cost(groups, lengths, 40) == best
    # texts of about one length: one pass, in the caller's order (the fit is as it was before passes were cut)
    assert [g.tolist() for g in length_groups([14, 12, 16, 13])] == [[0, 1, 2, 3]]
    assert len(length_groups([20] * 31 + [128])) == 2


def test_texts_run_in_several_passes_embed_as_in_one_padded_pass():
    import torch

    from llmlabel.tuned.train import _Net, base_path

    net = _Net(base_path("minilm"), max_length=128)
    net.model.eval()  # no dropout: the two ways must give the same vectors
    texts = ["short one", "a refund", "lost card " * 40, "transfer money", "please block my card right now " * 8]
    with torch.no_grad():
        split, whole = net(texts), net._pass(texts)
    from llmlabel.tuned.train import length_groups

    assert len(length_groups([len(i) for i in net.tok(texts, truncation=True, max_length=128)["input_ids"]])) > 1
    np.testing.assert_allclose(split.numpy(), whole.numpy(), atol=2e-5)
