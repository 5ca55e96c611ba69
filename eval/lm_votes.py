"""Vote matrices for the label-model protocol (eval/labelmodel_suite.py): the WRENCH sets' published LF votes,
and the votes llmlabel's own no-gold LFs make on the other visible sets, made through the CLI exactly as the
README documents it:

    llmlabel taxonomy corpus.jsonl --labels labels.txt -o taxonomy.yaml
    llmlabel label corpus.jsonl -t taxonomy.yaml --lfs LFS -o votes/

with LFS = key phrases + one MiniLM embedding LF, at the documented threshold (``emb35``: 0.35, as
pipelines/banking77_lfs.yaml) and voting on every item (``emb0``: 0.0). The corpus is the set's corpus plus its
dev split (when it has one), so a dev run can pick its dev rows from the same votes; ids tell them apart.
Votes are cached under ``$LLMLABEL_LMSUITE`` (default /tmp/llmlabel-lmsuite) and made once.

    python eval/lm_votes.py [SET ...]      # all visible sets by default
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOADERS, ROOT, Bench  # noqa: E402

CACHE = Path(os.environ.get("LLMLABEL_LMSUITE", "/tmp/llmlabel-lmsuite"))
WRENCH = ("youtube", "sms", "trec", "semeval")
OWN_SETS = ("banking77", "agnews", "irony", "offensive", "emoji", "stance-abortion", "stance-atheism",
            "stance-climate", "stance-feminist", "stance-hillary", "goemotions-single")
LF_FILES = {
    "emb35": "lfs:\n  - {kind: keyphrases}\n  - {name: emb_minilm, kind: embedding, embedder: minilm, threshold: 0.35}\n",
    "emb0": "lfs:\n  - {kind: keyphrases}\n  - {name: emb_minilm, kind: embedding, embedder: minilm, threshold: 0.0}\n",
}


@dataclass
class VoteSet:
    """Votes to fit on (``L``; ``y`` only scores), dev votes with their gold, and the rows scored.

    ``L``/``L_dev``/``L_test`` are int arrays (WRENCH) or ``LabelMatrix`` objects that keep each LF's vote
    probabilities, as ``llmlabel aggregate`` reads them."""
    name: str
    k: int
    L: object
    y: np.ndarray
    L_dev: object
    y_dev: np.ndarray | None
    L_test: object
    y_test: np.ndarray
    source: str = ""


def wrench_votes(name: str) -> VoteSet:
    b = LOADERS[name]()
    k = len(b.labels)
    return VoteSet(name, k, b.wrench_corpus, b.corpus_y, b.wrench_dev, b.dev_y, b.wrench_test, b.test_y,
                   source="WRENCH's published LFs: fit on train votes, dev = valid, scored on test")


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}); see {log}")


def make_own_votes(b: Bench, lfs: str) -> Path:
    """Run taxonomy --labels + label through the CLI (once) and return the votes folder."""
    d = CACHE / b.name
    d.mkdir(parents=True, exist_ok=True)
    votes = d / f"votes-{lfs}"
    if (votes / "_manifest.json").is_file() and json.loads((votes / "_manifest.json").read_text()).get("complete"):
        return votes
    corpus = d / "corpus.jsonl"
    if not corpus.is_file():
        with corpus.open("w", encoding="utf-8") as f:
            for i, t in zip(b.corpus_ids, b.corpus_texts):
                f.write(json.dumps({"id": i, "text": t}) + "\n")
            for j, t in enumerate(b.dev_texts):
                f.write(json.dumps({"id": f"dev-{j}", "text": t}) + "\n")
        (d / "labels.txt").write_text(b.labels_txt(), encoding="utf-8")
    (d / f"lfs-{lfs}.yaml").write_text(LF_FILES[lfs], encoding="utf-8")
    log = d / "cli.log"
    tax = d / "taxonomy.yaml"
    t0 = time.perf_counter()
    if not tax.is_file():
        _run(["llmlabel", "taxonomy", str(corpus), "--labels", str(d / "labels.txt"), "-o", str(tax), "-q"], log)
    _run(["llmlabel", "label", str(corpus), "-t", str(tax), "--lfs", str(d / f"lfs-{lfs}.yaml"), "-o", str(votes),
          "-q"], log)
    print(f"[{b.name}] {lfs} votes made in {time.perf_counter() - t0:.0f} s", flush=True)
    return votes


def own_votes(name: str, lfs: str = "emb35") -> VoteSet:
    """Our LFs' votes: fit on every corpus row (and dev row: no gold is read), scored on the corpus rows;
    dev = the set's dev split when it has one, else a seeded 300-row sample of the corpus (then not scored)."""
    from llmlabel.labelmodel.pipeline import load_votes

    b = LOADERS[name]()
    L = load_votes(make_own_votes(b, lfs))[0]
    ids = [str(i) for i in L.ids]
    gold = {i: int(y) for i, y in zip(b.corpus_ids, b.corpus_y)}
    gold.update({f"dev-{j}": int(y) for j, y in enumerate(b.dev_y if b.dev_y is not None else [])})
    y_all = np.array([gold[i] for i in ids])
    is_dev = np.array([i.startswith("dev-") for i in ids])
    if not is_dev.any():
        pick = np.random.default_rng(0).permutation(len(ids))[:300]
        is_dev[pick] = True
    score = np.flatnonzero(~is_dev)
    dev = np.flatnonzero(is_dev)
    return VoteSet(name, len(b.labels), L, y_all, L.take(dev), y_all[dev], L.take(score), y_all[score],
                   source=f"llmlabel taxonomy --labels + label ({lfs}): fit on all rows, scored on the "
                          f"{len(score):,} non-dev rows")


if __name__ == "__main__":
    names = sys.argv[1:] or list(OWN_SETS)
    for n in names:
        b = LOADERS[n]()
        for lf in LF_FILES:
            make_own_votes(b, lf)
