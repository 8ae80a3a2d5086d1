// devcache/prometheus.hpp — PrometheusCollector: a DeviceCache's statistics as Prometheus metrics,
// through prometheus-cpp.
//
// Optional: this is the one devcache header that needs prometheus-cpp (Debian: prometheus-cpp-dev),
// so neither the umbrella devcache.hpp nor any other header includes it. Link the CMake target
// devcache::prometheus (devcache plus prometheus-cpp::core), which exists only where prometheus-cpp
// was found; serving the metrics over HTTP with a prometheus::Exposer also takes
// prometheus-cpp::pull.
//
// Design
// ------
// The collector keeps no metric state of its own. It is a prometheus::Collectable whose Collect(),
// called at scrape time, calls cache.get_cache_stats() once and turns the result into metric
// families. The cache's own counters are monotonic, so the counters exposed are true Prometheus
// counters with nothing counted twice: no prometheus::Counter is incremented beside the cache's
// counters, and a scrape costs what one get_cache_stats() call costs (each shard locked shared in
// turn), nothing on the cache's hot paths.
//
// Example:
//   devcache::DeviceCache<> cache;
//   auto collector = std::make_shared<devcache::PrometheusCollector>(
//       cache, prometheus::Labels{{"cache", "dhcp"}});
//   prometheus::Exposer exposer("127.0.0.1:9464");  // destroyed first: its threads stop first
//   exposer.RegisterCollectable(collector);  // the cache must outlive the exposer's use of it
//
// The metrics (constant labels, if any, on every sample):
//   devcache_devices                  gauge    devices held
//   devcache_capacity                 gauge    the capacity limit; +Inf when unbounded
//   devcache_heartbeats_held          gauge    sum of heartbeat counts over the devices held
//   devcache_shards                   gauge    shards of the underlying map
//   devcache_shard_devices_min        gauge    devices in the emptiest shard
//   devcache_shard_devices_max        gauge    devices in the fullest shard
//   devcache_shard_devices_mean       gauge    devices per shard, on average
//   devcache_adds_total               counter  devices added
//   devcache_refused_adds_total       counter  adds refused because the cache was full
//   devcache_heartbeats_total         counter  heartbeats recorded for a cached device
//   devcache_lookups_total            counter  lookups by MAC, hits and misses
//   devcache_lookup_misses_total      counter  lookups by MAC that found nothing
//   devcache_updates_total            counter  entries changed by update_cache_entry_by_mac,
//                                              modify_device_entry or a restore that replaced one
//   devcache_removals_total           counter  devices removed by remove_device
//   devcache_expirations_total        counter  devices expired by aging sweeps
//   devcache_evictions_total          counter  devices evicted to make room
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <prometheus/check_names.h>
#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/labels.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <devcache/device_cache.hpp>

