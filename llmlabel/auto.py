"""``llmlabel auto``: from a corpus, and whatever else you have, to labels, a model and a report in one call.

It decides the chain for the situation, writes it as ``RUN_DIR/pipeline.yaml`` (+ the labeling functions as
``RUN_DIR/lfs.yaml``) and runs that file with the pipeline runner, exactly as ``llmlabel run`` would: the same
checkpoints, resume and report. The next step for a user is to edit those files and ``llmlabel run`` them.

=====================  ================================================================================
given                  chain
=====================  ================================================================================
a corpus only          induce a taxonomy -> default LFs -> label model (no gold) -> student -> predictions
``labels``             ``taxonomy --labels`` (the given label set, with examples and key phrases)
``gold``               + gold LFs (knn, logreg at ``threshold: auto``), ``aggregate --gold`` (clamped, and
                       choosing and calibrating the label model, cross-fitted); without ``labels`` the label
                       set is the gold's labels
``models``             + a prompted LF per model; the first one names the induced labels (or writes the
                       given labels' descriptions)
``multi_label``        a multi-label taxonomy and the multi-label forms of the same LFs; gold is clamped and
                       tunes the per-label thresholds (``aggregate --gold``), and distill's safety net
                       chooses the student and its thresholds on the gold out-of-fold
=====================  ================================================================================

Every input is read once before anything is written (:func:`check_inputs`), so bad input is one line and the
run folder stays as it was. Rerunning with the same arguments skips the finished stages. A ``pipeline.yaml`` or
``lfs.yaml`` edited since ``auto`` wrote it is never replaced silently: the run stops and says so
(``overwrite=True`` replaces it).

>>> res = auto("tickets.jsonl", "runs/tickets", labels="labels.txt", gold="gold.jsonl")   # doctest: +SKIP
>>> print(res.summary())                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import yaml

from .errors import ConfigError
from .taxonomy.items import MAX_LABELS

#: A file auto writes carries the hash of its body here, so a later run can tell an edited file from its own.
STAMP = "# written by llmlabel auto; sha256="


@dataclass(frozen=True)
class Situation:
    """What the user has; it decides the chain."""

    labels: Optional[str] = None
    gold: Optional[str] = None
    models: tuple[str, ...] = ()
    multi_label: bool = False

    def describe(self) -> str:
        parts = ["given labels" if self.labels else "labels from the gold" if self.gold else "induced labels"]
        if self.gold:
            parts.append("gold")
        if self.models:
            parts.append(f"{len(self.models)} LLM{'s' if len(self.models) > 1 else ''}")
        return ("multi-label, " if self.multi_label else "") + " + ".join(parts)


def plan(data: str | Path, output: str | Path, sit: Situation, *, student: str | None = None,
         max_labels: int = MAX_LABELS, embedder: str | None = None, cache: str | Path | None = None,
         no_cache: bool = False, select_metric: str | None = None, fields: dict | None = None) -> tuple[dict, str]:
    """(the pipeline spec auto runs, as a dict; the lfs.yaml text) for a situation. ``cache`` / ``no_cache``:
    the LLM answer cache of the stages that may call an LLM (taxonomy and label); ``select_metric``: what
    distill's safety net maximises on the gold (None: distill's default, accuracy); ``fields``: the corpus's
    ``text-field`` / ``id-field`` for the stages that read it (taxonomy, label, predict)."""
    from .lf.defaults import default_lfs, describe, to_yaml

    work = Path(output)
    models = list(sit.models)
    labels = sit.labels or (str(work / "labels.txt") if sit.gold else None)
    tax: dict = {"quiet": True}
    if labels:
        tax["labels"] = labels
    else:
        tax.update({"max-labels": max_labels, "seed": 0})
    if embedder is not None:
        tax["embedder"] = embedder
    if sit.multi_label:
        tax["multi-label"] = True
    if models:
        tax["model"] = models[0]
    label: dict = {"lfs": str(work / "lfs.yaml"), "quiet": True}
    aggregate: dict = {"method": "auto"}
    distill: dict = {} if student is None else {"student": student}  # None: distill's own default
    # a class the label model gives one item (or only its gold rows) still trains: machine labels on a small
    # corpus should not stop the run (distill's own default, 2, guards a labeled file a person hands it)
    distill["min-per-class"] = 1
    if sit.gold:
        label["gold"] = sit.gold
        # clamped, and choosing / calibrating the label model (cross-fitted; multi-label: + per-label thresholds)
        aggregate["gold"] = sit.gold
        if select_metric is not None:
            distill["select-metric"] = select_metric
        # (a distill stage that took the gold itself would get it here: distill["gold"] = sit.gold)
    if models:
        label["model"] = models
    for st in (tax, label):
        if cache is not None:
            st["cache"] = str(cache)
        if no_cache:
            st["no-cache"] = True
    reads = {k: v for k, v in (fields or {}).items() if v is not None}
    spec = {"name": work.name or "auto", "corpus": str(data), "workdir": str(work),
            "stages": [{"taxonomy": {**tax, **reads}}, {"label": {**label, **reads}}, {"aggregate": aggregate},
                       {"distill": distill}, {"predict": {"quiet": True, **reads}}]}
    lfs = default_lfs(multi_label=sit.multi_label, gold=bool(sit.gold), models=models, embedder=embedder)
    which = describe(lfs, multi_label=sit.multi_label, models=models)
    lfs_text = to_yaml(lfs, header=f"The labeling functions llmlabel auto chose ({which}).\n"
                                   "Edit them (every kind and option: the lfs.yaml reference in the docs), then\n"
                                   f"llmlabel run {work / 'pipeline.yaml'}")
    return spec, lfs_text


def _stamped(body: str, header: str) -> str:
    rest = header + body
    return f"{STAMP}{hashlib.sha256(rest.encode()).hexdigest()}\n{rest}"


def _write_owned(path: Path, text: str, overwrite: bool) -> None:
    """Write ``text`` (stamped) unless the same is there; refuse to replace a file a person edited."""
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        if old == text:
            return  # unchanged: keep its mtime, so the pipeline does not rerun the stages that read it
        first, _, rest = old.partition("\n")
        ours = first == f"{STAMP}{hashlib.sha256(rest.encode()).hexdigest()}"
        if not ours and not overwrite:
            raise ConfigError("edited since llmlabel auto wrote it, and this run would replace it", path=path,
                              hint=f"run the edited chain with `llmlabel run {path.parent / 'pipeline.yaml'}`, "
                                   "or pass --overwrite to replace it")
    from .io_write import atomic_write

    with atomic_write(path) as f:
        f.write(text)


def check_inputs(data: str | Path, labels: str | Path | None, gold: str | Path | None, multi_label: bool,
                 text_field: str | None = None, id_field: str | None = None) -> list[str] | None:
    """Read every input once before anything is written, so bad input is one line naming the file and the run
    folder stays as it was: the corpus (every line; it must hold texts), the label file, and the gold (each
    row an ``id`` of the corpus, that item's ``text`` up to spacing, and a label of the label file when one is
    given). Returns the gold's labels, most frequent first."""
    from collections import Counter

    from .errors import InputError
    from .io import read_corpus

    known = None
    if labels is not None:
        from .taxonomy.known import read_label_file

        known = read_label_file(labels)
    gold_ids: dict[str, int] = {}
    gold_texts: dict[str, str] = {}
    counts: Counter = Counter()
    if gold is not None:
        from .artifacts.gold import read_gold

        g = read_gold(gold, label_field="labels" if multi_label else "label",
                      fallback_field="label" if multi_label else "labels", need_text=True,
                      split="|," if multi_label else "|")
        if known is not None:  # a typo in the gold is named now, not after the taxonomy stage has run
            g.matrix([k.name for k in known], aliases=[k.id or "" for k in known], among=f"the label file {labels}")
        for labs in g.labels:
            counts.update(labs)
        gold_ids = dict(zip(g.ids, g.lines))
        gold_texts = dict(zip(g.ids, g.texts))
        if not gold_ids:
            raise InputError("the gold file has no rows", path=gold)
    if str(data).startswith("hf://"):
        return [x for x, _ in counts.most_common()] or None  # a remote dataset is read once, by the stages
    corpus = read_corpus(data, text_field=text_field, id_field=id_field)
    n = 0
    other_text: list[tuple[str, int, str, str]] = []
    for b in corpus.iter_batches(10_000):  # streams: memory stays flat
        n += len(b.ids)
        for i, t in zip(b.ids, b.texts):
            line = gold_ids.pop(str(i), None)
            if line is not None and _same_text(gold_texts[str(i)]) != _same_text(t):
                other_text.append((str(i), line, gold_texts[str(i)], t))
    if not n:
        raise InputError("the corpus has no texts to label", path=data, hint=corpus.stats.summary())
    if gold_ids:
        gid, line = next(iter(gold_ids.items()))
        raise InputError(f"gold id {gid!r} is not an id of the corpus ({len(gold_ids)} such rows)", path=gold,
                         line=line, field="id", hint="gold rows are items of the corpus, with the same ids")
    if other_text:
        # the gold LFs learn from the gold file's texts, the safety net and the student from the corpus's: a
        # gold set joined to the corpus on shifted ids would teach each a different task without a word
        gid, line, gt, ct = min(other_text, key=lambda r: r[1])
        raise InputError(f"{len(other_text)} gold row(s) have another text than the corpus item with their id; "
                         f"id {gid!r}: {_clip(gt)!r} here, {_clip(ct)!r} in the corpus", path=gold, line=line,
                         field="text", hint="a gold row is an item of the corpus: same id, same text (fix the ids, "
                                            "or copy the corpus texts into the gold file)")
    return [x for x, _ in counts.most_common()] or None


