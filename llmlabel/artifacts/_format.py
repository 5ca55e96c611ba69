"""What every stage file shares: its kind, its ``format_version``, and the one-line error for a mismatch.

A file records ``{"kind": "llmlabel.<name>", "format_version": N}`` in its metadata (Parquet schema metadata,
a JSON sidecar, a manifest or a YAML key). Files written before versioning carry neither; their layout is
version 1, so a reader treats a missing version as 1 and a missing kind as "probably this kind" and goes on
to validate the content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError

PREFIX = "llmlabel."


def stamp(kind: str, version: int) -> dict[str, Any]:
    """The metadata keys a writer adds: ``{"kind": "llmlabel.<kind>", "format_version": version}``."""
    return {"kind": PREFIX + kind, "format_version": version}


def check_format(meta: Mapping[str, Any] | None, *, kind: str, version: int, path: str | Path,
                 hint: str | None = None) -> int:
    """Raise one InputError naming ``path`` when ``meta`` is another kind of file or another format version."""
    meta = meta or {}
    found_kind = meta.get("kind")
    if isinstance(found_kind, str) and found_kind.startswith(PREFIX) and found_kind != PREFIX + kind:
        raise InputError(f"this is a {found_kind[len(PREFIX):]} file, not a {kind} file", path=path,
                         hint=hint or f"give the {kind} file here")
    found = meta.get("format_version", 1)
    if not isinstance(found, int) or isinstance(found, bool):
        raise InputError(f"{kind} file has a format_version that is not an integer: {found!r}", path=path)
    if found != version:
        newer = found > version
        raise InputError(f"{kind} file has format_version {found}, this llmlabel reads version {version} "
                         f"(the file was written by a {'newer' if newer else 'older'} llmlabel)", path=path,
                         hint="upgrade llmlabel" if newer else "rerun the stage that wrote it with this llmlabel")
    return found


def file_hash(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file's bytes (streamed), the identity recorded for inputs such as lfs.yaml."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()


def fingerprint(source: str | Path) -> str:
    """An identity for a corpus: the content hash of a file; for a folder, each file's name, size and
    modification time (a datasets folder can be large and is rewritten, not edited, when it changes); for a
    remote source (``hf://...``) the string itself."""
    p = Path(source)
    if p.is_file():
        return file_hash(p)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(p).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return "dir-sha256:" + h.hexdigest()
    return "source:" + str(source)
