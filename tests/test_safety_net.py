"""The cross-fitting safety net: with gold, the chain measures on the gold whether its weak labels help, and ships
what wins (issue 24). Built on the bundled Banking77 sample, whose rows all carry their true intent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmlabel.artifacts.crossfit import (GoldFolds, read_crossfit_labels, read_crossfit_votes, write_crossfit_labels,
                                         write_crossfit_votes)
from llmlabel.errors import InputError

from clirun import run_cli

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl"
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "cash_withdrawal_charge",
           "pin_blocked"]


def sample_rows(classes=INTENTS) -> list[dict]:
    rows = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if classes is None or r["category"] in classes]


def restamp(path, **meta):
    """Rewrite keys of a Parquet stage file's llmlabel metadata (a file as an earlier llmlabel wrote it)."""
    import pyarrow.parquet as pq

    from llmlabel.io_meta import read_meta
    from llmlabel.io_write import write_parquet

    write_parquet(path, pq.read_table(path), meta={**read_meta(path), **meta})


def test_crossfit_files_round_trip_and_refuse_what_does_not_fit(tmp_path):
    gold = GoldFolds(("g1", "g2", "g3"), np.array([0, 1, 0]), 2, np.array([1, 0, 1]), np.array([True, True, False]))
    votes = [np.array([[0, 1], [-1, 1]]), np.array([[1, 1], [0, -1]])]
    probs = [{"knn": np.array([[0.9, 0.1], [0.0, 0.0]])}, {"knn": np.array([[0.2, 0.8], [0.6, 0.4]])}]
    write_crossfit_votes(tmp_path, ids=["a", "b"], lf_names=["knn", "lr"], votes=votes, probs=probs, gold=gold)
    cv = read_crossfit_votes(tmp_path)
    assert cv.ids == ["a", "b"] and cv.lf_names == ["knn", "lr"]
    np.testing.assert_array_equal(cv.votes[1], votes[1])
    np.testing.assert_allclose(cv.probs[1]["knn"], probs[1]["knn"], atol=1e-6)
    assert "lr" not in cv.probs[0] and cv.gold.fold.tolist() == [0, 1, 0]
    restamp(tmp_path / "_crossfit.parquet", format_version=1)  # version 1's single-label layout is version 2's
    np.testing.assert_array_equal(read_crossfit_votes(tmp_path).votes[1], votes[1])

    proba = np.array([[[0.2, 0.8], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]]])
    write_crossfit_labels(tmp_path / "labeled.parquet", ids=["a", "b"], classes=["x", "y"], proba=proba, gold=gold)
    cl = read_crossfit_labels(tmp_path / "labeled.parquet")
    np.testing.assert_allclose(cl.proba, proba, atol=1e-6)
    assert cl.classes == ["x", "y"] and cl.gold.fair.tolist() == [True, True, False]
    assert read_crossfit_labels(tmp_path / "other.parquet") is None
    with pytest.raises(InputError, match="proba has shape"):
        write_crossfit_labels(tmp_path / "l2.parquet", ids=["a"], classes=["x", "y"], proba=proba, gold=gold)
    with pytest.raises(InputError, match="folds"):
        write_crossfit_votes(tmp_path, ids=["a", "b"], lf_names=["knn"], votes=votes[:1], probs=[{}], gold=gold)
    # another stage's file where a cross-fitting file belongs: one line naming it
    (tmp_path / "bad.crossfit.parquet").write_bytes((tmp_path / "_crossfit.parquet").read_bytes())
    with pytest.raises(InputError, match="crossfit-votes file, not a crossfit-labels file"):
        read_crossfit_labels(tmp_path / "bad.parquet")


