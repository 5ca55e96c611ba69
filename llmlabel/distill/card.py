"""The model card (README.md with Hub YAML metadata) that states how the model was made, honestly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any



def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def render_card(*, name: str, kind: str, classes: list[str], n_items: int, source: str, source_meta: dict | None,
                soft: bool, multi_label: bool, dev_metrics: dict | None, dev_source: str | None,
                train_seconds: float, settings: dict, label_stats: dict, license: str = "other",
                language: list[str] | None = None, datasets: list[str] | None = None, training=None,
                safety_net: dict | None = None, net_skipped: str | None = None) -> str:
    """Render README.md. ``source_meta`` is the labeled file's provenance (:func:`llmlabel.io_meta.read_meta`);
    ``training`` (:class:`llmlabel.artifacts.model.TrainingFacts`) states what the loss really saw."""
    if training is not None:
        soft = training.targets == "soft"
    base = str(settings.get("base_model") or "")
    out = ["---", _header(name, kind, base, dev_metrics, license, language, datasets), "---", "", f"# {name}", ""]
    out += [f"This is {_what(kind, base, str(settings.get('embedder') or ''), bool(settings.get('anchors')))} for "
            f"{'multi-label' if multi_label else 'single-label'} text classification into {len(classes)} classes, "
            f"trained by `llmlabel distill` on {_trained_on(training)}.", ""]
    out += ["## How the training labels were made", ""]
    out += _provenance(source, n_items, soft, label_stats, training, source_meta or {}) + [""]
    out += ["## Evaluation", ""] + ([f"**The safety net did not run**: {net_skipped}.", ""] if net_skipped else [])
    out += _evaluation(safety_net, dev_metrics, dev_source, label_stats) + [""]
    out += _use_and_limits(kind, classes, settings)
    out += ["", "## How to use", ""] + _how_to_use(kind, multi_label, soft, settings)
    out += ["", "## Training", "", f"- Train time: {train_seconds:.1f} s.",
            f"- Settings: `{json.dumps({k: v for k, v in settings.items() if v is not None}, sort_keys=True)}`",
            f"- Classes and label counts: `{json.dumps(label_stats.get('counts', {}), ensure_ascii=False)[:2000]}`", ""]
    return "\n".join(out)


def _trained_on(training) -> str:
    """What the loss saw: machine-generated labels, a person's labels, or both (the safety net may ship a recipe
    trained on the gold alone, a file of reviewed items only)."""
    human = training.n_human if training is not None else 0
    if human and human >= training.n_items:
        return f"**{human:,} items labeled by a person** (no machine-generated label was trained on)"
    if human:
        return (f"**machine-generated labels** (weak supervision) and {human:,} items labeled by a person (at full "
                "weight)")
    return "**machine-generated labels** (weak supervision), not on human annotations"


def _header(name: str, kind: str, base: str, dev_metrics: dict | None, license: str, language, datasets) -> str:
    """The Hub's YAML metadata, written by huggingface_hub (model-index from the dev figures, when there are)."""
    from huggingface_hub import EvalResult, ModelCardData

    tags = ["text-classification", "llmlabel", "distillation", "weak-supervision",
            "static-embeddings" if kind == "static" else "transformers"]
    results = [EvalResult(task_type="text-classification", task_name="Text Classification", dataset_type="custom",
                          dataset_name=f"gold dev set ({dev_metrics.get('n', '?')} items)", metric_type=m,
                          metric_value=round(float(v), 4), metric_name=f"dev {m}")
               for m, v in (dev_metrics or {}).items() if m != "n" and isinstance(v, (int, float))]
    data = ModelCardData(license=license, language=language or ["en"],
                         library_name="transformers" if kind == "encoder" else "llmlabel",
                         pipeline_tag="text-classification", tags=tags, datasets=datasets or None,
                         # only a base model we can name on the Hub; a local folder's origin is unknown here
                         base_model=("sentence-transformers/all-MiniLM-L6-v2" if kind == "encoder" and base in
                                     ("minilm", "all-MiniLM-L6-v2") else None),
                         model_name=name if results else None, eval_results=results or None)
    return data.to_yaml()


