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
    output: Path = options.output("Model folder to write."),
    student: str = typer.Option("auto", help="auto (with gold: the safety net chooses static, anchored, the "
                                "probe on the gold or the tuned probe; else static) | static | static:MODEL2VEC_FOLDER "
                                "| probe (frozen MiniLM + logistic regression) | anchored (the probe shrunk towards "
                                "the label texts' embeddings) | probe:ENCODER_FOLDER | minilm | tuned (fine-tune "
                                "from the run's encoder tuned on the gold) | a local encoder folder."),
    soft: Optional[bool] = typer.Option(None, "--soft/--hard", help="Train on the label model's probabilities or on "
                                        "hard labels (default: soft; multi-label files: their label sets)."),
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
    weak_weight: Optional[str] = typer.Option(None, help="Weight factor for items no person labeled (0-1], or "
                                              "'auto': chosen on --dev (default for multi-label files with reviewed "
                                              "items and --dev; else 1)."),
    safety_net: bool = typer.Option(True, "--safety-net/--no-safety-net",
                                    help="With gold (labeled by `aggregate --gold`): score every recipe out-of-fold "
                                         "on the gold (weak labels + gold, a blend, the gold alone; static and "
                                         "anchored students, logistic regression on the gold) and ship the best."),
    tuned_encoder: bool = typer.Option(True, "--tuned-encoder/--no-tuned-encoder",
                                       help="With --student auto and the safety net: also weigh a probe on MiniLM "
                                            "tuned on the gold (the label stage's encoder/, else fitted here: "
                                            "three short fine-tunings)."),
    select_metric: str = typer.Option("accuracy", help="What the safety net maximises: accuracy or macro_f1."),
    min_per_class: int = typer.Option(2, help="Refuse classes with fewer examples than this."),
    seed: int = typer.Option(0, help="Random seed."),
    threads: Optional[int] = typer.Option(None, help="Encoder students: torch CPU threads (default: torch's)."),
    head_init: Optional[str] = typer.Option(None, help="Encoder students: 'probe' (default: the head starts from a "
                                                       "linear probe on the frozen encoder, LP-FT) or 'random'."),
    license: str = typer.Option("other", help="License for the model card metadata."),
    language: Optional[list[str]] = typer.Option(None, help="Language code(s) for the model card (repeatable)."),
    embed_cache: Optional[Path] = options.embed_cache(),
    no_embed_cache: bool = options.no_embed_cache(),
) -> None:
    """Train a small student model on labeled data; writes the model, metrics.json and a model card."""
    from ..distill.api import distill

    with options.embedding_store(embed_cache, no_embed_cache):  # students that read frozen sentence embeddings
        res = distill(labeled, output, student=student, soft=soft, multi_label=multi_label, dev=dev, epochs=epochs,
                      text_field=text_field, label_field=label_field, proba_field=proba_field,
                      confidence_weights=confidence_weights, dev_label_field=dev_label_field,
                      min_per_class=min_per_class, seed=seed, progress=True, license=license,
                      language=language or None, max_steps=max_steps, batch_size=batch_size,
                      threads=threads, head_init=head_init, weak_weight=weak_weight, safety_net=safety_net,
                      select_metric=select_metric, tuned_encoder=tuned_encoder)
    m = res.metrics
    if m.get("safety_net"):
        typer.echo(f"safety net: {m['safety_net']['verdict']}")
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
    from ..distill.hub import push_model

    res = push_model(folder, repo, private=private, revision=revision, dataset=dataset, dataset_repo=dataset_repo)
    if res["dataset_repo"]:
        typer.echo(f"pushed dataset {dataset} -> {res['dataset_repo']}: {res['dataset_url']}")
    typer.echo(f"pushed {folder} -> {repo}: {res['url']}")


def predict_cmd(
    model: Path = typer.Argument(..., help="Model folder written by `llmlabel distill`."),
    data: Path = typer.Argument(..., help="Texts to label (JSONL/CSV/Parquet)."),
    output: Path = options.output("Predictions (JSONL)."),
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
    no_cache: bool = options.no_cache(),
    int8: bool = typer.Option(False, "--int8", help="Encoder students: dynamic int8 quantisation (faster on CPU)."),
    backend: str = options.backend(),
    address: Optional[str] = options.address(),
    num_workers: int = options.num_workers(),
    gpus_per_worker: float = options.gpus_per_worker(),
    embed_cache: Optional[Path] = options.embed_cache(),
    no_embed_cache: bool = options.no_embed_cache(),
) -> None:
    """Label texts with a student model, optionally as a cascade that defers low-confidence items to an LLM."""
    from ..lf.prompted import prompted_labeler
    from ..scale.backend import predict

    with options.embedding_store(embed_cache, no_embed_cache):  # students that read frozen sentence embeddings
        res = predict(model, data, output, text_field=text_field, id_field=id_field, cascade_llm=cascade_llm,
                      threshold=threshold, target_accuracy=target_accuracy, max_deferral=max_deferral, dev=dev,
                      dev_label_field=dev_label_field, batch_size=batch_size, cache=cache, no_cache=no_cache,
                      int8=int8, progress=True, make_labeler=prompted_labeler, backend=backend, address=address,
                      num_workers=num_workers, gpus_per_worker=gpus_per_worker)
    msg = f"{res.read}; wrote {res.rows:,} predictions to {output}" + (
        f" ({res.empty:,} empty texts without a label, reason \"empty text\")" if res.empty else "")
    if res.deferred is not None:
        msg += f"; {res.deferred:,} deferred to the LLM (threshold {res.threshold:.4f})"
        if res.curve_path:
            msg += f"; accuracy/deferral curve in {res.curve_path}"
            if res.calibration and not res.calibration["goal_met"]:
                msg += " (target accuracy NOT reached on dev: using the most accurate point)"
    typer.echo(msg)
