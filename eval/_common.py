"""What every eval script shares: the data path, the visible sets as corpus / dev / test, the official metric
of each set, the machine description and the results header.

A set here is what a user would have: a corpus of texts to label (its gold only scores, draws the gold budget
and fills the ceiling rows), the label names with the one-line descriptions a user who knows the label set
would write (none were written from corpus text), a dev split where the source has one, and a test split that
only ever scores. Corpora larger than ``MAX_CORPUS`` and test splits larger than ``MAX_TEST`` are seeded
samples (emoji: 45,000 / 50,000 rows), so the whole suite runs in hours, not days, on 2 cores.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LLMLABEL_EVAL_DATA", ROOT / ".." / "shared" / "data")).resolve()
MAX_CORPUS = 10_000
MAX_TEST = 5_000

# WRENCH class names -> the words a user would call them.
TREC_NAMES = {"DESC": "description", "ENTY": "entity", "HUM": "human", "ABBR": "abbreviation", "LOC": "location",
              "NUM": "numeric"}
DESCRIPTIONS = {
    "youtube": {"ham": "a genuine comment about the video, the song or the singer",
                "spam": "spam: asks people to subscribe, visit a channel or a link, or promotes something"},
    "sms": {"ham": "an ordinary personal text message between people who know each other",
            "spam": "spam: an advert, a prize or offer, a premium-rate number or a link to reply to"},
    "trec": {"description": "the question asks for a description, a definition, a reason or a manner",
             "entity": "the question asks for an entity: a thing, an animal, a colour, a product, a term, an event",
             "human": "the question asks for a person or a group of people",
             "abbreviation": "the question asks what an abbreviation stands for or for its expansion",
             "location": "the question asks for a place: a city, a country, a mountain, a state",
             "numeric": "the question asks for a number: a date, a count, a distance, a price, a percentage"},
    "semeval": {"cause-effect": "one entity causes or produces the other (an event, a disease, a result)",
                "component-whole": "one entity is a part or component of the other",
                "content-container": "one entity is held inside a container, box or vessel",
                "entity-destination": "an entity moves into or towards a place or destination",
                "entity-origin": "an entity comes from, is derived from or leaves an origin",
                "instrument-agency": "an agent uses an instrument or tool",
                "member-collection": "an entity is a member of a group or collection",
                "message-topic": "a message, text or document is about a topic",
                "product-producer": "a producer, company or person makes a product"},
    "agnews": {"world": "world news: politics, international affairs, conflicts, governments",
               "sports": "sports news: games, teams, players, tournaments",
               "business": "business news: companies, markets, economy, finance",
               "science and technology": "science and technology news: computers, internet, software, space, research"},
    "irony": {"not ironic": "the tweet means what it says",
              "ironic": "the tweet is ironic or sarcastic: it means the opposite of what it says"},
    "offensive": {"not offensive": "the tweet contains no insult, profanity or attack",
                  "offensive": "the tweet is offensive: insults, profanity, a threat or a targeted attack"},
}
STANCE_TARGETS = {"abortion": "legal abortion", "atheism": "atheism", "climate": "action on climate change",
                  "feminist": "the feminist movement", "hillary": "Hillary Clinton"}
TWEETEVAL_METRIC = {"irony": "f1_pos", "offensive": "macro_f1", "emoji": "macro_f1", "stance": "f1_against_favor"}


@dataclass
class Bench:
    name: str
    labels: list[str]                      # class order
    descriptions: dict[str, str]
    corpus_texts: list[str]
    corpus_y: np.ndarray
    test_texts: list[str]
    test_y: np.ndarray
    corpus_ids: list[str] = field(default_factory=list)
    dev_texts: list[str] = field(default_factory=list)
    dev_y: np.ndarray | None = None
    metric: str = "accuracy"               # the set's official metric (see ``score``)
    wrench_corpus: np.ndarray | None = None  # (n, m) published LF votes, -1 abstain
    wrench_test: np.ndarray | None = None
    wrench_dev: np.ndarray | None = None
    note: str = ""
    multi_label: bool = False              # corpus_y / test_y are then (n, k) 0/1 matrices
    tree: dict | None = None               # a two-level label set: group -> leaves (labels.yaml)

    def labels_txt(self) -> str:
        """labels.txt as a user writes it: ``name: description`` a line (names only where there is none)."""
        return "".join(f"{n}: {self.descriptions[n]}\n" if self.descriptions.get(n) else f"{n}\n"
                       for n in self.labels)


def _sample(n: int, cap: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).permutation(n)[:cap]) if n > cap else np.arange(n)


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def banking77() -> Bench:
    d = DATA / "banking77"
    cats = json.loads((d / "categories.json").read_text())
    labels = [c.replace("_", " ") for c in cats]
    idx = {c: j for j, c in enumerate(cats)}
    tr, te = _csv(d / "train.csv"), _csv(d / "test.csv")
    return Bench("banking77", labels, {}, [r["text"] for r in tr], np.array([idx[r["category"]] for r in tr]),
                 [r["text"] for r in te], np.array([idx[r["category"]] for r in te]),
                 corpus_ids=[f"b77-train-{i + 1}" for i in range(len(tr))])


def agnews(seed: int = 0) -> Bench:
    rows = _csv(DATA / "agnews" / "test.csv")
    texts = [f"{r['Title']}. {r['Description']}".replace("\\", " ") for r in rows]
    y = np.array([int(r["Class Index"]) - 1 for r in rows])
    perm = np.random.default_rng(seed).permutation(len(rows))
    cut = int(0.8 * len(rows))
    tr, te = perm[:cut], perm[cut:]
    labels = list(DESCRIPTIONS["agnews"])
    return Bench("agnews", labels, DESCRIPTIONS["agnews"], [texts[i] for i in tr], y[tr], [texts[i] for i in te],
                 y[te], corpus_ids=[f"ag-{i}" for i in tr], note="AG News test.csv split 80/20 (seed 0)")


def wrench(name: str) -> Bench:
    d = DATA / "wrench" / name
    raw = json.loads((d / "label.json").read_text())
    names = [raw[str(j)] for j in range(len(raw))]
    labels = [TREC_NAMES.get(n, n.lower()) for n in names]

    def split(s):
        js = json.loads((d / f"{s}.json").read_text())
        rows = list(js.values())
        return ([r["data"]["text"] for r in rows], np.array([r["label"] for r in rows]),
                np.array([r["weak_labels"] for r in rows], dtype=np.int16), list(js))

    ct, cy, cw, cid = split("train")
    vt, vy, vw, _ = split("valid")
    tt, ty, tw, _ = split("test")
    return Bench(name, labels, DESCRIPTIONS[name], ct, cy, tt, ty, corpus_ids=[f"{name}-{i}" for i in cid],
                 dev_texts=vt, dev_y=vy, metric="f1_pos" if name == "sms" else "accuracy",
                 wrench_corpus=cw, wrench_test=tw, wrench_dev=vw)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1] if path.read_text(encoding="utf-8").endswith("\n") \
        else path.read_text(encoding="utf-8").split("\n")


def _tweeteval_split(folder: Path, split: str) -> tuple[list[str], np.ndarray]:
    texts = [t.strip() for t in _lines(folder / f"{split}_text.txt")]
    y = np.array([int(x) for x in _lines(folder / f"{split}_labels.txt") if x.strip()])
    if len(texts) != len(y):
        raise ValueError(f"{folder}/{split}: {len(texts)} texts, {len(y)} labels")
    return texts, y


def tweeteval(task: str, target: str | None = None, seed: int = 0) -> Bench:
    folder = DATA / "tweeteval" / task / (target or "")
    (ct, cy), (vt, vy), (tt, ty) = (_tweeteval_split(folder, s) for s in ("train", "val", "test"))
    if task == "emoji":
        names = [ln.split("\t")[2].strip("_").replace("_", " ") for ln in _lines(folder / "mapping.txt") if ln.strip()]
        desc = {n: f"the tweet would end with the {n} emoji" for n in names}
    elif task == "stance":
        what = STANCE_TARGETS[target]
        names = ["none", "against", "favor"]
        desc = {"none": f"the tweet takes no side on {what}", "against": f"the tweet is against {what}",
                "favor": f"the tweet is in favour of {what}"}
    else:
        names, desc = list(DESCRIPTIONS[task]), DESCRIPTIONS[task]
    c, t = _sample(len(ct), MAX_CORPUS, seed), _sample(len(tt), MAX_TEST, seed)
    name = f"stance-{target}" if task == "stance" else task
    note = "" if len(c) == len(ct) and len(t) == len(tt) else \
        f"seeded samples: corpus {len(c):,} of {len(ct):,} train rows, test {len(t):,} of {len(tt):,}"
    return Bench(name, names, desc, [ct[i] for i in c], cy[c], [tt[i] for i in t], ty[t],
                 corpus_ids=[f"{name}-{i}" for i in c], dev_texts=vt, dev_y=vy, metric=TWEETEVAL_METRIC[task],
                 note=note)


def goemotions_single(seed: int = 0) -> Bench:
    """GoEmotions rows with exactly one label (28 classes, neutral included): train sample as the corpus,
    dev.tsv's single-label rows as test (the GoEmotions test split is kept back)."""
    d = DATA / "goemotions"
    names = [x.strip() for x in _lines(d / "labels.txt") if x.strip()]

    def read(split):
        texts, ys = [], []
        with (d / f"{split}.tsv").open(encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                labs = parts[1].split(",")
                if len(labs) == 1:
                    texts.append(parts[0])
                    ys.append(int(labs[0]))
        return texts, np.array(ys)

    (ct, cy), (tt, ty) = read("train"), read("dev")
    c, t = _sample(len(ct), MAX_CORPUS, seed), _sample(len(tt), MAX_TEST, seed)
    return Bench("goemotions-single", names, {}, [ct[i] for i in c], cy[c], [tt[i] for i in t], ty[t],
                 corpus_ids=[f"goe-{i}" for i in c], metric="macro_f1",
                 note=f"single-label rows; corpus {len(c):,} of {len(ct):,}, test = dev.tsv single-label rows")


def goemotions(seed: int = 0, corpus: int = 6000) -> Bench:
    """GoEmotions as a multi-label set (28 labels: 27 emotions + neutral, under the 6 Ekman groups of
    ekman_mapping.json; neutral stays alone): a seeded sample of ``corpus`` train.tsv rows (eval/multilabel.py's
    6,000) as the corpus, dev.tsv as the test split (the GoEmotions test split is kept back)."""
    d = DATA / "goemotions"
    names = [x.strip() for x in _lines(d / "labels.txt") if x.strip()]

    def read(split):
        texts, Y = [], []
        with (d / f"{split}.tsv").open(encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                y = np.zeros(len(names), np.int8)
                y[[int(x) for x in parts[1].split(",")]] = 1
                texts.append(parts[0])
                Y.append(y)
        return texts, np.stack(Y)

    (ct, cY), (tt, tY) = read("train"), read("dev")
    c = _sample(len(ct), corpus, seed)
    tree = {**json.loads((d / "ekman_mapping.json").read_text()), "neutral": []}
    return Bench("goemotions", names, {}, [ct[i] for i in c], cY[c], tt, tY, corpus_ids=[f"goe-{i}" for i in c],
                 metric="macro_f1", multi_label=True, tree=tree,
                 note=f"multi-label; corpus {len(c):,} of {len(ct):,} train rows (seed {seed}), test = dev.tsv "
                      f"({len(tt):,} rows)")


LOADERS = {
    "banking77": banking77, "agnews": agnews,
    **{n: (lambda n=n: wrench(n)) for n in ("youtube", "sms", "trec", "semeval")},
    **{t: (lambda t=t: tweeteval(t)) for t in ("irony", "offensive", "emoji")},
    **{f"stance-{t}": (lambda t=t: tweeteval("stance", t)) for t in STANCE_TARGETS},
    "goemotions-single": goemotions_single, "goemotions": goemotions,
}


def score(metric: str, y, pred, k: int) -> float:
    """The official metric: accuracy; macro_f1; f1_pos (F1 of class 1: sms spam, irony); f1_against_favor
    (TweetEval stance: mean F1 of classes 1 and 2)."""
    y, pred = np.asarray(y), np.asarray(pred)
    f1 = per_class_f1(y, pred, k)
    if metric == "accuracy":
        return float(np.mean(y == pred))
    if metric == "macro_f1":
        return float(f1.mean())
    if metric == "f1_pos":
        return float(f1[1])
    if metric == "f1_against_favor":
        return float(f1[1:3].mean())
    raise ValueError(metric)


def per_class_f1(y, pred, k: int) -> np.ndarray:
    tp = np.bincount(y[y == pred], minlength=k).astype(float)
    p = np.bincount(pred, minlength=k).astype(float)
    t = np.bincount(y, minlength=k).astype(float)
    return np.divide(2 * tp, p + t, out=np.zeros(k), where=(p + t) > 0)


def machine() -> str:
    """One line: CPUs, memory, Python and the key library versions, and the load right now."""
    import numpy
    import scipy

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), cpu)
    except OSError:
        model = cpu
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), {mem:.1f} GB RAM, Python {platform.python_version()}, "
            f"numpy {numpy.__version__}, scipy {scipy.__version__}; load average (1/5/15 min) {load}")


def header(command: str) -> str:
    """The lines every results file opens with: the command, the date, the commit and the machine."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = "?"
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"Made by `{command}` on {now} at commit {commit or '?'}; machine: {machine()}."
