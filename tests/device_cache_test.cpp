// tests/device_cache_test.cpp — DeviceCache on a ManualClock (no test sleeps): add outcomes, the
// string overloads and their ParseErrors, lookups, updates, heartbeats, removal, the collectors
// (heartbeats, age, IP prefix, IPv4 and IPv6 subnets, predicate), snapshots, exact statistics,
// aging sweeps (bounded and full), and both capacity policies including a MAC flood. The core
// suite is a typed suite run over both map backends; ManualClock and DeviceEntry's formatting are
// tested here too.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <devcache/cuckoo_map.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::AddOutcome;
using devcache::AddResult;
using devcache::CapacityPolicy;
using devcache::DeviceCacheOptions;
using devcache::IpAddress;
using devcache::IpNetwork;
using devcache::MacAddress;
using devcache::ManualClock;
using devcache::ParseError;
using namespace std::chrono_literals;

using ShardedCache = devcache::DeviceCache<devcache::ShardedMap, ManualClock>;
using CuckooCache = devcache::DeviceCache<devcache::CuckooMap, ManualClock>;
using Entry = devcache::BasicDeviceEntry<ManualClock>;

static_assert(std::is_same_v<ShardedCache::entry_type, Entry>);
static_assert(std::is_same_v<devcache::DeviceCache<>::entry_type, devcache::DeviceEntry>);
static_assert(std::is_same_v<devcache::DeviceCache<>::map_type,
                             devcache::ShardedMap<MacAddress, devcache::DeviceEntry>>);

MacAddress mac(std::uint64_t n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); }
IpAddress ip(std::string_view text) { return IpAddress::parse(text); }
IpAddress ip4(std::uint32_t n) { return IpAddress::from_v4(0x0a000000U + n); }  // 10.x.y.z
std::string id(std::uint64_t n) { return "dev-" + std::to_string(n); }

// Options with a fixed seed, so that failures reproduce.
DeviceCacheOptions options(std::size_t shards = 8) {
  DeviceCacheOptions o;
  o.shard_count = shards;
  o.hash_seed = devcache::HashSeed::fixed(42);
  return o;
}

template <class AnyEntry>
std::set<MacAddress> macs_of(const std::vector<AnyEntry>& entries) {
  std::set<MacAddress> out;
  for (const AnyEntry& e : entries) out.insert(e.mac);
  return out;
}

template <class... Ns>
std::set<MacAddress> macs(Ns... ns) {
  return std::set<MacAddress>{mac(static_cast<std::uint64_t>(ns))...};
}

// Every counter of CacheStats, for comparing against expected values in one line.
struct Counters {
  std::uint64_t adds = 0, refused_adds = 0, heartbeats = 0, lookups = 0, misses = 0, updates = 0,
                removals = 0, expirations = 0, evictions = 0;
  friend bool operator==(const Counters&, const Counters&) = default;
};
Counters counters(const devcache::CacheStats& s) {
  return {s.adds,    s.refused_adds, s.heartbeats,  s.lookups,  s.misses,
          s.updates, s.removals,     s.expirations, s.evictions};
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<Counters> {
  static std::string convert(const Counters& c) {
    return fmt::format(
        "{{adds={} refused_adds={} heartbeats={} lookups={} misses={} updates={} removals={} "
        "expirations={} evictions={}}}",
        c.adds, c.refused_adds, c.heartbeats, c.lookups, c.misses, c.updates, c.removals,
        c.expirations, c.evictions);
  }
};
template <>
struct StringMaker<MacAddress> {
  static std::string convert(const MacAddress& m) { return m.to_string(); }
};
template <>
struct StringMaker<AddOutcome> {
  static std::string convert(AddOutcome o) { return std::string(devcache::to_string(o)); }
};
}  // namespace Catch

// -------------------------------------------------------------------------------------------------
// ManualClock and DeviceEntry

TEST_CASE("ManualClock moves only when told to", "[device_cache][manual_clock]") {
  static_assert(std::chrono::is_clock_v<ManualClock>);
  static_assert(!ManualClock::is_steady);
  ManualClock::reset();
  CHECK(ManualClock::now() == ManualClock::time_point{});
  ManualClock::advance(5s);
  CHECK(ManualClock::now().time_since_epoch() == 5s);
  ManualClock::advance(-1500ms);
  CHECK(ManualClock::now().time_since_epoch() == 3500ms);
  ManualClock::set(ManualClock::time_point(1h));
  CHECK(ManualClock::now().time_since_epoch() == 1h);
  ManualClock::reset();
  CHECK(ManualClock::now().time_since_epoch() == 0s);
}

TEST_CASE("DeviceEntry formats with fmt and compares field by field", "[device_cache][entry]") {
  Entry e{"cam \"1\"",
          MacAddress::parse("00:11:22:33:44:55"),
          ip("10.0.0.7"),
          554,
          3,
          ManualClock::time_point(1203500ms),
          ManualClock::time_point(1263500ms)};
  CHECK(
      fmt::format("{}", e) ==
      R"(DeviceEntry{id="cam \"1\"", mac=00:11:22:33:44:55, ip=10.0.0.7, port=554, heartbeats=3, )"
      R"(first_seen=1203.500000000s, last_seen=1263.500000000s})");
  Entry f = e;
  CHECK(f == e);
  f.port.reset();
  f.ip = ip("fd00::7");
  f.last_seen = ManualClock::time_point(-1ns);
  CHECK(f != e);
  CHECK(
      fmt::format("{}", f) ==
      R"(DeviceEntry{id="cam \"1\"", mac=00:11:22:33:44:55, ip=fd00::7, port=none, heartbeats=3, )"
      R"(first_seen=1203.500000000s, last_seen=-0.000000001s})");
  CHECK(fmt::format("{}", devcache::DeviceEntry{}) ==
        R"(DeviceEntry{id="", mac=00:00:00:00:00:00, ip=0.0.0.0, port=none, heartbeats=0, )"
        R"(first_seen=0.000000000s, last_seen=0.000000000s})");
}

