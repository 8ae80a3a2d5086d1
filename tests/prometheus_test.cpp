// tests/prometheus_test.cpp — PrometheusCollector (devcache/prometheus.hpp): the metric families'
// names, types and HELP texts, their values after known operations on a ManualClock cache (every
// counter and gauge, including refusals, expirations and evictions), constant labels and their
// validation, the weak_ptr form, and the text exposition prometheus::TextSerializer makes of them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <devcache/device_cache.hpp>
#include <devcache/device_cache_manager.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/prometheus.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::MacAddress;
using devcache::ManualClock;
using devcache::PrometheusCollector;
using prometheus::MetricFamily;
using prometheus::MetricType;
using namespace std::chrono_literals;

using Cache = devcache::DeviceCache<devcache::ShardedMap, ManualClock>;

static_assert(std::is_base_of_v<prometheus::Collectable, PrometheusCollector>);
static_assert(devcache::CacheStatsSource<Cache>);
static_assert(devcache::CacheStatsSource<devcache::DeviceCacheManager::cache_type>);
// A collector must not be built from a temporary cache: it would refer to a destroyed one.
static_assert(!std::is_constructible_v<PrometheusCollector, Cache&&>);
static_assert(std::is_constructible_v<PrometheusCollector, const Cache&>);
static_assert(std::is_constructible_v<PrometheusCollector, std::shared_ptr<Cache>>);
static_assert(std::is_constructible_v<PrometheusCollector, std::weak_ptr<const Cache>>);

MacAddress mac(std::uint64_t n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); }
devcache::IpAddress ip(std::uint64_t n) {
  return devcache::IpAddress::from_v4(0x0a000000U + static_cast<std::uint32_t>(n));
}

devcache::DeviceCacheOptions options() {
  devcache::DeviceCacheOptions o;
  o.shard_count = 4;
  o.hash_seed = devcache::HashSeed::fixed(42);
  o.aging_time = 10s;
  return o;
}

const MetricFamily& family(const std::vector<MetricFamily>& families, std::string_view name) {
  const auto it = std::find_if(families.begin(), families.end(),
                               [name](const MetricFamily& f) { return f.name == name; });
  if (it == families.end()) FAIL("no metric family named " << name);
  return *it;
}

// The value of the family's one sample: its counter value for a counter, its gauge value for a
// gauge.
double value(const std::vector<MetricFamily>& families, std::string_view name) {
  const MetricFamily& f = family(families, name);
  REQUIRE(f.metric.size() == 1);
  return f.type == MetricType::Counter ? f.metric.front().counter.value
                                       : f.metric.front().gauge.value;
}

std::string serialize(const std::vector<MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

const std::vector<std::string_view> gauges{
    "devcache_devices",           "devcache_capacity",
    "devcache_heartbeats_held",   "devcache_shards",
    "devcache_shard_devices_min", "devcache_shard_devices_max",
    "devcache_shard_devices_mean"};
const std::vector<std::string_view> counters{
    "devcache_adds_total",     "devcache_refused_adds_total",  "devcache_heartbeats_total",
    "devcache_lookups_total",  "devcache_lookup_misses_total", "devcache_updates_total",
    "devcache_removals_total", "devcache_expirations_total",   "devcache_evictions_total"};

}  // namespace

TEST_CASE("the collector exposes every metric once, with a valid name, its type and HELP") {
  const Cache cache(options());
  const std::vector<MetricFamily> families = PrometheusCollector(cache).Collect();
  REQUIRE(families.size() == gauges.size() + counters.size());
  REQUIRE(families.size() == devcache::prometheus_metrics.size());

  std::set<std::string> names;
  for (std::size_t i = 0; i < families.size(); ++i) {
    const MetricFamily& f = families[i];
    INFO(f.name);
    CHECK(f.name == devcache::prometheus_metrics[i].name);  // in the table's order
    CHECK(prometheus::CheckMetricName(f.name));
    CHECK(f.name.starts_with("devcache_"));
    CHECK_FALSE(f.help.empty());
    CHECK(f.metric.size() == 1);
    CHECK(f.metric.front().label.empty());
    // Counters, and only counters, end in _total (the Prometheus naming convention).
    CHECK(f.name.ends_with("_total") == (f.type == MetricType::Counter));
    names.insert(f.name);
  }
  CHECK(names.size() == families.size());
  for (const std::string_view name : gauges)
    CHECK(family(families, name).type == MetricType::Gauge);
  for (const std::string_view name : counters) {
    CHECK(family(families, name).type == MetricType::Counter);
  }
}

