#!/usr/bin/env bash
# PEX builds of black 26.10.1 for the four platforms (CPython 3.12), side by side in one run,
# interleaved, each with an empty PEX_ROOT:
#   new   hermit-pex's build from wheels already chosen (src/build/pex.rs through
#         examples/build_pex.rs: `pex --pre-resolved-dists`, then the tarball)
#   old   `pex black==26.10.1 -o x.pex --python python3.12` (resolves and downloads itself)
# The wheels of the four platforms are fetched once before (`pip download --only-binary=:all:
# --platform …`, no pip cache), and that fetch is timed too: it is what the new path adds.
# Prints wall, CPU (user+sys) and peak RSS of each build, the sums and the ratios.
# usage: scripts/bench-build.sh        Needs pypi.org and a CPython 3.12 (PYTHON312, else pyenv's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch="$root/target/bench-build"
rm -rf "$scratch"; mkdir -p "$scratch"
tools=$("$root/scripts/test-tools.sh")
py312=${PYTHON312:-$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)}
[ -x "$py312" ] || { echo "no CPython 3.12: set PYTHON312" >&2; exit 1; }
req=black==26.10.1
(cd "$root" && cargo build --quiet --example build_pex)
example="$root/target/debug/examples/build_pex"
export HERMIT_PEX_PEX="$tools/bin/pex"

measure() { # LABEL COMMAND...: one line "LABEL wall cpu maxrss_kb"
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$scratch/time" "$@" >"$scratch/out.log" 2>&1 \
    || { cat "$scratch/out.log" >&2; echo "failed: $label" >&2; exit 1; }
  read -r wall user sys rss <"$scratch/time"
  echo "$label $wall $(echo "$user + $sys" | bc) $rss"
}

declare -A tag=(
  [linux-amd64]=manylinux_2_28_x86_64 [linux-arm64]=manylinux_2_28_aarch64
  [darwin-amd64]=macosx_14_0_x86_64 [darwin-arm64]=macosx_14_0_arm64
)
platforms=(linux-amd64 linux-arm64 darwin-amd64 darwin-arm64)
rows=()
for p in "${platforms[@]}"; do
  rows+=("$(measure "fetch-$p" "$tools/bin/pip" download --quiet --disable-pip-version-check \
    --no-cache-dir --only-binary=:all: --platform "${tag[$p]}" --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none -d "$scratch/wheels/$p" "$req")")
done
for p in "${platforms[@]}"; do
  rows+=("$(PEX_ROOT="$scratch/root-new-$p" measure "new-$p" \
    "$example" black black 3.12 "$p" "$scratch/wheels/$p" "$scratch/new-$p" "$req")")
  rows+=("$(PEX_ROOT="$scratch/root-old-$p" measure "old-$p" \
    "$tools/bin/pex" "$req" -o "$scratch/old-$p.pex" --python "$py312")")
done
printf '%-18s %8s %8s %10s\n' build "wall s" "cpu s" "rss KB"
for r in "${rows[@]}"; do printf '%-18s %8s %8s %10s\n' $r; done
sum() { printf '%s\n' "${rows[@]}" | awk -v p="$1" -v c="$2" '$1 ~ "^"p {s += $c} END {printf "%.2f", s}'; }
fw=$(sum fetch 2) fc=$(sum fetch 3) nw=$(sum new 2) nc=$(sum new 3) ow=$(sum old 2) oc=$(sum old 3)
echo "4 platforms: new $nw s wall / $nc s cpu (+ fetch $fw / $fc), old $ow s / $oc s"
echo "ratio new/old: wall $(echo "scale=3; $nw / $ow" | bc) cpu $(echo "scale=3; $nc / $oc" | bc);" \
  "with the fetch: wall $(echo "scale=3; ($nw + $fw) / $ow" | bc) cpu $(echo "scale=3; ($nc + $fc) / $oc" | bc)"
