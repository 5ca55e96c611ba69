"""The files between stages: what one stage writes the next reads with nothing dropped, and a file of another
kind or format version is a one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from llmlabel.artifacts.labeled import read_labeled, write_labeled
from llmlabel.artifacts.taxonomy import load_taxonomy
from llmlabel.artifacts.votes import read_votes, read_votes_manifest
from llmlabel.errors import ConfigError, InputError

# A two-level taxonomy: the parents ("cards", "money") group the leaves and must never become classes, even
# though they carry key phrases of their own.
TAXONOMY = """labels:
  - {id: cards, name: Cards, keyphrases: [card]}
  - {id: money, name: Money, keyphrases: [money]}
  - {id: lost_card, name: Lost card, parent: cards, keyphrases: [lost my card, stolen]}
  - {id: card_arrival, name: Card arrival, parent: cards, keyphrases: [card arrive, new card]}
  - {id: refund, name: Refund, parent: money, keyphrases: [refund, money back]}
  - {id: transfer, name: Transfer, parent: money, keyphrases: [transfer]}
"""
LEAVES = ["Lost card", "Card arrival", "Refund", "Transfer"]
TEXTS = ["I lost my card on day {i}", "when will my new card arrive {i}", "I want a refund for order {i}",
         "my transfer {i} has not arrived", "my card was stolen and I want my money back {i}",
         "hello there, item {i}"]
# second LF: a python LF that disagrees on some items, so the label model's probabilities are not one-hot
STOPPER = "def vote(item):\n    t = item['text']\n    return 'Refund' if 'money' in t else ('Transfer' if 'arrive' in t else -1)\n"


@pytest.fixture()
def chain(tmp_path, monkeypatch):
    rows = [{"id": f"x{i:03d}", "text": TEXTS[i % len(TEXTS)].format(i=i)} for i in range(72)]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "taxonomy.yaml").write_text(TAXONOMY)
    (tmp_path / "lfs.yaml").write_text("lfs:\n  - kind: keyphrases\n  - {name: py, kind: python, function: 'art_lf:vote'}\n")
    (tmp_path / "art_lf.py").write_text(STOPPER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path, [r["id"] for r in rows]


def _label_and_aggregate(tmp: Path, method: str = "ds"):
    from llmlabel.labelmodel.pipeline import aggregate, load_votes
    from llmlabel.labelmodel.pipeline import write_labeled as write_lab
    from llmlabel.lf.run import label_corpus

    label_corpus(tmp / "corpus.jsonl", tmp / "taxonomy.yaml", tmp / "lfs.yaml", tmp / "votes", shard_size=25)
    L, _, texts = load_votes(tmp / "votes", load_taxonomy(tmp / "taxonomy.yaml").classes())
    res = aggregate(L, method)
    write_lab(tmp / "labeled.parquet", L, res, texts)
    return L, res


def test_taxonomy_leaves_are_the_classes_of_votes_and_labels(chain):
    tmp, ids = chain
    tax = load_taxonomy(tmp / "taxonomy.yaml")
    assert tax.classes() == LEAVES and [p.id for p in tax.parents()] == ["cards", "money"]
    L, res = _label_and_aggregate(tmp)
    assert L.labels == LEAVES and L.cardinality == 4 and list(L.ids) == ids
    assert not any(n.endswith(("cards", "money")) for n in L.lf_names)  # no keyword LF for a parent group
    man = read_votes_manifest(tmp / "votes")
    assert man["kind"] == "llmlabel.votes" and man["format_version"] == 1 and man["meta"]["labels"] == LEAVES
    dep = man["depends_on"]
    assert dep["corpus"].startswith("sha256:") and dep["taxonomy"].startswith("sha256:") and "lfs" in dep
    lab = read_labeled(tmp / "labeled.parquet")
    assert lab.classes == LEAVES and lab.ids == ids and len(lab.texts) == 72
    assert [c for c in pq.read_schema(tmp / "labeled.parquet").names if c.startswith("p:")] == [f"p:{c}" for c in LEAVES]
    assert np.array_equal(lab.proba, res["proba"].astype(np.float32))
    assert np.array_equal(lab.label_index, res["label"]) and lab.uncovered.sum() == res["uncovered"].sum() > 0
    assert lab.meta["votes_depend_on"] == dep  # provenance travels with the labels


def test_per_class_probabilities_reach_the_students_targets(chain, monkeypatch):
    """The bug this floor exists for: aggregate wrote p:<class>, distill looked for proba_<class>, and the
    student trained on one-hot targets while metrics.json and the card said soft."""
    from llmlabel.artifacts.model import read_metrics
    from llmlabel.distill import read_labeled as distill_read
    from llmlabel.distill.api import distill
    from llmlabel.distill.static import StaticStudent

    tmp, ids = chain
    _label_and_aggregate(tmp)
    lab = read_labeled(tmp / "labeled.parquet")
    onehot = np.eye(4, dtype=np.float32)[lab.label_index]
    assert np.abs(lab.proba - onehot).max() > 0.05  # the label model's output is really soft here
    d = distill_read(tmp / "labeled.parquet")
    assert d.classes == LEAVES and d.ids == ids and d.file_kind == "llmlabel.labeled"
    assert np.array_equal(d.proba, lab.proba) and np.array_equal(d.weights, lab.confidence)
    seen = {}
    real_fit = StaticStudent.fit

    def spy(self, X, y=None, *, proba=None, **kw):  # records what the real fit is given, then runs it
        seen["proba"], seen["classes"] = np.array(proba), list(kw.get("classes") or [])
        return real_fit(self, X, y, proba=proba, **kw)

    monkeypatch.setattr(StaticStudent, "fit", spy)
    distill(tmp / "labeled.parquet", tmp / "model", student="static", epochs=1, min_per_class=1)
    assert seen["classes"] == LEAVES and np.allclose(seen["proba"], lab.proba, atol=1e-6)
    assert np.abs(seen["proba"] - onehot).max() > 0.05
    m = read_metrics(tmp / "model")
    assert m["soft"] is True and m["training"]["targets"] == "soft" and m["training"]["classes"] == LEAVES
    assert m["training"]["n_items"] == 72 and m["training"]["source_kind"] == "llmlabel.labeled"
    card = (tmp / "model" / "README.md").read_text()
    assert "soft per-class probabilities" in card


def test_one_hot_probabilities_train_hard_and_the_card_says_so(tmp_path):
    from llmlabel.artifacts.model import read_metrics
    from llmlabel.distill.api import distill

    texts = [f"{w} item {i}" for i in range(20) for w in ("good great", "bad awful")]
    li = np.array([0, 1] * 20)
    write_labeled(tmp_path / "l.parquet", ids=[str(i) for i in range(40)], classes=["pos", "neg"],
                  proba=np.eye(2)[li], texts=texts)
    distill(tmp_path / "l.parquet", tmp_path / "m", student="static", epochs=1, soft=True)
    m = read_metrics(tmp_path / "m")
    assert m["soft"] is False and m["training"] == {**m["training"], "targets": "hard", "soft_requested": True}
    card = (tmp_path / "m" / "README.md").read_text()
    assert "Targets: hard labels" in card and "Soft targets were asked for" in card


def test_human_reviewed_rows_train_at_full_weight(tmp_path):
    from llmlabel.distill import read_labeled as distill_read

    P = np.array([[0.6, 0.4], [0.3, 0.7], [0.55, 0.45], [0.2, 0.8]])
    write_labeled(tmp_path / "l.parquet", ids=list("abcd"), classes=["x", "y"], proba=P, texts=list("abcd"),
                  source=["model", "human", "model", "model"])
    lab = read_labeled(tmp_path / "l.parquet")
    assert list(lab.source) == ["model", "human", "model", "model"]
    assert np.allclose(lab.weights(), [0.6, 1.0, 0.55, 0.8])
    d = distill_read(tmp_path / "l.parquet", min_per_class=1)
    assert np.allclose(d.weights, [0.6, 1.0, 0.55, 0.8]) and d.n_human == 1
    with pytest.raises(InputError, match="source must be 'model' or 'human'"):
        write_labeled(tmp_path / "bad.parquet", ids=["a", "b"], classes=["x", "y"], proba=P[:2], source=["me", "model"])


def test_multi_label_files_keep_their_label_lists(tmp_path):
    P = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.7]])
    write_labeled(tmp_path / "m.parquet", ids=["a", "b"], classes=["x", "y", "z"], proba=P, multi_label=True)
    lab = read_labeled(tmp_path / "m.parquet")
    assert lab.multi_label and lab.labels == [["x", "y"], ["z"]] and np.allclose(lab.proba, P)


# ---------------------------------------------------------------- format versions and kinds


def test_a_newer_or_older_format_version_is_one_line_naming_the_file(chain, tmp_path):
    from llmlabel.io_meta import make_meta
    from llmlabel.io_write import write_parquet

    tmp, _ = chain
    _label_and_aggregate(tmp)
    t = pq.read_table(tmp / "labeled.parquet")
    meta = json.loads(t.schema.metadata[b"llmlabel"])
    write_parquet(tmp / "newer.parquet", t.replace_schema_metadata(None), meta={**meta, "format_version": 2})
    with pytest.raises(InputError) as e:
        read_labeled(tmp / "newer.parquet")
    msg = e.value.one_line()
    assert "newer.parquet" in msg and "format_version 2" in msg and "newer llmlabel" in msg and "\n" not in msg
    from llmlabel.distill import (
        read_labeled as distill_read,  # distill goes through the same reader
    )

    with pytest.raises(InputError, match="format_version 2"):
        distill_read(tmp / "newer.parquet")
    man_path = tmp / "votes" / "_manifest.json"
    man = json.loads(man_path.read_text())
    man_path.write_text(json.dumps({**man, "format_version": 0}))
    with pytest.raises(InputError, match=r"_manifest.json: votes file has format_version 0.*older llmlabel"):
        read_votes(tmp / "votes")
    (tmp / "tax2.yaml").write_text("format_version: 2\n" + TAXONOMY)
    with pytest.raises(InputError, match="tax2.yaml: taxonomy file has format_version 2"):
        load_taxonomy(tmp / "tax2.yaml")
    write_parquet(tmp / "plain.parquet", [{"a": 1}], meta=make_meta())
    with pytest.raises(InputError, match="plain.parquet: no class list"):
        read_labeled(tmp / "plain.parquet")


def test_a_file_of_another_kind_is_named_as_such(chain):
    from llmlabel.artifacts.matrix import LabelMatrix
    from llmlabel.distill import read_labeled as distill_read

    tmp, _ = chain
    L = LabelMatrix([[0, 1], [1, -1]], ["a", "b"], labels=["x", "y"])
    L.save(tmp / "votes.parquet")
    with pytest.raises(InputError, match="votes.parquet: this is a votes file, not a labeled file"):
        distill_read(tmp / "votes.parquet")
    _label_and_aggregate(tmp)
    with pytest.raises(InputError, match="this is a labeled file, not a votes file"):
        read_votes(tmp / "labeled.parquet")
    assert read_votes(tmp / "votes.parquet").matrix.labels == ["x", "y"]


def test_files_from_before_versioning_still_read(chain):
    """Files written before format_version existed have the version-1 layout."""
    tmp, ids = chain
    _label_and_aggregate(tmp)
    man_path = tmp / "votes" / "_manifest.json"
    man = json.loads(man_path.read_text())
    for k in ("kind", "format_version", "depends_on"):
        man.pop(k)
    man_path.write_text(json.dumps(man))
    assert list(read_votes(tmp / "votes").matrix.ids) == ids
    t = pq.read_table(tmp / "labeled.parquet")
    meta = json.loads(t.schema.metadata[b"llmlabel"])
    for k in ("kind", "format_version", "classes"):
        meta.pop(k)
    pq.write_table(t.replace_schema_metadata({b"llmlabel": json.dumps(meta).encode()}), tmp / "old.parquet")
    assert read_labeled(tmp / "old.parquet").classes == LEAVES
    assert load_taxonomy(tmp / "taxonomy.yaml").format_version == 1  # the YAML has no format_version


def test_a_stray_vote_is_one_line_naming_row_and_column(tmp_path):
    L = np.full((6, 3), -1, np.int64)
    L[:, 0] = [0, 1, 2, 0, 1, 2]
    L[4, 2] = 99
    np.save(tmp_path / "v.npy", L)
    with pytest.raises(ConfigError) as e:
        read_votes(tmp_path / "v.npy", labels=["a", "b", "c"])
    msg = e.value.one_line()
    assert "v.npy" in msg and "row 4" in msg and "column 2" in msg and "vote 99" in msg
    with pytest.raises(ConfigError, match="row 4.*column 2"):
        read_votes(tmp_path / "v.npy", cardinality=3)


def test_a_rerun_on_another_corpus_into_the_same_votes_folder_is_refused(chain):
    from llmlabel.lf.run import label_corpus

    tmp, _ = chain
    label_corpus(tmp / "corpus.jsonl", tmp / "taxonomy.yaml", tmp / "lfs.yaml", tmp / "votes")
    (tmp / "other.jsonl").write_text(json.dumps({"id": "o1", "text": "refund please"}) + "\n")
    with pytest.raises(ConfigError, match="votes: the votes folder was made from another corpus"):
        label_corpus(tmp / "other.jsonl", tmp / "taxonomy.yaml", tmp / "lfs.yaml", tmp / "votes")
    label_corpus(tmp / "other.jsonl", tmp / "taxonomy.yaml", tmp / "lfs.yaml", tmp / "votes", overwrite=True)
    assert list(read_votes(tmp / "votes").matrix.ids) == ["o1"]
    # the same corpus resumes (nothing to redo)
    assert label_corpus(tmp / "other.jsonl", tmp / "taxonomy.yaml", tmp / "lfs.yaml", tmp / "votes")["rows_labeled"] == 0


def test_predictions_rows_and_sidecar(tmp_path):
    from llmlabel.artifacts.predictions import read_predictions, write_predictions

    rows = [{"id": "a", "label": "x", "confidence": 0.9}, {"id": "b", "label": None, "reason": "empty text"}]
    assert write_predictions(tmp_path / "p.jsonl", rows, classes=["x", "y"]) == 2
    p = read_predictions(tmp_path / "p.jsonl")
    assert p.task == "single" and p.classes == ["x", "y"] and p.ids == ["a", "b"] and p.rows[1]["label"] is None
    with pytest.raises(InputError, match=r"q.jsonl:1: a null label needs a 'reason'"):
        write_predictions(tmp_path / "q.jsonl", [{"id": "a", "label": None}], classes=["x", "y"])
    assert not (tmp_path / "q.jsonl").exists()  # atomic: a failed write leaves no half file
    with pytest.raises(InputError, match="label 'z' is not one of the 2 classes"):
        write_predictions(tmp_path / "q.jsonl", [{"id": "a", "label": "z"}], classes=["x", "y"])


def test_predict_and_distill_cross_through_the_files(chain, capsys):
    """labeled.parquet -> distill -> model folder -> predict: every corpus item gets a prediction in the
    student's class order, and the student agrees with the labels it was trained on."""
    from llmlabel.artifacts.predictions import read_predictions
    from llmlabel.cli import main

    tmp, ids = chain
    _label_and_aggregate(tmp)
    for argv in (["distill", "labeled.parquet", "-o", "model", "--epochs", "2", "--min-per-class", "1"],
                 ["predict", "model", "corpus.jsonl", "-o", "preds.jsonl"]):
        try:
            main(argv)
        except SystemExit as e:
            assert not e.code, capsys.readouterr().err
    pred = read_predictions(tmp / "preds.jsonl")
    lab = read_labeled(tmp / "labeled.parquet")
    assert pred.ids == ids and pred.classes == LEAVES and pred.task == "single"
    covered = ~lab.uncovered
    agree = np.mean(np.array([r["label"] for r in pred.rows])[covered] == np.array(lab.label)[covered])
    assert agree >= 0.9, agree