TEST_CASE("DeviceCache rejects a negative aging time", "[device_cache]") {
  DeviceCacheOptions o = options();
  o.aging_time = -1s;
  CHECK_THROWS_WITH(ShardedCache(o),
                    "DeviceCache: aging_time must not be negative (got -1000000000ns)");
  CHECK_THROWS_AS(CuckooCache(o), std::invalid_argument);
}

TEST_CASE("AddOutcome, CapacityPolicy and CacheStats format with fmt", "[device_cache]") {
  CHECK(fmt::format("{}", AddOutcome::inserted) == "inserted");
  CHECK(fmt::format("{:>16}", AddOutcome::already_present) == " already_present");
  CHECK(fmt::format("{}", AddOutcome::refused_full) == "refused_full");
  CHECK(fmt::format("{}", CapacityPolicy::refuse_new) == "refuse_new");
  CHECK(fmt::format("{}", CapacityPolicy::evict_least_recently_seen) ==
        "evict_least_recently_seen");
  devcache::CacheStats s;
  s.entries = 3;
  s.capacity = 100;
  s.total_heartbeats = 7;
  s.adds = 4;
  s.heartbeats = 7;
  s.lookups = 2;
  s.misses = 1;
  s.removals = 1;
  s.shard_count = 16;
  s.shard_max = 1;
  s.shard_mean = 3.0 / 16;
  CHECK(fmt::format("{}", s) ==
        "entries=3/100 heartbeats_held=7 adds=4 refused_adds=0 heartbeats=7 lookups=2 misses=1 "
        "updates=0 removals=1 expirations=0 evictions=0 shards=16 (min=0 max=1 mean=0.19)");
  s.capacity.reset();
  CHECK(fmt::format("{}", s).starts_with("entries=3/unbounded heartbeats_held=7 "));
}

// -------------------------------------------------------------------------------------------------
// The typed core suite: every call, over both backends

TEMPLATE_TEST_CASE("DeviceCache: add_device_entry outcomes and the stored entry", "[device_cache]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  ManualClock::advance(100s);
  TestType cache(options());

  const AddResult first = cache.add_device_entry("cam-1", mac(1), ip("10.0.0.1"), 554);
  CHECK(first == AddResult{AddOutcome::inserted, 0});
  const std::optional<Entry> e = cache.get_device_entry_by_mac(mac(1));
  REQUIRE(e);
  CHECK(*e ==
        Entry{"cam-1", mac(1), ip("10.0.0.1"), 554, 0, ManualClock::now(), ManualClock::now()});

  // Adding again, even with other data, leaves the cached entry alone.
  ManualClock::advance(10s);
  CHECK(cache.add_device_entry("other", mac(1), ip("10.9.9.9")).outcome ==
        AddOutcome::already_present);
  CHECK(cache.get_device_entry_by_mac(mac(1)) == e);

  CHECK(cache.add_device_entry("cam-2", mac(2), ip("fd00::2")).outcome == AddOutcome::inserted);
  const std::optional<Entry> e2 = cache.get_device_entry_by_mac(mac(2));
  REQUIRE(e2);
  CHECK_FALSE(e2->port.has_value());
  CHECK(e2->ip.is_v6());
  CHECK(e2->first_seen.time_since_epoch() == 110s);
  CHECK(cache.size() == 2);

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries == 2);
  CHECK(counters(s) == Counters{.adds = 2, .lookups = 3});
}

TEMPLATE_TEST_CASE("DeviceCache: string overloads parse, and a ParseError changes nothing",
                   "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());

  // Any MAC spelling MacAddress::parse accepts.
  CHECK(cache.add_device_entry("a", "00:11:22:33:44:55", "10.0.0.1", 80).outcome ==
        AddOutcome::inserted);
  CHECK(cache.add_device_entry("b", "0011.2233.4455", "10.0.0.2").outcome ==
        AddOutcome::already_present);
  CHECK(cache.add_device_entry("c", "00-11-22-33-44-66", "2001:db8::1").outcome ==
        AddOutcome::inserted);
  const MacAddress a = MacAddress::parse("00:11:22:33:44:55");
  const MacAddress c = MacAddress::parse("00:11:22:33:44:66");
  REQUIRE(cache.get_device_entry_by_mac_str("001122334455"));
  CHECK(cache.get_device_entry_by_mac_str("001122334455")->device_id == "a");
  CHECK(cache.get_device_entry_by_mac_str("00:11:22:33:44:66")->ip == ip("2001:db8::1"));
  CHECK_FALSE(cache.get_device_entry_by_mac_str("00:11:22:33:44:77"));

  const std::vector<Entry> before = cache.get_cache_snapshot();
  const Counters counted = counters(cache.get_cache_stats());

  CHECK_THROWS_WITH(
      cache.add_device_entry("x", "00:11:22:33:44:5g", "10.0.0.9"),
      R"(invalid MAC address "00:11:22:33:44:5g": 'g' at position 16 is not a hex digit)");
  CHECK_THROWS_WITH(cache.add_device_entry("x", "00:11:22:33:44:99", "10.0.0.300"),
                    R"(invalid IP address "10.0.0.300": not a valid IPv4 or IPv6 address)");
  CHECK_THROWS_AS(cache.add_device_entry("x", "", ""), ParseError);
  CHECK_THROWS_AS(cache.get_device_entry_by_mac_str("nope"), ParseError);
  CHECK_THROWS_AS(cache.update_cache_entry_by_mac_str("nope", before.front()), ParseError);
  CHECK_THROWS_AS(cache.record_heartbeat(std::string_view("00:11:22:33:44")), ParseError);
  CHECK_THROWS_AS(cache.remove_device(std::string_view("00:11:22:33:44:55:66")), ParseError);
  CHECK_THROWS_AS(cache.collect_entries_in_subnet("10.0.0.1/8"), ParseError);

  CHECK(cache.get_cache_snapshot() == before);
  CHECK(counters(cache.get_cache_stats()) == counted);  // parse errors are not counted

  // The string forms of heartbeat, update and remove.
  CHECK(cache.record_heartbeat(std::string_view("00:11:22:33:44:55")));
  CHECK_FALSE(cache.record_heartbeat(std::string_view("00:11:22:33:44:77")));
  CHECK(cache.get_device_entry_by_mac(a)->heartbeat_count == 1);
  Entry changed = *cache.get_device_entry_by_mac(c);
  changed.device_id = "renamed";
  CHECK(cache.update_cache_entry_by_mac_str("00-11-22-33-44-66", changed));
  CHECK(cache.get_device_entry_by_mac(c)->device_id == "renamed");
  CHECK(cache.remove_device(std::string_view("0011.2233.4466")));
  CHECK_FALSE(cache.remove_device(std::string_view("0011.2233.4466")));
  CHECK(cache.size() == 1);
}