def _same_text(t: str) -> str:
    import unicodedata

    return " ".join(unicodedata.normalize("NFC", str(t)).split())


def _clip(t: str, n: int = 40) -> str:
    t = " ".join(str(t).split())
    return t if len(t) <= n else t[: n - 3] + "..."


@dataclass
class AutoResult:
    """Where a run's outputs are and the numbers a user needs first."""

    workdir: Path
    pipeline: Path
    situation: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    report: Optional[Path] = None
    coverage: Optional[float] = None
    accuracy: Optional[float] = None
    accuracy_note: str = ""
    student_figure: Optional[float] = None
    student_note: str = ""

    @property
    def labels(self) -> Path:
        return self.workdir / "labeled.parquet"

    @property
    def model(self) -> Path:
        return self.workdir / "model"

    @property
    def predictions(self) -> Path:
        return self.workdir / "predictions.jsonl"

    def summary(self) -> str:
        pct = (lambda x: "-" if x is None else f"{x:.1%}")
        lines = [f"labels      {self.labels}  (+ review queue: {self.labels.with_suffix('')}.review.csv)",
                 f"model       {self.model}  (its predictions on the corpus: {self.predictions})"]
        if self.report is not None:
            lines.append(f"report      {self.report}")
        lines += [f"coverage    {pct(self.coverage)} of the items got a vote from at least one LF",
                  f"accuracy    {pct(self.accuracy)}  {self.accuracy_note}".rstrip(),
                  f"student     {pct(self.student_figure)}  {self.student_note}".rstrip(),
                  f"next        edit {self.pipeline} (and lfs.yaml beside it), then: llmlabel run {self.pipeline}"]
        return "\n".join(lines)


