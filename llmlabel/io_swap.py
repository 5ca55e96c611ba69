"""Folders written whole: built in a temporary sibling, then swapped in with one atomic rename.

A model folder is several files that only make sense together (weights, class names, metrics, card). Written
in place, a kill between two files leaves one model's weights beside another's class names. Here the new folder
is complete before anyone can see it, and a kill at any moment leaves the old folder or the new one:

- no folder yet (or an empty one): ``rename(tmp, folder)``;
- a folder there: Linux's ``renameat2(RENAME_EXCHANGE)`` swaps the two in one step, then the old one (now in
  the temporary name) is deleted; where the call is missing, the old folder is renamed aside first, and a later
  write (or :func:`recover_folder`) puts it back if the process died between the two renames.

Temporary siblings are ``.<name>.<pid>.<random>.tmpdir`` (and ``.old``); those of dead processes are removed.

>>> with atomic_folder("model") as tmp:        # doctest: +SKIP
...     (tmp / "weights.bin").write_bytes(b"...")
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from glob import escape as glob_escape
from pathlib import Path

from .errors import OutputError

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_SPACE = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS)
_UMASK = os.umask(0)
os.umask(_UMASK)


def space_error(e: BaseException) -> str | None:
    """What an error says about the disk ("no space left on device", "file too large"), else None."""
    from .errors import LLMLabelError

    if isinstance(e, OSError) and e.errno in _SPACE:
        return os.strerror(e.errno).lower()
    if not isinstance(e, Exception) or isinstance(e, LLMLabelError):
        return None
    text = str(e).lower()  # pyarrow, safetensors and sqlite word it without an errno
    for needle in ("no space left", "file too large", "disk quota", "read-only file system", "disk is full"):
        if needle in text:
            return needle
    return None


def _pid_of(sibling: Path, name: str) -> int | None:
    pid = sibling.name[len(name) + 2:].split(".", 1)[0]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def recover_folder(path: str | Path) -> None:
    """Put back a folder a killed writer had renamed aside, and remove dead writers' temporary siblings."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for sib in sorted(path.parent.glob(f".{glob_escape(path.name)}.*")):
        pid = _pid_of(sib, path.name)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if sib.name.endswith(".old") and not path.exists():
            with suppress(OSError):
                os.rename(sib, path)  # killed between "old aside" and "new in": the old folder is the good one
                continue
        if sib.name.endswith((".tmpdir", ".old")):
            shutil.rmtree(sib, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # no such call or filesystem support: rename aside instead
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, path: Path) -> None:
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        os.replace(tmp, path)  # rename onto an empty folder replaces it in one step
        return
    if _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = tmp.with_name(tmp.name[: -len(".tmpdir")] + ".old")
    os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``path``; fill it; on success it replaces ``path`` atomically, on any
    error it is deleted and ``path`` stays as it was. A full disk is an :class:`OutputError` naming ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(path)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmpdir"))
    except OSError as e:
        raise OutputError(f"cannot write the output: {space_error(e) or e.strerror or e}", path=path,
                          hint="choose another -o/--output, or fix the folder's permissions") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        _swap_in(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        why = space_error(e)
        if why is not None:
            raise OutputError(f"cannot write the output: {why}", path=path,
                              hint="free some space (nothing was replaced), or choose another -o/--output") from None
        raise
