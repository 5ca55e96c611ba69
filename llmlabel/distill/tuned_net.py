"""The run's tuned encoder for the safety net's ``tuned`` candidate: the label stage's when it fits, else one
fitted here on the gold rows of the labeled file, with the cross-fitting folds of the net.

The candidate is only honest if, for fold f, the encoder that embeds fold f's gold never saw it: the halves of
:class:`llmlabel.tuned.TunedEncoder` split the gold by ``fold % 2``, so the encoder must have been fitted with
the very folds the net scores on. An encoder from the label stage (``meta.encoder`` of the labeled file, or
``encoder/`` beside it) is reused when its halves agree with the net's folds on every gold id; otherwise one is
fitted into ``encoder/`` beside the labeled file, or ``encoder-net/`` when ``encoder/`` holds another fit the votes
read. Its anchors are the label texts the anchored probe reads (``name: description``, :mod:`.anchors`), as in
the runs its settings were chosen on (eval/results/encoder.md). The net needs the two halves only (two fine-tunings
of MiniLM on 50 gold rows each): the full fit, as long as both halves together, is made by
:meth:`~llmlabel.tuned.TunedEncoder.complete` when the tuned candidate ships.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .anchors import anchors_for
from .data import LabeledData


def _agrees(enc, ids, fold) -> bool:
    halves = enc.meta.get("gold_halves") or {}
    return bool(halves) and all(halves.get(str(i)) == int(f) % 2 for i, f in zip(ids, fold))


def recorded_folders(d: LabeledData) -> list[Path]:
    """Where the run's tuned encoder may be (:func:`llmlabel.tuned.recorded_folders` of the labeled file)."""
    from ..tuned import recorded_folders as folders

    return folders(d.meta, d.source)


def _recorded(d: LabeledData):
    from ..errors import InputError
    from ..tuned import TunedEncoder

    for cand in recorded_folders(d):
        try:
            return TunedEncoder(cand)
        except InputError:
            continue
    return None


def net_encoder(d: LabeledData, crossfit, folder: str | Path | None = None, progress: bool = False):
    """A :class:`~llmlabel.tuned.TunedEncoder` whose halves follow ``crossfit.gold``'s folds (see the module
    docstring), or None when the labeled file has no source folder to fit one beside."""
    from ..tuned import TunedEncoder

    gold = crossfit.gold
    pos = {str(i): r for r, i in enumerate(d.ids)}
    keep = np.array([str(i) in pos for i in gold.ids], bool)
    ids = [str(i) for i, ok in zip(gold.ids, keep) if ok]
    fold, y = gold.fold[keep], gold.labels[keep]
    old = _recorded(d)
    if old is not None and _agrees(old, ids, fold) and list(old.meta.get("labels") or []) == list(d.classes):
        return old
    if folder is None:
        if not d.source:
            return None
        base = Path(d.source).parent
        folder = base / ("encoder-net" if old is not None else "encoder")
    return TunedEncoder.fit(folder, texts=[d.texts[pos[i]] for i in ids], y=y, labels=list(d.classes), fold=fold,
                            ids=ids, anchors=anchors_for(d.classes, d.meta), source=str(d.source) if d.source else None,
                            full=False, progress=progress)

