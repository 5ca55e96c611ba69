"""The static students of one safety net share tokens and training features (distill/static_memo.py): a fit with
the memo must give the same head, bit for bit, as a fit without, and the net's second recipe on a fold's texts
must not build them again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl"


def _sample():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    classes = sorted({r["category"] for r in rows})
    y = np.array([classes.index(r["category"]) for r in rows])
    return [r["text"] for r in rows], y, classes


def _fit(texts, proba, classes, weights, memo=None, multi_label=False):
    from llmlabel.distill import StaticStudent

    st = StaticStudent(epochs=1, memo=memo, multi_label=multi_label)  # weight_decay="auto": grid split, then all
    return st.fit(texts, proba=proba, classes=classes, sample_weight=weights)


@pytest.mark.parametrize("multi_label", [False, True])
def test_a_fit_with_the_memo_is_the_fit_without_it_and_reuses_the_texts_features(multi_label):
    from functools import partial

    from llmlabel.distill.static_memo import StaticMemo

    fit = partial(_fit, multi_label=multi_label)
    texts, y, classes = _sample()
    rng = np.random.default_rng(0)
    proba = np.eye(len(classes), dtype=np.float32)[y] * 0.7 + 0.3 / len(classes)
    w1, w2 = np.ones(len(texts), np.float32), rng.uniform(0.2, 2.0, len(texts)).astype(np.float32)
    memo = StaticMemo()
    for w in (w1, w2):  # the net's "all" then "equal" recipe on one fold: same texts, other weights
        plain, shared = fit(texts, proba, classes, w), fit(texts, proba, classes, w, memo)
        for name, a in plain.state_.items():
            assert np.array_equal(a, shared.state_[name]), name
        assert np.array_equal(plain.idf_, shared.idf_) and np.array_equal(plain.bigram_keys_, shared.bigram_keys_)
        assert np.array_equal(plain.predict_proba(texts[:40]), shared.predict_proba(texts[:40]))
    # each fit builds features for its grid split and for all its rows; the second fit finds both
    assert (memo.misses, memo.hits) == (2, 2)
    other = texts[::-1]
    fit(other, proba[::-1], classes, w1, memo)
    assert memo.misses == 4  # other texts (the same ones in another order) are not mistaken for these


def test_memo_tokens_are_the_tokenizers_whatever_was_seen_before():
    from llmlabel.distill.static import _wordllama_parts
    from llmlabel.distill.static_format import token_ids
    from llmlabel.distill.static_memo import StaticMemo

    tok, _ = _wordllama_parts()
    texts, _, _ = _sample()
    memo = StaticMemo()
    memo.tokens("wl", tok, texts[:30], 8)
    for batch in (texts[10:60], texts[:0], texts[5:6] * 3):
        got, want = memo.tokens("wl", tok, batch, 8), token_ids(tok, batch, 8)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert np.array_equal(memo.tokens("wl", tok, texts[:5], 3)[1], token_ids(tok, texts[:5], 3)[1])  # its own cut
