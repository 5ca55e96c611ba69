"""OpenAI-compatible HTTP engine: ``vllm serve``, llama.cpp server, llama-cpp-python, ollama, TGI, hosted APIs.

Requests run on asyncio + httpx with at most ``concurrency`` in flight, each under a hard ``timeout``.
429, 5xx, time-outs, connection errors and malformed replies are retried with exponential backoff and
jitter (``Retry-After`` honoured), then raise a one-line :class:`~llmlabel.errors.ServerError`; any
other 4xx fails at once with the server's own message. The API key (``api_key`` or ``$OPENAI_API_KEY``)
is only ever sent as an ``Authorization: Bearer`` header: it is kept out of cache keys, ``repr``, usage,
metadata and error messages (a server that echoes it back gets it replaced by ``***``).

How ``choose`` scores the choices (picked on the first call and remembered by the engine):

1. ``chat=False`` and a server that echoes prompt log-probs (vLLM, llama-cpp-python): exact scoring.
   ``/completions`` gets ``[prompt, prompt+choice_1, ...]`` with ``echo=true, logprobs=1, max_tokens=1``
   (one request per text if the server refuses lists). A choice scores the sum of the log-probs of the
   tokens where ``prompt+choice`` stops matching the bare prompt's tokens -- the number the hf engine
   computes. Every text starts with the same rendered prompt, so servers that reuse their prefix cache
   for prompt log-probs pay for it once; vLLM recomputes it, so this costs a prefill per choice
   (``echo=False`` uses 2. instead: one request per prompt, first-token exact only). Before trusting echo the
   engine checks once that an echoed token gets the log-prob the server generates it with; a server that
   fails (llama-cpp-python 0.3.36 shifts echoed log-probs by a token) is scored by 2.
2. Chat prompts, or servers that do not echo: one constrained generation with ``top_logprobs=20``.
   vLLM's ``structured_outputs: {"choice": [...]}`` is sent first; a server that rejects it (400) or
   ignores it (the reply is not a choice) gets a GBNF ``grammar`` (llama.cpp's server, llama-cpp-python),
   then ``response_format`` json_schema ``{"label": enum}`` from then on. (Several at once would be a 400
   on vLLM: it allows one kind of constraint per request.)
   :func:`~llmlabel.llm.replies.score_reply` maps the reply and its ``top_logprobs`` onto the choices:
   each choice scores the log-prob of the path to the token where it becomes the only choice consistent
   with the text; choices never seen get ``-inf``.
3. No log-probs in the reply: 0 for the chosen choice, ``-inf`` for the rest.

The answer is always one of the choices whatever the model says (an odd reply is mapped to the choice
it names, else the best-scoring one); an empty reply, or one that names and scores no choice, is no answer
(a row of ``-inf``, which LFs count as an error and abstain on); one odd reply never raises.

>>> llm = OpenAIEngine("http://127.0.0.1:8000/v1", "qwen2.5-7b")                 # doctest: +SKIP
>>> llm.choose(["Sentiment of 'great film':"], [" positive", " negative"])       # doctest: +SKIP
array([[-0.12, -2.18]])
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import json
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import ConfigError, EngineError, ServerError
from .base import LLM, Completion, SamplingParams
from .replies import (by_index, check_body, echo_prompt_tokens, reply_text, score_reply, steps_of,
                      token_counts)
from .usage import Usage, usage_log

_CONSTRAINTS = ("choice", "grammar", "enum", "plain")
_SCHEMA_MODES = ("strict", "loose", "json_object", None)


class _Secret(str):
    """A string whose repr never shows it (keeps the key out of debug output and tracebacks)."""

    def __repr__(self) -> str:
        return "'***'"


class _HTTPFail(Exception):
    """A 4xx other than 429: not worth retrying; callers may fall back (e.g. drop response_format)."""

    def __init__(self, status: int, message: str, path: str) -> None:
        super().__init__(message)
        self.status, self.message, self.path = status, message, path


def safe_url(url: str) -> str:
    """The URL without user:password@ or query string (where keys sometimes hide)."""
    p = urlsplit(url)
    host = p.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{p.port}" if p.port else "")
    return urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))


def _env_number(name: str, kind: type, default):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"${name} must be a number, got {raw!r}", field=name) from None


class OpenAIEngine(LLM):
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
        timeout = _env_number("LLMLABEL_OPENAI_TIMEOUT", float, 60.0) if timeout is None else timeout
        max_retries = _env_number("LLMLABEL_OPENAI_RETRIES", int, 4) if max_retries is None else max_retries
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ConfigError("need concurrency >= 1, max_retries >= 0 and timeout > 0")
        kw.setdefault("batch_size", max(16, 4 * concurrency))  # keep `concurrency` requests busy
        super().__init__(model or "", chat=True if chat is None else bool(chat), **kw)
        self.base_url, self.shown_url = url, safe_url(url)
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        self._api_key = _Secret(key)
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

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    # ---- HTTP -----------------------------------------------------------------------------------
    def _run(self, make):
        """Run ``make(client, semaphore)`` to completion, from sync code or inside a running event loop."""
        import httpx

        async def main():
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            async with httpx.AsyncClient(headers=headers, timeout=self.timeout, limits=limits) as client:
                return await make(client, asyncio.Semaphore(self.concurrency))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(main())
        # asyncio.run refuses to nest (Jupyter): run our loop in a thread, keeping the usage stage.
        ctx = contextvars.copy_context()
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(ctx.run, asyncio.run, main()).result()

    async def _request(self, client, sem, path: str, payload: dict | None, u: Usage,
                       max_retries: int | None = None) -> dict:
        """POST ``payload`` (GET when None) with retries; returns the decoded reply."""
        import httpx

        url = self.base_url + path
        what = ""
        max_retries = self.max_retries if max_retries is None else max_retries
        for attempt in range(max_retries + 1):
            retry_after = None
            try:
                async with sem:
                    coro = client.get(url) if payload is None else client.post(url, json=payload)
                    r = await asyncio.wait_for(coro, self.timeout)
            except (asyncio.TimeoutError, httpx.TimeoutException):
                what = f"no reply within {self.timeout:g}s"
            except httpx.HTTPError as e:
                what = f"connection failed ({type(e).__name__})"
            else:
                msg = _server_message(r) if r.status_code >= 400 else ""
                if r.status_code >= 500 and _is_validation_error(msg):
                    # llama-cpp-python answers a request it cannot validate with a 500: a client error, not
                    # an outage, so no retries (and callers may try a simpler request, as for a 422)
                    raise _HTTPFail(422, self._redact(msg), path)
                if r.status_code in (408, 429) or r.status_code >= 500:
                    what = f"HTTP {r.status_code}" + (f" ({msg})" if msg else "")
                    retry_after = _retry_after(r.headers.get("retry-after"))
                elif r.status_code >= 400:
                    raise _HTTPFail(r.status_code, self._redact(msg), path)
                else:
                    try:
                        body = r.json()
                    except ValueError:
                        body, what = None, "malformed reply (not JSON)"
                    if body is not None:
                        what = check_body(body, "data" if payload is None else "choices")
                        if not what:
                            return body
            if attempt == max_retries:
                break
            delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + self._rng.random())
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
            u.retries += 1
            await asyncio.sleep(delay)
        u.errors += 1
        raise ServerError(f"{self.shown_url}{path}: {self._redact(what)} (gave up after "
                          f"{max_retries + 1} tries)",
                          hint="is the server up and not overloaded? raise timeout= or max_retries=")

    def _fail(self, e: _HTTPFail) -> EngineError:
        hint = {401: "check the API key ($OPENAI_API_KEY)", 403: "check the API key ($OPENAI_API_KEY)",
                404: "check the base URL (it usually ends in /v1) and the model name"}.get(e.status)
        return EngineError(f"{self.shown_url}{e.path}: HTTP {e.status}: {e.message or 'no message'}", hint=hint)

    def _first_model(self) -> str:
        async def go(client, sem):
            try:
                return await self._request(client, sem, "/models", None, usage_log.get())
            except _HTTPFail as e:
                raise self._fail(e) from None

        data = self._run(go)["data"]
        names = [m.get("id") for m in data if isinstance(m, dict) and m.get("id")]
        if not names:
            raise EngineError(f"the server at {self.shown_url} lists no models",
                              hint="name one in the spec: openai:BASE_URL#MODEL")
        return str(names[0])

    async def _each(self, one, prompts: list, start: int) -> list:
        """``one(prompt)`` for ``prompts[start:]`` concurrently, in prompt order; each answer is handed to the
        cache the moment it arrives (a kill mid-batch then costs only the requests still in flight). When one
        request fails for good, the others in flight still finish and are stored before the error is raised:
        an answer the server sent is never thrown away."""
        async def tagged(j: int):
            r = await one(prompts[j])
            self._answered(j, r)
            return r

        out = await asyncio.gather(*(tagged(j) for j in range(start, len(prompts))), return_exceptions=True)
        failed = next((r for r in out if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return list(out)

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
            except _HTTPFail as e:
                # A 400 with response_format may just mean the server cannot do it: try less, and
                # remember only what then works (a 400 for another reason fails every mode).
                if mode is not None and e.status in (400, 422):
                    continue
                raise self._fail(e) from None
            if schema is not None:
                self._schema_mode = mode
            return _completion(data)
        raise AssertionError("unreachable: the last mode re-raises")

    # ---- choose ---------------------------------------------------------------------------------
    def _choose_batch(self, prompts: list, choices: list[str]) -> np.ndarray:
        u = usage_log.get()

        async def go(client, sem):
            one = lambda p: self._choose_one(client, sem, p, choices, u)  # noqa: E731
            rows = []
            if not self._probed_choose:
                rows.append(await one(prompts[0]))  # learn the server's abilities once, not n times at once
                self._answered(0, rows[0])
                self._probed_choose = True
            rows += await self._each(one, prompts, len(rows))
            return np.array(rows, dtype=np.float64)

        return self._run(go)

    async def _choose_one(self, client, sem, prompt, choices: list[str], u: Usage) -> np.ndarray:
        if not self._is_chat(prompt) and self._echo is not False:
            row = await self._score_echo(client, sem, prompt, choices, u)
            if row is not None:
                return row
        return await self._choose_by_generation(client, sem, prompt, choices, u)

    async def _score_echo(self, client, sem, prompt: str, choices: list[str], u: Usage) -> np.ndarray | None:
        """Exact scores from echoed prompt log-probs; None where the server gives none (learnt once)."""
        try:
            sent = [prompt] + [prompt + c for c in choices]
            items = await self._echo_items(client, sem, sent, u)
        except _HTTPFail as e:
            if self._echo is None and e.status in (400, 422):
                self._echo = False  # e.g. a hosted API that refuses echo
                return None
            raise self._fail(e) from None
        seqs = [echo_prompt_tokens(it, t) for it, t in zip(items, sent)]
        if any(s is None or len(s[0]) < 1 for s in seqs[1:]):  # only the generated token came back
            if self._echo:
                raise ServerError(f"{self.shown_url}/completions: the reply has no echoed prompt log-probs",
                                  hint="pass echo=False to score choices from a generation")
            self._echo = False
            return None
        if not self._echo_checked:
            self._echo_checked = True
            if not await self._echo_is_sound(client, sem, prompt, seqs[0][0], u):
                if self._echo:
                    raise ServerError(f"{self.shown_url}/completions: echoed prompt log-probs disagree with the "
                                      "server's own generation log-probs (shifted by a token?)",
                                      hint="pass echo=False to score choices from a generation")
                self._echo = False
                return None
        self._echo = True
        base = seqs[0][0]
        row = np.full(len(choices), np.nan)
        for j, (toks, lps) in enumerate(seqs[1:]):
            # Where prompt+choice leaves the bare prompt's tokens (a token can straddle the boundary).
            k = next((i for i, (a, b) in enumerate(zip(base, toks)) if a != b), min(len(base), len(toks)))
            if k < len(toks) and all(x is not None for x in lps[k:]):
                row[j] = sum(lps[k:])
        # A choice token without a log-prob (a prompt of one token): score this prompt from a generation.
        return None if np.isnan(row).any() else row

    async def _echo_is_sound(self, client, sem, prompt: str, prompt_tokens: list[str], u: Usage) -> bool:
        """Whether the server's echoed log-probs are the ones it generates with: the greedy next token t of
        ``prompt`` must get the same log-prob when echoed at the end of ``prompt + t``. llama-cpp-python 0.3.36
        fails this (its echo pairs each token with the distribution after it) and then scores choices by
        generation instead. A token that re-tokenises differently (a partial UTF-8 byte, a merge across the
        boundary) makes the check inconclusive, which counts as sound."""
        try:
            data = await self._request(client, sem, "/completions", {
                "model": self.model, **self.extra_body, "prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                "logprobs": 5}, u)
            _count(u, data)
            steps = steps_of(data["choices"][0])
            # the likeliest next token that is whole text (not a partial UTF-8 byte), with its log-prob
            alts = sorted(({**steps[0][2], steps[0][0]: steps[0][1]} if steps else {}).items(), key=lambda a: -a[1])
            tok, lp = next(((t, x) for t, x in alts if t.strip() and "\ufffd" not in t), (None, 0.0))
            if tok is None:
                return True
            echoed = echo_prompt_tokens((await self._echo_items(client, sem, [prompt + tok], u))[0], prompt + tok)
        except _HTTPFail as e:
            raise self._fail(e) from None
        if echoed is None or echoed[0] != prompt_tokens + [tok] or echoed[1][-1] is None:
            return True
        return abs(echoed[1][-1] - lp) <= max(0.1, 0.1 * abs(lp))

    async def _echo_items(self, client, sem, texts: list[str], u: Usage) -> list[dict]:
        body = {"model": self.model, **self.extra_body, "echo": True, "logprobs": 1, "max_tokens": 1,
                "temperature": 0.0}
        if self._echo_lists is not False:
            probing = self._echo_lists is None
            try:
                # The first list request is a probe: no retries, and a 5xx means "no lists" too
                # (llama-cpp-python's server asserts a single prompt and answers a list with a 500).
                data = await self._request(client, sem, "/completions", {**body, "prompt": texts}, u,
                                           max_retries=0 if probing else None)
                items = by_index(data["choices"], len(texts))
            except _HTTPFail as e:
                if e.status not in (400, 422) or self._echo_lists:
                    raise
                items = None
            except ServerError:
                if not probing:
                    raise
                u.errors -= 1  # an expected refusal, not a failed request
                items = None
            self._echo_lists = items is not None
            if items is not None:
                _count(u, data)
                return items
        datas = await asyncio.gather(*(self._request(client, sem, "/completions", {**body, "prompt": t}, u)
                                       for t in texts))
        for d in datas:
            _count(u, d)
        return [d["choices"][0] for d in datas]

    async def _choose_by_generation(self, client, sem, prompt, choices: list[str], u: Usage) -> np.ndarray:
        longest = max(len(c.encode()) for c in choices)  # bytes bound tokens for byte-level tokenizers
        while True:
            mode = self._constraint
            extra: dict = {}
            if mode == "choice":
                extra["structured_outputs"] = {"choice": choices}
            elif mode == "grammar":  # llama.cpp's server and llama-cpp-python: a GBNF grammar
                extra["grammar"] = "root ::= " + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)
            elif mode == "enum":
                extra["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "label", "strict": True, "schema": {
                        "type": "object", "properties": {"label": {"type": "string", "enum": choices}},
                        "required": ["label"], "additionalProperties": False}}}
            max_tokens = min(256, longest + {"choice": 2, "grammar": 2, "enum": 16, "plain": 24}[mode])
            n_top = self.top_logprobs
            lp = {} if n_top <= 0 else dict(logprobs=True, top_logprobs=n_top) if self._is_chat(prompt) \
                else dict(logprobs=n_top)
            path, body = self._payload(prompt, max_tokens=max_tokens, temperature=0.0, seed=0, **lp, **extra)
            try:
                data = await self._request(client, sem, path, body, u)
            except _HTTPFail as e:
                if e.status in (400, 422) and "logprob" in e.message.lower() and n_top > 0:
                    self.top_logprobs = 5 if n_top > 5 else 0  # e.g. TGI allows 5, some servers none
                    continue
                if mode != "plain" and e.status in (400, 422):
                    self._advance(mode)
                    continue
                raise self._fail(e) from None
            _count(u, data)
            text = reply_text(data["choices"][0])
            if mode in ("choice", "grammar") and text.strip() and text.strip() not in {c.strip() for c in choices}:
                self._advance(mode)  # the server ignored the constraint (structured_outputs: not vLLM)
                continue
            # (an empty reply says nothing about the constraint: it is no answer, not a reason to drop it)
            return score_reply(text, steps_of(data["choices"][0]), choices)

    def _advance(self, mode: str) -> None:
        if self._constraint == mode:
            self._constraint = _CONSTRAINTS[_CONSTRAINTS.index(mode) + 1]


# ---- helpers --------------------------------------------------------------------------------------
def _server_message(r) -> str:
    try:
        body = r.json()
    except ValueError:
        return " ".join(r.text.split())[:300]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            err = err.get("message") or err.get("detail") or err.get("msg") or ""
        if isinstance(body.get("detail"), str) and not err:
            err = body["detail"]
        return " ".join(str(err).split())[:300]
    return " ".join(str(body).split())[:300]


def _is_validation_error(msg: str) -> bool:
    """A FastAPI/pydantic request validation error (``{'type': ..., 'loc': ('body', ...)}``) inside a 5xx."""
    return "validation error" in msg and "'loc': ('body'" in msg


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _schema_name(schema: dict) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
    return name or "output"


def _completion(data: dict) -> Completion:
    ch = data["choices"][0]
    p, c = token_counts(data)
    finish = ch.get("finish_reason")
    return Completion(text=reply_text(ch), prompt_tokens=p, completion_tokens=c,
                      finish_reason=finish if isinstance(finish, str) else None)


def _count(u: Usage, data: dict) -> None:
    p, c = token_counts(data)
    u.prompt_tokens += p
    u.completion_tokens += c
