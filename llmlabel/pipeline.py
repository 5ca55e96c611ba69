"""Run the whole chain from one YAML file, each stage checkpointed.

A pipeline spec names a corpus, a work folder and the stages to run, in order; each stage is one of
:data:`llmlabel.stages.STAGES` (``taxonomy``, ``label``, ``aggregate``, ``xmc``, ``distill``, ``predict``,
``push``) with its options: the keyword parameters of the library function the stage's command calls
(``max-labels`` or ``max_labels``; paths relative to the folder you run from). They are checked when the file
is loaded, so a typo is one line naming the file, line, stage and option before anything runs. The runner
passes each function the pipeline's corpus and the previous stages' outputs in the work folder and calls
it in this process. A stage is skipped when its outputs exist and a fingerprint of its arguments and input
files matches the one recorded when it last finished, so a rerun after a crash (or after editing one
stage's options) redoes only what changed; LLM answers come from the cache either way. Ctrl-C stops the
running stage without recording it; the finished ones stay done.

Example (``pipelines/banking77.yaml``)::

    name: banking77-demo
    corpus: examples/banking77_sample.jsonl
    workdir: runs/banking77
    # backend: ray           # optional: taxonomy, label and predict on Ray Data
    # ray: {address: auto, num-workers: 4, gpus-per-worker: 1}
    stages:
      - taxonomy: {max-labels: 12}
      - label: {lfs: pipelines/banking77_lfs.yaml}
      - aggregate: {}
      - distill: {student: static}

    >>> from llmlabel.pipeline import load_pipeline, run_pipeline
    >>> run_pipeline(load_pipeline("pipelines/banking77.yaml"))      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .artifacts.pipeline_state import STATE_DIR, StageRecord, read_stage_record, write_stage_record
from .errors import ConfigError, InputError, LLMLabelError
from .stages import CORPUS, STAGES, OptionError, call_arguments, validate_options

OptionValue = Union[str, int, float, bool, None, list, dict]


class Stage(BaseModel):
    """One step: a stage and its options (the stage function's keyword parameters)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    options: dict[str, OptionValue] = Field(default_factory=dict)
    _yaml_key: str = PrivateAttr("options")  # where the options sit in the file: `options` or the stage name

    @model_validator(mode="wrap")
    @classmethod
    def _form(cls, data: Any, handler: Any) -> "Stage":
        short = isinstance(data, dict) and bool(data.get("_short"))
        if short:
            data = {k: v for k, v in data.items() if k != "_short"}
        st = handler(data)
        st._yaml_key = st.kind if short else "options"  # so an error points at the right YAML line
        return st

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in STAGES:
            raise ValueError(f"unknown stage {v!r}; stages are: {', '.join(STAGES)}")
        return v

    def arguments(self) -> dict[str, Any]:
        """The validated options as the stage function's keyword arguments (without the wired ones)."""
        return call_arguments(self.kind, validate_options(self.kind, self.options))

    def call(self, corpus: str, workdir: str) -> dict[str, Any]:
        """Every argument the stage function gets, wired paths included (what the fingerprint records)."""
        wired = {p: corpus if v == CORPUS else str(Path(workdir) / v) for p, v in STAGES[self.kind].wired.items()}
        return {**wired, **self.arguments()}

    def describe(self, corpus: str, workdir: str) -> str:
        """``induce_taxonomy(corpus='c.jsonl', output='w/taxonomy.yaml', max_labels=5)``."""
        fn = STAGES[self.kind].function.split(":")[1]
        return f"{fn}(" + ", ".join(f"{k}={v!r}" for k, v in self.call(corpus, workdir).items()) + ")"


class PipelineSpec(BaseModel):
    """A runnable pipeline file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "pipeline"
    corpus: str
    workdir: str = "runs/pipeline"
    backend: Literal["local", "ray"] = "local"  # ray: every stage that takes a backend runs on Ray Data
    ray: dict[str, OptionValue] = Field(default_factory=dict)  # e.g. {address: auto, num-workers: 4}
    stages: list[Stage]

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # `- distill: {student: static}` reads better in YAML than `- {kind: distill, options: {...}}`.
        if isinstance(data, dict) and isinstance(data.get("stages"), list):
            stages = []
            for s in data["stages"]:
                if isinstance(s, str):
                    s = {"kind": s}
                elif isinstance(s, dict) and "kind" not in s and len(s) == 1:
                    (kind, opts), = s.items()
                    s = {"kind": kind, "options": opts or {}, "_short": True}
                stages.append(s)
            data = {**data, "stages": stages}
        return data

    @model_validator(mode="after")
    def _options(self) -> "PipelineSpec":
        from .yamlfile import FieldError

        if not self.stages:
            raise ValueError("stages: list at least one stage")
        kinds = [s.kind for s in self.stages]
        if len(set(kinds)) != len(kinds):
            raise ValueError("stages: each stage may appear once")
        if self.backend == "ray" or self.ray:
            self._apply_backend()
        for i, st in enumerate(self.stages):
            try:
                st.arguments()
            except OptionError as e:
                where = f"stages.{i}.{st._yaml_key}" + (f".{e.key}" if e.key is not None else "")
                raise FieldError(where, e.msg) from None
        return self


    def _apply_backend(self) -> None:
        """``backend: ray`` and the ``ray:`` options reach every stage whose function takes a backend
        (taxonomy, label, predict); a stage's own setting wins."""
        from .stages import options_model

        top = {"backend": self.backend, **self.ray}
        for st in self.stages:
            if "backend" not in options_model(st.kind).model_fields:
                continue
            own = {str(k).lstrip("-").replace("-", "_") for k in st.options}
            st.options = {**st.options, **{k: v for k, v in top.items() if k.replace("-", "_") not in own}}


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate a pipeline YAML file, stage options included; relative paths are relative to the
    current folder."""
    from .yamlfile import config_error, read_yaml

    root, data = read_yaml(path, what="pipeline file", hint="pass the path of a pipeline YAML")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as e:
        raise config_error(e, path=path, root=root, hint="see pipelines/*.yaml for the format") from None


def _fingerprint(paths: list[Path]) -> dict[str, str]:
    """Size + mtime of every file under each path: cheap, and changes whenever a stage rewrites its output."""
    out = {}
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p] if p.exists() else []
        h = hashlib.sha256()
        for f in files:
            st = f.stat()
            h.update(f"{f.relative_to(p) if p.is_dir() else f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        out[str(p)] = h.hexdigest() if files else "missing"
    return out


#: Arguments that change how a stage reports, not what it writes: they do not make a stage out of date.
_COSMETIC = ("progress",)


def _jsonable(call: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps({k: v for k, v in call.items() if k not in _COSMETIC}, default=str))


def plan(spec: PipelineSpec, *, force: Optional[list[str]] = None) -> list[tuple[Stage, dict[str, Any], bool]]:
    """(stage, its arguments, up_to_date) for each stage, without running anything."""
    work = Path(spec.workdir)
    rows = []
    dirty = False  # once a stage reruns, everything after it must too
    for st in spec.stages:
        call = _jsonable(st.call(spec.corpus, spec.workdir))
        state = _read_state(work, st.kind)
        ok = (not dirty and st.kind not in (force or []) and state is not None and state.call == call
              and all((work / o).exists() for o in STAGES[st.kind].outputs)
              and state.inputs == _fingerprint(_reads(spec, st)))
        dirty = dirty or not ok
        rows.append((st, call, ok))
    return rows


def _reads(spec: PipelineSpec, st: Stage) -> list[Path]:
    work = Path(spec.workdir)
    paths = [Path(spec.corpus) if r == CORPUS else work / r for r in STAGES[st.kind].reads]
    # Files named in the options (an lfs.yaml, a dev set) count as inputs too: editing one reruns the stage.
    for v in st.options.values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, str) and len(x) < 4096 and Path(x).is_file():
                paths.append(Path(x))
    return paths


def _read_state(work: Path, kind: str) -> StageRecord | None:
    try:
        return read_stage_record(work, kind)
    except InputError:  # a damaged record only means the stage is not known to be done: it reruns and rewrites it
        return None


def run_pipeline(spec: PipelineSpec, *, force: Optional[list[str]] = None, until: Optional[str] = None,
                 echo: Callable[[str], None] = print) -> list[dict]:
    """Run the stages that are not up to date, in order, and return one record per stage.

    Each stage calls its library function (the one ``llmlabel <stage>`` calls); its record (arguments, input
    fingerprints, seconds) is written to ``WORKDIR/.pipeline/<stage>.json`` only when it finishes, so an
    error or Ctrl-C leaves the finished stages done and the interrupted one to redo.
    """
    kinds = [s.kind for s in spec.stages]
    if until is not None and until not in kinds:
        raise ConfigError(f"--until {until}: no such stage in this pipeline", hint=f"stages: {', '.join(kinds)}")
    for f in force or []:
        if f not in kinds:
            raise ConfigError(f"--force {f}: no such stage in this pipeline", hint=f"stages: {', '.join(kinds)}")
    from .io_write import check_writable

    work = check_writable(spec.workdir, folder=True)  # before any stage's work, not after it
    (work / STATE_DIR).mkdir(parents=True, exist_ok=True)
    records = []
    for st, call, ok in plan(spec, force=force):
        if ok:
            echo(f"[{spec.name}] {st.kind}: up to date, skipped")
            records.append({"stage": st.kind, "skipped": True})
        else:
            echo(f"[{spec.name}] {st.kind}: {st.describe(spec.corpus, spec.workdir)}")
            stage = STAGES[st.kind]
            args = {**st.call(spec.corpus, spec.workdir), **stage.runtime_arguments(echo)}
            fn = stage.load()
            t0 = time.perf_counter()
            try:
                fn(**args)
            except LLMLabelError as e:  # bad input found while running: say which stage, keep the rest as is
                if not e.message.startswith("stage "):
                    e.message = f"stage {st.kind}: {e.message}"
                raise
            except KeyboardInterrupt:
                done = [r["stage"] for r in records]
                echo(f"[{spec.name}] {st.kind}: interrupted; not recorded as done"
                     + (f" ({', '.join(done)} kept)" if done else "") + ". Rerun the same command to resume.")
                raise
            rec = StageRecord(stage=st.kind, call=call, inputs=_fingerprint(_reads(spec, st)),
                              seconds=round(time.perf_counter() - t0, 2), finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
            echo(f"[{spec.name}] {st.kind}: done in {rec.seconds:.1f}s")
            write_stage_record(work, rec)
            records.append(rec.to_dict())
        if st.kind == until:
            break
    return records
