"""A small real run folder for the report and review tests: corpus -> keyword LFs -> votes -> aggregate (with a
gold dev file) -> static student, all through the CLI, no LLM and no download (a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from clirun import run_cli

VOCAB = {
    "billing": ["invoice", "charged", "bill", "payment", "fee", "overcharged"],
    "delivery": ["parcel", "courier", "shipping", "arrived", "tracking", "late"],
    "refund": ["refund", "money back", "return", "reimburse", "cancelled order", "credit"],
}
FILLER = ["hello", "please", "my", "the", "help", "today", "again", "account", "order", "thanks", "why", "still"]


def make_corpus(n: int = 360, seed: int = 0) -> list[dict]:
    """Texts with one to two words of their class, a 30% chance of a misleading word from another class."""
    rng = np.random.default_rng(seed)
    classes = list(VOCAB)
    y = rng.integers(0, len(classes), n)
    rows = []
    for i in range(n):  # building test data, not a hot path
        c = classes[y[i]]
        words = list(rng.choice(FILLER, 4)) + list(rng.choice(VOCAB[c], int(rng.integers(1, 3))))
        if rng.random() < 0.3:
            other = classes[(y[i] + int(rng.integers(1, len(classes)))) % len(classes)]
            words.append(str(rng.choice(VOCAB[other])))
        rng.shuffle(words)
        rows.append({"id": f"t{i:04d}", "text": " ".join(map(str, words)), "gold": c})
    return rows


def make_run(root: Path, *, n: int = 360, n_dev: int = 90, student: bool = True) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    rows = make_corpus(n)
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows))
    (root / "gold_all.jsonl").write_text("".join(json.dumps({"id": r["id"], "label": r["gold"]}) + "\n" for r in rows))
    dev = root / "dev.jsonl"
    dev.write_text("".join(json.dumps({"id": r["id"], "label": r["gold"]}) + "\n" for r in rows[:n_dev]))
    tax = {"labels": [{"id": c, "name": c, "description": f"Messages about {c}.",
                       "examples": [{"id": r["id"], "text": r["text"]} for r in rows if r["gold"] == c][:2]}
                      for c in VOCAB]}
    (root / "taxonomy.yaml").write_text(yaml.safe_dump(tax, sort_keys=False))
    # Keyword LFs of uneven quality: each sees part of a class's vocabulary; 'money' fires on two classes.
    lfs = {"lfs": [
        {"name": "kw_bill", "kind": "keyword", "patterns": {"billing": ["invoice", "bill", "charged"]}},
        {"name": "kw_pay", "kind": "keyword", "patterns": {"billing": ["payment", "fee"], "refund": ["credit"]}},
        {"name": "kw_ship", "kind": "keyword", "patterns": {"delivery": ["parcel", "courier", "shipping"]}},
        {"name": "kw_track", "kind": "keyword", "patterns": {"delivery": ["tracking", "late", "arrived"]}},
        {"name": "kw_refund", "kind": "keyword", "patterns": {"refund": ["refund", "money back", "reimburse"]}},
        {"name": "kw_return", "kind": "keyword", "patterns": {"refund": ["return", "cancelled"],
                                                             "billing": ["overcharged"]}},
    ]}
    (root / "lfs.yaml").write_text(yaml.safe_dump(lfs, sort_keys=False))
    run = root / "run"

    def cli(*args):
        code = run_cli(*args)
        assert code == 0, f"llmlabel {' '.join(map(str, args))} exited {code}"

    cli("label", corpus, "-t", root / "taxonomy.yaml", "--lfs", root / "lfs.yaml", "-o", run / "votes", "--quiet")
    cli("aggregate", run / "votes", "--dev", dev, "-o", run / "labeled.parquet")
    if student:
        cli("distill", run / "labeled.parquet", "-o", run / "model", "--student", "static")
    (run / "taxonomy.yaml").write_text((root / "taxonomy.yaml").read_text())
    (run / "dev.jsonl").write_text(dev.read_text())
    return {"root": root, "run": run, "corpus": corpus, "dev": dev, "gold_all": root / "gold_all.jsonl"}
