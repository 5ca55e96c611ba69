"""Save and load student folders; tell ours apart from other folders, and complete ones from broken ones.

Every student folder holds ``llmlabel_student.json`` (kind, ``format_version``, classes, settings and ``files``:
the size of each file the model needs, recorded when the folder was sealed), ``metrics.json`` and a model card
``README.md``. Encoder students are plain transformers folders (safetensors weights only: a pickled
``pytorch_model.bin`` is never loaded); static students use the format documented in
:mod:`llmlabel.distill.static_format` (with a standalone ``predict.py``).

Folders are written whole and swapped in (:func:`llmlabel.io_swap.atomic_folder`). Before a model predicts, the
reader checks the folder: a known ``format_version``, at least two distinct class names, the files its kind needs,
each file's recorded size, and (once loaded) that the weights score as many classes as the folder names. A
problem is one :class:`InputError` naming the folder or file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .static_format import STUDENT_FILE

_HINT = "pass a folder written by `llmlabel distill` (it holds llmlabel_student.json)"
_REBUILD = "re-run `llmlabel distill` to rebuild it"
FORMAT_VERSION = 1
#: The files each kind cannot predict without (tokenizer files of encoders vary by model).
REQUIRED = {"static": ("tokenizer.json", "model.safetensors", "head.safetensors"),
            "probe": ("head.safetensors", "encoder/config.json", "encoder/model.safetensors"),
            "encoder": ("config.json", "model.safetensors")}


def student_info(folder: str | Path) -> dict:
    """The checked ``llmlabel_student.json`` of a student folder; :class:`InputError` when the folder is not one
    of ours, or is incomplete or inconsistent."""
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
    if not isinstance(info, dict) or info.get("kind") not in REQUIRED:
        raise InputError(f"{STUDENT_FILE} does not describe a known student (kind static, probe or encoder)", path=f,
                         field="kind", hint=_HINT)
    version = info.get("format_version", 1)
    if version != FORMAT_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
        raise InputError(f"model folder has format_version {version!r}, this llmlabel reads version "
                         f"{FORMAT_VERSION}", path=f, field="format_version",
                         hint="upgrade llmlabel" if newer else _REBUILD)
    classes = info.get("classes")
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise InputError(f"'classes' must be a list of at least two distinct names, got {classes!r:.80}", path=f,
                         field="classes", hint=_REBUILD)
    t = info.get("threshold", 0.5)
    if not (_number(t) or (isinstance(t, list) and len(t) == len(classes) and all(map(_number, t)))):
        raise InputError(f"'threshold' must be a number or one per class, got {t!r:.80}", path=f,
                         field="threshold", hint=_REBUILD)
    _check_files(folder, info)
    return info


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and 0.0 <= x <= 1.0


def _check_files(folder: Path, info: dict) -> None:
    for name in REQUIRED[info["kind"]]:
        if not (folder / name).is_file():
            pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt*")]
            hint = (f"it holds {pickled[0]}, a pickled file llmlabel never loads (it could run code); "
                    if pickled else "") + _REBUILD
            raise InputError(f"the {info['kind']} model folder has no {name}", path=folder, hint=hint)
    files = info.get("files") or {}
    if not isinstance(files, dict):
        raise InputError("'files' must map file names to sizes", path=folder / STUDENT_FILE, field="files")
    for name, size in files.items():
        p = folder / name
        if not p.is_file():
            raise InputError(f"the model folder lacks {name}, which it was written with", path=folder, hint=_REBUILD)
        if p.stat().st_size != size:
            raise InputError(f"{name} is {p.stat().st_size:,} bytes, the folder was sealed with {size:,} "
                             "(truncated or replaced)", path=p, hint=_REBUILD)


def load_student(folder: str | Path, *, quantize: bool = False):
    """Load a saved student (:class:`StaticStudent`, :class:`ProbeStudent` or :class:`EncoderStudent`) from its
    folder, after :func:`student_info` checked it; the loaded weights must score as many classes as the folder names.

    ``quantize=True``: dynamic int8 quantisation of an encoder student for CPU serving (ignored for static ones).
    """
    from ..errors import LLMLabelError

    info = student_info(folder)
    try:
        if info["kind"] == "static":
            from .static import StaticStudent

            st = StaticStudent.load(folder)
        elif info["kind"] == "probe":
            from .probe import ProbeStudent

            st = ProbeStudent.load(folder)
        else:
            from .encoder import EncoderStudent

            st = EncoderStudent.load(folder, quantize=quantize)
    except LLMLabelError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors, tokenizers and transformers raise their own types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"the {info['kind']} model folder is incomplete or corrupt: {first}", path=folder,
                         hint=_REBUILD) from None
    k = getattr(st, "n_outputs_", None)
    if k is not None and k != len(info["classes"]):
        raise InputError(f"the weights score {k} classes but the folder names {len(info['classes'])}", path=folder,
                         field="classes", hint=_REBUILD)
    return st
