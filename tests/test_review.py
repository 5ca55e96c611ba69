"""The review round trip: export tasks for Label Studio, read its exports back as gold, clamp gold in aggregate."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from llmlabel.review.artifact import read_labeled
from run_fixture import make_run
from clirun import run_cli as _cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("review-run"), student=False)


def _gold_all(run) -> dict[str, str]:
    return {json.loads(s)["id"]: json.loads(s)["label"] for s in run["gold_all"].read_text().splitlines()}


def _annotate(tasks, answers, *, cancel=(), extra_annotators=None):
    """A Label Studio JSON export of ``tasks``: one annotation each from ``answers`` (item id -> label)."""
    out = []
    for t_id, t in enumerate(tasks, 1):
        item = t["data"]["item_id"]
        anns = [{"id": 10 * t_id, "completed_by": 1, "was_cancelled": item in cancel,
                 "result": [] if item in cancel else [{"from_name": "label", "to_name": "text", "type": "choices",
                                                       "value": {"choices": [answers[item]]}, "origin": "manual"}]}]
        for k, lab in enumerate((extra_annotators or {}).get(item, []), 2):
            anns.append({"id": 10 * t_id + k, "completed_by": k, "was_cancelled": False,
                         "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                     "value": {"choices": [lab]}}]})
        out.append({"id": t_id, "data": t["data"], "annotations": anns, "predictions": t["predictions"]})
    return out


@pytest.mark.parametrize("strategy", ["random", "uncertainty", "review", "diverse"])
def test_export_writes_tasks_and_config_and_never_resends(run, tmp_path, strategy):
    lab = read_labeled(run["run"] / "labeled.parquet")
    state = tmp_path / "state.json"
    out = tmp_path / "tasks.json"
    assert _cli("review", "export", run["run"] / "labeled.parquet", "-o", out, "--n", 40, "--strategy", strategy,
                "--state", state) == 0
    tasks = json.loads(out.read_text())
    assert len(tasks) == 40
    ids = [t["data"]["item_id"] for t in tasks]
    assert len(set(ids)) == 40 and set(ids) <= set(lab.ids)
    pos = {i: r for r, i in enumerate(lab.ids)}
    for t in tasks:
        r = pos[t["data"]["item_id"]]
        assert t["data"]["text"] == lab.texts[r]
        pred = t["predictions"][0]
        assert pred["result"][0]["value"]["choices"] == [lab.classes[lab.label_index[r]]]
        assert pred["score"] == pytest.approx(lab.confidence[r], abs=1e-6)
    conf = lab.confidence[[pos[i] for i in ids]]
    if strategy == "uncertainty":  # the 40 least confident items
        assert conf.max() <= np.sort(lab.confidence)[39] + 1e-9
    if strategy == "diverse":  # spread over the labels, not piled on one
        assert len({t["predictions"][0]["result"][0]["value"]["choices"][0] for t in tasks}) == len(lab.classes)
    config = ET.fromstring((tmp_path / "tasks.config.xml").read_text())
    choices = config.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "text" and choices.get("choice") == "single-radio"
    assert [c.get("value") for c in choices.findall("Choice")] == lab.classes
    # A second export never repeats an item sent before.
    assert _cli("review", "export", run["run"] / "labeled.parquet", "-o", tmp_path / "t2.json", "--n", 40,
                "--strategy", strategy, "--state", state) == 0
    ids2 = [t["data"]["item_id"] for t in json.loads((tmp_path / "t2.json").read_text())]
    assert len(ids2) == 40 and not set(ids) & set(ids2)


def test_review_strategy_ranks_errors_first(run):
    """The review queue's top 10% holds far more label errors than the corpus on average (real keyword LFs)."""
    from llmlabel.labelmodel.pipeline import load_votes
    from llmlabel.labelmodel.strategies import select

    lab = read_labeled(run["run"] / "labeled.parquet")
    L = load_votes(run["run"] / "votes")[0]
    gold = _gold_all(run)
    wrong = np.array([lab.classes[lab.label_index[r]] != gold[i] for r, i in enumerate(lab.ids)])
    top = select("review", len(lab) // 10, proba=lab.proba, label_index=lab.label_index, votes=L.votes)
    assert wrong[top].mean() >= 2 * wrong.mean()


def test_export_review_library_call_sends_the_riskiest_unsent_items(run, tmp_path):
    """``review.export_review`` (what `review export` calls): the tasks it writes are the items it names, riskiest
    first, with more label errors than the corpus; a second call leaves them out and says how many."""
    import dataclasses

    from llmlabel.labelmodel.strategies import select
    from llmlabel.review import export_review

    labeled, state = run["run"] / "labeled.parquet", tmp_path / "state.json"
    lab = read_labeled(labeled)
    gold = _gold_all(run)
    n = len(lab) // 10
    r = export_review(labeled, tmp_path / "tasks.json", select=select, n=n, strategy="review", state=state)
    assert (r.n, r.strategy, r.votes_used, r.features, r.excluded) == (n, "review", True, "tfidf", 0)
    assert r.tasks == tmp_path / "tasks.json" and r.config == tmp_path / "tasks.config.xml" and r["state"] == state
    assert [t["data"]["item_id"] for t in json.loads(r.tasks.read_text())] == list(r.ids)
    wrong = {i: lab.classes[lab.label_index[k]] != gold[i] for k, i in enumerate(lab.ids)}
    assert np.mean([wrong[i] for i in r.ids]) >= 2 * np.mean(list(wrong.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n = 0
    r2 = export_review(labeled, tmp_path / "t2.json", select=select, n=n, strategy="uncertainty", state=state,
                       features="none")
    assert r2.excluded == n and not set(r2.ids) & set(r.ids) and r2.features is None


def test_import_json_minjson_csv_majority_conflicts_and_skips(run, tmp_path):
    out = tmp_path / "tasks.json"
    assert _cli("review", "export", run["run"] / "labeled.parquet", "-o", out, "--n", 12, "--strategy", "random",
                "--state", tmp_path / "s.json") == 0
    tasks = json.loads(out.read_text())
    gold = _gold_all(run)
    ids = [t["data"]["item_id"] for t in tasks]
    others = {g: [c for c in ("billing", "delivery", "refund") if c != gold[g]] for g in ids}
    extra = {ids[0]: [gold[ids[0]]],                          # two agree
             ids[1]: [others[ids[1]][0]],                     # 1-1 tie: no gold, reported
             ids[2]: [others[ids[2]][0], gold[ids[2]]]}       # 2-1 majority, conflict reported
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_annotate(tasks, gold, cancel={ids[3]}, extra_annotators=extra)))
    g = tmp_path / "gold.jsonl"
    assert _cli("review", "import", export, "-o", g, "--labeled", run["run"] / "labeled.parquet",
                "--state", tmp_path / "s.json") == 0
    rows = {json.loads(s)["id"]: json.loads(s) for s in g.read_text().splitlines()}
    assert set(rows) == set(ids) - {ids[1], ids[3]}
    assert all(rows[i]["label"] == gold[i] for i in rows)
    assert rows[ids[2]]["conflict"] and rows[ids[2]]["agreement"] == pytest.approx(2 / 3, abs=1e-3)
    assert rows[ids[0]]["n_annotators"] == 2 and not rows[ids[0]]["conflict"]
    state = json.loads((tmp_path / "s.json").read_text())
    assert set(state["reviewed"]) == set(rows) and ids[3] not in state["exported"]  # skipped: may be sent again
    # each row keeps its item's text, so the file is a gold set `auto --gold` and `label --gold` can read
    texts = {t["data"]["item_id"]: t["data"]["text"] for t in tasks}
    assert all(rows[i]["text"] == texts[i] for i in rows)
    (tmp_path / "no_text.json").write_text(json.dumps([{**t, "data": {k: v for k, v in t["data"].items()
                                                                       if k != "text"}} for t in
                                                        _annotate(tasks, gold, cancel={ids[3]})]))
    g3 = tmp_path / "gold-no-text.jsonl"  # an export without the text: the labeled file's text of the item
    assert _cli("review", "import", tmp_path / "no_text.json", "-o", g3, "--labeled", run["run"] / "labeled.parquet",
                "--state", tmp_path / "s3.json") == 0
    assert all(json.loads(x)["text"] == texts[json.loads(x)["id"]] for x in g3.read_text().splitlines())
    from llmlabel.artifacts.gold import read_gold

    assert list(read_gold(g3, need_text=True).texts) == [texts[i] for i in read_gold(g3).ids]  # what auto --gold reads

    # JSON-MIN and CSV, as Label Studio's converter writes them (one row per non-cancelled annotation).
    flat = []
    for t in _annotate(tasks, gold, cancel={ids[3]}, extra_annotators=extra):
        for a in t["annotations"]:
            if not a["was_cancelled"]:
                flat.append({**t["data"], "id": t["id"], "label": a["result"][0]["value"]["choices"][0],
                             "annotator": a["completed_by"], "annotation_id": a["id"]})
    (tmp_path / "min.json").write_text(json.dumps(flat))
    with (tmp_path / "export.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    for src in ("min.json", "export.csv"):
        g2 = tmp_path / f"gold-{src}.jsonl"
        assert _cli("review", "import", tmp_path / src, "-o", g2, "--labeled", run["run"] / "labeled.parquet",
                    "--state", tmp_path / f"s-{src}.json") == 0
        rows2 = {json.loads(s)["id"]: json.loads(s)["label"] for s in g2.read_text().splitlines()}
        assert rows2 == {i: r["label"] for i, r in rows.items()}, src


def test_import_unknown_label_is_an_error_naming_the_task_or_extends_the_taxonomy(run, tmp_path, capsys):
    assert _cli("review", "export", run["run"] / "labeled.parquet", "-o", tmp_path / "t.json", "--n", 3,
                "--state", tmp_path / "s.json") == 0
    tasks = json.loads((tmp_path / "t.json").read_text())
    capsys.readouterr()
    answers = {t["data"]["item_id"]: "billing" for t in tasks}
    answers[tasks[1]["data"]["item_id"]] = "account access"
    export = tmp_path / "e.json"
    export.write_text(json.dumps(_annotate(tasks, answers)))
    assert _cli("review", "import", export, "-o", tmp_path / "g.jsonl", "--labeled", run["run"] / "labeled.parquet") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task 2" in err and "'account access' is not in the taxonomy" in err
    assert not (tmp_path / "g.jsonl").exists()
    tax = tmp_path / "taxonomy.yaml"
    tax.write_text((run["run"] / "taxonomy.yaml").read_text())
    assert _cli("review", "import", export, "-o", tmp_path / "g.jsonl", "-t", tax, "--add-labels") == 0
    from llmlabel.artifacts.taxonomy import load_taxonomy

    assert [lab.name for lab in load_taxonomy(tax).labels][-1] == "account access"


def test_aggregate_gold_clamps_reviewed_items_and_cross_fits(run, tmp_path):
    from llmlabel.labelmodel.gold import aggregate_with_gold, cross_fitted, load_gold
    from llmlabel.labelmodel.pipeline import aggregate, load_dev, load_votes

    gold = _gold_all(run)
    lab0 = read_labeled(run["run"] / "labeled.parquet")
    # Review the 40 least confident items, the ones the label model most likely got wrong.
    pick = [lab0.ids[i] for i in np.argsort(lab0.confidence, kind="stable")[:40] if lab0.ids[i] not in
            {json.loads(s)["id"] for s in run["dev"].read_text().splitlines()}]
    g = tmp_path / "gold.jsonl"
    g.write_text("".join(json.dumps({"id": i, "label": gold[i]}) + "\n" for i in pick))
    out = tmp_path / "labeled.parquet"
    assert _cli("aggregate", run["run"] / "votes", "--dev", run["dev"], "--gold", g, "-o", out) == 0
    lab = read_labeled(out)
    pos = {i: r for r, i in enumerate(lab.ids)}
    rows = [pos[i] for i in pick]
    assert (lab.source[rows] == "human").all() and (lab.source == "human").sum() == len(pick)
    assert [lab.classes[lab.label_index[r]] for r in rows] == [gold[i] for i in pick]
    assert np.allclose(lab.confidence[rows], 1.0) and np.allclose(lab.proba[rows].max(1), 1.0)
    rep = lab.meta["label_model"]
    assert rep["n_gold"] == len(pick) and rep["n_dev"] == len(pick) + 90
    assert set(rep["reliability"]) >= {"before", "after"}
    rounds = json.loads((tmp_path / "review_rounds.json").read_text())["rounds"]
    assert [r["n_labels"] for r in rounds] == [len(pick)] and rounds[0]["accuracy"] == rep["dev_accuracy_oof"]
    # The human labels fixed what the model got wrong among them; model rows keep the model's answer.
    acc0 = np.mean([lab0.classes[lab0.label_index[r]] == gold[i] for r, i in enumerate(lab0.ids)])
    acc1 = np.mean([lab.classes[lab.label_index[r]] == gold[i] for r, i in enumerate(lab.ids)])
    assert acc1 > acc0

    # Cross-fitting: an item's out-of-fold score does not depend on its own label.
    L = load_votes(run["run"] / "votes")[0]
    r_g, y_g = load_gold(g, L)
    L_sel = L.take(r_g)
    raw, cal = cross_fitted(L, L_sel, y_g, "ds-dev", "temperature")
    y_flip = y_g.copy()
    y_flip[0] = (y_flip[0] + 1) % L.cardinality
    raw2, cal2 = cross_fitted(L, L_sel, y_flip, "ds-dev", "temperature")
    assert np.allclose(raw[0], raw2[0]) and np.allclose(cal[0], cal2[0])
    assert not np.allclose(raw, raw2)  # ...while the other folds' models did learn from it

    # Without gold the labels are exactly what plain aggregation gives.
    L_dev, y_dev = load_dev(run["dev"], L, L.labels)
    a = aggregate(L, "auto", L_dev, y_dev)
    b = aggregate_with_gold(L, "auto", L_dev, y_dev)
    assert np.array_equal(a["label"], b["label"]) and (b["source"] == "model").all()


def test_aggregate_gold_errors_name_the_line(run, tmp_path, capsys):
    g = tmp_path / "gold.jsonl"
    g.write_text('{"id": "t0001", "label": "billing"}\n{"id": "t0002", "label": "nope"}\n')
    assert _cli("aggregate", run["run"] / "votes", "--gold", g, "-o", tmp_path / "l.parquet") == 2
    err = capsys.readouterr().err
    assert f"{g}:2" in err and "'nope' is not in the taxonomy" in err
    g.write_text('{"id": "zzz", "label": "billing"}\n')
    assert _cli("aggregate", run["run"] / "votes", "--gold", g, "-o", tmp_path / "l.parquet") == 2
    assert "gold item id 'zzz'" in capsys.readouterr().err


def test_multi_label_export_uses_checkboxes_and_import_keeps_majority_labels(tmp_path):
    from llmlabel.artifacts.labeled import write_labeled

    classes = ["anger", "joy", "surprise"]
    proba = np.array([[0.9, 0.7, 0.1], [0.2, 0.3, 0.4], [0.6, 0.1, 0.8], [0.1, 0.9, 0.2]])
    path = tmp_path / "labeled.parquet"
    write_labeled(path, ids=["a", "b", "c", "d"], classes=classes, proba=proba, multi_label=True,
                  texts=["grr yay", "hm", "grr wow", "yay"])
    out = tmp_path / "tasks.json"
    assert _cli("review", "export", path, "-o", out, "--n", 3, "--strategy", "uncertainty") == 0
    config = ET.fromstring((tmp_path / "tasks.config.xml").read_text())
    assert config.find("Choices").get("choice") == "multiple"
    tasks = {t["data"]["item_id"]: t for t in json.loads(out.read_text())}
    assert len(tasks) == 3
    if "a" in tasks:
        assert tasks["a"]["predictions"][0]["result"][0]["value"]["choices"] == ["anger", "joy"]
    if "b" in tasks:  # nothing reaches 0.5: the top class is proposed
        assert tasks["b"]["predictions"][0]["result"][0]["value"]["choices"] == ["surprise"]
    item = next(iter(tasks))
    export = [{"id": 1, "data": tasks[item]["data"], "annotations": [
        {"id": k, "completed_by": k, "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                                 "value": {"choices": ch}}]}
        for k, ch in enumerate([["anger", "joy"], ["anger"], ["anger", "joy", "surprise"]], 1)]}]
    (tmp_path / "e.json").write_text(json.dumps(export))
    assert _cli("review", "import", tmp_path / "e.json", "-o", tmp_path / "g.jsonl", "--labeled", path) == 0
    row = json.loads((tmp_path / "g.jsonl").read_text())
    assert row["id"] == item and row["label"] == ["anger", "joy"] and row["n_annotators"] == 3 and row["conflict"]


def test_diverse_skips_near_duplicates_and_spreads_over_labels():
    from llmlabel.labelmodel.strategies import select

    rng = np.random.default_rng(0)
    n, k = 60, 3
    proba = rng.dirichlet(np.ones(k), n)
    texts = [f"unique message number {i} about topic {i % 7}" for i in range(n)]
    order = np.argsort(proba.max(1))
    for j in order[1:6]:  # the most uncertain items are near-copies of the single most uncertain one
        texts[j] = texts[order[0]] + " !"
        proba[j] = proba[order[0]]
    picked = select("diverse", 9, proba=proba, texts=texts)
    assert len(picked) == 9 and len(set(picked)) == 9
    assert sum(texts[i].startswith(texts[order[0]]) for i in picked) == 1
    labels = proba.argmax(1)[picked]
    assert np.bincount(labels, minlength=k).min() == 3  # three turns of one item per label
    unc = select("uncertainty", 9, proba=proba)
    assert sum(texts[i].startswith(texts[order[0]]) for i in unc) == 6  # what diverse avoids


def test_oof_classifier_flags_flipped_labels():
    """Cleanlab-style self-confidence: a classifier that never saw an item doubts its label when it was flipped."""
    from llmlabel.labelmodel.review import oof_proba, review_scores

    rng = np.random.default_rng(0)
    k, n = 4, 800
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 16)) + 3 * np.eye(k, 16)[y]  # separable classes
    flipped = rng.random(n) < 0.05
    noisy = np.where(flipped, (y + 1 + rng.integers(0, k - 1, n)) % k, y)
    P = oof_proba(X, noisy, n_classes=k)
    assert P.shape == (n, k) and np.allclose(P.sum(1), 1)
    uniform = np.full((n, k), 1 / k)  # the label model knows nothing here: the text signal must do the work
    risk = review_scores(uniform, None, P, labels=noisy)["risk"]
    top = np.argsort(-risk, kind="stable")[: n // 10]
    assert flipped[top].mean() >= 0.4  # the top 10% holds most of the 5% flips (>= 8x the base rate)
    # In-sample fitting would memorise the flips instead: out-of-fold is what makes the signal work.
    assert (P[np.arange(n), noisy][flipped]).mean() < 0.3


def test_review_strategy_with_text_features_ranks_errors_first(run):
    from llmlabel.labelmodel.pipeline import load_votes
    from llmlabel.embed.tfidf import text_features
    from llmlabel.labelmodel.strategies import select

    lab = read_labeled(run["run"] / "labeled.parquet")
    L = load_votes(run["run"] / "votes")[0]
    gold = _gold_all(run)
    wrong = np.array([lab.classes[lab.label_index[r]] != gold[i] for r, i in enumerate(lab.ids)])
    n_top = len(lab) // 10
    votes_only = select("review", n_top, proba=lab.proba, label_index=lab.label_index, votes=L.votes)
    with_text = select("review", n_top, proba=lab.proba, label_index=lab.label_index, votes=L.votes,
                       features=text_features(lab.texts))
    # Here 12% of labels are wrong; votes alone put 53% errors in the top 10%, reading the text too 67%.
    assert wrong[with_text].mean() >= max(wrong[votes_only].mean(), 4 * wrong.mean())
