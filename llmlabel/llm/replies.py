"""Read OpenAI-format replies, and turn a reply plus its token log-probs into one ``choose`` row.

Used when an engine can only generate (HTTP servers without echoed prompt log-probs, chat prompts):
the reply is mapped to a choice -- the exact reply, a JSON ``{"label": ...}``, the reply up to case
and punctuation, a choice named in the reply -- and the reply's tokens are walked so that each choice
scores the log-prob of the path up to the token where it becomes the only choice consistent with the
text: the generated choice along its own tokens, the others through ``top_logprobs`` at the same
position. When the choices differ in their first token this is the constrained decoder's own
distribution; choices never seen get ``-inf``. Without log-probs the mapped choice gets 0 and the rest
``-inf``; a reply that names no choice falls back to the best-scoring choice, and an empty reply or one that
names and scores no choice is **no answer**: a row of ``-inf`` (:func:`no_answer` tells them apart).

>>> row = score_reply("The answer is: Negative.", [], ["positive", "negative"])
>>> [float(x) for x in row]
[-inf, 0.0]
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

#: One reply token: (text, log-prob, {alternative text: log-prob}).
Step = tuple[str, float, dict[str, float]]
_STRIP = ' \t\n"\'`'


def check_body(body, field: str) -> str:
    """'' when the reply has the shape we need, else what is wrong with it."""
    if not isinstance(body, dict):
        return "malformed reply (not a JSON object)"
    items = body.get(field)
    if not isinstance(items, list) or (field == "choices" and not items):
        return f"malformed reply (no '{field}')"
    if field == "choices" and not all(isinstance(c, dict) for c in items):
        return "malformed reply ('choices' are not objects)"
    return ""


def reply_text(choice: dict) -> str:
    """The generated text of one chat or completions choice ('' when there is none)."""
    msg = choice.get("message")
    text = msg.get("content") if isinstance(msg, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


def token_counts(data: dict) -> tuple[int, int]:
    usage = data.get("usage")
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0, 0  # no or odd usage: the counts are lost, the answer is not


def by_index(items: list, n: int) -> list | None:
    """The choices of a multi-prompt reply in prompt order; None when their number is wrong."""
    if len(items) != n:
        return None
    if all(isinstance(c.get("index"), int) for c in items):
        items = sorted(items, key=lambda c: c["index"])
    return items


def echo_tokens(choice: dict) -> tuple[list[str], list[float | None]] | None:
    """(tokens, log-probs) of a legacy completions choice; None when it has no usable log-probs."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return None
    toks, lps = lp.get("tokens"), lp.get("token_logprobs")
    if not isinstance(toks, list) or not isinstance(lps, list) or len(toks) != len(lps):
        return None
    try:
        return [str(t) for t in toks], [None if x is None else float(x) for x in lps]
    except (TypeError, ValueError):
        return None


def echo_prompt_tokens(choice: dict, sent: str) -> tuple[list[str], list[float | None]] | None:
    """(tokens, log-probs) of the echoed prompt ``sent`` alone, without what the server generated after it.

    ``max_tokens=1`` adds one token, or none when that token is end-of-text (llama-cpp-python leaves it out):
    the reply's text is ``sent`` plus what was generated. (``text_offset`` cannot tell: llama-cpp-python counts
    it without the leading special token's text.) Without a text, the last token is taken as generated."""
    got = echo_tokens(choice)
    if got is None:
        return None
    toks, lps = got
    text = choice.get("text")
    if isinstance(text, str) and not text.startswith(sent):
        return None  # a server that ignored echo: the tokens are the generated ones
    n = len(toks) - (0 if isinstance(text, str) and len(text) == len(sent) else 1)
    return toks[:n], lps[:n]


def steps_of(choice: dict) -> list[Step]:
    """The reply's tokens as (token, logprob, {alternative: logprob}); [] when the server sent none."""
    lp = choice.get("logprobs")
    out: list[Step] = []
    if not isinstance(lp, dict):
        return out
    try:
        if isinstance(lp.get("content"), list):  # chat format (and newer llama.cpp completions)
            for t in lp["content"]:
                alts: dict[str, float] = {}
                for a in t.get("top_logprobs") or []:
                    _add(alts, str(a["token"]), float(a["logprob"]))
                out.append((str(t["token"]), float(t["logprob"]), alts))
        elif isinstance(lp.get("tokens"), list):  # legacy completions format
            tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
            for tok, x, top in zip(lp["tokens"], lp["token_logprobs"], tops):
                alts = {}
                for k, v in (top or {}).items():
                    _add(alts, str(k), float(v))
                out.append((str(tok), 0.0 if x is None else float(x), alts))
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    return out


