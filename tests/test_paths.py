"""One user cache folder for everything llmlabel keeps between runs; each use has its own env override."""

from __future__ import annotations

from pathlib import Path


def test_every_cache_lives_under_one_folder_unless_its_env_var_says_otherwise(monkeypatch, tmp_path):
    from llmlabel.llm.cache import default_cache_path
    from llmlabel.llm.models import _models_dir
    from llmlabel.xmc.index import default_index_dir

    for var in ("LLMLABEL_CACHE", "LLMLABEL_MODELS", "LLMLABEL_INDEX_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "xdg" / "llmlabel"
    assert default_cache_path() == root / "llm-cache.sqlite"
    assert _models_dir() == root / "models" and default_index_dir() == root / "xmc-index"
    monkeypatch.setenv("LLMLABEL_INDEX_DIR", "~/idx")
    assert default_index_dir() == Path("~/idx").expanduser()