def test_inside_as_fold_the_gold_lfs_vote_without_that_folds_rows():
    from llmlabel.lf.gold import GoldSet
    from llmlabel.lf.knn import KnnLF
    from llmlabel.lf.supervised import GoldLogRegLF

    rows = sample_rows(INTENTS[:3])[:60]
    labels = INTENTS[:3]
    gold = GoldSet([r["id"] for r in rows], [r["text"] for r in rows], [labels.index(r["category"]) for r in rows],
                   labels=labels, folds=3)
    knn = KnnLF("knn", gold, embedder="wordllama", k=1, threshold=0.0)
    target = 0  # a new item whose text is gold row 0's: its nearest neighbour is that row, unless its fold is out
    text, f = rows[target]["text"], int(gold.fold[target])
    sims_all = knn.neighbours.similarities([text], ["new-item"])
    assert sims_all[0, target] == pytest.approx(1.0, abs=1e-5)
    with gold.as_fold(f):
        sims = knn.neighbours.similarities([text], ["new-item"])
        own = knn.neighbours.similarities([rows[target]["text"]], [rows[target]["id"]])
    assert np.isinf(sims[0, gold.fold == f]).all() and np.isfinite(sims[0, gold.fold != f]).all()
    np.testing.assert_array_equal(own, knn.neighbours.similarities([text], [rows[target]["id"]]))  # gold rows keep theirs
    assert knn.neighbours.similarities([text], ["new-item"])[0, target] == pytest.approx(1.0, abs=1e-5)  # restored
    lr = GoldLogRegLF("lr", gold, embedder="wordllama")
    with gold.as_fold(f):
        in_fold = lr.apply([text], [{"id": "new-item"}])[1]
    np.testing.assert_allclose(in_fold, lr._proba(lr.models_[f], lr.spaces.encode([text], np.array([f]))), atol=1e-6)
    with pytest.raises(Exception, match="fold 9"):
        with gold.as_fold(9):
            pass


