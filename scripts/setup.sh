#!/usr/bin/env bash
# Installs the Debian packages devcache needs (if any are missing). Safe to run again.
set -euo pipefail
# shellcheck source=scripts/deps.sh
source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
devcache_install_deps
