// bench/blocking.hpp — how long a whole-map (or whole-cache) call blocks a writer.
//
// One writer thread repeats a single-key write and records its worst single-operation latency
// while the calling thread runs the call under test; the same measurement with the caller only
// sleeping gives the writer's worst latency with nothing else running, for comparison.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "report.hpp"

namespace devcache::bench {

/// Runs `call` on this thread while another thread calls `write(step)` (step = 0, 1, 2, ...) in a
/// loop, and returns how long the call took and the worst latency of one write meanwhile.
/// `write` must be safe to call concurrently with `call`.
template <class Write>
BlockingRow writer_worst_while(std::string what, Write write, const std::function<void()>& call) {
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  std::int64_t worst_ns = 0;
  std::thread writer([&] {
    started = true;
    for (std::uint64_t step = 0; !stop.load(std::memory_order_relaxed); ++step) {
      const auto a = Clock::now();
      write(step);
      worst_ns = std::max<std::int64_t>(
          worst_ns, std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a).count());
    }
  });
  while (!started) std::this_thread::yield();
  const auto a = Clock::now();
  call();
  const double call_ms = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
  stop = true;
  writer.join();
  return BlockingRow{std::move(what), call_ms, static_cast<double>(worst_ns) / 1e6};
}

/// The baseline row: the writer alone for 200 ms.
template <class Write>
BlockingRow writer_alone(Write write) {
  return writer_worst_while("nothing (writer alone, 200 ms)", std::move(write),
                            [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
}

}  // namespace devcache::bench