def read_figures(res: AutoResult) -> AutoResult:
    """Coverage, the label model's estimated accuracy and the student's figure, from the run's files."""
    from .artifacts.labeled import read_labeled
    from .artifacts.model import read_metrics

    lab = read_labeled(res.labels)
    res.coverage = float(1.0 - lab.uncovered.mean()) if len(lab) else None
    rep = lab.meta.get("label_model") or {}
    res.accuracy, res.accuracy_note = _label_model_accuracy(rep)
    res.student_figure, res.student_note = _student_figure(read_metrics(res.model))
    return res


def _label_model_accuracy(rep: dict) -> tuple[Optional[float], str]:
    if rep.get("dev_accuracy_oof") is not None:
        return float(rep["dev_accuracy_oof"]), "the label model on the dev set, cross-fitted"
    after = (rep.get("reliability") or {}).get("after") or {}
    if after.get("count"):
        n = sum(after["count"])
        acc = sum(a * c for a, c in zip(after["accuracy"], after["count"])) / n
        return acc, f"the label model on {n} gold items, cross-fitted (an item never scores a model fitted on it)"
    dev = rep.get("dev") or {}
    if dev.get("macro_f1") is not None:
        return float(dev["macro_f1"]), ("macro-F1 of the label model on the gold, in-sample (its per-label "
                                        "thresholds were tuned there): optimistic")
    if rep.get("n_gold") and rep.get("n_gold_selection", -1) == 0:
        return None, (f"unknown: none of the {rep['n_gold']} gold rows is a fair sample (all were picked by an "
                      "active review strategy); add randomly drawn ones")
    return None, "unknown without gold (pass --gold with ~100 labeled items)"


