// Concurrency tests for every map backend (ShardedMap, CuckooMap). Threads are released together
// by a std::latch; results are checked exactly against what the threads report doing. There are no
// timing assertions: each test just has to finish (ctest's timeout catches a deadlock).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <latch>
#include <random>
#include <span>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "../sanitizers.hpp"

#include "run_threads.hpp"
#include <fmt/format.h>

#include <devcache/cuckoo_map.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::test::run_threads;

using u64 = std::uint64_t;

struct Sharded {
  template <class K, class V>
  using map = devcache::ShardedMap<K, V>;
  static constexpr std::uint64_t oversubscribed_ops = 50'000;
  static constexpr std::uint64_t whole_map_calls = 200;
};
struct Cuckoo {
  template <class K, class V>
  using map = devcache::CuckooMap<K, V>;
  // libcuckoo's bucket locks spin and never sleep: with 16 threads on 2 cores, a thread preempted
  // while holding one makes the others spin away their time slices, so this backend runs fewer
  // operations there.
  static constexpr std::uint64_t oversubscribed_ops = 10'000;
  // Each whole-map call (visit_all, erase_if, clear, snapshot) takes all 2^16 spinlocks while the
  // other threads spin: a few milliseconds each in an optimised build, ten times that in a debug
  // one.
  static constexpr std::uint64_t whole_map_calls = 20;
};

// ThreadSanitizer makes every access ~10x slower: run fewer operations under it.
constexpr u64 scale_down = devcache::test::thread_sanitizer ? 8 : 1;

// Catch2's assertion macros are not thread-safe: worker threads record failures here, and the test
// checks the count after joining them.
class Failures {
 public:
  void expect(bool ok) noexcept {
    if (!ok) count_.fetch_add(1, std::memory_order_relaxed);
  }
  [[nodiscard]] u64 count() const noexcept { return count_.load(); }

 private:
  std::atomic<u64> count_{0};
};

}  // namespace

TEMPLATE_TEST_CASE("concurrent visit and upsert increments are never lost", "[concurrency]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  constexpr std::size_t threads = 8;  // oversubscribes the machine's cores
  constexpr u64 keys = 8;
  const u64 per_thread = 40'000 / scale_down;

  SECTION("visit") {
    Map map;
    for (u64 k = 0; k < keys; ++k) map.insert(k, u64{0});
    Failures failures;
    run_threads(threads, [&](std::size_t) {
      for (u64 j = 0; j < per_thread; ++j)
        failures.expect(map.visit(j % keys, [](u64& v) { ++v; }));
    });
    CHECK(failures.count() == 0);
    for (u64 k = 0; k < keys; ++k) CHECK(map.find(k) == threads * per_thread / keys);
    CHECK(map.size() == keys);
  }
  SECTION("visit_many and upsert_many") {
    Map map;
    std::vector<u64> all_keys;
    for (u64 k = 0; k < keys; ++k) all_keys.push_back(k);
    const u64 calls = per_thread / keys;  // per thread; each call touches every key once
    std::atomic<u64> inserted{0};
    std::atomic<u64> missed{0};  // keys a visit_many found absent (not inserted yet)
    run_threads(threads, [&](std::size_t t) {
      for (u64 j = 0; j < calls; ++j) {
        if ((j + t) % 2 == 0) {
          inserted += map.upsert_many(
              std::span<const u64>(all_keys), [](const u64&, u64& v) { ++v; }, u64{1});
        } else {
          missed += keys -
                    map.visit_many(std::span<const u64>(all_keys), [](const u64&, u64& v) { ++v; });
        }
      }
    });
    CHECK(inserted == keys);  // each key inserted exactly once
    u64 sum = 0;
    map.cvisit_all([&](const u64&, const u64& v) { sum += v; });
    CHECK(sum == threads * calls * keys - missed);  // every other call added 1 per key
    CHECK(map.size() == keys);
  }
  SECTION("upsert, starting from an empty map") {
    Map map;
    std::atomic<u64> inserts{0};
    run_threads(threads, [&](std::size_t) {
      u64 mine = 0;
      for (u64 j = 0; j < per_thread; ++j) {
        if (map.upsert(
                j % keys, [](u64& v) { ++v; }, u64{1}))
          ++mine;
      }
      inserts += mine;
    });
    CHECK(inserts == keys);  // each key inserted exactly once
    u64 sum = 0;
    map.cvisit_all([&](const u64&, const u64& v) { sum += v; });
    CHECK(sum == threads * per_thread);
    for (u64 k = 0; k < keys; ++k) CHECK(map.find(k) == threads * per_thread / keys);
  }
}