def _add(d: dict[str, float], k: str, v: float) -> None:
    d[k] = float(np.logaddexp(d[k], v)) if k in d else v  # two token ids can decode to one string


def _norm(s: str) -> str:
    return " ".join(re.findall(r"\w+", s.lower()))


def match_choice(text: str, choices: list[str]) -> int | None:
    """Index of the choice a reply names, or None when it names none of them."""
    t = text.strip()
    for cand in (t, t.strip(_STRIP + ".,;:!?()[]{}")):
        if cand in choices:
            return choices.index(cand)
    if t.startswith(("{", '"')):
        try:
            obj = json.loads(t)
        except ValueError:
            obj = None
        vals = obj.values() if isinstance(obj, dict) else [obj]
        for v in vals:
            if isinstance(v, str) and v in choices:
                return choices.index(v)
    normed = {_norm(c): i for i, c in enumerate(choices) if _norm(c)}
    if _norm(t) in normed:
        return normed[_norm(t)]
    hits = []
    for n, i in normed.items():  # a choice named inside the reply: earliest wins, then longest
        m = re.search(r"\b" + re.escape(n) + r"\b", _norm(t))
        if m:
            hits.append((m.start(), -len(n), i))
    return min(hits)[2] if hits else None


def _start(text: str, choice: str) -> int:
    for needle, shift in (('"' + choice + '"', 1), (choice, 0), (choice.strip(), 0)):
        i = text.find(needle) if needle.strip() else -1
        if i >= 0:
            return i + shift
    i = text.lower().find(choice.strip().lower())
    return i if i >= 0 else len(text) - len(text.lstrip(_STRIP))


def walk_scores(steps: list[Step], start: int, choices: list[str]) -> dict[int, float]:
    """Score choices along the reply's tokens, from the token that holds character ``start``."""
    pos, k = 0, None
    for j, (tok, _, _) in enumerate(steps):
        if pos + len(tok) > start:
            k = j
            break
        pos += len(tok)
    if k is None:
        return {}
    frame = steps[k][0][: start - pos]  # text before the answer inside its first token (a quote, a space)

    def reach(s: str) -> int | None:
        if not s:
            return None
        hits = [i for i, c in enumerate(choices) if c.startswith(s)]
        if not hits:  # the token runs past the end of a choice ("positive.")
            hits = sorted((i for i, c in enumerate(choices) if s.startswith(c)), key=lambda i: -len(choices[i]))
            hits = hits[:1]
        return hits[0] if len(hits) == 1 else None

    scores: dict[int, float] = {}
    prefix, cum = "", 0.0
    for j in range(k, len(steps)):
        tok, lp, alts = steps[j]
        cands = dict(alts)
        cands.setdefault(tok, lp)  # the sampled token need not be among the top alternatives
        found: dict[int, float] = {}
        for a, alp in cands.items():
            if j == k:
                a = a[len(frame):] if a.startswith(frame) else a.lstrip(_STRIP)
            i = reach(prefix + a)
            if i is not None and i not in scores:
                found[i] = float(np.logaddexp(found[i], cum + alp)) if i in found else cum + alp
        scores.update(found)
        prefix += tok[len(frame):] if j == k else tok
        cum += lp
        if sum(c.startswith(prefix) for c in choices) <= 1:
            break
    if prefix in choices and choices.index(prefix) not in scores:  # "no" when "none" is also a choice
        scores[choices.index(prefix)] = cum
    return {i: v for i, v in scores.items() if math.isfinite(v)}


def no_answer(logp: np.ndarray) -> np.ndarray:
    """(n,) True for ``choose`` rows without a single finite score: the engine got no usable answer."""
    logp = np.asarray(logp, dtype=np.float64)
    return ~np.isfinite(logp).any(axis=-1) if logp.size else np.zeros(logp.shape[:-1], bool)


def score_reply(text: str, steps: list[Step], choices: list[str]) -> np.ndarray:
    """One ``choose`` row from a generated reply and its token log-probs; its argmax is always a choice."""
    row = np.full(len(choices), -np.inf)
    idx = match_choice(text, choices)
    said = "".join(s[0] for s in steps)  # token texts, special tokens included: positions line up with steps
    scores = walk_scores(steps, _start(said, choices[idx]) if idx is not None else
                         len(said) - len(said.lstrip(_STRIP)), choices) if steps else {}
    if idx is not None and idx not in scores:
        row[idx] = 0.0  # no usable log-probs for the answer: it gets all the mass
    elif scores:
        for i, v in scores.items():
            row[i] = v
    # else: an empty reply, or one that names no choice and scores none: no answer (every entry -inf), which
    # labeling functions count as an error and abstain on. Guessing the closest string made an empty reply
    # look like a certain vote for the first label.
    return row
