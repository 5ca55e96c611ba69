"""Bring your own label set: `llmlabel taxonomy CORPUS --labels FILE` (taxonomy/known.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlabel.errors import ConfigError
from llmlabel.artifacts.taxonomy import load_taxonomy
from llmlabel.taxonomy import read_label_file, taxonomy_from_labels

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "banking77_sample.jsonl"
TOPICS = {"card_arrival": "card arrival", "change_pin": "change PIN", "age_limit": "age limit"}


@pytest.fixture(scope="module")
def items():
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    rows = [r for r in rows if r["category"] in TOPICS]
    return [(r["id"], r["text"]) for r in rows], [r["category"] for r in rows]


@pytest.fixture(scope="module")
def wordllama():
    from llmlabel.embed import load_embedder

    return load_embedder("wordllama")


def test_txt_labels_get_examples_keyphrases_and_template_descriptions(tmp_path, items, wordllama):
    f = tmp_path / "labels.txt"
    f.write_text("# my labels\ncard arrival\tWhen will my new card arrive\n\nchange PIN\nage limit: How old "
                 "one must be\n")
    res = taxonomy_from_labels(f, items[0], embedder=wordllama)
    tax = res.taxonomy
    assert tax.ids() == ["card_arrival", "change_pin", "age_limit"] and not tax.multi_label
    assert tax.get("card_arrival").description == "When will my new card arrive"
    assert tax.get("age_limit").description == "How old one must be"
    assert tax.get("change_pin").description.startswith("Items about change PIN")  # template sentence
    gold = dict(zip([i for i, _ in items[0]], items[1]))
    for lab in tax.labels:
        assert len(lab.examples) == 3 and lab.keyphrases
        # the nearest items really are about the label: mostly the planted category
        assert sum(gold[e.id] == lab.id for e in lab.examples) >= 2, (lab.id, lab.examples)
    hit = sum(a == gold[i] for i, a in zip(res.ids, res.assignments)) / len(res.ids)
    assert hit > 0.6
    assert abs(sum(lab.share for lab in tax.labels) - 1.0) < 1e-3


def test_yaml_tree_gives_parents_and_stable_ids(tmp_path, items, wordllama):
    f = tmp_path / "labels.yaml"
    f.write_text("card:\n  description: Card matters\n  children:\n    - card arrival\n"
                 "    - name: change PIN\n      description: New PIN\n"
                 "age limit: How old one must be\n")
    a = taxonomy_from_labels(f, items[0], embedder=wordllama, multi_label=True).taxonomy
    assert [(lab.id, lab.parent) for lab in a.labels] == [
        ("group_card", None), ("card_arrival", "group_card"), ("change_pin", "group_card"), ("age_limit", None)]
    assert [lab.id for lab in a.leaves()] == ["card_arrival", "change_pin", "age_limit"]
    assert a.multi_label and all(lab.share is None for lab in a.labels)  # no single-label share when multi
    assert a.get("group_card").examples == [] and a.get("group_card").description == "Card matters"
    # ids are slugs of the names: another corpus and other descriptions keep them
    f.write_text("card: [card arrival, change PIN]\nage limit:\n")
    b = taxonomy_from_labels(f, [t for _, t in items[0][:20]], embedder=wordllama).taxonomy
    assert b.ids() == a.ids() and b.get("group_card").description == "Groups card arrival, change PIN."
    # GoEmotions-style JSON mapping parent -> children, and a list of names
    j = tmp_path / "ekman.json"
    j.write_text(json.dumps({"joy": ["joy", "amusement"], "anger": ["anger"]}))
    t = taxonomy_from_labels(j).taxonomy
    assert t.ids() == ["group_joy", "joy", "amusement", "group_anger", "anger"]
    assert [lab.name for lab in t.leaves()] == ["joy", "amusement", "anger"]
    (tmp_path / "l.yaml").write_text("- a\n- b: the b label\n")
    assert [(k.name, k.description) for k in read_label_file(tmp_path / "l.yaml")] == [("a", ""),
                                                                                         ("b", "the b label")]


@pytest.mark.parametrize("text,msg,line", [
    ("a\nb\na\n", "listed twice (also line 1)", 3),
    ("x:\n  - a\n  - b:\n      children: [c]\n", "nested two levels deep", 3),
    ("x:\n  - a\n  - name: b\n    colour: red\n", "unknown field 'colour'", 3),
    ("- A b\n- a-b\n", "get the same id 'a_b'", 2),
    ("- other\n", "reserved", 1),
])
def test_bad_label_files_name_the_line(tmp_path, text, msg, line):
    f = tmp_path / ("labels.txt" if "\n-" not in "\n" + text and ":" not in text else "labels.yaml")
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        taxonomy_from_labels(f)
    assert msg in str(e.value) and e.value.line == line and str(f) in str(e.value)


def test_cli_labels_multi_label_and_bad_file(tmp_path, items, capsys):
    from llmlabel.cli import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items[0]))
    (tmp_path / "labels.txt").write_text("\n".join(TOPICS.values()) + "\n")
    main(["taxonomy", str(corpus), "--labels", str(tmp_path / "labels.txt"), "--multi-label", "-e", "wordllama",
          "-o", str(tmp_path / "t.yaml"), "--quiet", "--id-field", "id"])
    tax = load_taxonomy(tmp_path / "t.yaml")
    assert tax.multi_label and tax.ids() == list(TOPICS) and tax.made_with["source"] == "labels"
    assert (tmp_path / "t.assignments.jsonl").exists()
    (tmp_path / "bad.yaml").write_text("- a\n- [b]\n")
    with pytest.raises(SystemExit) as e:
        main(["taxonomy", str(corpus), "--labels", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "u.yaml"),
              "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "bad.yaml:2:" in err and not (tmp_path / "u.yaml").exists()
    with pytest.raises(SystemExit) as e:  # induction-only options are refused, not silently ignored
        main(["taxonomy", str(corpus), "--labels", str(tmp_path / "labels.txt"), "--max-labels", "5", "--levels", "2",
              "-o", str(tmp_path / "v.yaml"), "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--max-labels, --levels do not apply with --labels" in err and not (tmp_path / "v.yaml").exists()


def test_llm_writes_missing_descriptions_and_is_cached(tiny_qwen2, tmp_path, items, wordllama):
    from llmlabel.llm import load_engine, usage_log

    f = tmp_path / "labels.txt"
    f.write_text("card arrival\tWhen will my new card arrive\nchange PIN\n")
    runs = []
    for _ in range(2):
        usage_log.reset()
        eng = load_engine(f"hf:{tiny_qwen2}", cache=tmp_path / "cache.sqlite")
        res = taxonomy_from_labels(f, items[0][:30], model=eng, embedder=wordllama)
        runs.append((res.taxonomy, usage_log.as_dict()["taxonomy"]))
    (t1, u1), (t2, u2) = runs
    assert u1["requests"] == 1 and u2["requests"] == 0  # one leaf lacked a description; then the cache
    assert t1.get("card_arrival").description == "When will my new card arrive"  # the user's text is kept
    d = t1.get("change_pin").description
    assert d and d.isprintable() and d == t2.get("change_pin").description
    assert t1.made_with["engine"].startswith("hf:") and "taxonomy_describe_label" in t1.made_with["prompt_hashes"]