TEST_CASE("the collected values follow the cache's operations") {
  ManualClock::reset();
  devcache::DeviceCacheOptions o = options();
  o.capacity = 3;
  Cache cache(o);
  const PrometheusCollector collector(cache);

  // An empty cache: everything zero but the capacity and the shard count.
  std::vector<MetricFamily> families = collector.Collect();
  for (const MetricFamily& f : families) {
    INFO(f.name);
    const double expected = f.name == "devcache_capacity" ? 3.0
                            : f.name == "devcache_shards" ? 4.0
                                                          : 0.0;
    CHECK(value(families, f.name) == expected);
  }

  for (std::uint64_t n = 1; n <= 3; ++n) {
    cache.add_device_entry("dev-" + std::to_string(n), mac(n), ip(n));
  }
  CHECK(cache.add_device_entry("dev-4", mac(4), ip(4)).outcome ==
        devcache::AddOutcome::refused_full);
  CHECK(cache.add_device_entry("dev-1", mac(1), ip(1)).outcome ==
        devcache::AddOutcome::already_present);  // counted neither as an add nor as refused
  for (int i = 0; i < 5; ++i) cache.record_heartbeat(mac(1));
  for (int i = 0; i < 2; ++i) cache.record_heartbeat(mac(2));
  cache.record_heartbeat(mac(9));  // unknown: not counted
  const std::optional<Cache::entry_type> one = cache.get_device_entry_by_mac(mac(1));
  REQUIRE(one);
  CHECK(cache.get_device_entry_by_mac(mac(2)));
  CHECK_FALSE(cache.get_device_entry_by_mac(mac(9)));
  CHECK(cache.update_cache_entry_by_mac(mac(1), *one));
  CHECK(cache.remove_device(mac(3)));

  families = collector.Collect();
  CHECK(value(families, "devcache_devices") == 2.0);
  CHECK(value(families, "devcache_capacity") == 3.0);
  CHECK(value(families, "devcache_heartbeats_held") == 7.0);
  CHECK(value(families, "devcache_adds_total") == 3.0);
  CHECK(value(families, "devcache_refused_adds_total") == 1.0);
  CHECK(value(families, "devcache_heartbeats_total") == 7.0);
  CHECK(value(families, "devcache_lookups_total") == 3.0);
  CHECK(value(families, "devcache_lookup_misses_total") == 1.0);
  CHECK(value(families, "devcache_updates_total") == 1.0);
  CHECK(value(families, "devcache_removals_total") == 1.0);
  CHECK(value(families, "devcache_expirations_total") == 0.0);
  CHECK(value(families, "devcache_evictions_total") == 0.0);

  // Aging: dev-2 is not seen for 11 s and expires; dev-1 heartbeats just before the sweep.
  ManualClock::advance(11s);
  cache.record_heartbeat(mac(1));
  CHECK(cache.sweep_all_expired().size() == 1);

  families = collector.Collect();
  const devcache::CacheStats stats = cache.get_cache_stats();
  CHECK(value(families, "devcache_devices") == 1.0);
  CHECK(value(families, "devcache_heartbeats_held") == 6.0);   // dev-1's 5 + 1
  CHECK(value(families, "devcache_heartbeats_total") == 8.0);  // monotonic: dev-2's 2 stay counted
  CHECK(value(families, "devcache_expirations_total") == 1.0);
  CHECK(value(families, "devcache_shards") == 4.0);
  CHECK(value(families, "devcache_shard_devices_min") == 0.0);
  CHECK(value(families, "devcache_shard_devices_max") == 1.0);
  CHECK(value(families, "devcache_shard_devices_mean") == 0.25);
  CHECK(value(families, "devcache_shard_devices_mean") == stats.shard_mean);
  // Without writers, Collect() is exactly make_metric_families of the statistics.
  CHECK(serialize(families) == serialize(devcache::make_metric_families(stats)));
}