TEMPLATE_TEST_CASE("DeviceCache: lookups and misses are counted", "[device_cache]", ShardedCache,
                   CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  cache.add_device_entry("a", mac(1), ip4(1));
  CHECK(cache.get_device_entry_by_mac(mac(1)));
  CHECK(cache.get_device_entry_by_mac(mac(1)));
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(2)));
  CHECK_FALSE(cache.get_device_entry_by_mac_str("02:00:00:00:00:03"));
  CHECK(counters(cache.get_cache_stats()) == Counters{.adds = 1, .lookups = 4, .misses = 2});
}

TEMPLATE_TEST_CASE("DeviceCache: update_cache_entry_by_mac replaces present entries only",
                   "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  cache.add_device_entry("a", mac(1), ip4(1), 22);

  Entry replacement{"new-id",
                    mac(1),
                    ip("fd00::1"),
                    std::nullopt,
                    41,
                    ManualClock::time_point(7s),
                    ManualClock::time_point(9s)};
  CHECK(cache.update_cache_entry_by_mac(mac(1), replacement));
  CHECK(cache.get_device_entry_by_mac(mac(1)) == replacement);  // every field, as given

  // Absent: not inserted (an update must not resurrect a removed device).
  Entry absent = replacement;
  absent.mac = mac(2);
  CHECK_FALSE(cache.update_cache_entry_by_mac(mac(2), absent));
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(2)));
  CHECK(cache.size() == 1);

  // The key and the entry must agree.
  CHECK_THROWS_WITH(cache.update_cache_entry_by_mac(mac(1), absent),
                    "DeviceCache::update_cache_entry_by_mac: the entry's MAC 02:00:00:00:00:02 "
                    "differs from the key 02:00:00:00:00:01");
  CHECK(cache.get_device_entry_by_mac(mac(1)) == replacement);

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.updates == 1);
  CHECK(s.total_heartbeats == 41);  // the replaced count is what the cache holds now
}

TEMPLATE_TEST_CASE("DeviceCache: modify_device_entry changes an entry in place, or not at all",
                   "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  cache.add_device_entry("a", mac(1), ip4(1), 22);
  ManualClock::advance(5s);
  cache.record_heartbeat(mac(1));
  const Entry before = *cache.get_device_entry_by_mac(mac(1));

  // The callback sees the current entry and changes what it sets; the rest stays.
  CHECK(cache.modify_device_entry(mac(1), [&before](Entry& e) {
    CHECK(e == before);
    e.ip = ip("fd00::7");
    e.port = std::nullopt;
    e.device_id = "renamed";
  }));
  Entry expected = before;
  expected.ip = ip("fd00::7");
  expected.port = std::nullopt;
  expected.device_id = "renamed";
  CHECK(cache.get_device_entry_by_mac(mac(1)) == expected);

  // Absent: the callback is not called and nothing is inserted.
  bool called = false;
  CHECK_FALSE(cache.modify_device_entry(mac(2), [&called](Entry&) { called = true; }));
  CHECK_FALSE(called);
  CHECK(cache.size() == 1);

  // A callback that throws, or changes the MAC, leaves the entry as it was.
  CHECK_THROWS_WITH(cache.modify_device_entry(mac(1),
                                              [](Entry& e) {
                                                e.port = 1;
                                                throw std::runtime_error("no");
                                              }),
                    "no");
  CHECK_THROWS_WITH(cache.modify_device_entry(mac(1),
                                              [](Entry& e) {
                                                e.port = 2;
                                                e.mac = mac(3);
                                              }),
                    "DeviceCache::modify_device_entry: the callback changed the MAC "
                    "02:00:00:00:00:01 to 02:00:00:00:00:03");
  CHECK(cache.get_device_entry_by_mac(mac(1)) == expected);
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(3)));

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.updates == 1);
  CHECK(s.total_heartbeats == 1);
}

TEMPLATE_TEST_CASE("DeviceCache: record_heartbeat counts in place and refreshes last_seen",
                   "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  cache.add_device_entry("a", mac(1), ip4(1));
  ManualClock::advance(30s);
  CHECK(cache.record_heartbeat(mac(1)));
  ManualClock::advance(30s);
  CHECK(cache.record_heartbeat(mac(1)));
  Entry e = *cache.get_device_entry_by_mac(mac(1));
  CHECK(e.heartbeat_count == 2);
  CHECK(e.first_seen.time_since_epoch() == 0s);
  CHECK(e.last_seen.time_since_epoch() == 60s);

  // last_seen never moves backwards, even if the clock does.
  ManualClock::set(ManualClock::time_point(10s));
  CHECK(cache.record_heartbeat(mac(1)));
  e = *cache.get_device_entry_by_mac(mac(1));
  CHECK(e.heartbeat_count == 3);
  CHECK(e.last_seen.time_since_epoch() == 60s);

  // An unknown device is not added.
  CHECK_FALSE(cache.record_heartbeat(mac(2)));
  CHECK(cache.size() == 1);
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.heartbeats == 3);
  CHECK(s.total_heartbeats == 3);
}