def _what(kind: str, base: str, enc: str, anchored: bool = False) -> str:
    """One phrase naming the model: its kind and the encoder it reads (the tuned one named by what it saw)."""
    if kind == "static":
        return "a static-embedding classifier (frozen WordLlama token embeddings + TF-IDF features, linear/MLP head)"
    if kind == "probe":
        tuned = _tuned_meta(enc)
        if tuned:  # the safety net's tuned candidate: name what the encoder was tuned on
            enc = (f"all-MiniLM-L6-v2 tuned on {tuned.get('gold_items', '?')} gold rows and the label names "
                   f"({tuned.get('settings', {}).get('method', '?')}, llmlabel.tuned; fingerprint "
                   f"{tuned.get('fingerprint', '?')}), then frozen")
        elif enc in ("minilm", "all-MiniLM-L6-v2"):
            enc = "all-MiniLM-L6-v2"
        else:
            enc = f"the local folder `{enc}`"
        head = (" fitted towards the embeddings of the label texts (the anchored probe: its weights start from "
                "zero-shot classification by the label names and descriptions, at a scale fitted on the gold)"
                if anchored else "")
        return f"a frozen sentence encoder ({enc}) with a logistic-regression head{head}"
    return ("a fine-tuned transformers encoder ("
            + ("all-MiniLM-L6-v2" if base in ("minilm", "all-MiniLM-L6-v2") else f"from the local folder `{base}`") + ")")


_PROVENANCE = (("taxonomy", "Taxonomy"), ("labeling_functions", "Labeling functions"), ("lfs", "Labeling functions"),
               ("engine", "LLM engine"), ("engines", "LLM engines"),
               ("encoder", "Encoder tuned on the gold (read by the gold LFs)"), ("label_model", "Label model"),
               ("prompt_hashes", "Prompt hashes"), ("command", "Command"), ("created_utc", "Labeled at (UTC)"),
               ("llmlabel_version", "llmlabel version"))
_NOT_LISTED = {"usage", "python", "platform", "classes", "labels"}


def _provenance(source: str, n_items: int, soft: bool, label_stats: dict, training, meta: dict) -> list[str]:
    prov = [f"- Training file: `{source}` ({n_items:,} labeled items)."]
    prov.append(f"- Targets: {'soft per-class probabilities from the label model' if soft else 'hard labels'}"
                f"{' with per-item weights from the label confidence' if label_stats.get('weighted') else ''}.")
    if training is not None and training.soft_requested and not soft:
        prov.append("- Soft targets were asked for, but the training file holds no probabilities other than the "
                    "labels one-hot, so training used hard labels.")
    if training is not None and training.n_human:
        prov.append(f"- {training.n_human:,} items were reviewed by a person and trained at full weight.")
    if not meta:
        return prov + ["- The training file carries **no provenance metadata**: which taxonomy, labeling functions, "
                       "LLMs and label model produced its labels is not recorded here. Treat the labels' origin as "
                       "unknown."]
    for key, label in _PROVENANCE:
        v = meta.get(key)
        if key == "label_model" and isinstance(v, dict) and v.get("chosen"):
            prov.append(f"- {label}: {_label_model_line(v)}")
        elif v not in (None, "", {}, []):
            prov.append(f"- {label}: `{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)[:500]}`")
    other = sorted(k for k in meta if k not in {k for k, _ in _PROVENANCE} | _NOT_LISTED)
    if other:
        prov.append(f"- Other recorded provenance keys: {', '.join(other)}.")
    return prov


def _label_model_line(rep: dict) -> str:
    """The label model's report (what `aggregate` records) as a sentence: which model, calibrated how, and why
    (the whole report, every candidate's dev scores, stays in the labeled file's metadata)."""
    cal = rep.get("calibration")
    what = f"`{rep['chosen']}`" + (f", calibrated by {cal}" if cal and cal != "none" else "")
    why = str(rep.get("reason") or "").strip()
    return f"{what}" + (f" ({why})" if why else "") + "."


def _evaluation(safety_net: dict | None, dev_metrics: dict | None, dev_source: str | None,
                label_stats: dict) -> list[str]:
    out = _safety_section(safety_net) if safety_net else []
    if dev_metrics:
        out.append(f"Measured on the gold dev set `{dev_source}` ({dev_metrics.get('n', '?')} human-labeled items), "
                   "which was also used for early stopping, so these figures are slightly optimistic:")
        out += ["", "| metric | value |", "|---|---|"]
        out += [f"| {m} | {_fmt(v)} |" for m, v in dev_metrics.items() if m != "n"]
    elif not safety_net:
        out.append("**There was no gold dev set**: this model has **not** been evaluated against human labels. "
                   "The only signal is agreement with the machine labels it was trained on, which says nothing about "
                   "how often it is right. Evaluate it on a labeled sample of your own data before relying on it.")
    if label_stats.get("mean_confidence") is not None:
        out += ["", f"Mean label-model confidence over the training items: {label_stats['mean_confidence']:.3f}."]
    return out


