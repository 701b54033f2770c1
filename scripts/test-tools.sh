#!/usr/bin/env bash
# Installs what the tests run for real into .tools/venv: a PyPI index server (pypiserver) and
# pex. Idempotent: a second run with the same pins does nothing. Prints the venv path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/venv"
pins="pypiserver==2.4.2 pex==2.105.2"
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

if [ ! -f "$venv/.pins" ] || [ "$(cat "$venv/.pins")" != "$pins" ]; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins >&2
  echo "$pins" > "$venv/.pins"
fi
echo "$venv"
