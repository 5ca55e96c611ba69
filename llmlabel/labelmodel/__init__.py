"""Label models: turn noisy, partial, conflicting LF votes into one label and a calibrated confidence.

Votes are an ``n x m`` int array (-1 = abstain), ``n x m x k`` soft votes, or a ``LabelMatrix``. Every
model has the scikit-learn shape: parameters in ``__init__``, ``fit(L, y_dev=None, L_dev=None)``,
``predict_proba(L)``, ``predict(L)``; learned state ends in ``_``. Rows no LF covers get the class prior
and are flagged by ``covered_mask(L)``. Without gold the default is ``HeldOutSelect`` (``DEFAULT_MODEL``);
with a dev set ``select_label_model`` chooses and calibrates.
"""

from __future__ import annotations

from .analysis import LFAnalysis
from .base import ABSTAIN, LabelModel, Votes, as_votes, break_ties
from .calibrate import (CalibratedLabelModel, IsotonicCalibrator, TemperatureScaling, TopLabelIsotonic,
                        expected_accuracy, expected_calibration_error, log_loss)
from .dawid_skene import DawidSkene, OneCoinDawidSkene
from .heldout import HeldOutSelect
from .hyperlm import HyperLM, hyperlm_available
from .majority import MajorityVote, WeightedVote
from ..artifacts.matrix import LabelMatrix
from .multilabel import MultiLabel
from .redundancy import redundancy_weights
from .run import aggregate_votes, lf_report
from .review import review_queue, review_scores, to_label_studio, write_csv, write_jsonl, write_label_studio
from .select import DEFAULT_CANDIDATES, DEFAULT_MODEL, make_model, select_label_model
from .stacked import StackedVote
from ..artifacts.wrench import load_wrench, load_wrench_label_names

__all__ = [
    "ABSTAIN", "LabelModel", "Votes", "as_votes", "break_ties",
    "MajorityVote", "WeightedVote", "DawidSkene", "OneCoinDawidSkene", "HeldOutSelect", "StackedVote",
    "HyperLM", "hyperlm_available",
    "redundancy_weights", "LabelMatrix", "MultiLabel",
    "CalibratedLabelModel", "TemperatureScaling", "IsotonicCalibrator", "TopLabelIsotonic",
    "expected_calibration_error", "expected_accuracy", "log_loss",
    "select_label_model", "make_model", "DEFAULT_MODEL", "DEFAULT_CANDIDATES",
    "LFAnalysis", "aggregate_votes", "lf_report", "review_queue", "review_scores", "to_label_studio", "write_csv", "write_jsonl",
    "write_label_studio", "load_wrench", "load_wrench_label_names",
]
