"""Distillation: students learn, soft labels resist noise, exports load without llmlabel, the card is honest,
push reaches the (local) Hub, the cascade defers exactly what it should, bad input gives one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmlabel.cli import main as cli_main

CLASSES10 = ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed", "cash_withdrawal_charge",
             "pin_blocked", "transfer_timing", "passcode_forgotten", "refund_not_showing_up", "declined_transfer"]


def _banking(eval_data: Path, split: str, classes=CLASSES10, per_class: int | None = None):
    rows = [r for r in csv.DictReader(open(eval_data / "banking77" / f"{split}.csv", encoding="utf-8"))
            if r["category"] in classes]
    if per_class:
        seen: dict[str, int] = {}
        rows = [r for r in rows if seen.setdefault(r["category"], 0) < per_class and not seen.update(
            {r["category"]: seen[r["category"]] + 1})]
    return [r["text"] for r in rows], [r["category"] for r in rows]


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cli(args, capsys) -> tuple[int, str, str]:
    try:
        cli_main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def bank(eval_data):
    tr, ytr = _banking(eval_data, "train", per_class=80)
    te, yte = _banking(eval_data, "test")
    return tr, ytr, te, yte


@pytest.fixture(scope="module")
def toy_labeled(tmp_path_factory) -> Path:
    """A small synthetic labeled file in the label model's output shape (proba + confidence + class metadata)."""
    from llmlabel.io_meta import make_meta
    from llmlabel.io_write import write_parquet

    rng = np.random.default_rng(0)
    words = {"pos": ["great", "love", "excellent", "wonderful", "happy"], "neg": ["awful", "hate", "terrible", "bad", "sad"],
             "neu": ["table", "monday", "paper", "train", "window"]}
    rows = []
    for i in range(90):
        c = ["pos", "neg", "neu"][i % 3]
        text = " ".join(rng.choice(words[c], 3)) + f" item {i}"
        p = np.full(3, 0.1)
        p[["neg", "neu", "pos"].index(c)] = 0.8
        rows.append({"text": text, "label": c, "proba": p.tolist(), "confidence": 0.8})
    path = tmp_path_factory.mktemp("toy") / "labeled.parquet"
    write_parquet(path, rows, meta=make_meta(engine="hf:tiny-test-llm", classes=["neg", "neu", "pos"],
                                             label_model="dawid_skene", taxonomy="toy.yaml"))
    return path


def test_reader_takes_a_list_column_or_one_proba_column_per_class(toy_labeled, tmp_path):
    """``llmlabel aggregate`` may write ``proba`` as a list (class order in the metadata) or one ``proba_<class>``
    column per class; both give the same training targets, and the confidence becomes the item weight."""
    import pyarrow.parquet as papq

    from llmlabel.distill import read_labeled
    from llmlabel.io_write import write_parquet

    a = read_labeled(toy_labeled)
    rows = papq.read_table(toy_labeled).to_pylist()
    wide = [{"text": r["text"], "label": r["label"], "confidence": r["confidence"],
             **{f"proba_{c}": p for c, p in zip(["pos", "neu", "neg"], [r["proba"][2], r["proba"][1], r["proba"][0]])}}
            for r in rows]
    write_parquet(tmp_path / "wide.parquet", wide)
    b = read_labeled(tmp_path / "wide.parquet")
    assert a.classes == b.classes == ["neg", "neu", "pos"] and a.has_proba and b.has_proba
    assert np.allclose(a.proba, b.proba) and (a.labels == b.labels).all()
    assert np.allclose(b.weights, 0.8) and b.has_confidence
    c = read_labeled(tmp_path / "wide.parquet", proba_field="proba")  # naming the prefix finds the same columns
    assert np.allclose(c.proba, b.proba)
    # a class with no probability column is an error that names the row
    from llmlabel.errors import InputError

    _write_jsonl(tmp_path / "gap.jsonl", [{"text": "x", "label": "a", "proba_a": 1.0},
                                          {"text": "y", "label": "b", "proba_a": 0.0}])
    with pytest.raises(InputError, match=r"gap.jsonl:1: no probability column for class 'b'"):
        read_labeled(tmp_path / "gap.jsonl", min_per_class=1)


