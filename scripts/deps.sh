# shellcheck shell=bash
# The one list of Debian 12 packages devcache needs, and the one place that installs them.
# Sourced (never run) by scripts/setup.sh and .ci/run; defines DEVCACHE_DEBIAN_PACKAGES and
# devcache_install_deps. Everything comes from apt: no vendored copies, no downloads.

DEVCACHE_DEBIAN_PACKAGES=(
  # toolchains and build tools
  cmake ninja-build g++ clang libclang-rt-14-dev
  # libraries (libcuckoo and fmt are the library's own dependencies; the rest serve tests,
  # demos and benchmarks)
  libcuckoo-dev libfmt-dev catch2 libspdlog-dev libasio-dev libtbb-dev libabsl-dev
  # the optional Prometheus integration (devcache::prometheus), which the demos use; the Prometheus
  # server and curl for its end-to-end test
  prometheus-cpp-dev prometheus curl
  # zlib: CRC-32 for persistence.hpp's state files (devcache::persistence, its tests, the demos)
  zlib1g-dev
  # benchmark plots and lint
  gnuplot-nox clang-format clang-tidy
)

# Prints the packages from DEVCACHE_DEBIAN_PACKAGES that are not installed, one per line.
devcache_missing_packages() {
  local pkg
  for pkg in "${DEVCACHE_DEBIAN_PACKAGES[@]}"; do
    # `dpkg -s` also succeeds for removed packages whose config files remain: check the status.
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed$'; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Installs whatever is missing with apt-get (as root, or through sudo when not root).
devcache_install_deps() {
  local -a missing sudo=()
  mapfile -t missing < <(devcache_missing_packages)
  if ((${#missing[@]} == 0)); then
    echo "deps: all ${#DEVCACHE_DEBIAN_PACKAGES[@]} Debian packages are installed"
    return 0
  fi
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "deps: not root and no sudo; install these as root: ${missing[*]}" >&2
      return 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
}
