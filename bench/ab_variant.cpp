// bench/ab_variant.cpp — one side of map_ab. CMake compiles this file twice, each time with one
// version's include directory and with the macros
//   devcache=devcache_a (or _b)   every devcache name moves into a namespace of its own, so two
//                                 versions of the headers live in one program without clashing
//   DEVCACHE_AB_RUN=run_a (or _b) the name of the entry point below
// (bench/ab.sh sets the include directories from two git revisions).
#include <cstddef>
#include <cstdint>

#include "devcache_adapter.hpp"
#include "throughput.hpp"
#include "workload.hpp"

/// One checked throughput run of ShardedMap<MacAddress, u64> (WORKLOADS.md): mixes[mix], key
/// shape random (0) or oui-seq (1), N = 2^bits, `threads` threads of `ops` operations each.
double DEVCACHE_AB_RUN(std::size_t mix, unsigned bits, int shape, unsigned threads,
                       std::uint64_t ops) {
  using namespace devcache::bench;
  return run_throughput<ShardedMapAdapter>(mixes.at(mix),
                                           shape == 0 ? KeyShape::random : KeyShape::oui_seq,
                                           std::uint64_t{1} << bits, threads, ops);
}
