"""Where llmlabel keeps things between runs: one user cache folder, each use overridable by an env var."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_path(name: str, env: str | None = None) -> Path:
    """``$<env>`` when that variable is set, else ``<user cache dir>/llmlabel/<name>`` (platformdirs: e.g.
    ``~/.cache/llmlabel`` on Linux, ``~/Library/Caches/llmlabel`` on macOS)."""
    value = os.environ.get(env) if env else None
    if value:
        return Path(value).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("llmlabel")) / name
