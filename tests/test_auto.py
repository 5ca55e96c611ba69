"""``llmlabel auto`` on the bundled Banking77 sample in each situation (no labels; labels; labels + gold;
multi-label), checking what a user relies on: labels from the taxonomy, a model that loads and predicts
better than chance on items whose labels it never saw, a report with its sections, the three figures, and a
rerun that resumes without redoing finished stages. A cut of the sample (8 intents) and WordLlama keep it
fast; the default MiniLM path is what README's commands run (tests/test_readme.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from clirun import run_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "banking77_sample.jsonl"


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 intents of the sample (all their rows), their names, and 4 gold rows per intent."""
    tmp = tmp_path_factory.mktemp("auto-data")
    rows = [json.loads(x) for x in SAMPLE.read_text().splitlines()]
    keep = [c for c, _ in Counter(r["category"] for r in rows).most_common(8)]
    rows = [r for r in rows if r["category"] in keep]
    gold, seen = [], Counter()
    for r in rows:
        if seen[r["category"]] < 4:
            seen[r["category"]] += 1
            gold.append({"id": r["id"], "text": r["text"], "label": r["category"]})
    (tmp / "labels.txt").write_text("".join(f"{c}\n" for c in keep))
    return {"corpus": _jsonl(tmp / "corpus.jsonl", rows), "rows": rows, "labels": tmp / "labels.txt",
            "names": keep, "gold": _jsonl(tmp / "gold.jsonl", gold), "gold_ids": {g["id"] for g in gold}}


def _auto(tmp: Path, corpus, *extra) -> tuple[Path, int]:
    return tmp / "run", run_cli("auto", corpus, "-o", tmp / "run", "--embedder", "wordllama", *extra)


def _predictions(run: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, (run / "predictions.jsonl").read_text().splitlines())}


def _check_common(run: Path, out: str, classes: list[str] | None = None):
    """Labels from the taxonomy, a model that loads and predicts them, a report with its sections, the figures."""
    from llmlabel.artifacts.labeled import read_labeled
    from llmlabel.artifacts.taxonomy import load_taxonomy
    from llmlabel.distill.export import load_student

    tax = load_taxonomy(run / "taxonomy.yaml")
    if classes is not None:
        assert tax.classes() == classes
    lab = read_labeled(run / "labeled.parquet")
    assert set(lab.label) <= set(tax.classes())
    student = load_student(run / "model")
    proba = student.predict_proba(["my card has not arrived yet", "what is the exchange rate"])
    assert proba.shape == (2, len(tax.classes()))
    html = (run / "report.html").read_text()
    for section in ("taxonomy", "lfs", "distribution", "student"):
        assert f'<section id="{section}">' in html
    for what in ("labels", "model", "report", "coverage", "accuracy", "student", "next"):
        assert any(ln.startswith(what) for ln in out.splitlines()), what
    assert f"llmlabel run {run / 'pipeline.yaml'}" in out
    return tax, lab


def _resumes(tmp: Path, corpus, capsys, *extra):
    """The same command again: every stage up to date, nothing rewritten."""
    before = {p: p.stat().st_mtime_ns for p in (tmp / "run").rglob("*") if p.is_file() and "report" not in p.name}
    _, code = _auto(tmp, corpus, *extra)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "0 stage(s) ran, 5 up to date" in err
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before


def test_no_labels_induces_a_taxonomy_and_resumes(data, tmp_path, capsys):
    from sklearn.metrics import normalized_mutual_info_score

    run, code = _auto(tmp_path, data["corpus"], "--max-labels", "8")
    out, err = capsys.readouterr()
    assert code == 0, err
    tax, lab = _check_common(run, out)
    assert 2 <= len(tax.classes()) <= 8
    spec = yaml.safe_load((run / "pipeline.yaml").read_text())
    assert [next(iter(s)) for s in spec["stages"]] == ["taxonomy", "label", "aggregate", "distill", "predict"]
    assert "unknown without gold" in out  # no gold: no accuracy estimate is made up
    pred = _predictions(run)
    truth = [r["category"] for r in data["rows"]]
    nmi = normalized_mutual_info_score(truth, [pred[r["id"]]["label"] for r in data["rows"]])
    assert nmi > 0.5, nmi  # the student's clusters follow the intents (chance: ~0)
    _resumes(tmp_path, data["corpus"], capsys, "--max-labels", "8")
    # an edited pipeline.yaml is never replaced silently
    p = run / "pipeline.yaml"
    p.write_text(p.read_text().replace("max-labels: 8", "max-labels: 6"))
    _, code = _auto(tmp_path, data["corpus"], "--max-labels", "8")
    assert code == 2 and "edited since llmlabel auto wrote it" in capsys.readouterr().err
    assert "max-labels: 6" in p.read_text()


