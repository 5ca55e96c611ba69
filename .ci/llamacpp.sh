#!/usr/bin/env bash
# CI step: llama-cpp-python's OpenAI-compatible server, then the real-model engine tests.
#
# llama-cpp-python ships only an sdist on the registries here, so pip compiles llama.cpp (~5-15 min on
# 2 cores). The wheel is built once into a cache folder and reused by later runs on the same machine.
#
#   LLMLABEL_WHEEL_CACHE   where built wheels are kept (default: ~/.cache/llmlabel-wheels)
#   LLAMACPP_VERSION       llama-cpp-python version (default: 0.3.36)
#   PYTHON                 interpreter of the main environment (default: python)
#   LLMLABEL_LLAMACPP_NO_TESTS=1   install only
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
VERSION="${LLAMACPP_VERSION:-0.3.36}"
WHEELS="${LLMLABEL_WHEEL_CACHE:-$HOME/.cache/llmlabel-wheels}"
T_ALL=$(date +%s)

phase_done() {  # phase_done NAME START_SECONDS
    echo "[llamacpp.sh] $1: $(( $(date +%s) - $2 ))s"
}

installed() {
    "$PYTHON" - "$VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import llama_cpp, llama_cpp.server  # noqa: F401 - importing (and loading libllama) is the check
import uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings  # noqa: F401 - [server] extra
assert version("llama-cpp-python") == sys.argv[1]
PY
}

t=$(date +%s)
if installed; then
    echo "[llamacpp.sh] llama-cpp-python $VERSION already installed"
else
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
        echo "[llamacpp.sh] building llama-cpp-python $VERSION (compiles llama.cpp; cached in $WHEELS)"
        # Portable x86-64 + AVX2/FMA build (not -march=native), so a cached wheel also runs on a sibling
        # machine with another CPU; no tests/examples/tools, which the Python package does not use.
        CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF}" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
            "$PYTHON" -m pip wheel -q --no-deps "llama-cpp-python==$VERSION" -w "$WHEELS"
        phase_done "build" "$t"
    else
        echo "[llamacpp.sh] reusing the cached wheel in $WHEELS"
    fi
    # The compiled wheel from the cache; its [server] dependencies (fastapi, uvicorn, ...) from the registry.
    "$PYTHON" -m pip install -q --find-links "$WHEELS" "llama-cpp-python[server]==$VERSION"
    if ! installed; then
        echo "[llamacpp.sh] error: llama-cpp-python $VERSION does not import after installing" >&2
        "$PYTHON" -c "import llama_cpp.server" || true
        exit 1
    fi
fi
phase_done "install" "$t"

if [[ "${LLMLABEL_LLAMACPP_NO_TESTS:-0}" == "1" ]]; then
    exit 0
fi
t=$(date +%s)
status=0
# The vLLM comparison inside uses the venv .ci/vllm.sh made (LLMLABEL_VLLM_VENV, default .venv-vllm).
LLMLABEL_REQUIRE_LLAMACPP=1 "$PYTHON" -m pytest -q -m slow tests/test_real_llm_engines.py || status=$?
phase_done "tests" "$t"
phase_done "total" "$T_ALL"
exit "$status"
