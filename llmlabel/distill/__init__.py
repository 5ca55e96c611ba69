"""Distill labels into a small student model, export it (transformers / static folder + model card), push it to the
Hugging Face Hub, and serve it as a cascade that defers unsure items to an LLM.

>>> from llmlabel.distill import distill, load_student
>>> res = distill("labeled.parquet", "model/", student="static")   # doctest: +SKIP
>>> load_student("model/").predict(["where is my card?"])          # doctest: +SKIP
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "distill": ("llmlabel.distill.api", "distill"),
    "DistillResult": ("llmlabel.distill.api", "DistillResult"),
    "make_student": ("llmlabel.distill.api", "make_student"),
    "StaticStudent": ("llmlabel.distill.static", "StaticStudent"),
    "EncoderStudent": ("llmlabel.distill.encoder", "EncoderStudent"),
    "load_student": ("llmlabel.distill.export", "load_student"),
    "student_info": ("llmlabel.distill.export", "student_info"),
    "read_labeled": ("llmlabel.distill.data", "read_labeled"),
    "LabeledData": ("llmlabel.distill.data", "LabeledData"),
    "render_card": ("llmlabel.distill.card", "render_card"),
    "push_to_hub": ("llmlabel.distill.hub", "push_to_hub"),
    "push_dataset": ("llmlabel.distill.hub", "push_dataset"),
    "Cascade": ("llmlabel.distill.cascade", "Cascade"),
    "choose_threshold": ("llmlabel.distill.cascade", "choose_threshold"),
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr("llmlabel.distill", _LAZY, globals())
