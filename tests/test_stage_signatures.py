"""The stage functions that add options to a library function declare every parameter themselves (no run-time
signature rewriting), so these tests keep the declared lists equal to the library functions they call: a
parameter added to ``induce_taxonomy`` and not to the stage would otherwise never reach a pipeline file."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Optional

import pytest

from llmlabel.distill.predict import predict as local_predict
from llmlabel.errors import ConfigError
from llmlabel.lf.run import label_corpus as local_label
from llmlabel.scale import backend
from llmlabel.stages import STAGES, options_model
from llmlabel.taxonomy.induce import induce_taxonomy
from llmlabel.taxonomy.stage import taxonomy_stage

K = inspect.Parameter.KEYWORD_ONLY
# The documented extra options (scale/backend.py, taxonomy/stage.py): (name, annotation, default).
RAY = [("backend", str, "local"), ("address", Optional[str], None), ("num_workers", int, 1),
       ("gpus_per_worker", float, 0.0)]
CASES = {
    "label": (backend.label_corpus, local_label, RAY + [("batch_size", Optional[int], None)]),
    "predict": (backend.predict, local_predict, RAY),
    "taxonomy": (backend.induce_taxonomy, taxonomy_stage, RAY),
    "taxonomy-stage": (taxonomy_stage, induce_taxonomy, [("labels", Optional[Path], None)]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_declared_signature_is_the_local_one_plus_the_documented_options(case):
    fn, local, extra = CASES[case]
    assert "__signature__" not in vars(fn)
    got = list(inspect.signature(fn).parameters.values())
    want = list(inspect.signature(local).parameters.values())
    assert [(p.name, p.kind, p.default, p.annotation) for p in got[:len(want)]] == \
           [(p.name, p.kind, p.default, p.annotation) for p in want]
    assert [(p.name, p.kind, p.default) for p in got[len(want):]] == [(n, K, d) for n, _, d in extra]
    hints, local_hints = typing.get_type_hints(fn), typing.get_type_hints(local)
    assert {p.name: hints.get(p.name) for p in want} == {p.name: local_hints.get(p.name) for p in want}
    assert {n: hints[n] for n, _, _ in extra} == {n: t for n, t, _ in extra}
    assert hints["return"] == local_hints["return"]


def test_no_signature_is_rewritten_in_the_package():
    root = Path(backend.__file__).resolve().parents[1]
    assert [p for p in root.rglob("*.py") if "__signature__" in p.read_text()] == []


def test_pipeline_options_come_from_the_declared_functions():
    assert STAGES["taxonomy"].load() is backend.induce_taxonomy
    fields = options_model("taxonomy").model_fields
    assert {"labels", "max_labels", "backend", "num_workers"} <= set(fields)
    assert fields["max_labels"].default == 30 and fields["labels"].annotation == Optional[Path]
    assert fields["num_workers"].annotation is int and "batch_size" in options_model("label").model_fields


@pytest.mark.parametrize("options, named", [
    ({"max_labels": 5}, "--max-labels does not apply with --labels"),
    ({"levels": 2, "mode": "tnt"}, "--levels, --mode do not apply with --labels"),
    ({"refine": "old.yaml"}, "--refine does not apply with --labels"),
])
def test_an_option_labels_does_not_use_is_refused_not_dropped(tmp_path, options, named):
    labels = tmp_path / "labels.txt"
    labels.write_text("refund\ndelivery\n")
    with pytest.raises(ConfigError, match=named):  # before anything is read or written
        backend.induce_taxonomy(tmp_path / "missing.jsonl", tmp_path / "t.yaml", labels=labels, **options)
    assert not (tmp_path / "t.yaml").exists()


def test_labels_with_induction_options_at_their_defaults_runs(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("refund\tmoney back\ndelivery\tparcel and shipping\n")
    rows = ["I want my money back", "refund please", "where is my parcel", "shipping is late"]
    res = taxonomy_stage([(str(i), t) for i, t in enumerate(rows)], tmp_path / "t.yaml", labels=labels,
                         max_labels=30, mode="auto", embedder="wordllama")
    assert [lab.name for lab in res.taxonomy.labels][:2] == ["refund", "delivery"]


def test_ray_options_on_the_local_backend_are_refused():
    with pytest.raises(ConfigError, match="--num-workers, --gpus-per-worker only apply with --backend ray"):
        backend.predict("model", "data.jsonl", "out.jsonl", num_workers=2, gpus_per_worker=1.0)
    with pytest.raises(ConfigError, match="backend must be local or ray"):
        backend.label_corpus("data.jsonl", "taxonomy.yaml", backend="spark")
