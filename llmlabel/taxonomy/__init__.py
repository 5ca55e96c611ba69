"""Taxonomy induction: raw texts -> a label set a person can edit (``taxonomy.yaml``) + per-item assignments.

>>> from llmlabel.taxonomy import induce_taxonomy
>>> res = induce_taxonomy("corpus.jsonl", max_labels=20)      # doctest: +SKIP
>>> [lab.name for lab in res.taxonomy.labels][:2]              # doctest: +SKIP
['card / arrive / delivered', 'exchange rate / currency']

No LLM (default): embed, spectral-cluster the k-NN graph, name clusters by c-TF-IDF key phrases, pick
representative examples, merge near-duplicates. With ``model=SPEC``: the LLM names/merges the clusters
(``mode="seeded"``) or runs the TnT-LLM generate -> update -> review loop (``mode="tnt"``).
"""

from .evaluate import evaluate_assignments
from .known import KnownLabel, read_label_file, taxonomy_from_labels
from .induce import DEFAULT_TAXONOMY_EMBEDDER, TaxonomyResult, induce_taxonomy, load_items
from .report import render_markdown, write_outputs

__all__ = ["induce_taxonomy", "TaxonomyResult", "load_items", "evaluate_assignments", "write_outputs",
           "render_markdown", "DEFAULT_TAXONOMY_EMBEDDER", "taxonomy_from_labels", "read_label_file", "KnownLabel"]