def test_step_by_step_cli_chain_on_an_induced_two_level_taxonomy(tmp_path, monkeypatch, capsys):
    """taxonomy --levels 2 -> label -> aggregate -> distill -> predict, as a user types it: the parents are
    not classes anywhere, the student's targets are the aggregate probabilities, and the card and metrics.json
    state what training used."""
    from llmlabel.artifacts.model import read_metrics
    from llmlabel.cli import main

    root = Path(__file__).resolve().parents[1]
    rows = [json.loads(x) for x in (root / "examples" / "banking77_sample.jsonl").read_text().splitlines()[:150]]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    (tmp_path / "lfs.yaml").write_text("lfs:\n  - {kind: keyphrases}\n  - {name: emb, kind: embedding, embedder: wordllama, "
                                       "threshold: 0.3}\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["taxonomy", "corpus.jsonl", "-o", "taxonomy.yaml", "--levels", "2", "--max-labels", "8",
                  "--embedder", "wordllama", "-q"],
                 ["label", "corpus.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-o", "votes", "-q"],
                 ["aggregate", "votes", "-t", "taxonomy.yaml", "--method", "ds", "-o", "labeled.parquet"],
                 ["distill", "labeled.parquet", "-o", "model", "--min-per-class", "1"],
                 ["predict", "model", "corpus.jsonl", "-o", "preds.jsonl"]):
        try:
            main(argv)
        except SystemExit as e:
            assert not e.code, (argv[0], capsys.readouterr().err)
    tax = load_taxonomy("taxonomy.yaml")
    assert tax.parents(), "--levels 2 made no parent groups"
    parent_names = {p.name for p in tax.parents()}
    lab = read_labeled("labeled.parquet")
    assert lab.classes == tax.classes() and not parent_names & set(lab.classes)
    assert read_votes_manifest("votes")["meta"]["labels"] == tax.classes()
    assert lab.ids == [str(r["id"]) for r in rows]
    m = read_metrics("model")
    soft = bool(np.abs(lab.proba - np.eye(len(lab.classes))[lab.label_index]).max() > 1e-4)
    assert m["training"]["targets"] == ("soft" if soft else "hard") and m["classes"] == lab.classes
    card = Path("model/README.md").read_text()
    assert ("soft per-class probabilities" in card) == soft
    from llmlabel.artifacts.predictions import read_predictions

    pred = read_predictions("preds.jsonl")
    assert pred.ids == lab.ids and set(pred.classes) == set(lab.classes)
    agree = np.mean(np.array([r["label"] for r in pred.rows]) == np.array(lab.label))
    assert agree >= 0.6, agree  # the student reproduces most of the labels it was trained on


