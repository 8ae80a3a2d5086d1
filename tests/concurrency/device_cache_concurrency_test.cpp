// tests/concurrency/device_cache_concurrency_test.cpp — DeviceCache under concurrent use, over both
// map backends: no heartbeat is lost, concurrent adds agree with a reference set, the capacity is
// never exceeded and its reservation count stays exact under churn, and every reader sees
// well-formed results while writers run. Threads are released together with std::latch; time comes
// from ManualClock. Run under ThreadSanitizer. Catch2's assertions are not thread-safe, so worker
// threads count failures in atomics and the test thread checks the counts after joining.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "run_threads.hpp"

#include <devcache/cuckoo_map.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::test::run_threads;

using devcache::AddOutcome;
using devcache::CapacityPolicy;
using devcache::DeviceCacheOptions;
using devcache::IpAddress;
using devcache::MacAddress;
using devcache::ManualClock;
using namespace std::chrono_literals;

using ShardedCache = devcache::DeviceCache<devcache::ShardedMap, ManualClock>;
using CuckooCache = devcache::DeviceCache<devcache::CuckooMap, ManualClock>;
using Entry = devcache::BasicDeviceEntry<ManualClock>;

MacAddress mac(std::uint64_t n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); }
std::uint64_t index_of(MacAddress m) { return m.to_u64() - 0x02'00'00'00'00'00ULL; }
std::string id(std::uint64_t n) { return "dev-" + std::to_string(n); }
// 10.x.y.z for even n, fd00::n for odd n.
IpAddress ip_of(std::uint64_t n) {
  if (n % 2 == 0) return IpAddress::from_v4(0x0a000000U + static_cast<std::uint32_t>(n));
  std::array<std::uint8_t, 16> bytes{0xfd};
  for (std::size_t i = 0; i < 8; ++i) bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  return IpAddress::from_bytes(bytes);
}

DeviceCacheOptions options(std::size_t shards = 8) {
  DeviceCacheOptions o;
  o.shard_count = shards;
  o.hash_seed = devcache::HashSeed::fixed(7);
  return o;
}

// With CuckooMap, eviction's search for victims, the collectors, snapshots and sweeps each lock the
// whole table, that is all 2^16 of libcuckoo's locks (milliseconds each, and spinning writers
// meanwhile), so the CuckooMap runs of the tests that evict or read the whole cache in a loop do a
// tenth of the work, to stay within a few seconds.
template <class Cache>
constexpr std::uint64_t scaled(std::uint64_t n) {
  return std::is_same_v<Cache, CuckooCache> ? n / 10 : n;
}

}  // namespace

TEMPLATE_TEST_CASE("DeviceCache: concurrent heartbeats are never lost", "[concurrency]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  constexpr std::uint64_t devices = 32;
  TestType cache(options());
  constexpr std::size_t threads = 8;
  constexpr std::uint64_t per_thread = 20'000;  // a multiple of `devices`
  for (std::uint64_t n = 0; n < devices; ++n) {
    REQUIRE(cache.add_device_entry(id(n), mac(n), ip_of(n)).outcome == AddOutcome::inserted);
  }
  std::atomic<bool> done{false};
  // One more thread moves the clock while the heartbeats run.
  std::thread ticker([&done] {
    while (!done.load()) {
      ManualClock::advance(1ms);
      std::this_thread::yield();
    }
  });
  std::atomic<std::uint64_t> missing{0};
  run_threads(threads, [&cache, &missing](std::size_t t) {
    if (t % 2 == 1) {
      // Odd threads send the same heartbeats in batches of 16 (record_heartbeats).
      std::vector<MacAddress> batch;
      for (std::uint64_t i = 0; i < per_thread; ++i) {
        batch.push_back(mac((i + t * 5) % devices));
        if (batch.size() == 16 || i + 1 == per_thread) {
          const std::size_t found = cache.record_heartbeats(std::span<const MacAddress>(batch));
          missing.fetch_add(batch.size() - found);
          batch.clear();
        }
      }
      return;
    }
    for (std::uint64_t i = 0; i < per_thread; ++i) {
      // Every thread hits every device, in a different order: maximal contention per device.
      if (!cache.record_heartbeat(mac((i + t * 5) % devices))) missing.fetch_add(1);
    }
  });
  done.store(true);
  ticker.join();
  CHECK(missing.load() == 0);

  const std::uint64_t sent = threads * per_thread;
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.heartbeats == sent);
  CHECK(s.total_heartbeats == sent);
  std::uint64_t sum = 0;
  for (const Entry& e : cache.get_cache_snapshot()) {
    CHECK(e.heartbeat_count == sent / devices);
    CHECK(e.last_seen >= e.first_seen);
    CHECK(e.last_seen <= ManualClock::now());
    sum += e.heartbeat_count;
  }
  CHECK(sum == sent);
}

