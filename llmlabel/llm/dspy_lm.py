"""Run DSPy programs on llmlabel's engines and cache, fully offline.

DSPy 3.4 accepts a custom *engine* (``complete(Request) -> Response``) behind ``dspy.LM``; this module
provides one that routes every request to :meth:`llmlabel.llm.LLM.generate`, so DSPy calls hit the same
SQLite cache, usage accounting and batching as the rest of llmlabel. DSPy's own cache is switched off for
these LMs (ours is content-addressed and shared across processes), and litellm is told never to fetch its
cost map from the network.

>>> from llmlabel.llm import load_engine
>>> lm = dspy_lm(load_engine("hf:/path/to/model"))        # doctest: +SKIP
>>> import dspy; dspy.configure(lm=lm)                     # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from ..paths import user_cache_path
from .base import LLM

# litellm (imported by dspy) downloads a model cost map on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DSPY_CACHEDIR", str(user_cache_path("dspy")))  # the same user cache folder as ours

__all__ = ["LLMLabelEngine", "dspy_lm"]


def _text_of(content: Any) -> str:
    """Text of a message/system given as a string or a sequence of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        out.append(getattr(part, "text", None) or (part if isinstance(part, str) else ""))
    return "".join(out)


class LLMLabelEngine:
    """A DSPy engine (``complete(Request) -> Response``) backed by an llmlabel :class:`LLM`.

    ``max_tokens`` caps what a DSPy request may ask for (small local models, bounded cost).
    """

    def __init__(self, llm: LLM, *, max_tokens: int = 256) -> None:
        self.llm = llm
        self.max_tokens = int(max_tokens)
        self.requests = 0

    def messages_of(self, request) -> list[dict]:
        msgs = []
        system = _text_of(request.system)
        if system:
            msgs.append({"role": "system", "content": system})
        for m in request.messages:
            text = m.text if getattr(m, "text", None) is not None else _text_of(getattr(m, "parts", ()))
            msgs.append({"role": str(m.role), "content": text or ""})
        return msgs

    def complete(self, request):
        from dspy.lm15 import Message, Response, TextPart, Usage

        cfg = request.config
        max_tokens = min(int(cfg.max_tokens or self.max_tokens), self.max_tokens)
        comp = self.llm.generate([self.messages_of(request)], max_tokens=max_tokens,
                                 temperature=float(cfg.temperature or 0.0),
                                 seed=int(getattr(cfg, "seed", None) or 0), stop=tuple(cfg.stop or ()))[0]
        self.requests += 1
        finish = "length" if comp.finish_reason == "length" else "stop"
        return Response(id=None, model=self.llm.spec, message=Message.assistant([TextPart(comp.text or "")]),
                        finish_reason=finish,
                        usage=Usage(input_tokens=comp.prompt_tokens, output_tokens=comp.completion_tokens))

    def stream(self, request):
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


def dspy_lm(llm: LLM, *, max_tokens: int = 256, temperature: float = 0.0):
    """A ``dspy.LM`` whose requests go to ``llm`` (and its cache); DSPy's own cache is off."""
    import dspy

    return dspy.LM(model=f"llmlabel/{llm.spec}", engine=LLMLabelEngine(llm, max_tokens=max_tokens),
                   cache=False, temperature=temperature, max_tokens=max_tokens)
