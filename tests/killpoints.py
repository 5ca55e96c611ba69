"""Run ``llmlabel ARGV`` and SIGKILL it at its K-th file-system step: ``python tests/killpoints.py K ARGV...``.

Steps are the calls that change what is on disk (open for writing, fsync, rename/replace, the folder exchange,
mkdir, unlink, rmtree, copyfile), so seeded random values of K land a ``kill -9`` exactly between two of
them: inside an atomic write, between a data file and its sidecar, between swapping a model folder in and
deleting the old one. ``K=0`` runs to the end and writes how many steps there were to ``$KILLPOINTS_COUNT``.
"""

from __future__ import annotations

import builtins
import os
import shutil
import signal
import sys

K = int(sys.argv[1])
seen = [0]


def _step() -> None:
    seen[0] += 1
    if seen[0] == K:
        os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner, name: str) -> None:
    real = getattr(owner, name)

    def stepped(*args, **kw):
        _step()
        return real(*args, **kw)

    setattr(owner, name, stepped)


for _name in ("replace", "rename", "fsync", "unlink", "mkdir", "rmdir"):
    _wrap(os, _name)
for _name in ("rmtree", "copyfile", "copytree"):
    _wrap(shutil, _name)
_open = builtins.open


def _stepped_open(file, mode="r", *args, **kw):
    if any(c in mode for c in "wax+"):
        _step()
    return _open(file, mode, *args, **kw)


builtins.open = _stepped_open
import io  # noqa: E402  (pathlib writes through io.open)

io.open = _stepped_open
_os_open = os.open


def _stepped_os_open(path, flags, *args, **kw):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
        _step()
    return _os_open(path, flags, *args, **kw)


os.open = _stepped_os_open

if __name__ == "__main__":
    import llmlabel.io_swap as swap
    from llmlabel.cli import main

    _wrap(swap, "_exchange")
    try:
        main(sys.argv[2:])
    finally:
        if K == 0 and os.environ.get("KILLPOINTS_COUNT"):
            with _open(os.environ["KILLPOINTS_COUNT"], "w") as f:
                f.write(str(seen[0]))
