"""HyperLM (Wu et al., "Learning Hyper Label Model for Programmatic Weak Supervision", ICLR 2023) behind our
label-model interface; optional: ``pip install llmlabel[hyperlm]`` (PyPI ``hyperlm`` 0.0.5, MIT).

HyperLM is a graph network pre-trained to map a whole vote matrix to labels in one forward pass. It has no
per-LF parameters, so it is *transductive*: ``fit`` keeps the training votes and ``predict_proba(L)`` runs
the network on the training votes with ``L`` appended (or on the training votes alone when ``L`` is
them), so new rows are judged in the company of the data the model was fitted on. ``use_dev=True`` is its
semi-supervised form: at ``fit`` one network per class (one for two classes) is fine-tuned on the dev
rows' gold labels, with the dev rows appended to the training votes, as ``HyperLabelModel.infer(L,
y_indices, y_vals)`` does; the fine-tuned networks then score any matrix the same transductive way.

Its bundled checkpoint holds a pickled optimizer state that torch >= 2.6 refuses under the default
``weights_only=True``; it ships with the package, so it is loaded with ``weights_only=False``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util

import numpy as np

from ..errors import ConfigError
from .base import LabelModel, Votes


def hyperlm_available() -> bool:
    return importlib.util.find_spec("hyperlm") is not None


@contextlib.contextmanager
def _trusted_checkpoint():
    import torch

    load = torch.load
    torch.load = functools.partial(load, weights_only=False)  # the package's own file (module docstring)
    try:
        yield
    finally:
        torch.load = load


def _signed(hard: np.ndarray, positive: int) -> np.ndarray:
    """HyperLM's one-vs-rest input: +1 votes for ``positive``, -1 other classes, 0 abstain."""
    return np.where(hard == positive, 1, np.where(hard >= 0, -1, 0))


def _graph(mat: np.ndarray):
    import torch
    from scipy.sparse import coo_matrix

    X = coo_matrix(mat)
    index = torch.from_numpy(np.array([X.row, X.col]).T).unsqueeze(0)
    value = torch.from_numpy(X.data).float().unsqueeze(0)
    return index, value


class HyperLM(LabelModel):
    """HyperLM's pre-trained hyper label model (module docstring).

    Parameters: ``use_dev`` (fine-tune on the dev rows when ``fit`` gets ``L_dev, y_dev``), ``device``
    (torch device, default 'cpu'). Soft votes are used through their argmax (HyperLM reads hard votes).
    Learned: ``train_votes_`` (the training votes kept for transductive inference), ``nets_`` (one
    network per one-vs-rest task: the pre-trained one, or the fine-tuned ones), ``class_prior_`` (mean
    posterior over covered training rows).
    """

    def __init__(self, cardinality: int | None = None, use_dev: bool = False, device: str = "cpu",
                 random_state: int | None = 0):
        super().__init__(cardinality, random_state)
        self.use_dev = use_dev
        self.device = device

    def _tasks(self, k: int) -> list[int]:
        return [1] if k == 2 else list(range(k))  # two classes: one network, class 1 positive

    def _fit(self, votes, dev, y_dev):
        if not hyperlm_available():
            raise ConfigError("HyperLM is not installed: pip install 'llmlabel[hyperlm]'")
        import torch

        torch.manual_seed(0 if self.random_state is None else self.random_state)
        k = votes.k
        self.train_votes_ = votes.hard.copy()
        self._cache = None
        with _trusted_checkpoint():
            if dev is None or not self.use_dev:
                from hyperlm.hyper_label_model import UnsupervisedWraper

                net = UnsupervisedWraper(self.device, self._checkpoint()).net
                self.nets_ = [net] * len(self._tasks(k))
            else:
                self.nets_ = self._fine_tune(np.vstack([votes.hard, dev.hard]), np.asarray(y_dev), k)
        proba = self._proba(votes)
        cov = votes.covered()
        est = np.clip(proba[cov].mean(axis=0) if cov.any() else np.full(k, 1.0 / k), 1e-6, None)
        self.class_prior_ = est / est.sum()

    def _checkpoint(self) -> str:
        import os

        import hyperlm

        return os.path.join(os.path.dirname(hyperlm.__file__), "checkpoint.pt")

    def _fine_tune(self, hard: np.ndarray, y_dev: np.ndarray, k: int) -> list:
        """The package's semi-supervised step (``HyperLMSemi``), keeping the fine-tuned networks."""
        from hyperlm.hyper_label_model import SemisupervisedHelper

        n_dev = len(y_dev)
        order = np.argsort((hard >= 0).any(axis=1), kind="stable")  # covered rows last, as in _infer
        rows = np.argsort(order)[np.arange(len(hard) - n_dev, len(hard))]
        hard = hard[order]
        nets = []
        for c in self._tasks(k):
            helper = SemisupervisedHelper(self.device, self._checkpoint())
            pos = float(np.mean(y_dev == c))
            weights = [pos, 1 - pos] if k == 2 else None
            helper.fit_predict(_signed(hard, c), (y_dev == c).astype(np.int64), rows, weights)
            nets.append(helper.net)
        return nets

    def _infer(self, hard: np.ndarray, k: int) -> np.ndarray:
        import torch

        n = hard.shape[0]
        out = np.full((n, k), 1.0 / k)
        cov = (hard >= 0).any(axis=1)
        if not cov.any():
            return out
        # The network sizes its output by the last row holding a vote: covered rows go last.
        order = np.argsort(cov, kind="stable")
        h = hard[order]
        cols = []
        with torch.no_grad():
            for net, c in zip(self.nets_, self._tasks(k)):
                index, value = _graph(_signed(h, c))
                p, _ = net(index.to(self.device), value.to(self.device))
                cols.append(p.detach().cpu().numpy().astype(np.float64).ravel())
        p = np.stack(cols, axis=1)
        if k == 2:
            p = np.hstack([1 - p, p])
        p = np.clip(np.nan_to_num(p, nan=0.0), 0.0, None)
        full = np.zeros((n, k))
        full[order[: p.shape[0]]] = p
        tot = full.sum(axis=1, keepdims=True)
        good = cov & (tot[:, 0] > 0)
        out[good] = full[good] / tot[good]
        return out

    def _proba(self, votes: Votes) -> np.ndarray:
        hard, train = votes.hard, self.train_votes_
        same = hard.shape == train.shape and np.array_equal(hard, train)
        key = hashlib.sha1(np.ascontiguousarray(hard).tobytes()).hexdigest() + str(hard.shape)
        if self._cache is not None and self._cache[0] == key:  # CalibratedLabelModel asks more than once
            return self._cache[1].copy()
        p = self._infer(train if same else np.vstack([train, hard]), votes.k)
        p = p if same else p[len(train):]
        self._cache = (key, p)
        return p.copy()