TEMPLATE_TEST_CASE("concurrent inserts and erases agree with the threads' logs", "[concurrency]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  constexpr std::size_t threads = 6;
  constexpr u64 key_range = 2048;
  const u64 ops = 40'000 / scale_down;
  Map map;
  u64 prefill = 0;
  for (u64 k = 0; k < key_range; k += 2) {
    map.insert(k, k);
    ++prefill;
  }

  // Per thread and key: how many of its inserts and erases succeeded.
  std::vector<std::vector<u64>> inserted(threads, std::vector<u64>(key_range));
  std::vector<std::vector<u64>> erased(threads, std::vector<u64>(key_range));
  run_threads(threads, [&](std::size_t t) {
    std::mt19937_64 rng(1000 + t);
    for (u64 j = 0; j < ops; ++j) {
      const u64 k = rng() % key_range;
      switch (rng() % 4) {
        case 0:
          if (map.insert(k, k)) ++inserted[t][k];
          break;
        case 1:
          if (map.try_emplace(k, k)) ++inserted[t][k];
          break;
        case 2:
          if (map.erase(k)) ++erased[t][k];
          break;
        default:
          if (map.erase_if(k, [&](const u64& v) { return v == k; })) ++erased[t][k];
          break;
      }
    }
  });

  u64 total_inserted = 0;
  u64 total_erased = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    for (u64 k = 0; k < key_range; ++k) {
      total_inserted += inserted[t][k];
      total_erased += erased[t][k];
    }
  }
  CHECK(map.size() == prefill + total_inserted - total_erased);
  for (u64 k = 0; k < key_range; ++k) {
    // Successful inserts and erases of one key alternate, so the net count is 0 or 1 and says
    // whether the key is present now.
    u64 net = (k % 2 == 0) ? 1 : 0;
    for (std::size_t t = 0; t < threads; ++t) net += inserted[t][k];
    for (std::size_t t = 0; t < threads; ++t) net -= erased[t][k];
    INFO("key " << k);
    REQUIRE(net <= 1);
    REQUIRE(map.contains(k) == (net == 1));
    if (net == 1) REQUIRE(map.find(k) == k);
  }
}

TEMPLATE_TEST_CASE("every snapshot taken during in-order inserts is a prefix", "[concurrency]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  constexpr std::size_t readers = 3;
  const u64 writes = 20'000 / scale_down;
  const u64 max_snapshots = std::max<u64>(4, TestType::whole_map_calls / scale_down);  // per reader
  Map map;
  std::atomic<bool> done{false};
  std::atomic<u64> snapshots{0};
  Failures failures;
  run_threads(readers + 1, [&](std::size_t t) {
    if (t == 0) {
      for (u64 k = 0; k < writes; ++k) failures.expect(map.insert(k, k));
      done = true;
      return;
    }
    u64 last = 0;
    u64 taken = 0;
    do {
      auto snap = map.snapshot();
      std::sort(snap.begin(), snap.end());
      // Exactly {0, ..., n-1}: no gap, no duplicate, values intact.
      for (u64 i = 0; i < snap.size(); ++i) {
        failures.expect(snap[i].first == i && snap[i].second == i);
      }
      failures.expect(snap.size() >= last);  // later snapshots of one thread never shrink
      last = snap.size();
      ++snapshots;
    } while (!done && ++taken < max_snapshots);
  });
  CHECK(failures.count() == 0);
  CHECK(snapshots >= readers);
  CHECK(map.size() == writes);
}

// Liveness, not speed: with 16 threads on 2 cores every thread must keep completing operations.
// Each thread records the longest time it went without completing one (from the common start);
// the bound is generous (a descheduled thread normally waits a few scheduler periods, tens of
// milliseconds) and only a starved thread or a livelock would exceed it.
constexpr std::chrono::seconds starvation_bound{5};

TEMPLATE_TEST_CASE("16 oversubscribed threads of readers and writers finish", "[concurrency]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  using Clock = std::chrono::steady_clock;
  constexpr std::size_t threads = 16;
  constexpr u64 key_range = 512;  // < 1000: every value v satisfies v % 1000 == key
  const u64 ops = TestType::oversubscribed_ops / scale_down;
  Map map;
  Failures failures;
  std::vector<Clock::duration> longest_gap(threads, Clock::duration::zero());
  const Clock::time_point started = Clock::now();
  run_threads(threads, [&](std::size_t t) {
    std::mt19937_64 rng(77 + t);
    const bool reader = t % 2 == 0;
    Clock::time_point last = Clock::now();
    for (u64 j = 0; j < ops; ++j) {
      const Clock::time_point now = Clock::now();
      longest_gap[t] = std::max(longest_gap[t], now - last);
      last = now;
      const u64 k = rng() % key_range;
      const u64 r = rng() % 100;
      if (reader || r < 50) {
        if (const auto v = map.find(k)) failures.expect(*v % 1000 == k);
        map.cvisit(k, [&](const u64& v) { failures.expect(v % 1000 == k); });
        static_cast<void>(map.contains(k));
      } else if (r < 65) {
        map.insert(k, k);
      } else if (r < 75) {
        map.upsert(
            k, [](u64& v) { v += 1000; }, k);
      } else if (r < 85) {
        map.visit(k, [](u64& v) { v += 1000; });
      } else if (r < 95) {
        map.erase(k);
      } else {
        map.insert_or_assign(k, k);
      }
    }
    longest_gap[t] = std::max(longest_gap[t], Clock::now() - last);
  });
  const auto elapsed = Clock::now() - started;
  const Clock::duration worst = *std::max_element(longest_gap.begin(), longest_gap.end());
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  fmt::print(
      "16 oversubscribed threads ({}): {} ops each in {} ms; longest wait of any thread "
      "between two completed operations: {} ms\n",
      std::is_same_v<TestType, Sharded> ? "ShardedMap" : "CuckooMap", ops, ms(elapsed), ms(worst));
  CHECK(worst < starvation_bound);
  CHECK(failures.count() == 0);
  const auto snap = map.snapshot();
  CHECK(map.size() == snap.size());
  for (const auto& [k, v] : snap) {
    REQUIRE(k < key_range);
    REQUIRE(v % 1000 == k);
  }
}

