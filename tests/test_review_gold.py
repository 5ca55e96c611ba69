"""Gold from active review strategies is clamped but never selects or fits the label model (issue 17).

Items picked for being hard are a biased sample: fitting or choosing the label model on them can break the rest
of the corpus (eval/results/review-notes.md), so only random picks and plain gold files join dev.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmlabel.review.artifact import read_labeled
from run_fixture import make_run
from clirun import run_cli as _cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("gold-run"), student=False)


def _gold_all(run) -> dict[str, str]:
    return {json.loads(s)["id"]: json.loads(s)["label"] for s in run["gold_all"].read_text().splitlines()}


def _hardest(run, n=40) -> list[str]:
    lab0 = read_labeled(run["run"] / "labeled.parquet")
    dev = {json.loads(s)["id"] for s in run["dev"].read_text().splitlines()}
    return [lab0.ids[i] for i in np.argsort(lab0.confidence, kind="stable")[:n] if lab0.ids[i] not in dev]


def _write_gold(path, ids, gold, strategy=None):
    extra = {} if strategy is None else {"strategy": strategy}
    path.write_text("".join(json.dumps({"id": i, "label": gold[i], **extra}) + "\n" for i in ids))
    return path


def _agg(run, tmp_path, name, *args):
    out = tmp_path / name / "labeled.parquet"
    out.parent.mkdir()
    assert _cli("aggregate", run["run"] / "votes", *args, "-o", out) == 0
    return read_labeled(out)


@pytest.mark.parametrize("with_dev", [True, False])
def test_actively_picked_gold_is_clamped_but_does_not_move_the_model(run, tmp_path, with_dev):
    gold, pick = _gold_all(run), _hardest(run)
    dev = ("--dev", run["dev"]) if with_dev else ()
    base = _agg(run, tmp_path, "base", *dev)
    g = _write_gold(tmp_path / "gold.jsonl", pick, gold, "review")
    lab = _agg(run, tmp_path, "risk", *dev, "--gold", g)
    pos = {i: r for r, i in enumerate(lab.ids)}
    rows = np.array([pos[i] for i in pick])
    other = np.setdiff1d(np.arange(len(lab.ids)), rows)
    rep, rep0 = lab.meta["label_model"], base.meta["label_model"]
    assert rep["chosen"] == rep0["chosen"] and rep.get("calibration") == rep0.get("calibration")
    assert np.array_equal(lab.label_index[other], base.label_index[other])
    assert np.allclose(lab.confidence[other], base.confidence[other])
    assert (lab.source[rows] == "human").all() and (lab.source[other] == "model").all()
    assert [lab.classes[lab.label_index[r]] for r in rows] == [gold[i] for i in pick]
    assert rep["n_gold"] == len(pick) and rep["n_gold_selection"] == 0 and rep["n_gold_clamped_only"] == len(pick)
    assert sorted(rep["gold_clamped_ids"]) == sorted(pick) and rep["gold_selection_ids"] == []
    assert rep.get("n_dev", 0) == rep0.get("n_dev", 0)

    # The same items with no strategy (a plain user gold file) do select and fit, as before.
    plain = _agg(run, tmp_path, "plain", *dev, "--gold", _write_gold(tmp_path / "plain.jsonl", pick, gold))
    prep = plain.meta["label_model"]
    assert prep["n_gold_selection"] == len(pick) and prep["n_dev"] == rep.get("n_dev", 0) + len(pick)


def test_random_strategy_gold_still_drives_selection(run, tmp_path):
    from llmlabel.labelmodel.gold import aggregate_with_gold, load_gold
    from llmlabel.labelmodel.pipeline import load_dev, load_votes

    gold, pick = _gold_all(run), _hardest(run)
    rnd = _agg(run, tmp_path, "random", "--dev", run["dev"],
               "--gold", _write_gold(tmp_path / "r.jsonl", pick, gold, "random"))
    plain = _agg(run, tmp_path, "plain", "--dev", run["dev"], "--gold", _write_gold(tmp_path / "p.jsonl", pick, gold))
    rep = rnd.meta["label_model"]
    assert rep["n_gold_selection"] == len(pick) and rep["n_dev"] == len(pick) + 90
    assert rep["chosen"] == plain.meta["label_model"]["chosen"]
    assert np.array_equal(rnd.label_index, plain.label_index) and np.allclose(rnd.proba, plain.proba)

    # Mixed rounds: only the random half joins selection. One id twice is refused (the one id policy: a
    # newer review round is merged by `review import`, never appended), naming the file, line and id.
    half = len(pick) // 2
    mixed = tmp_path / "m.jsonl"
    rows_ = [{"id": i, "label": gold[i], "strategy": "random" if k < half else "uncertainty"} for k, i in enumerate(pick)]
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows_)
                     + json.dumps({"id": pick[0], "label": gold[pick[0]], "strategy": "diverse"}) + "\n")
    L = load_votes(run["run"] / "votes")[0]
    from llmlabel.errors import InputError

    with pytest.raises(InputError) as e:
        load_gold(mixed, L, with_strategy=True)
    assert f"{mixed}:{len(pick) + 1}" in str(e.value) and repr(pick[0]) in str(e.value)
    rows_[0]["strategy"] = "diverse"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in rows_))
    rows, ys, fair = load_gold(mixed, L, with_strategy=True)
    assert fair.sum() == half - 1 and len(rows) == len(pick)
    L_dev, y_dev = load_dev(run["dev"], L, L.labels)
    res = aggregate_with_gold(L, "auto", L_dev, y_dev, rows, ys, fair, reliability=False)
    assert sorted(res["report"]["gold_selection_ids"]) == sorted(pick[1:half])
    assert res["report"]["n_dev"] == 90 + half - 1
    assert (res["source"][rows] == "human").all()


def test_bad_strategy_field_names_the_line(run, tmp_path, capsys):
    g = tmp_path / "gold.jsonl"
    gold, pick = _gold_all(run), _hardest(run)[:3]
    g.write_text(json.dumps({"id": pick[0], "label": gold[pick[0]]}) + "\n"
                 + json.dumps({"id": pick[1], "label": gold[pick[1]], "strategy": 3}) + "\n")
    assert _cli("aggregate", run["run"] / "votes", "--gold", g, "-o", tmp_path / "l.parquet") == 2
    err = capsys.readouterr().err
    assert f"{g}:2" in err and "strategy" in err


def _annotate(tasks, answers):
    return [{"id": k, "data": t["data"], "predictions": t["predictions"],
             "annotations": [{"id": 10 * k, "completed_by": 1, "was_cancelled": False,
                              "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                          "value": {"choices": [answers[t["data"]["item_id"]]]}}]}]}
            for k, t in enumerate(tasks, 1)]


def test_review_import_carries_the_export_strategy_into_gold(run, tmp_path, capsys):
    gold = _gold_all(run)
    state = tmp_path / "review_state.json"
    for strategy, n in (("uncertainty", 6), ("random", 4)):
        assert _cli("review", "export", run["run"] / "labeled.parquet", "-o", tmp_path / f"{strategy}.json",
                    "--n", n, "--strategy", strategy, "--state", state) == 0
    saved = json.loads(state.read_text())["strategy"]
    assert sorted(saved.values()) == ["random"] * 4 + ["uncertainty"] * 6
    g = tmp_path / "gold.jsonl"
    want = {}
    for strategy in ("uncertainty", "random"):
        tasks = json.loads((tmp_path / f"{strategy}.json").read_text())
        want.update({t["data"]["item_id"]: strategy for t in tasks})
        if strategy == "random":  # an export whose task data lost the field: the state still knows
            for t in tasks:
                del t["data"]["strategy"]
        (tmp_path / f"{strategy}-export.json").write_text(json.dumps(_annotate(tasks, gold)))
        assert _cli("review", "import", tmp_path / f"{strategy}-export.json", "-o", g, "--labeled",
                    run["run"] / "labeled.parquet", "--state", state) == 0
    rows = {json.loads(s)["id"]: json.loads(s) for s in g.read_text().splitlines()}
    assert {i: r["strategy"] for i, r in rows.items()} == want

    capsys.readouterr()
    assert _cli("aggregate", run["run"] / "votes", "--dev", run["dev"], "--gold", g,
                "-o", tmp_path / "agg" / "labeled.parquet") == 0
    assert "4 (random sample) also chose" in capsys.readouterr().err
    rep = read_labeled(tmp_path / "agg" / "labeled.parquet").meta["label_model"]
    assert sorted(rep["gold_selection_ids"]) == sorted(i for i, s in want.items() if s == "random")
    assert sorted(rep["gold_clamped_ids"]) == sorted(i for i, s in want.items() if s == "uncertainty")


def test_review_state_without_strategies_still_loads(tmp_path):
    from llmlabel.artifacts.review import ReviewState

    p = tmp_path / "review_state.json"
    p.write_text(json.dumps({"version": 1, "exported": {"a": "t"}, "reviewed": {}}))
    st = ReviewState(p)
    assert st.strategy == {} and st.seen() == {"a"}
    st.mark_exported(["b"], strategy="diverse")
    st.save()
    assert ReviewState(p).strategy == {"b": "diverse"}