def _write_run(tmp_path, weak_y, rows, gold_idx, classes, folds=4, fair=True, fold=None):
    """A labeled file and its cross-fitting sidecar whose weak labels are ``weak_y`` (the label model's
    output), with the gold rows clamped, as ``aggregate --gold`` writes them."""
    from llmlabel.artifacts.labeled import write_labeled

    n, k = len(rows), len(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    proba = np.full((n, k), 0.05 / (k - 1), np.float32)
    proba[np.arange(n), weak_y] = 0.95
    source = np.full(n, "model", dtype=object)
    proba[gold_idx] = np.eye(k, dtype=np.float32)[true[gold_idx]]
    source[gold_idx] = "human"
    path = tmp_path / "labeled.parquet"
    write_labeled(path, ids=[r["id"] for r in rows], classes=classes, proba=proba, texts=[r["text"] for r in rows],
                  source=source)
    fold = np.arange(len(gold_idx)) % folds if fold is None else np.asarray(fold)
    sample = np.setdiff1d(np.arange(n), gold_idx)
    gold = GoldFolds(tuple(rows[i]["id"] for i in gold_idx), fold, folds, true[gold_idx], np.full(len(gold_idx), fair))
    write_crossfit_labels(path, ids=[rows[i]["id"] for i in sample], classes=classes,
                          proba=np.repeat(proba[sample][None], folds, axis=0), gold=gold)
    return path, true


def _table(**acc):
    return [{"student": k.split("_")[0], "weak": k.split("_")[1], "n": 100, "accuracy": v, "macro_f1": v}
            for k, v in acc.items()]


def test_logistic_regression_on_the_gold_ships_unless_another_recipe_beats_it_by_1_645_standard_errors():
    """The reference is the probe on the gold alone (what a user would train instead); the highest of the other
    out-of-fold figures replaces it only with a lead larger than 1.645 paired standard errors (one-sided, 5%),
    whichever it is (a gold-only static student included), and the verdict says so."""
    from llmlabel.distill.safety import Recipe, choose

    table = _table(static_none=0.69, static_all=0.66, probe_all=0.65, probe_none=0.64, tuned_none=0.64)
    row, chosen, verdict, gain = choose(table, "accuracy", 100, lambda a, b: 0.039)  # a lead of 1.28 se: not enough
    assert (chosen.student, chosen.weak) == ("probe", "none") and gain == 0.0
    assert verdict.startswith("the gold alone won: logistic regression on the gold, the reference")
    assert "static, weak rows: none" in verdict and "+5.0 points, se 3.9" in verdict
    row, chosen, verdict, gain = choose(table, "accuracy", 100, lambda a, b: 0.025)  # 2 se
    assert (chosen.student, chosen.weak) == ("static", "none") and abs(gain - 0.05) < 1e-9
    assert verdict.startswith("the gold alone won: static") and "beat logistic regression on the gold" in verdict
    table = _table(static_equal=0.88, probe_none=0.83, static_none=0.79)
    row, chosen, verdict, gain = choose(table, "accuracy", 100, lambda a, b: 0.026)
    assert (chosen.student, chosen.weak) == ("static", "equal") and verdict.startswith("weak labels added +5.0 points")
    table = _table(tuned_equal=0.92, tuned_none=0.92, probe_none=0.83)  # a tie: the recipe without weak rows
    assert choose(table, "accuracy", 100, lambda a, b: 0.03)[1] == Recipe("tuned", "none")
    table = _table(static_none=0.5, probe_none=0.9)  # the reference ahead: nothing to test
    assert choose(table, "accuracy", 100, lambda a, b: 0.0)[1].student == "probe"


def test_a_gold_set_of_one_class_ships_the_weak_labels_not_a_one_class_classifier(tmp_path):
    """Gold rows of one class cannot train "logistic regression on your gold" in any fold, so there is nothing to
    compare with: the net ships what the chain ships without it (weak rows at their confidence), and the model
    predicts every class, not the gold's one (it used to ship a probe fitted on that class alone)."""
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student

    classes = sorted({r["category"] for r in sample_rows(None)})[:6]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    gold_idx = np.flatnonzero(true == 0)[:6]
    path, true = _write_run(tmp_path, true, rows, gold_idx, classes, folds=3)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    net = res.metrics["safety_net"]
    assert net["chosen"] == {"student": "static", "weak": "all"}
    assert net["verdict"].startswith("nothing to compare with: logistic regression on the 6 gold rows could not")
    pred = load_student(tmp_path / "model").predict_proba([r["text"] for r in rows]).argmax(1)
    assert len(np.unique(pred)) == len(classes) and np.mean(pred == true) > 0.8


def test_gold_picked_only_by_an_active_strategy_skips_the_net_and_says_why(tmp_path):
    """Reviewed rows an active strategy picked are no fair sample to score recipes on. The run goes on as without
    the net (it stopped at distill: 'no gold row is a fair sample'), and metrics.json and the card say why."""
    from llmlabel.distill.api import distill

    classes = sorted({r["category"] for r in sample_rows(None)})[:6]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    gold_idx = np.arange(0, len(rows), 6)[:20]
    path, true = _write_run(tmp_path, true, rows, gold_idx, classes, fair=False)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    assert "safety_net" not in res.metrics and res.metrics["student"] == "static"
    assert res.metrics["safety_net_skipped"].startswith("none of the 20 gold rows is a fair sample")
    assert "**The safety net did not run**: none of the 20 gold rows" in (tmp_path / "model" / "README.md").read_text()
    from llmlabel.report import write_report

    write_report([tmp_path], tmp_path / "report.html")
    assert "The safety net did not run</strong>: none of the 20 gold rows" in (tmp_path / "report.html").read_text()


def test_gold_that_misses_classes_the_weak_labels_fill_weighs_only_recipes_with_the_weak_rows(tmp_path):
    """Gold rows of 3 of 6 intents (not a random sample): out-of-fold on that gold, "logistic regression on your
    gold" looks as good as anything, yet it could never predict the other 3 intents, which the weak labels give
    half the items. The net sees the missing classes, weighs only recipes with the weak rows, says so, and the
    model predicts all 6 (it shipped the gold-only baseline: 3 classes)."""
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student
    from llmlabel.distill.safety import unrepresented

    classes = sorted({r["category"] for r in sample_rows(None)})[:6]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    gold_idx = np.sort(np.concatenate([np.flatnonzero(true == c)[:8] for c in range(3)]))
    path, true = _write_run(tmp_path, true, rows, gold_idx, classes, folds=4)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    net = res.metrics["safety_net"]
    assert net["chosen"]["weak"] != "none" and all(r["weak"] != "none" for r in net["candidates"])
    assert net["verdict"].startswith("the gold has no row of ")
    assert "a model trained on the gold alone would never predict" in net["verdict"]
    pred = load_student(tmp_path / "model").predict_proba([r["text"] for r in rows]).argmax(1)
    assert len(np.unique(pred)) == 6 and np.mean(pred == true) > 0.8
    # a random sample that misses a rare class is no evidence: 2 of 100 rows, absent from 10 gold rows
    y = np.zeros(100, int)
    y[:2] = 1
    share_proba = np.eye(2)[y][None]
    assert len(unrepresented(np.zeros(10, int), share_proba, 2)[0]) == 0
    assert list(unrepresented(np.zeros(10, int), np.eye(2)[np.arange(100) % 2][None], 2)[0]) == [1]


def test_with_two_gold_rows_a_class_the_gold_alone_is_not_scored_a_class_short(tmp_path):
    """Two gold rows of each of 40 intents, in different folds (as the label stage's stratified folds deal them).
    Scoring a held-out row leaves its class one row against two for the classes not in the fold, and logistic
    regression on the gold leans away from it. Each class's gold rows now weigh in a fold what they weigh in the
    full fit (``prior_weights``): out-of-fold accuracy of LR on the gold 0.41 before, 0.60 after (on Banking77 with
    2 rows of each of 77 intents 0.27 -> 0.42, against 0.67 on its test split). With shuffled weak labels the gold
    alone ships."""
    from llmlabel.distill.api import distill
    from llmlabel.distill.safety import prior_weights

    classes = sorted({r["category"] for r in sample_rows(None)})[:40]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    rng = np.random.default_rng(0)
    gold_idx = np.concatenate([np.sort(rng.choice(np.flatnonzero(true == c), 2, replace=False)) for c in range(40)])
    fold = np.arange(80) % 5  # a class's two rows in two folds
    order = np.argsort(gold_idx)
    path, true = _write_run(tmp_path, rng.permutation(true), rows, gold_idx[order], classes, folds=5,
                            fold=fold[order])
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    net = res.metrics["safety_net"]
    table = {(r["student"], r["weak"]): r for r in net["candidates"]}
    assert table[("probe", "none")]["accuracy"] >= 0.5, table[("probe", "none")]
    assert net["chosen"]["weak"] == "none"
    # in the full fit every row weighs 1; a class with one of its two rows held out weighs 2 on the other
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    train = np.array([1, 0, 1, 1, 1, 1, 1, 0], bool)
    np.testing.assert_allclose(prior_weights(y, train, 3), [2, 1, 1, 4 / 3, 4 / 3, 4 / 3])
    np.testing.assert_allclose(prior_weights(y, np.ones(8, bool), 3), np.ones(8))


@pytest.mark.parametrize("weak", ["right", "shuffled"])
def test_distill_ships_the_recipe_that_wins_on_the_gold(tmp_path, weak):
    """Right weak labels: a recipe that uses them wins and ships. Shuffled ones (labels that carry nothing):
    the gold alone wins, the weak rows get weight 0, and the shipped model still learned the task from the gold."""
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student

    classes = sorted({r["category"] for r in sample_rows(None)})[:20]  # 20 intents, ~2 gold rows each
    rows = sample_rows(classes)
    rng = np.random.default_rng(0)
    gold_idx = np.sort(rng.choice(len(rows), 40, replace=False))
    true = np.array([classes.index(r["category"]) for r in rows])
    weak_y = true if weak == "right" else rng.permutation(true)
    path, true = _write_run(tmp_path, weak_y, rows, gold_idx, classes)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1, tuned_encoder=False)
    net = res.metrics["safety_net"]
    table = {(r["student"], r["weak"]): r for r in net["candidates"]}
    # static and anchored x 3 weak weights, and the reference: the plain probe on the gold
    assert len(table) == 7 and all(r["n"] == 40 for r in table.values()) and ("probe", "none") in table
    if weak == "right":
        assert net["chosen"]["weak"] != "none"
        assert table[("anchored", "all")]["accuracy"] > table[("probe", "none")]["accuracy"] + 0.05
        assert "weak labels added" in net["verdict"]
    else:
        assert net["chosen"]["weak"] == "none" and net["verdict"].startswith("the gold alone won")
        assert res.metrics["n_train"] == 40  # the weak rows were not trained on
    rest = np.setdiff1d(np.arange(len(rows)), gold_idx)
    model = load_student(tmp_path / "model")
    pred = model.predict_proba([rows[i]["text"] for i in rest]).argmax(1)
    acc = float(np.mean(pred == true[rest]))
    assert acc > (0.8 if weak == "right" else 0.3)  # 20 intents: chance is 0.05
    card = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert "Out-of-fold on the gold" in card and net["verdict"] in card
    # the card's first line says what the student was trained on: the gold alone is a person's labels
    opening = card.split("trained by `llmlabel distill` on ", 1)[1].split("\n", 1)[0]
    if weak == "right":
        assert opening.startswith("**machine-generated labels** (weak supervision) and 40 items labeled by a person")
    else:
        assert opening.startswith("**40 items labeled by a person**") and "machine-generated labels**" not in opening
    # what the net cost, as metrics.json on disk carries it to the suite (wall and CPU seconds)
    saved = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))["safety_net"]
    assert saved["verdict"] == net["verdict"] and saved["seconds"] > 0 and saved["cpu_seconds"] > 0


