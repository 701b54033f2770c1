#!/bin/bash
# Measures pex option sets for black 25.11.0 on CPython 3.12: build time from a lock, size,
# gzip size, first and warm start of `black --version`. Needs pypi.org. Prints one row each.
set -u
scratch="$(cd "$(dirname "$0")/.." && pwd)/target/bench-pex-options"; mkdir -p "$scratch"; cd "$scratch"
root=$(cd "$(dirname "$0")/.." && pwd); venv=$("$root/scripts/test-tools.sh"); PEX=$venv/bin/pex
P=${PYTHON312:-$(ls -d ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.12.*/bin/python3.12 2>/dev/null | tail -1)}
export PEX_ROOT=$scratch/buildroot
t0=$(date +%s.%N)
$venv/bin/pex3 lock create --pip-version 25.0.1 --style universal --interpreter-constraint 'CPython==3.12.*' --python-path $P 'black==25.11.0' -o lock.json --indent 1 >lock.log 2>&1
echo "lock $(echo "$(date +%s.%N) - $t0" | bc) s"
for opts in "default:" "nocompress:--no-compress" "nopre:--no-pre-install-wheels" "venv-nopre:--venv --no-pre-install-wheels" "venv-nopre-shboot:--venv --no-pre-install-wheels --sh-boot" "venv-nocompress:--venv --no-compress"; do
  name=${opts%%:*}; flags=${opts#*:}
  export PEX_ROOT=$scratch/buildroot
  t0=$(date +%s.%N)
  $PEX --lock lock.json --python $P --pip-version 25.0.1 $flags -o $name.pex >$name.log 2>&1 || { echo "$name FAILED"; continue; }
  bt=$(echo "$(date +%s.%N) - $t0" | bc)
  size=$(stat -c %s $name.pex)
  gz=$(gzip -6 -c $name.pex | wc -c)
  export PEX_ROOT=$scratch/run-$name; rm -rf $PEX_ROOT
  t0=$(date +%s.%N); PATH=$(dirname $P):$PATH PEX_SCRIPT=black ./$name.pex --version >/dev/null 2>&1 || echo "$name run failed"
  first=$(echo "$(date +%s.%N) - $t0" | bc)
  t0=$(date +%s.%N); for i in 1 2 3 4 5; do PATH=$(dirname $P):$PATH PEX_SCRIPT=black ./$name.pex --version >/dev/null 2>&1; done
  warm=$(echo "($(date +%s.%N) - $t0)/5" | bc -l)
  printf "%-20s build %6.2fs size %10d gz %10d first %6.2fs warm %6.3fs\n" $name $bt $size $gz $first $warm
done
