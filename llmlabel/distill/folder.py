"""The writer's half of a student folder: seal the files it is made of, and refuse to replace a folder that is
not a model folder. (The reader's half, :func:`llmlabel.distill.export.student_info`, checks the seal.)
Apart from the students so that ``Student.save`` can use it without an import cycle."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import OutputError
from .static_format import STUDENT_FILE

#: Files a person may edit after training (the card, the metrics report): not part of the seal.
_EDITABLE = {"README.md", "metrics.json", STUDENT_FILE}


def seal(folder: str | Path) -> None:
    """Record the size of every file the model is made of in ``llmlabel_student.json`` (``files``): a file
    truncated or replaced later is then named by the reader instead of failing somewhere inside a library."""
    folder = Path(folder)
    f = folder / STUDENT_FILE
    info = json.loads(f.read_text(encoding="utf-8"))
    info["files"] = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.name not in _EDITABLE}
    f.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def check_replaceable(folder: str | Path) -> None:
    """Refuse to replace a folder that is not a model folder (``-o .`` must not swap away a project)."""
    folder = Path(folder).expanduser()
    if folder.is_dir() and any(folder.iterdir()) and not (folder / STUDENT_FILE).is_file():
        raise OutputError("the output folder exists and is not an llmlabel model folder; refusing to replace it",
                          path=folder, hint="choose a new -o/--output, or remove the folder first")
