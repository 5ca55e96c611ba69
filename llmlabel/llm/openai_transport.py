"""The HTTP side of the OpenAI-compatible engine: one client per batch, bounded concurrency, retries, errors.

Requests run on asyncio + httpx with at most ``concurrency`` in flight, each under a hard ``timeout``.
429, 5xx, time-outs, connection errors and malformed replies are retried with exponential backoff and
jitter (``Retry-After`` honoured), then raise a one-line :class:`~llmlabel.errors.ServerError`; any
other 4xx fails at once with the server's own message (:class:`HTTPFail`, which callers may answer with a
simpler request). The API key (``api_key`` or ``$OPENAI_API_KEY``) is only ever sent as an
``Authorization: Bearer`` header: it is kept out of cache keys, ``repr``, usage, metadata and error messages
(a server that echoes it back gets it replaced by ``***``).

What is sent (chat or completions bodies, constraints, log-prob requests) is decided by
:mod:`llmlabel.llm.openai_http` and :mod:`llmlabel.llm.openai_choose`; this module only moves it.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError, EngineError, ServerError
from .replies import check_body
from .usage import Usage, usage_log


class Secret(str):
    """A string whose repr never shows it (keeps the key out of debug output and tracebacks)."""

    def __repr__(self) -> str:
        return "'***'"


class HTTPFail(Exception):
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



def env_number(name: str, kind: type, default):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"${name} must be a number, got {raw!r}", field=name) from None


class OpenAITransport:
    """Mixin for :class:`~llmlabel.llm.openai_http.OpenAIEngine`: the requests themselves.

    Reads the engine's ``base_url``, ``shown_url``, ``_api_key`` (a :class:`Secret`), ``timeout``,
    ``max_retries``, ``concurrency``, ``backoff``, ``max_backoff`` and ``_rng``, and hands each answer to the
    cache through ``LLM._answered``.
    """

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

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
                    raise HTTPFail(422, self._redact(msg), path)
                if r.status_code in (408, 429) or r.status_code >= 500:
                    what = f"HTTP {r.status_code}" + (f" ({msg})" if msg else "")
                    retry_after = _retry_after(r.headers.get("retry-after"))
                elif r.status_code >= 400:
                    raise HTTPFail(r.status_code, self._redact(msg), path)
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

    def _fail(self, e: HTTPFail) -> EngineError:
        hint = {401: "check the API key ($OPENAI_API_KEY)", 403: "check the API key ($OPENAI_API_KEY)",
                404: "check the base URL (it usually ends in /v1) and the model name"}.get(e.status)
        return EngineError(f"{self.shown_url}{e.path}: HTTP {e.status}: {e.message or 'no message'}", hint=hint)

    def _first_model(self) -> str:
        async def go(client, sem):
            try:
                return await self._request(client, sem, "/models", None, usage_log.get())
            except HTTPFail as e:
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
