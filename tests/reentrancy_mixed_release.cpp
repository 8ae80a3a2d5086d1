// tests/reentrancy_mixed_release.cpp — the release half of reentrancy_mixed (see
// reentrancy_mixed_main.cpp): built with DEVCACHE_REENTRANCY_CHECK=0.
#include <devcache/sharded_map.hpp>

void visit_from_release_file(devcache::ShardedMap<int, int>& map) {
  map.visit(1, [](int& v) { ++v; });
  // A lambda of its own, so that this file's visit is instantiated here, with its own scope.
}