def test_known_labels(data, tmp_path, capsys):
    run, code = _auto(tmp_path, data["corpus"], "--labels", data["labels"])
    out, err = capsys.readouterr()
    assert code == 0, err
    _check_common(run, out, data["names"])
    pred = _predictions(run)
    acc = np.mean([pred[r["id"]]["label"] == r["category"] for r in data["rows"]])
    assert acc > 0.6, acc  # chance: 1/8


def test_labels_and_gold(data, tmp_path, capsys, short_tuning):
    from llmlabel.artifacts.labeled import read_labeled

    extra = ("--labels", data["labels"], "--gold", data["gold"])
    run, code = _auto(tmp_path, data["corpus"], *extra)
    out, err = capsys.readouterr()
    assert code == 0, err
    _check_common(run, out, data["names"])
    lfs = yaml.safe_load((run / "lfs.yaml").read_text())["lfs"]
    assert [x["kind"] for x in lfs] == ["keyphrases", "embedding", "knn", "logreg"]
    assert all(x["threshold"] == "auto" for x in lfs[1:])
    lab = read_labeled(run / "labeled.parquet")
    assert {i for i, s in zip(lab.ids, lab.source) if s == "human"} == data["gold_ids"]
    acc_line = next(ln for ln in out.splitlines() if ln.startswith("accuracy"))
    assert "cross-fitted" in acc_line and "%" in acc_line  # the label model's estimate on the gold
    pred = _predictions(run)
    held = [r for r in data["rows"] if r["id"] not in data["gold_ids"]]  # labels the student never saw
    acc = np.mean([pred[r["id"]]["label"] == r["category"] for r in held])
    assert acc > 0.6, acc
    _resumes(tmp_path, data["corpus"], capsys, *extra)


@pytest.mark.parametrize("labels", [False, True])
@pytest.mark.parametrize("gold", [False, True])
@pytest.mark.parametrize("models", [(), ("hf:a", "openai:http://x/v1#b")])
@pytest.mark.parametrize("multi", [False, True])
def test_every_situation_plans_a_valid_pipeline(data, tmp_path, labels, gold, models, multi):
    """The pipeline auto writes validates as `llmlabel run` reads it, and holds what the situation needs."""
    from llmlabel.auto import Situation, check_inputs, plan
    from llmlabel.lf.spec import LFSpecFile
    from llmlabel.pipeline import PipelineSpec

    sit = Situation(str(data["labels"]) if labels else None, str(data["gold"]) if gold else None, models, multi)
    spec, lfs_text = plan(data["corpus"], tmp_path / "run", sit, no_cache=True)
    stages = {k: v for st in PipelineSpec.model_validate(spec).stages for k, v in [(st.kind, st.options)]}
    assert list(stages) == ["taxonomy", "label", "aggregate", "distill", "predict"]
    tax, label, agg = stages["taxonomy"], stages["label"], stages["aggregate"]
    if labels or gold:  # no labels but gold: the gold's label set (RUN_DIR/labels.txt)
        assert tax["labels"] == (str(data["labels"]) if labels else str(tmp_path / "run" / "labels.txt"))
        assert "max-labels" not in tax
    else:
        assert "labels" not in tax and tax["max-labels"] == 30
    assert tax.get("multi-label", False) == multi and tax.get("model") == (models[0] if models else None)
    assert label.get("model") == (list(models) or None) and label["no-cache"] and tax["no-cache"]
    assert label.get("gold") == (str(data["gold"]) if gold else None)
    assert agg.get("gold") == (str(data["gold"]) if gold else None)
    kinds = [x.kind for x in LFSpecFile.model_validate(yaml.safe_load(lfs_text)).lfs]
    assert ("knn" in kinds) == gold and ("prompted" in kinds) == bool(models)
    assert ("classifier" in kinds) == (gold and multi) and ("logreg" in kinds) == (gold and not multi)
    assert stages["distill"]["min-per-class"] == 1  # machine labels on a small corpus must not stop the run
    if gold and not labels:
        assert sorted(check_inputs(data["corpus"], None, data["gold"], multi)) == sorted(data["names"])


