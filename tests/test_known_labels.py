"""pipelines/known_labels.yaml: a known label set + 100 gold rows -> LFs with a kNN and a logreg over the gold -> student."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, embedder: str | None):
    """Run the shipped pipeline (paths made absolute; ``embedder`` swapped in for a fast variant)."""
    from llmlabel.pipeline import load_pipeline, run_pipeline

    spec = yaml.safe_load((ROOT / "pipelines" / "known_labels.yaml").read_text())
    lfs = yaml.safe_load((ROOT / "pipelines" / "known_labels_lfs.yaml").read_text())
    if embedder:
        for lf in lfs["lfs"]:
            if "embedder" in lf:
                lf["embedder"] = embedder
    (tmp_path / "lfs.yaml").write_text(yaml.safe_dump(lfs))
    spec["corpus"] = str(ROOT / spec["corpus"])
    spec["workdir"] = str(tmp_path / "run")
    for st in spec["stages"]:
        (kind, opts), = st.items()
        for key in ("labels", "gold", "dev"):
            if key in opts:
                opts[key] = str(ROOT / opts[key])
        if kind == "label":
            opts["lfs"] = str(tmp_path / "lfs.yaml")
        if kind == "taxonomy" and embedder:
            opts["embedder"] = embedder
    (tmp_path / "pipe.yaml").write_text(yaml.safe_dump(spec))
    run_pipeline(load_pipeline(tmp_path / "pipe.yaml"))
    return tmp_path / "run"


def _check(w: Path):
    from llmlabel.artifacts.labeled import read_labeled
    from llmlabel.artifacts.taxonomy import load_taxonomy
    from llmlabel.artifacts.votes import read_votes

    labels = [x.strip() for x in (ROOT / "examples/known_labels/labels.txt").read_text().splitlines()
              if x.strip() and not x.startswith("#")]
    tax = load_taxonomy(w / "taxonomy.yaml")
    assert tax.classes() == labels  # the given labels, exactly, in file order
    gold = [json.loads(x) for x in (ROOT / "examples/known_labels/gold.jsonl").read_text().splitlines()]
    L, _, _ = read_votes(w / "votes")
    j = L.lf_names.index("knn")
    pos = {str(i): r for r, i in enumerate(L.ids)}
    rows = np.array([pos[g["id"]] for g in gold])
    y = np.array([labels.index(g["label"]) for g in gold])
    knn, lr = L.votes[rows, j], L.votes[rows, L.lf_names.index("logreg")]
    # Out-of-fold: a gold item never votes with its own row. In-fold, a kNN with the item itself at cosine 1,
    # or a logistic regression (C=10) that memorised its 100 rows, would be right on every gold row it votes on.
    assert (knn >= 0).mean() > 0.1 and (lr >= 0).mean() > 0.1
    assert ((lr >= 0) & (lr != y)).any() and ((knn >= 0) & (knn != y)).any()
    lab = read_labeled(w / "labeled.parquet")
    assert len(lab.ids) == 1500
    human = {str(i) for i, s in zip(lab.ids, lab.source) if s == "human"}
    assert human == {g["id"] for g in gold}  # the gold rows are clamped and train at full weight
    m = json.loads((w / "model" / "metrics.json").read_text())
    net = m["safety_net"]  # the recipe that won on the gold out-of-fold: with the weak rows, or the gold alone
    assert m["n_train"] == (100 if net["chosen"]["weak"] == "none" else 1500)
    assert m["classes"] == labels and m["training"]["n_human"] == 100
    return L


@pytest.mark.slow  # aggregate --gold cross-fits every candidate over 77 classes: minutes on 2 shared cores
def test_known_labels_pipeline_fast_embedder(tmp_path):
    L = _check(_run(tmp_path, "wordllama"))
    assert "emb_minilm" in L.lf_names


@pytest.mark.slow
def test_known_labels_pipeline_as_shipped(tmp_path):
    _check(_run(tmp_path, None))
