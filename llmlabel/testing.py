"""Tiny random-weight models with real tokenizers, for tests and benchmarks that must run offline.

Their answers are noise, but every code path (batching, chat templates, constrained choice, JSON
schemas, caching) runs for real on them.

>>> path = build_tiny_model("/tmp/tiny-qwen2", arch="qwen2")   # doctest: +SKIP
>>> from llmlabel.llm import load_engine
>>> load_engine(f"hf:{path}").choose(["hi"], ["a", "b"]).shape  # doctest: +SKIP
(1, 2)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = """
The customer asked for a refund because the card payment was declined twice at the shop.
I lost my card yesterday and need a new one; please block the old card right away.
How long does a transfer to another bank take? My top-up has not arrived yet.
This movie was great, the acting was wonderful and the story kept me watching.
Terrible service, the app keeps crashing and nobody answers my emails.
Win a free phone now!!! Click this link to claim your prize, subscribe to my channel.
Sports: the team won the final match; Business: stocks fell; World: elections; Science and technology news.
positive negative neutral spam ham yes no none of these label answer question text category
{"label": "refund", "confidence": 0.9, "reason": "the text asks for money back"} [1, 2, 3] true false null
"""


def build_tokenizer(vocab_size: int = 512, texts: list[str] | None = None):
    """A byte-level BPE tokenizer with ChatML special tokens, trained on ``texts`` (default: a few sentences).

    Train it on real text with a larger vocabulary (e.g. 8,000) when token counts should look realistic.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts or _CORPUS.strip().splitlines() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHATML
    return fast


def build_tiny_model(path: str | Path, *, arch: str = "qwen2", hidden_size: int = 64, layers: int = 2,
                     seed: int = 0, chat_template: bool = True, tokenizer_vocab: int = 512,
                     tokenizer_texts: list[str] | None = None, **config_overrides) -> Path:
    """Build and save a random-weight causal LM (``qwen2`` or ``llama``) with its tokenizer; return the folder.

    ``config_overrides`` set any config field, e.g. a real architecture's sizes for benchmarks:
    ``build_tiny_model(p, hidden_size=896, layers=24, num_attention_heads=14, intermediate_size=4864,
    vocab_size=151936)`` is Qwen2-0.5B's shape.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    path = Path(path)
    tok = build_tokenizer(tokenizer_vocab, tokenizer_texts)
    if not chat_template:
        tok.chat_template = None
    common = dict(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=1024, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                  bos_token_id=None, tie_word_embeddings=True)
    common.update(config_overrides)
    if arch == "qwen2":
        config = Qwen2Config(**common)
    elif arch == "llama":
        config = LlamaConfig(**common)
    else:
        raise ValueError(f"arch must be 'qwen2' or 'llama', not {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    # Larger-than-default init makes the random model's distributions less flat: choices differ visibly.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2 if hidden_size <= 128 else 0.02)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@contextlib.contextmanager
def llama_cpp_server(gguf: str | Path, *, threads: int = 2, n_ctx: int = 2048, timeout: float = 120.0,
                     log_path: str | Path | None = None, alias: str = "smollm2") -> Iterator[str]:
    """``python -m llama_cpp.server`` serving ``gguf`` on a free 127.0.0.1 port; yields the ``/v1`` base URL and
    stops the server on exit. Raises RuntimeError (with the end of its log) when it dies or does not answer
    ``/models`` within ``timeout`` seconds. Needs ``llama-cpp-python[server]``.

    >>> with llama_cpp_server(bundled_gguf("smollm2")) as url:          # doctest: +SKIP
    ...     OpenAIEngine(url, "smollm2").choose(["2+2=?"], ["4", "5"])
    """
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The log goes to a file: llama.cpp writes ~200 kB while loading, which would fill (and block) a pipe.
    log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                             "--logits_all", "true", "--model_alias", alias], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-1500:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer /models within {timeout:g} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def build_tiny_bert(path: str | Path) -> Path:
    """A random-weight 2-layer BERT (32-d) with a WordPiece tokenizer trained here (no download): an encoder
    student's base model that trains in seconds."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    import torch

    path = Path(path)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    corpus = ["great love excellent wonderful happy", "awful hate terrible bad sad", "table monday paper train window",
              "item number text the a of"] * 20
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(
        vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                      sep_token="[SEP]", mask_token="[MASK]", model_max_length=64).save_pretrained(path)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(path)
    return path
