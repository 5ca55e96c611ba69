"""Push a model folder (and optionally the labeled dataset) to the Hugging Face Hub.

The token comes from ``HF_TOKEN`` or the login cache (``hf auth login``); the endpoint from ``HF_ENDPOINT``
(huggingface_hub's own setting), so a private Hub mirror works too.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError, EngineError, InputError
from ..results import PushResult

_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def _token(token: str | None) -> str:
    if token:
        return token
    from huggingface_hub import get_token

    tok = get_token()
    if not tok:
        raise ConfigError("no Hugging Face token found",
                          hint="set HF_TOKEN=hf_... or run `hf auth login` (a token with write access)")
    return tok


def _check_repo(repo: str) -> None:
    if not isinstance(repo, str) or not _REPO_RE.match(repo):
        raise ConfigError(f"bad repo id {repo!r}", hint="use ORG/NAME, e.g. my-org/banking-intents")


def _hub_error(e: Exception, what: str) -> EngineError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return EngineError(f"{what} failed: {first}", hint="check the token's write access, the repo name and HF_ENDPOINT")


def push_to_hub(folder: str | Path, repo: str, *, private: bool = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None) -> str:
    """Create ``repo`` if needed and upload the student folder; returns the commit URL."""
    from huggingface_hub import HfApi

    from .export import student_info

    student_info(folder)  # only our folders, with their card
    folder = Path(folder)
    if not (folder / "README.md").exists():
        raise InputError("the model folder has no README.md model card", path=folder,
                         hint="re-run `llmlabel distill` to write it")
    _check_repo(repo)
    api = HfApi(token=_token(token))
    try:
        api.create_repo(repo, private=private or None, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo, branch=revision, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model", revision=revision,
                                 commit_message=commit_message or "Upload model distilled with llmlabel",
                                 ignore_patterns=[".*", "__pycache__/*"])
    except Exception as e:  # HTTP, connection and validation errors of huggingface_hub/httpx: one line
        raise _hub_error(e, f"pushing {folder} to {repo}") from e
    return str(getattr(info, "commit_url", info))


def push_dataset(path: str | Path, repo: str, *, private: bool = False, token: str | None = None,
                 split: str = "train") -> str:
    """Push a labeled file (Parquet/JSONL/CSV) as a Hub dataset with ``datasets``' ``push_to_hub``."""
    import datasets

    _check_repo(repo)
    path = Path(path)
    if not path.exists():
        raise InputError("dataset file not found", path=path)
    kind = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}.get(path.suffix)
    if kind is None:
        raise InputError(f"cannot push a {path.suffix or 'suffix-less'} file as a dataset", path=path,
                         hint="use .parquet, .jsonl or .csv")
    ds = datasets.load_dataset(kind, data_files=str(path), split="train")
    try:
        info = ds.push_to_hub(repo, private=private or None, token=_token(token), split=split)
    except Exception as e:
        raise _hub_error(e, f"pushing dataset {path} to {repo}") from e
    return str(getattr(info, "commit_url", info))


def link_dataset_in_card(folder: str | Path, dataset_repo: str) -> None:
    """Add ``dataset_repo`` to the ``datasets:`` list of the model card's YAML header (the Hub links the two)."""
    import yaml

    from ..io_write import atomic_write

    card = Path(folder) / "README.md"
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        raise InputError("the model card has no YAML header", path=card, hint="re-run `llmlabel distill` to write it")
    head, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(head) or {}
    meta["datasets"] = list(dict.fromkeys([*(meta.get("datasets") or []), dataset_repo]))
    with atomic_write(card) as f:
        f.write("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n" + body)


def push_model(folder: str | Path, repo: str, *, private: bool = False, revision: str | None = None,
               dataset: str | Path | None = None, dataset_repo: str | None = None) -> PushResult:
    """``llmlabel push``: the model folder (and optionally its labeled dataset, as ``dataset_repo``, default
    ``REPO-data``) to the Hub; the dataset goes first so the model card can link to it. Returns the URLs."""
    from .export import load_student

    load_student(folder)  # refuse a folder that is not ours, or is missing files, before pushing anything
    data_repo = data_url = None
    if dataset is not None:
        data_repo = dataset_repo or f"{repo}-data"
        data_url = push_dataset(dataset, data_repo, private=private)
        link_dataset_in_card(folder, data_repo)
    return PushResult(url=push_to_hub(folder, repo, private=private, revision=revision), dataset_repo=data_repo,
                      dataset_url=data_url)