def _student_figure(m: dict) -> tuple[Optional[float], str]:
    net = m.get("safety_net") or {}  # distill's out-of-fold comparison on the gold, where it ran
    chosen = net.get("chosen") or {}
    row = next((r for r in net.get("candidates") or [] if r.get("student") == chosen.get("student")
                and r.get("weak") == chosen.get("weak")), None)
    metric = net.get("metric", "accuracy")
    if row is not None and row.get(metric) is not None:
        return float(row[metric]), (f"{metric.replace('_', '-')} of the shipped recipe ({chosen.get('student')} "
                                    f"student, weak rows: {chosen.get('weak')}) out-of-fold on "
                                    f"{net.get('gold_rows_scored', '?')} gold rows")
    dev = m.get("dev") or {}
    for key in ("accuracy", "macro_f1"):
        if dev.get(key) is not None:
            return float(dev[key]), f"{key.replace('_', '-')} of the {m.get('student')} student on {m.get('dev_file')}"
    if m.get("train_agreement") is not None:
        return float(m["train_agreement"]), (f"the {m.get('student')} student agrees with the label model's labels "
                                             "on this share of its training items (not an accuracy)"
                                             + ("; the safety net did not run: no fair gold row" if
                                                m.get("safety_net_skipped") else ""))
    return None, ""


def auto(data: str | Path, output: str | Path, *, labels: str | Path | None = None, gold: str | Path | None = None,
         models: Sequence[str] = (), multi_label: bool = False, student: str | None = None,
         max_labels: int | None = None, embedder: str | None = None, cache: str | Path | None = None,
         no_cache: bool = False, report: bool = True,
         overwrite: bool = False, select_metric: str | None = None, text_field: str | None = None,
         id_field: str | None = None, echo: Callable[[str], None] = print) -> AutoResult:
    """Write ``output/pipeline.yaml`` (and ``lfs.yaml``) for the situation and run it (see the module doc).

    ``select_metric`` (with ``gold``): what the safety net maximises out-of-fold on the gold, ``accuracy``
    (default) or ``macro_f1`` (when a rare class counts as much as a common one). ``max_labels`` (labels induced
    without ``labels``): :data:`MAX_LABELS`, fewer when the corpus has too few distinct texts for that many."""
    from .distill.safety import METRICS
    from .io_write import check_writable
    from .pipeline import load_pipeline, run_pipeline

    if select_metric is not None and select_metric not in METRICS:
        raise ConfigError(f"--select-metric must be one of {', '.join(METRICS)}, got {select_metric!r}")
    if select_metric is not None and gold is None:
        raise ConfigError("--select-metric chooses what the safety net maximises on your gold: it needs --gold")
    work = check_writable(output, folder=True)
    gold_labels = check_inputs(data, labels, gold, multi_label, text_field, id_field)
    if max_labels is None and labels is None and gold is None:
        from .taxonomy.items import labels_room

        max_labels = labels_room(data, text_field=text_field, id_field=id_field, say=lambda m: echo(f"[auto] {m}"))
    sit = Situation(None if labels is None else str(labels), None if gold is None else str(gold),
                    tuple(models or ()), multi_label)
    spec, lfs_text = plan(data, work, sit, student=student, max_labels=max_labels or MAX_LABELS, embedder=embedder,
                          cache=cache, no_cache=no_cache, select_metric=select_metric,
                          fields={"text-field": text_field, "id-field": id_field})
    work.mkdir(parents=True, exist_ok=True)
    if gold is not None and labels is None:
        names = "".join(f"{x}\n" for x in gold_labels)
        _write_owned(work / "labels.txt", _stamped(names, "# the labels of the gold file, one a line\n"), overwrite)
    _write_owned(work / "lfs.yaml", _stamped(lfs_text, ""), overwrite)
    header = (f"# llmlabel auto ({sit.describe()}); paths are relative to {Path.cwd()}\n"
              f"# Edit it, then: llmlabel run {work / 'pipeline.yaml'}\n")
    _write_owned(work / "pipeline.yaml", _stamped(yaml.safe_dump(spec, sort_keys=False), header), overwrite)
    echo(f"[auto] {sit.describe()}: {work / 'pipeline.yaml'}")
    pipe = load_pipeline(work / "pipeline.yaml")
    recs = run_pipeline(pipe, echo=echo)
    res = AutoResult(work, work / "pipeline.yaml", sit.describe(),
                     ran=[r["stage"] for r in recs if not r.get("skipped")],
                     skipped=[r["stage"] for r in recs if r.get("skipped")])
    if report:
        from .report import write_report

        res.report = write_report([work], work / "report.html")
    return read_figures(res)


__all__ = ["AutoResult", "Situation", "auto", "plan", "read_figures"]
