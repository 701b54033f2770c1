#!/usr/bin/env bash
# `hermit-pex sync` of one version for the four platforms (the lock by uv, each wheel fetched
# once, PEXs from the chosen wheels, tarballs, the test before upload) against the pipeline it
# replaces, 4 x `pex <pkg>==<ver> -o x.pex --python python3.12` (one per platform), side by
# side in one run: cold (empty caches; the pinned pex and uv themselves are installed already)
# and warm (the same caches again). Prints wall, CPU (user+sys) and peak RSS, and the ratios.
# usage: scripts/bench-lock.sh [PKG==VER ...]   (default: black==26.10.1 sqlfluff==4.5.0)
# Needs pypi.org and a CPython 3.12 (PYTHON312, else pyenv's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/target/bench-lock"
rm -rf "$scratch"; mkdir -p "$scratch"
tools=$("$root/scripts/test-tools.sh")
py312=${PYTHON312:-$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)}
[ -x "$py312" ] || { echo "no CPython 3.12: set PYTHON312" >&2; exit 1; }
# HERMIT_PEX_BIN: a hermit-pex built already (else the release build of this checkout).
bin=${HERMIT_PEX_BIN:-}
[ -n "$bin" ] || { (cd "$root" && cargo build --release --quiet); bin="$root/target/release/hermit-pex"; }
export HERMIT_PEX_PEX="$tools/bin/pex" HERMIT_PEX_UV="$tools/bin/uv"
export PATH="$(dirname "$py312"):$PATH"
[ $# -gt 0 ] || set -- black==26.10.1 sqlfluff==4.5.0

measure() { # COMMAND...: prints "wall cpu maxrss_kb"
  /usr/bin/time -f "%e %U %S %M" -o "$scratch/time" "$@" >"$scratch/out.log" 2>&1 \
    || { cat "$scratch/out.log" >&2; echo "failed: $*" >&2; exit 1; }
  read -r wall user sys rss <"$scratch/time"
  echo "$wall $(echo "$user + $sys" | bc) $rss"
}
# The four per-platform pex runs, one after the other, each with its own PEX_ROOT (as four CI
# runners have): empty the first time, kept for the warm row. Arguments: ROOTS REQ.
old4='for p in 1 2 3 4; do PEX_ROOT="$1-$p" "$PEX" "$2" -o "$OUT-$p.pex" --python "$PY" || exit 1; done'
export PEX="$tools/bin/pex" OUT="$scratch/old" PY="$py312"

printf '%-22s %-5s %9s %9s %10s %9s %9s %10s %7s %7s\n' package cache "sync s" "cpu s" "rss KB" "4xpex s" "cpu s" "rss KB" wall× cpu×
for req in "$@"; do
  name=${req%%==*}; version=${req##*==}
  dir="$scratch/$name"
  mkdir -p "$dir/python/$name"
  printf 'package: %s\nversions:\n  - version: "%s"\n    python: "3.12"\n' "$name" "$version" \
    >"$dir/python/$name/config.yaml"
  for cache in cold warm; do
    sync=$(measure "$bin" sync "$dir/python/$name" --latest 1 --cache-dir "$dir/cache" \
      --dist "$dir/dist-$cache" --hermit-dir "$dir/hermit-$cache")
    old=$(measure bash -c "$old4" old4 "$dir/pex-root" "$req")
    read -r sw sc sr <<<"$sync"; read -r ow oc or <<<"$old"
    printf '%-22s %-5s %9.1f %9.1f %10s %9.1f %9.1f %10s %7.2f %7.2f\n' "$req" "$cache" \
      "$sw" "$sc" "$sr" "$ow" "$oc" "$or" "$(echo "$sw / $ow" | bc -l)" "$(echo "$sc / $oc" | bc -l)"
  done
done