namespace devcache {

/// Anything whose statistics can be collected: a const get_cache_stats() returning CacheStats
/// (every DeviceCache; DeviceCacheManager::instance() for the process-wide cache).
template <class T>
concept CacheStatsSource = requires(const T& cache) {
  { cache.get_cache_stats() } -> std::same_as<CacheStats>;
};

/// One metric that PrometheusCollector exposes: its name, type, HELP text, and where its value
/// comes from.
struct PrometheusMetric {
  std::string_view name;
  ::prometheus::MetricType type;
  std::string_view help;
  double (*value)(const CacheStats&);
};

/// Every metric PrometheusCollector exposes, in the order Collect() returns them (see the table at
/// the top of this header).
inline constexpr std::array<PrometheusMetric, 16> prometheus_metrics{{
    {"devcache_devices", ::prometheus::MetricType::Gauge, "Devices held in the cache.",
     [](const CacheStats& s) { return static_cast<double>(s.entries); }},
    {"devcache_capacity", ::prometheus::MetricType::Gauge,
     "The most devices the cache holds (+Inf: unbounded).",
     [](const CacheStats& s) {
       return s.capacity ? static_cast<double>(*s.capacity)
                         : std::numeric_limits<double>::infinity();
     }},
    {"devcache_heartbeats_held", ::prometheus::MetricType::Gauge,
     "The sum of the heartbeat counts of the devices held.",
     [](const CacheStats& s) { return static_cast<double>(s.total_heartbeats); }},
    {"devcache_shards", ::prometheus::MetricType::Gauge, "Shards of the cache's map.",
     [](const CacheStats& s) { return static_cast<double>(s.shard_count); }},
    {"devcache_shard_devices_min", ::prometheus::MetricType::Gauge,
     "Devices held by the emptiest shard.",
     [](const CacheStats& s) { return static_cast<double>(s.shard_min); }},
    {"devcache_shard_devices_max", ::prometheus::MetricType::Gauge,
     "Devices held by the fullest shard.",
     [](const CacheStats& s) { return static_cast<double>(s.shard_max); }},
    {"devcache_shard_devices_mean", ::prometheus::MetricType::Gauge,
     "Devices held per shard, on average.", [](const CacheStats& s) { return s.shard_mean; }},
    {"devcache_adds_total", ::prometheus::MetricType::Counter, "Devices added to the cache.",
     [](const CacheStats& s) { return static_cast<double>(s.adds); }},
    {"devcache_refused_adds_total", ::prometheus::MetricType::Counter,
     "Devices refused because the cache was full.",
     [](const CacheStats& s) { return static_cast<double>(s.refused_adds); }},
    {"devcache_heartbeats_total", ::prometheus::MetricType::Counter,
     "Heartbeats recorded for a cached device.",
     [](const CacheStats& s) { return static_cast<double>(s.heartbeats); }},
    {"devcache_lookups_total", ::prometheus::MetricType::Counter,
     "Lookups by MAC address, hits and misses.",
     [](const CacheStats& s) { return static_cast<double>(s.lookups); }},
    {"devcache_lookup_misses_total", ::prometheus::MetricType::Counter,
     "Lookups by MAC address that found no device.",
     [](const CacheStats& s) { return static_cast<double>(s.misses); }},
    {"devcache_updates_total", ::prometheus::MetricType::Counter,
     "Cached entries changed by an update, a modification or a restore that replaced them.",
     [](const CacheStats& s) { return static_cast<double>(s.updates); }},
    {"devcache_removals_total", ::prometheus::MetricType::Counter,
     "Devices removed from the cache on request.",
     [](const CacheStats& s) { return static_cast<double>(s.removals); }},
    {"devcache_expirations_total", ::prometheus::MetricType::Counter,
     "Devices expired by aging sweeps.",
     [](const CacheStats& s) { return static_cast<double>(s.expirations); }},
    {"devcache_evictions_total", ::prometheus::MetricType::Counter,
     "Devices evicted to make room for new ones.",
     [](const CacheStats& s) { return static_cast<double>(s.evictions); }},
}};

/// The metric families for `stats`, one per entry of prometheus_metrics, each with one sample
/// carrying `labels`. Pure: what PrometheusCollector::Collect() returns for those statistics.
/// Thread-safety: safe from any thread. O(metrics × labels).
/// Throws: std::bad_alloc.
[[nodiscard]] inline std::vector<::prometheus::MetricFamily> make_metric_families(
    const CacheStats& stats, const ::prometheus::Labels& labels = {}) {
  std::vector<::prometheus::ClientMetric::Label> sample_labels;
  sample_labels.reserve(labels.size());
  for (const auto& [name, value] : labels) sample_labels.push_back({name, value});

  std::vector<::prometheus::MetricFamily> families;
  families.reserve(prometheus_metrics.size());
  for (const PrometheusMetric& m : prometheus_metrics) {
    ::prometheus::MetricFamily& family = families.emplace_back();
    family.name = m.name;
    family.help = m.help;
    family.type = m.type;
    ::prometheus::ClientMetric& sample = family.metric.emplace_back();
    sample.label = sample_labels;
    const double value = m.value(stats);
    if (m.type == ::prometheus::MetricType::Counter) {
      sample.counter.value = value;
    } else {
      sample.gauge.value = value;
    }
  }
  return families;
}

/// A prometheus::Collectable that exposes a DeviceCache's statistics (see the top of this header).
/// Register it with a prometheus::Exposer (RegisterCollectable takes a std::weak_ptr, so hold the
/// collector in a std::shared_ptr), or call Collect() and serialize the result yourself
/// (prometheus::TextSerializer).
///
/// Lifetime: the reference form must not outlive the cache: unregister the collector (or destroy
/// the Exposer) before the cache goes. The pointer forms hold the cache by std::weak_ptr and have
/// no such requirement: once the cache is gone, Collect() returns no families.
///
/// Thread-safety: Collect() may run on any number of threads at once (the exposer's HTTP threads),
/// concurrently with any use of the cache; the collector has no mutable state. Construction and
/// destruction are not thread-safe.
class PrometheusCollector final : public ::prometheus::Collectable {
 public:
  /// Collects `cache`'s statistics, each sample carrying `constant_labels` (e.g. {"cache",
  /// "dhcp"}, to tell several caches apart). `cache` must outlive every Collect() call.
  /// Throws: std::invalid_argument if a label name is not a valid Prometheus label name (or is
  /// reserved: starts with "__"); std::bad_alloc.
  template <CacheStatsSource Cache>
  explicit PrometheusCollector(const Cache& cache, ::prometheus::Labels constant_labels = {})
      : source_([&cache]() -> std::optional<CacheStats> { return cache.get_cache_stats(); }),
        labels_(checked(std::move(constant_labels))) {}

