"""transformers engine: any local or Hub causal LM on CPU or GPU.

``choose`` runs the prompts once, then scores every choice in one more forward pass over the prompts'
KV cache: the choices' token prefixes form a trie, packed into one row per prompt with a tree attention
mask, so shared prefixes cost once and the cache is never copied per choice. When every choice is a
single token the second pass is skipped altogether.

>>> llm = HFEngine("/models/SmolLM2-135M-Instruct")                  # doctest: +SKIP
>>> llm.choose(["Is this spam? 'WIN A FREE PHONE'"], ["spam", "ham"])  # doctest: +SKIP
array([[-0.71, -2.3 ]])
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EngineError
from .base import LLM, Completion, SamplingParams

#: Trie nodes scored in one forward pass per prompt; bounds memory for big label sets.
MAX_TREE_TOKENS = 2048


def fingerprint(path: Path) -> str:
    """Cheap identity of a local model folder: config plus names, sizes and mtimes of its weight files."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for p in files:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{int(st.st_mtime)}".encode())
        if p.name == "config.json":
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


class HFEngine(LLM):
    """transformers ``AutoModelForCausalLM`` engine.

    Args:
      model: Hub name or local folder; a ``.gguf`` file is loaded (dequantised) through transformers.
      device: ``"cuda"``, ``"cpu"``, ... (default: CUDA when available).
      dtype: ``"auto"`` (float32 on CPU, bfloat16 on GPU), or a torch dtype name.
      trust_remote_code: run Python code shipped with a Hub model. Off unless you say so.
    """

    kind = "hf"

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto",
                 trust_remote_code: bool = False, revision: str | None = None, max_length: int | None = None,
                 **kw) -> None:
        super().__init__(str(model), **kw)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "float32" if self.device == "cpu" else "bfloat16"
        path = Path(model).expanduser()
        load_kw: dict = {"trust_remote_code": trust_remote_code, "revision": revision}
        src = str(model)
        if path.exists():
            path = path.resolve()
            src = str(path)
            if path.suffix == ".gguf":
                src, load_kw["gguf_file"] = str(path.parent), path.name
            self._model_id = f"{path}@{fingerprint(path)}"
        else:
            if model.startswith((".", "/", "~")):
                raise ConfigError("model path does not exist", path=model,
                                  hint="give a folder with config.json and weights, a .gguf file, or a Hub name")
            self._model_id = model + (f"@{revision}" if revision else "")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(src, **load_kw)
            self.hf_model = AutoModelForCausalLM.from_pretrained(src, dtype=getattr(torch, dtype), **load_kw)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise EngineError(f"cannot load model {model!r}: {first}", path=model if path.exists() else None,
                              hint="check the name/path; offline, only local folders load") from e
        self.hf_model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_length = max_length or getattr(self.hf_model.config, "max_position_embeddings", None) or 4096
        if self.chat is None:
            self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        self._grammars: dict[str, object] = {}

    @property
    def model_id(self) -> str:
        return self._model_id

    # ---- prompts ----------------------------------------------------------------------------------
    def render(self, prompt) -> tuple[str, bool]:
        """Prompt -> (text for the tokenizer, whether special tokens are already in it)."""
        if isinstance(prompt, str) and not self.chat:
            return prompt, False
        if not getattr(self.tokenizer, "chat_template", None):
            if isinstance(prompt, str):
                return prompt, False
            return "\n".join(m["content"] for m in prompt), False  # no template: plain concatenation
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, True

    def encode_prompts(self, prompts: list) -> list[list[int]]:
        out = []
        for p in prompts:
            text, has_special = self.render(p)
            ids = self.tokenizer(text, add_special_tokens=not has_special)["input_ids"]
            if len(ids) >= self.max_length:
                ids = ids[-(self.max_length - 1):]  # keep the end: that is where the question and reply start
            out.append(ids)
        return out

    def _left_pad(self, seqs: list[list[int]]):
        torch = self.torch
        n = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), n), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, n - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, n - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    # ---- choose -----------------------------------------------------------------------------------
    def _choose_batch(self, prompts: list, choices: list[str]) -> np.ndarray:
        torch = self.torch
        prompt_ids = self.encode_prompts(prompts)
        choice_ids = [self.tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]
        if any(len(c) == 0 for c in choice_ids):
            raise ConfigError("a choice tokenizes to nothing", hint="use non-empty label names")
        from .usage import usage_log

        usage_log.get().prompt_tokens += sum(len(p) for p in prompt_ids)
        ids, mask = self._left_pad(prompt_ids)
        multi = [j for j, c in enumerate(choice_ids) if len(c) > 1]
        groups = _groups_by_tree_size([choice_ids[j] for j in multi], MAX_TREE_TOKENS) if multi else []
        first_tok = torch.tensor([c[0] for c in choice_ids], device=self.device)
        with torch.inference_mode():
            if len(groups) <= 1:
                # Usual case: prompt and the whole choice trie in ONE forward pass, no KV cache at all.
                tree = _Trie([choice_ids[j] for j in multi])
                first, rest = self._forward_tree(ids, mask, tree, cache=None)
                scores = first[:, first_tok]
                if multi:
                    scores[:, multi] += rest
                return scores.cpu().numpy()
            # Huge label sets: run the prompts once, then each group's trie on top of their KV cache.
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.hf_model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                                logits_to_keep=1)
            scores = torch.log_softmax(out.logits[:, -1].float(), dim=-1)[:, first_tok]
            for group in groups:
                js = [multi[g] for g in group]
                tree = _Trie([choice_ids[j] for j in js])
                _, rest = self._forward_tree(ids, mask, tree, cache=out.past_key_values)
                scores[:, js] += rest
            return scores.cpu().numpy()

    def _forward_tree(self, ids, mask, tree: "_Trie", cache):
        """Score a choice trie after the prompts with a tree attention mask.

        Each trie node sees the prompt (minus padding) and its own ancestors, at position = prompt length
        + depth, so every choice is scored as if it followed the prompt alone, while shared prefixes cost
        once. With ``cache=None`` the prompt tokens go in the same pass (and the first-token
        distribution comes back too); otherwise the prompts are read from ``cache``, which is cropped
        back afterwards. Returns (first-token log-probs (B, V) or None, choice scores (B, n_seqs)).
        """
        torch, dev = self.torch, self.device
        B, P, T = ids.shape[0], ids.shape[1], len(tree.tokens)
        keep = mask.bool()
        anc = tree.ancestors.to(dev)
        tree_rows = torch.cat([keep[:, None, :].expand(B, T, P), anc[None].expand(B, T, T)], dim=-1)
        tree_pos = mask.sum(-1, keepdim=True) + torch.tensor(tree.depth, device=dev, dtype=torch.long)[None]
        tree_inp = torch.tensor(tree.tokens, device=dev, dtype=torch.long)[None].expand(B, T)
        if cache is None:
            causal = torch.ones((P, P), dtype=torch.bool, device=dev).tril()
            prompt_rows = torch.cat([causal[None] & keep[:, None, :], torch.zeros((B, P, T), dtype=torch.bool,
                                                                                 device=dev)], dim=-1)
            allowed = torch.cat([prompt_rows, tree_rows], dim=1)  # (B, P+T, P+T)
            inp = torch.cat([ids, tree_inp], dim=1)
            pos = torch.cat([(mask.cumsum(-1) - 1).clamp(min=0), tree_pos], dim=1)
        else:
            allowed, inp, pos = tree_rows, tree_inp, tree_pos
        dtype = self.hf_model.dtype
        attn = torch.zeros(allowed.shape, dtype=dtype, device=dev).masked_fill_(~allowed, torch.finfo(dtype).min)
        # Only the last prompt position and the tree nodes need logits: skip the LM head elsewhere.
        n_keep = T + (1 if cache is None else 0)
        o = self.hf_model(input_ids=inp, attention_mask=attn[:, None], position_ids=pos, past_key_values=cache,
                          use_cache=cache is not None, logits_to_keep=max(n_keep, 1))
        logits = o.logits[:, -n_keep:] if n_keep else o.logits[:, :0]
        if cache is not None:
            cache.crop(-T)
        lse = torch.logsumexp(logits.float(), dim=-1)  # (B, n_keep): normaliser without a full log-softmax copy
        first = None
        if cache is None:
            first = logits[:, 0].float() - lse[:, :1]
            logits, lse = logits[:, 1:], lse[:, 1:]
        rest = torch.zeros((B, len(tree.seqs)), device=dev)
        if T:
            cols = torch.tensor(tree.cols, device=dev)
            picked = logits[:, cols, torch.tensor(tree.targets, device=dev)].float() - lse[:, cols]
            rest.index_add_(1, torch.tensor(tree.rows, device=dev), picked)
        return first, rest

    # ---- generate ---------------------------------------------------------------------------------
    def _logits_processor(self, schema: dict | None):
        if schema is None:
            return None
        try:
            import xgrammar as xgr
            from xgrammar.contrib.hf import LogitsProcessor
        except ImportError:
            return None  # no constrained decoding: the base class parses, validates and retries
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            info = xgr.TokenizerInfo.from_huggingface(self.tokenizer,
                                                      vocab_size=self.hf_model.config.vocab_size)
            self._grammars[key] = xgr.GrammarCompiler(info).compile_json_schema(key, any_whitespace=False)
        return LogitsProcessor(self._grammars[key])

    def _generate_batch(self, prompts: list, params: SamplingParams, schema: dict | None) -> list[Completion]:
        torch = self.torch
        from transformers import LogitsProcessorList

        prompt_ids = self.encode_prompts(prompts)
        ids, mask = self._left_pad(prompt_ids)
        proc = self._logits_processor(schema)
        sample = params.temperature > 0
        gen_kw = dict(max_new_tokens=params.max_tokens, do_sample=sample,
                      pad_token_id=self.tokenizer.pad_token_id,
                      logits_processor=LogitsProcessorList([proc]) if proc is not None else None)
        if sample:
            gen_kw.update(temperature=params.temperature, top_p=params.top_p)
        else:
            gen_kw.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            gen_kw.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = self.hf_model.generate(input_ids=ids, attention_mask=mask, **gen_kw)
        new = out[:, ids.shape[1]:].cpu()
        eos = set(_as_list(self.hf_model.generation_config.eos_token_id)) | {self.tokenizer.eos_token_id}
        eos.discard(None)
        comps = []
        for p, row in zip(prompt_ids, new.tolist()):
            n = len(row)
            finish = "length"
            for t, tok in enumerate(row):
                if tok in eos:
                    n, finish = t, "stop"
                    break
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            for s in params.stop:
                if s in text:
                    text, finish = text[: text.index(s)], "stop"
            comps.append(Completion(text=text, prompt_tokens=len(p), completion_tokens=n, finish_reason=finish))
        return comps

    def close(self) -> None:
        self.hf_model = None
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()


