"""Labeling functions: Python, keyword/regex, embedding similarity and prompted LLM LFs.

Each LF turns a batch of texts into one vote per text (-1 = abstain); :func:`apply_lfs` runs a list of
them into a :class:`~llmlabel.labelmodel.LabelMatrix`. :func:`match_prior` re-weights an LLM's class
probabilities on unlabeled items to a target class prior.
"""

from __future__ import annotations

from .apply import apply_lfs
from .core import ABSTAIN, LabelingFunction, PythonLF, labeling_function
from .embedding import EmbeddingLF
from .keyword import KeywordLF, keyphrase_lfs
from .prior import match_prior
from .prompted import PromptedLF, PromptedMultiLabelLF, load_template
from .spec import build_lfs, load_lf_spec

__all__ = ["ABSTAIN", "LabelingFunction", "PythonLF", "labeling_function", "match_prior", "PromptedLF",
           "PromptedMultiLabelLF", "load_template", "KeywordLF", "keyphrase_lfs", "EmbeddingLF", "apply_lfs",
           "build_lfs", "load_lf_spec"]
