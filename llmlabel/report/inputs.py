"""Find what a run left behind (a run folder or a list of files) and load each piece that exists.

Everything is optional: the report shows a section only when its input was found. Recognised inputs:
``taxonomy.yaml``, a votes folder (``_manifest.json``), ``labeled.parquet`` (+ ``*.review.jsonl``), a model
folder (``metrics.json``), ``*.cascade.json`` (from ``llmlabel predict --cascade-llm``), ``*rounds*.json``
(review rounds: accuracy vs number of human labels), gold labels (``--dev``, or ``dev.jsonl``/``gold.jsonl`` in
the folder) and the pipeline's ``.pipeline/<stage>.json`` records (seconds per stage). Every file is read
through its owner in :mod:`llmlabel.artifacts`, which validates it; nothing here parses a file itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.cascade import SUFFIX
from ..errors import InputError

GOLD_NAMES = ("dev.jsonl", "dev.csv", "gold.jsonl", "gold.csv")


@dataclass
class RunInputs:
    taxonomy: Any = None          # schema.Taxonomy
    votes: Any = None             # LabelMatrix
    labeled: Any = None           # review.artifact.Labeled
    review_rows: list[dict] | None = None  # artifacts.review.ReviewQueue rows
    metrics: dict | None = None   # model/metrics.json (artifacts.model)
    cascade: Any = None           # artifacts.cascade.CascadeRecord
    rounds: Any = None            # artifacts.review.ReviewRounds
    gold: dict[str, str] | None = None  # item id -> gold label name
    votes_meta: dict = field(default_factory=dict)  # the votes manifest's meta (usage, encoder)
    stages: list = field(default_factory=list)  # artifacts.pipeline_state.StageRecord
    sources: dict[str, str] = field(default_factory=dict)  # what was read from where (shown in the header)


def _classify(paths: list[Path]) -> dict[str, Path]:
    """Map each input kind to the path that holds it (a folder is searched one level deep)."""
    found: dict[str, Path] = {}

    def put(kind: str, p: Path) -> None:
        found.setdefault(kind, p)

    for p in paths:
        if not p.exists():
            raise InputError("report input not found", path=p, hint="give a run folder or the files it holds")
        if p.is_dir() and (p / "_manifest.json").is_file():
            put("votes", p)
        elif p.is_dir() and (p / "metrics.json").is_file():
            put("model", p)
        elif p.is_dir():
            items = sorted(p.iterdir())
            sub = [q for q in items if q.is_file() or (q / "_manifest.json").is_file() or (q / "metrics.json").is_file()]
            for kind, q in _classify(sub).items():
                put(kind, q)
            if (p / ".pipeline").is_dir():
                put("pipeline", p / ".pipeline")
        else:
            name = p.name.lower()
            if name.endswith(SUFFIX):
                put("cascade", p)
            elif "rounds" in name and name.endswith(".json"):
                put("rounds", p)
            elif name == "metrics.json":
                put("model", p.parent)
            elif name.endswith(".review.jsonl"):
                put("review", p)
            elif name.endswith(".crossfit.parquet"):
                continue  # the safety net's sidecar (artifacts.crossfit): read through its labeled file
            elif name.endswith(".parquet"):
                put(_parquet_kind(p), p)
            elif name.endswith((".yaml", ".yml")) and "taxonomy" in name:
                put("taxonomy", p)
            elif name in GOLD_NAMES:
                put("gold", p)
    return found


def _parquet_kind(p: Path) -> str:
    """'labeled' (p:<class> columns) or 'votes' (a LabelMatrix file: v:<lf> columns)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(p).names
    except Exception as e:  # pyarrow raises several unrelated types for a non-Parquet file
        raise InputError(f"not a Parquet file ({type(e).__name__})", path=p) from None
    return "votes" if any(c.startswith("v:") for c in names) and not any(c.startswith("p:") for c in names) \
        else "labeled"


def _read_gold(path: Path) -> dict[str, str]:
    """item id -> gold label name (:mod:`llmlabel.artifacts.gold`); a multi-label row's names joined by ``|``."""
    from ..artifacts.gold import read_gold

    g = read_gold(path, allow_empty=True)
    return {i: "|".join(labs) for i, labs in zip(g.ids, g.labels)}


def collect(paths: list[str | Path], *, dev: str | Path | None = None) -> RunInputs:
    """Load every recognised input under ``paths`` (see the module docstring)."""
    from ..artifacts.cascade import read_cascade
    from ..artifacts.labeled import read_labeled
    from ..artifacts.model import read_metrics
    from ..artifacts.pipeline_state import read_stage_records
    from ..artifacts.review import queue_path, read_review_queue, read_rounds

    found = _classify([Path(p) for p in paths])
    if dev is not None:
        found["gold"] = Path(dev)
    if not found:
        raise InputError(f"nothing to report in {', '.join(map(str, paths))}",
                         hint="give a run folder (taxonomy.yaml, votes/, labeled.parquet, model/) or such files")
    run = RunInputs(sources={k: str(v) for k, v in found.items()})
    if "taxonomy" in found:
        from ..artifacts.taxonomy import load_taxonomy

        run.taxonomy = load_taxonomy(found["taxonomy"])
    if "labeled" in found:
        run.labeled = read_labeled(found["labeled"])
        if run.labeled.source is None:  # written before the source column existed: every row is the model's
            run.labeled.source = np.full(len(run.labeled), "model", dtype=object)
        review = found.get("review") or queue_path(found["labeled"])
        if review.is_file():
            run.review_rows = list(read_review_queue(review).rows)
    if "votes" in found:
        from ..artifacts.votes import read_votes, read_votes_manifest

        labels = run.labeled.classes if run.labeled is not None and not run.labeled.multi_label else None
        run.votes = read_votes(found["votes"], labels if labels else None).matrix  # multi-label: yes/no per LF x label
        if found["votes"].is_dir():
            run.votes_meta = read_votes_manifest(found["votes"]).get("meta") or {}
    if "model" in found:
        run.metrics = read_metrics(found["model"])
        casc = sorted(found["model"].glob("*" + SUFFIX))
        if casc and "cascade" not in found:
            found["cascade"] = casc[0]
    if "cascade" in found:
        run.cascade = read_cascade(found["cascade"])
    if "rounds" in found:
        run.rounds = read_rounds(found["rounds"])
    if "gold" in found:
        run.gold = _read_gold(found["gold"])
    if "pipeline" in found:
        run.stages = read_stage_records(found["pipeline"])
        multi = run.labeled is not None and run.labeled.multi_label  # the gold section is single-label
        if "gold" not in found and not multi:  # the dev file the pipeline's aggregate stage was given
            rec = next((s for s in run.stages if s.stage == "aggregate"), None)
            dev_arg = rec.option("dev") if rec is not None else None
            if isinstance(dev_arg, str) and Path(dev_arg).suffix.lower() in (".jsonl", ".csv") and Path(dev_arg).is_file():
                found["gold"] = Path(dev_arg)
                run.gold = _read_gold(found["gold"])
    run.sources = {k: str(v) for k, v in found.items()}
    return run