def test_a_csv_with_its_own_column_names_runs_with_text_field_and_id_field(data, tmp_path, capsys):
    """A ticket export names its columns its own way: --text-field / --id-field reach every stage that reads the
    corpus, and the predictions carry the export's ids (the error about an unknown text column pointed at a
    --text-field that auto did not have)."""
    import csv

    path = tmp_path / "tickets.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ticket_id", "body", "created"])
        w.writerows([f"T{r['id']}", r["text"], "2026-01-01"] for r in data["rows"])
    run, code = _auto(tmp_path, path, "--labels", data["labels"])
    assert code == 2 and "--text-field" in capsys.readouterr().err
    run, code = _auto(tmp_path, path, "--labels", data["labels"], "--text-field", "body", "--id-field", "ticket_id")
    assert code == 0, capsys.readouterr().err
    pred = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in pred) == sorted(f"T{r['id']}" for r in data["rows"])
    assert {p["label"] for p in pred} <= set(data["names"])


def test_multi_label(tmp_path, capsys):
    from test_multilabel import LEAVES, TREE, _corpus

    from llmlabel.artifacts.labeled import read_labeled
    from llmlabel.multilabel_metrics import multilabel_f1

    rows = _corpus(240)
    corpus = _jsonl(tmp_path / "corpus.jsonl", [{"id": r["id"], "text": r["text"]} for r in rows])
    gold = _jsonl(tmp_path / "gold.jsonl", rows[:60])
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(TREE, sort_keys=False))
    run, code = _auto(tmp_path, corpus, "--multi-label", "--labels", tmp_path / "labels.yaml", "--gold", gold)
    out, err = capsys.readouterr()
    assert code == 0, err
    lab = read_labeled(run / "labeled.parquet")
    assert lab.multi_label and lab.classes == LEAVES
    assert all(set(x) <= set(LEAVES) for x in lab.labels)
    lfs = yaml.safe_load((run / "lfs.yaml").read_text())["lfs"]
    assert [x["kind"] for x in lfs] == ["keyphrases", "embedding", "knn", "classifier"]
    pred = _predictions(run)
    held = rows[60:]
    Y = np.array([[x in r["labels"] for x in LEAVES] for r in held])
    P = np.array([[x in pred[r["id"]]["labels"] for x in LEAVES] for r in held])
    assert multilabel_f1(Y, P)["macro_f1"] > 0.6  # items whose labels neither the LFs nor the student saw
    assert "macro-F1" in next(ln for ln in out.splitlines() if ln.startswith("accuracy"))


def test_a_model_names_the_labels_and_votes(data, tmp_path, capsys, tiny_qwen2):
    """--model: the LLM takes part in the taxonomy (seeded naming) and runs as one prompted LF (a tiny random
    model: its answers are noise, the wiring is what is checked)."""
    from llmlabel.artifacts.votes import read_votes

    corpus = _jsonl(tmp_path / "small.jsonl", data["rows"][:60])
    run, code = _auto(tmp_path, corpus, "--max-labels", "3", "-m", f"hf:{tiny_qwen2}")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "induced labels + 1 LLM" in err
    assert read_votes(run / "votes").matrix.lf_names[-1] == "llm"
    meta = json.loads((run / ".pipeline" / "taxonomy.json").read_text())
    assert meta["call"]["model"] == f"hf:{tiny_qwen2}"
    assert (run / "predictions.jsonl").is_file()


def test_bad_gold_or_labels_stop_before_anything_is_written(data, tmp_path, capsys):
    """Every input is read before the run folder is touched: a gold row that is not a corpus item, or an
    empty label file, is one line naming the file and line."""
    bad = _jsonl(tmp_path / "bad_gold.jsonl", [{"id": data["rows"][0]["id"], "text": "t", "label": data["names"][0]},
                                               {"id": "not-in-corpus", "text": "t", "label": data["names"][0]}])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "earlier.txt").write_text("kept\n")
    run, code = _auto(tmp_path, data["corpus"], "--gold", bad)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and f"{bad}:2:" in err and "not an id of the corpus" in err
    (tmp_path / "empty.txt").write_text("# nothing\n")
    run, code = _auto(tmp_path, data["corpus"], "--labels", tmp_path / "empty.txt")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "empty.txt" in err and "no labels" in err
    (tmp_path / "twice.txt").write_text(f"{data['names'][0]}\n{data['names'][1]}\n{data['names'][0]}\n")
    run, code = _auto(tmp_path, data["corpus"], "--labels", tmp_path / "twice.txt")
    err = capsys.readouterr().err.strip()
    assert code == 2 and "twice.txt:3:" in err and "listed twice (also line 1)" in err
    typo = _jsonl(tmp_path / "typo_gold.jsonl", [{"id": data["rows"][0]["id"], "text": "t", "label": data["names"][0]},
                                                 {"id": data["rows"][1]["id"], "text": "t", "label": "no such intent"}])
    run, code = _auto(tmp_path, data["corpus"], "--labels", data["labels"], "--gold", typo)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and f"{typo}:2:" in err
    assert "'no such intent' is not in the label file" in err
    r0, r1 = data["rows"][0], data["rows"][1]  # ids joined to the wrong texts: each learner would see another task
    shifted = _jsonl(tmp_path / "shifted_gold.jsonl",
                     [{"id": r0["id"], "text": f"  {r0['text']} ", "label": data["names"][0]},  # spacing is no matter
                      {"id": r1["id"], "text": r0["text"], "label": data["names"][0]}])
    run, code = _auto(tmp_path, data["corpus"], "--gold", shifted)
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"{shifted}:2: field 'text': 1 gold row(s) have another text than the corpus item" in err
    assert [p.name for p in run.iterdir()] == ["earlier.txt"]


