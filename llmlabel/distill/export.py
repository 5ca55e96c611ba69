"""Save and load student folders; tell ours apart from other folders.

Every student folder holds ``llmlabel_student.json`` (kind, classes, settings), ``metrics.json`` and a model card
``README.md``. Encoder students are plain transformers folders; static students use the format documented in
:mod:`llmlabel.distill.static_format` (with a standalone ``predict.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .static_format import STUDENT_FILE

_HINT = "pass a folder written by `llmlabel distill` (it holds llmlabel_student.json)"


def student_info(folder: str | Path) -> dict:
    """The ``llmlabel_student.json`` of a student folder; :class:`InputError` when the folder is not one of ours."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise InputError("model folder not found", path=folder, hint=_HINT)
    if not folder.is_dir():
        raise InputError("not a model folder (a file)", path=folder, hint=_HINT)
    f = folder / STUDENT_FILE
    if not f.exists():
        raise InputError(f"not an llmlabel model folder: no {STUDENT_FILE}", path=folder, hint=_HINT)
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"unreadable {STUDENT_FILE}: {e}", path=f, hint=_HINT) from None
    if not isinstance(info, dict) or info.get("kind") not in ("static", "encoder", "probe") or not info.get("classes"):
        raise InputError(f"{STUDENT_FILE} does not describe a known student", path=f, hint=_HINT)
    return info


def load_student(folder: str | Path, *, quantize: bool = False):
    """Load a saved student (:class:`StaticStudent`, :class:`ProbeStudent` or :class:`EncoderStudent`) from its folder.

    ``quantize=True``: dynamic int8 quantisation of an encoder student for CPU serving (ignored for static ones).
    """
    info = student_info(folder)
    try:
        if info["kind"] == "static":
            from .static import StaticStudent

            return StaticStudent.load(folder)
        if info["kind"] == "probe":
            from .probe import ProbeStudent

            return ProbeStudent.load(folder)
        from .encoder import EncoderStudent

        return EncoderStudent.load(folder, quantize=quantize)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"the {info['kind']} model folder is incomplete or corrupt: {e}", path=folder,
                         hint="re-run `llmlabel distill` to rebuild it") from None