TEST_CASE("evictions are counted, and an unbounded capacity is +Inf") {
  ManualClock::reset();
  devcache::DeviceCacheOptions o = options();
  o.capacity = 1;
  o.capacity_policy = devcache::CapacityPolicy::evict_least_recently_seen;
  Cache bounded(o);
  bounded.add_device_entry("a", mac(1), ip(1));
  ManualClock::advance(1s);
  CHECK(bounded.add_device_entry("b", mac(2), ip(2)).evicted == 1);
  std::vector<MetricFamily> families = PrometheusCollector(bounded).Collect();
  CHECK(value(families, "devcache_evictions_total") == 1.0);
  CHECK(value(families, "devcache_adds_total") == 2.0);
  CHECK(value(families, "devcache_devices") == 1.0);

  const Cache unbounded(options());
  families = PrometheusCollector(unbounded).Collect();
  CHECK(value(families, "devcache_capacity") == std::numeric_limits<double>::infinity());
}

TEST_CASE("constant labels go on every sample, and invalid label names are refused") {
  const Cache cache(options());
  const prometheus::Labels labels{{"cache", "dhcp"}, {"site", "lab 1"}};
  const PrometheusCollector collector(cache, labels);
  CHECK(collector.constant_labels() == labels);
  const std::vector<prometheus::ClientMetric::Label> expected{{"cache", "dhcp"}, {"site", "lab 1"}};
  for (const MetricFamily& f : collector.Collect()) {
    INFO(f.name);
    REQUIRE(f.metric.size() == 1);
    CHECK(f.metric.front().label == expected);
  }

  for (const char* bad : {"", "1st", "cache-name", "__reserved", "ca che"}) {
    INFO(bad);
    CHECK_THROWS_AS(PrometheusCollector(cache, prometheus::Labels{{bad, "x"}}),
                    std::invalid_argument);
  }
  CHECK_NOTHROW(PrometheusCollector(cache, prometheus::Labels{{"_private", "x"}}));
}

TEST_CASE("the weak_ptr form collects while the cache lives, and nothing afterwards") {
  auto cache = std::make_shared<Cache>(options());
  cache->add_device_entry("a", mac(1), ip(1));
  const PrometheusCollector from_shared(cache);
  const PrometheusCollector from_weak(std::weak_ptr<const Cache>(cache),
                                      prometheus::Labels{{"cache", "weak"}});
  CHECK(value(from_shared.Collect(), "devcache_devices") == 1.0);
  CHECK(value(from_weak.Collect(), "devcache_devices") == 1.0);
  CHECK(cache.use_count() == 1);  // neither collector keeps the cache alive

  cache.reset();
  CHECK(from_shared.Collect().empty());
  CHECK(from_weak.Collect().empty());
}

TEST_CASE("the text exposition holds HELP, TYPE and one sample line per metric") {
  ManualClock::reset();
  devcache::DeviceCacheOptions o = options();
  o.capacity = 100;
  Cache cache(o);
  cache.add_device_entry("a", mac(1), ip(1));
  cache.add_device_entry("b", mac(2), ip(2));
  cache.record_heartbeat(mac(1));
  const std::string text =
      serialize(PrometheusCollector(cache, prometheus::Labels{{"cache", "test"}}).Collect());
  INFO(text);

  CHECK_THAT(text, Catch::Contains("# HELP devcache_devices Devices held in the cache.\n"
                                   "# TYPE devcache_devices gauge\n"
                                   "devcache_devices{cache=\"test\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("# TYPE devcache_adds_total counter\n"
                                   "devcache_adds_total{cache=\"test\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("\ndevcache_capacity{cache=\"test\"} 100\n"));
  CHECK_THAT(text, Catch::Contains("\ndevcache_heartbeats_total{cache=\"test\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("\ndevcache_shard_devices_mean{cache=\"test\"} 0.5\n"));
  CHECK_THAT(text, Catch::Contains("# TYPE devcache_lookup_misses_total counter\n"));
  for (const auto& m : devcache::prometheus_metrics) {
    CHECK_THAT(text, Catch::Contains(fmt::format("# HELP {} {}\n", m.name, m.help)));
  }

  const Cache unbounded(options());
  CHECK_THAT(serialize(PrometheusCollector(unbounded).Collect()),
             Catch::Contains("\ndevcache_capacity +Inf\n"));
}
