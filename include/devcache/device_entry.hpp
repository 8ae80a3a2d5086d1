// devcache/device_entry.hpp — DeviceEntry, what the device cache stores about one device, with its
// fmt::formatter.
//
// Decision: how an entry holds time. The cache reads time only from its clock type (steady_clock
// by default, ManualClock in tests), so the entry holds that clock's time_points:
// BasicDeviceEntry<Clock> is the entry type of a DeviceCache<..., Clock>, and DeviceEntry is the
// alias for the default clock, the one DeviceCacheManager and most users see. Compared with
// storing plain nanoseconds "since the cache clock's epoch", this keeps the simple things simple
// and the wrong things out:
//   * `std::chrono::steady_clock::now() - entry.last_seen` is how long ago the device was seen,
//     with no epoch to convert and no unit to remember;
//   * mixing clocks does not compile: a steady_clock entry cannot be compared with a
//     system_clock::now() (steady_clock's epoch is unspecified, usually boot), nor with a
//     ManualClock time in a test;
//   * code written against DeviceEntry never spells a template argument.
// The price is that a cache on another clock hands out a different entry type,
// DeviceCache<...>::entry_type, which is what tests using ManualClock name.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ratio>
#include <string>

#include <fmt/format.h>

#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>

namespace devcache {

/// What the cache knows about one device. A plain aggregate that the cache only ever hands out as a
/// copy. To change a cached device, DeviceCache::modify_device_entry(mac, f) lets f change it in
/// place, under the cache's lock; DeviceCache::update_cache_entry_by_mac replaces it with a whole
/// entry, including a heartbeat count and last_seen that may be stale by then.
///
/// Example:
///   std::optional<devcache::DeviceEntry> e = cache.get_device_entry_by_mac(mac);
///   if (e && std::chrono::steady_clock::now() - e->last_seen > std::chrono::minutes(1)) { ... }
///   fmt::print("{}\n", *e);
///   // DeviceEntry{id="cam-1", mac=00:11:22:33:44:55, ip=10.0.0.7, port=554, heartbeats=3,
///   //             first_seen=1203.500000000s, last_seen=1263.500000000s}
///
/// Thread-safety: a plain value; the cache only ever hands out copies.
template <class Clock>
struct BasicDeviceEntry {
  using clock = Clock;
  using time_point = typename Clock::time_point;

  /// The device's own name for itself (any text; not interpreted).
  std::string device_id;
  /// The key the cache stores the entry under.
  MacAddress mac;
  /// The device's IP address, IPv4 or IPv6.
  IpAddress ip;
  /// The device's service port, if it has one.
  std::optional<std::uint16_t> port;
  /// Heartbeats recorded since the entry was added (record_heartbeat adds one).
  std::uint64_t heartbeat_count = 0;
  /// When the cache first stored the device (Clock time).
  time_point first_seen{};
  /// When the device was last added or heartbeated (Clock time); aging and eviction use it.
  time_point last_seen{};

  /// Every field equal. Throws: nothing.
  friend bool operator==(const BasicDeviceEntry&, const BasicDeviceEntry&) = default;
};

/// The entry of a cache on std::chrono::steady_clock: DeviceCache's default and
/// DeviceCacheManager's.
using DeviceEntry = BasicDeviceEntry<std::chrono::steady_clock>;

namespace detail {

/// Appends "<seconds>.<nanoseconds>s" for a duration, exactly (no floating point).
template <class OutputIt, class Rep, class Period>
OutputIt format_seconds(OutputIt out, std::chrono::duration<Rep, Period> d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  const bool negative = ns < 0;
  // Work in unsigned so that the most negative value does not overflow when negated.
  const auto magnitude =
      negative ? 0 - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
  return fmt::format_to(out, "{}{}.{:09}s", negative ? "-" : "", magnitude / 1'000'000'000U,
                        magnitude % 1'000'000'000U);
}

}  // namespace detail

}  // namespace devcache

/// fmt support: DeviceEntry{id="cam-1", mac=00:11:22:33:44:55, ip=10.0.0.7, port=554,
/// heartbeats=3, first_seen=1203.500000000s, last_seen=1263.500000000s}. Times are shown as the
/// time since the clock's epoch (for steady_clock, usually the time since boot); a missing port
/// shows as port=none. Only the empty spec "{}" is accepted.
/// Thread-safety: pure. Throws: fmt::format_error for a non-empty spec; std::bad_alloc.
template <class Clock>
struct fmt::formatter<devcache::BasicDeviceEntry<Clock>> {
  constexpr auto parse(fmt::format_parse_context& ctx) -> fmt::format_parse_context::iterator {
    auto it = ctx.begin();
    if (it != ctx.end() && *it != '}') {
      throw fmt::format_error("invalid format spec for devcache::DeviceEntry (expected \"{}\")");
    }
    return it;
  }

  template <class FormatContext>
  auto format(const devcache::BasicDeviceEntry<Clock>& e, FormatContext& ctx) const
      -> decltype(ctx.out()) {
    auto out = fmt::format_to(ctx.out(), "DeviceEntry{{id={:?}, mac={}, ip={}, port=", e.device_id,
                              e.mac, e.ip);
    out = e.port ? fmt::format_to(out, "{}", *e.port) : fmt::format_to(out, "none");
    out = fmt::format_to(out, ", heartbeats={}, first_seen=", e.heartbeat_count);
    out = devcache::detail::format_seconds(out, e.first_seen.time_since_epoch());
    out = fmt::format_to(out, ", last_seen=");
    out = devcache::detail::format_seconds(out, e.last_seen.time_since_epoch());
    return fmt::format_to(out, "}}");
  }
};
