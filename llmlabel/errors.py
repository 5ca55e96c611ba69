"""Typed errors. The CLI prints each as one line and exits 2 (``--debug`` shows the traceback).

Every error carries where it happened (``path``, ``line``, ``field``) and a ``hint`` saying what to do,
so a user never has to read a traceback to fix their input.
"""

from __future__ import annotations

from pathlib import Path


class LLMLabelError(Exception):
    """Base class of every error llmlabel raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.hint = hint

    def one_line(self) -> str:
        """``<file>:<line>: <what> — <hint>``, on one line, as the CLI prints it."""
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        what = self.message
        if self.field and f"'{self.field}'" not in what:
            what = f"field '{self.field}': {what}"
        text = where + what + (f" — {self.hint}" if self.hint else "")
        return " ".join(text.split())  # newlines in messages would break the one-line promise

    def __str__(self) -> str:
        return self.one_line()


class ConfigError(LLMLabelError):
    """A bad option, spec string or settings file."""


class InputError(LLMLabelError):
    """Bad input data: malformed rows, missing fields, unreadable files."""


class OutputError(LLMLabelError):
    """An output file or folder cannot be written (its folder is a file, read-only, or taken by another run)."""


class EngineError(LLMLabelError):
    """An LLM engine could not be loaded or failed to answer."""


class EngineUnavailable(EngineError):
    """The engine's package is not installed (e.g. vllm)."""


class ServerError(EngineError):
    """An HTTP server kept failing (5xx, 429, time-outs) after all retries."""


class OutputParseError(EngineError):
    """The model's reply did not parse or validate; ``raw`` keeps the text it gave."""

    def __init__(self, message: str, *, raw: str = "", **kw) -> None:
        super().__init__(message, **kw)
        self.raw = raw


class CacheError(LLMLabelError):
    """The cache file is corrupt, locked for too long or not writable."""
