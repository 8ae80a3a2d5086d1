#!/usr/bin/env bash
# Runs the whole benchmark suite (about 15 minutes on 2 cores) and writes bench/results/:
# results.md (tables, target ratios, memory, latency, blocking), throughput.csv (medians),
# throughput_runs.csv (every run), throughput.png (gnuplot chart) from map_bench, and device.md
# (batch calls, DeviceCache heartbeats with and without a collector, hash flooding) from
# device_bench.
#
#   bench/run.sh [extra map_bench flags, e.g. --reps 5]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cmake --preset release
cmake --build --preset release --target map_bench device_bench
out=bench/results
mkdir -p "$out"
build/release/bench/map_bench --reps 3 --out "$out" "$@" | tee "$out/map_bench.log"
build/release/bench/device_bench --reps 3 --out "$out" | tee "$out/device_bench.log"
gnuplot -e "csv='$out/throughput.csv'; png='$out/throughput.png'" bench/plot.gp
echo "wrote $out/results.md, $out/device.md, $out/throughput.csv, $out/throughput_runs.csv, $out/throughput.png"
