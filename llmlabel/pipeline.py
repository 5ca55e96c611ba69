"""Run the whole chain from one YAML file, each stage checkpointed.

A pipeline spec names a corpus, a work folder and the stages to run, in order; each stage is one of the
stage commands (``taxonomy``, ``label``, ``aggregate``, ``xmc``, ``distill``, ``push``) with its options
(named as on the command line; paths relative to the folder you run from). The runner wires each stage's
inputs to the previous stages' outputs in the work folder and runs the same code as the CLI, in this process. A stage is skipped when its outputs exist and a fingerprint of its command
line and input files matches the one recorded when it last finished, so a rerun after a crash (or after
editing one stage's options) redoes only what changed; LLM answers come from the cache either way.

Example (``pipelines/banking77.yaml``)::

    name: banking77-demo
    corpus: examples/banking77_sample.jsonl
    workdir: runs/banking77
    # backend: ray           # optional: taxonomy and label run on Ray Data
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
import shlex
import time
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

OptionValue = Union[str, int, float, bool, None, list]

#: What each stage reads and writes, relative to the work folder. ``args`` is the command line the runner
#: adds in front of the user's options; ``{corpus}`` is the pipeline's corpus, the rest are stage outputs.
STAGES: dict[str, dict[str, Any]] = {
    "taxonomy": {"args": ["{corpus}", "-o", "{w}/taxonomy.yaml"], "outputs": ["taxonomy.yaml"], "reads": ["{corpus}"]},
    "label": {"args": ["{corpus}", "--taxonomy", "{w}/taxonomy.yaml", "-o", "{w}/votes"], "outputs": ["votes"],
              "reads": ["{corpus}", "taxonomy.yaml"]},
    "aggregate": {"args": ["{w}/votes", "-o", "{w}/labeled.parquet"], "outputs": ["labeled.parquet"],
                  "reads": ["votes"]},
    "xmc": {"args": ["{corpus}", "-o", "{w}/xmc_preds.jsonl"], "outputs": ["xmc_preds.jsonl"], "reads": ["{corpus}"]},
    "distill": {"args": ["{w}/labeled.parquet", "-o", "{w}/model"], "outputs": ["model"], "reads": ["labeled.parquet"]},
    "push": {"args": ["{w}/model"], "outputs": [], "reads": ["model"]},
}
STATE_DIR = ".pipeline"
#: Stages that take ``--backend ray`` (and the Ray flags); a pipeline's top-level ``backend: ray`` reaches these.
RAY_STAGES = ("taxonomy", "label")


class Stage(BaseModel):
    """One step: a stage command and its options (option names as on the command line, without ``--``)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    options: dict[str, OptionValue] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in STAGES:
            raise ValueError(f"unknown stage {v!r}; stages are: {', '.join(STAGES)}")
        return v

    def argv(self, corpus: str, workdir: str, backend: dict[str, OptionValue] | None = None) -> list[str]:
        """The command line this stage runs, e.g. ``['distill', 'W/labeled.parquet', '-o', 'W/model', '--epochs', '2']``.

        ``backend``: the pipeline's Ray options (``backend`` and the ``ray:`` block), used by the stages in
        :data:`RAY_STAGES` unless the stage sets them itself.
        """
        out = [self.kind] + [a.replace("{corpus}", corpus).replace("{w}", workdir) for a in STAGES[self.kind]["args"]]
        opts = dict(self.options)
        if backend and self.kind in RAY_STAGES:
            own = {k.lstrip("-").replace("_", "-") for k in opts}
            opts.update({k: v for k, v in backend.items() if k.replace("_", "-") not in own})
        for name, value in opts.items():
            flag = "--" + name.lstrip("-").replace("_", "-")
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is None or v is False:
                    continue
                out += [flag] if v is True else [flag, str(v)]
        return out