TEMPLATE_TEST_CASE("DeviceCache: record_heartbeats counts a batch like one call per MAC",
                   "[device_cache][batch]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  for (std::uint32_t n = 0; n < 200; n += 2) cache.add_device_entry(id(n), mac(n), ip4(n));
  ManualClock::advance(45s);
  // 1000 MACs over 200: half of them cached, repeats included, across many 64-key chunks.
  std::vector<MacAddress> batch;
  std::vector<std::uint64_t> expected(200, 0);
  std::size_t expected_found = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const std::uint64_t n = (i * 37) % 200;
    batch.push_back(mac(n));
    if (n % 2 == 0) {
      ++expected[n];
      ++expected_found;
    }
  }
  CHECK(cache.record_heartbeats(std::span<const MacAddress>(batch)) == expected_found);
  CHECK(cache.record_heartbeats(std::span<const MacAddress>()) == 0);
  for (std::uint64_t n = 0; n < 200; ++n) {
    const std::optional<Entry> e = cache.get_device_entry_by_mac(mac(n));
    REQUIRE(e.has_value() == (n % 2 == 0));
    if (!e) continue;
    CHECK(e->heartbeat_count == expected[n]);
    CHECK(e->last_seen.time_since_epoch() == 45s);
    CHECK(e->first_seen.time_since_epoch() == 0s);
  }
  CHECK(cache.size() == 100);  // unknown MACs are not added
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.heartbeats == expected_found);
  CHECK(s.total_heartbeats == expected_found);
}

TEMPLATE_TEST_CASE("DeviceCache: remove_device", "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  cache.add_device_entry("a", mac(1), ip4(1));
  cache.add_device_entry("b", mac(2), ip4(2));
  CHECK(cache.remove_device(mac(1)));
  CHECK_FALSE(cache.remove_device(mac(1)));
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(1)));
  CHECK(cache.get_device_entry_by_mac(mac(2)));
  // The device can come back.
  CHECK(cache.add_device_entry("a", mac(1), ip4(1)).outcome == AddOutcome::inserted);
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries == 2);
  CHECK(counters(s) == Counters{.adds = 3, .lookups = 2, .misses = 1, .removals = 1});
}

TEMPLATE_TEST_CASE("DeviceCache: the collectors", "[device_cache][collect]", ShardedCache,
                   CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  // mac(n) is seen at n * 10 s and heartbeated n times.
  const std::vector<std::string> ips = {"10.0.0.1",    "10.0.1.2",        "10.1.0.3",
                                        "192.168.1.4", "fd00::5",         "fd12::6",
                                        "2001:db8::7", "::ffff:10.0.0.8", "10.0.0.100"};
  for (std::uint64_t n = 0; n < ips.size(); ++n) {
    ManualClock::set(ManualClock::time_point(std::chrono::seconds(10 * n)));
    REQUIRE(cache.add_device_entry(id(n), mac(n), ip(ips[n])).outcome == AddOutcome::inserted);
    for (std::uint64_t i = 0; i < n; ++i) REQUIRE(cache.record_heartbeat(mac(n)));
  }
  ManualClock::set(ManualClock::time_point(100s));  // mac(n) was last seen 100 - 10n s ago

  SECTION("heartbeats: at least min") {
    CHECK(macs_of(cache.collect_entries_with_high_heartbeats(6)) == macs(6, 7, 8));
    CHECK(macs_of(cache.collect_entries_with_high_heartbeats(0)).size() == ips.size());
    CHECK(cache.collect_entries_with_high_heartbeats(9).empty());
  }
  SECTION("newer than: seen less than N seconds ago") {
    CHECK(macs_of(cache.collect_entries_newer_than(std::uint64_t{30})) == macs(8));  // 20 s ago
    CHECK(macs_of(cache.collect_entries_newer_than(std::uint64_t{31})) == macs(7, 8));
    CHECK(macs_of(cache.collect_entries_newer_than(30s + 1ns)) == macs(7, 8));
    CHECK(cache.collect_entries_newer_than(std::uint64_t{0}).empty());
    CHECK(cache.collect_entries_newer_than(std::uint64_t{101}).size() == ips.size());
    CHECK(cache.collect_entries_newer_than(~std::uint64_t{0}).size() == ips.size());
    CHECK(cache.collect_entries_newer_than(std::chrono::nanoseconds::max()).size() == ips.size());
  }
  SECTION("by IP pattern: a textual prefix, as the original") {
    CHECK(macs_of(cache.collect_entries_by_ip_pattern("10.0.")) == macs(0, 1, 8));
    CHECK(macs_of(cache.collect_entries_by_ip_pattern("10.0.0.1")) == macs(0, 8));
    CHECK(macs_of(cache.collect_entries_by_ip_pattern("fd")) == macs(4, 5));
    CHECK(macs_of(cache.collect_entries_by_ip_pattern("::ffff:")) == macs(7));
    CHECK(cache.collect_entries_by_ip_pattern("").size() == ips.size());
    CHECK(cache.collect_entries_by_ip_pattern("172.").empty());
  }
  SECTION("in subnet: IPv4 and IPv6 CIDR") {
    CHECK(macs_of(cache.collect_entries_in_subnet("10.0.0.0/8")) == macs(0, 1, 2, 8));
    CHECK(macs_of(cache.collect_entries_in_subnet("10.0.0.0/24")) == macs(0, 8));
    CHECK(macs_of(cache.collect_entries_in_subnet("10.0.0.100/32")) == macs(8));
    CHECK(macs_of(cache.collect_entries_in_subnet("192.168.0.0/16")) == macs(3));
    CHECK(macs_of(cache.collect_entries_in_subnet("0.0.0.0/0")) == macs(0, 1, 2, 3, 8));
    CHECK(macs_of(cache.collect_entries_in_subnet("fd00::/8")) == macs(4, 5));
    CHECK(macs_of(cache.collect_entries_in_subnet("fd00::/16")) == macs(4));
    CHECK(macs_of(cache.collect_entries_in_subnet("2001:db8::/32")) == macs(6));
    CHECK(macs_of(cache.collect_entries_in_subnet("::/0")) == macs(4, 5, 6, 7));
    CHECK(macs_of(cache.collect_entries_in_subnet(IpNetwork::parse("::ffff:0:0/96"))) == macs(7));
    CHECK(cache.collect_entries_in_subnet("172.16.0.0/12").empty());
    CHECK_THROWS_WITH(
        cache.collect_entries_in_subnet("10.0.0.0/33"),
        R"(invalid CIDR "10.0.0.0/33": prefix length "33" is out of range 0..32 for IPv4)");
  }
  SECTION("collect_if: any predicate; entries are full copies") {
    const std::vector<Entry> odd =
        cache.collect_if([](const Entry& e) { return e.mac.to_u64() % 2 == 1; });
    CHECK(macs_of(odd) == macs(1, 3, 5, 7));
    for (const Entry& e : odd) {
      const std::uint64_t n = e.mac.to_u64() - mac(0).to_u64();
      CHECK(e.device_id == id(n));
      CHECK(e.heartbeat_count == n);
      CHECK(e.last_seen.time_since_epoch() == std::chrono::seconds(10 * n));
    }
    CHECK(cache.collect_if([](const Entry&) { return false; }).empty());
  }
  // The collectors do not count as lookups.
  CHECK(cache.get_cache_stats().lookups == 0);
}

