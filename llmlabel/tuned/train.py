"""Contrastive fine-tuning of a sentence encoder on a few gold labels and the label names.

Two objectives, chosen by measurement (eval/results/encoder.md):

- ``supcon`` (default, FastFit-style; Yehudai & Bandel, NAACL 2024 demo): every step encodes a batch of gold
  texts *and every class's anchor* (its name, ``name: description`` when a description is given) and applies
  the supervised contrastive loss (Khosla et al., 2020) over all of them at once: each text is pulled towards
  its class's anchor and the same-class texts in the batch, and pushed from every other class's anchor and
  text. A class with one gold text, or none, still has its anchor, so many classes with 0-2 examples each
  (Banking77: 77 intents, 100 gold holding 56 of them) keep a positive for every text and a place in the space.
- ``pairs`` (SetFit-style; Tunstall et al., 2022): cosine-similarity regression on sampled pairs (same class:
  1, different: 0), anchors counted as examples; ``pair_iterations`` positive + negative pairs per example.

The result is a plain sentence-transformers folder (mean pooling + normalisation, like all-MiniLM-L6-v2): the
transformer weights (``save_pretrained``) next to the base folder's module files, so it loads offline with
``SentenceTransformer(folder)``, ``llmlabel.embed.load_embedder(folder)`` and ``AutoModel.from_pretrained``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EngineError

METHODS = ("supcon", "pairs")
# Bumped when the training code changes what a fit produces, so a saved encoder from older code is refitted.
ALGO_VERSION = 3


@dataclass(frozen=True)
class TuneSettings:
    """How the encoder is tuned (defaults chosen on dev splits: eval/results/encoder.md). ``epochs`` passes over
    the gold texts (``batch_size`` a step; ``supcon``) or
    over the sampled pairs (``pairs``); ``lr`` peaks after a 10% warm-up, then decays linearly to 0;
    ``temperature`` scales the supcon logits; ``anchors``: the label texts join as examples of their class;
    ``max_length``: tokens per text in training (longer texts are cut)."""

    method: str = "supcon"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    temperature: float = 0.1
    anchors: bool = True
    max_length: int = 128
    pair_iterations: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown encoder tuning method {self.method!r}", hint=f"use one of {', '.join(METHODS)}")
        for f in ("epochs", "batch_size", "max_length", "pair_iterations"):
            if int(getattr(self, f)) < 1:
                raise ConfigError(f"encoder tuning: {f} must be >= 1")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("encoder tuning: lr and temperature must be > 0")

    def key(self) -> dict:
        return {**asdict(self), "algo_version": ALGO_VERSION}


def base_path(spec: str) -> Path:
    """The local folder of a base encoder spec (``minilm`` = the bundled all-MiniLM-L6-v2); nothing is downloaded."""
    if spec in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        from ..embed.embedders import minilm_path

        return minilm_path()
    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"base encoder {spec!r} is not a local sentence-transformers folder (no config.json)",
                          hint="use 'minilm' (bundled) or a folder saved by sentence-transformers")
    return path


def _pooling(path: Path) -> str:
    cfg = path / "1_Pooling" / "config.json"
    if not cfg.is_file():
        return "mean"
    c = json.loads(cfg.read_text())
    if c.get("pooling_mode_cls_token"):
        return "cls"
    if c.get("pooling_mode_mean_tokens", True):
        return "mean"
    raise ConfigError(f"base encoder {path}: only mean or CLS pooling can be tuned")


def anchor_texts(labels: list[str], descriptions: list[str] | None = None) -> list[str]:
    """One anchor text per class: :func:`llmlabel.labelsets.label_texts` (``name: description``, else the name)."""
    from ..labelsets import label_texts

    return label_texts(labels, descriptions)


#: What one more forward pass costs, in padded tokens (MiniLM on 2 CPU cores, forward and backward: ~0.1 s a pass
#: and ~1 ms a token; set above that ratio so batches of near-equal lengths stay one pass, as they were fitted before);
#: ``length_groups`` trades it against the padding a pass saves.
PASS_COST_TOKENS = 140


def length_groups(lengths, pass_cost: int = PASS_COST_TOKENS) -> list[np.ndarray]:
    """Split texts into passes that pad less: sorted by token length, cut where the padded tokens saved pay for
    one more pass (an exact minimum of ``sum(pass_cost + size x longest)`` over cuts of the sorted order, by
    dynamic programming). Returns the index groups, shortest first; one group (every index, in the given order)
    when one pass is cheapest, as for texts of similar length."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    order = np.argsort(lengths, kind="stable")
    ln = lengths[order]
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):  # best[j]: texts order[:j] in passes, the last being order[i:j] (padded to ln[j-1])
        costs = best[:j] + pass_cost + (j - np.arange(j)) * ln[j - 1]
        cut[j] = int(np.argmin(costs))
        best[j] = costs[cut[j]]
    bounds, j = [], n
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    if len(bounds) <= 1:
        return [np.arange(n)]
    return [order[i:j] for i, j in reversed(bounds)]


