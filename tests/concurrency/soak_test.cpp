// tests/concurrency/soak_test.cpp — a long mixed run of everything at once, over ShardedMap and
// DeviceCache: readers and writers on overlapping keys, throwing callbacks, a MAC flood against a
// capped cache while known devices heartbeat, removals, collects, snapshots and sweeps, with 9
// threads on however many cores there are.
//
// The run is split into rounds of a few seconds. Within a round, threads count what they did;
// after each round (threads joined) every invariant is checked exactly: each map key's successful
// inserts and erases net to its presence, values keep their key's residue, the cache's statistics
// add up, its size never exceeded the capacity, no known device was displaced, and each holds
// exactly the heartbeats sent to it. Each thread also records the longest it went without
// completing an operation (liveness; the bound is generous).
//
//   soak_test "[stress]"      the long soak (hidden): DEVCACHE_SOAK_SECONDS, default 180;
//                             scripts/soak.sh [minutes] builds the tsan preset and runs it.
//   soak_test                 the short version CI runs: DEVCACHE_SOAK_SECONDS, default 3.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <latch>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <devcache/device_cache.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using u64 = std::uint64_t;
using Clock = std::chrono::steady_clock;
using devcache::AddOutcome;
using devcache::MacAddress;

constexpr std::size_t map_threads = 4;  // mixed readers and writers on one ShardedMap
constexpr u64 key_range = 2048;         // map keys; every value v satisfies v % 4096 == key
constexpr u64 residue = 4096;
constexpr std::size_t capacity = 5'000;  // the cache's
constexpr u64 known = 200;               // known devices, heartbeating
constexpr std::chrono::seconds starvation_bound{5};