TEMPLATE_TEST_CASE("DeviceCache: get_cache_snapshot is a sorted copy of every entry",
                   "[device_cache]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options());
  CHECK(cache.get_cache_snapshot().empty());
  for (const std::uint64_t n : {5U, 3U, 9U, 1U, 7U})
    cache.add_device_entry(id(n), mac(n), ip4(static_cast<std::uint32_t>(n)));
  cache.record_heartbeat(mac(9));
  const std::vector<Entry> snapshot = cache.get_cache_snapshot();
  REQUIRE(snapshot.size() == 5);
  CHECK(std::is_sorted(snapshot.begin(), snapshot.end(),
                       [](const Entry& a, const Entry& b) { return a.mac < b.mac; }));
  CHECK(snapshot.front() == *cache.get_device_entry_by_mac(mac(1)));
  CHECK(snapshot.back().heartbeat_count == 1);
  // A copy: later changes do not show in it.
  cache.remove_device(mac(1));
  CHECK(snapshot.size() == 5);
  CHECK(snapshot.front().mac == mac(1));
}

TEMPLATE_TEST_CASE("DeviceCache: statistics are exact without concurrency", "[device_cache][stats]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options(4);
  o.capacity = 6;
  TestType cache(o);
  for (std::uint64_t n = 0; n < 8; ++n) cache.add_device_entry(id(n), mac(n), ip4(1));  // 2 refused
  cache.add_device_entry("again", mac(0), ip4(1));                                      // present
  for (int i = 0; i < 5; ++i) cache.record_heartbeat(mac(1));
  cache.record_heartbeat(mac(2));
  cache.record_heartbeat(mac(99));  // unknown: not counted
  (void)cache.get_device_entry_by_mac(mac(1));
  (void)cache.get_device_entry_by_mac(mac(98));
  Entry e = *cache.get_device_entry_by_mac(mac(3));
  e.heartbeat_count = 10;
  cache.update_cache_entry_by_mac(mac(3), e);
  cache.remove_device(mac(4));
  cache.remove_device(mac(4));  // absent: not counted
  ManualClock::advance(devcache::default_aging_time);
  cache.record_heartbeat(mac(5));
  const std::vector<Entry> expired = cache.sweep_all_expired();  // all but mac(5)
  CHECK(expired.size() == 4);

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(counters(s) == Counters{.adds = 6,
                                .refused_adds = 2,
                                .heartbeats = 7,
                                .lookups = 3,
                                .misses = 1,
                                .updates = 1,
                                .removals = 1,
                                .expirations = 4,
                                .evictions = 0});
  CHECK(s.entries == 1);
  CHECK(s.capacity == std::optional<std::size_t>(6));
  CHECK(s.total_heartbeats == 1);
  CHECK(s.shard_count == cache.shard_count());
  CHECK(s.shard_min <= s.shard_max);
  CHECK(s.shard_max == 1);
  CHECK(s.shard_mean == Approx(1.0 / static_cast<double>(s.shard_count)));
}

TEMPLATE_TEST_CASE("DeviceCache: shard occupancy", "[device_cache][stats]", ShardedCache,
                   CuckooCache) {
  ManualClock::reset();
  TestType cache(options(4));
  devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries == 0);
  CHECK(s.shard_min == 0);
  CHECK(s.shard_max == 0);
  CHECK(s.shard_mean == 0.0);
  cache.reserve(400);  // sizes the map up front; no visible effect otherwise
  CHECK(cache.size() == 0);
  for (std::uint64_t n = 0; n < 400; ++n) cache.add_device_entry(id(n), mac(n), ip4(1));
  s = cache.get_cache_stats();
  CHECK(s.entries == 400);
  CHECK(s.shard_count == cache.shard_count());
  CHECK(s.shard_mean == Approx(400.0 / static_cast<double>(s.shard_count)));
  CHECK(s.shard_min <= static_cast<std::size_t>(s.shard_mean));
  CHECK(s.shard_max >= static_cast<std::size_t>(s.shard_mean));
  if (s.shard_count == 1) {
    CHECK(s.shard_min == 400);
    CHECK(s.shard_max == 400);
  } else {
    CHECK(s.shard_count == 4);
    CHECK(s.shard_min > 0);  // 400 keys over 4 shards: none is empty
    CHECK(s.shard_max < 400);
  }
}

TEMPLATE_TEST_CASE("DeviceCache: aging removes exactly the devices not seen within the aging time",
                   "[device_cache][aging]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options();
  o.aging_time = 300s;
  TestType cache(o);
  cache.add_device_entry("old", mac(1), ip4(1));
  ManualClock::advance(100s);
  cache.add_device_entry("mid", mac(2), ip4(2));
  cache.add_device_entry("beating", mac(3), ip4(3));
  ManualClock::advance(199s);  // t = 299
  cache.record_heartbeat(mac(3));
  CHECK(cache.sweep_all_expired().empty());  // mac(1) is 299 s old

  ManualClock::advance(1s);  // t = 300: mac(1) is exactly 300 s old
  const std::vector<Entry> first = cache.sweep_all_expired();
  REQUIRE(first.size() == 1);
  CHECK(first.front().device_id == "old");
  CHECK(first.front().mac == mac(1));
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(1)));

  ManualClock::advance(100s - 1ns);  // mac(2) is 300 s - 1 ns old
  CHECK(cache.sweep_all_expired().empty());
  ManualClock::advance(1ns);
  CHECK(macs_of(cache.sweep_all_expired()) == macs(2));

  // The device that kept heartbeating is still there, until it stops for 300 s.
  CHECK(cache.get_device_entry_by_mac(mac(3)));  // last seen at t = 299
  ManualClock::advance(198s);                    // t = 598
  CHECK(cache.sweep_all_expired().empty());
  ManualClock::advance(1s);
  CHECK(macs_of(cache.sweep_all_expired()) == macs(3));
  CHECK(cache.size() == 0);
  CHECK(cache.get_cache_stats().expirations == 3);

  // A device seen within the aging time is exactly what collect_entries_newer_than(aging) finds.
  cache.add_device_entry("new", mac(4), ip4(4));
  ManualClock::advance(300s);
  CHECK(cache.collect_entries_newer_than(300s).empty());
  CHECK(cache.sweep_all_expired().size() == 1);
}

