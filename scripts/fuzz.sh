#!/usr/bin/env bash
# Fuzzing: builds devcache's libFuzzer targets (tests/fuzz/; the `fuzz` preset: Clang 14, ASan +
# UBSan) and runs each for a bounded time on a scratch copy of its seed corpus plus its saved
# regressions, so the repository is never written to. Exits non-zero if a target crashes (a failed
# check, a sanitizer report, a timeout or running out of memory), after printing the input that did
# it, in hex and base64, and how to keep it under tests/fuzz/regressions/.
#
#   scripts/fuzz.sh [--time SECONDS] [--build-dir DIR] [--keep] [TARGET...]
#
#   --time SECONDS   how long each target runs (default 60)
#   --build-dir DIR  where to build (default: the preset's build/fuzz)
#   --keep           keep the scratch directory: its corpora hold the inputs the run added
#   TARGET           mac_parse, ip_parse, map_differential or state_load (default: all four)
#
# FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS="-dict=my.dict"). CI runs `scripts/fuzz.sh --time
# 60`. On kernels with more than 28 bits of mmap randomisation, which Clang 14's sanitizer runtime
# cannot handle, the script re-runs itself under `setarch -R` (no ASLR), as .ci/run does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

time_per_target=60
build_dir=""
keep=0
targets=()
while (($#)); do
  case "$1" in
    --time) time_per_target="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(mac_parse ip_parse map_differential state_load)
[[ "$time_per_target" =~ ^[0-9]+$ ]] || { echo "--time wants whole seconds" >&2; exit 2; }

# ASLR: re-run without it if the sanitizer runtime would die of it (see .ci/run).
bits="$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)"
personality="$(cat /proc/self/personality 2>/dev/null || echo 0)"
if ((bits > 28)) && ! ((0x$personality & 0x0040000)); then  # ADDR_NO_RANDOMIZE
  echo "fuzz: vm.mmap_rnd_bits=$bits; re-running under setarch -R"
  exec setarch "$(uname -m)" -R "$0" "$@"
fi

# Build only the fuzzers.
configure=(cmake --preset fuzz)
[[ -n "$build_dir" ]] && configure+=(-B "$build_dir")
"${configure[@]}"
build_dir="${build_dir:-build/fuzz}"
cmake --build "$build_dir" --target fuzzers

scratch="$(mktemp -d "${TMPDIR:-/tmp}/devcache-fuzz.XXXXXX")"
cleanup() { if ((keep)); then echo "fuzz: scratch kept in $scratch"; else rm -rf "$scratch"; fi; }
trap cleanup EXIT

final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -1; }

failed=()
summary=()
for target in "${targets[@]}"; do
  binary="$build_dir/tests/fuzz/fuzz_$target"
  seeds="$root/tests/fuzz/corpus/$target"
  regressions="$root/tests/fuzz/regressions/$target"
  [[ -x "$binary" && -d "$seeds" ]] || { echo "fuzz: unknown target $target" >&2; exit 2; }
  work="$scratch/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "$seeds/." "$work/corpus/"

  echo
  echo "== fuzz $target: ${time_per_target}s, $(find "$seeds" -type f | wc -l) seeds (log: $work/log)"
  rc=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  (cd "$work" && "$root/$binary" -max_total_time="$time_per_target" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    ${FUZZ_ARGS:-} "$work/corpus" "$regressions") >"$work/log" 2>&1 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$work/log" || true

  mapfile -t found < <(find "$work/artifacts" -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if ((rc != 0 || ${#found[@]} != 0)); then
    failed+=("$target")
    echo "!! fuzz $target FAILED (exit $rc); the end of its log:"
    tail -n 60 "$work/log"
    for input in "${found[@]}"; do
      name="$(basename "$input")"
      echo
      echo "!! $target input $name ($(wc -c <"$input") bytes), hex:"
      od -An -tx1 -v "$input"
      echo "base64: $(base64 -w0 "$input")"
      echo "keep it:  echo '$(base64 -w0 "$input")' | base64 -d > tests/fuzz/regressions/$target/$name"
      echo "replay:   $binary tests/fuzz/regressions/$target/$name"
    done
    summary+=("$(printf '%-18s FAILED' "$target")")
  else
    summary+=("$(printf '%-18s ok  %9s runs  %7s exec/s  cov %5s  ft %6s  corpus %5s (+%s)' \
      "$target" "$(final_stat number_of_executed_units "$work/log")" \
      "$(final_stat average_exec_per_sec "$work/log")" \
      "$(sed -n 's/.*DONE *cov: \([0-9]*\).*/\1/p' "$work/log" | tail -1)" \
      "$(sed -n 's/.*DONE *cov: [0-9]* ft: \([0-9]*\).*/\1/p' "$work/log" | tail -1)" \
      "$(find "$work/corpus" -type f | wc -l)" "$(final_stat new_units_added "$work/log")")")
  fi
done

echo
echo "== fuzz summary (${time_per_target}s per target)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
