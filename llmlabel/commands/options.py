"""Options several commands share, declared once so their flags and help read the same everywhere.

Each is a function: typer keeps per-parameter state in the ``Option`` object, so every use gets a new one.
"""

from __future__ import annotations

import typer


def text_field():
    return typer.Option(None, "--text-field",
                        help="Text column (default: 'text', else the only string column).")


def id_field():
    return typer.Option(None, "--id-field", help="Id column (default: the `id` field if any, else the row number).")


def dev_label_field():
    return typer.Option("label", "--dev-label-field", help="Label column of the dev set.")


def cache():
    return typer.Option(None, "--cache", help="LLM answer cache file (default: $LLMLABEL_CACHE, else llm-cache.sqlite in the user cache folder).")


def quiet(help: str = "No progress bar."):
    return typer.Option(False, "--quiet", "-q", help=help)


# Scale-out (``--backend ray``): one set of flags for label, predict and taxonomy.

def backend():
    return typer.Option("local", "--backend", help="local (this process) or ray (Ray Data: a local Ray, or a "
                                                   "cluster with --address; pip install \"llmlabel[ray]\").")


def address():
    return typer.Option(None, "--address", help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT "
                                                "(default: start a local Ray). With --backend ray.")


def num_workers():
    return typer.Option(1, "--num-workers", help="Ray actors per model pool (each loads its models once). "
                                                 "With --backend ray.")


def gpus_per_worker():
    return typer.Option(0.0, "--gpus-per-worker", help="GPUs per LLM actor (0 = CPU). With --backend ray.")


def ray_kwargs(backend: str, address, num_workers: int, gpus_per_worker: float) -> dict | None:
    """The Ray settings to pass on, or None for the local backend (where the Ray flags are refused)."""
    from ..errors import ConfigError

    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be local or ray, not {backend!r}", field="backend")
    if backend == "local":
        given = [f for f, v, d in (("--address", address, None), ("--num-workers", num_workers, 1),
                                   ("--gpus-per-worker", gpus_per_worker, 0.0)) if v != d]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --backend ray", hint="add --backend ray")
        return None
    return {"address": address, "num_workers": num_workers, "gpus_per_worker": gpus_per_worker}
