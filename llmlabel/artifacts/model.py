"""The student folder's ``metrics.json``: what training really used, and how the model scored.

``llmlabel distill`` writes it; the model card, ``llmlabel report`` and the pipeline read it. Besides the
metrics it holds a ``training`` record of facts the card states, so the card cannot claim what did not
happen: ``targets`` is ``"soft"`` only when the targets really differed from the labels one-hot (a file
whose probabilities are all 0/1 trains hard, whatever ``--soft`` asked for).

The student's own files (weights, ``llmlabel_student.json``, ``predict.py``) are owned by
:mod:`llmlabel.distill.export`; this module owns only the facts shared with other stages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ._format import check_format, stamp

__all__ = ["FORMAT_VERSION", "METRICS_FILE", "TrainingFacts", "read_metrics", "write_metrics"]

KIND, FORMAT_VERSION = "model", 1
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TrainingFacts:
    """What a student was trained on (states facts, not requests)."""

    targets: str  # "soft" or "hard": what the loss actually saw
    soft_requested: bool  # what the caller asked for (--soft/--hard)
    n_items: int
    classes: Sequence[str]
    multi_label: bool
    weighted: bool  # per-item weights (confidence; 1.0 for human-reviewed items)
    n_human: int  # items a person reviewed (source == "human") in the training file
    source_file: str  # the labeled file's name
    source_kind: str  # "llmlabel.labeled" (aggregate output) or "user file"

    def __post_init__(self) -> None:
        if self.targets not in ("soft", "hard"):
            raise ValueError(f"targets must be 'soft' or 'hard', got {self.targets!r}")


def write_metrics(folder: str | Path, metrics: Mapping[str, Any], training: TrainingFacts) -> Path:
    """``metrics.json`` with the training facts; ``soft`` mirrors ``training.targets`` for older readers."""
    from ..io_write import atomic_write

    facts = asdict(training)
    facts["classes"] = list(training.classes)
    out = {**stamp(KIND, FORMAT_VERSION), **metrics, "soft": training.targets == "soft", "training": facts}
    path = Path(folder) / METRICS_FILE
    with atomic_write(path) as f:
        f.write(json.dumps(out, indent=2, default=float) + "\n")
    return path


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """The validated ``metrics.json`` of a student folder (``training`` facts included)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise InputError("no metrics.json in the model folder", path=Path(folder),
                         hint="give a folder written by `llmlabel distill`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e.msg}", path=path, line=e.lineno) from None
    if not isinstance(data, dict):
        raise InputError("metrics.json must hold a JSON object", path=path)
    check_format(data, kind=KIND, version=FORMAT_VERSION, path=path)
    tr = data.get("training")
    if tr is not None and (not isinstance(tr, dict) or tr.get("targets") not in ("soft", "hard")):
        raise InputError("metrics.json: 'training.targets' must be 'soft' or 'hard'", path=path, field="training")
    return data