MacAddress known_mac(u64 i) { return MacAddress::from_u64(0x00'00'5E'00'00'00ULL + i); }
MacAddress spoofed_mac(u64 r) {
  return MacAddress::from_u64((r & MacAddress::max_value) | 0x02'00'00'00'00'00ULL);
}

struct Totals {
  u64 ops = 0;
  u64 rounds = 0;
  Clock::duration worst_gap{};
};

// Counters one thread keeps for a round.
struct ThreadCounts {
  std::vector<u64> inserted = std::vector<u64>(key_range, 0);
  std::vector<u64> erased = std::vector<u64>(key_range, 0);
  std::vector<u64> beats = std::vector<u64>(known, 0);
  u64 ops = 0;
  u64 bad = 0;  // invariant violations seen by the thread itself
  u64 adds = 0;
  u64 refused = 0;
  u64 present = 0;
  u64 evicted = 0;
  u64 removed = 0;
  u64 beats_missed = 0;
  Clock::duration longest_gap{};
};

class Soak {
 public:
  Soak() : cache_(options()) {
    for (u64 i = 0; i < known; ++i) {
      REQUIRE(cache_.add_device_entry("known", known_mac(i), ip_).outcome == AddOutcome::inserted);
      REQUIRE(cache_.record_heartbeat(known_mac(i)));
    }
    known_beats_.assign(known, 1);
    present_ = std::vector<u64>(key_range, 0);
  }

  // One round of `length`; returns the operations done. Checks everything afterwards.
  void round(Clock::duration length, u64 round_index, Totals& totals) {
    constexpr std::size_t threads = map_threads + 5;
    std::vector<ThreadCounts> counts(threads);
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> max_size{0};
    std::latch start(static_cast<std::ptrdiff_t>(threads));
    const Clock::time_point deadline = Clock::now() + length;
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        start.arrive_and_wait();
        ThreadCounts& c = counts[t];
        std::mt19937_64 rng(round_index * 1000 + t);
        Clock::time_point last = Clock::now();
        for (u64 j = 0; !stop.load(std::memory_order_relaxed); ++j) {
          step(t, rng, c, max_size);
          ++c.ops;
          const Clock::time_point now = Clock::now();
          c.longest_gap = std::max(c.longest_gap, now - last);
          last = now;
          if (t == 0 && now >= deadline) stop.store(true);
        }
      });
    }
    for (std::thread& th : pool) th.join();

    // --- the checks, exact, with no thread running ---
    u64 bad = 0;
    for (std::size_t t = 0; t < threads; ++t) {
      bad += counts[t].bad;
      totals.ops += counts[t].ops;
      totals.worst_gap = std::max(totals.worst_gap, counts[t].longest_gap);
    }
    CHECK(bad == 0);
    // The map: per key, successful inserts and erases alternate, so they net to its presence.
    u64 wrong_keys = 0;
    for (u64 k = 0; k < key_range; ++k) {
      u64 net = present_[k];
      for (std::size_t t = 0; t < threads; ++t) net += counts[t].inserted[k];
      for (std::size_t t = 0; t < threads; ++t) net -= counts[t].erased[k];
      const std::optional<u64> v = map_.find(k);
      if (net > 1 || v.has_value() != (net == 1) || (v && *v % residue != k)) ++wrong_keys;
      present_[k] = net;
    }
    CHECK(wrong_keys == 0);
    const auto snap = map_.snapshot();
    CHECK(snap.size() == map_.size());
    // The cache.
    u64 adds = 0;
    u64 refused = 0;
    u64 evicted = 0;
    u64 removed = 0;
    u64 missed = 0;
    for (std::size_t t = 0; t < threads; ++t) {
      adds += counts[t].adds;
      refused += counts[t].refused;
      evicted += counts[t].evicted;
      removed += counts[t].removed;
      missed += counts[t].beats_missed;
      for (u64 i = 0; i < known; ++i) known_beats_[i] += counts[t].beats[i];
    }
    adds_ += adds;
    refused_ += refused;
    evicted_ += evicted;
    removed_ += removed;
    const devcache::CacheStats s = cache_.get_cache_stats();
    CHECK(max_size.load() <= capacity);
    CHECK(s.entries <= capacity);
    CHECK(s.adds == known + adds_);
    CHECK(s.refused_adds == refused_);
    CHECK(s.evictions == evicted_);
    CHECK(s.removals == removed_);
    CHECK(s.entries == s.adds - s.removals - s.evictions - s.expirations);
    CHECK(missed == 0);  // no known device was ever displaced
    const auto entries = cache_.get_cache_snapshot();
    CHECK(entries.size() == s.entries);
    u64 known_ok = 0;
    for (const auto& e : entries) {
      const u64 v = e.mac.to_u64() - known_mac(0).to_u64();
      if (v < known) known_ok += e.heartbeat_count == known_beats_[v] ? 1 : 0;
    }
    CHECK(known_ok == known);
    CHECK(totals.worst_gap < starvation_bound);
    ++totals.rounds;
  }

 private:
  static devcache::DeviceCacheOptions options() {
    devcache::DeviceCacheOptions o;
    o.capacity = capacity;
    o.capacity_policy = devcache::CapacityPolicy::evict_least_recently_seen;
    o.shard_count = 16;
    return o;
  }

  void step(std::size_t t, std::mt19937_64& rng, ThreadCounts& c, std::atomic<std::size_t>& max) {
    const u64 r = rng() % 100;
    if (t < map_threads) {
      const u64 k = rng() % key_range;
      const auto well_formed = [&c, k](u64 v) { c.bad += v % residue == k ? 0 : 1; };
      if (r < 30) {
        if (const auto v = map_.find(k)) well_formed(*v);
      } else if (r < 45) {
        c.inserted[k] += map_.insert(k, k) ? 1 : 0;
      } else if (r < 55) {
        c.inserted[k] += map_.upsert(
                             k, [&](u64& v) { v += residue; }, k)
                             ? 1
                             : 0;
      } else if (r < 65) {
        map_.visit(k, [&](u64& v) {
          well_formed(v);
          v += residue;
        });
      } else if (r < 80) {
        c.erased[k] += map_.erase(k) ? 1 : 0;
      } else if (r < 90) {
        c.erased[k] += map_.erase_if(k, [&](const u64& v) { return v % 2 == 0; }) ? 1 : 0;
      } else if (r < 97) {
        // A callback that throws: the lock must be released and the value keep what it had.
        try {
          map_.visit(k, [](u64&) { throw std::runtime_error("soak"); });
        } catch (const std::runtime_error&) {
        }
        map_.cvisit(k, well_formed);
      } else if (r < 99) {
        map_.cvisit_shard(k % map_.shard_count(), [&](const u64& key, const u64& v) {
          c.bad += v % residue == key ? 0 : 1;
        });
      } else {
        const auto snap = map_.snapshot();
        for (const auto& [key, v] : snap) c.bad += v % residue == key ? 0 : 1;
      }
      return;
    }
    switch (t - map_threads) {
      case 0:
      case 1: {
        // The flood: spoofed MACs, never heartbeating.
        const devcache::AddResult a = cache_.add_device_entry("spoof", spoofed_mac(rng()), ip_);
        c.adds += a.outcome == AddOutcome::inserted ? 1 : 0;
        c.refused += a.outcome == AddOutcome::refused_full ? 1 : 0;
        c.present += a.outcome == AddOutcome::already_present ? 1 : 0;
        c.evicted += a.evicted;
        // And a remove of a random spoofed MAC now and then (almost always absent).
        if (r == 0) c.removed += cache_.remove_device(spoofed_mac(rng())) ? 1 : 0;
        break;
      }
      case 2: {
        const u64 i = rng() % known;
        if (cache_.record_heartbeat(known_mac(i))) {
          ++c.beats[i];
        } else {
          ++c.beats_missed;
        }
        break;
      }
      case 3: {
        // Lookups of known devices, and collects.
        if (r < 90) {
          c.bad += cache_.get_device_entry_by_mac(known_mac(rng() % known)) ? 0 : 1;
        } else if (r < 95) {
          c.bad += cache_.collect_entries_with_high_heartbeats(1).size() >= known ? 0 : 1;
        } else {
          // (Weakly consistent: a collect racing evictions and inserts may see more than the
          // capacity, each shard at a different moment, as size() may; only snapshots are exact.)
          for (const auto& e : cache_.collect_entries_in_subnet("10.0.0.0/8")) {
            c.bad += e.ip == ip_ ? 0 : 1;
          }
        }
        break;
      }
      default: {
        // Exact size samples (snapshots), statistics and sweeps.
        if (r < 40) {
          const auto snap = cache_.get_cache_snapshot();
          std::size_t prev = max.load();
          while (snap.size() > prev && !max.compare_exchange_weak(prev, snap.size())) {
          }
          c.bad += std::adjacent_find(
                       snap.begin(), snap.end(),
                       [](const auto& a, const auto& b) { return !(a.mac < b.mac); }) == snap.end()
                       ? 0
                       : 1;
        } else if (r < 70) {
          const devcache::CacheStats s = cache_.get_cache_stats();
          c.bad += s.shard_min <= s.shard_max ? 0 : 1;
        } else {
          c.bad += cache_.sweep_expired(2).empty() ? 0 : 1;  // 300 s aging: nothing expires
        }
        std::this_thread::yield();
        break;
      }
    }
  }

  devcache::ShardedMap<u64, u64> map_;
  devcache::DeviceCache<> cache_;
  const devcache::IpAddress ip_ = devcache::IpAddress::parse("10.9.8.7");
  std::vector<u64> present_;
  std::vector<u64> known_beats_;
  u64 adds_ = 0;
  u64 refused_ = 0;
  u64 evicted_ = 0;
  u64 removed_ = 0;
};

double soak_seconds(double fallback) {
  // Read before any thread starts.
  if (const char* env = std::getenv("DEVCACHE_SOAK_SECONDS")) {  // NOLINT(concurrency-mt-unsafe)
    return std::strtod(env, nullptr);
  }
  return fallback;
}

void run_soak(double seconds) {
  Soak soak;
  Totals totals;
  const auto length = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(seconds, 5.0)));
  const Clock::time_point started = Clock::now();
  const Clock::time_point end =
      started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  u64 index = 0;
  do {
    soak.round(length, index++, totals);
  } while (Clock::now() < end);
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  fmt::print(
      "soak: {} operations in {} rounds, {:.0f} s; longest wait of any thread between two "
      "completed operations {} ms\n",
      totals.ops, totals.rounds, elapsed,
      std::chrono::duration_cast<std::chrono::milliseconds>(totals.worst_gap).count());
  CHECK(totals.ops > 0);
}

}  // namespace

TEST_CASE("soak (short): everything at once, checked every round", "[concurrency][soak]") {
  run_soak(soak_seconds(3));
}

TEST_CASE("soak: everything at once for minutes (DEVCACHE_SOAK_SECONDS)", "[.stress][soak]") {
  run_soak(soak_seconds(180));
}