class _Net:
    """The base encoder as a trainable module: tokenise, run, pool, normalise."""

    def __init__(self, path: Path, max_length: int) -> None:
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tok = AutoTokenizer.from_pretrained(str(path))
            self.model = AutoModel.from_pretrained(str(path))
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot load the base encoder {path}: {str(e).splitlines()[0]}") from e
        self.pooling, self.max_length = _pooling(path), max_length

    def __call__(self, texts: list[str]):
        """Unit embeddings of ``texts``, in their order. Texts of very unequal length run in several passes
        (``length_groups``): padded to the batch's longest, a few long texts made most of a step's work (YouTube
        comments: 25 tokens on average, padded to 128; a step's CPU 4.9 -> 1.5 s). The same embeddings in exact
        arithmetic, padding being masked out of attention and pooling; dropout draws its masks per pass."""
        import torch

        lengths = [len(ids) for ids in self.tok(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        groups = length_groups(lengths)
        if len(groups) == 1:
            return self._pass(texts)
        z = torch.cat([self._pass([texts[i] for i in g]) for g in groups])
        where = np.empty(len(texts), dtype=np.int64)
        where[np.concatenate(groups)] = np.arange(len(texts))
        return z[torch.from_numpy(where)]

    def _pass(self, texts: list[str]):
        import torch.nn.functional as F

        enc = self.tok(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        h = self.model(**enc).last_hidden_state
        if self.pooling == "cls":
            z = h[:, 0]
        else:
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            z = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return F.normalize(z, dim=-1)


def supcon_loss(z, labels, temperature: float):
    """Supervised contrastive loss (all rows are anchors; rows without a positive in the batch only serve as
    negatives). ``z``: (m, d) unit rows; ``labels``: (m,) class ids."""
    import torch

    m = z.shape[0]
    eye = torch.eye(m, dtype=torch.bool)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    n_pos = pos.sum(1)
    has = n_pos > 0
    per = -(log_prob.masked_fill(~pos, 0.0)).sum(1)[has] / n_pos[has]
    return per.mean()


def _pairs(y: np.ndarray, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """(p, 3) rows ``(i, j, same)``: per example and iteration one random same-class partner (when its class has
    another example) and one random different-class partner, like SetFit's pair generation."""
    n = len(y)
    same = y[:, None] == y[None, :]
    other = ~same
    np.fill_diagonal(same, False)
    has_pos, has_neg = same.any(1), other.any(1)
    out = []
    for _ in range(iterations):
        r = rng.random((n, n))  # a random partner = the argmax of random keys over the allowed ones
        pos, neg = np.where(same, r, -1.0).argmax(1), np.where(other, r, -1.0).argmax(1)
        i = np.arange(n)
        out += [np.c_[i[has_pos], pos[has_pos], np.ones(has_pos.sum(), np.int64)],
                np.c_[i[has_neg], neg[has_neg], np.zeros(has_neg.sum(), np.int64)]]
    arr = np.concatenate(out).astype(np.int64) if out else np.zeros((0, 3), np.int64)
    return arr[rng.permutation(len(arr))]


def tune_encoder(base: str, texts: list[str], y, anchors: list[str] | None, settings: TuneSettings, out: str | Path,
                 *, threads: int | None = None, stamp: dict | None = None,
                 progress: bool | Callable[[int], None] = False,
                 desc: str = "tuning the encoder on the gold") -> dict:
    """Fine-tune ``base`` on ``texts``/``y`` (class ids into ``anchors``' order) and save it to ``out``.

    Returns the facts of the fit: ``seconds`` (training only), ``steps``, ``texts``, ``classes``. ``y`` may
    hold a single class or be empty: with nothing to contrast the base weights are saved unchanged (``steps``
    0), so a half of the gold that holds one class still yields an honest (untuned) encoder. ``stamp`` is
    written into the saved ``config.json`` (``llmlabel_tuned``): identities built from a folder's config and
    weight files (embedding caches, the LLM cache's model identity) then change with every fit. ``progress``: a
    bar over the optimiser steps, labelled ``desc`` (the fit is a minute or more on a CPU), or a callable given
    each step.
    """
    import torch

    src = base_path(base)
    y = np.asarray(y, dtype=np.int64)
    texts = [str(t) for t in texts]
    anchors = list(anchors or [])
    use_anchors = settings.anchors and len(anchors) > 0
    if use_anchors and len(y) and y.max() >= len(anchors):
        raise ConfigError("encoder tuning: a gold class id has no anchor text")
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = _Net(src, settings.max_length)
    classes = len(set(y.tolist()) | (set(range(len(anchors))) if use_anchors else set()))
    steps, t0 = 0, time.perf_counter()
    try:
        if classes >= 2 and len(texts):
            steps = _train(net, texts, y, anchors if use_anchors else [], settings, rng, progress, desc)
    finally:
        torch.set_num_threads(saved_threads)
    seconds = time.perf_counter() - t0
    _save(net, src, Path(out), stamp)
    return {"seconds": round(seconds, 2), "steps": steps, "texts": len(texts), "classes": classes}


def _schedule(opt, total: int):
    import torch

    warm = max(1, int(0.1 * total))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))


def _train(net: _Net, texts, y, anchors, s: TuneSettings, rng, progress: bool | Callable[[int], None] = False,
           desc: str = "") -> int:
    import torch

    from ..progress import Ticker

    model = net.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.01)
    if s.method == "supcon":
        n, bs = len(texts), min(s.batch_size, len(texts))
        per_epoch = max(1, n // bs)  # drop the ragged last batch: a 3-text batch contrasts little
        total = s.epochs * per_epoch
        sched = _schedule(opt, total)
        a_lab = torch.arange(len(anchors))
        with Ticker(progress, total, desc) as tick:
            for _ in range(s.epochs):
                order = rng.permutation(n)
                for b in range(per_epoch):
                    idx = order[b * bs:(b + 1) * bs]
                    # the anchors in their own pass: padded to the batch's longest text they were most of each
                    # step's work with many classes (Banking77: 77 label names beside 32 texts; a fit 58 -> 30 s).
                    # The same loss in exact arithmetic: padding is masked out of attention and pooling
                    z = torch.cat([net([texts[i] for i in idx])] + ([net(anchors)] if anchors else []))
                    lab = torch.cat([torch.from_numpy(y[idx]), a_lab])
                    loss = supcon_loss(z, lab, s.temperature)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    tick(1)
        return total
    # pairs: the anchors are one more example of their class each
    all_texts = texts + anchors
    all_y = np.concatenate([y, np.arange(len(anchors))]) if anchors else y
    pairs = np.concatenate([_pairs(all_y, s.pair_iterations, rng) for _ in range(s.epochs)])
    bs = s.batch_size
    total = (len(pairs) + bs - 1) // bs
    sched = _schedule(opt, total)
    with Ticker(progress, total, desc) as tick:
        for b in range(total):
            p = pairs[b * bs:(b + 1) * bs]
            z = net([all_texts[i] for i in p[:, 0]] + [all_texts[j] for j in p[:, 1]])
            cos = (z[: len(p)] * z[len(p):]).sum(1)
            loss = torch.nn.functional.mse_loss(cos, torch.from_numpy(p[:, 2]).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tick(1)
    return total


def _save(net: _Net, src: Path, out: Path, stamp: dict | None = None) -> None:
    """The base folder's sentence-transformers files (modules, pooling, tokenizer) + the tuned weights."""
    out.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():  # config and tokenizer files are rewritten by save_pretrained below
        if p.is_dir() and p.name[:1].isdigit() and "_" in p.name:  # module folders: 1_Pooling, 2_Normalize ...
            shutil.copytree(p, out / p.name, dirs_exist_ok=True)
        elif p.is_file() and (p.suffix == ".json" or p.name == "vocab.txt"):
            shutil.copy2(p, out / p.name)
    net.model.eval()
    if stamp:
        net.model.config.llmlabel_tuned = dict(stamp)
    net.model.save_pretrained(str(out), safe_serialization=True)
    net.tok.save_pretrained(str(out))