def test_the_tuned_candidate_is_honest_fitted_once_and_ships_without_its_halves(tmp_path, monkeypatch, short_tuning):
    """The probe on the encoder tuned on the gold: fold f's gold is embedded by the half that never saw fold f;
    the encoder is fitted once beside the labeled file and reused by a second distill; what ships is a probe
    over the full encoder (no halves in the model folder) that learned the task."""
    from llmlabel.distill import safety
    from llmlabel.distill.api import distill
    from llmlabel.distill.export import load_student
    from llmlabel.tuned import TunedEncoder
    from llmlabel.tuned import encoder as tuned_encoder

    classes = INTENTS[:4]
    rows = sample_rows(classes)
    true = np.array([classes.index(r["category"]) for r in rows])
    gold_idx = np.sort(np.random.default_rng(2).choice(len(rows), 24, replace=False))
    path, _ = _write_run(tmp_path, true, rows, gold_idx, classes)
    seen, encoded, fitted, halves = [], [], [], {}
    real, real_tune = TunedEncoder.for_fold, tuned_encoder.tune_encoder

    def count_fits(base, texts, y, anchors, settings, out, **kw):
        fitted.append(out.name.removesuffix(".tmp"))
        return real_tune(base, texts, y, anchors, settings, out, **kw)

    class Counting:  # the real half, counting the texts it embeds
        def __init__(self, emb):
            self.emb = emb

        def encode(self, texts, **kw):
            encoded.extend(texts)
            return self.emb.encode(texts, **kw)

    def spy(self, fold):
        seen.append((fold, self.part_for_fold(fold)))
        halves.update(self.meta["gold_halves"])
        return Counting(real(self, fold))

    monkeypatch.setattr(TunedEncoder, "for_fold", spy)
    monkeypatch.setattr(tuned_encoder, "tune_encoder", count_fits)
    res = distill(path, tmp_path / "model", student="auto", min_per_class=1)
    net = res.metrics["safety_net"]
    assert {r["student"] for r in net["candidates"]} == {"static", "probe", "tuned", "anchored"}
    shipped = net["chosen"]["student"] == "tuned"
    # the net scores the halves; the full fit is made only when the tuned candidate ships
    assert sorted(fitted) == sorted(["half0", "half1"] + (["full"] if shipped else []))
    assert (tmp_path / "encoder" / "tuned.json").is_file() == shipped
    fold = np.arange(len(gold_idx)) % 4  # _write_run's folds
    for f, part in seen:  # each fold's rows came from the half fitted on the other parity's gold only
        assert part == f"half{1 - f % 2}"
        assert all(halves[rows[i]["id"]] == f % 2 for i, g in zip(gold_idx, fold) if g == f)
    assert {f % 2 for f, _ in seen} == {0, 1}  # one encode per half: folds of a parity share their space
    # trained on the gold alone, the candidate embeds each gold row once per half (to score it, or to train on it
    # for the other parity's folds) and no weak row
    assert sorted(encoded) == sorted(2 * [rows[i]["text"] for i in gold_idx])
    assert {r["weak"] for r in net["candidates"] if r["student"] == "tuned"} == {"none"}
    fitted.clear()
    distill(path, tmp_path / "model2", student="auto", min_per_class=1)
    assert fitted == []  # the halves (and the full fit, when it shipped) are reused, not refitted
    if shipped:
        assert not (tmp_path / "model" / "encoder" / "halves").exists()
    rest = np.setdiff1d(np.arange(len(rows)), gold_idx)
    pred = load_student(tmp_path / "model").predict_proba([rows[i]["text"] for i in rest]).argmax(1)
    assert float(np.mean(pred == true[rest])) > 0.6  # 4 intents: chance is 0.25
    assert safety.recipes(("tuned",))[-1] == safety.Recipe("probe", "none")  # LR on the gold is always a candidate