// Adds devices 1 to 3, then stores device 1 as last seen at its clock's time_point::min() and
// device 2 at time_point::max() (device 3 was seen now).
template <class Cache>
void add_devices_seen_at_extremes(Cache& cache) {
  using CacheEntry = typename Cache::entry_type;
  for (std::uint32_t n = 1; n <= 3; ++n) cache.add_device_entry(id(n), mac(n), ip4(n));
  const auto store_last_seen = [&cache](std::uint64_t n, typename CacheEntry::time_point t) {
    CacheEntry e = *cache.get_device_entry_by_mac(mac(n));
    e.last_seen = t;
    REQUIRE(cache.update_cache_entry_by_mac(mac(n), e));
  };
  store_last_seen(1, CacheEntry::time_point::min());
  store_last_seen(2, CacheEntry::time_point::max());
}

TEMPLATE_TEST_CASE("DeviceCache: ages of extreme times saturate instead of overflowing",
                   "[device_cache][aging]", ShardedCache, CuckooCache) {
  // last_seen comes from callers and files, so it can be any time_point. now - last_seen
  // overflowed for time_point::min() (undefined behaviour; in practice the age wrapped negative,
  // and such a device never expired and counted as seen just now).
  ManualClock::reset();
  ManualClock::advance(4600s);
  DeviceCacheOptions o = options();
  o.aging_time = 300s;
  TestType cache(o);
  add_devices_seen_at_extremes(cache);

  CHECK(macs_of(cache.collect_entries_newer_than(60s)) == macs(2, 3));
  // The exact complement of a sweep even at the largest age: time_point::min() is older.
  CHECK(macs_of(cache.collect_entries_newer_than(std::chrono::nanoseconds::max())) == macs(2, 3));
  CHECK(macs_of(cache.collect_entries_newer_than(std::uint64_t{1} << 63U)) == macs(1, 2, 3));
  CHECK(macs_of(cache.sweep_all_expired()) == macs(1));
  ManualClock::advance(300s);
  CHECK(macs_of(cache.sweep_all_expired()) == macs(3));  // the one from the future stays
  CHECK(macs_of(cache.collect_entries_newer_than(1ns)) == macs(2));
}

// A clock that counts microseconds, as some platforms' clocks do: its time_points reach far past
// what nanoseconds can hold.
struct MicrosecondClock {
  using rep = std::int64_t;
  using period = std::micro;
  using duration = std::chrono::microseconds;
  using time_point = std::chrono::time_point<MicrosecondClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept { return time_point(std::chrono::seconds(4600)); }
};

TEST_CASE("DeviceCache: ages saturate on a clock coarser than nanoseconds",
          "[device_cache][aging]") {
  // Converting such a clock's extreme times to nanoseconds overflowed before the subtraction
  // (found by a review: a device last seen at time_point::max() was swept).
  DeviceCacheOptions o = options();
  o.aging_time = 300s;
  devcache::DeviceCache<devcache::ShardedMap, MicrosecondClock> cache(o);
  add_devices_seen_at_extremes(cache);
  CHECK(macs_of(cache.collect_entries_newer_than(60s)) == macs(2, 3));
  CHECK(macs_of(cache.sweep_all_expired()) == macs(1));
  CHECK(cache.size() == 2);
}

TEMPLATE_TEST_CASE("DeviceCache: a bounded sweep covers every shard over several calls",
                   "[device_cache][aging]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options(8));
  constexpr std::uint64_t devices = 800;
  for (std::uint64_t n = 0; n < devices; ++n) cache.add_device_entry(id(n), mac(n), ip4(1));
  const std::size_t shards = cache.shard_count();
  REQUIRE(cache.get_cache_stats().shard_min > 0);  // every shard has something to expire

  CHECK(cache.sweep_expired(1).empty());  // nothing is old yet
  ManualClock::advance(devcache::default_aging_time);
  CHECK(cache.sweep_expired(0).empty());  // zero shards: no work

  std::set<MacAddress> removed;
  for (std::size_t call = 0; call < shards; ++call) {
    const std::vector<Entry> batch = cache.sweep_expired(1);
    CHECK_FALSE(batch.empty());                     // each call sweeps a new shard
    CHECK(cache.get_cache_stats().shard_min == 0);  // ... emptying it
    CHECK(cache.size() == devices - removed.size() - batch.size());
    for (const Entry& e : batch) CHECK(removed.insert(e.mac).second);
    if (call + 1 < shards) CHECK(removed.size() < devices);
  }
  CHECK(removed.size() == devices);  // shard_count() calls of one shard cover the whole cache
  CHECK(cache.size() == 0);
  CHECK(cache.get_cache_stats().expirations == devices);

  // More shards than exist: each is swept once.
  for (std::uint64_t n = 0; n < 100; ++n) cache.add_device_entry(id(n), mac(n), ip4(1));
  ManualClock::advance(devcache::default_aging_time);
  CHECK(cache.sweep_expired(shards * 4).size() == 100);
}

namespace {
// An allocator that fails (std::bad_alloc) once `budget` allocations have been made.
template <class T>
struct BudgetAllocator {
  using value_type = T;
  std::size_t* budget;
  explicit BudgetAllocator(std::size_t* b) noexcept : budget(b) {}
  template <class U>
  BudgetAllocator(const BudgetAllocator<U>& other) noexcept : budget(other.budget) {}  // NOLINT
  T* allocate(std::size_t n) {
    if (*budget == 0) throw std::bad_alloc();
    --*budget;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const BudgetAllocator& a, const BudgetAllocator& b) noexcept {
    return a.budget == b.budget;
  }
};
}  // namespace

