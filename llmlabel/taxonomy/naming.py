"""Names for clusters without an LLM: class-based TF-IDF key phrases, and representative examples.

c-TF-IDF (as in BERTopic): all texts of a cluster form one document; a term's weight is its frequency in the
cluster (normalised by cluster size) times ``log(1 + mean words per cluster / term frequency overall)``, so
terms frequent in this cluster but rare elsewhere win. English stop words and numbers never name a cluster.
"""

from __future__ import annotations

import re

import numpy as np

_TOKEN = r"(?u)\b[^\W\d_][\w'\-]*[^\W_]\b|\b[^\W\d_]\b"
_MAX_TEXTS = 200_000


def keyphrases(texts: list[str], labels: np.ndarray, n_clusters: int, *, top: int = 8,
               seed: int = 0) -> list[list[str]]:
    """Top ``top`` key phrases (1-2 words) per cluster; label -1 (other) is ignored."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    labels = np.asarray(labels)
    idx = np.flatnonzero(labels >= 0)
    if len(idx) > _MAX_TEXTS:
        idx = np.sort(np.random.default_rng(seed).choice(idx, _MAX_TEXTS, replace=False))
    docs = [texts[i] for i in idx]
    lab = labels[idx]
    stop = set(ENGLISH_STOP_WORDS) | {"don", "doesn", "didn", "isn", "wasn", "ve", "ll", "im", "just", "like",
                                      "need", "want", "does", "did", "hi", "hello", "thanks", "thank", "please"}
    min_df = 2 if len(docs) >= 50 else 1
    try:
        vec = CountVectorizer(ngram_range=(1, 2), stop_words=sorted(stop), token_pattern=_TOKEN, lowercase=True,
                              min_df=min_df, max_features=200_000, dtype=np.float32)
        counts = vec.fit_transform(docs)
    except ValueError:  # empty vocabulary (only stop words / numbers / one-letter tokens)
        return [[] for _ in range(n_clusters)]
    from scipy import sparse

    onehot = sparse.csr_matrix((np.ones(len(lab), dtype=np.float32), (lab, np.arange(len(lab)))),
                               shape=(n_clusters, len(lab)))
    tf = np.asarray((onehot @ counts).todense())  # (clusters, terms)
    # presence per cluster, so one long text repeating a word cannot name its cluster
    pres = np.asarray((onehot @ (counts > 0).astype(np.float32)).todense())
    sizes = np.maximum(np.bincount(lab, minlength=n_clusters), 1)[:, None]
    avg_words = tf.sum() / max(n_clusters, 1)
    idf = np.log1p(avg_words / np.maximum(tf.sum(0), 1))
    score = (pres / sizes) * idf
    vocab = np.array(vec.get_feature_names_out())
    out: list[list[str]] = []
    for c in range(n_clusters):
        order = np.argsort(-score[c], kind="stable")
        picked: list[str] = []
        for j in order[: top * 6]:
            if score[c, j] <= 0:
                break
            term = vocab[j]
            if "'" in term:  # contractions (hasn't, i've) carry no topic
                continue
            words = {_stem(w) for w in term.split()}
            # hyphen parts count as covered too: after "top-ups", "ups" adds nothing
            covered = {_stem(w) for p in picked for w in re.split(r"[\s\-]+", p) + p.split()}
            if words <= covered:
                continue
            if " " in term and words & covered:
                # a phrase joining picked words replaces them: "exchange", "rate" -> "exchange rate"
                hit = [i for i, p in enumerate(picked) if {_stem(w) for w in p.split()} <= words]
                if hit:
                    picked[hit[0]] = term
                    picked = [p for i, p in enumerate(picked) if i not in hit[1:]]
                    continue
            picked.append(term)
            if len(picked) >= top:
                break
        out.append(picked)
    return out


def _stem(w: str) -> str:
    """Crude plural folding for comparing key phrases (rates ~ rate, charges ~ charge)."""
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def make_names(phrases: list[list[str]], *, words: int = 3) -> list[str]:
    """A short readable name per cluster from its key phrases, unique across clusters."""
    names: list[str] = []
    seen: set[str] = set()
    for i, ph in enumerate(phrases):
        parts: list[str] = []
        for p in ph:
            if len(" ".join(parts + [p]).split()) > words and parts:
                break
            parts.append(p)
        name = " / ".join(parts) if parts else f"cluster {i + 1}"
        extra = iter(ph[len(parts):])
        while name.lower() in seen:
            nxt = next(extra, None)
            name = f"{name} / {nxt}" if nxt else f"{name} ({i + 1})"
        seen.add(name.lower())
        names.append(name)
    return names


def describe(phrases: list[str], share: float) -> str:
    """A one-sentence description built from key phrases (an LLM writes better ones with --model)."""
    if not phrases:
        return f"Items grouped by similarity ({share:.1%} of the corpus)."
    return f"Items about {', '.join(phrases[:4])} ({share:.1%} of the corpus)."


def representatives(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray, texts: list[str],
                    ids: list[str], *, n: int = 3, max_chars: int = 200) -> list[list[dict]]:
    """Up to ``n`` distinct items closest to each centroid, as ``{"id", "text"}`` snippets."""
    out: list[list[dict]] = []
    for c in range(len(centroids)):
        idx = np.flatnonzero(labels == c)
        if not len(idx):
            out.append([])
            continue
        order = idx[np.argsort(-(x[idx] @ centroids[c]), kind="stable")]
        seen: set[str] = set()
        ex: list[dict] = []
        for i in order[: 50 * n]:
            key = re.sub(r"\W+", " ", texts[i].lower()).strip()
            if key in seen:
                continue
            seen.add(key)
            t = " ".join(texts[i].split())
            ex.append({"id": ids[i], "text": t if len(t) <= max_chars else t[: max_chars - 1] + "…"})
            if len(ex) >= n:
                break
        out.append(ex)
    return out