def test_static_student_is_seeded(toy_labeled):
    from llmlabel.distill import StaticStudent, read_labeled

    d = read_labeled(toy_labeled)
    fit = lambda seed: StaticStudent(head="mlp", hidden=32, epochs=1, weight_decay=1e-3, seed=seed).fit(  # noqa: E731
        d.texts, proba=d.proba, classes=d.classes).predict_proba(d.texts)
    p1, p2, p3 = fit(3), fit(3), fit(4)
    assert np.array_equal(p1, p2) and not np.array_equal(p1, p3)  # the MLP's random start is the seed's


# ---------------------------------------------------------------- learning on real data


def test_static_student_beats_majority_on_banking77(bank):
    from llmlabel.distill import StaticStudent

    tr, ytr, te, yte = bank
    clf = StaticStudent(epochs=2).fit(tr, ytr)
    acc = np.mean(np.array(clf.predict(te)) == np.array(yte))
    majority = max(np.mean(np.array(yte) == c) for c in set(yte))
    assert acc > majority + 0.5 and acc > 0.8, (acc, majority)
    p = clf.predict_proba(te[:5])
    assert p.shape == (5, len(set(ytr))) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_soft_labels_at_40pct_noise_stay_close_to_gold(bank):
    """40% symmetric noise; the soft targets put the label model's confidence on the (possibly wrong) label,
    with lower confidence on wrong labels (as a calibrated label model would): soft training must beat hard
    training on the noisy labels, or stay within 5 points of gold training."""
    from llmlabel.distill import StaticStudent

    tr, ytr, te, yte = bank
    classes = sorted(set(ytr))
    k, n = len(classes), len(tr)
    rng = np.random.default_rng(0)
    gold = np.array([classes.index(y) for y in ytr])
    flip = rng.random(n) < 0.4
    noisy = np.where(flip, (gold + rng.integers(1, k, n)) % k, gold)
    conf = np.where(flip, rng.beta(2, 4, n), rng.beta(4, 2, n))  # the label model is less sure where it is wrong
    soft = np.tile(((1 - conf) / (k - 1))[:, None], (1, k))
    soft[np.arange(n), noisy] = conf
    yte_i = np.array([classes.index(y) for y in yte])

    def acc(**fit):
        clf = StaticStudent(epochs=2).fit(tr, classes=classes, **fit)
        return float((clf.predict_proba(te).argmax(1) == yte_i).mean())

    a_gold = acc(y=[classes[i] for i in gold])
    a_hard = acc(y=[classes[i] for i in noisy])
    a_soft = acc(proba=soft, sample_weight=conf)  # what distill() does with a confidence column
    assert a_soft >= a_hard or a_soft >= a_gold - 0.05, (a_gold, a_hard, a_soft)


# ---------------------------------------------------------------- export, predict, card