TEMPLATE_TEST_CASE("DeviceCache: a sweep into a caller's vector loses nothing if it cannot grow",
                   "[device_cache][aging]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  TestType cache(options(8));
  constexpr std::uint64_t old_devices = 500;
  constexpr std::uint64_t fresh_devices = 20;
  for (std::uint64_t n = 0; n < old_devices + fresh_devices; ++n) {
    cache.add_device_entry(id(n), mac(n), ip4(1));
  }
  ManualClock::advance(devcache::default_aging_time);
  for (std::uint64_t n = old_devices; n < old_devices + fresh_devices; ++n) {
    REQUIRE(cache.record_heartbeat(mac(n)));
  }

  // Three allocations: `out` grows to 64, 128 and 256 devices, then cannot grow again.
  std::size_t budget = 3;
  std::vector<Entry, BudgetAllocator<Entry>> out{BudgetAllocator<Entry>(&budget)};
  CHECK_THROWS_AS(cache.sweep_all_expired(out), std::bad_alloc);
  CHECK(out.size() == 256);
  // Every device removed is in `out`, once, and counted; every other device is still cached.
  std::set<MacAddress> removed;
  for (const Entry& e : out) {
    CHECK(removed.insert(e.mac).second);
    CHECK(e.mac.to_u64() - mac(0).to_u64() < old_devices);
    CHECK_FALSE(cache.get_device_entry_by_mac(e.mac));
  }
  CHECK(cache.size() == old_devices + fresh_devices - out.size());
  CHECK(cache.get_cache_stats().expirations == out.size());

  // With room again, the next sweep appends the rest: all old devices, none twice.
  budget = 100;
  CHECK(cache.sweep_all_expired(out) == old_devices - 256);
  CHECK(out.size() == old_devices);
  for (auto it = out.begin() + 256; it != out.end(); ++it) CHECK(removed.insert(it->mac).second);
  CHECK(removed.size() == old_devices);
  CHECK(cache.size() == fresh_devices);
  CHECK(cache.get_cache_stats().expirations == old_devices);

  // The bounded form appends too, and counts only what it appended.
  ManualClock::advance(devcache::default_aging_time);
  std::vector<Entry> more(1);
  CHECK(cache.sweep_expired(more, cache.shard_count()) == fresh_devices);
  CHECK(more.size() == 1 + fresh_devices);
  CHECK(cache.size() == 0);
}

TEMPLATE_TEST_CASE("DeviceCache: aging time zero disables aging", "[device_cache][aging]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options();
  o.aging_time = 0s;
  TestType cache(o);
  cache.add_device_entry("a", mac(1), ip4(1));
  ManualClock::advance(std::chrono::hours(24 * 365));
  CHECK(cache.sweep_all_expired().empty());
  CHECK(cache.sweep_expired(100).empty());
  CHECK(cache.size() == 1);
}

TEMPLATE_TEST_CASE("DeviceCache: capacity with refuse_new refuses new devices when full",
                   "[device_cache][capacity]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options();
  o.capacity = 3;
  TestType cache(o);
  for (std::uint64_t n = 0; n < 3; ++n) {
    CHECK(cache.add_device_entry(id(n), mac(n), ip4(1)) == AddResult{AddOutcome::inserted, 0});
  }
  CHECK(cache.add_device_entry("x", mac(3), ip4(1)) == AddResult{AddOutcome::refused_full, 0});
  CHECK(cache.add_device_entry("x", mac(4), ip4(1)).outcome == AddOutcome::refused_full);
  // A cached device is reported as present, not refused, even when full.
  CHECK(cache.add_device_entry("x", mac(0), ip4(1)).outcome == AddOutcome::already_present);
  CHECK(cache.size() == 3);
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(3)));

  // Removal and expiry make room.
  CHECK(cache.remove_device(mac(0)));
  CHECK(cache.add_device_entry("x", mac(3), ip4(1)).outcome == AddOutcome::inserted);
  CHECK(cache.add_device_entry("x", mac(4), ip4(1)).outcome == AddOutcome::refused_full);
  ManualClock::advance(devcache::default_aging_time);
  CHECK(cache.record_heartbeat(mac(3)));
  CHECK(cache.sweep_all_expired().size() == 2);
  CHECK(cache.add_device_entry("x", mac(4), ip4(1)).outcome == AddOutcome::inserted);
  CHECK(cache.add_device_entry("x", mac(5), ip4(1)).outcome == AddOutcome::inserted);
  CHECK(cache.add_device_entry("x", mac(6), ip4(1)).outcome == AddOutcome::refused_full);

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries == 3);
  CHECK(s.adds == 6);
  CHECK(s.refused_adds == 4);
  CHECK(s.evictions == 0);

  // Capacity zero refuses everything.
  o.capacity = 0;
  TestType none(o);
  CHECK(none.add_device_entry("x", mac(1), ip4(1)).outcome == AddOutcome::refused_full);
  CHECK(none.size() == 0);
}

