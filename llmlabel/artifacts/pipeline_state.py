"""The pipeline's stage records: ``WORKDIR/.pipeline/<stage>.json``, written by ``llmlabel run`` when a stage
finishes; read by the next ``llmlabel run`` (is the stage up to date?) and by ``llmlabel report`` (seconds per
stage, the dev file the aggregate stage was given).

``{"stage", "call": {the library function's arguments}, "inputs": {path: fingerprint}, "seconds", "finished"}``.
Records written before ``llmlabel run`` called library functions hold ``argv`` (the command line) instead of
``call``; they still read, and :meth:`StageRecord.option` looks an option up in either. The files carry no
``kind`` key (written as before); a reader refuses another llmlabel kind or version, naming the file and field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io_records import read_json
from ._format import check_format

__all__ = ["STATE_DIR", "StageRecord", "read_stage_record", "read_stage_records", "write_stage_record"]

KIND, FORMAT_VERSION = "stage-record", 1
STATE_DIR = ".pipeline"


@dataclass(frozen=True)
class StageRecord:
    """One finished stage of a pipeline run."""

    stage: str
    call: Mapping[str, Any] | None = None  # the stage function's arguments (JSON-ready)
    inputs: Mapping[str, Any] | None = None  # input path -> fingerprint
    seconds: float | None = None
    finished: str | None = None  # local time, ISO 8601 to the second
    argv: tuple[str, ...] | None = None  # older records: the command line instead of ``call``

    def option(self, name: str) -> Any:
        """The value an option had: from ``call``, else (older records) the word after ``--name`` in ``argv``."""
        if self.call and self.call.get(name) is not None:
            return self.call[name]
        argv = self.argv or ()
        flag = "--" + name.replace("_", "-")
        return next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag), None)

    def to_dict(self) -> dict[str, Any]:
        """The record as written (``argv`` only for old records, ``call`` only for new ones)."""
        out: dict[str, Any] = {"stage": self.stage}
        if self.argv is not None:
            out["argv"] = list(self.argv)
        if self.call is not None or self.argv is None:
            out["call"] = dict(self.call or {})
        out.update(inputs=dict(self.inputs or {}), seconds=self.seconds, finished=self.finished)
        return out


def _path(workdir: str | Path, stage: str) -> Path:
    return Path(workdir) / STATE_DIR / f"{stage}.json"


def write_stage_record(workdir: str | Path, rec: StageRecord) -> Path:
    """Write ``WORKDIR/.pipeline/<stage>.json`` atomically (a killed run leaves the old record or the new one,
    never half of one)."""
    from ..io_write import atomic_write

    path = _path(workdir, rec.stage)
    with atomic_write(path) as f:
        f.write(json.dumps(rec.to_dict(), indent=2))
    return path


def _parse(path: Path) -> StageRecord:
    data = read_json(path, what="stage record")
    if not isinstance(data, dict):
        raise InputError("a stage record must hold a JSON object", path=path)
    check_format(data, kind=KIND, version=FORMAT_VERSION, path=path)

    def bad(key: str, what: str):
        return InputError(f"stage record's '{key}' must be {what}", path=path, field=key)

    if not isinstance(data.get("stage"), str):
        raise bad("stage", "the stage's name")
    for key in ("call", "inputs"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise bad(key, "an object")
    argv = data.get("argv")
    if argv is not None and not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        raise bad("argv", "a list of words")
    sec = data.get("seconds")
    if sec is not None and (not isinstance(sec, (int, float)) or isinstance(sec, bool)):
        raise bad("seconds", "a number")
    if data.get("finished") is not None and not isinstance(data["finished"], str):
        raise bad("finished", "a time (text)")
    return StageRecord(stage=data["stage"], call=data.get("call"), inputs=data.get("inputs"), seconds=sec,
                       finished=data.get("finished"), argv=None if argv is None else tuple(argv))


def read_stage_record(workdir: str | Path, stage: str) -> StageRecord | None:
    """The record of ``stage`` in ``workdir``, None when it never finished there; a damaged one is an
    InputError naming the file."""
    path = _path(workdir, stage)
    return _parse(path) if path.is_file() else None


def read_stage_records(folder: str | Path) -> list[StageRecord]:
    """Every record in a ``.pipeline`` folder, by file name."""
    return [_parse(f) for f in sorted(Path(folder).glob("*.json"))]