def test_without_the_sidecar_or_with_a_weak_weight_the_net_does_not_run(tmp_path):
    from llmlabel.artifacts.crossfit import crossfit_labels_path
    from llmlabel.distill.api import distill

    rows = sample_rows(INTENTS[:3])
    classes = INTENTS[:3]
    true = np.array([classes.index(r["category"]) for r in rows])
    path, _ = _write_run(tmp_path, true, rows, np.arange(0, len(rows), 5), classes)
    assert "safety_net" not in distill(path, None, weak_weight=0.5, min_per_class=1).metrics
    crossfit_labels_path(path).unlink()
    res = distill(path, None, min_per_class=1)
    assert "safety_net" not in res.metrics and res.metrics["student"] == "static"


def test_label_and_aggregate_with_gold_leave_the_cross_fitted_world_for_distill(tmp_path, short_tuning):
    """The CLI chain: label --gold writes the gold-derived LFs' votes per fold on a sample, aggregate --gold the
    per-fold labels; distill reads them and says what it shipped."""
    rows = sample_rows()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
    described = {"card_arrival": "when will my new card arrive"}  # one label with a description, the rest bare
    (tmp_path / "labels.txt").write_text("".join(f"{n}: {described[n]}\n" if n in described else f"{n}\n"
                                                 for n in INTENTS), encoding="utf-8")
    rng = np.random.default_rng(1)
    pick = rng.choice(len(rows), 40, replace=False)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": rows[i]["id"], "text": rows[i]["text"], "label": rows[i]["category"]})
                            + "\n" for i in pick), encoding="utf-8")
    lfs = tmp_path / "lfs.yaml"
    lfs.write_text("lfs:\n  - {kind: keyphrases}\n  - {name: emb, kind: embedding, embedder: wordllama, threshold: auto}\n"
                   "  - {name: knn, kind: knn, embedder: wordllama, threshold: auto}\n"
                   "  - {name: lr, kind: logreg, embedder: wordllama}\n", encoding="utf-8")
    tax = tmp_path / "taxonomy.yaml"
    assert run_cli("taxonomy", corpus, "--labels", tmp_path / "labels.txt", "-o", tax, "-e", "wordllama", "-q") == 0
    assert run_cli("label", corpus, "-t", tax, "--lfs", lfs, "--gold", gold, "-o", tmp_path / "votes", "-q") == 0
    cv = read_crossfit_votes(tmp_path / "votes")
    assert cv.lf_names == ["emb", "knn", "lr"] and cv.gold.folds == 5
    assert len(cv.ids) == len(rows) - 40 and not set(cv.ids) & {rows[i]["id"] for i in pick}
    assert any((a != b).any() for a, b in zip(cv.votes, cv.votes[1:]))  # the folds really differ
    labeled = tmp_path / "labeled.parquet"
    assert run_cli("aggregate", tmp_path / "votes", "--gold", gold, "-o", labeled) == 0
    cl = read_crossfit_labels(labeled)
    assert cl.proba.shape == (5, len(cv.ids), len(INTENTS)) and sorted(cl.gold.ids) == sorted(rows[i]["id"] for i in pick)
    np.testing.assert_allclose(cl.proba.sum(axis=2), 1.0, atol=1e-4)
    assert run_cli("distill", labeled, "-o", tmp_path / "model", "--min-per-class", "1") == 0
    m = json.loads((tmp_path / "model" / "metrics.json").read_text(encoding="utf-8"))
    chosen = m["safety_net"]["chosen"]["student"]
    assert m["safety_net"]["gold_rows_scored"] == 40 and m["student"] == {"anchored": "probe", "tuned": "probe"}.get(
        chosen, chosen)
    # the label texts travel taxonomy -> votes -> labeled file, and the anchored probe on the gold is weighed
    from llmlabel.distill.data import read_labeled

    texts = read_labeled(labeled).meta["label_texts"]
    assert texts[0] == "card_arrival: when will my new card arrive"  # given; the others described from the corpus
    assert len(texts) == len(INTENTS) and all(t.startswith(n) for t, n in zip(texts, INTENTS))
    assert ("anchored", "none") in {(r["student"], r["weak"]) for r in m["safety_net"]["candidates"]}
    # aggregate made the cross-fitted labels for the net alone: the net reports their cost as part of its own
    assert m["safety_net"]["crossfit_cpu_seconds"] == cl.meta["cpu_seconds"] > 0 and cl.meta["seconds"] > 0
    # Aggregated again without the gold, the labels no longer come from the cross-fitted world: the sidecar
    # goes, and distill trains without a net instead of scoring against labels it outlived.
    assert run_cli("aggregate", tmp_path / "votes", "-o", labeled) == 0
    assert read_crossfit_labels(labeled) is None


