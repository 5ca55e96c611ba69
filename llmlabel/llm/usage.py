"""Token / request / cache / wall-time accounting, per stage.

Engines add to the stage that is current when they run, so a command can print (and store in its
output metadata) what each stage cost::

    with usage_log.stage("label"):
        engine.choose(prompts, labels)
    print(usage_log.summary())
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import asdict, dataclass, field


@dataclass
class Usage:
    requests: int = 0  # calls that reached a model (a batch counts once per item)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    retries: int = 0
    errors: int = 0
    model_seconds: float = 0.0  # time spent inside engine calls (cache misses)
    wall_seconds: float = 0.0  # time inside ``usage_log.stage(...)``

    def add(self, other: "Usage") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["wall_seconds"] = round(d["wall_seconds"], 3)
        d["model_seconds"] = round(d["model_seconds"], 3)
        return d


@dataclass
class UsageLog:
    stages: dict[str, Usage] = field(default_factory=dict)

    def get(self, stage: str | None = None) -> Usage:
        name = stage or _current_stage.get()
        return self.stages.setdefault(name, Usage())

    @contextlib.contextmanager
    def stage(self, name: str):
        token = _current_stage.set(name)
        t0 = time.perf_counter()
        try:
            yield self.get(name)
        finally:
            self.get(name).wall_seconds += time.perf_counter() - t0
            _current_stage.reset(token)

    def total(self) -> Usage:
        out = Usage()
        for u in self.stages.values():
            out.add(u)
        return out

    def as_dict(self) -> dict:
        return {k: v.as_dict() for k, v in self.stages.items() if v != Usage()}

    def summary(self) -> str:
        rows = []
        for name, u in self.stages.items():
            if u == Usage():
                continue
            rows.append(
                f"{name}: {u.requests} model calls, {u.cache_hits} cache hits, "
                f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, "
                f"{u.model_seconds:.1f}s in the model, {u.wall_seconds:.1f}s wall"
            )
        return "\n".join(rows) if rows else "no model calls"

    def reset(self) -> None:
        self.stages.clear()


_current_stage: contextvars.ContextVar[str] = contextvars.ContextVar("llmlabel_stage", default="default")

#: The process-wide log the engines write to.
usage_log = UsageLog()
