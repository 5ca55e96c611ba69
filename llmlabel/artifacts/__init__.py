"""The files that pass between stages, one module per file, each owning its writer, reader, format version
and validation. Stage packages import these modules, never each other.

- :mod:`.taxonomy` — ``taxonomy.yaml`` (labels; leaves are the classes, parents only group them) and the run's
  ``<stem>.assignments.jsonl``
- :mod:`.votes` (+ :mod:`.matrix`, :mod:`.wrench`) — the votes folder, ``LabelMatrix``, ``ABSTAIN``,
  WRENCH/Snorkel import
- :mod:`.labeled` — ``labeled.parquet`` (labels, confidence, per-class probabilities, provenance)
- :mod:`.model` — the student folder's ``metrics.json`` (what training really used)
- :mod:`.predictions` — ``predict``/``xmc`` JSONL rows + sidecar metadata
- :mod:`.gold` — gold / dev label files; :mod:`.crossfit` — the cross-fitting sidecars of a run with gold
- :mod:`.review` — the review queue (``*.review.jsonl``), ``review_state.json``, ``review_rounds.json``
- :mod:`.cascade` — ``<predictions>.cascade.json`` (the cascade's dev-set curve and chosen point)
- :mod:`.pipeline_state` — ``llmlabel run``'s ``.pipeline/<stage>.json`` records

Nothing here imports a stage package; this package may import ``io``, ``errors`` and the YAML helpers.
"""
