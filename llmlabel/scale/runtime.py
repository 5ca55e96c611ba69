"""What every Ray driver here shares: joining a cluster, reading a corpus with Ray's readers under the
local reader's rules, ordered execution, and turning errors from inside Ray into llmlabel's one-liners.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EngineError, EngineUnavailable, InputError, LLMLabelError

CONNECT_TIMEOUT = 10.0  # seconds to wait for a Ray address to accept a connection
READ_CPUS = 0.25  # per read task: reading a block is I/O and parsing, far lighter than the models


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise EngineUnavailable("the Ray backend needs Ray Data", hint='pip install "llmlabel[ray]"') from e
    return ray


def connect(address: str | None = None, *, timeout: float = CONNECT_TIMEOUT, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``), or start a local one.

    An address that does not accept a TCP connection within ``timeout`` seconds is one :class:`EngineError`,
    instead of Ray's own retry loop. Reuses a Ray that is already initialised in this process.
    """
    ray = _ray()
    if address not in (None, "", "local", "auto"):
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as e:
            why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__).lower()
            raise EngineError(f"no Ray cluster answers at {address} ({why} after at most {timeout:g}s)",
                              hint="check --address (ray://HOST:10001 for Ray Client, HOST:6379 on a cluster "
                                   "node), or drop it to run a local Ray") from None
    if ray.is_initialized():
        return
    kw: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False)
    if address in (None, "", "local"):
        # Workers of a local Ray must import this llmlabel, also when it runs from a checkout on PYTHONPATH.
        here = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}}, **kw)
        return
    try:
        ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, TimeoutError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise EngineError(f"cannot join the Ray cluster at {address}: {first}",
                          hint="start one with `ray start --head`, or drop --address to run a local Ray") from None


def _host_port(address: str) -> tuple[str, int]:
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"bad Ray address {address!r}", field="address",
                          hint="use auto, HOST:PORT or ray://HOST:PORT")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------------- reading

class Source:
    """A corpus resolved on the driver: format, files, and the text and id fields (as the local reader picks them)."""

    def __init__(self, data: str | Path, text_field: str | None, id_field: str | None) -> None:
        from ..io import read_corpus
        from ..io_formats import parquet_files

        c = read_corpus(data, text_field=text_field, id_field=id_field)  # resolves fields; reads one record
        if c.format not in ("jsonl", "csv", "tsv", "parquet"):
            raise InputError(f"the Ray backend reads JSONL, CSV/TSV and Parquet, not {c.format}", path=data,
                             hint="save the data as Parquet (Dataset.to_parquet) or use the local backend")
        if c.id_field is None:
            raise InputError("the Ray backend needs an id column (Ray has no global row position)", path=data,
                             hint=f"add a unique id field to every row and pass --id-field NAME (columns: "
                                  f"{', '.join(map(str, c.columns)) or 'none'})")
        self.path, self.format, self.num_rows = Path(data), c.format, c.num_rows or 0
        self.text_field, self.id_field = c.text_field, c.id_field
        # Absolute: Ray's readers run in worker processes with another working folder.
        files = parquet_files(self.path) if c.format == "parquet" else [self.path]
        self.files = [str(Path(p).resolve()) for p in files]

    def dataset(self, *, done: set[str] | frozenset = frozenset(), keep_extra: bool = False):
        """A Ray Dataset of ``id``, ``text`` (and the other fields with ``keep_extra``), local reading rules applied."""
        ray = _ray()
        if self.format == "jsonl":
            ds = ray.data.read_json(self.files, lines=True, file_extensions=None, num_cpus=READ_CPUS)
        elif self.format in ("csv", "tsv"):
            import pyarrow as pa
            from pyarrow import csv as pacsv

            # Strings throughout: the local reader keeps CSV values as text ("007" stays "007").
            ds = ray.data.read_csv(self.files, file_extensions=None, num_cpus=READ_CPUS,
                                   parse_options=pacsv.ParseOptions(delimiter="\t" if self.format == "tsv" else ","),
                                   convert_options=pacsv.ConvertOptions(
                                       column_types={self.id_field: pa.string(), self.text_field: pa.string()}))
        else:
            ds = ray.data.read_parquet(self.files, file_extensions=None, num_cpus=READ_CPUS)
        return ds.map_batches(_normalize, batch_format="pyarrow", batch_size=None, num_cpus=READ_CPUS,
                              fn_kwargs=dict(text_field=self.text_field, id_field=self.id_field, done=done,
                                             keep_extra=keep_extra, source=str(self.path)))


