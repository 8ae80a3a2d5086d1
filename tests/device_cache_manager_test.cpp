// tests/device_cache_manager_test.cpp — DeviceCacheManager, the static facade with the original
// API's names: configure before first use, every forwarding function, and configure after first
// use throwing.
//
// The facade's cache is process-wide, so the test cases share it. The first one configures it and
// must run first when the whole file runs in one process (Catch2 runs test cases in declaration
// order by default; ctest runs each case in its own process). The facade runs on steady_clock: the
// tests use time windows far larger than they take, and never sleep.
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <devcache/devcache.hpp>

namespace {

using devcache::AddOutcome;
using devcache::DeviceCacheManager;
using devcache::DeviceEntry;
using devcache::MacAddress;

MacAddress mac(std::uint64_t n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); }

}  // namespace

TEST_CASE("DeviceCacheManager: configure, then the original API works", "[device_cache_manager]") {
  devcache::DeviceCacheOptions options;
  options.capacity = 5;
  options.shard_count = 4;
  options.aging_time = std::chrono::hours(1);
  REQUIRE_NOTHROW(DeviceCacheManager::configure(options));
  options.capacity = 4;  // configuring again before first use replaces the options
  REQUIRE_NOTHROW(DeviceCacheManager::configure(options));

  devcache::DeviceCache<>& cache = DeviceCacheManager::instance();
  CHECK(&cache == &DeviceCacheManager::instance());
  CHECK(cache.options().capacity == std::optional<std::size_t>(4));
  CHECK(cache.shard_count() == 4);

  // add_device_entry, both overloads.
  CHECK(
      DeviceCacheManager::add_device_entry("cam-1", "00:11:22:33:44:55", "10.0.0.7", 554).outcome ==
      AddOutcome::inserted);
  CHECK(DeviceCacheManager::add_device_entry("cam-2", mac(2), devcache::IpAddress::parse("fd00::2"))
            .outcome == AddOutcome::inserted);
  CHECK(DeviceCacheManager::add_device_entry("dup", "0011.2233.4455", "10.0.0.8").outcome ==
        AddOutcome::already_present);
  CHECK_THROWS_AS(DeviceCacheManager::add_device_entry("bad", "00:11", "10.0.0.9"),
                  devcache::ParseError);

  // Lookups.
  const std::optional<DeviceEntry> cam1 =
      DeviceCacheManager::get_device_entry_by_mac_str("00:11:22:33:44:55");
  REQUIRE(cam1);
  CHECK(cam1->device_id == "cam-1");
  CHECK(cam1->port == std::optional<std::uint16_t>(554));
  CHECK(DeviceCacheManager::get_device_entry_by_mac(mac(2))->device_id == "cam-2");
  CHECK_FALSE(DeviceCacheManager::get_device_entry_by_mac_str("00:11:22:33:44:56"));

  // Heartbeats and updates.
  CHECK(DeviceCacheManager::record_heartbeat("00:11:22:33:44:55"));
  CHECK(DeviceCacheManager::record_heartbeat(cam1->mac));
  CHECK_FALSE(DeviceCacheManager::record_heartbeat(mac(9)));
  DeviceEntry renamed = *DeviceCacheManager::get_device_entry_by_mac(mac(2));
  renamed.device_id = "cam-2b";
  CHECK(DeviceCacheManager::update_cache_entry_by_mac_str("02:00:00:00:00:02", renamed));
  CHECK(DeviceCacheManager::update_cache_entry_by_mac(mac(2), renamed));
  CHECK(DeviceCacheManager::get_device_entry_by_mac(mac(2))->device_id == "cam-2b");
  CHECK(DeviceCacheManager::modify_device_entry(mac(2), [](DeviceEntry& e) { e.port = 8080; }));
  CHECK(DeviceCacheManager::get_device_entry_by_mac(mac(2))->port ==
        std::optional<std::uint16_t>(8080));
  CHECK(DeviceCacheManager::get_device_entry_by_mac(mac(2))->device_id == "cam-2b");

  // Collectors.
  CHECK(DeviceCacheManager::collect_entries_with_high_heartbeats(2).size() == 1);
  CHECK(DeviceCacheManager::collect_entries_newer_than(std::uint64_t{3600}).size() == 2);
  CHECK(DeviceCacheManager::collect_entries_newer_than(std::chrono::hours(1)).size() == 2);
  CHECK(DeviceCacheManager::collect_entries_by_ip_pattern("10.0.").size() == 1);
  CHECK(DeviceCacheManager::collect_entries_in_subnet("fd00::/8").size() == 1);
  CHECK(DeviceCacheManager::collect_entries_in_subnet(devcache::IpNetwork::parse("10.0.0.0/8"))
            .size() == 1);
  CHECK(DeviceCacheManager::collect_if([](const DeviceEntry& e) { return e.ip.is_v6(); })
            .front()
            .mac == mac(2));

  // The capacity configured above applies.
  CHECK(
      DeviceCacheManager::add_device_entry("c", mac(3), devcache::IpAddress::from_v4(3)).outcome ==
      AddOutcome::inserted);
  CHECK(
      DeviceCacheManager::add_device_entry("d", mac(4), devcache::IpAddress::from_v4(4)).outcome ==
      AddOutcome::inserted);
  CHECK(
      DeviceCacheManager::add_device_entry("e", mac(5), devcache::IpAddress::from_v4(5)).outcome ==
      AddOutcome::refused_full);

  // Removal, aging (nothing is an hour old), snapshot and stats.
  CHECK(DeviceCacheManager::remove_device(mac(4)));
  CHECK(DeviceCacheManager::remove_device("02:00:00:00:00:03"));
  CHECK_FALSE(DeviceCacheManager::remove_device(mac(4)));
  CHECK(DeviceCacheManager::sweep_expired(4).empty());
  CHECK(DeviceCacheManager::sweep_all_expired().empty());
  std::vector<DeviceEntry> swept;
  CHECK(DeviceCacheManager::sweep_expired(swept, 4) == 0);
  CHECK(DeviceCacheManager::sweep_all_expired(swept) == 0);
  CHECK(swept.empty());
  const std::vector<DeviceEntry> snapshot = DeviceCacheManager::get_cache_snapshot();
  REQUIRE(snapshot.size() == 2);
  CHECK(snapshot[0].device_id == "cam-1");  // sorted by MAC: 00:11:... before 02:00:...
  CHECK(snapshot[1].device_id == "cam-2b");
  const devcache::CacheStats stats = DeviceCacheManager::get_cache_stats();
  CHECK(stats.entries == 2);
  CHECK(stats.capacity == std::optional<std::size_t>(4));
  CHECK(stats.adds == 4);
  CHECK(stats.refused_adds == 1);
  CHECK(stats.heartbeats == 2);
  CHECK(stats.total_heartbeats == 2);
  CHECK(stats.lookups == 7);
  CHECK(stats.misses == 1);
  CHECK(stats.updates == 3);
  CHECK(stats.removals == 2);
  CHECK(stats.shard_count == 4);
}

TEST_CASE("DeviceCacheManager: configure after first use throws", "[device_cache_manager]") {
  (void)DeviceCacheManager::get_cache_stats();  // makes sure the cache exists, in any run order
  const devcache::CacheStats before = DeviceCacheManager::get_cache_stats();
  CHECK_THROWS_AS(DeviceCacheManager::configure(devcache::DeviceCacheOptions{}), std::logic_error);
  CHECK_THROWS_WITH(DeviceCacheManager::configure(devcache::DeviceCacheOptions{}),
                    "DeviceCacheManager::configure: the device cache already exists; configure "
                    "must be called before its first use");
  // The cache is unchanged, and still the same object.
  CHECK(DeviceCacheManager::get_cache_stats() == before);
  CHECK(&DeviceCacheManager::instance() == &DeviceCacheManager::instance());
}
