#!/usr/bin/env bash
# ShardedMap at two versions, side by side in one process (bench/ab_main.cpp: the WORKLOADS.md
# configurations, the two versions alternating, medians and B/A per configuration).
#
#   bench/ab.sh A B [map_ab flags]
#
# A and B: a git revision (HEAD~1, a commit, a branch), or "." for this working tree's headers, or
# a directory that holds a devcache/ header tree. For example, the last commit against the one
# before it, 2 and 8 threads, exchange and heartbeat, both key shapes:
#
#   bench/ab.sh HEAD~1 HEAD --bits 14,20 --threads 2,8 --mixes 1,3 --shapes 0,1
#
# Judge a change by several such processes, not one: single processes of a VM differ by more than
# the change being measured. `bench/ab.sh . .` shows the harness's own noise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -lt 2 ]; then
  sed -n '2,15s/^# \{0,1\}//p' "$0" >&2
  exit 1
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Prints the include directory of side $2 for version $1.
headers() {
  if [ "$1" = . ]; then
    echo "$PWD/include"
  elif [ -d "$1" ]; then
    if [ ! -f "$1/devcache/sharded_map.hpp" ]; then
      echo "bench/ab.sh: directory \"$1\" holds no devcache/sharded_map.hpp (give the include directory itself)" >&2
      exit 1
    fi
    (cd "$1" && pwd)
  elif git rev-parse --quiet --verify "$1^{commit}" > /dev/null; then
    mkdir -p "$scratch/$2"
    git archive "$1" include | tar -x -C "$scratch/$2"
    echo "$scratch/$2/include"
  else
    echo "bench/ab.sh: \"$1\" is neither a directory nor a git revision" >&2
    exit 1
  fi
}
a=$(headers "$1" a)
b=$(headers "$2" b)
shift 2
./scripts/setup.sh
cmake -S . -B build/ab -DCMAKE_BUILD_TYPE=Release -DDEVCACHE_BUILD_TESTS=OFF \
  -DDEVCACHE_BUILD_EXAMPLES=OFF -DDEVCACHE_AB_A_INCLUDE="$a" -DDEVCACHE_AB_B_INCLUDE="$b" > /dev/null
cmake --build build/ab --target map_ab
echo "A: $a"
echo "B: $b"
build/ab/bench/map_ab "$@"
