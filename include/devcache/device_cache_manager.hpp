// devcache/device_cache_manager.hpp — DeviceCacheManager: static functions with the original Rust
// API's names over one process-wide DeviceCache, for code written against that API.
//
// The original kept a global `DashMap<MacAddress, DeviceEntry>` behind a `DeviceCacheManager` with
// associated functions. This facade keeps the names and the shape, and forwards every call to
// DeviceCacheManager::instance(), a DeviceCache<> (ShardedMap, std::chrono::steady_clock) created
// on first use. New code should prefer owning a DeviceCache: it can be configured per use, tested
// with a ManualClock, and has no global state.
//
// The instance is the one piece of global mutable state in devcache. It is a function-local
// static, so its creation is thread-safe (the first callers wait for it) and it lives until the
// end of the program; do not call the facade from the destructors of other static objects.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <devcache/device_cache.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>

namespace devcache {

/// The static facade. Every function forwards to the same-named member of instance() and has that
/// member's thread-safety, locking, complexity and exceptions (see device_cache.hpp); the first
/// call of any of them creates the cache.
///
/// Example:
///   devcache::DeviceCacheOptions options;
///   options.capacity = 10'000;
///   devcache::DeviceCacheManager::configure(options);  // optional; before anything else
///   devcache::DeviceCacheManager::add_device_entry("cam-1", "00:11:22:33:44:55", "10.0.0.7", 554);
///   devcache::DeviceCacheManager::record_heartbeat("00:11:22:33:44:55");
///   auto stats = devcache::DeviceCacheManager::get_cache_stats();
class DeviceCacheManager {
 public:
  using cache_type = DeviceCache<>;
  using entry_type = DeviceEntry;

  DeviceCacheManager() = delete;

  /// Sets the options the process-wide cache will be created with. Must be called before the
  /// first use of the cache; calling it again before then replaces the options.
  /// Thread-safety: safe from any thread, also concurrently with a first use: either this call
  /// happens first and the cache uses these options, or it throws.
  /// Throws: std::logic_error if the cache already exists; std::bad_alloc.
  static void configure(const DeviceCacheOptions& options) {
    State& s = state();
    const std::lock_guard<std::mutex> lock(s.mutex);
    if (s.created) {
      throw std::logic_error(
          "DeviceCacheManager::configure: the device cache already exists; configure must be "
          "called before its first use");
    }
    s.options = options;
  }

  /// The process-wide cache, created on the first call (thread-safe) with the configured options,
  /// or the defaults.
  /// Throws: whatever DeviceCache's constructor throws (std::invalid_argument for bad options,
  /// std::bad_alloc); the cache then does not exist, configure() may still be called, and the
  /// next call tries again.
  static cache_type& instance() {
    static cache_type& cache = create();  // after the first call, one check of a guard variable
    return cache;
  }

  // ---------------------------------------------------------------------------------------------
  // Forwarding functions, named as in the original API.

  static AddResult add_device_entry(std::string device_id, MacAddress mac, IpAddress ip,
                                    std::optional<std::uint16_t> port = std::nullopt) {
    return instance().add_device_entry(std::move(device_id), mac, ip, port);
  }
  static AddResult add_device_entry(std::string device_id, std::string_view mac,
                                    std::string_view ip,
                                    std::optional<std::uint16_t> port = std::nullopt) {
    return instance().add_device_entry(std::move(device_id), mac, ip, port);
  }
  static std::optional<entry_type> get_device_entry_by_mac(MacAddress mac) {
    return instance().get_device_entry_by_mac(mac);
  }
  static std::optional<entry_type> get_device_entry_by_mac_str(std::string_view mac) {
    return instance().get_device_entry_by_mac_str(mac);
  }
  static bool update_cache_entry_by_mac(MacAddress mac, const entry_type& entry) {
    return instance().update_cache_entry_by_mac(mac, entry);
  }
  static bool update_cache_entry_by_mac_str(std::string_view mac, const entry_type& entry) {
    return instance().update_cache_entry_by_mac_str(mac, entry);
  }
  template <class F>
  requires std::invocable<F&, entry_type&>
  static bool modify_device_entry(MacAddress mac, F&& f) {
    return instance().modify_device_entry(mac, std::forward<F>(f));
  }
  static bool record_heartbeat(MacAddress mac) { return instance().record_heartbeat(mac); }
  static bool record_heartbeat(std::string_view mac) { return instance().record_heartbeat(mac); }
  static bool remove_device(MacAddress mac) { return instance().remove_device(mac); }
  static bool remove_device(std::string_view mac) { return instance().remove_device(mac); }

  static std::vector<entry_type> collect_entries_with_high_heartbeats(
      std::uint64_t min_heartbeats) {
    return instance().collect_entries_with_high_heartbeats(min_heartbeats);
  }
  static std::vector<entry_type> collect_entries_newer_than(std::uint64_t seconds) {
    return instance().collect_entries_newer_than(seconds);
  }
  static std::vector<entry_type> collect_entries_newer_than(std::chrono::nanoseconds max_age) {
    return instance().collect_entries_newer_than(max_age);
  }
  static std::vector<entry_type> collect_entries_by_ip_pattern(std::string_view prefix) {
    return instance().collect_entries_by_ip_pattern(prefix);
  }
  static std::vector<entry_type> collect_entries_in_subnet(const IpNetwork& network) {
    return instance().collect_entries_in_subnet(network);
  }
  static std::vector<entry_type> collect_entries_in_subnet(std::string_view cidr) {
    return instance().collect_entries_in_subnet(cidr);
  }
  template <class Pred>
  requires std::predicate<Pred&, const entry_type&>
  static std::vector<entry_type> collect_if(Pred pred) {
    return instance().collect_if(std::move(pred));
  }

  static CacheStats get_cache_stats() { return instance().get_cache_stats(); }
  static std::vector<entry_type> get_cache_snapshot() { return instance().get_cache_snapshot(); }
  static std::vector<entry_type> sweep_expired(std::size_t max_shards = 1) {
    return instance().sweep_expired(max_shards);
  }
  static std::vector<entry_type> sweep_all_expired() { return instance().sweep_all_expired(); }
  template <class Alloc>
  static std::size_t sweep_expired(std::vector<entry_type, Alloc>& out,
                                   std::size_t max_shards = 1) {
    return instance().sweep_expired(out, max_shards);
  }
  template <class Alloc>
  static std::size_t sweep_all_expired(std::vector<entry_type, Alloc>& out) {
    return instance().sweep_all_expired(out);
  }

 private:
  struct State {
    std::mutex mutex;
    DeviceCacheOptions options;
    bool created = false;
  };

  static State& state() {
    static State s;
    return s;
  }

  // Creates the cache under the mutex, so that a concurrent configure() either comes first or
  // throws; from then on configure() throws.
  static cache_type& create() {
    State& s = state();
    const std::lock_guard<std::mutex> lock(s.mutex);
    static cache_type cache(s.options);
    s.created = true;
    return cache;
  }
};

}  // namespace devcache
