#!/usr/bin/env bash
# Installs what the tests run for real into .tools/venv: a PyPI index server (pypiserver) and
# pex; and into .tools/wheels the pip, setuptools and wheel that pex bootstraps from the index,
# so the test index on loopback can serve them. Idempotent. Prints the venv path.
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
# pex --pip-version 25.0.1 asks the index for exactly these (see src/build/tools.rs).
bootstrap="pip==25.0.1 setuptools==75.3.0 wheel==0.45.1"
wheels="$root/.tools/wheels"
if [ ! -f "$wheels/.pins" ] || [ "$(cat "$wheels/.pins")" != "$bootstrap" ]; then
  rm -rf "$wheels"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$wheels" $bootstrap >&2
  echo "$bootstrap" > "$wheels/.pins"
fi
echo "$venv"
