"""Provenance stored with every output, and the secrets kept out of it.

Owns where metadata lives (the Parquet schema key, the ``.meta.json`` sidecar, a shard folder's manifest),
what it holds (:func:`make_meta`: version, UTC time, platform, command, engine, prompt hashes, usage) and the
scrubbing every recorded value goes through (:func:`scrub_secrets`), so that an API key on a command line or in
the environment never lands in a file. Reading it back (:func:`read_meta`) is here too, beside the layout it
reads; the writers that store it are in :mod:`llmlabel.io_write` and :mod:`llmlabel.io_shards`.

>>> from llmlabel.io_write import write_jsonl
>>> write_jsonl("/tmp/out.jsonl", [{"id": "0", "label": "pos"}], meta=make_meta(engine="hf:gpt2"))
1
>>> read_meta("/tmp/out.jsonl")["engine"]
'hf:gpt2'
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InputError

META_KEY = "llmlabel"  # key in the Parquet schema metadata
META_SUFFIX = ".meta.json"  # sidecar next to JSONL (and any non-Parquet) outputs
MANIFEST = "_manifest.json"  # leading underscore: pyarrow and datasets skip it when reading the folder

_SECRET_PARTS = {"secret", "secrets", "password", "passwd", "authorization", "bearer", "credential", "credentials",
                 "cookie", "apikey"}
_SECRET_VALUE_RES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style keys
    re.compile(r"\bhf_[A-Za-z0-9]{20,}"),  # Hugging Face tokens
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._\-]{8,}"),
]
# `--api-key X`, `--token=X`, `OPENAI_API_KEY=X` on a recorded command line.
_SECRET_FLAG_RE = re.compile(r"(?i)((?:--?|\b)[\w\-]*(?:api[_\-]?key|token|secret|password)\s*[= ]\s*)(\S+)")


def _looks_secret(key: str) -> bool:
    """``api_key``, ``hf_token``, ``password`` → True; ``prompt_tokens``, ``max_tokens`` (counts) → False."""
    parts = [p for p in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if p]
    if not parts:
        return False
    joined = "".join(parts)
    return (parts[-1] == "token" or any(p in _SECRET_PARTS for p in parts)
            or joined.endswith(("apikey", "accesskey", "privatekey", "secretkey")))


def _secret_env_values() -> list[str]:
    names = {"OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}
    names |= {k for k in os.environ if _looks_secret(k)}
    # Short values ("1", "true") would scrub innocent text and are no real secret.
    return sorted({os.environ[k] for k in names if len(os.environ.get(k, "")) >= 8}, key=len, reverse=True)


def scrub_secrets(obj: Any, _env: list[str] | None = None) -> Any:
    """Copy of ``obj`` without secret-looking keys and with secret values replaced by ``***``.

    Drops keys such as ``api_key``/``token``/``password``; replaces the values of ``$OPENAI_API_KEY``,
    ``$HF_TOKEN`` (and any secret-named env var) wherever they appear, plus ``sk-…``/``hf_…`` keys,
    URL passwords and ``--api-key X`` on command lines.
    """
    env = _secret_env_values() if _env is None else _env
    if isinstance(obj, Mapping):
        out = {str(k): scrub_secrets(v, env) for k, v in obj.items() if not _looks_secret(str(k))}
        if isinstance(out.get("command"), str):  # flags only on the command line: prose may say "token is"
            out["command"] = _SECRET_FLAG_RE.sub(lambda m: m.group(1) + "***", out["command"])
        return out
    if isinstance(obj, (list, tuple)):
        return [scrub_secrets(v, env) for v in obj]
    if isinstance(obj, str):
        for value in env:
            obj = obj.replace(value, "***")
        for rx in _SECRET_VALUE_RES:
            obj = rx.sub("***", obj)
    return obj


def make_meta(command: str | list[str] | None = None, engine: str | None = None,
              prompt_hashes: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance for an output file: version, UTC time, platform, command, engine, prompt hashes, extra.

    ``command`` defaults to this process's command line; ``usage`` defaults to what the engines have
    spent so far in this process (``llmlabel.usage_log``). Secrets are scrubbed (see :func:`scrub_secrets`).

    >>> make_meta(engine="vllm:Qwen/Qwen2.5-7B-Instruct", prompt_hashes={"sentiment": "3f2a…"})["engine"]
    'vllm:Qwen/Qwen2.5-7B-Instruct'
    """
    from . import __version__

    if command is None:
        command = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    if not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    meta = {
        "llmlabel_version": __version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": command,
        "engine": engine,
        "prompt_hashes": dict(prompt_hashes or {}),
        **extra,
    }
    if "usage" not in meta:
        from .llm.usage import usage_log

        meta["usage"] = usage_log.as_dict()
    return scrub_secrets(meta)



def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The metadata stored with an output: Parquet schema metadata, ``<path>.meta.json``, or a shard
    folder's manifest. ``None`` when the file carries none."""
    path = Path(path)
    if path.is_dir():
        man = path / MANIFEST
        return json.loads(man.read_text(encoding="utf-8")).get("meta") if man.exists() else None
    if not path.exists():
        raise InputError("file not found", path=path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        md = pq.read_schema(path).metadata or {}
        raw = md.get(META_KEY.encode())
        if raw is not None:
            return json.loads(raw)
    side = path if path.name.endswith(META_SUFFIX) else path.with_name(path.name + META_SUFFIX)
    if not side.exists():
        return None
    meta = json.loads(side.read_text(encoding="utf-8"))
    size = meta.get("data_bytes") if isinstance(meta, dict) else None
    if side != path and isinstance(size, int) and path.stat().st_size != size:
        raise InputError(f"the sidecar {side.name} describes another version of this file ({size:,} bytes, the "
                         f"file has {path.stat().st_size:,}): an interrupted write", path=path,
                         hint="rerun the command that wrote it")
    return meta
