#!/usr/bin/env bash
# Quick start: installs what is missing, then builds and runs every test with the `ci` preset
# (GCC, optimised, asserts on, warnings are errors).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/setup.sh
cmake --preset ci
cmake --build --preset ci
ctest --preset ci
