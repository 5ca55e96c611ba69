"""Progress bars (rich) with items/s, or a plain callback, or nothing: one small helper every stage uses."""

from __future__ import annotations

import sys
from collections.abc import Callable


def make_progress(transient: bool = False):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.console import Console

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=Console(file=sys.stderr), transient=transient,
    )


#: Loggers of the libraries we load whose warnings are advice to their own developers, not to our users.
CHATTY_LOGGERS = ("transformers", "sentence_transformers", "torch", "datasets", "huggingface_hub", "accelerate",
                  "setfit", "wordllama", "httpx", "urllib3", "filelock", "dspy", "LiteLLM", "bm25s", "ray")


#: What the libraries read from the environment to stay quiet (PYTHONWARNINGS=ignore is set too, unless set).
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
             "TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "DATASETS_VERBOSITY": "error"}


def quiet_libraries() -> None:
    """Silence the libraries we load: transformers' "Loading weights" bars, Hub and datasets bars, any other
    tqdm bar, their advisory logs, and warnings from code that is not llmlabel's. The CLI calls this at
    start-up unless ``--verbose``; our own progress (rich, on stderr) and one-line errors are unaffected.

    Environment variables first, because those libraries read them when imported, which happens later inside
    a command (and in the processes a command starts: Ray workers, vLLM's engine)."""
    import logging
    import os
    import warnings

    os.environ.update(QUIET_ENV, PYTHONWARNINGS=os.environ.get("PYTHONWARNINGS") or "ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # else a fork prints a warning per process
    warnings.simplefilter("ignore")
    warnings.filterwarnings("default", module=r"llmlabel(\.|$)")  # ours still show
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already imported: tell it directly
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()


class Ticker:
    """``with Ticker(progress, total, desc) as tick: tick(n)``.

    ``progress`` is True (a rich bar on stderr), False (silent) or a callable that receives each ``n``.
    ``total=None``: the size is not known before reading (a JSONL stream); the bar counts without an end.
    """

    def __init__(self, progress: bool | Callable[[int], None], total: int | None, desc: str) -> None:
        self._cb = progress if callable(progress) else None
        self._bar = None
        if progress is True and (total is None or total > 0):
            self._bar = make_progress()
            self._task = self._bar.add_task(desc, total=total, rate="")

    def __call__(self, n: int) -> None:
        if not n:
            return
        if self._cb is not None:
            self._cb(n)
        elif self._bar is not None:
            self._bar.advance(self._task, n)
            speed = self._bar.tasks[0].speed
            if speed:
                self._bar.update(self._task, rate=f"{speed:,.1f} it/s")

    def __enter__(self) -> "Ticker":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