TEMPLATE_TEST_CASE("whole-map operations run safely alongside writers", "[concurrency]", Sharded,
                   Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  constexpr u64 key_range = 1000;  // every value v satisfies v % 1000 == key
  const u64 ops = 20'000 / scale_down;
  const u64 sweeps = std::max<u64>(4, TestType::whole_map_calls / scale_down);

  SECTION("erase_if(pred) and visit_all: the counts add up exactly") {
    constexpr std::size_t writers = 3;
    Map map;
    std::atomic<u64> inserted{0};
    std::atomic<u64> erased{0};
    Failures failures;
    run_threads(writers + 2, [&](std::size_t t) {
      if (t < writers) {
        std::mt19937_64 rng(5 + t);
        u64 ins = 0;
        u64 era = 0;
        for (u64 j = 0; j < ops; ++j) {
          const u64 k = rng() % key_range;
          if (rng() % 3 != 0) {
            if (map.insert(k, k)) ++ins;
          } else if (map.erase(k)) {
            ++era;
          }
        }
        inserted += ins;
        erased += era;
      } else if (t == writers) {
        for (u64 s = 0; s < sweeps; ++s) {
          const u64 residue = s % 7;
          erased += map.erase_if([&](const u64& k, const u64& v) {
            failures.expect(v % 1000 == k);
            return k % 7 == residue;
          });
        }
      } else {
        for (u64 s = 0; s < sweeps; ++s) {
          map.visit_all([&](const u64& k, u64& v) {
            failures.expect(v % 1000 == k);
            v += 1000;
          });
          map.cvisit_all([&](const u64& k, const u64& v) { failures.expect(v % 1000 == k); });
        }
      }
    });
    CHECK(failures.count() == 0);
    const auto snap = map.snapshot();
    CHECK(map.size() == snap.size());
    CHECK(snap.size() == inserted - erased);
    for (const auto& [k, v] : snap) REQUIRE(v % 1000 == k);
  }

  SECTION("clear, erase_if(pred), visit_all and snapshot with writers: invariants hold") {
    constexpr std::size_t writers = 3;
    Map map;
    Failures failures;
    run_threads(writers + 3, [&](std::size_t t) {
      if (t < writers) {
        std::mt19937_64 rng(50 + t);
        for (u64 j = 0; j < ops; ++j) {
          const u64 k = rng() % key_range;
          switch (rng() % 4) {
            case 0:
              map.insert(k, k);
              break;
            case 1:
              map.upsert(
                  k, [](u64& v) { v += 1000; }, k);
              break;
            case 2:
              map.erase(k);
              break;
            default:
              if (const auto v = map.find(k)) failures.expect(*v % 1000 == k);
              break;
          }
        }
      } else if (t == writers) {
        for (u64 s = 0; s < sweeps; ++s) {
          if (s % 10 == 0) map.clear();
          map.erase_if([](const u64& k, const u64&) { return k % 2 == 1; });
        }
      } else if (t == writers + 1) {
        for (u64 s = 0; s < sweeps; ++s) {
          map.visit_all([&](const u64& k, u64& v) {
            failures.expect(v % 1000 == k);
            v += 1000;
          });
        }
      } else {
        for (u64 s = 0; s < sweeps; ++s) {
          const auto snap = map.snapshot();
          for (const auto& [k, v] : snap) failures.expect(v % 1000 == k);
          std::vector<u64> keys;
          keys.reserve(snap.size());
          for (const auto& entry : snap) keys.push_back(entry.first);
          std::sort(keys.begin(), keys.end());
          failures.expect(std::adjacent_find(keys.begin(), keys.end()) ==
                          keys.end());  // no duplicates
        }
      }
    });
    CHECK(failures.count() == 0);
    const auto snap = map.snapshot();
    CHECK(map.size() == snap.size());
    for (const auto& [k, v] : snap) REQUIRE(v % 1000 == k);
    map.erase_if([](const u64& k, const u64&) { return k % 2 == 1; });
    map.cvisit_all([](const u64& k, const u64&) { REQUIRE(k % 2 == 0); });
    map.clear();
    CHECK(map.empty());
  }
}
