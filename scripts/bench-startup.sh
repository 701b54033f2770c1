#!/usr/bin/env bash
# Start-up of a tool from hermit-pex's tarball, side by side in one run, interleaved (the order
# rotates every round), `black --version` with black 26.10.1 on CPython 3.12:
#   launcher  the launcher, its PEX's venv installed (warm): execs the venv's script directly
#   old       the launcher before that (PEX_SCRIPT=black exec black.pex), same PEX, warm
#   venv      a plain virtualenv's black, installed from the same wheels
# then the first run after extraction (fresh directory, fresh PEX_ROOT) and the run after it.
# usage: scripts/bench-startup.sh [ROUNDS] [FIRST_RUNS]   (defaults 60 and 10)
# Needs pypi.org once (the wheels, kept in target/bench-startup/wheels) and a CPython 3.12
# (PYTHON312, else pyenv's newest 3.12).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-60}
firsts=${2:-10}
scratch="$root/target/bench-startup"
mkdir -p "$scratch"
tools=$("$root/scripts/test-tools.sh")
py312=${PYTHON312:-$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)}
[ -x "$py312" ] || { echo "no CPython 3.12: set PYTHON312" >&2; exit 1; }
case $(uname -s)-$(uname -m) in
  Linux-x86_64) platform=linux-amd64 tag=manylinux_2_28_x86_64 ;;
  Linux-aarch64) platform=linux-arm64 tag=manylinux_2_28_aarch64 ;;
  *) echo "a Linux amd64 or arm64 host, please" >&2; exit 1 ;;
esac
req=black==26.10.1

wheels="$scratch/wheels"
if [ ! -f "$wheels/.done" ]; then
  rm -rf "$wheels"
  "$tools/bin/pip" download --quiet --disable-pip-version-check --only-binary=:all: \
    --platform "$tag" --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    -d "$wheels" "$req"
  touch "$wheels/.done"
fi
# The PEX and tarball through hermit-pex's own build code (src/build/pex.rs, artifact.rs).
(cd "$root" && cargo build --quiet --example build_pex)
rm -rf "$scratch/out"
HERMIT_PEX_PEX="$tools/bin/pex" "$root/target/debug/examples/build_pex" \
  black black 3.12 "$platform" "$wheels" "$scratch/out" "$req" >/dev/null
tarball="$scratch/out/black-$platform.tar.gz"
if [ ! -x "$scratch/plain/bin/black" ]; then
  rm -rf "$scratch/plain"
  "$py312" -m venv "$scratch/plain"
  "$scratch/plain/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$wheels" "$req"
fi
rm -rf "$scratch/x"; mkdir -p "$scratch/x"
tar xzf "$tarball" -C "$scratch/x"
# The launcher as it was before the direct path.
cat >"$scratch/x/black-old" <<'EOF'
#!/bin/sh
self=$0
while [ -L "$self" ]; do
  link=$(readlink "$self")
  case $link in
    /*) self=$link ;;
    *) self=$(dirname "$self")/$link ;;
  esac
done
dir=$(cd "$(dirname "$self")" && pwd -P) || exit 1
PEX_SCRIPT=black exec "$dir/black.pex" "$@"
EOF
chmod 755 "$scratch/x/black-old"

export PATH="$(dirname "$py312"):$PATH"
# A PEX_ROOT as short as a user's ~/.cache/pex: pex writes the venv's scripts with a python
# shebang only while it fits in 128 bytes, else through a /bin/sh redirector (one more exec).
PEX_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/hpb.XXXXXX")
export PEX_ROOT
trap 'rm -rf "$PEX_ROOT"' EXIT
T=0 C=0
child_cpu() { # CPU of every child so far (user+sys, ms), in CPU; `times` runs in this shell
  local u s
  times >"$scratch/times"
  { read -r _; read -r u s; } <"$scratch/times"
  CPU=0
  for t in "$u" "$s"; do
    local sec=${t#*m}; sec=${sec%s}
    CPU=$(( CPU + ${t%%m*} * 60000 + 10#${sec/./} ))
  done
}
run() { # wall microseconds of one run in T, its CPU milliseconds in C
  child_cpu; local c0=$CPU t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  local t1=$EPOCHREALTIME
  child_cpu
  T=$(( ${t1/./} - ${t0/./} )) C=$(( CPU - c0 ))
}
names=(launcher old venv)
cmds=("$scratch/x/black" "$scratch/x/black-old" "$scratch/plain/bin/black")
# Warm: the first launcher run installs the venv; every command runs a few times untimed.
for _ in 1 2 3; do for c in "${cmds[@]}"; do run "$c" --version; done; done
PEX_VERBOSE=1 "$scratch/x/black" --version 2>&1 >/dev/null | grep -q directly \
  || { echo "the launcher did not take its direct path" >&2; exit 1; }
declare -A times cpu
for ((i = 0; i < rounds; i++)); do
  for ((j = 0; j < 3; j++)); do
    k=$(( (i + j) % 3 ))
    run "${cmds[$k]}" --version
    times[${names[$k]}]+="$T "
    cpu[${names[$k]}]+="$(( C * 1000 )) "
  done
done
stats() { # median and mean in ms of the microsecond list $1
  tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1; s+=$1} END {
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f %.1f", m/1000, s/NR/1000 }'
}
read -r venv_med venv_mean <<<"$(stats "${times[venv]}")"
read -r _ venv_cpu <<<"$(stats "${cpu[venv]}")"
echo "black --version, warm, $rounds rounds interleaved (wall ms; CPU = user+sys ms, mean)"
printf '  %-9s %8s %8s %14s %12s %8s %10s\n' "" median mean "median/venv" "mean/venv" cpu "cpu/venv"
for name in "${names[@]}"; do
  read -r med mean <<<"$(stats "${times[$name]}")"
  read -r _ c <<<"$(stats "${cpu[$name]}")"
  printf '  %-9s %8.1f %8.1f %13.3fx %11.3fx %8.1f %9.3fx\n' "$name" "$med" "$mean" \
    "$(echo "$med / $venv_med" | bc -l)" "$(echo "$mean / $venv_mean" | bc -l)" \
    "$c" "$(echo "$c / $venv_cpu" | bc -l)"
done

first="" second=""
for ((i = 0; i < firsts; i++)); do
  d=$(mktemp -d "${TMPDIR:-/tmp}/hpf.XXXXXX")
  tar xzf "$tarball" -C "$d"
  PEX_ROOT="$d/pex-root" run "$d/black" --version; first+="$T "
  PEX_ROOT="$d/pex-root" run "$d/black" --version; second+="$T "
  rm -rf "$d"
done
read -r fmed fmean <<<"$(stats "$first")"
read -r smed smean <<<"$(stats "$second")"
echo "after extraction, fresh PEX_ROOT, $firsts times (ms): first run median $fmed mean $fmean; the run after it median $smed mean $smean"
