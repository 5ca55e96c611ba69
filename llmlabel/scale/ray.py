"""``--backend ray``: label, predict and taxonomy assignment on Ray Data, on one machine or a cluster.

The driver (the process running ``llmlabel``) validates the settings, reads nothing but the file's schema,
and writes the outputs with the same writers as the local path; Ray Data reads the corpus, and actor pools
run the models:

- ``read_json(lines=True)`` / ``read_csv`` / ``read_parquet``, then one stateless task per block that applies
  the local reader's rules (ids and texts as strings, empty texts skipped, rows already in finished shards
  dropped). Ray has no global row position, so an id column is required.
- cheap LFs (keyword, regex, embedding, python) in ``map_batches`` over an actor pool of ``num_workers``
  CPU actors, each building the LFs from the taxonomy and lfs.yaml given to its constructor and loading
  its embedder once;
- prompted LFs in a second actor pool with ``num_gpus=gpus_per_worker``: each actor holds one llmlabel
  engine (vllm on GPUs, hf on CPUs) and a node-local answer cache, so ``choose()`` keeps its token-id prompts
  and exact prefix scoring. ``ray.data.llm`` processors are not used for this: they take text prompts and
  return generated text (or one log-prob per generated token), which can neither score every label's full
  token sequence nor reuse the prompt's KV cache across the choices.
- the driver consumes the results in input order (``preserve_order``) and writes the votes folder shard by
  shard; a rerun skips the ids of finished shards before any model runs. A worker that dies is restarted
  and its batch retried by Ray (actor pools default to ``max_restarts=-1``, ``max_task_retries=-1``); since
  only the driver writes, a retried batch is never written twice.

The label model stays on the driver: the votes of n items x m LFs are an int16 matrix of 2·n·m bytes
(10^8 items x 20 LFs = 4 GB, plus 4·k bytes per item and probability LF for the ``p:`` columns if kept);
past that, fit it on a sample and predict distributed.
"""

from __future__ import annotations

from .label import label_corpus_ray
from .predict import predict_rows_ray
from .runtime import CONNECT_TIMEOUT, Source, connect
from .taxonomy import assign_taxonomy_ray

__all__ = ["connect", "Source", "label_corpus_ray", "predict_rows_ray", "assign_taxonomy_ray", "CONNECT_TIMEOUT"]