def test_static_folder_runs_without_llmlabel_and_matches(toy_labeled, tmp_path, capsys):
    code, out, err = _cli(["distill", toy_labeled, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    folder = tmp_path / "m"
    assert {"tokenizer.json", "model.safetensors", "head.safetensors", "predict.py", "README.md", "metrics.json",
            "llmlabel_student.json"} <= {p.name for p in folder.iterdir()}
    texts = ["great love happy", "terrible sad", "table paper window"]
    from llmlabel.distill import load_student

    ours = load_student(folder).predict(texts)
    code_ = (f"import sys, json; sys.path.insert(0, {str(folder)!r}); from predict import load; "
             f"print(json.dumps(load({str(folder)!r}).predict({texts!r}))); "
             "print('llmlabel' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code_], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    got, imported = r.stdout.strip().splitlines()
    assert json.loads(got) == ours == ["pos", "neg", "neu"]
    assert imported == "False"
    # batch prediction through the CLI gives the same labels
    data = _write_jsonl(tmp_path / "new.jsonl", [{"text": t} for t in texts])
    code, out, err = _cli(["predict", folder, data, "-o", tmp_path / "p.jsonl"], capsys)
    assert code == 0, err
    preds = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["label"] for p in preds] == ours and all(0 < p["confidence"] <= 1 for p in preds)


def test_model_card_is_honest_about_provenance_and_missing_dev_set(toy_labeled, tmp_path):
    import yaml

    from llmlabel.distill import distill

    res = distill(toy_labeled, tmp_path / "m", epochs=1)
    card = (tmp_path / "m" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["pipeline_tag"] == "text-classification" and "license" in header and "language" in header
    assert "model-index" not in header
    assert "no gold dev set" in card and "not** been evaluated" in card
    assert "hf:tiny-test-llm" in card and "dawid_skene" in card and "toy.yaml" in card and "90 labeled items" in card
    assert res.metrics["dev"] is None

    dev = _write_jsonl(tmp_path / "dev.jsonl", [{"text": "great wonderful", "label": "pos"},
                                                {"text": "awful hate", "label": "neg"},
                                                {"text": "monday train", "label": "neu"}])
    res = distill(toy_labeled, tmp_path / "m2", dev=dev, epochs=1)
    card2 = (tmp_path / "m2" / "README.md").read_text()
    header2 = yaml.safe_load(card2.split("---")[1])
    metrics = {m["type"]: m["value"] for m in header2["model-index"][0]["results"][0]["metrics"]}
    assert metrics["accuracy"] == pytest.approx(res.metrics["dev"]["accuracy"], abs=1e-4)
    assert "no gold dev set" not in card2 and "dev.jsonl" in card2


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A random-weight 2-layer BERT with a WordPiece tokenizer trained here (no download)."""
    from llmlabel.testing import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def one_torch_thread():
    """Tiny models train and predict much faster on one thread when the cores are shared."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_encoder_student_exports_a_plain_transformers_model(toy_labeled, tiny_bert, tmp_path, capsys, one_torch_thread):
    from transformers import AutoModelForSequenceClassification, pipeline

    from llmlabel.distill import load_student

    dev = _write_jsonl(tmp_path / "dev.jsonl", [{"text": "great love", "label": "pos"},
                                                {"text": "awful hate", "label": "neg"}])
    # --head-init random: on this random 32-d encoder the linear-probe head separates the toy set with very large
    # weights, so int8 rounding of its features flips classes (checked below). On MiniLM int8 costs 0.3 points
    # with the probe head (eval/results/distill-minilm-lpft.md).
    code, out, err = _cli(["distill", toy_labeled, "-o", tmp_path / "enc", "--student", tiny_bert, "--epochs", "3",
                           "--batch-size", "16", "--dev", dev, "--threads", "1", "--head-init", "random"], capsys)
    assert code == 0, err
    folder = tmp_path / "enc"
    m = json.loads((folder / "metrics.json").read_text())
    assert m["student"] == "encoder" and m["dev"]["n"] == 2 and len(m["history"]) >= 1
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert model.config.id2label == {0: "neg", 1: "neu", 2: "pos"} and model.config.label2id["pos"] == 2
    texts = ["great love happy item", "terrible sad bad", "table paper window monday", "hate great paper"]
    clf = pipeline("text-classification", model=str(folder), device="cpu")
    ours = load_student(folder)
    assert [r["label"] for r in clf(texts)] == ours.predict(texts)
    top = np.array([r["score"] for r in clf(texts)])
    assert np.allclose(top, ours.predict_proba(texts).max(1), atol=1e-4)
    # dynamic int8 (``llmlabel predict --int8``) stays close to the float model
    q = load_student(folder, quantize=True)
    assert np.abs(q.predict_proba(texts) - ours.predict_proba(texts)).max() < 0.1
    # the card names no Hub base model for a local encoder folder (its origin is unknown)
    import yaml

    header = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
    assert "base_model" not in header and header["library_name"] == "transformers"


def test_encoder_student_is_seeded_and_learns_soft_targets(toy_labeled, tiny_bert, one_torch_thread):
    from llmlabel.distill import EncoderStudent, read_labeled

    d = read_labeled(toy_labeled)
    fit = lambda: EncoderStudent(str(tiny_bert), epochs=10, batch_size=16, lr=2e-3, seed=5).fit(  # noqa: E731
        d.texts, proba=d.proba, classes=d.classes, sample_weight=d.weights)
    a, b = fit(), fit()
    pa = a.predict_proba(d.texts)
    assert np.array_equal(pa, b.predict_proba(d.texts))
    # the random 32-d encoder learns slowly, but it does learn: loss falls, accuracy leaves chance (1/3)
    assert a.history_[-1]["train_loss"] < a.history_[0]["train_loss"] - 0.05
    assert (pa.argmax(1) == d.labels).mean() > 0.5


def test_encoder_head_starts_from_a_linear_probe(toy_labeled, tiny_bert, one_torch_thread):
    # LP-FT: before any real fine-tuning (one step at lr ~0), the probe-initialised head already classifies the
    # training texts well above chance, a random head does not.
    from llmlabel.distill import EncoderStudent, read_labeled

    d = read_labeled(toy_labeled)
    acc = {}
    for init in ("probe", "random"):
        st = EncoderStudent(str(tiny_bert), max_steps=1, lr=1e-12, head_init=init, seed=0).fit(
            d.texts, proba=d.proba, classes=d.classes)
        acc[init] = float((st.predict_proba(d.texts).argmax(1) == d.labels).mean())
    assert acc["probe"] > 0.6 and acc["probe"] > acc["random"] + 0.15, acc
    with pytest.raises(Exception, match="head_init"):
        EncoderStudent(str(tiny_bert), head_init="zeros")


# ---------------------------------------------------------------- Hub push


def test_push_uploads_the_model_folder_and_dataset_to_the_hub(toy_labeled, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hc

    sys.path.insert(0, str(Path(__file__).parent))
    from hub_server import HubServer

    from llmlabel.distill import distill

    distill(toy_labeled, tmp_path / "m", epochs=1)
    monkeypatch.setattr(hc, "HF_HUB_DISABLE_XET", True)  # the local server speaks LFS, not Xet
    # the suite runs offline (conftest); this test talks to 127.0.0.1 only
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with HubServer(token="hf_localtesttoken0123456789") as hub:
        monkeypatch.setattr(hc, "ENDPOINT", hub.url)
        monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_localtesttoken0123456789")
        code, out, err = _cli(["push", tmp_path / "m", "--repo", "acme/toy-sentiment", "--private",
                               "--dataset", toy_labeled], capsys)
        assert code == 0, err
        assert hub.repos[("model", "acme/toy-sentiment")]["private"] is True
        files = hub.files[("model", "acme/toy-sentiment", "main")]
        local = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
        assert set(files) == set(local) and all(files[k] == local[k] for k in local)
        assert any(c["path"].endswith(".git/info/lfs/objects/batch") for c in hub.calls)  # weights went by LFS
        assert any(c["path"] == "/api/validate-yaml" for c in hub.calls)  # the card's YAML passed the check
        data = hub.files[("dataset", "acme/toy-sentiment-data", "main")]
        pq = [k for k in data if k.endswith(".parquet")]
        import io

        import pyarrow.parquet as papq

        assert len(pq) == 1 and papq.read_table(io.BytesIO(data[pq[0]])).num_rows == 90
        import yaml

        header = yaml.safe_load(files["README.md"].decode().split("---")[1])
        assert header["datasets"] == ["acme/toy-sentiment-data"]  # the card links the pushed dataset
        # --revision pushes to a branch (created on the Hub first)
        code, out, err = _cli(["push", tmp_path / "m", "--repo", "acme/toy-sentiment", "--revision", "v2"], capsys)
        assert code == 0, err
        assert any(c["path"] == "/api/models/acme/toy-sentiment/branch/v2" for c in hub.calls)
        assert hub.commits[-1]["revision"] == "v2" and "README.md" in hub.files[("model", "acme/toy-sentiment", "v2")]

        # no token -> one clear line
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
        monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(tmp_path / "empty-hf-home" / "token"))
        monkeypatch.setattr(hc, "HF_STORED_TOKENS_PATH", str(tmp_path / "empty-hf-home" / "stored_tokens"))
        code, out, err = _cli(["push", tmp_path / "m", "--repo", "acme/other"], capsys)
        assert code == 2 and "no Hugging Face token found" in err and "HF_TOKEN" in err and len(err.splitlines()) == 1


# ---------------------------------------------------------------- cascade


def test_cascade_defers_exactly_the_items_under_the_threshold(toy_labeled, tiny_qwen2, tmp_path, capsys):
    from llmlabel.distill import load_student
    from llmlabel.distill.api import distill

    distill(toy_labeled, tmp_path / "m", epochs=1)
    texts = ["great love happy", "terrible sad", "table paper window", "great hate paper", "monday", "item 3",
             "wonderful bad train", "love"]
    conf = load_student(tmp_path / "m").predict_proba(texts).max(1)
    t = float(np.sort(conf)[3])  # four items below T, the rest at or above
    data = _write_jsonl(tmp_path / "data.jsonl", [{"text": x} for x in texts])
    out_path = tmp_path / "preds.jsonl"
    code, out, err = _cli(["predict", tmp_path / "m", data, "-o", out_path, "--cascade-llm", f"hf:{tiny_qwen2}",
                           "--threshold", t], capsys)
    assert code == 0, err
    preds = [json.loads(x) for x in out_path.read_text().splitlines()]
    deferred = np.array([p["deferred"] for p in preds])
    assert deferred.tolist() == (conf < t).tolist() and deferred.sum() == 3
    for p in preds:
        assert p["label"] in ("neg", "neu", "pos")
        if not p["deferred"]:
            assert p["label"] == p["student_label"]

    # T chosen on a dev set for a deferral budget; the curve is saved
    dev = _write_jsonl(tmp_path / "dev.jsonl", [{"text": x, "label": y} for x, y in
                                                [("great love", "pos"), ("awful hate", "neg"), ("paper train", "neu"),
                                                 ("happy sad", "pos"), ("window", "neu")]])
    code, out, err = _cli(["predict", tmp_path / "m", data, "-o", out_path, "--cascade-llm", f"hf:{tiny_qwen2}",
                           "--max-deferral", "0.4", "--dev", dev], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "preds.jsonl.cascade.json").read_text())
    assert saved["curve"][0]["deferral"] == 0 and saved["curve"][-1]["deferral"] == 1
    assert saved["calibration"]["point"]["deferral"] <= 0.4
    # a fixed threshold with a dev set: its accuracy and deferral there are measured and saved with the curve
    code, out, err = _cli(["predict", tmp_path / "m", data, "-o", out_path, "--cascade-llm", f"hf:{tiny_qwen2}",
                           "--threshold", t, "--dev", dev], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "preds.jsonl.cascade.json").read_text())
    dev_conf = load_student(tmp_path / "m").predict_proba(["great love", "awful hate", "paper train", "happy sad",
                                                             "window"]).max(1)
    point = saved["calibration"]["point"]
    assert point["threshold"] == t and point["deferral"] == pytest.approx((dev_conf < t).mean())
    # a target accuracy the cascade cannot reach on dev: it says so and uses its most accurate point
    code, out, err = _cli(["predict", tmp_path / "m", data, "-o", out_path, "--cascade-llm", f"hf:{tiny_qwen2}",
                           "--target-accuracy", "1.0", "--dev", dev], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "preds.jsonl.cascade.json").read_text())
    best = max(p["accuracy"] for p in saved["curve"])
    assert saved["calibration"]["point"]["accuracy"] == best
    assert ("NOT reached" in out) == (best < 1.0)
    # the output metadata records the LLM and the threshold
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["engine"] == f"hf:{tiny_qwen2}" and meta["threshold"] == saved["calibration"]["threshold"]


