"""Data for eval/review.py: each set as (corpus votes, corpus gold, test votes, MiniLM vectors).

- youtube, trec: WRENCH's published LF votes; dev = the valid split (as a WRENCH user has it).
- banking77, agnews: no published votes, so the votes are what a user with a known label set and no LLM gets
  from llmlabel itself: ``taxonomy --labels`` (the label names, plus examples and key phrases taken from the
  corpus) -> the key-phrase keyword LFs and a MiniLM embedding LF; no dev set. The splits and the MiniLM vectors
  are eval/chain_data.py's (vectors cached in /tmp/llmlabel-chain, shared with the chain benchmark).

The votes of the product LFs are cached next to the vectors (keyed by set, LF set and texts), so a rerun does
not rebuild the taxonomy or re-apply the LFs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chain_data import CACHE, DATA, LOADERS, CachedEmbedder, embed_bench  # noqa: E402

# The LF set for sets without published votes (what pipelines/known_labels_lfs.yaml ships, less the kNN LF over
# gold: that one is added per round from the reviewed items, see ``knn_votes``).
PRODUCT_LFS = [{"kind": "keyphrases"}, {"name": "emb_minilm", "kind": "embedding", "threshold": 0.3}]
WRENCH = ("youtube", "trec")


def _matrix(votes, names, labels, ids, vote_probs=None):
    from llmlabel.artifacts.matrix import LabelMatrix

    return LabelMatrix(np.asarray(votes, np.int16), names, labels=labels, ids=ids, vote_probs=vote_probs)


def _product_votes(b, emb) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(corpus votes, test votes, LF names) of PRODUCT_LFS, cached on disk."""
    key = hashlib.sha256(json.dumps([PRODUCT_LFS, b.labels, b.corpus_texts[:50], len(b.corpus_texts),
                                     len(b.test_texts)]).encode()).hexdigest()[:16]
    path = CACHE / f"review-votes-{b.name}-{key}.npz"
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        return z["corpus"], z["test"], [str(x) for x in z["names"]]
    from llmlabel.lf.apply import apply_lfs
    from llmlabel.lf.spec import LFSpecFile, build_lfs
    from llmlabel.taxonomy.known import KnownLabel, taxonomy_from_labels

    rows = [KnownLabel(n, b.descriptions.get(n, "")) for n in b.labels]
    tax = taxonomy_from_labels(rows, list(zip(b.corpus_ids, b.corpus_texts)), embedder=emb, examples=3,
                               keyphrases=8).taxonomy
    lfs = build_lfs(LFSpecFile.model_validate({"lfs": PRODUCT_LFS}), tax, embedder=emb)
    Lc = apply_lfs(lfs, b.corpus_texts, labels=b.labels, ids=b.corpus_ids, keep_probs=False)
    Lt = apply_lfs(lfs, b.test_texts, labels=b.labels, keep_probs=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, corpus=Lc.votes, test=Lt.votes, names=np.array(Lc.lf_names))
    tmp.replace(path)
    return Lc.votes, Lt.votes, list(Lc.lf_names)


def load_set(name: str, emb: CachedEmbedder | None = None) -> dict:
    """Everything eval/review.py needs for one set (see the module docstring)."""
    emb = emb or CachedEmbedder()
    b = LOADERS[name]()
    Xc, Xt = embed_bench(b, emb)
    ids = list(b.corpus_ids)
    if name in WRENCH:
        from llmlabel.labelmodel.pipeline import load_votes

        L_dev, y_dev, texts_dev = load_votes(DATA / "wrench" / name / "valid.json")
        names = [f"wrench{j}" for j in range(b.wrench_corpus.shape[1])]
        vc, vt = b.wrench_corpus, b.wrench_test
        L_dev = _matrix(L_dev.votes, names, b.labels, [f"{name}-valid-{i}" for i in range(len(y_dev))])
    else:
        vc, vt, names = _product_votes(b, emb)
        L_dev, y_dev, texts_dev = None, None, None
    return {"name": name, "L": _matrix(vc, names, b.labels, ids), "y": b.corpus_y, "texts": b.corpus_texts,
            "L_dev": L_dev, "y_dev": y_dev, "L_test": _matrix(vt, names, b.labels, None), "y_test": b.test_y,
            "texts_test": b.test_texts, "texts_dev": texts_dev, "X": Xc, "X_test": Xt, "emb": emb, "ids": ids,
            "lf_source": "WRENCH's published LFs" if name in WRENCH else
            "llmlabel's own: " + ", ".join(s.get("name", s["kind"]) for s in PRODUCT_LFS)}


def knn_votes(ds: dict, rows: np.ndarray, y_rows: np.ndarray, texts: list[str], ids=None) -> np.ndarray:
    """Votes of the product's kNN LF over the reviewed items (``label --gold``: 5-fold cross-fitted on them)."""
    from llmlabel.lf.gold import GoldSet
    from llmlabel.lf.knn import KnnLF

    g = GoldSet([ds["ids"][i] for i in rows], [ds["texts"][i] for i in rows], y_rows, labels=ds["L"].labels,
                folds=5, seed=0)
    lf = KnnLF("knn_reviewed", g, embedder=ds["emb"], k=10, threshold=0.5)
    items = None if ids is None else [{"id": i} for i in ids]
    return lf.apply(texts, items)[0]


def with_knn(ds: dict, rows: np.ndarray) -> tuple:
    """(corpus, dev, test) label matrices with the kNN-over-reviewed-items LF appended (none before round 1)."""
    L, Lt, Ld = ds["L"], ds["L_test"], ds["L_dev"]
    if len(rows) == 0:
        return L, Ld, Lt
    y = ds["y"][rows]
    names = L.lf_names + ["knn_reviewed"]
    vc = knn_votes(ds, rows, y, ds["texts"], ds["ids"])
    vt = knn_votes(ds, rows, y, ds["texts_test"])
    L2 = _matrix(np.hstack([L.votes, vc[:, None]]), names, L.labels, L.ids)
    Lt2 = _matrix(np.hstack([Lt.votes, vt[:, None]]), names, L.labels, None)
    Ld2 = None
    if Ld is not None:
        vd = knn_votes(ds, rows, y, ds["texts_dev"])
        Ld2 = _matrix(np.hstack([Ld.votes, vd[:, None]]), names, L.labels, Ld.ids)
    return L2, Ld2, Lt2