class PipelineSpec(BaseModel):
    """A runnable pipeline file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "pipeline"
    corpus: str
    workdir: str = "runs/pipeline"
    backend: Literal["local", "ray"] = "local"  # ray: every stage that supports it runs on Ray Data
    ray: dict[str, OptionValue] = Field(default_factory=dict)  # e.g. {address: auto, num-workers: 4}
    stages: list[Stage]

    def backend_options(self) -> dict[str, OptionValue] | None:
        """The options ``backend: ray`` adds to the stages in :data:`RAY_STAGES` (None for local)."""
        return None if self.backend == "local" else {"backend": "ray", **self.ray}

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
                    s = {"kind": kind, "options": opts or {}}
                stages.append(s)
            data = {**data, "stages": stages}
        return data

    @model_validator(mode="after")
    def _order(self) -> "PipelineSpec":
        if not self.stages:
            raise ValueError("stages: list at least one stage")
        kinds = [s.kind for s in self.stages]
        if len(set(kinds)) != len(kinds):
            raise ValueError("stages: each stage may appear once")
        return self


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate a pipeline YAML file; relative paths in it are relative to the current folder."""
    from .schema import config_error, read_yaml

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


def plan(spec: PipelineSpec, *, force: Optional[list[str]] = None) -> list[tuple[Stage, list[str], bool]]:
    """(stage, argv, up_to_date) for each stage, without running anything."""
    work = Path(spec.workdir)
    rows = []
    dirty = False  # once a stage reruns, everything after it must too
    for st in spec.stages:
        argv = st.argv(spec.corpus, spec.workdir, spec.backend_options())
        state = _read_state(work, st.kind)
        ok = (not dirty and st.kind not in (force or []) and state is not None and state.get("argv") == argv
              and all((work / o).exists() for o in STAGES[st.kind]["outputs"])
              and state.get("inputs") == _fingerprint(_reads(spec, st)))
        dirty = dirty or not ok
        rows.append((st, argv, ok))
    return rows


def _reads(spec: PipelineSpec, st: Stage) -> list[Path]:
    work = Path(spec.workdir)
    paths = [Path(spec.corpus) if r == "{corpus}" else work / r for r in STAGES[st.kind]["reads"]]
    # Files named in the options (an lfs.yaml, a dev set) count as inputs too: editing one reruns the stage.
    for v in st.options.values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, str) and len(x) < 4096 and Path(x).is_file():
                paths.append(Path(x))
    return paths


def _read_state(work: Path, kind: str) -> dict | None:
    f = work / STATE_DIR / f"{kind}.json"
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def run_pipeline(spec: PipelineSpec, *, force: Optional[list[str]] = None, until: Optional[str] = None,
                 echo: Callable[[str], None] = print) -> list[dict]:
    """Run the stages that are not up to date, in order, and return one record per stage.

    Each stage runs the same code as ``llmlabel <stage> ...`` in the work folder; its record (command line,
    input fingerprints, seconds) is written to ``WORKDIR/.pipeline/<stage>.json`` only when it finishes.
    """
    from .cli import app  # the stage commands register themselves on the app
    from typer.main import get_command

    if until is not None and until not in [s.kind for s in spec.stages]:
        raise ConfigError(f"--until {until}: no such stage in this pipeline",
                          hint=f"stages: {', '.join(s.kind for s in spec.stages)}")
    work = Path(spec.workdir)
    (work / STATE_DIR).mkdir(parents=True, exist_ok=True)
    cmd = get_command(app)
    records = []
    for st, argv, ok in plan(spec, force=force):
        if ok:
            echo(f"[{spec.name}] {st.kind}: up to date, skipped")
            records.append({"stage": st.kind, "skipped": True})
        else:
            echo(f"[{spec.name}] {st.kind}: llmlabel {shlex.join(argv)}")
            t0 = time.perf_counter()
            try:
                rc = cmd.main(args=argv, prog_name="llmlabel", standalone_mode=False)
            except Exception as e:
                if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):  # click's usage errors
                    raise
                raise ConfigError(f"stage {st.kind}: {e.format_message()}",
                                  hint="fix this stage's options in the pipeline file") from None
            if isinstance(rc, int) and rc != 0:
                raise ConfigError(f"stage {st.kind} exited with code {rc}", hint="fix it and rerun: finished stages are kept")
            rec = {"stage": st.kind, "argv": argv, "inputs": _fingerprint(_reads(spec, st)),
                   "seconds": round(time.perf_counter() - t0, 2), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
            tmp = work / STATE_DIR / f".{st.kind}.json.tmp"
            tmp.write_text(json.dumps(rec, indent=2))
            tmp.replace(work / STATE_DIR / f"{st.kind}.json")
            records.append(rec)
        if st.kind == until:
            break
    return records
