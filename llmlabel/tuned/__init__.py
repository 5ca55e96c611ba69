"""An encoder tuned on the run's gold (contrastive: label names + gold texts), shared by every stage."""

from .encoder import TunedEncoder, recorded_folders
from .train import TuneSettings, anchor_texts, tune_encoder

__all__ = ["TuneSettings", "TunedEncoder", "anchor_texts", "recorded_folders", "tune_encoder"]
