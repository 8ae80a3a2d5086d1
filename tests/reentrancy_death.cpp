// A callback that calls back into its own map must abort with a message that names the call, in
// builds with the re-entrancy check (this target defines DEVCACHE_REENTRANCY_CHECK=1).
//
//   reentrancy_death sharded|cuckoo
//
// Each run calls map.find(k) from inside map.visit(k, ...), which would otherwise deadlock. ctest
// passes the test when stderr carries "re-entrant call: ShardedMap::find" (or CuckooMap::find).
// The abort is turned into a normal exit so that ctest judges the output, not the signal.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string_view>
#include <unistd.h>

#include <devcache/cuckoo_map.hpp>
#include <devcache/sharded_map.hpp>

#if !DEVCACHE_REENTRANCY_CHECK
#error "reentrancy_death needs DEVCACHE_REENTRANCY_CHECK=1"
#endif

namespace {

extern "C" void exit_on_abort(int /*signal*/) { _exit(3); }

template <class Map>
int call_find_from_visit() {
  Map map;
  map.insert(1, std::uint64_t{1});
  map.visit(1, [&](std::uint64_t& v) { v = map.find(1).value_or(0); });
  std::fputs("reentrancy_death: the re-entrant call was not detected\n", stderr);
  return 1;
}

}  // namespace

int main(int argc, char** argv) try {
  std::signal(SIGABRT, exit_on_abort);
  const std::string_view which = argc > 1 ? argv[1] : "";
  if (which == "sharded") {
    return call_find_from_visit<devcache::ShardedMap<std::uint64_t, std::uint64_t>>();
  }
  if (which == "cuckoo") {
    return call_find_from_visit<devcache::CuckooMap<std::uint64_t, std::uint64_t>>();
  }
  std::fputs("usage: reentrancy_death sharded|cuckoo\n", stderr);
  return 2;
} catch (...) {
  std::fputs("reentrancy_death: unexpected exception\n", stderr);
  return 4;
}
