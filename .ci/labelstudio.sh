#!/usr/bin/env bash
# The real Label Studio round trip (tests/test_labelstudio.py). label-studio pins many heavy dependencies (Django,
# its own pydantic/numpy ranges), so it gets its own virtualenv; the test starts it as a subprocess on 127.0.0.1.
# Run from the repo root after the main `pip install -e ".[test]"`.
set -euo pipefail
LS_VENV=${LS_VENV:-/opt/ls-venv}
if [ ! -x "$LS_VENV/bin/label-studio" ]; then
  python -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install -q "label-studio>=1.23,<2"
fi
LLMLABEL_LABEL_STUDIO="$LS_VENV/bin/label-studio" python -m pytest -q -m labelstudio tests/test_labelstudio.py