def test_saved_taxonomy_carries_its_format_version_and_round_trips(tmp_path):
    from llmlabel.artifacts.taxonomy import save_taxonomy

    (tmp_path / "t.yaml").write_text(TAXONOMY)
    tax = load_taxonomy(tmp_path / "t.yaml")
    save_taxonomy(tax.model_copy(update={"multi_label": True}), tmp_path / "u.yaml")
    text = (tmp_path / "u.yaml").read_text()
    assert "format_version: 1" in text and "multi_label: true" in text
    again = load_taxonomy(tmp_path / "u.yaml")
    assert again.multi_label and again.classes() == LEAVES and again.ids() == tax.ids()
    save_taxonomy(tax, tmp_path / "v.yaml")
    assert "multi_label" not in (tmp_path / "v.yaml").read_text()  # the default stays out of the file


# -- the small JSON files between stages: each owner writes what it reads, and bad input names file and field ------

def test_review_queue_state_and_rounds_round_trip_and_bad_input(tmp_path):
    from llmlabel.artifacts.review import (ReviewState, add_round, queue_path, read_review_queue, read_rounds,
                                           write_review_queue)

    rows = [{"rank": 1, "index": 4, "id": "a", "text": "café ü", "label": 0, "label_name": "x", "risk": 0.9},
            {"rank": 2, "index": 0, "id": "b", "text": None, "label": 1, "label_name": "y", "risk": 0.5}]
    q = write_review_queue(queue_path(tmp_path / "labeled.parquet"), rows)
    assert q.name == "labeled.review.jsonl" and "café" in q.read_text(encoding="utf-8")  # UTF-8 kept as is
    assert [dict(r) for r in read_review_queue(q).rows] == rows
    q.write_text(q.read_text(encoding="utf-8") + '{"rank": "3", "id": "c"}\n', encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_review_queue(q)
    assert "labeled.review.jsonl:3:" in str(e.value) and "rank" in str(e.value)

    st = ReviewState(tmp_path / "review_state.json")
    st.mark_exported(["a", 2], strategy="random")
    st.mark_reviewed(["a"])
    st.save()
    back = ReviewState(tmp_path / "review_state.json")
    assert back.seen() == {"a", "2"} and back.strategy == {"a": "random", "2": "random"}
    (tmp_path / "review_state.json").write_text(json.dumps({"version": 1, "exported": ["a"], "reviewed": {}}))
    with pytest.raises(InputError) as e:
        ReviewState(tmp_path / "review_state.json")
    assert "exported" in str(e.value) and "review_state.json" in str(e.value)

    r = tmp_path / "review_rounds.json"
    add_round(r, {"strategy": "human review", "n_labels": 40, "accuracy": 0.8, "chosen": "ds"})
    add_round(r, {"strategy": "human review", "n_labels": 20, "accuracy": 0.7, "chosen": "mv"})
    add_round(r, {"strategy": "human review", "n_labels": 40, "accuracy": 0.85, "chosen": "ds"})  # a rerun
    got = read_rounds(r)
    assert [(p["n_labels"], p["accuracy"]) for p in got.rounds] == [(20, 0.7), (40, 0.85)]
    assert got.note.startswith("llmlabel aggregate --gold")
    r.write_text(json.dumps({"rounds": [{"n_labels": 10, "accuracy": "high"}]}))
    with pytest.raises(InputError) as e:
        read_rounds(r)
    assert "rounds[0].accuracy" in str(e.value) and "review_rounds.json" in str(e.value)


def test_cascade_record_round_trips_and_bad_input(tmp_path):
    from llmlabel.artifacts.cascade import cascade_path, read_cascade, write_cascade

    curve = [{"threshold": 0.2, "deferral": 0.0, "accuracy": 0.7}, {"threshold": 0.9, "deferral": 1.0, "accuracy": 0.9}]
    calib = {"threshold": 0.9, "point": curve[1], "goal_met": True, "n_dev": 5}
    p = write_cascade(cascade_path(tmp_path / "preds.jsonl"), curve, calib)
    assert p.name == "preds.jsonl.cascade.json"
    # the bytes predict has always written: calibration first, indent 1, a final newline
    assert p.read_text() == json.dumps({"calibration": calib, "curve": curve}, indent=1) + "\n"
    rec = read_cascade(p)
    assert [dict(x) for x in rec.curve] == curve and dict(rec.calibration) == calib
    assert rec.series() == {"deferral": [0.0, 1.0], "accuracy": [0.7, 0.9], "threshold": [0.2, 0.9]}
    p.write_text(json.dumps({"calibration": None, "curve": [{"threshold": 0.1, "deferral": 0.0}]}))
    with pytest.raises(InputError) as e:
        read_cascade(p)
    assert "curve[0].accuracy" in str(e.value) and "preds.jsonl.cascade.json" in str(e.value)


def test_stage_records_round_trip_old_argv_records_and_bad_input(tmp_path):
    from llmlabel.artifacts.pipeline_state import (STATE_DIR, StageRecord, read_stage_record, read_stage_records,
                                                   write_stage_record)

    (tmp_path / STATE_DIR).mkdir()
    rec = StageRecord(stage="aggregate", call={"votes": "w/votes", "dev": "dev.jsonl"}, inputs={"w/votes": "x"},
                      seconds=1.5, finished="2025-01-01T00:00:00")
    p = write_stage_record(tmp_path, rec)
    assert p.read_text() == json.dumps({"stage": "aggregate", "call": rec.call, "inputs": rec.inputs,
                                        "seconds": 1.5, "finished": "2025-01-01T00:00:00"}, indent=2)
    assert read_stage_record(tmp_path, "aggregate") == rec and read_stage_record(tmp_path, "label") is None
    assert rec.option("dev") == "dev.jsonl"
    # a record from before `llmlabel run` called library functions: the command line, no call
    (tmp_path / STATE_DIR / "label.json").write_text(json.dumps(
        {"stage": "label", "argv": ["label", "c.jsonl", "--dev-set", "x", "--dev", "old.jsonl"], "seconds": 2}))
    old = read_stage_record(tmp_path, "label")
    assert old.call is None and old.option("dev") == "old.jsonl" and old.option("gold") is None
    assert [r.stage for r in read_stage_records(tmp_path / STATE_DIR)] == ["aggregate", "label"]
    (tmp_path / STATE_DIR / "label.json").write_text(json.dumps({"stage": "label", "seconds": "slow"}))
    with pytest.raises(InputError) as e:
        read_stage_record(tmp_path, "label")
    assert "seconds" in str(e.value) and "label.json" in str(e.value)


def test_assignments_round_trip_and_bad_input(tmp_path):
    from llmlabel.artifacts.taxonomy import assignments_path, read_assignments, write_assignments

    p = assignments_path(tmp_path / "tax.yaml")
    assert p.name == "tax.assignments.jsonl"
    rows = [{"id": "1", "label": "refund", "score": 0.91}, {"id": "2", "label": "other", "score": 0.1}]
    assert write_assignments(p, rows, {"taxonomy": "tax.yaml"}) == 2
    a = read_assignments(p)
    assert (a.ids, a.labels, a.scores) == (("1", "2"), ("refund", "other"), (0.91, 0.1))
    assert a.meta["taxonomy"] == "tax.yaml"
    p.with_name(p.name + ".meta.json").unlink()  # hand-edited rows: the sidecar's size seal would refuse them first
    p.write_text(p.read_text() + '{"id": "3", "label": "refund"}\n')
    with pytest.raises(InputError) as e:
        read_assignments(p)
    assert "assignments.jsonl:3:" in str(e.value) and "score" in str(e.value)
    p.write_text('{"id": "1", "label": "a", "score": 1}\n{"id": 1.0, "label": "b", "score": 1}\n')
    with pytest.raises(InputError) as e:
        read_assignments(p)
    assert "duplicate" in str(e.value) and "assignments.jsonl:2:" in str(e.value)
