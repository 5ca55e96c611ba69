"""OpenAI-compatible HTTP engine: ``vllm serve``, llama.cpp server, llama-cpp-python, ollama, TGI, hosted APIs.

The engine owns what is asked: the request bodies (``/chat/completions`` for chat prompts, ``/completions`` for
raw ones; sampling parameters; ``response_format`` for JSON, falling back strict -> loose -> ``json_object`` ->
none for servers that refuse it, remembering what works) and the server's identity in cache keys.
:mod:`llmlabel.llm.openai_transport` sends the requests (bounded concurrency, retries with backoff, the API key
kept secret) and :mod:`llmlabel.llm.openai_choose` scores ``choose`` from the server's log-probs.

>>> llm = OpenAIEngine("http://127.0.0.1:8000/v1", "qwen2.5-7b")                 # doctest: +SKIP
>>> llm.choose(["Sentiment of 'great film':"], [" positive", " negative"])       # doctest: +SKIP
array([[-0.12, -2.18]])
"""

from __future__ import annotations

import os
import random
import re

from ..errors import ConfigError
from .base import LLM, Completion, SamplingParams
from .openai_choose import OpenAIChoose
from .openai_transport import HTTPFail, OpenAITransport, Secret, env_number, safe_url
from .replies import reply_text, token_counts
from .usage import usage_log

_SCHEMA_MODES = ("strict", "loose", "json_object", None)


class OpenAIEngine(OpenAITransport, OpenAIChoose, LLM):
    """Engine for any server that speaks the OpenAI ``/v1`` API.

    Args:
      base_url: e.g. ``http://127.0.0.1:8000/v1``.
      model: the served model name; ``None`` takes the first one the server's ``/models`` lists.
      api_key: sent as a Bearer token; default ``$OPENAI_API_KEY``; many local servers need none.
      timeout: seconds for one request; max_retries: retries after the first try (defaults: 60 and 4, or
        ``$LLMLABEL_OPENAI_TIMEOUT`` / ``$LLMLABEL_OPENAI_RETRIES``, so a command-line run can set them).
      concurrency: requests in flight at once. backoff/max_backoff: retry delays (seconds).
      chat: ``/chat/completions`` (default) or, with ``chat=False``, raw prompts to ``/completions``.
      echo: score ``choose`` from echoed prompt log-probs (``None``: when the server can, for ``chat=False``).
      top_logprobs: alternatives asked per token when ``choose`` scores from a generation.
      extra_body: extra JSON fields sent with every request (server-specific options).
    """

    kind = "openai"

    def __init__(self, base_url: str, model: str | None = None, *, api_key: str | None = None,
                 timeout: float | None = None, max_retries: int | None = None, concurrency: int = 8, chat: bool | None = None,
                 backoff: float = 0.5, max_backoff: float = 30.0, echo: bool | None = None,
                 top_logprobs: int = 20, extra_body: dict | None = None, **kw) -> None:
        url = str(base_url).strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"bad server URL {safe_url(url)!r}", hint="e.g. http://127.0.0.1:8000/v1")
        timeout = env_number("LLMLABEL_OPENAI_TIMEOUT", float, 60.0) if timeout is None else timeout
        max_retries = env_number("LLMLABEL_OPENAI_RETRIES", int, 4) if max_retries is None else max_retries
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ConfigError("need concurrency >= 1, max_retries >= 0 and timeout > 0")
        kw.setdefault("batch_size", max(16, 4 * concurrency))  # keep `concurrency` requests busy
        super().__init__(model or "", chat=True if chat is None else bool(chat), **kw)
        self.base_url, self.shown_url = url, safe_url(url)
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        self._api_key = Secret(key)
        self.timeout, self.max_retries, self.concurrency = float(timeout), int(max_retries), int(concurrency)
        self.backoff, self.max_backoff, self.top_logprobs = float(backoff), float(max_backoff), int(top_logprobs)
        self.extra_body = dict(extra_body or {})
        self._rng = random.Random()
        # Server capabilities, learnt on first use.
        self._echo = self._echo_opt = echo  # /completions echoes prompt log-probs
        self._echo_lists: bool | None = None  # /completions takes a list of prompts
        self._echo_checked = False  # echoed log-probs agree with generated ones (see _echo_is_sound)
        self._constraint = "choice"
        self._schema_mode: str | None = "strict"
        self._probed_choose = self._probed_schema = False
        if not model:
            self.model = self._first_model()

    # ---- identity -------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return f"{self.shown_url}#{self.model}"

    @property
    def spec(self) -> str:
        return f"openai:{self.shown_url}#{self.model}"

    def _key(self, op: str, prompt, **extra) -> str:
        if op == "choose" and self._echo_opt is not None:  # a forced strategy gives other numbers
            extra["echo"] = self._echo_opt
        return super()._key(op, prompt, **extra)

    # ---- generate -------------------------------------------------------------------------------
    def _is_chat(self, prompt) -> bool:
        return bool(self.chat) or not isinstance(prompt, str)

    def _payload(self, prompt, **fields) -> tuple[str, dict]:
        body = {"model": self.model, **self.extra_body, **fields}
        if self._is_chat(prompt):
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            return "/chat/completions", body
        body["prompt"] = prompt
        return "/completions", body

    def _generate_batch(self, prompts: list, params: SamplingParams, schema: dict | None) -> list[Completion]:
        u = usage_log.get()

        async def go(client, sem):
            one = lambda p: self._generate_one(client, sem, p, params, schema, u)  # noqa: E731
            first = []
            if schema is not None and not self._probed_schema:
                first = [await one(prompts[0])]  # learn whether response_format works before the rest
                self._answered(0, first[0])
                self._probed_schema = True
            return first + await self._each(one, prompts, len(first))

        return self._run(go)

    async def _generate_one(self, client, sem, prompt, params: SamplingParams, schema, u) -> Completion:
        path, body = self._payload(prompt, max_tokens=params.max_tokens, temperature=params.temperature,
                                   top_p=params.top_p, seed=params.seed)
        if params.stop:
            body["stop"] = list(params.stop)
        modes = _SCHEMA_MODES[_SCHEMA_MODES.index(self._schema_mode):] if schema is not None else (None,)
        for mode in modes:
            req = dict(body)
            if mode == "json_object":  # llama-cpp-python: json_schema is refused, json_object takes a schema
                req["response_format"] = {"type": "json_object", "schema": schema}
            elif mode is not None:
                req["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": _schema_name(schema), "schema": schema, "strict": mode == "strict"}}
            try:
                data = await self._request(client, sem, path, req, u)
            except HTTPFail as e:
                # A 400 with response_format may just mean the server cannot do it: try less, and
                # remember only what then works (a 400 for another reason fails every mode).
                if mode is not None and e.status in (400, 422):
                    continue
                raise self._fail(e) from None
            if schema is not None:
                self._schema_mode = mode
            return _completion(data)
        raise AssertionError("unreachable: the last mode re-raises")


def _schema_name(schema: dict) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
    return name or "output"


def _completion(data: dict) -> Completion:
    ch = data["choices"][0]
    p, c = token_counts(data)
    finish = ch.get("finish_reason")
    return Completion(text=reply_text(ch), prompt_tokens=p, completion_tokens=c,
                      finish_reason=finish if isinstance(finish, str) else None)
