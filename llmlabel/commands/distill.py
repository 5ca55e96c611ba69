"""``llmlabel distill``, ``llmlabel push`` and ``llmlabel predict`` (imports nothing heavy at module level)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import options


def register(app: typer.Typer) -> None:
    app.command("distill")(distill_cmd)
    app.command("push")(push_cmd)
    app.command("predict")(predict_cmd)


def distill_cmd(
    labeled: Path = typer.Argument(..., help="Labeled file (Parquet/JSONL/CSV): text, label, optional proba/confidence."),
    output: Path = typer.Option(..., "--output", "-o", help="Model folder to write."),
    student: str = typer.Option("static", help="static | static:MODEL2VEC_FOLDER | minilm | a local encoder folder."),
    soft: bool = typer.Option(True, "--soft/--hard", help="Train on the label model's probabilities or on hard labels."),
    multi_label: bool = typer.Option(False, "--multi-label", help="Labels are lists; sigmoid/BCE per class."),
    dev: Optional[Path] = typer.Option(None, help="Gold dev set (text + label) for early stopping and metrics."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (static: L-BFGS rounds of 50 steps; default 3)."),
    max_steps: Optional[int] = typer.Option(None, help="Encoder students: stop after this many optimizer steps."),
    batch_size: Optional[int] = typer.Option(None, help="Encoder students: batch size (default 32)."),
    text_field: Optional[str] = options.text_field(),
    label_field: str = typer.Option("label", help="Label column."),
    proba_field: Optional[str] = typer.Option(None, help="Per-class probability column (default: 'proba' if present)."),
    dev_label_field: str = options.dev_label_field(),
    confidence_weights: bool = typer.Option(True, "--confidence-weights/--no-confidence-weights",
                                            help="Weight items by the 'confidence' column when present."),
    min_per_class: int = typer.Option(2, help="Refuse classes with fewer examples than this."),
    seed: int = typer.Option(0, help="Random seed."),
    threads: Optional[int] = typer.Option(None, help="Encoder students: torch CPU threads (default: torch's)."),
    head_init: Optional[str] = typer.Option(None, help="Encoder students: 'probe' (default: the head starts from a "
                                                       "linear probe on the frozen encoder, LP-FT) or 'random'."),
    license: str = typer.Option("other", help="License for the model card metadata."),
    language: Optional[list[str]] = typer.Option(None, help="Language code(s) for the model card (repeatable)."),
) -> None:
    """Train a small student model on labeled data; writes the model, metrics.json and a model card."""
    from ..distill.api import distill

    kw = {}
    if max_steps is not None:
        kw["max_steps"] = max_steps
    if batch_size is not None:
        kw["batch_size"] = batch_size
    if threads is not None:
        kw["threads"] = threads
    if head_init is not None:
        kw["head_init"] = head_init
    if kw and (student == "static" or student.startswith("static:")):
        from ..errors import ConfigError

        raise ConfigError("--max-steps/--batch-size/--threads/--head-init apply to encoder students only",
                          hint="drop them for --student static")
    res = distill(labeled, output, student=student, soft=soft, multi_label=multi_label, dev=dev, epochs=epochs,
                  text_field=text_field, label_field=label_field, proba_field=proba_field,
                  confidence_weights=confidence_weights, dev_label_field=dev_label_field,
                  min_per_class=min_per_class, seed=seed, progress=True, license=license,
                  language=language or None, **kw)
    m = res.metrics
    dev_txt = (", ".join(f"dev {k} {v:.4f}" for k, v in m["dev"].items() if k != "n") if m["dev"]
               else "no gold dev set")
    typer.echo(f"wrote {res.folder}: {m['student']} student, {m['n_train']:,} items, {len(m['classes'])} classes, "
               f"{m['train_seconds']:.1f} s; {dev_txt}")


def push_cmd(
    folder: Path = typer.Argument(..., help="Model folder written by `llmlabel distill`."),
    repo: str = typer.Option(..., "--repo", help="Hub repo id ORG/NAME."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private."),
    revision: Optional[str] = typer.Option(None, help="Branch to push to (created if missing)."),
    dataset: Optional[Path] = typer.Option(None, help="Also push this labeled file as dataset repo ORG/NAME-data."),
    dataset_repo: Optional[str] = typer.Option(None, help="Dataset repo id (default: REPO-data)."),
) -> None:
    """Upload a model folder (and optionally its labeled dataset) to the Hugging Face Hub (token: HF_TOKEN)."""
    from ..distill.export import student_info
    from ..distill.hub import link_dataset_in_card, push_dataset, push_to_hub

    student_info(folder)  # refuse a folder that is not ours before pushing anything
    if dataset is not None:  # the dataset first, so the model card can link to it
        drepo = dataset_repo or f"{repo}-data"
        durl = push_dataset(dataset, drepo, private=private)
        typer.echo(f"pushed dataset {dataset} -> {drepo}: {durl}")
        link_dataset_in_card(folder, drepo)
    url = push_to_hub(folder, repo, private=private, revision=revision)
    typer.echo(f"pushed {folder} -> {repo}: {url}")


def predict_cmd(
    model: Path = typer.Argument(..., help="Model folder written by `llmlabel distill`."),
    data: Path = typer.Argument(..., help="Texts to label (JSONL/CSV/Parquet)."),
    output: Path = typer.Option(..., "--output", "-o", help="Predictions (JSONL)."),
    text_field: Optional[str] = options.text_field(),
    id_field: Optional[str] = options.id_field(),
    cascade_llm: Optional[str] = typer.Option(None, help="Defer unsure items to this LLM (hf:..., vllm:..., openai:...)."),
    threshold: Optional[float] = typer.Option(None, help="Defer items whose student confidence is below T."),
    target_accuracy: Optional[float] = typer.Option(None, help="Choose T on --dev for this cascade accuracy."),
    max_deferral: Optional[float] = typer.Option(None, help="Choose T on --dev: best accuracy deferring at most this share."),
    dev: Optional[Path] = typer.Option(None, help="Gold dev set: choose T there, or measure --threshold's accuracy."),
    dev_label_field: str = options.dev_label_field(),
    batch_size: int = typer.Option(4096, help="Texts per prediction batch."),
    cache: Optional[Path] = options.cache(),
    int8: bool = typer.Option(False, "--int8", help="Encoder students: dynamic int8 quantisation (faster on CPU)."),
    backend: str = options.backend(),
    address: Optional[str] = options.address(),
    num_workers: int = options.num_workers(),
    gpus_per_worker: float = options.gpus_per_worker(),
) -> None:
    """Label texts with a student model, optionally as a cascade that defers low-confidence items to an LLM."""
    import json

    from ..distill.cascade import Cascade
    from ..distill.data import read_gold
    from ..distill.export import load_student
    from ..distill.predict import prediction_rows
    from ..errors import ConfigError
    from ..artifacts.predictions import write_predictions
    from ..io import atomic_write, make_meta, read_corpus

    choosing = target_accuracy is not None or max_deferral is not None
    if cascade_llm is None and (threshold is not None or choosing or dev is not None):
        raise ConfigError("--threshold/--target-accuracy/--max-deferral/--dev need --cascade-llm",
                          hint="name the LLM to defer to, e.g. --cascade-llm hf:/path/to/model")
    if cascade_llm is not None:
        if (threshold is not None) + choosing != 1 or (target_accuracy is not None and max_deferral is not None):
            raise ConfigError("with --cascade-llm give exactly one of --threshold, --target-accuracy, --max-deferral")
        if choosing and dev is None:
            raise ConfigError("--target-accuracy/--max-deferral choose T on a gold dev set", hint="add --dev dev.jsonl")
        for name, v in (("threshold", threshold), ("target-accuracy", target_accuracy), ("max-deferral", max_deferral)):
            if v is not None and not 0.0 <= v <= 1.0:
                raise ConfigError(f"--{name} must be in [0, 1], got {v}")
    ray_kw = options.ray_kwargs(backend, address, num_workers, gpus_per_worker)
    student = load_student(model, quantize=int8)
    if student.multi_label and cascade_llm:
        raise ConfigError("the cascade supports single-label models only")
    corpus = read_corpus(data, text_field=text_field, id_field=id_field)
    casc, calib = None, None
    if cascade_llm:
        from ..llm import load_engine

        from ..lf.prompted import PromptedLF

        engine = load_engine(cascade_llm, cache=cache)
        lf = PromptedLF("cascade", engine, list(student.classes_), template="lf_zero_shot")  # the labeling prompt
        casc = Cascade(student, engine, threshold=threshold or 0.0, labeler=lambda t: lf.apply(t)[1])
        if dev is not None:  # choose T there, or (with --threshold) measure T's accuracy and deferral there
            texts, gold = read_gold(dev, student.classes_, label_field=dev_label_field)
            calib = casc.calibrate(texts, gold, target_accuracy=target_accuracy, max_deferral=max_deferral,
                                   progress=True)
    classes = student.classes_
    n_def = 0
    ray_stats: dict = {}

    def rows():
        nonlocal n_def
        if ray_kw is not None:  # the same rows, computed by actors that each load the student once
            from ..scale.ray import predict_rows_ray

            yield from predict_rows_ray(model, data, text_field=text_field, id_field=id_field, int8=int8,
                                        cascade_llm=cascade_llm, threshold=casc.threshold if casc else 0.0,
                                        cache=cache, batch_size=batch_size, stats=ray_stats, **ray_kw)
            n_def = ray_stats["deferred"]
            return
        for batch in corpus.iter_batches(batch_size):
            recs, d = prediction_rows(student, casc, batch.ids, batch.texts)
            n_def += d
            yield from recs

    meta = make_meta(engine=cascade_llm, model_folder=str(model), classes=list(classes),
                     threshold=casc.threshold if casc else None, calibration=calib)
    n = write_predictions(output, rows(), task="multi" if student.multi_label else "single", classes=classes,
                          meta=meta)
    msg = f"wrote {n:,} predictions to {output}"
    if casc is not None:
        msg += f"; {n_def:,} deferred to the LLM (threshold {casc.threshold:.4f})"
        if casc.curve:
            curve_path = output.with_name(output.name + ".cascade.json")
            with atomic_write(curve_path) as f:
                f.write(json.dumps({"calibration": calib, "curve": casc.curve}, indent=1) + "\n")
            msg += f"; accuracy/deferral curve in {curve_path}"
            if calib and not calib["goal_met"]:
                msg += " (target accuracy NOT reached on dev: using the most accurate point)"
    typer.echo(msg)
