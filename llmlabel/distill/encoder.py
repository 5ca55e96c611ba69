"""Fine-tuned encoder student: a transformers encoder (default: the bundled all-MiniLM-L6-v2) with a classification
head, trained on soft labels (cross-entropy to the label-model probabilities = KL up to a constant) with per-item
confidence weights, or with sigmoid/BCE when multi-label; early stopping on a gold dev set. The head starts from
a linear probe fitted on the frozen encoder's features (LP-FT), not from random weights.

The saved folder is a plain transformers model: ``AutoModelForSequenceClassification.from_pretrained(folder)`` and
``pipeline("text-classification", model=folder)`` work without llmlabel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import Student
from .static_format import STUDENT_FILE


def resolve_encoder(spec: str) -> str:
    if spec in ("minilm", "all-MiniLM-L6-v2"):
        from ..embed.embedders import minilm_path

        return str(minilm_path())
    path = Path(spec).expanduser()
    if not (path / "config.json").exists():
        raise ConfigError(f"encoder {spec!r} is not a local transformers folder (no config.json)",
                          hint="use 'minilm' (bundled) or a folder saved with save_pretrained; nothing is downloaded")
    return str(path)


def _threshold(t):
    """One number, or one per class (multi-label thresholds tuned on dev)."""
    return [float(x) for x in t] if isinstance(t, list) else float(t)


class EncoderStudent(Student):
    kind = "encoder"

    # lr 3e-4: small encoders need more than BERT-base's usual 5e-5. Banking77, all-MiniLM-L6-v2, batch 32:
    # lr 1e-4 x 3 epochs reached 0.874, lr 3e-4 x 5 epochs 0.928 with a random head and 0.935 with the
    # linear-probe head (head_init="probe", the default; eval/results/distill-minilm*.md).
    def __init__(self, model: str = "minilm", *, epochs: int = 3, max_steps: int | None = None, batch_size: int = 32,
                 lr: float = 3e-4, weight_decay: float = 0.01, max_length: int = 128, multi_label: bool = False,
                 threshold: float = 0.5, patience: int = 2, seed: int = 0, progress: bool = False,
                 threads: int | None = None, head_init: str = "probe") -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                         multi_label=multi_label, threshold=threshold, patience=patience, progress=progress)
        if head_init not in ("probe", "random"):
            raise ConfigError(f"head_init must be 'probe' or 'random', got {head_init!r}")
        self.model, self.max_steps, self.max_length, self.threads = model, max_steps, max_length, threads
        self.head_init = head_init

    def _encode(self, texts: list[str]):
        return self.tokenizer_(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")

    def _fit(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev) -> None:
        import torch

        saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._fit_torch(texts, targets, weights, dev)
        finally:
            torch.set_num_threads(saved)

    def _fit_torch(self, texts: list[str], targets: np.ndarray, weights: np.ndarray, dev) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_encoder(self.model)
        torch.manual_seed(self.seed)
        k = targets.shape[1]
        self.tokenizer_ = AutoTokenizer.from_pretrained(path)
        self.net_ = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=k, id2label=dict(enumerate(self.classes_)),
            label2id={c: i for i, c in enumerate(self.classes_)},
            problem_type=self.link.problem_type)
        T = torch.from_numpy(np.asarray(targets, np.float32))
        W = torch.from_numpy(np.asarray(weights, np.float32))
        if self.head_init == "probe":
            self._probe_head(texts, T, W)
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = torch.Generator().manual_seed(self.seed)

        def forward(idx, train):
            self.net_.train(train)
            enc = self._encode([texts[i] for i in idx])
            return self.net_(**enc).logits

        def loss_fn(z, idx):
            t, w = T[idx], W[idx]
            per = self.link.per_row_mean(z, t)
            return (per * w).sum() / w.sum().clamp_min(1e-8)

        def snapshot():
            return {name: v.detach().clone() for name, v in self.net_.state_dict().items()}

        def evaluate(state):
            return self._dev_score(dev)

        # linear warm-up over the first 6% of steps, then linear decay to 0: converges in the 1-2 epochs a CPU allows
        steps_per_epoch = (len(texts) + self.batch_size - 1) // self.batch_size
        total = self.epochs * steps_per_epoch if self.max_steps is None else min(self.max_steps,
                                                                                 self.epochs * steps_per_epoch)
        warm = max(1, int(0.06 * total))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        self._train_loop(len(texts), forward, loss_fn, opt, gen, snapshot, evaluate, [], max_steps=self.max_steps,
                         lengths=lengths, scheduler=sched)
        self.net_.eval()

    def _head_layer(self):
        """The final Linear of the classification head (BERT/DistilBERT: ``classifier``; RoBERTa-style: its
        ``out_proj``), or None for a head shape we do not know."""
        import torch

        head = getattr(self.net_, "classifier", None)
        if isinstance(head, torch.nn.Linear):
            return head
        out = getattr(head, "out_proj", None)
        return out if isinstance(out, torch.nn.Linear) else None

    def _probe_head(self, texts: list[str], T, W, iters: int = 200, l2: float = 1e-3) -> None:
        """LP-FT (Kumar et al., 2022): start fine-tuning from a linear probe fitted on the frozen encoder's head
        inputs instead of a random head, so early steps do not distort the pretrained features while the head is
        still noise. Banking77, MiniLM-L6: see eval/results/distill-minilm-lpft.md."""
        import torch

        layer = self._head_layer()
        if layer is None:
            return
        feats: list = []
        hook = layer.register_forward_hook(lambda mod, inp, out: feats.append(inp[0].detach()))
        order = np.argsort([len(t) for t in texts], kind="stable")
        try:
            self.net_.eval()
            with torch.inference_mode():
                for b in range(0, len(texts), 64):
                    self.net_(**self._encode([texts[i] for i in order[b : b + 64]]))
        finally:
            hook.remove()
        X = torch.empty((len(texts), layer.in_features))
        X[torch.from_numpy(order)] = torch.cat(feats).float()
        # standardise for a well-conditioned fit, then fold the scaling back into the head's weights
        mu, sd = X.mean(0), X.std(0).clamp_min(1e-6)
        Z = (X - mu) / sd
        w = torch.zeros((T.shape[1], Z.shape[1]), requires_grad=True)
        b = torch.zeros(T.shape[1], requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            z = Z @ w.T + b
            per = self.link.per_row_mean(z, T)
            loss = (per * W).sum() / W.sum().clamp_min(1e-8) + l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            layer.weight.copy_(w / sd)
            layer.bias.copy_(b - (w / sd) @ mu)

    def _set_state(self, state) -> None:
        if state is not None:
            self.net_.load_state_dict(state)
        self.net_.eval()

    def _logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        out = []
        # sort by length so each batch pads little; restore the order afterwards
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for b in range(0, len(texts), batch_size):
                idx = order[b : b + batch_size]
                out.append(self.net_(**self._encode([texts[i] for i in idx])).logits.float().numpy())
        z = np.concatenate(out) if out else np.zeros((0, len(self.classes_)), np.float32)
        res = np.empty_like(z)
        res[order] = z
        return res

    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind, "format_version": 1, "classes": list(self.classes_), "multi_label": self.multi_label,
                "threshold": self.threshold, "base_model": self.model, "max_length": self.max_length,
                "epochs": self.epochs, "max_steps": self.max_steps, "batch_size": self.batch_size, "lr": self.lr,
                "weight_decay": self.weight_decay, "seed": self.seed, "head_init": self.head_init, "best_epoch": getattr(self, "best_epoch_", None)}

    def _write(self, folder: Path) -> None:
        self.net_.save_pretrained(folder, safe_serialization=True)
        self.tokenizer_.save_pretrained(folder)
        (folder / STUDENT_FILE).write_text(json.dumps(self._config(), indent=2) + "\n", encoding="utf-8")

    def quantize(self) -> "EncoderStudent":
        """Dynamic int8 quantisation of the Linear layers for CPU inference (weights int8 with one scale per output
        channel, activations quantised on the fly): about 2x the texts/s of float32 on a CPU for a small accuracy
        cost; inference only. Per-channel rather than per-tensor scales: Banking77, MiniLM-L6 student 0.9328 vs
        0.9295 (float32 0.9354) at the same speed (eval/results/distill-minilm-lpft.md)."""
        import torch
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        import warnings

        self._check_fitted()
        with warnings.catch_warnings():  # torch deprecates quantize_dynamic in favour of torchao (not installed here)
            warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
            self.net_ = quantize_dynamic(self.net_.eval(), {torch.nn.Linear: per_channel_dynamic_qconfig},
                                         dtype=torch.qint8)
        self.quantized_ = True
        return self

    @classmethod
    def load(cls, folder: str | Path, *, quantize: bool = False) -> "EncoderStudent":
        """Load a saved encoder student; ``quantize=True`` applies :meth:`quantize` (CPU serving)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(folder)
        cfg = json.loads((folder / STUDENT_FILE).read_text(encoding="utf-8"))
        self = cls(model=str(folder), multi_label=bool(cfg.get("multi_label")), threshold=_threshold(cfg.get("threshold", 0.5)),
                   max_length=int(cfg.get("max_length", 128)))
        self.classes_ = list(cfg["classes"])
        self.tokenizer_ = AutoTokenizer.from_pretrained(folder)
        # safetensors only: a pickled weights file could run code, and is never what distill wrote
        self.net_ = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).eval()
        self.n_outputs_ = int(self.net_.config.num_labels)
        if self.n_outputs_ != len(self.classes_):  # weights of one model beside another's class names
            from ..errors import InputError

            raise InputError(f"the weights score {self.n_outputs_} classes but {STUDENT_FILE} names "
                             f"{len(self.classes_)}", path=folder, field="classes",
                             hint="re-run `llmlabel distill` to rebuild it")
        return self.quantize() if quantize else self
