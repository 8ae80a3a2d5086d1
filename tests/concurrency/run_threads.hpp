// tests/concurrency/run_threads.hpp — how the concurrency tests start their threads.
#pragma once

#include <cstddef>
#include <latch>
#include <thread>
#include <vector>

namespace devcache::test {

/// Runs body(t) for every t in [0, threads) on its own thread; the threads are released together
/// (a latch, so they overlap as much as the scheduler allows) and all joined before it returns.
template <class Body>
void run_threads(std::size_t threads, Body body) {
  std::latch start(static_cast<std::ptrdiff_t>(threads));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&start, &body, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace devcache::test
