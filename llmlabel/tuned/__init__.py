"""An encoder tuned on the run's gold (contrastive: label names + gold texts), shared by every stage."""

from .encoder import TunedEncoder
from .train import TuneSettings, anchor_texts, tune_encoder

__all__ = ["TuneSettings", "TunedEncoder", "anchor_texts", "tune_encoder"]
