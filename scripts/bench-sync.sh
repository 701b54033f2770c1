#!/usr/bin/env bash
# Prints wall times of `hermit-pex sync` for one version of a package on all four platforms:
#   cold        empty cache (pex install aside), empty release store
#   warm build  cache kept (lock, pex downloads), empty release store
#   re-run      nothing changed: must skip every build
# usage: scripts/bench-sync.sh [PACKAGE_DIR ...]   (default: python/cowsay python/aider-chat)
# Needs the network (pypi.org). Uses a scratch directory under target/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
bin="$root/target/release/hermit-pex"
scratch="$root/target/bench-sync"
tools_cache="$scratch/tools-cache"   # the managed pex install is kept across rows
mkdir -p "$tools_cache"
[ $# -gt 0 ] || set -- python/cowsay python/aider-chat

secs() { local s=$(date +%s.%N); "$@" >/dev/null 2>"$scratch/last.log" || { cat "$scratch/last.log" >&2; return 1; }; echo "$(date +%s.%N) - $s" | bc; }

for pkg in "$@"; do
  name=$(basename "$pkg")
  rm -rf "$scratch/$name"; mkdir -p "$scratch/$name/cache"
  ln -s "$tools_cache" "$scratch/$name/cache/tools"
  run() { "$bin" sync "$root/$pkg" --latest 1 --cache-dir "$scratch/$name/cache" --dist "$scratch/$name/$1" --hermit-dir "$scratch/$name/hermit-$1"; }
  cold=$(secs run dist-cold)
  builds=$(grep -c ": built " "$scratch/last.log" || true)
  pure=$(grep -ho '"pure": [a-z]*' "$scratch/$name"/dist-cold/releases/*/build-info.json | head -1)
  warm=$(secs run dist-warm)
  rerun=$(secs run dist-warm)
  size=$(du -b "$scratch/$name"/dist-cold/releases/*/*-linux-amd64.tar.gz | cut -f1)
  printf '%-12s cold %7.1f s  warm build %7.1f s  re-run %5.2f s  pex builds %s  (%s, linux-amd64 %s bytes)\n' \
    "$name" "$cold" "$warm" "$rerun" "$builds" "$pure" "$size"
done
