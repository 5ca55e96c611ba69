"""Taxonomy induction: planted topics are recovered, runs are deterministic, outputs are readable and valid,
refine keeps the user's ids, bad input fails with one clear line, and the LLM path runs (and caches) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmlabel.errors import InputError, OutputParseError
from llmlabel.artifacts.taxonomy import OTHER, load_taxonomy, save_taxonomy
from llmlabel.taxonomy import evaluate_assignments, induce_taxonomy, write_outputs

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl"
TOPICS = ["card_arrival", "change_pin", "age_limit", "lost_or_stolen_phone", "country_support",
          "apple_pay_or_google_pay"]


def _rows(cats=TOPICS):
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    return [r for r in rows if r["category"] in cats]


@pytest.fixture(scope="module")
def planted():
    rows = _rows()
    return [(r["id"], r["text"]) for r in rows], [r["category"] for r in rows]


@pytest.fixture(scope="module")
def wordllama():
    from llmlabel.embed import load_embedder

    return load_embedder("wordllama")


def test_recovers_planted_topics_from_real_sentences(planted, wordllama):
    items, gold = planted
    res = induce_taxonomy(items, max_labels=len(TOPICS), embedder=wordllama, seed=0)
    scores = evaluate_assignments(res.assignments, gold)
    assert scores["nmi"] > 0.7, scores
    assert scores["other_share"] <= 0.05
    assert res.ids == [i for i, _ in items]
    names = " ".join(lab.name for lab in res.taxonomy.labels)
    # names come from the texts' key phrases, not stop words
    assert "pin" in names and ("apple" in names or "google" in names)
    for lab in res.taxonomy.labels:
        assert lab.examples and lab.keyphrases and lab.description
        assert not {"the", "my", "to", "i"} & set(lab.keyphrases)
    assert abs(sum(lab.share for lab in res.taxonomy.labels) + scores["other_share"] - 1) < 0.01


def test_deterministic_under_seed(planted, wordllama):
    a = induce_taxonomy(planted[0], max_labels=5, embedder=wordllama, seed=3)
    b = induce_taxonomy(planted[0], max_labels=5, embedder=wordllama, seed=3)
    assert a.assignments == b.assignments
    assert a.taxonomy.model_dump() == b.taxonomy.model_dump()


def test_kmeans_method_and_two_levels(planted, wordllama):
    res = induce_taxonomy(planted[0], max_labels=6, embedder=wordllama, levels=2, method="kmeans")
    tax = res.taxonomy
    parents = [lab for lab in tax.labels if lab.parent is None]
    leaves = tax.leaves()
    assert 2 <= len(parents) < len(leaves) and all(lab.parent in tax.ids() for lab in leaves)
    assert set(res.assignments) <= {lab.id for lab in leaves} | {OTHER}
    assert evaluate_assignments(res.assignments, planted[1])["nmi"] > 0.6


def test_cli_writes_files_and_refine_keeps_ids(tmp_path):
    from llmlabel.cli import main

    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in _rows(TOPICS[:4])))
    out = tmp_path / "tax" / "taxonomy.yaml"
    main(["taxonomy", str(first), "-o", str(out), "-k", "4", "-e", "wordllama", "--quiet", "--seed", "1"])
    tax = load_taxonomy(out)
    assert tax.made_with["embedder"] == "wordllama" and tax.made_with["seed"] == 1
    rows = [json.loads(x) for x in (out.parent / "taxonomy.assignments.jsonl").read_text().splitlines()]
    assert len(rows) == first.read_text().count("\n") and {r["label"] for r in rows} <= set(tax.ids()) | {OTHER}
    assert "| id | name |" in (out.parent / "taxonomy.md").read_text()
    # a person renames a label; refining on a corpus with two new topics keeps every id and the new name
    tax.labels[0].name = "My own name"
    save_taxonomy(tax, out)
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps(r) + "\n" for r in _rows(TOPICS)))
    out2 = tmp_path / "refined.yaml"
    main(["taxonomy", str(second), "-o", str(out2), "--refine", str(out), "-k", "4", "-e", "wordllama",
          "--quiet", "--assignments", str(tmp_path / "a2.jsonl"), "--id-field", "id"])
    ref = load_taxonomy(out2)
    assert ref.ids()[: len(tax.ids())] == tax.ids() and ref.labels[0].name == "My own name"
    new = [lab for lab in ref.labels if lab.proposed]
    assert new, "items of the two unseen topics should yield proposed labels"
    got = [json.loads(x) for x in (tmp_path / "a2.jsonl").read_text().splitlines()]
    cats = {r["id"]: r["category"] for r in _rows(TOPICS)}
    in_new = [cats[r["id"]] for r in got if r["label"] in {lab.id for lab in new}]
    assert sum(c in TOPICS[4:] for c in in_new) > 0.6 * len(in_new), in_new
    in_old = [cats[r["id"]] for r in got if r["label"] in tax.ids()]
    assert sum(c in TOPICS[:4] for c in in_old) > 0.8 * len(in_old), in_old


def test_bad_input_errors(tmp_path, wordllama, capsys):
    from llmlabel.cli import main

    with pytest.raises(InputError, match=r"12 distinct texts are too few for up to 30 labels \(need at least 60"):
        induce_taxonomy([f"text number {i}" for i in range(12)], max_labels=30, embedder=wordllama)
    with pytest.raises(InputError, match="all 50 texts are the same"):
        induce_taxonomy(["Same text."] * 25 + ["same   TEXT."] * 25, max_labels=2, embedder=wordllama)
    with pytest.raises(InputError, match="no non-empty texts"):
        induce_taxonomy(["", "  "], embedder=wordllama)
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels:\n  - id: a\n    name: A\n  - id: a\n    name: B\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"t {i}"}) + "\n" for i in range(20)))
    with pytest.raises(SystemExit) as e:
        main(["taxonomy", str(corpus), "--refine", str(bad), "-o", str(tmp_path / "x.yaml"), "-e", "wordllama"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "bad.yaml:4" in err and "labels[1].id" in err and "duplicate" in err


def test_the_cli_default_shrinks_to_fit_a_small_corpus(tmp_path, capsys):
    """`llmlabel taxonomy corpus.jsonl` on 45 texts: the default of 30 labels needs 90 distinct texts (3 a label,
    the smallest cluster), so it induces at most 15 and says so; an explicit --max-labels is kept and stops with
    the count it needs (the default stopped the same way: "45 distinct texts are too few for up to 30 labels")."""
    from llmlabel.cli import main

    rows = [json.loads(x) for x in (Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl")
            .read_text(encoding="utf-8").splitlines()[:45]]
    corpus = tmp_path / "small.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": r["text"]}) + "\n" for i, r in enumerate(rows)))
    main(["taxonomy", str(corpus), "-o", str(tmp_path / "t.yaml"), "-e", "wordllama", "-q"])
    assert "45 distinct texts: at most 15 labels" in capsys.readouterr().err
    assert 2 <= len(load_taxonomy(tmp_path / "t.yaml").leaves()) <= 15
    with pytest.raises(SystemExit) as e:
        main(["taxonomy", str(corpus), "-o", str(tmp_path / "u.yaml"), "-e", "wordllama", "-q", "--max-labels", "30"])
    assert e.value.code == 2 and "too few for up to 30 labels" in capsys.readouterr().err


def test_long_texts_are_truncated_and_counted(planted, wordllama):
    items = list(planted[0]) + [("long", "card " * 6000)]
    res = induce_taxonomy(items, max_labels=3, embedder=wordllama)
    assert res.stats["truncated_for_embedding"] == 1 and len(res.assignments) == len(items)


# ---------------------------------------------------------------------------------------------- LLM path


@pytest.mark.parametrize("mode", ["seeded", "tnt"])
def test_llm_modes_end_to_end_and_cached(tiny_qwen2, tmp_path, wordllama, mode, planted):
    from llmlabel.llm import load_engine, usage_log

    items = planted[0][:40]
    opts = dict(batch_items=3, max_batches=2, snippet_chars=60)
    runs = []
    for _ in range(2):
        usage_log.reset()
        eng = load_engine(f"hf:{tiny_qwen2}", cache=tmp_path / "cache.sqlite")
        res = induce_taxonomy(items, max_labels=2, model=eng, mode=mode, embedder=wordllama,
                              instruction="route bank messages", raw_dir=tmp_path, llm_options=opts)
        runs.append((res, usage_log.as_dict()["taxonomy"]))
    (r1, u1), (r2, u2) = runs
    assert u1["requests"] > 0 and u1["prompt_tokens"] > 0 and u1["completion_tokens"] > 0
    assert u2["requests"] == 0 and u2["cache_hits"] >= u1["requests"] - u1["retries"]
    tax = r1.taxonomy
    assert tax.made_with["engine"].startswith("hf:") and tax.made_with["llm_mode"] == mode
    assert 1 <= len(tax.leaves()) <= 2 and tax.instruction == "route bank messages"
    assert all(lab.name and lab.name.isprintable() for lab in tax.labels)
    assert r1.assignments == r2.assignments and tax.model_dump() == r2.taxonomy.model_dump()
    paths = write_outputs(r1, tmp_path / "t.yaml")
    assert load_taxonomy(paths["taxonomy"]).ids() == tax.ids()
    if mode == "seeded":
        # the same run through the CLI (file input, --model, --cache) is answered from the cache: zero calls
        from llmlabel.cli import main

        corpus = tmp_path / "c.jsonl"
        corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items))
        usage_log.reset()
        main(["taxonomy", str(corpus), "-o", str(tmp_path / "cli" / "t.yaml"), "-k", "2", "-e", "wordllama",
              "--model", f"hf:{tiny_qwen2}", "--cache", str(tmp_path / "cache.sqlite"), "--quiet",
              "-i", "route bank messages", "--id-field", "id"])
        assert usage_log.as_dict()["taxonomy"]["requests"] == 0
        assert load_taxonomy(tmp_path / "cli" / "t.yaml").model_dump()["labels"] == tax.model_dump()["labels"]


def test_llm_reply_failing_schema_is_saved(tiny_qwen2, tmp_path, wordllama, planted, monkeypatch):
    from llmlabel.llm import load_engine

    eng = load_engine(f"hf:{tiny_qwen2}", cache=False)
    monkeypatch.setattr(eng, "_logits_processor", lambda schema: None)  # unconstrained: the random model babbles
    with pytest.raises(OutputParseError) as e:
        induce_taxonomy(planted[0][:30], max_labels=1, model=eng, mode="tnt", embedder=wordllama, raw_dir=tmp_path,
                        llm_options=dict(batch_items=2, max_batches=1, snippet_chars=40, max_tokens=24))
    saved = tmp_path / "taxonomy.llm-generate-reply.txt"
    assert saved.exists() and e.value.path == str(saved)
    assert saved.read_text() == e.value.raw


def test_summary_table_and_markdown(planted, wordllama):
    from rich.console import Console

    from llmlabel.taxonomy import render_markdown
    from llmlabel.taxonomy.report import summary_table

    res = induce_taxonomy(planted[0], max_labels=4, embedder=wordllama, seed=0)
    con = Console(width=300, record=True)
    con.print(summary_table(res, width=300))
    out = con.export_text()
    counts = res.counts()
    for lab in res.taxonomy.labels:  # every label with its item count, biggest first
        assert lab.id in out and f"{counts.get(lab.id, 0):,}" in out
    assert f"{len(res.assignments):,} items" in out
    narrow = Console(width=80, record=True)
    narrow.print(summary_table(res, width=80))
    text = narrow.export_text()
    assert max(map(len, text.splitlines())) <= 80 and all(f"{c:,}" in text for c in counts.values())
    md = render_markdown(res)
    assert md.count("\n### ") == len(res.taxonomy.labels) and "seed 0" in md


def test_nmi_of_random_assignment_is_low():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, 500).astype(str)
    assert evaluate_assignments(rng.integers(0, 5, 500).astype(str), gold)["nmi"] < 0.05
    assert evaluate_assignments(gold, gold)["nmi"] == 1.0
