// bench/throughput.hpp — one throughput run of ../shared/WORKLOADS.md (v1.1) on one map, checked
// exactly. Shared by map_bench (every map) and map_ab (two builds of ShardedMap side by side).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "workload.hpp"

namespace devcache::bench {

/// Prefills a fresh Adapter with the even key indices of [0, n), runs `ops` operations of `mix` on
/// each of `threads` threads released together, and returns Mops/s from the release to the last
/// thread's finish. Then checks the final size and value sum exactly and exits with status 2 (after
/// a message naming the run) if they are wrong, so a fast but wrong map cannot pass.
template <class Adapter>
double run_throughput(const Mix& mix, KeyShape shape, std::uint64_t n, unsigned threads,
                      std::uint64_t ops) {
  auto map = std::make_unique<Adapter>();
  std::int64_t expected_sum = 0;
  for (std::uint64_t i = 0; i < n; i += 2) {
    map->insert(mac_of(shape, i), i);
    expected_sum += static_cast<std::int64_t>(i);
  }
  std::vector<Tally> tallies(threads);
  std::latch start(1);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.wait();
      tallies[t] = run_thread(*map, mix, shape, n, t, ops, [](auto&& op) { op(); });
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  start.count_down();
  for (auto& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Exact check: a fast but wrong map fails the run.
  std::uint64_t expected_size = n / 2;
  for (const Tally& t : tallies) {
    expected_size += t.inserts;
    expected_size -= t.removes;
    expected_sum += t.value_delta;
  }
  std::uint64_t size = 0;
  std::int64_t sum = 0;
  map->for_each([&](std::uint64_t, std::uint64_t v) {
    ++size;
    sum += static_cast<std::int64_t>(v);
  });
  if (size != expected_size || sum != expected_sum || map->size() != expected_size) {
    fmt::print(stderr,
               "CHECK FAILED: mix={} keys={} threads={}: size {} (size() {}) expected {}, "
               "value sum {} expected {}\n",
               mix.name, name(shape), threads, size, map->size(), expected_size, sum, expected_sum);
    std::exit(2);
  }
  return static_cast<double>(threads) * static_cast<double>(ops) / seconds / 1e6;
}

}  // namespace devcache::bench
