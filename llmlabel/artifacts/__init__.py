"""The files that pass between stages, one module per file, each owning its writer, reader, format version
and validation. Stage packages import these modules, never each other.

- :mod:`.taxonomy` — ``taxonomy.yaml`` (labels; leaves are the classes, parents only group them)
- :mod:`.votes` (+ :mod:`.matrix`, :mod:`.wrench`) — the votes folder, ``LabelMatrix``, ``ABSTAIN``,
  WRENCH/Snorkel import
- :mod:`.labeled` — ``labeled.parquet`` (labels, confidence, per-class probabilities, provenance)
- :mod:`.model` — the student folder's ``metrics.json`` (what training really used)
- :mod:`.predictions` — ``predict``/``xmc`` JSONL rows + sidecar metadata

Nothing here imports a stage package; this package may import ``io``, ``errors`` and the YAML helpers.
"""
