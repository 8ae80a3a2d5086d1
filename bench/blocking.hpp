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
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

/// The control call: no map or cache call at all, only as much memory as a whole-map result of
/// `n` elements of T takes, grown by push_back as a collecting call grows its result, then freed.
/// A writer's stall during it is the machine's, not a lock's: on the benchmark VM, mapping and
/// unmapping that much memory on one core stalls the other for milliseconds.
template <class T>
void build_and_free(std::size_t n) {
  std::vector<T> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(T{});
  // Uses the result, so that the loop is not dead code.
  if (v.size() != n) {
    throw std::logic_error("blocking control: built " + std::to_string(v.size()) +
                           " elements, expected " + std::to_string(n));
  }
}

/// One row per call: the median over repetitions of its call time and of the writer's worst
/// latency. `runs[r]` holds repetition r's rows: every repetition the same calls in the same order.
inline std::vector<BlockingRow> median_rows(const std::vector<std::vector<BlockingRow>>& runs) {
  std::vector<BlockingRow> rows;
  if (runs.empty()) return rows;
  for (std::size_t i = 0; i < runs.front().size(); ++i) {
    std::vector<double> call_ms;
    std::vector<double> worst_ms;
    for (const auto& run : runs) {
      call_ms.push_back(run.at(i).call_ms);
      worst_ms.push_back(run.at(i).writer_worst_ms);
    }
    rows.push_back(
        BlockingRow{runs.front()[i].what, median(std::move(call_ms)), median(std::move(worst_ms))});
  }
  return rows;
}

}  // namespace devcache::bench
