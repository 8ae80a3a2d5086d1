#!/usr/bin/env bash
# The long soak: builds the `tsan` preset's soak_test and runs its hidden [stress] case under
# ThreadSanitizer for the given number of minutes (default 3): every operation of ShardedMap and
# DeviceCache at once (mixed readers and writers, throwing callbacks, a MAC flood against a capped
# cache while known devices heartbeat, collects, snapshots, sweeps), every invariant checked exactly
# after each round of a few seconds.
#
#   scripts/soak.sh            3 minutes
#   scripts/soak.sh 30         30 minutes
#   BUILD_DIR=build/my-tsan scripts/soak.sh 5    another tsan build tree
#
# CI runs the same test for 3 seconds (the non-hidden "soak (short)" case, part of ctest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

minutes="${1:-3}"
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: $0 [minutes]" >&2
  exit 2
fi
build_dir="${BUILD_DIR:-build/tsan}"

# GCC 12's TSan runtime cannot run with more than 28 bits of mmap randomisation ("unexpected
# memory mapping"): run without ASLR there (as .ci/run does when it cannot lower the sysctl).
runner=()
if (($(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0) > 28)); then
  runner=(setarch "$(uname -m)" -R)
fi

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake --preset tsan -B "$build_dir"
fi
"${runner[@]}" cmake --build "$build_dir" --target soak_test

seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
echo "soak: ${minutes} min under ThreadSanitizer ($build_dir/tests/soak_test)"
DEVCACHE_SOAK_SECONDS="$seconds" TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  "${runner[@]}" "$build_dir/tests/soak_test" "[stress]" --durations yes
