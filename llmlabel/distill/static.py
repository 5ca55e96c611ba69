"""Static student: frozen WordLlama token embeddings + TF-IDF over tokens/bigrams, a small head trained on soft labels.

Trains in seconds and predicts tens of thousands of texts per second on a CPU with numpy alone; the saved folder
loads without llmlabel (see :mod:`llmlabel.distill.static_format`).

>>> from llmlabel.distill import StaticStudent
>>> clf = StaticStudent(epochs=10).fit(texts, proba=P, classes=names)   # doctest: +SKIP
>>> clf.predict(["where is my card"])                                    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Student
from .static_format import STUDENT_FILE, StaticPredictor, token_ids
from .static_loss import LinearHeadLoss


@functools.lru_cache(maxsize=2)
def _wordllama_parts(dim: int = 256):
    """(tokenizer, embeddings (vocab, dim) float32) from the wordllama wheel, offline."""
    try:
        import wordllama
        from wordllama import WordLlama
    except ImportError as e:
        from ..errors import EngineError

        raise EngineError("the wordllama package is not installed", hint="pip install wordllama") from e
    wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=dim)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(wl.tokenizer.to_str())
    return tok, np.asarray(wl.embedding, dtype=np.float32)


def _model2vec_parts(folder: Path):
    """(tokenizer, embeddings) from a model2vec-style folder (tokenizer.json + model.safetensors 'embeddings')."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    if not (folder / "tokenizer.json").exists() or not (folder / "model.safetensors").exists():
        raise ConfigError(f"{folder} is not a static-embedding folder",
                          hint="use 'wordllama' or a model2vec-style folder with tokenizer.json and model.safetensors")
    tensors = load_file(str(folder / "model.safetensors"))
    key = "embeddings" if "embeddings" in tensors else next(iter(tensors))
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok, tensors[key].astype(np.float32)


