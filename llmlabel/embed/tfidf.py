"""TF-IDF word and bigram features: text features that need no model (the review strategy's out-of-fold
classifier reads them by default)."""

from __future__ import annotations


def text_features(texts):
    """TF-IDF word and bigram features (the 20,000 most frequent seen twice or more), a sparse (n, d) matrix.
    Capped so a many-class logistic regression on them stays cheap."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [str(t) for t in texts]
    try:
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=20000, sublinear_tf=True).fit_transform(texts)
    except ValueError:  # too few texts for min_df=2 (every term seen once): keep them all
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