  /// Not from a temporary: the collector would refer to a destroyed cache.
  template <CacheStatsSource Cache>
  explicit PrometheusCollector(const Cache&& cache,
                               ::prometheus::Labels constant_labels = {}) = delete;

  /// Collects the statistics of the cache `cache` points to while it exists; afterwards Collect()
  /// returns no families. Holds only a std::weak_ptr: the collector does not keep the cache alive
  /// (except during a Collect() call: if the last owner lets go meanwhile, the cache is destroyed
  /// on the scraping thread when that call ends).
  /// Throws: as the first constructor.
  template <CacheStatsSource Cache>
  explicit PrometheusCollector(std::weak_ptr<Cache> cache,
                               ::prometheus::Labels constant_labels = {})
      : source_([cache = std::move(cache)]() -> std::optional<CacheStats> {
          if (const std::shared_ptr<Cache> held = cache.lock()) return held->get_cache_stats();
          return std::nullopt;
        }),
        labels_(checked(std::move(constant_labels))) {}

  /// The std::weak_ptr form, for a cache owned by a std::shared_ptr (which is not kept alive).
  /// Throws: as the first constructor.
  template <CacheStatsSource Cache>
  explicit PrometheusCollector(const std::shared_ptr<Cache>& cache,
                               ::prometheus::Labels constant_labels = {})
      : PrometheusCollector(std::weak_ptr<Cache>(cache), std::move(constant_labels)) {}

  PrometheusCollector(const PrometheusCollector&) = delete;
  PrometheusCollector& operator=(const PrometheusCollector&) = delete;
  ~PrometheusCollector() override = default;

  /// The metric families of the cache's statistics now (make_metric_families of one
  /// get_cache_stats() call), or none if the weakly held cache is gone. prometheus-cpp's name.
  /// Locks each of the cache's shards shared in turn. O(cache size + capacity).
  /// Throws: std::bad_alloc.
  [[nodiscard]] std::vector<::prometheus::MetricFamily> Collect() const override {
    const std::optional<CacheStats> stats = source_();
    if (!stats) return {};
    return make_metric_families(*stats, labels_);
  }

  /// The labels put on every sample. Throws: nothing.
  [[nodiscard]] const ::prometheus::Labels& constant_labels() const noexcept { return labels_; }

 private:
  static ::prometheus::Labels checked(::prometheus::Labels labels) {
    for (const auto& [name, value] : labels) {
      if (!::prometheus::CheckLabelName(name) || name.starts_with("__")) {
        throw std::invalid_argument(
            fmt::format("PrometheusCollector: invalid label name '{}'", name));
      }
    }
    return labels;
  }

  std::function<std::optional<CacheStats>()> source_;
  ::prometheus::Labels labels_;
};

}  // namespace devcache