TEMPLATE_TEST_CASE("DeviceCache: capacity with eviction evicts the least recently seen",
                   "[device_cache][capacity]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options(1);  // one shard: least recently seen is exact
  o.capacity = 4;
  o.capacity_policy = CapacityPolicy::evict_least_recently_seen;
  TestType cache(o);
  // Seen at t = 0, 10, 20, 30.
  for (std::uint64_t n = 0; n < 4; ++n) {
    ManualClock::set(ManualClock::time_point(std::chrono::seconds(10 * n)));
    CHECK(cache.add_device_entry(id(n), mac(n), ip4(1)).outcome == AddOutcome::inserted);
  }
  ManualClock::set(ManualClock::time_point(40s));
  CHECK(cache.add_device_entry("x", mac(4), ip4(1)) == AddResult{AddOutcome::inserted, 1});
  CHECK(macs_of(cache.get_cache_snapshot()) == macs(1, 2, 3, 4));  // mac(0) was the oldest

  // mac(1) heartbeats, so mac(2) is now the least recently seen.
  ManualClock::set(ManualClock::time_point(50s));
  CHECK(cache.record_heartbeat(mac(1)));
  CHECK(cache.add_device_entry("x", mac(5), ip4(1)) == AddResult{AddOutcome::inserted, 1});
  CHECK(macs_of(cache.get_cache_snapshot()) == macs(1, 3, 4, 5));
  // A cached device is present, not a reason to evict.
  CHECK(cache.add_device_entry("x", mac(3), ip4(1)) == AddResult{AddOutcome::already_present, 0});

  // Devices that never heartbeated go before those that did, even when more recently seen:
  // mac(1) (heartbeat at 50 s) outlives mac(3), mac(4) and mac(5) (seen at 30, 40, 50 s).
  for (std::uint64_t n = 6; n < 9; ++n) {
    ManualClock::advance(1s);
    CHECK(cache.add_device_entry(id(n), mac(n), ip4(1)) == AddResult{AddOutcome::inserted, 1});
  }
  CHECK(macs_of(cache.get_cache_snapshot()) == macs(1, 6, 7, 8));

  // When every device has heartbeated, plain least recently seen.
  ManualClock::advance(1s);
  for (const std::uint64_t n : {8U, 6U, 7U}) {
    ManualClock::advance(1s);
    cache.record_heartbeat(mac(n));
  }
  CHECK(cache.add_device_entry("x", mac(9), ip4(1)) == AddResult{AddOutcome::inserted, 1});
  CHECK(macs_of(cache.get_cache_snapshot()) == macs(6, 7, 8, 9));  // mac(1): heartbeat at 50 s
  ManualClock::advance(1s);
  cache.record_heartbeat(mac(9));
  CHECK(cache.add_device_entry("x", mac(10), ip4(1)) == AddResult{AddOutcome::inserted, 1});
  CHECK(macs_of(cache.get_cache_snapshot()) == macs(6, 7, 9, 10));  // mac(8) was the oldest

  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries == 4);
  CHECK(s.evictions == 7);
  CHECK(s.adds == 11);
  CHECK(s.refused_adds == 0);

  // Capacity zero: nothing to evict, so refused.
  o.capacity = 0;
  TestType none(o);
  CHECK(none.add_device_entry("x", mac(1), ip4(1)) == AddResult{AddOutcome::refused_full, 0});
  CHECK(none.get_cache_stats().refused_adds == 1);
}

TEMPLATE_TEST_CASE("DeviceCache: eviction works in batches of 1/16 of a shard",
                   "[device_cache][capacity]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  DeviceCacheOptions o = options(1);
  o.capacity = 64;
  o.capacity_policy = CapacityPolicy::evict_least_recently_seen;
  TestType cache(o);
  for (std::uint64_t n = 0; n < 64; ++n) {
    ManualClock::advance(1s);
    cache.add_device_entry(id(n), mac(n), ip4(1));
  }
  ManualClock::advance(1s);
  // 64 candidates: the 4 oldest go at once, so the next 3 adds need no eviction.
  CHECK(cache.add_device_entry("x", mac(100), ip4(1)) == AddResult{AddOutcome::inserted, 4});
  for (std::uint64_t n = 101; n < 104; ++n) {
    CHECK(cache.add_device_entry("x", mac(n), ip4(1)) == AddResult{AddOutcome::inserted, 0});
  }
  for (std::uint64_t n = 0; n < 4; ++n) CHECK_FALSE(cache.get_device_entry_by_mac(mac(n)));
  CHECK(cache.get_device_entry_by_mac(mac(4)));
  CHECK(cache.size() == 64);
  CHECK(cache.get_cache_stats().evictions == 4);
}

TEMPLATE_TEST_CASE("DeviceCache: known heartbeating devices survive a MAC flood",
                   "[device_cache][capacity][flood]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  const auto policy =
      GENERATE(CapacityPolicy::refuse_new, CapacityPolicy::evict_least_recently_seen);
  const bool clock_moves = GENERATE(false, true);
  CAPTURE(policy, clock_moves);
  constexpr std::size_t capacity = 1'000;
  DeviceCacheOptions o = options(8);
  o.capacity = capacity;
  o.capacity_policy = policy;
  TestType cache(o);

  constexpr std::uint64_t known = 30;
  for (std::uint64_t n = 0; n < known; ++n) {
    REQUIRE(cache.add_device_entry(id(n), mac(n), ip4(1)).outcome == AddOutcome::inserted);
    REQUIRE(cache.record_heartbeat(mac(n)));
  }
  // Spoofed MACs, several times the capacity; the known devices keep heartbeating every 500 of
  // them. With CuckooMap every search for victims locks the whole table (2^16 locks, milliseconds),
  // so its flood is smaller.
  constexpr std::uint64_t flood = std::is_same_v<TestType, CuckooCache> ? 4'000 : 20'000;
  std::uint64_t inserted = 0;
  std::uint64_t refused = 0;
  std::uint64_t evicted = 0;
  for (std::uint64_t i = 0; i < flood; ++i) {
    const AddResult r = cache.add_device_entry("spoof", mac(1'000'000 + i), ip4(2));
    inserted += r.outcome == AddOutcome::inserted ? 1 : 0;
    refused += r.outcome == AddOutcome::refused_full ? 1 : 0;
    evicted += r.evicted;
    if (i % 500 == 499) {
      if (clock_moves) ManualClock::advance(1s);
      for (std::uint64_t n = 0; n < known; ++n) REQUIRE(cache.record_heartbeat(mac(n)));
    }
  }
  for (std::uint64_t n = 0; n < known; ++n) CHECK(cache.get_device_entry_by_mac(mac(n)));
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.entries <= capacity);                  // memory is bounded
  CHECK(s.entries >= capacity - capacity / 16);  // eviction frees up to 1/16 of a shard at once
  CHECK(inserted + refused == flood);
  CHECK(s.adds == known + inserted);
  CHECK(s.refused_adds == refused);
  CHECK(s.evictions == evicted);
  CHECK(s.entries == known + inserted - evicted);
  if (policy == CapacityPolicy::refuse_new) {
    CHECK(inserted == capacity - known);
    CHECK(evicted == 0);
  } else {
    CHECK(refused == 0);
    CHECK(inserted == flood);
  }
}
