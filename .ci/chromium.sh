#!/usr/bin/env bash
# Headless Chromium for tests/test_report.py (the report is opened from disk and must draw with no network).
# Debian's package; the test skips where no chromium binary is on PATH.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version
