"""Shared fixtures: tiny random-weight models with real tokenizers, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EVAL_DATA = Path(os.environ.get("LLMLABEL_EVAL_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{'qwen2': path, 'llama': path}: random-weight models saved with their tokenizers (a few seconds)."""
    from llmlabel.testing import build_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny_model(root / arch, arch=arch) for arch in ("qwen2", "llama")}


@pytest.fixture(scope="session")
def tiny_qwen2(tiny_models) -> Path:
    return tiny_models["qwen2"]


@pytest.fixture(scope="session")
def tiny_llama(tiny_models) -> Path:
    return tiny_models["llama"]


@pytest.fixture()
def cache_path(tmp_path) -> Path:
    return tmp_path / "cache.sqlite"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    # Never let a test write to the user's real cache.
    monkeypatch.setenv("LLMLABEL_CACHE", str(tmp_path / "default-cache.sqlite"))
    monkeypatch.setenv("LLMLABEL_EMBED_CACHE", str(tmp_path / "default-embeddings"))


@pytest.fixture(scope="session")
def eval_data() -> Path:
    if not EVAL_DATA.is_dir():
        pytest.skip(f"evaluation data not found at {EVAL_DATA} (set LLMLABEL_EVAL_DATA)")
    return EVAL_DATA


@pytest.fixture()
def short_tuning(monkeypatch):
    """The tuned encoder (llmlabel.tuned) fitted for 2 epochs instead of 10: the same real fine-tuning of MiniLM,
    a fifth of the CPU time, for chain tests that check what flows through it rather than how good it gets."""
    from llmlabel.tuned import TuneSettings

    monkeypatch.setattr("llmlabel.tuned.encoder.TuneSettings", lambda: TuneSettings(epochs=2))