class StaticStudent(Student):
    """Frozen static embeddings + TF-IDF unigram/bigram features with a linear or MLP head.

    ``embeddings``: ``"wordllama"`` (ships in its wheel) or a model2vec-style folder. ``head``: ``"mlp"`` or
    ``"linear"`` on the mean embedding (the TF-IDF part is always linear; ``ngrams=0`` turns it off,
    1 = unigrams, 2 = unigrams + bigrams).
    """

    kind = "static"

    def __init__(self, embeddings: str = "wordllama", *, head: str = "linear", hidden: int = 512, ngrams: int = 2,
                 min_df: int = 2, epochs: int = 3, steps_per_epoch: int = 50, weight_decay: float | str = "auto",
                 max_tokens: int = 256, multi_label: bool = False, threshold: float = 0.5,
                 patience: int = 3, seed: int = 0, progress: bool = False, memo=None) -> None:
        if head not in ("mlp", "linear"):
            raise ConfigError(f"unknown head {head!r}", hint="use 'mlp' or 'linear'")
        if ngrams not in (0, 1, 2):
            raise ConfigError(f"ngrams must be 0, 1 or 2, got {ngrams}")
        super().__init__(epochs=epochs, batch_size=1, lr=1.0, weight_decay=weight_decay, seed=seed,
                         multi_label=multi_label, threshold=threshold, patience=patience, progress=progress)
        self.embeddings, self.head, self.hidden, self.ngrams = embeddings, head, hidden, ngrams
        self.min_df, self.max_tokens = min_df, max_tokens
        self.steps_per_epoch = steps_per_epoch
        self.memo = memo  # a StaticMemo shared by the safety net's fits (static_memo.py); not part of the model
        self._predictor: StaticPredictor | None = None

    # ------------------------------------------------------------------ features

    def _load_embeddings(self) -> None:
        if getattr(self, "tokenizer_", None) is not None:
            return
        if self.embeddings == "wordllama":
            self.tokenizer_, self.emb_ = _wordllama_parts()
        else:
            self.tokenizer_, self.emb_ = _model2vec_parts(Path(self.embeddings).expanduser())
        self.tokenizer_.no_truncation()
        self.tokenizer_.no_padding()

    def _build_vocab(self, flat: np.ndarray, lens: np.ndarray) -> None:
        vocab = self.emb_.shape[0]
        n = len(lens)
        rows = np.repeat(np.arange(n, dtype=np.int64), lens)
        token_index = np.full(vocab, -1, dtype=np.int32)
        df_parts = []
        if self.ngrams >= 1:
            uni = np.unique(rows * vocab + flat) % vocab  # one count per (text, token)
            df_uni = np.bincount(uni, minlength=vocab)
            kept = np.flatnonzero(df_uni >= 1)
            token_index[kept] = np.arange(len(kept), dtype=np.int32)
            df_parts.append(df_uni[kept])
        bigram_keys = np.zeros(0, dtype=np.int64)
        if self.ngrams >= 2 and flat.size > 1:
            same = rows[:-1] == rows[1:]
            keys = (flat[:-1] * vocab + flat[1:])[same]
            pair_rows = rows[:-1][same]
            span = vocab * vocab  # a (text, bigram) pair as one int64 while it fits: a 1-d unique is ~2x faster
            per_text = (np.unique(pair_rows * span + keys) % span if n * span < np.iinfo(np.int64).max
                        else np.unique(np.stack([pair_rows, keys], 1), axis=0)[:, 1])
            uk, df_bi = np.unique(per_text, return_counts=True)
            bigram_keys = uk[df_bi >= self.min_df]
            df_parts.append(df_bi[df_bi >= self.min_df])
        df = np.concatenate(df_parts) if df_parts else np.zeros(0)
        self.token_index_ = token_index
        self.bigram_keys_ = bigram_keys.astype(np.int64)
        self.idf_ = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)

    def _head_arrays(self) -> dict[str, np.ndarray]:
        if not len(self.idf_):
            return {}
        return {"token_index": self.token_index_, "bigram_keys": self.bigram_keys_, "idf": self.idf_}

    # ------------------------------------------------------------------ training

    WD_GRID = (1e-3, 1e-4, 1e-5)

    def _fit(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev) -> None:
        """``weight_decay="auto"``: pick the L2 strength from :attr:`WD_GRID` on the gold dev set, or without one on a
        seeded 20% hold-out of the training items scored against their (soft) targets; then train on everything.
        Strong L2 is what keeps a student from memorising label noise; weak L2 wins on clean labels."""
        self.wd_scores_ = None
        if self.weight_decay != "auto":
            self.weight_decay_ = float(self.weight_decay)
            self._fit_one(texts, targets, weights, dev)
            return
        n = len(texts)
        rng = np.random.default_rng(self.seed)
        hold = np.zeros(n, bool)
        if dev is None:
            hold[rng.permutation(n)[: max(1, n // 5)]] = True
        scores = {}
        saved = (self.epochs, self.history_, self.progress)
        self.epochs, self.progress = 1, False
        idx = np.flatnonzero(~hold)
        sub = [texts[i] for i in idx]
        feats = None  # one vocabulary and feature matrix for the grid's fits: the same texts each time
        for wd in self.WD_GRID:
            self.weight_decay_ = wd
            feats = self._fit_one(sub, targets[idx], weights[idx], None, feats)
            if dev is not None:
                scores[wd] = self._dev_score(dev)
            else:
                h = np.flatnonzero(hold)
                proba = self.predict_proba([texts[i] for i in h])
                w = weights[h]
                scores[wd] = self.link.holdout_score(proba, targets[h], w, self.threshold)
        self.epochs, self.history_, self.progress = saved
        self.history_ = []
        self.wd_scores_ = {str(k): v for k, v in scores.items()}
        self.weight_decay_ = max(self.WD_GRID, key=lambda wd: (scores[wd], -wd))
        self._fit_one(texts, targets, weights, dev)

    def _fit_one(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev, feats=None):
        """Full-batch L-BFGS on the (convex for the linear head) weighted soft cross-entropy + L2, on one torch
        thread: these matmuls gain little from a second thread, and OpenMP's spin-waiting workers make them 10-15x
        slower when the cores are shared (measured: 90 texts 0.8 s vs 11 s; Banking77 20 s vs 69 s per fit)."""
        import torch

        saved = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._fit_lbfgs(texts, targets, weights, dev, feats)
        finally:
            torch.set_num_threads(saved)

    def _fit_lbfgs(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev, feats=None):
        """Trains the head; returns the texts' features ``(x, S)`` so a refit on the same texts can pass them as
        ``feats`` (the vocabulary they were built with is kept as it is then)."""
        import torch

        x, S = self._features_for_fit(texts) if feats is None else feats
        n, k, d = len(texts), targets.shape[1], x.shape[1]
        params, St = self._init_params(S, n, k, d, sparse_tensor=self.head != "linear")
        W = np.asarray(weights, dtype=np.float32)
        W = W / max(float(W.sum()), 1e-8)
        opt = torch.optim.LBFGS(list(params.values()), lr=1.0, max_iter=self.steps_per_epoch,
                                history_size=20, line_search_fn="strong_wolfe", tolerance_change=1e-9,
                                tolerance_grad=1e-7)
        if self.head == "linear":  # the loss and its gradient in closed form (static_loss.py), no autograd
            lin = LinearHeadLoss(x, S, targets, W, self.weight_decay_, self.link)
            tensors = {name: p.detach() for name, p in params.items()}  # L-BFGS updates them in place

            def objective():
                return torch.tensor(lin.loss_grad(tensors, grad=False)[0])

            def closure():
                loss, grads = lin.loss_grad(tensors)
                for name, p in params.items():
                    p.grad = grads[name]
                return torch.tensor(loss)
        else:
            objective = self._objective(params, torch.from_numpy(x), St,
                                        torch.from_numpy(np.asarray(targets, dtype=np.float32)), torch.from_numpy(W))

            def closure():
                opt.zero_grad()
                loss = objective()
                loss.backward()
                return loss

        self._set_state(self._lbfgs_rounds(opt, closure, objective, params, dev))
        return x, S

    def _features_for_fit(self, texts: list[str]):
        """The TF-IDF vocabulary fitted on ``texts`` (none with ``ngrams=0``), then their features: mean
        embeddings ``x`` (n, d) and sparse TF-IDF ``S`` (n, features)."""
        from .static_format import features

        self._load_embeddings()
        self._predictor = None
        key = (self.embeddings, self.max_tokens, self.ngrams, self.min_df)
        kept = None if self.memo is None else self.memo.fit_features(key, texts)
        if kept is not None:
            (self.token_index_, self.bigram_keys_, self.idf_), out = kept
            return out
        flat, lens = self._tokens(texts)
        if self.ngrams:
            self._build_vocab(flat, lens)
        else:
            self.token_index_ = np.full(self.emb_.shape[0], -1, dtype=np.int32)
            self.bigram_keys_ = np.zeros(0, dtype=np.int64)
            self.idf_ = np.zeros(0, dtype=np.float32)
        out = features(self.tokenizer_, texts, self.max_tokens, self.emb_, self._head_arrays(), (flat, lens))
        if self.memo is not None:
            self.memo.keep_fit(key, texts, ((self.token_index_, self.bigram_keys_, self.idf_), out))
        return out

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.memo is None:
            return token_ids(self.tokenizer_, texts, self.max_tokens)
        return self.memo.tokens(self.embeddings, self.tokenizer_, texts, self.max_tokens)

    def _init_params(self, S, n: int, k: int, d: int, sparse_tensor: bool = True):
        """The head's parameters, seeded (zeros, or torch's default init for the MLP layers), and ``S`` as a
        torch sparse tensor (None without TF-IDF features, or when ``sparse_tensor`` is False)."""
        import torch

        nf = len(self.idf_)
        torch.manual_seed(self.seed)
        params: dict[str, torch.nn.Parameter] = {"bias": torch.nn.Parameter(torch.zeros(k))}
        St = None
        if nf:
            params["sparse_weight"] = torch.nn.Parameter(torch.zeros(nf, k))
        if nf and sparse_tensor:
            coo = S.tocoo()
            St = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]).astype(np.int64), coo.data, (n, nf),
                                         check_invariants=False).coalesce()
        if self.head == "mlp":
            l1, l2 = torch.nn.Linear(d, self.hidden), torch.nn.Linear(self.hidden, k, bias=False)
            params.update(mlp1_weight=l1.weight, mlp1_bias=l1.bias, mlp2_weight=l2.weight)
        else:
            params["emb_weight"] = torch.nn.Parameter(torch.zeros(k, d))
        return params, St

    def _objective(self, params: dict, X, St, T, W):
        """The full-batch loss: weighted soft cross-entropy (per-label binary for multi-label) + L2 on the weights."""
        import torch
        import torch.nn.functional as F

        n, k = T.shape
        l2 = float(self.weight_decay_)

        def objective() -> torch.Tensor:
            z = params["bias"].expand(n, k)
            if St is not None:
                z = z + torch.sparse.mm(St, params["sparse_weight"])
            if self.head == "mlp":
                z = z + F.linear(F.relu(F.linear(X, params["mlp1_weight"], params["mlp1_bias"])), params["mlp2_weight"])
            else:
                z = z + X @ params["emb_weight"].T
            per = self.link.per_row(z, T)
            reg = sum((p * p).sum() for name, p in params.items() if name not in ("bias", "mlp1_bias"))
            return (per * W).sum() + 0.5 * l2 * reg

        return objective

    def _lbfgs_rounds(self, opt, closure, objective, params: dict, dev) -> dict[str, np.ndarray]:
        """Up to ``epochs`` L-BFGS rounds, each recorded in ``history_``; with a dev set, stop after ``patience``
        rounds without a better score. Returns the state to keep (the best round's, else the last's)."""
        import torch

        from ..progress import Ticker

        best, best_state, bad = -1.0, None, 0
        self.dev_scores_ = []
        with Ticker(self.progress, self.epochs, f"training {self.kind} student (L-BFGS rounds)") as tick:
            for epoch in range(self.epochs):
                opt.step(closure)
                with torch.no_grad():  # LBFGS.step returns the loss *before* the round; report the one after it
                    loss = float(objective())
                state = {name: p.detach().numpy().copy() for name, p in params.items()}
                entry = {"epoch": epoch + 1, "train_loss": loss}
                if dev is not None:
                    self._set_state(state)
                    score = self._dev_score(dev)
                    entry["dev_score"] = score
                    self.dev_scores_.append(score)
                    if score > best:
                        best, best_state, bad, self.best_epoch_ = score, state, 0, epoch + 1
                    else:
                        bad += 1
                else:
                    best_state, self.best_epoch_ = state, epoch + 1
                self.history_.append(entry)
                tick(1)
                if dev is not None and bad >= self.patience:
                    break
        return best_state

    def _set_state(self, state: dict[str, np.ndarray], classes_k: int | None = None) -> None:
        self.state_ = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in state.items()}
        self._predictor = None

    # ------------------------------------------------------------------ inference

    def _predictor_view(self) -> StaticPredictor:
        """A :class:`StaticPredictor` sharing this student's arrays (the same code the saved folder runs)."""
        if self._predictor is None:
            p = StaticPredictor.__new__(StaticPredictor)
            p._tokens = self._tokens  # the memo's tokens when the net shares one
            p.config = self._config()
            p.classes, p.multi_label, p.threshold = list(self.classes_), self.multi_label, self.threshold
            p.max_tokens, p.tokenizer, p.embeddings = self.max_tokens, self.tokenizer_, self.emb_
            p.head = self._head_tensors()
            self._predictor = p
        return self._predictor

    def _head_tensors(self) -> dict[str, np.ndarray]:
        h = dict(self.state_)
        h.update(self._head_arrays())
        if not len(self.idf_):
            h.pop("sparse_weight", None)
        return h

    def _logits(self, texts: list[str]) -> np.ndarray:
        return self._predictor_view().logits(texts)

    # ------------------------------------------------------------------ save / load

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "format_version": 1, "classes": list(self.classes_), "multi_label": self.multi_label,
                "threshold": self.threshold, "max_tokens": self.max_tokens, "embeddings": self.embeddings,
                "head": self.head, "hidden": self.hidden, "ngrams": self.ngrams, "min_df": self.min_df,
                "epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
                "weight_decay": self.weight_decay, "weight_decay_chosen": getattr(self, "weight_decay_", None),
                "weight_decay_scores": getattr(self, "wd_scores_", None), "seed": self.seed,
                "best_epoch": getattr(self, "best_epoch_", None)}

    def _write(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        self.tokenizer_.save(str(folder / "tokenizer.json"))
        save_file({"embeddings": self.emb_.astype(np.float16)}, str(folder / "model.safetensors"))
        save_file({k: np.ascontiguousarray(v) for k, v in self._head_tensors().items()}, str(folder / "head.safetensors"))
        (folder / "config.json").write_text(json.dumps(
            {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": int(self.emb_.shape[1]),
             "normalize": True, "llmlabel_head": "head.safetensors"}, indent=2) + "\n", encoding="utf-8")
        (folder / STUDENT_FILE).write_text(json.dumps(self._config(), indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(Path(__file__).with_name("static_format.py"), folder / "predict.py")

    @classmethod
    def load(cls, folder: str | Path) -> "StaticStudent":
        folder = Path(folder)
        pred = StaticPredictor(folder)
        cfg = pred.config
        self = cls(embeddings=str(cfg.get("embeddings", "wordllama")), head=cfg.get("head", "linear"),
                   hidden=int(cfg.get("hidden", 512)), ngrams=int(cfg.get("ngrams", 2)),
                   max_tokens=pred.max_tokens, multi_label=pred.multi_label, threshold=pred.threshold)
        self.classes_ = list(pred.classes)
        self.tokenizer_, self.emb_ = pred.tokenizer, pred.embeddings
        h = dict(pred.head)
        self.token_index_ = h.pop("token_index", np.full(self.emb_.shape[0], -1, dtype=np.int32))
        self.bigram_keys_ = h.pop("bigram_keys", np.zeros(0, dtype=np.int64))
        self.idf_ = h.pop("idf", np.zeros(0, dtype=np.float32))
        self.state_ = h
        self.n_outputs_ = int(h["bias"].shape[0])
        self._predictor = pred
        return self
