#!/usr/bin/env bash
# Quick start: installs what is missing, builds the `release` preset's demo and runs it.
# Arguments are passed on to the demo (try --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cmake --preset release
cmake --build --preset release --target concurrent_threads_demo
exec build/release/examples/concurrent_threads_demo "$@"