class _Trie:
    """The proper prefixes of token sequences as trie nodes, in an order where parents come first.

    ``tokens[n]`` is node n's last token, ``depth[n]`` its length - 1, ``ancestors[n, m]`` whether m is n or
    one of its ancestors; token k >= 1 of sequence j is read from node ``cols[i]`` for ``rows[i] == j``.
    """

    def __init__(self, seqs: list[list[int]]) -> None:
        import torch

        self.seqs = seqs
        node_of: dict[tuple[int, ...], int] = {}
        self.tokens, self.depth, parent = [], [], []
        self.rows, self.cols, self.targets = [], [], []
        for j, s in enumerate(seqs):
            for k in range(1, len(s)):
                pre = tuple(s[:k])
                if pre not in node_of:
                    node_of[pre] = len(self.tokens)
                    self.tokens.append(s[k - 1])
                    self.depth.append(k - 1)
                    parent.append(node_of[pre[:-1]] if k > 1 else -1)
                self.rows.append(j)
                self.cols.append(node_of[pre])
                self.targets.append(s[k])
        T = len(self.tokens)
        anc = torch.zeros((T, T), dtype=torch.bool)
        for n in range(T):  # a node's row is its parent's row plus itself
            if parent[n] >= 0:
                anc[n] = anc[parent[n]]
            anc[n, n] = True
        self.ancestors = anc


def _groups_by_tree_size(seqs: list[list[int]], limit: int) -> list[list[int]]:
    """Split sequences (indices) into groups whose tries have at most ``limit`` nodes each.

    Sorting keeps sequences with shared prefixes together, so sharing survives the split.
    """
    order = sorted(range(len(seqs)), key=lambda j: seqs[j])
    groups, cur, seen = [], [], set()
    for j in order:
        new = {tuple(seqs[j][:k]) for k in range(1, len(seqs[j]))} - seen
        if cur and len(seen) + len(new) > limit:
            groups.append(cur)
            cur, seen = [], set()
            new = {tuple(seqs[j][:k]) for k in range(1, len(seqs[j]))}
        cur.append(j)
        seen |= new
    if cur:
        groups.append(cur)
    return groups


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]

