"""The hand-edited taxonomy file: round trip, and errors that name file, line and field."""

from __future__ import annotations

import pytest

from llmlabel.errors import ConfigError
from llmlabel.artifacts.taxonomy import LabelDef, Taxonomy, load_taxonomy, save_taxonomy, slugify

GOOD = """\
instruction: route customer messages
labels:
  - id: card_arrival
    name: Card arrival
    description: When will my new card come?
    examples:
      - {id: 17, text: "my card has not arrived"}
    keyphrases: [card, arrive]
    share: 0.2
  - id: lost_card
    name: Lost card
    parent: cards
  - id: cards
    name: Cards
"""


def test_round_trip_keeps_everything(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(GOOD)
    tax = load_taxonomy(p)
    assert tax.ids() == ["card_arrival", "lost_card", "cards"]
    assert tax.labels[0].examples[0].id == "17"  # numeric ids become strings
    assert [lab.id for lab in tax.leaves()] == ["card_arrival", "lost_card"]
    save_taxonomy(tax, tmp_path / "u.yaml")
    again = load_taxonomy(tmp_path / "u.yaml")
    assert again == tax


def _err(tmp_path, text: str) -> ConfigError:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_taxonomy(p)
    assert "bad.yaml" in e.value.one_line()
    return e.value


def test_duplicate_id_names_field_and_line(tmp_path):
    e = _err(tmp_path, GOOD.replace("id: lost_card", "id: card_arrival"))
    assert e.field == "labels[1].id"
    assert e.line == 10  # the line of the second 'id: card_arrival'
    assert "duplicate" in e.message


def test_missing_name_names_field(tmp_path):
    e = _err(tmp_path, GOOD.replace("    name: Lost card\n", ""))
    assert e.field == "labels[1].name" and "missing" in e.message
    assert e.line == 10


def test_unknown_field_parent_and_yaml_syntax(tmp_path):
    assert _err(tmp_path, GOOD.replace("keyphrases:", "keyphrase:")).field == "labels[0].keyphrase"
    assert _err(tmp_path, GOOD.replace("parent: cards", "parent: nope")).field == "labels[1].parent"
    e = _err(tmp_path, GOOD.replace("  - id: cards", "  - id: [cards"))
    assert e.line is not None and "YAML" in e.message
    assert _err(tmp_path, "- just a list\n").field == "labels"
    assert _err(tmp_path, GOOD.replace("id: cards", "id: other")).field == "labels[2].id"  # reserved


def test_slugify_and_model_checks():
    assert slugify("Card arrival / delivery!") == "card_arrival_delivery"
    assert slugify("¿¿") == "label"
    with pytest.raises(ValueError):
        LabelDef(id="has space", name="x")
    with pytest.raises(ValueError):
        Taxonomy(labels=[])