TEMPLATE_TEST_CASE("DeviceCache: modify_device_entry loses no concurrent heartbeat",
                   "[concurrency]", ShardedCache, CuckooCache) {
  // The documented way to change a device's IP or port while it keeps sending heartbeats. (The
  // copy-change-update_cache_entry_by_mac pattern loses the heartbeats recorded between the copy
  // and the update.)
  ManualClock::reset();
  constexpr std::uint64_t devices = 16;
  constexpr std::uint64_t per_thread = 20'000;  // a multiple of `devices`
  TestType cache(options());
  for (std::uint64_t n = 0; n < devices; ++n) {
    REQUIRE(cache.add_device_entry(id(n), mac(n), ip_of(n)).outcome == AddOutcome::inserted);
  }
  std::atomic<std::uint64_t> failures{0};
  run_threads(4, [&cache, &failures](std::size_t t) {
    for (std::uint64_t i = 0; i < per_thread; ++i) {
      const MacAddress m = mac((i + t * 3) % devices);
      if (t < 2) {
        if (!cache.record_heartbeat(m)) failures.fetch_add(1);
        continue;
      }
      const bool found = cache.modify_device_entry(m, [t, i](Entry& e) {
        e.port = static_cast<std::uint16_t>(t * 10'000 + i % 10'000);
        e.ip = ip_of(i);
      });
      if (!found) failures.fetch_add(1);
    }
  });
  CHECK(failures.load() == 0);
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.heartbeats == 2 * per_thread);
  CHECK(s.updates == 2 * per_thread);
  CHECK(s.total_heartbeats == 2 * per_thread);
  for (const Entry& e : cache.get_cache_snapshot()) {
    CHECK(e.heartbeat_count == 2 * per_thread / devices);
    CHECK(e.port.has_value());
  }
}

TEMPLATE_TEST_CASE("DeviceCache: concurrent adds of overlapping MAC sets", "[concurrency]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  constexpr std::size_t threads = 8;
  constexpr std::uint64_t per_thread = 4'000;
  // Thread t adds [t * per_thread / 2, t * per_thread / 2 + per_thread): each half overlaps a
  // neighbour's.
  std::vector<std::uint64_t> inserted(threads, 0);
  std::vector<std::uint64_t> present(threads, 0);
  run_threads(threads, [&](std::size_t t) {
    const std::uint64_t first = t * per_thread / 2;
    for (std::uint64_t n = first; n < first + per_thread; ++n) {
      const AddOutcome o = cache.add_device_entry(id(n), mac(n), ip_of(n), 80).outcome;
      if (o == AddOutcome::inserted) ++inserted[t];
      if (o == AddOutcome::already_present) ++present[t];
    }
  });
  std::set<MacAddress> reference;
  for (std::size_t t = 0; t < threads; ++t) {
    for (std::uint64_t n = t * per_thread / 2; n < t * per_thread / 2 + per_thread; ++n) {
      reference.insert(mac(n));
    }
  }
  std::uint64_t total_inserted = 0;
  std::uint64_t total_present = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    total_inserted += inserted[t];
    total_present += present[t];
  }
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(total_inserted + total_present == threads * per_thread);
  CHECK(total_inserted == reference.size());
  CHECK(s.adds == total_inserted);
  CHECK(s.entries == reference.size());
  CHECK(cache.size() == reference.size());
  const std::vector<Entry> snapshot = cache.get_cache_snapshot();
  std::set<MacAddress> stored;
  for (const Entry& e : snapshot) {
    stored.insert(e.mac);
    CHECK(e.device_id == id(index_of(e.mac)));
    CHECK(e.ip == ip_of(index_of(e.mac)));
  }
  CHECK(stored == reference);
}

