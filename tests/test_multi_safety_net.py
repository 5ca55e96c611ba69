"""The multi-label safety net (issue 24): gold LFs that vote without a fold, per-fold label models, and a distill that
chooses the student and its per-label thresholds on the gold only, out-of-fold."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from llmlabel.artifacts.crossfit import (GoldFolds, read_crossfit_labels, read_crossfit_multi_votes,
                                         read_crossfit_votes, write_crossfit_labels, write_crossfit_multi_votes)
from llmlabel.errors import InputError
from llmlabel.multilabel_metrics import best_thresholds, multilabel_f1

from clirun import run_cli
from test_multilabel import LEAVES, TREE, _corpus, _jsonl
from test_safety_net import restamp, sample_rows


def test_multi_label_crossfit_files_round_trip(tmp_path):
    gold = GoldFolds(("g1", "g2", "g3"), np.array([0, 1, 0]), 2, np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]]))
    votes = [np.array([[[1, 0, -1], [0, 0, 1]], [[-1, -1, -1], [1, 1, 0]]]),
             np.array([[[0, 0, 0], [1, -1, 1]], [[1, 1, 1], [0, 0, -1]]])]
    p = [{"knn": np.array([[0.9, 0.1, np.nan], [np.nan] * 3])}, {"knn": np.array([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]])}]
    write_crossfit_multi_votes(tmp_path, ids=["a", "b"], lf_names=["knn", "lr"], labels=["x", "y", "z"],
                               label_ids=["X", "Y", "Z"], votes=votes, p_yes=p, gold=gold)
    cv = read_crossfit_multi_votes(tmp_path)
    assert cv.ids == ["a", "b"] and cv.lf_names == ["knn", "lr"] and cv.label_ids == ["X", "Y", "Z"]
    for f in range(2):
        np.testing.assert_array_equal(cv.votes[f], votes[f])
        np.testing.assert_allclose(cv.p_yes[f]["knn"], p[f]["knn"], equal_nan=True, atol=1e-3)  # float16, as in votes
    assert "lr" not in cv.p_yes[0] and cv.gold.labels.tolist() == gold.labels.tolist()
    with pytest.raises(InputError, match="multi-label cross-fitting votes in a single-label"):
        read_crossfit_votes(tmp_path)
    with pytest.raises(InputError, match="must be"):
        write_crossfit_multi_votes(tmp_path, ids=["a"], lf_names=["knn", "lr"], labels=["x", "y", "z"],
                                   label_ids=["X", "Y", "Z"], votes=votes, p_yes=p, gold=gold)

    # one layout for both forms: the multi-label file is the single-label one over 2-class (LF, label) columns
    schema = pq.read_schema(tmp_path / "_crossfit.parquet")
    assert {"v:knn/X", "v:lr/Z", "p:knn/Z"} <= set(schema.names) and "p:lr/X" not in schema.names
    assert pa.types.is_list(schema.field("p:knn/X").type)
    restamp(tmp_path / "_crossfit.parquet", multi_label={"lfs": ["knn"], "labels": ["x"], "label_ids": ["X"]})
    with pytest.raises(InputError, match="_crossfit.parquet.*do not match the multi_label entry"):
        read_crossfit_multi_votes(tmp_path)
    restamp(tmp_path / "_crossfit.parquet", format_version=1)  # a multi-label file of the earlier layout
    with pytest.raises(InputError, match="format_version 1, this llmlabel reads version 2"):
        read_crossfit_multi_votes(tmp_path)

    proba = np.random.default_rng(0).random((2, 2, 3))
    thr = np.array([[0.3, 0.5, 0.7], [0.2, 0.4, 0.6]])
    write_crossfit_labels(tmp_path / "labeled.parquet", ids=["a", "b"], classes=["x", "y", "z"], proba=proba,
                          gold=gold, thresholds=thr)
    cl = read_crossfit_labels(tmp_path / "labeled.parquet")
    assert cl.multi_label and cl.gold.labels.shape == (3, 3)
    np.testing.assert_allclose(cl.proba, proba, atol=1e-6)
    np.testing.assert_allclose(cl.thresholds, thr, atol=1e-6)
    with pytest.raises(InputError, match="thresholds have shape"):
        write_crossfit_labels(tmp_path / "l2.parquet", ids=["a", "b"], classes=["x", "y", "z"], proba=proba,
                              gold=gold, thresholds=thr[:1])


@pytest.fixture(scope="module")
def wordllama():
    from llmlabel.embed import load_embedder

    return load_embedder("wordllama")


def test_inside_as_fold_the_multi_label_gold_lfs_vote_without_that_fold(wordllama):
    from llmlabel.lf.gold import MultiGoldSet
    from llmlabel.lf.multiclassifier import MultiClassifierLF
    from llmlabel.lf.multilabel import MultiKnnLF

    rows = _corpus(80, seed=4)
    gold = MultiGoldSet([r["id"] for r in rows], [r["text"] for r in rows], [r["labels"] for r in rows],
                        labels=LEAVES, folds=4)
    for j in range(len(LEAVES)):  # every label's positives are spread over the folds (rarest-label strata)
        pos = gold.Y[:, j] > 0
        assert len(set(gold.fold[pos].tolist())) == min(4, int(pos.sum()))
    new = _corpus(30, seed=5)
    texts, items = [r["text"] for r in new], [{"id": f"new{i}"} for i in range(30)]
    f = 2
    keep = np.flatnonzero(gold.fold != f)
    knn = MultiKnnLF("knn", gold.texts, gold.label_sets, labels=LEAVES, embedder=wordllama, k=5, gold=gold)
    without = MultiKnnLF("knn", [gold.texts[i] for i in keep], [gold.label_sets[i] for i in keep], labels=LEAVES,
                         embedder=wordllama, k=5)
    with gold.as_fold(f):
        v_in, p_in = knn.apply(texts, items)
    v_out, p_out = without.apply(texts, items)
    np.testing.assert_array_equal(v_in, v_out)
    np.testing.assert_allclose(p_in, p_out, atol=1e-6)
    assert not np.allclose(knn.apply(texts, items)[1], p_in)  # outside the block: every gold row again

    lr = MultiClassifierLF("lr", gold.texts, gold.label_sets, labels=LEAVES, embedder=wordllama, gold=gold)
    with gold.as_fold(f):
        v_lr, p_lr = lr.apply(texts, items)
    W, b = lr.fold_models_[f]
    np.testing.assert_allclose(p_lr, 1 / (1 + np.exp(-(np.asarray(wordllama.encode(texts)) @ W + b))), atol=1e-5)
    # fold f's thresholds were chosen on the other folds' out-of-fold probabilities only
    rest = lr.fold_ != f
    np.testing.assert_allclose(lr.fold_thresholds_[f], best_thresholds(lr.oof_proba_[rest], lr.Y[rest]))
    np.testing.assert_array_equal(v_lr == 1, p_lr >= lr.fold_thresholds_[f])
    # a gold item is answered by its own fold's model at its own fold's thresholds, inside the block or not
    g0 = int(np.flatnonzero(gold.fold == 0)[0])
    v_g, p_g = lr.apply([gold.texts[g0]], [{"id": gold.ids[g0]}])
    np.testing.assert_allclose(p_g[0], lr.oof_proba_[g0], atol=1e-5)
    np.testing.assert_array_equal(v_g[0] == 1, p_g[0] >= lr.fold_thresholds_[0])


def test_fold_decisions_never_see_their_own_labels():
    """Each fold's rows are decided at thresholds from the other folds: changing fold 0's gold labels cannot
    change fold 0's decisions, only the others'."""
    from llmlabel.distill.multisafety import GRID, oof_decisions

    rng = np.random.default_rng(0)
    Y = (rng.random((60, 4)) < 0.3).astype(np.int8)
    P = np.clip(Y * 0.4 + rng.random((60, 4)) * 0.6, 0, 1)
    fold = np.arange(60) % 3
    a = oof_decisions(P, Y, fold, 3)
    Y2 = Y.copy()
    Y2[fold == 0] = 1 - Y2[fold == 0]
    b = oof_decisions(P, Y2, fold, 3)
    np.testing.assert_array_equal(a[fold == 0], b[fold == 0])
    assert (a[fold != 0] != b[fold != 0]).any()
    for f in range(3):
        np.testing.assert_array_equal(a[fold == f], P[fold == f] >= best_thresholds(P[fold != f], Y[fold != f],
                                                                                        grid=GRID))


class _Lookup:
    """A stand-in student whose probabilities are fixed per text, whatever it is trained on: the net's
    out-of-fold probabilities are then known exactly."""

    kind = "static"
    multi_label = True
    table: dict = {}

    def fit(self, texts, proba=None, classes=None, sample_weight=None):
        self.classes_ = list(classes)
        return self

    def predict_proba(self, texts):
        return np.stack([self.table[t] for t in texts])


def test_the_net_scores_and_ships_thresholds_from_out_of_fold_probabilities_only():
    from llmlabel.artifacts.crossfit import CrossFitLabels
    from llmlabel.distill.multisafety import GRID, oof_decisions, run_multi_safety_net

    rng = np.random.default_rng(1)
    n, g, k, folds = 50, 30, 3, 3
    texts, ids = [f"t{i}" for i in range(n)], [f"i{i}" for i in range(n)]
    Y = (rng.random((g, k)) < 0.4).astype(np.int8)
    _Lookup.table = {t: rng.random(k) for t in texts}
    gold = GoldFolds(tuple(ids[:g]), np.arange(g) % folds, folds, Y)
    cf = CrossFitLabels(ids[g:], ["a", "b", "c"], rng.random((folds, n - g, k)).astype(np.float32), gold,
                        thresholds=np.full((folds, k), 0.5, np.float32))
    net = run_multi_safety_net(texts, ids, ["a", "b", "c"], cf, lambda kind: _Lookup(), students=("static",))
    P = np.stack([_Lookup.table[t] for t in texts[:g]])
    pred = oof_decisions(P, Y, gold.fold, folds)
    row = next(r for r in net.rows if r["weak"] == "none")
    assert row["macro_f1"] == pytest.approx(multilabel_f1(Y, pred)["macro_f1"], abs=1e-4)
    want = best_thresholds(P, Y, grid=GRID)
    assert list(net.extra["thresholds"].values()) == pytest.approx(want.tolist(), abs=1e-4)
    assert "out-of-fold" in net.extra["thresholds_from"]


def _bank_multi(n_pairs: int = 100, seed: int = 0):
    """A multi-label cut of the bundled Banking77 sample: 10 intents; items are single messages (one label) or two
    messages joined (two labels)."""
    rows = sample_rows(None)
    classes = sorted({r["category"] for r in rows})[:10]
    rows = [r for r in rows if r["category"] in classes]
    rng = np.random.default_rng(seed)
    items = [(r["text"], {r["category"]}) for r in rows]
    for _ in range(n_pairs):
        a, b = rng.choice(len(rows), 2, replace=False)
        items.append((f"{rows[a]['text']} Also, {rows[b]['text']}", {rows[a]["category"], rows[b]["category"]}))
    order = rng.permutation(len(items))
    texts = [items[i][0] for i in order]
    Y = np.array([[c in items[i][1] for c in classes] for i in order], np.int8)
    return texts, Y, classes


def _write_multi_run(tmp_path, texts, Y, weak_Y, classes, gold_idx, folds=3):
    """A multi-label labeled file (gold rows clamped) and its sidecar whose weak labels are ``weak_Y``."""
    from llmlabel.artifacts.labeled import write_labeled

    n = len(texts)
    ids = [f"r{i}" for i in range(n)]
    proba = np.where(weak_Y > 0, 0.9, 0.05).astype(np.float32)
    proba[gold_idx] = Y[gold_idx]
    source = np.full(n, "model", dtype=object)
    source[gold_idx] = "human"
    lab_Y = weak_Y.copy()
    lab_Y[gold_idx] = Y[gold_idx]
    path = tmp_path / "labeled.parquet"
    write_labeled(path, ids=ids, classes=classes, proba=proba, texts=texts, source=source, multi_label=True,
                  labels=[[classes[j] for j in np.flatnonzero(y)] for y in lab_Y])
    sample = np.setdiff1d(np.arange(n), gold_idx)
    gold = GoldFolds(tuple(ids[i] for i in gold_idx), np.arange(len(gold_idx)) % folds, folds, Y[gold_idx])
    write_crossfit_labels(path, ids=[ids[i] for i in sample], classes=classes,
                          proba=np.repeat(proba[sample][None], folds, axis=0), gold=gold,
                          thresholds=np.full((folds, len(classes)), 0.5))
    return path


@pytest.mark.parametrize("weak", ["right", "shuffled"])
def test_distill_ships_what_wins_on_the_gold_with_its_thresholds(tmp_path, weak):
    """Right weak label sets: a recipe that uses them wins and ships. Shuffled ones: no static student on noise
    ships; either way the model ships with the net's out-of-fold thresholds (also when the anchored probe, saved
    as a probe, wins) and learned the task."""
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student

    texts, Y, classes = _bank_multi()
    rng = np.random.default_rng(0)
    gold_idx = np.sort(rng.choice(len(texts), 40, replace=False))
    weak_Y = Y if weak == "right" else Y[rng.permutation(len(Y))]
    path = _write_multi_run(tmp_path, texts, Y, weak_Y, classes, gold_idx)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1)
    net = res.metrics["safety_net"]
    table = {(r["student"], r["weak"]): r for r in net["candidates"]}
    # static and anchored x 3 weak weights, and the reference (one-vs-rest LR on the gold)
    assert len(table) == 7 and all(r["n"] == 40 for r in table.values()) and net["metric"] == "macro_f1"
    if weak == "right":
        assert net["chosen"]["weak"] != "none" and "weak labels added" in net["verdict"]
        assert table[("anchored", "all")]["macro_f1"] > table[("probe", "none")]["macro_f1"] + 0.05
    else:
        # Shuffled label sets still carry each label's frequency: beside them the anchored probe learns zero-shot
        # by the names at those base rates, which leads the gold alone out-of-fold here (0.69 vs 0.52 macro-F1).
        # What must hold is that no static student on noise ships and the model still learned the task (below).
        assert net["chosen"]["student"] != "static"
        assert net["chosen"]["weak"] != "none" or res.metrics["n_train"] == 40
    assert res.metrics["thresholds"] == pytest.approx(net["thresholds"])
    assert res.metrics["thresholds_from"] == net["thresholds_from"]
    rest = np.setdiff1d(np.arange(len(texts)), gold_idx)
    model = load_student(tmp_path / "model")
    assert model.threshold == pytest.approx([net["thresholds"][c] for c in classes])
    pred = model.predict_proba([texts[i] for i in rest]) >= np.asarray(model.threshold)
    f1 = multilabel_f1(Y[rest], pred)["macro_f1"]
    assert f1 > (0.8 if weak == "right" else 0.3)
    card = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert net["verdict"] in card and "other folds' out-of-fold probabilities" in card


def _multi_run(tmp_path, rows, n_gold: int, lfs: list[dict]):
    """corpus.jsonl, gold.jsonl (the first ``n_gold`` rows), a multi-label taxonomy made through the CLI and
    lfs.yaml, as a user starts a multi-label run: their paths."""
    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"id": r["id"], "text": r["text"]} for r in rows])
    gold = _jsonl(tmp_path / "gold.jsonl", rows[:n_gold])
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(TREE, sort_keys=False))
    tax = tmp_path / "tax.yaml"
    assert run_cli("taxonomy", corpus, "--labels", tmp_path / "labels.yaml", "--multi-label", "-e", "wordllama",
                   "-o", tax, "-q") == 0
    (tmp_path / "lfs.yaml").write_text(yaml.safe_dump({"lfs": lfs}))
    return corpus, gold, tax, tmp_path / "lfs.yaml"


def test_label_aggregate_distill_predict_with_gold_through_the_cli(tmp_path, capsys):
    """label --gold writes the multi-label cross-fitting votes, aggregate --gold clamps the gold and writes the
    per-fold labels and thresholds, distill runs the net and predict uses its thresholds."""
    from llmlabel.artifacts.labeled import read_labeled

    rows = _corpus(260, seed=6)
    corpus, gold, tax, _ = _multi_run(tmp_path, rows, 50, [
        {"kind": "keyphrases"}, {"name": "emb", "kind": "embedding", "embedder": "wordllama", "threshold": 0.5},
        {"name": "knn", "kind": "knn", "embedder": "wordllama", "k": 5, "threshold": 0.5},
        {"name": "lr", "kind": "classifier", "embedder": "wordllama"}])
    assert run_cli("label", corpus, "-t", tax, "--lfs", tmp_path / "lfs.yaml", "--gold", gold, "-o",
                   tmp_path / "votes", "-q") == 0
    cv = read_crossfit_multi_votes(tmp_path / "votes")
    assert cv.lf_names == ["knn", "lr"] and cv.gold.folds == 5 and len(cv.ids) == 210
    assert not set(cv.ids) & {r["id"] for r in rows[:50]} and cv.votes[0].shape == (210, 2, len(LEAVES))
    assert any((a != b).any() for a, b in zip(cv.votes, cv.votes[1:]))  # the folds really differ
    # a file of the earlier multi-label layout (format 1): aggregate names it, label --gold makes it again
    restamp(tmp_path / "votes" / "_crossfit.parquet", format_version=1)
    labeled = tmp_path / "labeled.parquet"
    assert run_cli("aggregate", tmp_path / "votes", "--gold", gold, "-o", labeled) == 2
    assert "format_version 1" in capsys.readouterr().err
    assert run_cli("label", corpus, "-t", tax, "--lfs", tmp_path / "lfs.yaml", "--gold", gold, "-o",
                   tmp_path / "votes", "-q") == 0
    again = read_crossfit_multi_votes(tmp_path / "votes")
    assert all((a == b).all() for a, b in zip(again.votes, cv.votes))
    assert run_cli("aggregate", tmp_path / "votes", "--gold", gold, "-o", labeled) == 0
    lab = read_labeled(labeled)
    # the leaves' label texts cross label -> aggregate for the anchored student (one per class, in class order)
    texts = lab.meta["label_texts"]
    assert len(texts) == len(lab.classes) and all(t.startswith(c) for t, c in zip(texts, lab.classes))
    pos = {i: r for r, i in enumerate(lab.ids)}
    assert all(sorted(lab.labels[pos[r["id"]]]) == sorted(r["labels"]) and lab.source[pos[r["id"]]] == "human"
               for r in rows[:50])
    cl = read_crossfit_labels(labeled)
    assert cl.multi_label and cl.proba.shape == (5, 210, len(LEAVES)) and cl.thresholds.shape == (5, len(LEAVES))
    assert cl.gold.labels.shape == (50, len(LEAVES))
    assert run_cli("distill", labeled, "-o", tmp_path / "model", "--min-per-class", "1") == 0
    m = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))
    net = m["safety_net"]
    assert net["multi_label"] and net["gold_rows_scored"] == 50 and net["chosen"]["student"] == m["student"]
    assert m["thresholds"] == pytest.approx(net["thresholds"])
    new = _jsonl(tmp_path / "new.jsonl", [{"id": r["id"], "text": r["text"]} for r in rows[200:]])
    assert run_cli("predict", tmp_path / "model", new, "-o", tmp_path / "p.jsonl") == 0
    got = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    Yt = np.array([[x in r["labels"] for x in LEAVES] for r in rows[200:]])
    P = np.array([[x in g["labels"] for x in LEAVES] for g in got])
    assert multilabel_f1(Yt, P)["macro_f1"] > 0.7
    # without --gold or --dev the per-fold models have nothing to hold out: no sidecar, and a stale one goes
    assert run_cli("aggregate", tmp_path / "votes", "-o", labeled) == 0
    assert read_crossfit_labels(labeled) is None
    bad = _jsonl(tmp_path / "bad.jsonl", [{"id": rows[0]["id"], "labels": ["billing"]},
                                          {"id": rows[1]["id"], "labels": ["nope"]}])
    capsys.readouterr()
    assert run_cli("aggregate", tmp_path / "votes", "--gold", bad, "-o", tmp_path / "l2.parquet") == 2
    err = capsys.readouterr().err.strip()
    assert f"{bad}:2" in err and "gold label 'nope'" in err and err.count("\n") == 0
    assert not (tmp_path / "l2.parquet").exists()


def test_a_multi_label_label_run_shares_the_single_label_body(tmp_path):
    """One body for both forms (lf/forms.py): an empty corpus fails in one line before any folder is made, and the
    manifest records the gold file (path and fingerprint) as a single-label run's does."""
    corpus, gold, tax, _ = _multi_run(tmp_path, _corpus(60, seed=3), 20, [
        {"kind": "keyphrases"}, {"name": "knn", "kind": "knn", "embedder": "wordllama", "k": 5, "threshold": 0.5}])
    (tmp_path / "empty.jsonl").write_text("")
    assert run_cli("label", tmp_path / "empty.jsonl", "-t", tax, "--lfs", tmp_path / "lfs.yaml", "--gold", gold,
                   "-o", tmp_path / "v0", "-q") == 2
    assert not (tmp_path / "v0").exists()
    assert run_cli("label", corpus, "-t", tax, "--lfs", tmp_path / "lfs.yaml", "--gold", gold, "-o",
                   tmp_path / "votes", "-q") == 0
    man = json.loads((tmp_path / "votes" / "_manifest.json").read_text(encoding="utf-8"))
    assert man["meta"]["gold"] == str(gold) and "gold" in man["depends_on"]
    assert man["meta"]["multi_label"]["labels"] == LEAVES
