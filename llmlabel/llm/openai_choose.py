"""How the OpenAI-compatible engine answers ``choose``: scoring the choices from the server's log-probs.

The way is picked on the first call and remembered by the engine:

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

The requests go through :class:`~llmlabel.llm.openai_transport.OpenAITransport`; the chat or completions body
is built by the engine (:mod:`llmlabel.llm.openai_http`).
"""

from __future__ import annotations

import asyncio
import json

import numpy as np

from ..errors import ServerError
from .openai_transport import HTTPFail
from .replies import by_index, echo_prompt_tokens, reply_text, score_reply, steps_of, token_counts
from .usage import Usage, usage_log

_CONSTRAINTS = ("choice", "grammar", "enum", "plain")


class OpenAIChoose:
    """Mixin for :class:`~llmlabel.llm.openai_http.OpenAIEngine`: ``choose`` (``LLM._choose_batch``).

    Keeps what it learns about the server on the engine: ``_echo``, ``_echo_lists``, ``_echo_checked``,
    ``_constraint``, ``top_logprobs`` and ``_probed_choose``; sends through the engine's ``_payload``,
    ``_request``, ``_run`` and ``_each``.
    """

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
        except HTTPFail as e:
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
        except HTTPFail as e:
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
            except HTTPFail as e:
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
            except HTTPFail as e:
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


def _count(u: Usage, data: dict) -> None:
    p, c = token_counts(data)
    u.prompt_tokens += p
    u.completion_tokens += c