def _use_and_limits(kind: str, classes: list[str], settings: dict) -> list[str]:
    out = ["## Intended use", "",
           f"Routing, tagging or pre-filtering texts that resemble the training data, into these classes: "
           f"{', '.join(f'`{c}`' for c in classes[:40])}{' ...' if len(classes) > 40 else ''}. "
           "Low-confidence predictions can be deferred to an LLM (`llmlabel predict --cascade-llm`).", "",
           "## Limits", "",
           "- It learns the labeling functions' and LLMs' mistakes and biases along with their knowledge; it cannot be "
           "more accurate than its labels on the cases where they are systematically wrong.",
           "- It knows only the classes above and always answers one of them (or a set, when multi-label), even for "
           "out-of-domain text.",
           "- Texts are cut to " + str(settings.get("max_tokens") or settings.get("max_length") or "?") + " tokens."]
    if kind == "static":
        out.append("- A bag of static token embeddings and n-grams: word order beyond bigrams, negation and context "
                   "are largely invisible to it.")
    out.append("- Not for decisions about people (credit, employment, health, legal) without human review.")
    return out


def _how_to_use(kind: str, multi_label: bool, soft: bool, settings: dict) -> list[str]:
    out = []
    if multi_label:
        thr = settings.get("threshold", 0.5)
        out += ["Multi-label: each class has its own sigmoid score (trained with binary cross-entropy"
                + (" on the label model's soft per-class probabilities" if soft else "") + "); an item gets every "
                "class whose score reaches its threshold"
                + (" (one per class, stored as `threshold` in `llmlabel_student.json`)" if isinstance(thr, list)
                   else f" ({thr})") + ". `predict` returns the label lists with the per-class scores.", ""]
    if kind == "encoder":
        top = ", top_k=None" if multi_label else ""
        return out + ["```python", "from transformers import pipeline", "",
                      f'clf = pipeline("text-classification", model="PATH_OR_REPO"{top})', 'clf("some text")', "```"]
    needs = ("sentence-transformers, safetensors" if kind == "probe" else "numpy, scipy, tokenizers, safetensors")
    return out + [f"Without llmlabel (needs {needs}; `predict.py` ships in this folder):", "",
                  "```python", "import sys; sys.path.insert(0, \"PATH\")", "from predict import load", "",
                  'clf = load("PATH")', 'clf.predict(["some text"])', "```", "",
                  "With llmlabel: `llmlabel predict PATH data.jsonl -o preds.jsonl`."]


def _safety_section(net: dict) -> list[str]:
    """The cross-fitted comparison on the gold (:mod:`llmlabel.distill.safety`): the verdict and the table."""
    metric = net.get("metric", "accuracy")
    cols = ("macro_f1", "micro_f1") if net.get("multi_label") else ("accuracy", "macro_f1")
    out = [f"**Out-of-fold on the gold** ({net.get('gold_rows_scored', '?')} human-labeled items, {net.get('folds')} "
           "folds; each fold scored by students trained with weak labels and gold that fold's labels never "
           f"shaped): {net.get('verdict', '')}.", "",
           "| student | weak rows | " + " | ".join(c.replace("_", "-") for c in cols) + " |", "|---|---|---|---|"]
    chosen = net.get("chosen") or {}
    for r in net.get("candidates", []):
        mark = " (shipped)" if (r["student"], r["weak"]) == (chosen.get("student"), chosen.get("weak")) else ""
        out.append(f"| {r['student']}{mark} | {r['weak']} | " + " | ".join(f"{r[c]:.4f}" for c in cols) + " |")
    out += ["", f"The shipped recipe was chosen by {metric.replace('_', '-')} on these same figures, so its own "
            "figure is slightly optimistic; the others are not."]
    if net.get("multi_label"):
        out.append(f"Each fold's items were decided at {net.get('scoring', '').split('; ', 1)[-1]}; the shipped "
                   f"thresholds are {net.get('thresholds_from', '')}.")
    return out + [""]


def _tuned_meta(folder: str) -> dict | None:
    """tuned.json of a tuned-encoder folder (llmlabel.tuned), or None for any other encoder."""
    p = Path(folder) / "tuned.json" if folder else None
    try:
        return json.loads(p.read_text(encoding="utf-8")) if p is not None and p.is_file() else None
    except (OSError, ValueError):
        return None
