"""Moved to :mod:`llmlabel.artifacts.matrix` (shared by lf/ and labelmodel/); kept for imports."""

from ..artifacts.matrix import ABSTAIN, PROBA_PREFIX, VOTE_PREFIX, LabelMatrix

__all__ = ["ABSTAIN", "LabelMatrix", "PROBA_PREFIX", "VOTE_PREFIX"]