def _normalize(batch, *, text_field: str, id_field: str, done, keep_extra: bool, source: str):
    """One block: ids and texts as strings, empty texts and finished ids dropped (the rules of ``llmlabel.io``)."""
    import numpy as np
    import pyarrow as pa

    if text_field not in batch.column_names or id_field not in batch.column_names:
        missing = text_field if text_field not in batch.column_names else id_field
        raise InputError(f"a block of the corpus lacks the field '{missing}'", path=source, field=missing)
    ids, texts = batch.column(id_field).to_pylist(), batch.column(text_field).to_pylist()
    keep = np.zeros(len(ids), bool)
    out_ids, out_texts = [], []
    for i, (rid, t) in enumerate(zip(ids, texts)):
        if rid is None:
            raise InputError(f"a row has a missing or null id field '{id_field}'", path=source, field=id_field,
                             hint="every row needs an id on the Ray backend")
        rid = rid if isinstance(rid, str) else str(rid)
        if t is None:
            continue
        if not isinstance(t, str):
            if isinstance(t, bytes):
                t = t.decode("utf-8", errors="replace")
            elif isinstance(t, (int, float, bool)):
                t = str(t)
            else:
                raise InputError(f"text field '{text_field}' holds a {type(t).__name__}, not a string (id {rid})",
                                 path=source, field=text_field)
        if not t or t.isspace() or rid in done:
            continue
        keep[i] = True
        out_ids.append(rid)
        out_texts.append(t)
    cols = {"id": pa.array(out_ids, pa.string()), "text": pa.array(out_texts, pa.string())}
    if keep_extra:
        rest = batch.drop_columns([text_field, id_field]).filter(pa.array(keep))
        cols.update({name: rest.column(name) for name in rest.column_names})
    return pa.table(cols)


@contextmanager
def ray_errors(what: str) -> Iterator[None]:
    """Re-raise llmlabel's own errors from inside Ray tasks as themselves; others as one EngineError line."""
    ray = _ray()
    try:
        yield
    except LLMLabelError:
        raise
    except ray.exceptions.RayError as e:
        cause = getattr(e, "cause", None)
        while isinstance(cause, ray.exceptions.RayError) and getattr(cause, "cause", None) is not None:
            cause = cause.cause
        if isinstance(cause, LLMLabelError):
            raise cause from None
        text = str(cause if cause is not None else e).strip().splitlines()
        first = next((s for s in reversed(text) if s.strip()), type(e).__name__)
        raise EngineError(f"{what} failed on Ray: {first}", hint="see the Ray logs under /tmp/ray/session_latest") from None


@contextmanager
def ordered(progress: bool) -> Iterator[None]:
    """Results in input order (deterministic shards, identical to the local path's), Ray's bars only if asked."""
    ray = _ray()
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = bool(progress)
    logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.WARNING)
    try:
        yield
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved


def actor_pool(size: int):
    return _ray().data.ActorPoolStrategy(size=int(size))


def cpus_per_actor(n_actors: int) -> float:
    """CPUs each actor asks for: one, or less when the actors would take every CPU of the cluster.

    Ray Data's read tasks need a CPU too; actors that hold them all starve the reads and the run waits
    forever (seen with 2 actors on a 2-core machine). A request is a scheduling share, not a limit.
    """
    total = float(_ray().cluster_resources().get("CPU", 1.0))
    return round(min(1.0, max(0.05, (total - READ_CPUS * 2) / max(n_actors, 1))), 3)


def check_scale_options(num_workers: int, gpus_per_worker: float, batch_size: int | None) -> None:
    if num_workers < 1:
        raise ConfigError(f"--num-workers must be >= 1, got {num_workers}", field="num_workers")
    if gpus_per_worker < 0:
        raise ConfigError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}", field="gpus_per_worker")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}", field="batch_size")


def add_usage(stage: str, usage: dict) -> None:
    """Fold what the actors spent into this process's ``usage_log`` so it is reported like a local run's."""
    from ..llm.usage import Usage, usage_log

    fields = set(Usage.__dataclass_fields__)
    usage_log.get(stage).add(Usage(**{k: v for k, v in usage.items() if k in fields}))