TEMPLATE_TEST_CASE("DeviceCache: concurrent adds never exceed the capacity", "[concurrency]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  const auto policy =
      GENERATE(CapacityPolicy::refuse_new, CapacityPolicy::evict_least_recently_seen);
  CAPTURE(policy);
  constexpr std::size_t capacity = 300;
  DeviceCacheOptions o = options();
  o.capacity = capacity;
  o.capacity_policy = policy;
  TestType cache(o);
  constexpr std::size_t threads = 6;
  constexpr std::uint64_t per_thread = scaled<TestType>(1'500);

  // A known device that keeps heartbeating, added before the flood.
  REQUIRE(cache.add_device_entry("known", mac(999'999), ip_of(0)).outcome == AddOutcome::inserted);
  REQUIRE(cache.record_heartbeat(mac(999'999)));

  std::atomic<bool> done{false};
  std::atomic<std::size_t> max_seen{0};
  std::atomic<std::uint64_t> samples{0};
  std::atomic<std::uint64_t> known_missing{0};
  // The checker samples continuously for ShardedMap; for CuckooMap (where a snapshot takes all
  // 2^16 locks) about 10 times, spread over the adds.
  std::atomic<std::uint64_t> attempted{0};
  const std::uint64_t step =
      std::is_same_v<TestType, CuckooCache> ? threads * per_thread / 10 : std::uint64_t{0};
  std::thread checker([&] {
    for (std::uint64_t next = step; !done.load();) {
      if (attempted.load() < next) {
        std::this_thread::yield();
        continue;
      }
      next += step;
      // A snapshot is exact (every shard locked at once); size() is exact for monotonic growth,
      // which is what refuse_new sees.
      std::size_t seen = cache.get_cache_snapshot().size();
      if (policy == CapacityPolicy::refuse_new) seen = std::max(seen, cache.size());
      std::size_t prev = max_seen.load();
      while (seen > prev && !max_seen.compare_exchange_weak(prev, seen)) {
      }
      samples.fetch_add(1);
      if (!cache.record_heartbeat(mac(999'999))) known_missing.fetch_add(1);
      std::this_thread::yield();
    }
  });
  std::vector<std::uint64_t> inserted(threads, 0);
  std::vector<std::uint64_t> refused(threads, 0);
  std::vector<std::uint64_t> evicted(threads, 0);
  run_threads(threads, [&](std::size_t t) {
    for (std::uint64_t i = 0; i < per_thread; ++i) {
      const std::uint64_t n = t * per_thread + i;  // all distinct
      // Halfway through, writer 0 waits for the checker's first sample, so at least one
      // sample is always taken while adds are still running (the scheduler cannot starve it).
      if (t == 0 && i == per_thread / 2) {
        while (samples.load() == 0) std::this_thread::yield();
      }
      attempted.fetch_add(1);
      const devcache::AddResult r = cache.add_device_entry(id(n), mac(n), ip_of(n));
      if (r.outcome == AddOutcome::inserted) ++inserted[t];
      if (r.outcome == AddOutcome::refused_full) ++refused[t];
      evicted[t] += r.evicted;
    }
  });
  done.store(true);
  checker.join();

  std::uint64_t total_inserted = 0;
  std::uint64_t total_refused = 0;
  std::uint64_t total_evicted = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    total_inserted += inserted[t];
    total_refused += refused[t];
    total_evicted += evicted[t];
  }
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(samples.load() > 0);
  CHECK(max_seen.load() <= capacity);
  CHECK(total_inserted + total_refused == threads * per_thread);
  CHECK(s.adds == total_inserted + 1);
  CHECK(s.refused_adds == total_refused);
  CHECK(s.evictions == total_evicted);
  CHECK(s.entries <= capacity);
  CHECK(s.entries == total_inserted + 1 - total_evicted);
  if (policy == CapacityPolicy::refuse_new) {
    CHECK(total_inserted == capacity - 1);  // exact: no add is refused while there is room
    CHECK(total_evicted == 0);
    CHECK(known_missing.load() == 0);  // refuse_new never displaces a cached device
    CHECK(cache.get_device_entry_by_mac(mac(999'999)));
  }
}

TEMPLATE_TEST_CASE("DeviceCache: the capacity reservation stays exact under churn", "[concurrency]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  const auto policy =
      GENERATE(CapacityPolicy::refuse_new, CapacityPolicy::evict_least_recently_seen);
  CAPTURE(policy);
  constexpr std::size_t capacity = 200;
  DeviceCacheOptions o = options();
  o.capacity = capacity;
  o.capacity_policy = policy;
  TestType cache(o);
  constexpr std::size_t threads = 6;
  constexpr std::uint64_t universe = 400;  // more MACs than room
  run_threads(threads, [&](std::size_t t) {
    constexpr std::uint64_t iterations = scaled<TestType>(3'000);
    for (std::uint64_t i = 0; i < iterations; ++i) {
      const std::uint64_t n = (i * 7 + t * 13) % universe;
      switch ((i + t) % 4) {
        case 0:
        case 1:
          cache.add_device_entry(id(n), mac(n), ip_of(n));
          break;
        case 2:
          cache.remove_device(mac(n));
          break;
        default:
          cache.record_heartbeat(mac(n));
          break;
      }
      if (t == 0 && i % (iterations / 6) == 0) {
        ManualClock::advance(100s);
        cache.sweep_expired(2);
      }
    }
  });
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries <= capacity);
  CHECK(s.entries == s.adds - s.removals - s.expirations - s.evictions);
  // Every reservation held belongs to a cached device: exactly capacity - entries new devices fit,
  // and the next is refused (or, with eviction, makes room by evicting).
  const std::size_t room = capacity - s.entries;
  for (std::uint64_t n = 0; n < room; ++n) {
    CHECK(cache.add_device_entry("fill", mac(10'000 + n), ip_of(n)) ==
          devcache::AddResult{AddOutcome::inserted, 0});
  }
  const devcache::AddResult next = cache.add_device_entry("over", mac(20'000), ip_of(0));
  if (policy == CapacityPolicy::refuse_new) {
    CHECK(next == devcache::AddResult{AddOutcome::refused_full, 0});
  } else {
    CHECK(next.outcome == AddOutcome::inserted);
    CHECK(next.evicted >= 1);
  }
  CHECK(cache.get_cache_snapshot().size() <= capacity);
}

TEMPLATE_TEST_CASE("DeviceCache: readers see well-formed results while writers run",
                   "[concurrency]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options();
  o.capacity = 500;
  o.capacity_policy = CapacityPolicy::evict_least_recently_seen;
  TestType cache(o);
  constexpr std::uint64_t universe = 800;
  constexpr std::size_t writers = 4;
  constexpr std::size_t readers = 3;
  std::atomic<std::size_t> writers_left{writers};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> reader_rounds{0};
  const auto well_formed = [](const Entry& e) {
    const std::uint64_t n = index_of(e.mac);
    return n < universe && e.device_id == id(n) && e.ip == ip_of(n) && e.first_seen <= e.last_seen;
  };
  run_threads(writers + readers, [&](std::size_t t) {
    if (t < writers) {
      constexpr std::uint64_t iterations = scaled<TestType>(4'000);
      for (std::uint64_t i = 0; i < iterations; ++i) {
        const std::uint64_t n = (i * 11 + t * 101) % universe;
        switch (i % 5) {
          case 0:
            cache.add_device_entry(id(n), mac(n), ip_of(n), static_cast<std::uint16_t>(n));
            break;
          case 1:
          case 2:
            cache.record_heartbeat(mac(n));
            break;
          case 3:
            if (auto e = cache.get_device_entry_by_mac(mac(n))) {
              e->port = 1;
              cache.update_cache_entry_by_mac(mac(n), *e);
            }
            break;
          default:
            if (i % 20 == 4) cache.remove_device(mac(n));
            break;
        }
        if (i % (iterations / 10) == 0) ManualClock::advance(30s);
      }
      writers_left.fetch_sub(1);
      return;
    }
    std::uint64_t rounds = 0;
    std::uint64_t bad = 0;
    const auto expect = [&bad](bool ok) { bad += ok ? 0 : 1; };
    // Until the writers are done (CuckooMap: 3 rounds, each locks the whole table 7 times).
    const std::uint64_t max_rounds = std::is_same_v<TestType, CuckooCache> ? 3 : ~std::uint64_t{0};
    while ((writers_left.load() != 0 && rounds < max_rounds) || rounds < 3) {
      ++rounds;
      for (const Entry& e : cache.collect_entries_with_high_heartbeats(2)) {
        expect(well_formed(e) && e.heartbeat_count >= 2);
      }
      for (const Entry& e : cache.collect_entries_newer_than(std::uint64_t{60})) {
        expect(well_formed(e));
      }
      for (const Entry& e : cache.collect_entries_by_ip_pattern("10.")) {
        expect(well_formed(e) && e.ip.is_v4());
      }
      for (const Entry& e : cache.collect_entries_in_subnet("fd00::/8")) {
        expect(well_formed(e) && e.ip.is_v6());
      }
      for (const Entry& e : cache.collect_if([](const Entry& x) { return x.port == 1; })) {
        expect(well_formed(e) && e.port == 1);
      }
      const std::vector<Entry> snapshot = cache.get_cache_snapshot();
      expect(snapshot.size() <= 500);
      // Sorted, without duplicates.
      expect(std::adjacent_find(snapshot.begin(), snapshot.end(),
                                [](const Entry& x, const Entry& y) { return !(x.mac < y.mac); }) ==
             snapshot.end());
      for (const Entry& e : snapshot) expect(well_formed(e));
      const devcache::CacheStats s = cache.get_cache_stats();
      expect(s.entries <= universe && s.shard_min <= s.shard_max);
      if (t == writers) cache.sweep_expired(1);  // one reader also ages, a shard at a time
    }
    malformed.fetch_add(bad);
    reader_rounds.fetch_add(rounds);
  });
  CHECK(malformed.load() == 0);
  CHECK(reader_rounds.load() >= 3 * readers);
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries <= 500);
  CHECK(s.entries == s.adds - s.removals - s.expirations - s.evictions);
}
