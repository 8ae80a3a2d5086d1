#!/usr/bin/env bash
# Lint: clang-format (check only) over every C++ file, then clang-tidy (.clang-tidy) over the
# tests' translation units from the `dev` preset's compile_commands.json.
#
#   scripts/lint.sh           tidy reports only what is in the headers under include/devcache
#   scripts/lint.sh --tests   tidy also reports what is in the test files themselves
#
# Needs clang-format and clang-tidy (scripts/setup.sh installs them). Not part of CI yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

include_tests=0
case "${1:-}" in
  "") ;;
  --tests) include_tests=1 ;;
  *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac

# Tracked and new files alike, skipping whatever .gitignore ignores (build trees).
mapfile -t sources < <(git ls-files --cached --others --exclude-standard -- \
  '*.hpp' '*.h' '*.cpp' | sort -u)
mapfile -t headers < <(printf '%s\n' "${sources[@]}" | grep '^include/devcache/' || true)

echo "== clang-format: ${#sources[@]} files"
status=0
if ((${#sources[@]})); then
  clang-format --dry-run --Werror "${sources[@]}" || status=1
fi

build_dir="build/dev"
if [[ ! -f "$build_dir/compile_commands.json" ]]; then
  cmake --preset dev >/dev/null
fi
# Only the test sources that the build compiles and expects to compile: compile_fail sources are
# in compile_commands.json (CTest builds each, expecting the compiler to refuse it), but tidy
# would only report the error they are there to cause.
units=()
for src in $(printf '%s\n' "${sources[@]}" | grep '^tests/.*\.cpp$' | grep -v '^tests/compile_fail/' || true); do
  if grep -qF "\"file\": \"$root/$src\"" "$build_dir/compile_commands.json"; then
    units+=("$src")
  fi
done

echo "== clang-tidy: ${#units[@]} test files, ${#headers[@]} headers"
if ((${#units[@]} == 0)); then
  echo "no test sources in $build_dir/compile_commands.json" >&2
  exit 1
fi
tidy_args=(-p "$build_dir" --quiet --warnings-as-errors='*')
if ((include_tests == 0)); then
  # A line filter naming files without line ranges keeps diagnostics to those files.
  filter="["
  for h in "${headers[@]}"; do filter+="{\"name\":\"$h\"},"; done
  filter="${filter%,}]"
  tidy_args+=("--line-filter=$filter")
fi
printf '%s\n' "${units[@]}" |
  xargs -P "${LINT_JOBS:-2}" -n 1 clang-tidy "${tidy_args[@]}" || status=1

if ((status)); then echo "lint: FAILED"; else echo "lint: clean"; fi
exit "$status"
