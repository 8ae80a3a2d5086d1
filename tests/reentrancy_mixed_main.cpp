// tests/reentrancy_mixed_main.cpp — one program, two files built in different modes: this one
// with the re-entrancy check (DEVCACHE_REENTRANCY_CHECK=1), reentrancy_mixed_release.cpp without
// it. Both use ShardedMap<int, int>; before the two CallbackScope classes had names of their own,
// the release file's calls ran the debug constructor on a smaller object (a stack overflow:
// a segmentation fault, or an AddressSanitizer report). Plain main(): exit status 0 and the line
// "mixed modes: 3" on success.
#include <cstdio>
#include <optional>

#include <devcache/sharded_map.hpp>

void visit_from_release_file(devcache::ShardedMap<int, int>& map);

int main() {
  devcache::ShardedMap<int, int> map(1);
  map.insert(1, 1);
  visit_from_release_file(map);
  map.visit(1, [](int& v) { ++v; });
  const std::optional<int> value = map.find(1);
  if (value != 3) {
    std::fprintf(stderr, "mixed modes: expected 3, found %d\n", value ? *value : -1);
    return 1;
  }
  std::printf("mixed modes: %d\n", *value);
  return 0;
}
