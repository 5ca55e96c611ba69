"""Data for eval/chain.py: four known-label-set benchmarks and a MiniLM embedding cache in /tmp.

Each set is a corpus (unlabelled for the chain; its gold only feeds the gold budget draw and the
full-supervision ceiling), a test split (scoring only), the label names with the short descriptions a user
who knows the label set would write, and for WRENCH sets the published LF votes on corpus and test.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

# The loaders the suite shares (eval/_common.py): the same Bench (a superset of the fields used here); Banking77,
# AG News and the WRENCH sets read one way for every script (checked equal to the rows read here before).
from _common import DATA, DESCRIPTIONS as _DESC, TREC_NAMES, Bench, agnews, banking77, wrench  # noqa: F401

CACHE = Path(os.environ.get("LLMLABEL_CHAIN_CACHE", "/tmp/llmlabel-chain"))

# What a user who knows the label set writes next to each name (one line; no corpus text was read to write them).
# youtube, trec and AG News as the suite writes them (eval/_common.py); irony and stance as the chain and encoder
# evals pool them (stance: one 3-class set over the five targets, the target written before each tweet).
DESCRIPTIONS = {
    **{k: _DESC[k] for k in ("youtube", "trec", "agnews")},
    "irony": {"not ironic": "the tweet means what it says",
              "ironic": "the tweet is ironic or sarcastic: it means the opposite of what it literally says"},
    "stance": {"none": "the tweet takes no side on its target, or is about something else",
               "against": "the tweet is against its target",
               "favor": "the tweet is in favour of its target"},
}


STANCE_TARGETS = {"abortion": "legalization of abortion", "atheism": "atheism", "climate": "climate change is a real "
                  "concern", "feminist": "feminist movement", "hillary": "Hillary Clinton"}


def _tweeteval_split(folder: Path, split: str, prefix: str = "") -> tuple[list[str], list[int]]:
    texts = (folder / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    labels = (folder / f"{split}_labels.txt").read_text(encoding="utf-8").split()
    texts = texts[: len(labels)]
    assert len(texts) == len(labels), folder
    return [prefix + t.strip() for t in texts], [int(v) for v in labels]


def tweeteval(task: str) -> Bench:
    """TweetEval irony or stance: corpus = train, dev = val, test = test (official metrics in ``official``).

    Stance pools its five targets into one 3-class set (the official score also pools them) and writes the target
    before each tweet (``target: tweet``): a stance is towards a target, and a user labelling such data has it."""
    d = DATA / "tweeteval" / task
    labels = list(DESCRIPTIONS[task])
    parts = {s: ([], []) for s in ("train", "val", "test")}
    for sub, prefix in ({"": ""} if task == "irony" else {t: f"{n}: " for t, n in STANCE_TARGETS.items()}).items():
        for s, (tx, ys) in parts.items():
            a, b = _tweeteval_split(d / sub if sub else d, s, prefix)
            tx += a
            ys += b
    (ct, cy), (vt, vy), (tt, ty) = parts["train"], parts["val"], parts["test"]
    return Bench(task, labels, DESCRIPTIONS[task], ct, np.array(cy), tt, np.array(ty),
                 corpus_ids=[f"{task}-train-{i}" for i in range(len(ct))], dev_texts=vt, dev_y=np.array(vy))


def official(name: str, y, pred) -> float | None:
    """TweetEval's official score (cardiffnlp/tweeteval evaluaton_script.py): irony = F1 of the irony class,
    stance = the mean F1 of against (1) and favor (2); None for other sets."""
    from sklearn.metrics import f1_score

    if name == "irony":
        return float(f1_score(y, pred, labels=[1], average="macro", zero_division=0))
    if name == "stance":
        return float(f1_score(y, pred, labels=[1, 2], average="macro", zero_division=0))
    return None


LOADERS = {"banking77": banking77, "agnews": agnews, "youtube": lambda: wrench("youtube"),
           "trec": lambda: wrench("trec"), "irony": lambda: tweeteval("irony"), "stance": lambda: tweeteval("stance")}


class CachedEmbedder:
    """An llmlabel embedder wrapper that encodes each distinct text once and keeps the vectors in /tmp.

    The chain's embedding and kNN LFs, the zero-shot baseline and the frozen-feature baselines all read the
    same vectors, so every corpus is embedded once per machine (the file is keyed by model and texts).
    """

    def __init__(self, spec: str = "minilm") -> None:
        self.spec = spec
        self.name = spec
        self._base = None
        self._vec: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts this process really encoded (the rest came from the cache)

    @property
    def base(self):
        if self._base is None:
            from llmlabel.embed import load_embedder

            self._base = load_embedder(self.spec)
        return self._base

    def load(self, key: str, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``, read from or written to the cache file ``key``."""
        h = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
        path = CACHE / f"{key}-{self.spec}-{h}.npy"
        if path.is_file():
            vecs = np.load(path)
        else:
            vecs = self._encode_misses(texts)
            CACHE.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vecs)
            tmp.replace(path)
        self._vec.update(zip(texts, vecs))
        return vecs

    def _encode_misses(self, texts: list[str]) -> np.ndarray:
        miss = list(dict.fromkeys(t for t in texts if t not in self._vec))
        if miss:
            # Length order: each batch pads to its longest text, so sorted batches waste far less work.
            miss.sort(key=len)
            new = np.asarray(self.base.encode(miss, batch_size=64), dtype=np.float32)
            self.encoded += len(miss)
            self._vec.update(zip(miss, new))
        return np.stack([self._vec[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def encode(self, texts, **_kw) -> np.ndarray:
        return self._encode_misses(list(texts))

    def fingerprint(self) -> str:
        return f"cached:{self.spec}"


def embed_bench(b: Bench, emb: CachedEmbedder) -> tuple[np.ndarray, np.ndarray]:
    return emb.load(f"{b.name}-corpus", b.corpus_texts), emb.load(f"{b.name}-test", b.test_texts)


if __name__ == "__main__":  # warm the cache: python eval/chain_data.py [names]
    import sys

    e = CachedEmbedder()
    for n in sys.argv[1:] or list(LOADERS):
        b = LOADERS[n]()
        c, t = embed_bench(b, e)
        print(n, len(b.labels), c.shape, t.shape, flush=True)