def test_select_metric_reaches_the_safety_net_and_bad_values_stop_first(data, tmp_path, capsys):
    """`--select-metric macro_f1` is what distill's net maximises (a user whose metric is macro-F1 says so);
    a misspelt metric, or one without gold (no net to choose), is one line before anything is written."""
    from llmlabel.auto import Situation, plan
    from llmlabel.pipeline import PipelineSpec

    sit = Situation(str(data["labels"]), str(data["gold"]), (), False)
    spec, _ = plan(data["corpus"], tmp_path / "run", sit, no_cache=True, select_metric="macro_f1")
    stages = {st.kind: st.options for st in PipelineSpec.model_validate(spec).stages}
    assert stages["distill"]["select-metric"] == "macro_f1"
    # The label model keeps choosing by accuracy: by macro-F1 it was worse on most of the suite's vote sets
    # (eval/results/labelmodel.md).
    assert "metric" not in stages["aggregate"]
    assert "select-metric" not in plan(data["corpus"], tmp_path / "run", sit, no_cache=True)[0]["stages"][3]["distill"]
    for args, why in ((("--gold", data["gold"], "--select-metric", "f1"), "must be one of accuracy, macro_f1"),
                      (("--select-metric", "macro_f1"), "needs --gold")):
        run, code = _auto(tmp_path, data["corpus"], *args)
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0 and why in err, err
        assert not run.exists()


def test_the_student_figure_prefers_the_out_of_fold_one():
    """distill's out-of-fold comparison on the gold (metrics.json's safety_net), then a dev set, then the
    agreement with the label model's labels, which auto labels as not an accuracy."""
    from llmlabel.auto import _student_figure

    net = {"chosen": {"student": "probe", "weak": "equal"}, "metric": "accuracy", "gold_rows_scored": 100,
           "candidates": [{"student": "static", "weak": "all", "accuracy": 0.5},
                          {"student": "probe", "weak": "equal", "accuracy": 0.7}]}
    value, note = _student_figure({"safety_net": net, "train_agreement": 0.99})
    assert value == 0.7 and "out-of-fold on 100 gold rows" in note
    value, note = _student_figure({"dev": {"accuracy": 0.6}, "dev_file": "dev.jsonl", "student": "static"})
    assert value == 0.6 and "dev.jsonl" in note
    value, note = _student_figure({"train_agreement": 0.99, "student": "static"})
    assert value == 0.99 and "not an accuracy" in note


def test_a_small_corpus_without_labels_induces_fewer_labels_instead_of_stopping(tmp_path):
    """30 labels need 60 distinct texts; a first try on 45 should induce at most 15 (3 distinct texts a label,
    the taxonomy's smallest cluster), say so, and run; a corpus with enough texts keeps the default."""
    from llmlabel.auto import MAX_LABELS
    from llmlabel.taxonomy.items import labels_room

    def _labels_room(data, say):  # as auto calls it
        return labels_room(data, say=lambda m: say(f"[auto] {m}"))

    rows = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines() if x.strip()]
    said = []
    small = _jsonl(tmp_path / "small.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(rows[:45])])
    assert _labels_room(small, said.append) == 15 and said == ["[auto] 45 distinct texts: at most 15 labels "
                                                               "(--max-labels sets it)"]
    dup = _jsonl(tmp_path / "dup.jsonl", [{"id": i, "text": rows[i % 9]["text"].upper()} for i in range(90)])
    assert _labels_room(dup, said.append) == 3  # case and spacing aside, 9 distinct texts
    big = _jsonl(tmp_path / "big.jsonl", [{"id": i, "text": r["text"]} for i, r in enumerate(rows[:200])])
    assert _labels_room(big, said.append) == MAX_LABELS and len(said) == 2
