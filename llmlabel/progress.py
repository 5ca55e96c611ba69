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


class Ticker:
    """``with Ticker(progress, total, desc) as tick: tick(n)``.

    ``progress`` is True (a rich bar on stderr), False (silent) or a callable that receives each ``n``.
    """

    def __init__(self, progress: bool | Callable[[int], None], total: int, desc: str) -> None:
        self._cb = progress if callable(progress) else None
        self._bar = None
        if progress is True and total > 0:
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
