// Tests of detail::RwLock, the lock that guards each ShardedMap shard: mutual exclusion, no lost
// update, sleepers woken after a long hold, writers not starved by a stream of readers. The lock's
// release is a plain store with a check for sleepers before it (rw_lock.hpp), so these tests mix
// short holds (the store path), long holds (threads that spun, yielded and went to sleep, so the
// release must take the exchange-and-wake path) and oversubscription (8 threads on 2 cores: holders
// preempted mid-hold). There are no timing assertions: each test just has to finish (ctest's
// timeout catches a deadlock) and the counts must add up exactly.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "../sanitizers.hpp"

#include "run_threads.hpp"

#include <devcache/detail/rw_lock.hpp>

namespace {

using devcache::detail::ExclusiveGuard;
using devcache::detail::RwLock;
using devcache::detail::SharedGuard;
using devcache::test::run_threads;

constexpr std::uint64_t scale_down = devcache::test::thread_sanitizer ? 8 : 1;

// What the threads saw, checked after they are joined (Catch2's macros are not thread-safe).
struct Observed {
  std::atomic<int> writers_inside{0};
  std::atomic<int> readers_inside{0};
  std::atomic<std::uint64_t> violations{0};
  std::atomic<std::uint64_t> reads{0};
};

// Holds the lock exclusive: checks nobody else is inside and bumps `counter` (a plain variable:
// a lost update or a torn read shows up in its final value, and TSan reports the race).
void write_once(RwLock& lock, Observed& seen, std::uint64_t& counter) {
  const ExclusiveGuard guard(lock);
  if (seen.writers_inside.fetch_add(1) != 0 || seen.readers_inside.load() != 0) {
    seen.violations.fetch_add(1);
  }
  ++counter;
  seen.writers_inside.fetch_sub(1);
}

void read_once(RwLock& lock, Observed& seen, const std::uint64_t& counter) {
  const SharedGuard guard(lock);
  seen.readers_inside.fetch_add(1);
  const std::uint64_t before = counter;
  if (seen.writers_inside.load() != 0) seen.violations.fetch_add(1);
  std::this_thread::yield();  // stay inside a while, so readers overlap
  if (counter != before) seen.violations.fetch_add(1);
  seen.readers_inside.fetch_sub(1);
  seen.reads.fetch_add(1);
}

}  // namespace

TEST_CASE("RwLock: writers exclude everyone and no increment is lost", "[concurrency][rw_lock]") {
  for (const std::size_t threads : {2U, 8U}) {
    CAPTURE(threads);
    const std::uint64_t per_thread = 200'000 / scale_down;
    RwLock lock;
    Observed seen;
    std::uint64_t counter = 0;
    run_threads(threads, [&](std::size_t t) {
      for (std::uint64_t i = 0; i < per_thread; ++i) {
        // Every thread writes; one in 8 operations of odd threads reads instead.
        if (t % 2 == 1 && i % 8 == 0) {
          read_once(lock, seen, counter);
        } else {
          write_once(lock, seen, counter);
        }
      }
    });
    const std::uint64_t reads_expected = (threads / 2) * ((per_thread + 7) / 8);
    CHECK(seen.violations.load() == 0);
    CHECK(seen.reads.load() == reads_expected);
    CHECK(counter == threads * per_thread - reads_expected);
  }
}

TEST_CASE("RwLock: threads asleep behind a long hold are all woken", "[concurrency][rw_lock]") {
  // One thread takes the lock and holds it long enough (20 ms) that the others stop spinning and
  // yielding and go to sleep on it; every release must let them all through. Repeated, alternating
  // exclusive and shared holders and waiters.
  RwLock lock;
  Observed seen;
  std::uint64_t counter = 0;
  const int rounds = 20;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<bool> held{false};
    const bool hold_shared = round % 2 == 1;
    run_threads(6, [&](std::size_t t) {
      if (t == 0) {
        if (hold_shared) {
          const SharedGuard guard(lock);
          held.store(true);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } else {
          const ExclusiveGuard guard(lock);
          held.store(true);
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return;
      }
      while (!held.load()) std::this_thread::yield();
      if (t % 2 == 0) {
        read_once(lock, seen, counter);
      } else {
        write_once(lock, seen, counter);
      }
    });
  }
  CHECK(seen.violations.load() == 0);
  CHECK(counter == static_cast<std::uint64_t>(rounds) * 3);            // threads 1, 3, 5
  CHECK(seen.reads.load() == static_cast<std::uint64_t>(rounds) * 2);  // threads 2, 4
}

TEST_CASE("RwLock: a writer gets in while readers keep the lock busy", "[concurrency][rw_lock]") {
  // Readers overlap so that the lock is never free of readers unless new readers stand back for a
  // waiting writer; each writer must still finish all its writes (a starved writer would hang
  // until ctest's timeout).
  RwLock lock;
  Observed seen;
  std::uint64_t counter = 0;
  std::atomic<int> writers_done{0};
  const std::uint64_t writes = 2'000 / scale_down;
  run_threads(6, [&](std::size_t t) {
    if (t < 2) {
      for (std::uint64_t i = 0; i < writes; ++i) write_once(lock, seen, counter);
      writers_done.fetch_add(1);
    } else {
      while (writers_done.load() < 2) read_once(lock, seen, counter);
    }
  });
  CHECK(seen.violations.load() == 0);
  CHECK(counter == 2 * writes);
}
