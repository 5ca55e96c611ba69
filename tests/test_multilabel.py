"""Multi-label and two-level labels end to end: taxonomy --labels tree --multi-label -> label -> aggregate ->
distill -> predict, plus the multi-label LFs, votes folder layout and metrics on their own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_distill import one_torch_thread, tiny_bert  # noqa: F401  (fixtures)

from llmlabel.artifacts.multivotes import MultiVotes, read_multi_votes
from llmlabel.errors import ConfigError
from llmlabel.lf.multilabel import (
    MultiEmbeddingLF,
    MultiKeywordLF,
    MultiKnnLF,
    PromptedListLF,
)
from llmlabel.multilabel_metrics import best_thresholds, group_matrix, multilabel_f1

# Two groups over four leaves + one leaf without a parent; each leaf has its own words.
TREE = {"money": ["billing", "refund"], "delivery": ["shipping", "returns"], "login": []}
WORDS = {"billing": ["invoice", "charge", "bill"], "refund": ["refund", "reimburse", "repay"],
         "shipping": ["parcel", "courier", "delivery"], "returns": ["return", "send back", "exchange"],
         "login": ["password", "account locked", "sign in"]}
LEAVES = list(WORDS)


def _corpus(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        labs = [c for c in LEAVES if rng.random() < 0.3] or [LEAVES[i % len(LEAVES)]]
        words = [str(rng.choice(WORDS[c])) for c in labs] + list(rng.choice(["please", "help", "today", "my",
                                                                              "the", "now"], 3))
        rows.append({"id": f"t{i}", "text": " ".join(rng.permutation(words)), "labels": labs})
    return rows


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def wordllama():
    from llmlabel.embed import load_embedder

    return load_embedder("wordllama")


def test_keyword_lf_votes_each_label_on_its_own():
    lf = MultiKeywordLF("kw", {"refund": ["refund"], "shipping": ["parcel", "courier"]}, labels=LEAVES)
    v, p = lf.apply(["refund my parcel", "hello", "Courier late"])
    j = {x: i for i, x in enumerate(LEAVES)}
    assert p is None and v.shape == (3, 5)
    assert v[0, j["refund"]] == 1 and v[0, j["shipping"]] == 1 and (v[1] == -1).all()
    assert v[2, j["shipping"]] == 1 and v[2, j["refund"]] == -1  # a missing keyword abstains, never votes 0
    with pytest.raises(ConfigError, match="not in the label set"):
        MultiKeywordLF("kw", {"nope": ["x"]}, labels=LEAVES)


def test_embedding_lf_has_a_threshold_per_label(wordllama):
    lf = MultiEmbeddingLF("emb", {x: [" ".join(w)] for x, w in WORDS.items()}, embedder=wordllama, threshold=0.3,
                          low=0.05)
    sims = lf.similarities(["invoice charge", "parcel courier"])
    v, p = lf.apply(["invoice charge", "parcel courier"])
    assert ((v == 1) == (sims >= 0.3)).all() and ((v == 0) == (sims < 0.05)).all()
    assert np.all((p > 0.5) == (sims >= 0.3))
    # raising one label's threshold above its similarity turns only that label's vote off
    j = LEAVES.index("billing")
    strict = MultiEmbeddingLF("emb", {x: [" ".join(w)] for x, w in WORDS.items()}, embedder=wordllama,
                              threshold={"billing": float(sims[0, j]) + 0.01}, low=0.05)
    v2, _ = strict.apply(["invoice charge", "parcel courier"])
    assert v[0, j] == 1 and v2[0, j] != 1


def test_knn_lf_uses_neighbours_label_sets_and_never_itself(wordllama):
    gold = _corpus(60, seed=1)
    lf = MultiKnnLF("knn", [r["text"] for r in gold], [r["labels"] for r in gold], labels=LEAVES,
                    gold_ids=[r["id"] for r in gold], embedder=wordllama, k=5, threshold=0.5)
    v, p = lf.apply([gold[0]["text"]], [{"id": "other"}])
    v_self, p_self = lf.apply([gold[0]["text"]], [{"id": gold[0]["id"]}])
    assert p[0][[LEAVES.index(x) for x in gold[0]["labels"]]].max() == 1.0  # its own copy is the nearest
    assert not np.allclose(p, p_self)  # ... but not when it is that gold item
    assert set(np.unique(v)) <= {-1, 0, 1} and np.all((p_self >= 0.5) == (v_self == 1))


def test_classifier_lf_is_cross_fitted_on_the_gold(wordllama):
    from llmlabel.lf.multiclassifier import MultiClassifierLF

    gold = _corpus(100, seed=2)
    labs = [[x for x in r["labels"] if x != "login"] or ["billing"] for r in gold]  # login: no gold positive
    lf = MultiClassifierLF("lr", [r["text"] for r in gold], labs, labels=LEAVES, gold_ids=[r["id"] for r in gold],
                           embedder=wordllama)
    v, p = lf.apply([gold[0]["text"], gold[1]["text"]], [{"id": gold[0]["id"]}, {"id": "new"}])
    _, p_new = lf.apply([gold[0]["text"]], [{"id": "new"}])
    assert np.allclose(p[0], lf.oof_proba_[0]) and not np.allclose(p[0], p_new[0])  # its fold's model, not the full
    assert np.allclose(lf.thresholds_, best_thresholds(lf.oof_proba_, lf.Y))  # thresholds from out-of-fold p
    login = LEAVES.index("login")
    assert (v[:, login] == -1).all()
    fitted = np.arange(len(LEAVES)) != login
    assert np.array_equal((v == 1)[:, fitted], (p >= lf.thresholds_)[:, fitted])
    assert np.array_equal((v == 0)[:, fitted], (p < lf.thresholds_)[:, fitted])  # default low: no abstain band
    new = _corpus(80, seed=3)
    vn, _ = lf.apply([r["text"] for r in new])
    Y = np.array([[x in r["labels"] for x in LEAVES] for r in new])
    assert multilabel_f1(Y[:, fitted], vn[:, fitted] == 1)["macro_f1"] > 0.8
    with pytest.raises(ConfigError, match="not in the label set"):
        MultiClassifierLF("lr", ["a"], [["nope"]], labels=LEAVES)


def test_multi_label_only_lf_kinds_refuse_a_single_label_taxonomy():
    from llmlabel.lf.spec import LFSpecFile, build_lfs
    from llmlabel.artifacts.taxonomy import LabelDef, Taxonomy

    tax = Taxonomy(labels=[LabelDef(id="a", name="a"), LabelDef(id="b", name="b")])
    spec = LFSpecFile.model_validate({"lfs": [{"name": "lr", "kind": "classifier"}]})
    with pytest.raises(ConfigError, match="needs a multi-label taxonomy"):
        build_lfs(spec, tax)


def test_yes_no_prompts_share_the_item_prefix_and_list_lf_is_schema_constrained(tiny_qwen2, tmp_path):
    from llmlabel.lf import PromptedMultiLabelLF
    from llmlabel.llm import load_engine

    eng = load_engine(f"hf:{tiny_qwen2}", cache=tmp_path / "c.sqlite")
    yn = PromptedMultiLabelLF("yn", eng, LEAVES)
    ps = yn.prompts(["my parcel is late", "refund please"])
    assert len(ps) == 10
    first = ps[:5]  # item-major: the five label prompts of item 0
    common = len(__import__("os").path.commonprefix(first))
    assert "my parcel is late" in first[0][:common] and all("refund please" not in p for p in first)
    v, p = yn.apply(["refund please"])
    assert v.shape == (1, 5) and set(np.unique(v)) <= {-1, 0, 1} and ((p >= 0) & (p <= 1)).all()
    ls = PromptedListLF("ls", eng, LEAVES, max_tokens=24)
    assert ls.schema()["properties"]["labels"]["items"]["enum"] == LEAVES
    v, _ = ls.apply(["refund please"])
    assert v.shape == (1, 5) and set(np.unique(v)) <= {-1, 0, 1}
    assert all((row == -1).all() or (row >= 0).all() for row in v)  # a reply votes on every label or none


def test_votes_folder_round_trip_keeps_votes_and_scores(tmp_path):
    from llmlabel.artifacts.votes import VotesWriter

    rng = np.random.default_rng(0)
    votes = rng.integers(-1, 2, size=(7, 2, 3)).astype(np.int16)
    p = np.where(votes[:, 1] >= 0, rng.random((7, 3)), np.nan).astype(np.float32)
    mv = MultiVotes(votes, ["kw", "emb"], ["a", "b", "c"], ["a", "b", "c"], ids=[f"i{i}" for i in range(7)],
                    p_yes={"emb": p})
    with VotesWriter(tmp_path / "v", lf_names=mv.flat_names(), labels=["no", "yes"], meta=mv.manifest_meta(),
                     prob_lfs=[f"emb/{x}" for x in "abc"], shard_size=3) as w:
        w.write(mv.to_matrix(), [f"text {i}" for i in range(7)])
    back, texts = read_multi_votes(tmp_path / "v")
    assert (back.votes == votes).all() and back.ids == mv.ids and texts[3] == "text 3"
    assert np.allclose(np.nan_to_num(back.p_yes["emb"], nan=-1), np.nan_to_num(p, nan=-1), atol=1e-3)
    with pytest.raises(ConfigError, match="differ"):
        read_multi_votes(tmp_path / "v", ["x", "y", "z"])
    with pytest.raises(ConfigError, match="is not -1, 0 or 1"):
        MultiVotes(votes + 2, ["kw", "emb"], ["a", "b", "c"], ["a", "b", "c"])


def test_metrics_thresholds_and_groups():
    Y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    P = np.array([[0.9, 0.2], [0.35, 0.1], [0.3, 0.25], [0.1, 0.05]])
    thr = best_thresholds(P, Y)
    assert thr[0] <= 0.35 and 0.1 < thr[1] <= 0.25  # each label gets the cut that keeps its positives
    assert multilabel_f1(Y, P >= thr)["macro_f1"] == 1.0
    assert multilabel_f1(Y, P >= 0.5)["per_label"]["1"]["f1"] == 0.0
    G, names = group_matrix(np.array([[0, 1, 0, 0, 1]]), LEAVES, {"billing": "money", "refund": "money",
                                                                  "shipping": "delivery", "returns": "delivery"})
    assert names == ["money", "delivery", "login"] and G.tolist() == [[1, 0, 1]]


def _cli(args, capsys=None):
    from llmlabel.cli import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    if capsys is None:
        return code, "", ""
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """taxonomy --labels (YAML tree) --multi-label -> label (parent-level keyword, key phrases, embedding, knn)
    -> aggregate with dev thresholds; run once for the tests below."""
    import yaml

    tmp = tmp_path_factory.mktemp("chain")
    rows = _corpus(240)
    corpus = _jsonl(tmp / "corpus.jsonl", [{"id": r["id"], "text": r["text"]} for r in rows])
    gold = _jsonl(tmp / "gold.jsonl", rows[:40])
    dev = _jsonl(tmp / "dev.jsonl", [{"id": r["id"], "text": r["text"], "labels": r["labels"]} for r in rows[40:100]])
    (tmp / "labels.yaml").write_text(yaml.safe_dump(TREE, sort_keys=False))
    codes = [_cli(["taxonomy", corpus, "--labels", tmp / "labels.yaml", "--multi-label", "-e", "wordllama",
                   "-o", tmp / "tax.yaml", "--quiet"])[0]]
    (tmp / "lfs.yaml").write_text(yaml.safe_dump({"lfs": [
        {"name": "words", "kind": "keyword", "patterns": {"billing": ["invoice"], "group_delivery": ["courier"]}},
        {"kind": "keyphrases"},
        {"name": "emb", "kind": "embedding", "embedder": "wordllama", "threshold": 0.5, "low": 0.1},
        {"name": "knn", "kind": "knn", "embedder": "wordllama", "k": 5, "threshold": 0.5},
        {"name": "lr", "kind": "classifier", "embedder": "wordllama"}]}))
    label = ["label", corpus, "--taxonomy", tmp / "tax.yaml", "--lfs", tmp / "lfs.yaml", "-o", tmp / "votes",
             "--gold", gold, "--shard-size", "100", "--quiet"]
    codes.append(_cli(label)[0])
    codes.append(_cli(["aggregate", tmp / "votes", "--dev", dev, "-o", tmp / "labeled.parquet"])[0])
    return {"tmp": tmp, "rows": rows, "dev": dev, "label": label, "codes": codes}


def test_chain_labels_and_aggregates_on_the_leaves(chain, capsys):
    from llmlabel.artifacts.labeled import read_labeled
    from llmlabel.artifacts.taxonomy import load_taxonomy

    tmp, rows = chain["tmp"], chain["rows"]
    assert chain["codes"] == [0, 0, 0]
    tax = load_taxonomy(tmp / "tax.yaml")
    assert tax.multi_label and [x.name for x in tax.leaves()] == LEAVES
    mv, _ = read_multi_votes(tmp / "votes")
    j = {x: i for i, x in enumerate(LEAVES)}
    hit = ["courier" in r["text"] for r in rows]
    kw = mv.lf_names.index("words")  # keyed by the parent: votes for both of its leaves
    assert (mv.votes[hit, kw, j["shipping"]] == 1).all() and (mv.votes[hit, kw, j["returns"]] == 1).all()
    code, _, err = _cli(chain["label"], capsys)  # resume: every shard is done
    assert code == 0 and "labeled 0 new items" in err
    lab = read_labeled(tmp / "labeled.parquet")
    assert lab.multi_label and lab.classes == LEAVES and len(lab.labels) == 240
    assert set(lab.meta["thresholds"]) == set(LEAVES)
    Y = np.array([[x in r["labels"] for x in LEAVES] for r in rows[100:]])
    pred = np.array([[x in labs for x in LEAVES] for labs in lab.labels[100:]])
    assert multilabel_f1(Y, pred)["macro_f1"] > 0.8  # held-out items (neither gold nor dev)
    queue = [json.loads(x) for x in (tmp / "labeled.review.jsonl").read_text().splitlines()]
    errs = [r["expected_errors"] for r in queue]
    assert errs == sorted(errs, reverse=True) and len(queue) == 24


@pytest.mark.parametrize("student", ["static", "encoder"])
def test_chain_student_predicts_label_lists(chain, tmp_path, capsys, student, request):
    """distill the multi-label file (no flag: the file says so) -> per-class thresholds -> predict lists."""
    # the encoder is asked for as such: no safety net, which may ship its frozen-encoder probe instead
    extra = ["--student", request.getfixturevalue("tiny_bert"), "--epochs", "2", "--threads", "1",
             "--no-safety-net"] if student == "encoder" else []
    code, _, err = _cli(["distill", chain["tmp"] / "labeled.parquet", "-o", tmp_path / "m", "--dev", chain["dev"],
                         "--dev-label-field", "labels", *extra], capsys)
    assert code == 0, err
    cfg = json.loads((tmp_path / "m" / "llmlabel_student.json").read_text())
    assert cfg["multi_label"] and isinstance(cfg["threshold"], list) and len(cfg["threshold"]) == 5
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["soft"] is False  # no --soft/--hard: a multi-label file trains on its label sets
    assert "weak_weight" in metrics
    assert "Multi-label" in (tmp_path / "m" / "README.md").read_text()
    data = _jsonl(tmp_path / "new.jsonl", [{"id": "n1", "text": "invoice charge courier parcel please"}])
    code, _, err = _cli(["predict", tmp_path / "m", data, "-o", tmp_path / "p.jsonl"], capsys)
    assert code == 0, err
    pr = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert isinstance(pr["labels"], list) and len(pr["proba"]) == 5
    if student == "static":
        assert sorted(pr["labels"]) == ["billing", "shipping"]
    else:  # a random 32-d encoder learns little; what matters: transformers loads it as multi-label
        from transformers import pipeline

        clf = pipeline("text-classification", model=str(tmp_path / "m"), top_k=None, device="cpu")
        scores = {d["label"]: d["score"] for d in clf(["invoice charge courier parcel please"])[0]}
        assert set(scores) == set(LEAVES) and np.allclose([scores[x] for x in LEAVES], pr["proba"], atol=1e-4)


def test_weak_weight_auto_picks_the_best_dev_score(chain, tmp_path):
    """Items a person labeled keep weight 1; the factor on the others is chosen on dev (here: the file's gold
    rows are marked human) and recorded."""
    from llmlabel.artifacts.labeled import read_labeled, write_labeled
    from llmlabel.distill import distill

    lab = read_labeled(chain["tmp"] / "labeled.parquet")
    src = np.asarray(["human" if i < 40 else "model" for i in range(len(lab))], dtype=object)
    f = write_labeled(tmp_path / "h.parquet", ids=lab.ids, classes=lab.classes, proba=lab.proba, texts=lab.texts,
                      labels=lab.labels, multi_label=True, source=src, uncovered=lab.uncovered, meta=lab.meta)
    res = distill(f, None, student="static", dev=chain["dev"], dev_label_field="labels")
    scores = res.metrics["weak_weight_dev_scores"]
    assert set(scores) == {"1.0", "0.5", "0.25"}
    assert scores[str(res.metrics["weak_weight"])] == max(scores.values())
    assert distill(f, None, student="static", weak_weight=0.5).metrics["weak_weight"] == 0.5  # no dev: as given
    with pytest.raises(ConfigError, match="needs a dev set"):
        distill(f, None, student="static", weak_weight="auto")


@pytest.mark.parametrize("bad", [2, 0, "heavy"])
def test_bad_weak_weight_fails_before_reading_the_file(bad, tmp_path):
    """A weight outside (0, 1] is the caller's typo: it is named before the labeled file is even opened."""
    from llmlabel.distill import distill

    with pytest.raises(ConfigError, match="weak_weight"):
        distill(tmp_path / "does-not-exist.parquet", None, student="static", weak_weight=bad)


@pytest.mark.parametrize("form", ["single", "multi"])
def test_a_dead_server_stops_single_and_multi_label_lfs_alike_instead_of_abstaining_item_by_item(form):
    """One failure policy for both forms (lf/apply.run_one): a server that refuses connections is a failure of the
    run, raised at once; the multi-label path used to retry item by item and store abstains."""
    import socket

    from llmlabel.errors import ServerError
    from llmlabel.lf.apply import apply_lfs
    from llmlabel.lf.multispec import apply_multi_lfs
    from llmlabel.lf.prompted import PromptedLF
    from llmlabel.llm import load_engine

    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # a port nothing listens on once closed: a real refused connection
    port = s.getsockname()[1]
    s.close()
    eng = load_engine(f"openai:http://127.0.0.1:{port}/v1#m", cache=None, max_retries=0, timeout=2)
    labels = ["a", "b", "c"]
    with pytest.raises(ServerError, match="connection failed"):
        if form == "multi":
            apply_multi_lfs([PromptedListLF("ls", eng, labels)], ["x", "y"], labels=labels, label_ids=labels)
        else:
            apply_lfs([PromptedLF("p", eng, labels)], ["x", "y"], labels=labels)