def test_the_nets_tuned_encoder_reads_the_label_texts_the_anchored_probe_reads(monkeypatch, tmp_path):
    """Its settings were chosen with ``name: description`` anchors (eval/results/encoder.md); the net hands the
    tuned encoder the very texts the anchored probe reads (``anchors_for``: the label stage's, or the names for a
    file whose recorded texts belong to other classes), which are the anchors a fit from the descriptions made, so
    an encoder fitted before keeps its fingerprint."""
    from types import SimpleNamespace

    from llmlabel.distill.anchors import anchors_for
    from llmlabel.distill.tuned_net import net_encoder
    from llmlabel.tuned import TunedEncoder, anchor_texts

    seen = []
    monkeypatch.setattr(TunedEncoder, "fit", classmethod(lambda cls, folder, **kw: seen.append(kw["anchors"])))
    gold = SimpleNamespace(ids=["a", "b"], fold=np.array([0, 1]), labels=np.array([0, 1]))
    for meta in ({"label_texts": ["ham: a text between friends", "spam"]}, {"label_texts": ["spam: x", "ham: y"]},
                 {}):
        d = SimpleNamespace(classes=["ham", "spam"], meta=meta, ids=["a", "b"], texts=["hi", "win"],
                            source=str(tmp_path / "labeled.parquet"))
        net_encoder(d, SimpleNamespace(gold=gold))
        assert seen[-1] == anchors_for(d.classes, meta)
    assert seen == [["ham: a text between friends", "spam"], ["ham", "spam"], ["ham", "spam"]]
    assert anchor_texts(["ham", "spam"], ["a text between friends", ""]) == seen[0]