#!/usr/bin/env bash
# Runs the whole benchmark suite (16-22 minutes on 2 cores, with the host's load) and writes
# bench/results/: results.md (tables, target ratios, memory, latency, blocking), throughput.csv
# (medians), throughput_runs.csv (every run), throughput.png (gnuplot chart) from map_bench, and
# device.md (batch calls, DeviceCache heartbeats with and without a collector, how long
# whole-cache calls block a writer, hash flooding) and device_64_shards.md (the same with 64
# shards) from device_bench.
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
# The same with 64 shards (ShardedMap's default here) instead of DeviceCache's 1024: the contrast
# the README cites for DeviceCache's default.
scratch=$(mktemp -d)
build/release/bench/device_bench --reps 3 --shards 64 --out "$scratch" | tee "$out/device_bench_64_shards.log"
mv "$scratch/device.md" "$out/device_64_shards.md"
rm -rf "$scratch"
# The chart's subtitle: machine, compiler, flags and date, from results.md's header.
info=$(sed -n 's/^- \(machine\|compiler\|flags\|date\): *//p' "$out/results.md" | paste -sd ';' | sed 's/;/; /g')
gnuplot -e "csv='$out/throughput.csv'; png='$out/throughput.png'; info='$info'" bench/plot.gp
echo "wrote $out/results.md, $out/device.md, $out/device_64_shards.md, $out/throughput.csv, $out/throughput_runs.csv, $out/throughput.png"
