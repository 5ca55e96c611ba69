"""The engine protocol every LLM backend implements, and the caching/usage/retry logic they share.

An engine subclass only implements two hooks on a batch of prompts that missed the cache:
``_generate_batch`` and ``_choose_batch``. Everything else (batching, the cache, usage accounting,
JSON-schema validation with retries, progress) lives here once.

>>> from llmlabel.llm import load_engine
>>> llm = load_engine("hf:/path/to/model")                       # doctest: +SKIP
>>> logp = llm.choose(["Is 'refund please' a complaint?"], ["yes", "no"])   # doctest: +SKIP
>>> logp.shape                                                   # doctest: +SKIP
(1, 2)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np

from ..errors import ConfigError, OutputParseError
from ..progress import Ticker
from .cache import Cache, cache_key
from .usage import Usage, usage_log

#: A prompt is plain text, or a list of chat messages ``{"role": ..., "content": ...}``.
Prompt = Union[str, Sequence[dict]]


@dataclass
class Completion:
    """One generated answer."""

    text: str
    parsed: Any = None  # the validated object when a JSON schema was given (pydantic instance or dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    cached: bool = False
    error: str | None = None  # set (instead of raising) when on_error="keep" and the reply never validated

    def to_cache(self) -> dict:
        d = asdict(self)
        for k in ("parsed", "cached", "error"):
            d.pop(k)
        return d


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()


def schema_of(json_schema: Any) -> tuple[dict | None, Callable[[Any], Any] | None]:
    """Normalise a pydantic model class or a JSON-schema dict to (schema dict, validator)."""
    if json_schema is None:
        return None, None
    if isinstance(json_schema, dict):
        schema = json_schema

        def validate(obj: Any) -> Any:
            try:
                import jsonschema  # optional; without it we only check that the reply is JSON
            except ImportError:
                return obj
            jsonschema.validate(obj, schema)
            return obj

        return schema, validate
    if hasattr(json_schema, "model_json_schema") and hasattr(json_schema, "model_validate"):
        return json_schema.model_json_schema(), json_schema.model_validate
    raise ConfigError(f"json_schema must be a pydantic model class or a dict, not {type(json_schema).__name__}")


def parse_json_reply(text: str, validate: Callable[[Any], Any]) -> Any:
    """Parse the first JSON value in ``text`` (models like to add prose or code fences) and validate it."""
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`")
        s = s[s.find("\n") + 1 :] if "\n" in s else s
    start = min((i for i in (s.find("{"), s.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON object in the reply")
    # strict=False: models put raw newlines/tabs inside strings; the content is still what they meant.
    obj, _ = json.JSONDecoder(strict=False).raw_decode(s[start:])
    return validate(obj)


def normalize_prompt(p: Prompt) -> str | list[dict]:
    if isinstance(p, str):
        return p
    try:
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in p]
    except (TypeError, KeyError) as e:
        raise ConfigError("a prompt must be a string or a list of {'role', 'content'} messages") from e


class LLM:
    """Base class of the engines. Use :func:`llmlabel.llm.load_engine` to get one from a spec string.

    Parameters shared by every engine:
      cache: a :class:`Cache`, a path, ``None`` for the default file, or ``False`` for no cache.
      batch_size: prompts sent to the model at once (the cache is written after each batch).
      chat: apply the model's chat template to string prompts (``None``: when the model has one).
    """

    kind: str = "base"

    def __init__(self, model: str, *, cache: Cache | str | bool | None = None, batch_size: int = 16,
                 chat: bool | None = None) -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.chat = chat
        if cache is False:
            self.cache: Cache | None = None
        elif isinstance(cache, Cache):
            self.cache = cache
        else:
            self.cache = Cache(None if cache in (None, True) else cache)
        self.calls = 0  # prompts that reached the model (for tests and usage)
        self._emit: Callable[[int, Any], None] | None = None  # set by _run_cached around each batch

    # ---- identity -------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """What identifies the weights in cache keys (name, or path plus a fingerprint of its files)."""
        return self.model

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.model}"

    def _key(self, op: str, prompt: Any, **extra: Any) -> str:
        return cache_key({"engine": self.kind, "model": self.model_id, "op": op, "prompt": prompt,
                          "chat": self.chat, **extra})

    # ---- public API -----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int = 256, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int = 0, stop: Sequence[str] = (), json_schema: Any = None,
                 retries: int = 2, on_error: str = "raise", progress: bool | Callable[[int], None] = False,
                 ) -> list[Completion]:
        """Generate one completion per prompt.

        With ``json_schema`` (a pydantic model class or a JSON-schema dict) the engine constrains decoding
        where it can, and every reply is parsed and validated; a reply that fails is retried ``retries``
        times with a new seed, then raises :class:`OutputParseError` (or, with ``on_error="keep"``, is
        returned with ``parsed=None`` and ``error`` set).
        """
        if on_error not in ("raise", "keep"):
            raise ConfigError("on_error must be 'raise' or 'keep'")
        prompts = [normalize_prompt(p) for p in prompts]
        schema, validate = schema_of(json_schema)
        params = SamplingParams(int(max_tokens), float(temperature), float(top_p), int(seed), tuple(stop))
        out = self._cached_generate(prompts, params, schema, progress)
        if validate is None:
            return out
        todo = list(range(len(out)))
        for attempt in range(retries + 1):
            failed = []
            for i in todo:
                try:
                    out[i].parsed = parse_json_reply(out[i].text, validate)
                    out[i].error = None
                except Exception as e:  # noqa: BLE001 - any parse/validation failure means "retry"
                    out[i].error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    failed.append(i)
            todo = failed
            if not todo or attempt == retries:
                break
            # Same prompt, new seed, some temperature: a deterministic retry would repeat the same reply.
            retry_params = SamplingParams(params.max_tokens, max(params.temperature, 0.7), params.top_p,
                                          params.seed + 1000 * (attempt + 1), params.stop)
            usage_log.get().retries += len(todo)
            again = self._cached_generate([prompts[i] for i in todo], retry_params, schema, False)
            for i, c in zip(todo, again):
                out[i] = c
        if todo:
            usage_log.get().errors += len(todo)
            if on_error == "raise":
                i = todo[0]
                raise OutputParseError(
                    f"model reply did not match the JSON schema after {retries + 1} tries ({out[i].error}); "
                    f"raw reply: {out[i].text[:200]!r}",
                    raw=out[i].text, hint="raise max_tokens, simplify the schema, or use on_error='keep'")
        return out

    def choose(self, prompts: Sequence[Prompt], choices: Sequence[str], *,
               progress: bool | Callable[[int], None] = False) -> np.ndarray:
        """Log-probability of each choice as the reply to each prompt: an (n_prompts, n_choices) array.

        The answer is always one of ``choices`` (``argmax`` of a row), whatever the prompt says. Rows are
        sequence log-probabilities, not normalised over the choices; ``scipy.special.softmax(row)`` gives
        the class distribution. Engines that cannot score (some HTTP servers) return 0 for the chosen
        choice and ``-inf`` for the rest.
        """
        choices = [str(c) for c in choices]
        if not choices:
            raise ConfigError("choose() needs at least one choice")
        if len(set(choices)) != len(choices):
            raise ConfigError("choose() got duplicate choices", hint="deduplicate the label names")
        prompts = [normalize_prompt(p) for p in prompts]
        keys = [self._key("choose", p, choices=choices) for p in prompts]
        res = np.full((len(prompts), len(choices)), np.nan, dtype=np.float64)

        def to_cache(row) -> list:
            return [None if not np.isfinite(x) else float(x) for x in np.asarray(row, dtype=np.float64)]

        def run(idx: list[int]) -> list[Any]:
            arr = np.asarray(self._choose_batch([prompts[i] for i in idx], choices), dtype=np.float64)
            res[idx] = arr
            return [to_cache(row) for row in arr]

        cached = self._run_cached(keys, run, progress, sizes=[_size(p) for p in prompts], to_cache=to_cache)
        for i, v in cached.items():
            res[i] = [(-np.inf if x is None else x) for x in v]
        return res

    # ---- shared machinery -----------------------------------------------------------------------
    def _cached_generate(self, prompts: list, params: SamplingParams, schema: dict | None,
                         progress) -> list[Completion]:
        keys = [self._key("generate", p, params=asdict(params), schema=schema) for p in prompts]
        out: list[Completion | None] = [None] * len(prompts)

        def run(idx: list[int]) -> list[Any]:
            comps = self._generate_batch([prompts[i] for i in idx], params, schema)
            self._count_tokens(comps)
            for i, c in zip(idx, comps):
                out[i] = c
            return [c.to_cache() for c in comps]

        hits = self._run_cached(keys, run, progress, sizes=[_size(p) for p in prompts],
                                to_cache=lambda c: c.to_cache())
        for i, v in hits.items():
            out[i] = Completion(**v, cached=True)
        return out  # type: ignore[return-value]

    def _run_cached(self, keys: list[str], run: Callable[[list[int]], list[Any]], progress,
                    sizes: list[int] | None = None, to_cache: Callable[[Any], Any] | None = None) -> dict[int, Any]:
        """Serve what the cache has; run the rest in batches, caching after each. Returns the cache hits.

        An engine that gets its answers one by one (HTTP) reports each as it arrives (:meth:`_answered`), and it
        is stored at once (``to_cache`` makes it storable), so a kill mid-batch loses no answer that came back.
        No answer (an empty reply, a ``choose`` row without a finite score) is never stored: the rerun asks again.

        With ``sizes`` (prompt lengths) the misses run shortest first, so each batch holds prompts of similar
        length: padded batches waste far less compute (43% of the tokens were padding on WRENCH youtube
        in file order, 6% sorted). Results go back to their original positions.
        """
        u: Usage = usage_log.get()
        hits: dict[int, Any] = {}
        if self.cache is not None:
            found = self.cache.get_many(set(keys))
            hits = {i: found[k] for i, k in enumerate(keys) if k in found}
        u.cache_hits += len(hits)
        todo = [i for i in range(len(keys)) if i not in hits]
        # Identical prompts in one call are computed once.
        first: dict[str, int] = {}
        dupes: dict[int, int] = {}
        for i in todo:
            if keys[i] in first:
                dupes[i] = first[keys[i]]
            else:
                first[keys[i]] = i
        todo = list(first.values())
        if sizes is not None:
            todo.sort(key=sizes.__getitem__)  # stable: equal lengths keep their order
        u.cache_misses += len(todo)
        computed: dict[int, Any] = {}
        with Ticker(progress, len(keys), self.spec) as tick:
            tick(len(hits))
            for b in range(0, len(todo), self.batch_size):
                idx = todo[b : b + self.batch_size]
                stored: set[int] = set()

                def emit(j: int, answer: Any, idx=idx, stored=stored) -> None:
                    v = to_cache(answer) if to_cache is not None else answer
                    if self.cache is not None and _storable(v):
                        self.cache.put_many({keys[idx[j]]: v})
                        stored.add(idx[j])

                t0 = time.perf_counter()
                self._emit = emit
                try:
                    vals = run(idx)
                finally:
                    self._emit = None
                u.model_seconds += time.perf_counter() - t0
                self.calls += len(idx)
                u.requests += len(idx)
                computed.update(zip(idx, vals))
                if self.cache is not None:
                    self.cache.put_many({keys[i]: v for i, v in zip(idx, vals) if i not in stored and _storable(v)})
                tick(len(idx))
            for i, j in dupes.items():
                hits[i] = computed[j]
            tick(len(dupes))
        return hits

    def _answered(self, j: int, answer: Any) -> None:
        """For engines: the answer to the ``j``-th prompt of the batch in flight has arrived (a ``choose`` row or a
        :class:`Completion`); it goes to the cache now rather than after the whole batch."""
        if self._emit is not None:
            self._emit(j, answer)

    def _count_tokens(self, comps: list[Completion]) -> None:
        u = usage_log.get()
        u.prompt_tokens += sum(c.prompt_tokens for c in comps)
        u.completion_tokens += sum(c.completion_tokens for c in comps)

    # ---- engine hooks ---------------------------------------------------------------------------
    def _generate_batch(self, prompts: list, params: SamplingParams, schema: dict | None) -> list[Completion]:
        raise NotImplementedError

    def _choose_batch(self, prompts: list, choices: list[str]) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Free the model and connections (engines also free them when garbage-collected)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


def _size(prompt: Any) -> int:
    """Characters in a prompt (a string or chat messages): a cheap proxy for its token count."""
    if isinstance(prompt, str):
        return len(prompt)
    return sum(len(str(m.get("content", ""))) if isinstance(m, dict) else len(str(m)) for m in prompt)


def _storable(value: Any) -> bool:
    """False for no answer: a ``choose`` row without one finite score, or an empty generation."""
    if isinstance(value, list):
        return any(x is not None for x in value)
    if isinstance(value, dict):
        return bool(value.get("text"))
    return value is not None