def test_threshold_choice_on_a_known_curve():
    from llmlabel.distill.cascade import cascade_curve, choose_threshold

    conf = np.array([0.2, 0.4, 0.6, 0.8, 0.9])
    student_ok = np.array([0, 0, 1, 1, 1], bool)
    llm_ok = np.array([1, 1, 0, 1, 1], bool)
    curve = cascade_curve(conf, student_ok, llm_ok)
    assert [p["accuracy"] for p in curve] == [0.6, 0.8, 1.0, 0.8, 0.8, 0.8]
    t, point, met = choose_threshold(curve, target_accuracy=0.95)
    assert t == 0.6 and point["deferral"] == 0.4 and met
    t, point, met = choose_threshold(curve, max_deferral=0.2)
    assert point["deferral"] == 0.2 and point["accuracy"] == 0.8
    t, point, met = choose_threshold(curve, target_accuracy=1.01)
    assert not met and point["accuracy"] == 1.0


# ---------------------------------------------------------------- bad input


def _rows(*specs):
    return [{"text": f"text number {i} {lab}", "label": lab, **extra} for i, (lab, extra) in enumerate(specs)]


@pytest.mark.parametrize("rows, needle", [
    (_rows(("a", {}), ("a", {}), ("a", {})), "only one class"),
    (_rows(("a", {}), ("a", {}), ("b", {}), ("b", {})) + [{"text": "no label here"}], "missing label"),
    (_rows(("a", {}), ("a", {}), ("b", {})), "fewer than 2 examples: 'b'"),
    (_rows(("a", {"proba": [1.0, 0.0]}), ("a", {"proba": [float("nan"), 0.0]}), ("b", {"proba": [0.0, 1.0]}),
           ("b", {"proba": [0.0, 1.0]})), "not finite"),
    (_rows(("a", {"proba": [0.7, 0.7]}), ("a", {"proba": [1.0, 0.0]}), ("b", {"proba": [0.0, 1.0]}),
           ("b", {"proba": [0.0, 1.0]})), "sum to 1.4"),
])
def test_bad_labeled_files_give_one_line_errors(rows, needle, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r).replace("NaN", "NaN") + "\n" for r in rows), encoding="utf-8")
    code, out, err = _cli(["distill", path, "-o", tmp_path / "m"], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert str(path) in lines[0]
    assert not (tmp_path / "m").exists()


def test_a_folder_that_is_not_ours_is_refused(tmp_path, capsys):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text("{}")
    data = _write_jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    code, out, err = _cli(["predict", tmp_path / "other", data, "-o", tmp_path / "p.jsonl"], capsys)
    assert code == 2 and "not an llmlabel model folder" in err and len(err.strip().splitlines()) == 1


def test_multi_label_student_predicts_label_sets(tmp_path, capsys):
    rng = np.random.default_rng(1)
    vocab = {"billing": ["invoice", "charge", "refund"], "shipping": ["parcel", "courier", "delivery"],
             "login": ["password", "account", "locked"]}
    rows = []
    for i in range(120):
        labs = [c for c in vocab if rng.random() < 0.5] or ["login"]
        words = [w for c in labs for w in rng.choice(vocab[c], 2)] + ["please", "help"]
        rows.append({"text": " ".join(rng.permutation(words)), "label": labs})
    lab = _write_jsonl(tmp_path / "ml.jsonl", rows)
    code, out, err = _cli(["distill", lab, "-o", tmp_path / "m", "--multi-label"], capsys)
    assert code == 0, err
    data = _write_jsonl(tmp_path / "d.jsonl", [{"text": "refund invoice courier parcel"}, {"text": "password locked"}])
    code, out, err = _cli(["predict", tmp_path / "m", data, "-o", tmp_path / "p.jsonl"], capsys)
    assert code == 0, err
    preds = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert sorted(preds[0]["labels"]) == ["billing", "shipping"] and preds[1]["labels"] == ["login"]


def test_static_student_accepts_a_model2vec_style_folder(toy_labeled, tmp_path):
    """``--student static:FOLDER``: any folder with tokenizer.json + model.safetensors['embeddings'] (model2vec
    layout) — here the embeddings an earlier static export wrote."""
    from llmlabel.distill import distill

    first = distill(toy_labeled, tmp_path / "a", epochs=1).folder
    res = distill(toy_labeled, tmp_path / "b", student=f"static:{first}", epochs=1)
    assert res.metrics["train_agreement"] > 0.9
    assert json.loads((tmp_path / "b" / "llmlabel_student.json").read_text())["embeddings"] == str(first)


@pytest.mark.parametrize("multi", [False, True])
def test_hard_label_outside_the_classes_is_named(multi):
    from llmlabel.distill import StaticStudent
    from llmlabel.errors import InputError

    y = [["refund"], ["refund", "fraud"]] if multi else ["refund", "fraud"]
    with pytest.raises(InputError, match="'fraud' is not in classes"):
        StaticStudent(multi_label=multi).fit(["money back", "stolen"], y, classes=["refund", "other"])


@pytest.mark.parametrize("multi_label", [False, True])
def test_static_head_loss_and_gradient_match_torch_autograd(multi_label):
    """The static student's linear head trains on a closed-form loss and gradient (static_loss.py, no autograd):
    both must equal what torch's autograd gives for the same objective."""
    import scipy.sparse as sp
    import torch
    import torch.nn.functional as F

    from llmlabel.distill.link import link_for
    from llmlabel.distill.static_loss import LinearHeadLoss

    rng = np.random.default_rng(0)
    n, d, nf, k, l2 = 50, 8, 30, 4, 0.01
    x = rng.normal(size=(n, d)).astype(np.float32)
    S = sp.random(n, nf, density=0.2, format="csr", dtype=np.float32, random_state=1)
    T = rng.random((n, k)).astype(np.float32)
    T = (T > 0.5).astype(np.float32) if multi_label else T / T.sum(1, keepdims=True)
    W = rng.random(n).astype(np.float32)
    W /= W.sum()
    P = {"bias": rng.normal(size=k).astype(np.float32), "emb_weight": rng.normal(size=(k, d)).astype(np.float32),
         "sparse_weight": rng.normal(size=(nf, k)).astype(np.float32)}
    loss, grad = LinearHeadLoss(x, S, T, W, l2, link_for(multi_label)).loss_grad(P)
    tp = {a: torch.tensor(b, requires_grad=True) for a, b in P.items()}
    z = tp["bias"] + torch.from_numpy(S.toarray()) @ tp["sparse_weight"] + torch.from_numpy(x) @ tp["emb_weight"].T
    Tt = torch.from_numpy(T)
    per = (F.binary_cross_entropy_with_logits(z, Tt, reduction="none").sum(1) if multi_label
           else -(Tt * F.log_softmax(z, 1)).sum(1))
    ref = (per * torch.from_numpy(W)).sum() + 0.5 * l2 * ((tp["emb_weight"] ** 2).sum() + (tp["sparse_weight"] ** 2).sum())
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-5)
    for name in P:
        np.testing.assert_allclose(grad[name], tp[name].grad.numpy(), atol=1e-6)


def test_the_card_names_the_label_model_in_a_sentence_not_its_report():
    """aggregate records the label model's whole report (every candidate's dev scores); the card says which model,
    how it was calibrated and why, and leaves the rest to the labeled file's metadata."""
    from llmlabel.distill.card import _provenance

    rep = {"chosen": "heldout", "calibration": "temperature", "n_dev": 20,
           "reason": "no candidate beats the no-dev default 'heldout' on the 20 dev rows",
           "candidates": [{"name": "mv", "dev_accuracy": 0.5}] * 9}
    lines = _provenance("labeled.parquet", 80, True, {}, None, {"label_model": rep, "command": "llmlabel auto x"})
    line = next(x for x in lines if x.startswith("- Label model:"))
    assert line == ("- Label model: `heldout`, calibrated by temperature (no candidate beats the no-dev default "
                    "'heldout' on the 20 dev rows).")
    assert "dev_accuracy" not in "\n".join(lines)
    lines = _provenance("labeled.parquet", 80, True, {}, None, {"label_model": "dawid_skene"})
    assert "- Label model: `dawid_skene`" in lines
