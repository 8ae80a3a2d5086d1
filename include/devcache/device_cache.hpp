// devcache/device_cache.hpp — DeviceCache: the concurrent device cache, keyed by MAC address, with
// heartbeats, aging, a capacity limit against MAC flooding, and statistics.
//
// Design
// ------
// DeviceCache is a thin layer over one concurrent map (ShardedMap by default, CuckooMap allowed)
// from MacAddress to BasicDeviceEntry<Clock>. It adds no lock of its own: every operation is one or
// a few calls into the map's closure API, so the map's locking protocol is the whole story (see
// sharded_map.hpp). In particular:
//   * No call can suspend or hold a lock after it returns: entries are copied out, and changes in
//     place happen in a callback under the map's lock. Every call is therefore safe from any thread
//     and from coroutines (nothing is held across a co_await).
//   * Read-modify-write is atomic per device. record_heartbeat increments the count and sets
//     last_seen in one map.visit, under one lock. (The original Rust updater did get-then-put, so
//     two concurrent heartbeats could both read n and both write n + 1, losing one.)
//   * Whole-cache reads (collect_*, get_cache_stats) visit the map a shard at a time: they are
//     weakly consistent, and never block writers for longer than one shard takes (with CuckooMap
//     they lock the whole table: consistent, but blocking).
//     get_cache_snapshot() is the consistent alternative: it locks every shard at once (shared).
//
// Time comes only from the Clock type, so a test drives a devcache::ManualClock and never sleeps.
//
// Aging: a device not seen (added or heartbeated) for options.aging_time (default 300 s, the usual
// switch MAC-table default) is expired by sweep_expired(max_shards), which sweeps at most
// `max_shards` shards per call (one shard lock at a time, a shared cursor remembering where the
// last call stopped), so a periodic caller never stalls writers for long; sweep_all_expired()
// sweeps all.
//
// Capacity: options.capacity bounds the number of devices, the defence against MAC flooding (a
// flood of spoofed source MACs must not grow memory without bound). When the cache is full a new
// device is refused (CapacityPolicy::refuse_new, the default: devices already cached are never
// displaced) or an old one is evicted (CapacityPolicy::evict_least_recently_seen). The bound is
// exact, even transiently: an atomic reservation count is raised (compare-and-swap, never past the
// capacity) before a device is inserted and lowered after a device is erased, so the number of
// entries never exceeds the number of reservations. Only adds and erasures touch it; heartbeats and
// lookups, the vast majority of calls, never do.
//
// Statistics: counters (adds, heartbeats, lookups, ...) are split into 64 cache-line-aligned
// stripes of relaxed atomics. Each thread picks a stripe on first use (round-robin), so threads on
// different cores mostly increment their own cache line: no counter is a shared hot spot.
// get_cache_stats() sums the stripes.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <devcache/detail/saturating.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

namespace devcache {

/// What add_device_entry does when the cache holds options.capacity devices.
enum class CapacityPolicy : std::uint8_t {
  /// Refuse the new device (the default). Cached devices are never displaced, so under a MAC
  /// flood every known device survives; new genuine devices are refused until room is made
  /// (aging, remove_device).
  refuse_new,
  /// Evict the least recently seen devices to make room, with one refinement: devices that have
  /// never sent a heartbeat go first, and a device that has sent one is evicted only when no shard
  /// holds a device that has not. Spoofed flood MACs never heartbeat, so during a flood they evict
  /// each other and every known, heartbeating device survives, however fast the flood is. (Plain
  /// least-recently-seen would evict a known device whenever the flood cycles through the whole
  /// capacity faster than the device's heartbeat interval.) Victims are chosen one shard at a
  /// time, round-robin: the oldest 1/16 (at least one) of the candidates in that shard, so "least
  /// recently seen" is exact with one shard (CuckooMap, or shard_count = 1) and per shard
  /// otherwise. A device whose heartbeat count or last_seen changed after it was chosen (a
  /// heartbeat, or an update that changed either) is not evicted; a change of other fields only
  /// does not save it.
  evict_least_recently_seen,
};

/// "refuse_new" or "evict_least_recently_seen". Throws: nothing.
constexpr std::string_view to_string(CapacityPolicy policy) noexcept {
  return policy == CapacityPolicy::refuse_new ? "refuse_new" : "evict_least_recently_seen";
}

/// The shard count a DeviceCache's ShardedMap gets by default: 1024 (64 KiB of shards), more than
/// a plain ShardedMap's default. A registry runs whole-cache calls (collect_*, sweeps, snapshots,
/// eviction scans) next to its heartbeat writers, and each holds one shard's lock while it scans
/// that shard: a writer's expected wait per operation falls with the square of the shard count
/// (each shard is locked 1/shards of the time, for 1/shards of a scan). Measured on 1M devices
/// with a collector scanning back to back (bench/results/device.md): with 64 shards heartbeat
/// writers kept about 10% of their rate, with 1024 all of it.
inline constexpr std::size_t default_device_cache_shard_count = 1024;

/// The default aging time: 300 s, the usual default of a switch's MAC address table.
inline constexpr std::chrono::seconds default_aging_time{300};

/// How a DeviceCache is built. Every field has a usable default.
///
/// Example:
///   devcache::DeviceCacheOptions options;
///   options.capacity = 10'000;
///   options.capacity_policy = devcache::CapacityPolicy::evict_least_recently_seen;
///   options.aging_time = std::chrono::minutes(10);
///   devcache::DeviceCache<> cache(options);
struct DeviceCacheOptions {
  /// Shards of the underlying map; 0 means default_device_cache_shard_count (1024). CuckooMap
  /// ignores it (it always has one).
  std::size_t shard_count = 0;
  /// The seed keying the map's hash; std::nullopt draws a random one (the safe default against
  /// attacker-chosen MACs). Set a fixed one only for reproducible tests and benchmarks.
  std::optional<HashSeed> hash_seed;
  /// The most devices the cache holds; std::nullopt means unbounded. 0 refuses every device.
  std::optional<std::size_t> capacity;
  /// What happens to a new device when the cache is full.
  CapacityPolicy capacity_policy = CapacityPolicy::refuse_new;
  /// How long a device stays after it was last seen before a sweep expires it. Zero disables aging
  /// (as "aging-time 0" does on a switch); negative is an error.
  std::chrono::nanoseconds aging_time = default_aging_time;
};

/// What add_device_entry did.
enum class AddOutcome : std::uint8_t {
  inserted,         ///< the device was new and is now cached
  already_present,  ///< a device with this MAC is cached; it was left unchanged
  refused_full,     ///< the cache is full and the device was not added
};

/// "inserted", "already_present" or "refused_full". Throws: nothing.
constexpr std::string_view to_string(AddOutcome outcome) noexcept {
  switch (outcome) {
    case AddOutcome::inserted:
      return "inserted";
    case AddOutcome::already_present:
      return "already_present";
    case AddOutcome::refused_full:
      return "refused_full";
  }
  return "unknown";
}

/// The result of add_device_entry: the outcome, and how many devices this call evicted to make room
/// (only under CapacityPolicy::evict_least_recently_seen; possibly more than one, since eviction
/// works in small batches, and possibly non-zero even when the outcome is refused_full, if other
/// threads took the room first).
struct AddResult {
  AddOutcome outcome = AddOutcome::inserted;
  std::size_t evicted = 0;
  friend bool operator==(const AddResult&, const AddResult&) = default;
};

/// What restore_device_entry did.
enum class RestoreOutcome : std::uint8_t {
  inserted,      ///< the device was not cached; the entry is now
  replaced,      ///< the device was cached; its entry was replaced by the one given
  refused_full,  ///< the device was not cached, the cache is full, and nothing changed
};

/// "inserted", "replaced" or "refused_full". Throws: nothing.
constexpr std::string_view to_string(RestoreOutcome outcome) noexcept {
  switch (outcome) {
    case RestoreOutcome::inserted:
      return "inserted";
    case RestoreOutcome::replaced:
      return "replaced";
    case RestoreOutcome::refused_full:
      return "refused_full";
  }
  return "unknown";
}

/// A summary of the cache. Entries, total_heartbeats and the shard occupancy are counted in one
/// pass over the shards (each shard exact at the moment it is read); the counters are sums of
/// monotonic per-thread stripes read one after another. Under concurrent writes the fields can be
/// a few operations apart from each other; without writers they are exact.
struct CacheStats {
  /// Devices held.
  std::size_t entries = 0;
  /// options.capacity (std::nullopt: unbounded).
  std::optional<std::size_t> capacity;
  /// The sum of heartbeat_count over the devices held.
  std::uint64_t total_heartbeats = 0;

  /// add_device_entry calls that inserted a device (and restore_device_entry calls, as a load
  /// makes them, that inserted one).
  std::uint64_t adds = 0;
  /// add_device_entry (and restore_device_entry) calls refused because the cache was full.
  std::uint64_t refused_adds = 0;
  /// record_heartbeat calls that found their device.
  std::uint64_t heartbeats = 0;
  /// get_device_entry_by_mac[_str] calls, hits and misses.
  std::uint64_t lookups = 0;
  /// get_device_entry_by_mac[_str] calls that found nothing.
  std::uint64_t misses = 0;
  /// update_cache_entry_by_mac[_str], modify_device_entry and restore_device_entry calls that
  /// changed or replaced an entry.
  std::uint64_t updates = 0;
  /// remove_device calls that removed a device.
  std::uint64_t removals = 0;
  /// Devices removed by sweep_expired / sweep_all_expired.
  std::uint64_t expirations = 0;
  /// Devices evicted to make room under CapacityPolicy::evict_least_recently_seen.
  std::uint64_t evictions = 0;

  /// The map's shards, and how many devices the emptiest, the fullest and the average one hold.
  std::size_t shard_count = 0;
  std::size_t shard_min = 0;
  std::size_t shard_max = 0;
  double shard_mean = 0.0;

  friend bool operator==(const CacheStats&, const CacheStats&) = default;
};

namespace detail {

/// The stripe the calling thread increments: chosen round-robin at the thread's first use.
/// Thread-safety: safe from any thread. Throws: nothing.
inline std::size_t this_thread_stripe(std::size_t stripes) noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t ticket = next.fetch_add(1, std::memory_order_relaxed);
  return ticket % stripes;
}

/// `N` monotonic 64-bit counters, striped over `StripeCount` cache lines so that threads on
/// different cores do not contend on one line. add() is one relaxed fetch_add on the calling
/// thread's stripe; sum() reads every stripe (O(StripeCount)). Thread-safety: every member is safe
/// from any thread; sum() is not a snapshot of concurrent adds (each stripe is read once).
template <std::size_t N, std::size_t StripeCount = 64>
class StripedCounters {
 public:
  void add(std::size_t counter, std::uint64_t n = 1) noexcept {
    stripes_[this_thread_stripe(StripeCount)].values[counter].fetch_add(n,
                                                                        std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint64_t sum(std::size_t counter) const noexcept {
    std::uint64_t total = 0;
    for (const Stripe& s : stripes_) total += s.values[counter].load(std::memory_order_relaxed);
    return total;
  }

 private:
  struct alignas(64) Stripe {
    std::array<std::atomic<std::uint64_t>, N> values{};
  };
  std::array<Stripe, StripeCount> stripes_{};
};

}  // namespace detail

/// A concurrent cache of devices keyed by MAC address.
///
/// `Map` is the map template the cache stores its entries in (ShardedMap or CuckooMap, or anything
/// with their interface); `Clock` is where all time comes from (std::chrono::steady_clock, or
/// ManualClock in tests). The entry type is BasicDeviceEntry<Clock>; for the default clock that is
/// DeviceEntry.
///
/// Every member function is safe to call from any number of threads at once, except the
/// constructor and destructor. Each comment says which map locks the call takes, in ShardedMap's
/// terms ("locks one shard exclusive", "locks each shard shared in turn"); with CuckooMap a
/// one-device call locks the device's two buckets instead, and a whole-cache call locks the whole
/// table (consistent, but blocking every other call while it runs). A callback given to the cache
/// (collect_if's predicate) runs under a map lock and must not call back into the cache; debug
/// builds abort with a message if it does.
///
/// Example:
///   devcache::DeviceCacheOptions options;
///   options.capacity = 50'000;
///   devcache::DeviceCache<> cache(options);
///   cache.add_device_entry("cam-1", "00:11:22:33:44:55", "10.0.0.7", 554);  // or ParseError
///   cache.record_heartbeat(devcache::MacAddress::parse("00:11:22:33:44:55"));
///   for (const devcache::DeviceEntry& e : cache.collect_entries_in_subnet("10.0.0.0/8")) { ... }
///   cache.sweep_expired(4);  // on a timer: expire devices unseen for 300 s, 4 shards a call

template <template <class...> class Map = ShardedMap, class Clock = std::chrono::steady_clock>
requires std::chrono::is_clock_v<Clock>
class DeviceCache {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;
  using entry_type = BasicDeviceEntry<Clock>;
  using map_type = Map<MacAddress, entry_type>;

  /// How many times add_device_entry evicts and retries before it gives up and refuses (so that
  /// adders racing for the room freed by each other's evictions cannot livelock).
  static constexpr int max_eviction_rounds = 4;
  /// Eviction takes the oldest 1/eviction_batch_divisor of a shard's candidates at once (at least
  /// one), so that the O(shard size) scan that finds them is amortised over that many evictions.
  static constexpr std::size_t eviction_batch_divisor = 16;

  /// A cache with the default options: default_device_cache_shard_count shards, random seed,
  /// unbounded, 300 s aging. Throws: std::bad_alloc; std::system_error if no random seed can be
  /// drawn.
  DeviceCache() : DeviceCache(DeviceCacheOptions{}) {}

  /// A cache with the given options.
  /// Throws: std::invalid_argument if options.aging_time is negative or options.shard_count exceeds
  /// max_shard_count (ShardedMap); std::bad_alloc; std::system_error if no random seed can be
  /// drawn.
  explicit DeviceCache(const DeviceCacheOptions& options)
      : options_(checked(options)),
        map_(options.shard_count != 0 ? options.shard_count : default_device_cache_shard_count,
             options.hash_seed ? *options.hash_seed : HashSeed::random()) {}

  DeviceCache(const DeviceCache&) = delete;
  DeviceCache& operator=(const DeviceCache&) = delete;
  /// Not thread-safe: no other call may run concurrently.
  ~DeviceCache() = default;

  // ---------------------------------------------------------------------------------------------
  // Adding, updating, removing

  /// Adds a device first seen now (heartbeat_count 0, first_seen = last_seen = Clock::now()).
  /// Returns inserted; already_present if the MAC is cached (the cached entry is left unchanged:
  /// use update_cache_entry_by_mac to replace it, record_heartbeat to refresh it); or refused_full
  /// if the cache is full (see CapacityPolicy; a cached MAC is reported as already_present even
  /// then). Full counts adds in flight: with one room left, an add racing with an add of a MAC
  /// that is already cached may be refused. Counted in stats as adds or refused_adds.
  /// Locks one shard exclusive. When the cache is full under evict_least_recently_seen it first
  /// chooses victims, locking shards shared one at a time from a round-robin cursor until one
  /// holds a device that never sent a heartbeat: O(size of the shards scanned), usually one
  /// shard, but every shard, O(size), when no device anywhere lacks a heartbeat; then it locks
  /// one shard exclusive per victim (1/16 of a shard's candidates are evicted per scan).
  /// Throws: std::bad_alloc; the device is then not added (devices already evicted to make room
  /// for it stay evicted).
  AddResult add_device_entry(std::string device_id, MacAddress mac, IpAddress ip,
                             std::optional<std::uint16_t> port = std::nullopt) {
    const time_point now = Clock::now();
    AddResult result;
    if (options_.capacity && !reserve_slot(mac, result)) return result;
    bool inserted = false;
    try {
      inserted =
          map_.try_emplace(mac, entry_type{std::move(device_id), mac, ip, port, 0, now, now});
    } catch (...) {
      release_slots(1);
      throw;
    }
    if (!inserted) {
      release_slots(1);
      result.outcome = AddOutcome::already_present;
      return result;
    }
    counters_.add(counter_adds);
    return result;
  }

  /// add_device_entry after parsing `mac` (MacAddress::parse) and `ip` (IpAddress::parse).
  /// Locks: as the other overload.
  /// Throws: ParseError if either text is malformed; nothing is then stored or counted. As the
  /// other overload otherwise.
  AddResult add_device_entry(std::string device_id, std::string_view mac, std::string_view ip,
                             std::optional<std::uint16_t> port = std::nullopt) {
    const MacAddress parsed_mac = MacAddress::parse(mac);
    const IpAddress parsed_ip = IpAddress::parse(ip);
    return add_device_entry(std::move(device_id), parsed_mac, parsed_ip, port);
  }

  /// Replaces the cached entry of `mac` with `entry` (all fields, as given: heartbeat count and
  /// times too); returns whether the device was cached. Counted in stats as updates.
  /// Last writer wins: an `entry` copied out earlier carries the heartbeat count and last_seen of
  /// that moment, so heartbeats recorded since are lost and last_seen moves back. To change some
  /// fields of a device that keeps sending heartbeats, use modify_device_entry.
  /// Decision: an absent device is not inserted, unlike the original DashMap insert. An update
  /// racing with remove_device or a sweep would otherwise resurrect the device it removed, and
  /// insertion has one path only, add_device_entry, which enforces the capacity.
  /// Locks one shard exclusive (the copy of `entry` is made before, the lock only moves it).
  /// Throws: std::invalid_argument if entry.mac != mac (the key and the entry would disagree);
  /// std::bad_alloc (the cache is then unchanged).
  bool update_cache_entry_by_mac(MacAddress mac, const entry_type& entry) {
    if (entry.mac != mac) {
      throw std::invalid_argument(
          fmt::format("DeviceCache::update_cache_entry_by_mac: the entry's MAC {} differs from "
                      "the key {}",
                      entry.mac, mac));
    }
    entry_type copy = entry;
    const bool found = map_.visit(mac, [&copy](entry_type& e) { e = std::move(copy); });
    if (found) counters_.add(counter_updates);
    return found;
  }

  /// Changes the cached entry of `mac` in place: calls f(entry_type&) under the shard's lock, so
  /// no heartbeat, update or removal can come between what f reads and what it writes (a new IP
  /// or port for a device that keeps sending heartbeats loses none of them). f works on a copy of
  /// the entry, which replaces it only if f returns normally and left the MAC as it was. Returns
  /// whether the device was cached (f is not called otherwise). Counted in stats as updates.
  /// Locks one shard exclusive; f runs under it and must not call into this cache (it would
  /// deadlock; debug builds abort with a message instead).
  /// Throws: whatever f throws; std::invalid_argument if f changed the MAC; std::bad_alloc. The
  /// entry is then unchanged.
  template <class F>
  requires std::invocable<F&, entry_type&>
  bool modify_device_entry(MacAddress mac, F&& f) {
    const bool found = map_.visit(mac, [&f, mac](entry_type& e) {
      entry_type changed = e;
      f(changed);
      if (changed.mac != mac) {
        throw std::invalid_argument(
            fmt::format("DeviceCache::modify_device_entry: the callback changed the MAC {} to {}",
                        mac, changed.mac));
      }
      e = std::move(changed);
    });
    if (found) counters_.add(counter_updates);
    return found;
  }

  /// update_cache_entry_by_mac after parsing `mac`.
  /// Throws: ParseError if `mac` is malformed (nothing changes); as the other overload otherwise.
  bool update_cache_entry_by_mac_str(std::string_view mac, const entry_type& entry) {
    return update_cache_entry_by_mac(MacAddress::parse(mac), entry);
  }

  /// Stores `entry` exactly as given (id, IP, port, heartbeat count and both times) under
  /// entry.mac, the way a saved cache is restored (persistence.hpp's load): an entry cached under
  /// that MAC is replaced (counted in stats as an update); otherwise the entry is inserted
  /// (counted as an add) if the capacity allows, and refused (counted as a refused add) if not.
  /// Decision: it never evicts, whatever the capacity policy: a restore must not displace devices
  /// that are live now in favour of devices from a file, and its caller learns of every refusal.
  /// Locks one shard exclusive (and, when the cache is full, one more time to try the replace).
  /// Throws: std::bad_alloc (the cache is then unchanged).
  RestoreOutcome restore_device_entry(entry_type entry) {
    const MacAddress mac = entry.mac;
    if (options_.capacity && !try_reserve()) {
      // Full: only a device already cached can be stored, in place of its old entry.
      if (map_.visit(mac, [&entry](entry_type& e) { e = std::move(entry); })) {
        counters_.add(counter_updates);
        return RestoreOutcome::replaced;
      }
      counters_.add(counter_refused_adds);
      return RestoreOutcome::refused_full;
    }
    bool inserted = false;
    try {
      inserted = map_.insert_or_assign(mac, std::move(entry));
    } catch (...) {
      release_slots(1);
      throw;
    }
    if (!inserted) {
      release_slots(1);  // it replaced an entry: the room reserved was not needed
      counters_.add(counter_updates);
      return RestoreOutcome::replaced;
    }
    counters_.add(counter_adds);
    return RestoreOutcome::inserted;
  }

  /// Records a heartbeat: heartbeat_count + 1 and last_seen = Clock::now(), in place, in one
  /// atomic step, so no heartbeat is lost to a concurrent one. last_seen never moves backwards
  /// (a racing heartbeat that read the clock earlier leaves the later time). Returns whether the
  /// device was cached (an unknown device is not added). Counted in stats as heartbeats.
  /// Locks one shard exclusive. Throws: nothing (with ShardedMap or CuckooMap).
  bool record_heartbeat(MacAddress mac) {
    const time_point now = Clock::now();
    const bool found = map_.visit(mac, [now](entry_type& e) {
      ++e.heartbeat_count;
      if (e.last_seen < now) e.last_seen = now;
    });
    if (found) counters_.add(counter_heartbeats);
    return found;
  }

  /// record_heartbeat for each MAC of `macs`, batched: the map groups the MACs by shard, takes each
  /// shard's lock once per group and prefetches the entries before it touches them, which is
  /// faster than one call per MAC when the table is larger than the caches (bench/device_bench).
  /// Each heartbeat is atomic as in record_heartbeat; the batch as a whole is not (another thread
  /// may see some of its heartbeats and not others). All heartbeats of a batch get one time stamp.
  /// A MAC that appears twice gets two heartbeats. Returns how many MACs were cached.
  /// Locks the shards the MACs fall in exclusive, one at a time. O(macs.size()).
  /// Throws: nothing (with ShardedMap or CuckooMap).
  std::size_t record_heartbeats(std::span<const MacAddress> macs) {
    const time_point now = Clock::now();
    const std::size_t found = map_.visit_many(macs, [now](const MacAddress&, entry_type& e) {
      ++e.heartbeat_count;
      if (e.last_seen < now) e.last_seen = now;
    });
    if (found != 0) counters_.add(counter_heartbeats, found);
    return found;
  }

  /// record_heartbeat after parsing `mac`.
  /// Throws: ParseError if `mac` is malformed (nothing changes); std::bad_alloc.
  bool record_heartbeat(std::string_view mac) { return record_heartbeat(MacAddress::parse(mac)); }

  /// Removes the device; returns whether it was cached. Counted in stats as removals.
  /// Locks one shard exclusive. Throws: nothing (with ShardedMap or CuckooMap).
  bool remove_device(MacAddress mac) {
    if (!map_.erase(mac)) return false;
    release_slots(1);
    counters_.add(counter_removals);
    return true;
  }

  /// remove_device after parsing `mac`.
  /// Throws: ParseError if `mac` is malformed (nothing changes); std::bad_alloc.
  bool remove_device(std::string_view mac) { return remove_device(MacAddress::parse(mac)); }

  // ---------------------------------------------------------------------------------------------
  // Lookup

  /// A copy of the device's entry, or std::nullopt. Counted in stats as a lookup (and a miss).
  /// Locks one shard shared. Throws: std::bad_alloc.
  [[nodiscard]] std::optional<entry_type> get_device_entry_by_mac(MacAddress mac) const {
    std::optional<entry_type> entry = map_.find(mac);
    counters_.add(counter_lookups);
    if (!entry) counters_.add(counter_misses);
    return entry;
  }

  /// get_device_entry_by_mac after parsing `mac`.
  /// Throws: ParseError if `mac` is malformed (nothing is counted); std::bad_alloc.
  [[nodiscard]] std::optional<entry_type> get_device_entry_by_mac_str(std::string_view mac) const {
    return get_device_entry_by_mac(MacAddress::parse(mac));
  }

  /// The number of devices. Weakly consistent: under concurrent writes it may be out of date by
  /// the time it returns, and, since each shard is read at a different moment, concurrent
  /// eviction and insertion can make it over- or under-count. get_cache_snapshot().size() is exact.
  /// Locks each shard shared in turn (CuckooMap: the whole table). Throws: nothing.
  [[nodiscard]] std::size_t size() const noexcept { return map_.size(); }

  // ---------------------------------------------------------------------------------------------
  // Whole-cache reads. All are weakly consistent (a shard at a time; an entry changed meanwhile
  // may be seen before or after the change, never half-changed), O(size + capacity), return
  // entries in no particular order, and throw only std::bad_alloc unless said otherwise.

  /// The devices with heartbeat_count >= min_heartbeats.
  /// Locks each shard shared in turn.
  [[nodiscard]] std::vector<entry_type> collect_entries_with_high_heartbeats(
      std::uint64_t min_heartbeats) const {
    return collect_if(
        [min_heartbeats](const entry_type& e) { return e.heartbeat_count >= min_heartbeats; });
  }

  /// The devices seen within `max_age` of now: Clock::now() - last_seen < max_age. This is the
  /// exact complement of what a sweep at the same moment with aging_time == max_age expires.
  /// Any last_seen is handled, time_point::min() and max() included: the age saturates instead
  /// of overflowing, so a device last seen at time_point::min() is older than any max_age.
  /// Locks each shard shared in turn.
  [[nodiscard]] std::vector<entry_type> collect_entries_newer_than(
      std::chrono::nanoseconds max_age) const {
    const time_point now = Clock::now();
    return collect_if([now, max_age](const entry_type& e) {
      return detail::age_ns(now, e.last_seen) < max_age.count();
    });
  }

  /// collect_entries_newer_than(std::chrono::seconds(seconds)), as the original API took it.
  /// Values too large for nanoseconds (over 292 years) mean "any age": every device.
  /// Locks each shard shared in turn.
  [[nodiscard]] std::vector<entry_type> collect_entries_newer_than(std::uint64_t seconds) const {
    constexpr auto max_seconds = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::nanoseconds::max()).count());
    if (seconds >= max_seconds) return collect_if([](const entry_type&) { return true; });
    return collect_entries_newer_than(
        std::chrono::nanoseconds(std::chrono::seconds(static_cast<std::int64_t>(seconds))));
  }

  /// The devices whose IP address's text form (IpAddress::to_string) starts with `prefix`, as the
  /// original did: "10.0." matches 10.0.3.4 (and "10.0.0.1" also matches 10.0.0.100; use
  /// collect_entries_in_subnet for real subnet matching). The empty prefix matches everything.
  /// Locks each shard shared in turn (the text is formatted on the stack, without allocating).
  [[nodiscard]] std::vector<entry_type> collect_entries_by_ip_pattern(
      std::string_view prefix) const {
    return collect_if([prefix](const entry_type& e) {
      std::array<char, IpAddress::max_text_size + 1> text{};
      return std::string_view(text.data(), e.ip.to_chars(text)).starts_with(prefix);
    });
  }

  /// The devices whose IP address is in `network` (same family; see IpNetwork::contains).
  /// Locks each shard shared in turn.
  [[nodiscard]] std::vector<entry_type> collect_entries_in_subnet(const IpNetwork& network) const {
    return collect_if([network](const entry_type& e) { return network.contains(e.ip); });
  }

  /// collect_entries_in_subnet after parsing `cidr` ("10.0.0.0/8", "fd00::/8"; IpNetwork::parse).
  /// Throws: ParseError if `cidr` is malformed; std::bad_alloc.
  [[nodiscard]] std::vector<entry_type> collect_entries_in_subnet(std::string_view cidr) const {
    return collect_entries_in_subnet(IpNetwork::parse(cidr));
  }

  /// Copies of the devices for which pred(const entry_type&) is true.
  /// Locks each shard shared in turn; pred runs under the lock and must not call into this cache.
  /// The result grows between shards, never under a lock (see StagedResult).
  /// Throws: whatever pred throws; std::bad_alloc.
  template <class Pred>
  requires std::predicate<Pred&, const entry_type&>
  [[nodiscard]] std::vector<entry_type> collect_if(Pred pred) const {
    StagedResult result;
    for (std::size_t i = 0; i < map_.shard_count(); ++i) {
      map_.cvisit_shard(i, [&](const MacAddress& /*mac*/, const entry_type& e) {
        if (pred(e)) result.staging.push_back(e);
      });
      result.flush();
    }
    return std::move(result.out);
  }

  /// A consistent point-in-time copy of every device, sorted by MAC (map.snapshot(): every shard
  /// is locked shared at once while the copy is made, so writers wait for it).
  /// Locks all shards shared. O(size + capacity), plus O(size log size) to sort after unlocking.
  /// Throws: std::bad_alloc.
  [[nodiscard]] std::vector<entry_type> get_cache_snapshot() const {
    auto pairs = map_.snapshot();
    std::vector<entry_type> out;
    out.reserve(pairs.size());
    for (auto& pair : pairs) out.push_back(std::move(pair.second));
    std::sort(out.begin(), out.end(),
              [](const entry_type& a, const entry_type& b) { return a.mac < b.mac; });
    return out;
  }

  /// The statistics (see CacheStats for what each field means and how consistent they are).
  /// Locks each shard shared in turn. O(size + capacity + 64 stripes).
  /// Throws: nothing (with ShardedMap or CuckooMap).
  [[nodiscard]] CacheStats get_cache_stats() const {
    CacheStats s;
    s.capacity = options_.capacity;
    s.shard_count = map_.shard_count();
    s.shard_min = std::numeric_limits<std::size_t>::max();
    for (std::size_t i = 0; i < s.shard_count; ++i) {
      std::size_t entries = 0;
      std::uint64_t beats = 0;
      map_.cvisit_shard(i, [&](const MacAddress& /*mac*/, const entry_type& e) {
        ++entries;
        beats += e.heartbeat_count;
      });
      s.entries += entries;
      s.total_heartbeats += beats;
      s.shard_min = std::min(s.shard_min, entries);
      s.shard_max = std::max(s.shard_max, entries);
    }
    if (s.shard_count == 0) s.shard_min = 0;
    s.shard_mean = s.shard_count == 0
                       ? 0.0
                       : static_cast<double>(s.entries) / static_cast<double>(s.shard_count);
    s.adds = counters_.sum(counter_adds);
    s.refused_adds = counters_.sum(counter_refused_adds);
    s.heartbeats = counters_.sum(counter_heartbeats);
    s.lookups = counters_.sum(counter_lookups);
    s.misses = counters_.sum(counter_misses);
    s.updates = counters_.sum(counter_updates);
    s.removals = counters_.sum(counter_removals);
    s.expirations = counters_.sum(counter_expirations);
    s.evictions = counters_.sum(counter_evictions);
    return s;
  }

  // ---------------------------------------------------------------------------------------------
  // Aging

  /// Removes the devices not seen within the aging time (Clock::now() - last_seen >= aging_time,
  /// computed without overflow for any last_seen, time_point::min() included) from the next
  /// `max_shards` shards after where the previous call stopped (a shared cursor, so calls from
  /// several threads still cover the shards in turn), and returns them. Call it from a timer:
  /// shard_count() / max_shards calls sweep the whole cache. Returns nothing if aging is disabled.
  /// Counted in stats as expirations.
  /// Locks at most `max_shards` shards exclusive, one at a time; O(shard size + capacity) each.
  /// Throws: std::bad_alloc; the devices already removed then stay removed and counted, but are
  /// lost with the result: the overload that appends to the caller's vector keeps them.
  std::vector<entry_type> sweep_expired(std::size_t max_shards = 1) {
    std::vector<entry_type> removed;
    sweep_expired(removed, max_shards);
    return removed;
  }

  /// sweep_expired(max_shards), appending the removed devices to `out` (any allocator); returns
  /// how many it appended. Nothing is lost if it throws: every device it removed is in `out`
  /// (and counted), every device not in `out` is still in the cache. `out` only grows between
  /// locks; under a lock, devices are copied into capacity reserved before it was taken, and a
  /// shard whose expired devices do not fit is swept again after `out` has grown.
  /// Locks as sweep_expired(max_shards); O(shard size + capacity) per shard, once more for each
  /// time `out` has to grow (at most about log2 of what the call removes, as `out` doubles).
  /// Throws: std::bad_alloc (from growing `out` or copying a device; that device stays cached).
  template <class Alloc>
  std::size_t sweep_expired(std::vector<entry_type, Alloc>& out, std::size_t max_shards = 1) {
    if (options_.aging_time == std::chrono::nanoseconds::zero()) return 0;
    const std::size_t shards = map_.shard_count();
    const std::size_t count = std::min(max_shards, shards);
    const time_point now = Clock::now();
    const std::size_t before = out.size();
    for (std::size_t i = 0; i < count; ++i) {
      sweep_shard(sweep_cursor_.fetch_add(1, std::memory_order_relaxed) % shards, now, out);
    }
    return out.size() - before;
  }

  /// sweep_expired over every shard, in index order (the cursor is left alone).
  /// Locks each shard exclusive in turn: weakly consistent. O(size + capacity).
  /// Throws: as sweep_expired() (the overload below keeps what was removed).
  std::vector<entry_type> sweep_all_expired() {
    std::vector<entry_type> removed;
    sweep_all_expired(removed);
    return removed;
  }

  /// sweep_all_expired(), appending to `out`; returns how many it appended. Nothing is lost if
  /// it throws, as with sweep_expired(out, max_shards).
  /// Locks each shard exclusive in turn. O(size + capacity), plus a shard's rescan each time
  /// `out` has to grow. Throws: std::bad_alloc.
  template <class Alloc>
  std::size_t sweep_all_expired(std::vector<entry_type, Alloc>& out) {
    if (options_.aging_time == std::chrono::nanoseconds::zero()) return 0;
    const time_point now = Clock::now();
    const std::size_t before = out.size();
    for (std::size_t i = 0; i < map_.shard_count(); ++i) sweep_shard(i, now, out);
    return out.size() - before;
  }

  // ---------------------------------------------------------------------------------------------
  // Configuration

  /// Makes room for about `n` devices, so that adding them does not grow the map (with a capacity,
  /// reserve(*options().capacity) sizes the map once, up front).
  /// Locks each shard exclusive in turn (CuckooMap: the whole table). O(n).
  /// Throws: std::bad_alloc, std::length_error for an n no table could hold (ShardedMap), and
  /// for CuckooMap libcuckoo::load_factor_too_low.
  void reserve(std::size_t n) { map_.reserve(n); }

  /// The options the cache was built with. Throws: nothing.
  [[nodiscard]] const DeviceCacheOptions& options() const noexcept { return options_; }
  /// The map's shard count (CuckooMap: 1). Throws: nothing.
  [[nodiscard]] std::size_t shard_count() const noexcept { return map_.shard_count(); }
  /// Clock::now(), the time every call of this cache uses.
  [[nodiscard]] static time_point now() noexcept(noexcept(Clock::now())) { return Clock::now(); }

 private:
  // A whole-cache result gathered a shard at a time: entries are copied into `staging` (one
  // shard's worth, reused) while the shard is locked and moved into `out` after the lock is
  // released, so the growth of `out` (which moves everything gathered so far) never happens under
  // a lock. Appending to the result under the lock stalled a heartbeat writer for 25-34 ms each
  // time a result of 1M devices grew (bench/results/device.md).
  struct StagedResult {
    std::vector<entry_type> out;
    std::vector<entry_type> staging;
    void flush() {
      out.insert(out.end(), std::make_move_iterator(staging.begin()),
                 std::make_move_iterator(staging.end()));
      staging.clear();
    }
  };

  enum Counter : std::size_t {
    counter_adds,
    counter_refused_adds,
    counter_heartbeats,
    counter_lookups,
    counter_misses,
    counter_updates,
    counter_removals,
    counter_expirations,
    counter_evictions,
    counter_count
  };

  struct Victim {
    MacAddress mac;
    time_point last_seen;
    std::uint64_t heartbeats;
  };

  static const DeviceCacheOptions& checked(const DeviceCacheOptions& options) {
    if (options.aging_time < std::chrono::nanoseconds::zero()) {
      throw std::invalid_argument(fmt::format(
          "DeviceCache: aging_time must not be negative (got {}ns)", options.aging_time.count()));
    }
    return options;
  }

  // Takes one reservation if fewer than capacity are held. A compare-and-swap loop rather than
  // fetch_add-then-undo: the count never passes the capacity even for an instant, so a concurrent
  // adder is never refused because of someone else's refused attempt, and refusals during a flood
  // only read the shared line instead of writing it twice. (An add of a MAC that turns out to be
  // cached does hold a reservation until it finds the MAC: with one room left, a new device
  // added in that moment is refused.)
  bool try_reserve() noexcept {
    const std::size_t capacity = *options_.capacity;
    std::size_t held = reserved_.load(std::memory_order_relaxed);
    while (held < capacity) {
      if (reserved_.compare_exchange_weak(held, held + 1, std::memory_order_acquire,
                                          std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  // Gives back `n` reservations after erasing n devices (or failing to insert one). The release
  // pairs with try_reserve's acquire: whoever takes the room sees the erasure done.
  void release_slots(std::size_t n) noexcept {
    if (options_.capacity) reserved_.fetch_sub(n, std::memory_order_release);
  }

  // Reserves room for `mac` under the capacity; on failure sets result.outcome and returns false.
  bool reserve_slot(MacAddress mac, AddResult& result) {
    for (int round = 0;; ++round) {
      if (try_reserve()) return true;
      if (map_.contains(mac)) {
        result.outcome = AddOutcome::already_present;
        return false;
      }
      if (options_.capacity_policy == CapacityPolicy::refuse_new || round == max_eviction_rounds) {
        break;
      }
      const EvictionRound evicted = evict_batch();
      result.evicted += evicted.evicted;
      if (!evicted.found) break;  // nothing to evict: the room is held by adds in flight
    }
    result.outcome = AddOutcome::refused_full;
    counters_.add(counter_refused_adds);
    return false;
  }

  // One eviction attempt: whether it found devices to evict, and how many it did evict (fewer if
  // some were heartbeated, updated or removed between being chosen and being erased).
  struct EvictionRound {
    bool found = false;
    std::size_t evicted = 0;
  };

  // Chooses a shard round-robin and evicts the oldest 1/16 (at least one) of its devices that
  // never sent a heartbeat. A shard holding none is skipped; only if no shard holds one are
  // devices that did send heartbeats evicted, oldest first, from the first non-empty shard seen.
  // O(shard size) per shard examined.
  EvictionRound evict_batch() {
    const std::size_t shards = map_.shard_count();
    std::vector<Victim> candidates;
    std::vector<Victim> confirmed_only;  // the first non-empty shard without unconfirmed devices
    for (std::size_t tried = 0; tried < shards; ++tried) {
      const std::size_t shard = evict_cursor_.fetch_add(1, std::memory_order_relaxed) % shards;
      candidates.clear();
      map_.cvisit_shard(shard, [&candidates](const MacAddress& mac, const entry_type& e) {
        candidates.push_back(Victim{mac, e.last_seen, e.heartbeat_count});
      });
      const auto unconfirmed = std::partition(candidates.begin(), candidates.end(),
                                              [](const Victim& v) { return v.heartbeats == 0; });
      if (unconfirmed != candidates.begin()) {
        return evict_oldest(candidates, static_cast<std::size_t>(unconfirmed - candidates.begin()));
      }
      if (confirmed_only.empty()) confirmed_only.swap(candidates);
    }
    if (confirmed_only.empty()) return EvictionRound{};
    return evict_oldest(confirmed_only, confirmed_only.size());
  }

  // Evicts the oldest 1/eviction_batch_divisor (at least one) of pool[0, pool_size).
  EvictionRound evict_oldest(std::vector<Victim>& pool, std::size_t pool_size) {
    const std::size_t batch = std::max<std::size_t>(1, pool_size / eviction_batch_divisor);
    const auto pool_end = pool.begin() + static_cast<std::ptrdiff_t>(pool_size);
    const auto batch_end = pool.begin() + static_cast<std::ptrdiff_t>(batch);
    std::nth_element(pool.begin(), batch_end - 1, pool_end,
                     [](const Victim& a, const Victim& b) { return a.last_seen < b.last_seen; });
    EvictionRound round{true, 0};
    for (auto it = pool.begin(); it != batch_end; ++it) {
      // Only if unchanged since it was chosen: a device heartbeated meanwhile survives (the count
      // is compared too: on a coarse or manual clock a heartbeat may not change last_seen).
      const Victim v = *it;
      if (map_.erase_if(v.mac, [&v](const entry_type& e) {
            return e.last_seen == v.last_seen && e.heartbeat_count == v.heartbeats;
          })) {
        release_slots(1);
        counters_.add(counter_evictions);
        ++round.evicted;
      }
    }
    return round;
  }

  // Expires shard `shard`'s devices into `out`. Under the lock it only copies into capacity
  // `out` already has, so nothing reallocates there and an allocation failure between locks finds
  // every removed device already in `out`. Devices that did not fit stay until `out` has grown
  // (doubling, at least sweep_reserve_min) and the shard is swept again.
  template <class Alloc>
  void sweep_shard(std::size_t shard, time_point now, std::vector<entry_type, Alloc>& out) {
    const auto aging_time = options_.aging_time;
    for (;;) {
      bool full = false;
      std::size_t removed = 0;
      const auto account = [&] {
        if (removed == 0) return;
        release_slots(removed);
        counters_.add(counter_expirations, removed);
      };
      try {
        map_.erase_if_shard(shard, [&](const MacAddress& /*mac*/, const entry_type& e) {
          if (detail::age_ns(now, e.last_seen) < aging_time.count()) return false;
          if (out.size() == out.capacity()) {
            full = true;
            return false;
          }
          out.push_back(e);  // within capacity: only the copy can throw, and then e stays
          ++removed;
          return true;
        });
      } catch (...) {
        account();
        throw;
      }
      account();
      if (!full) return;
      out.reserve(out.size() + std::max(out.size(), sweep_reserve_min));
    }
  }

  static constexpr std::size_t sweep_reserve_min = 64;

  const DeviceCacheOptions options_;
  map_type map_;
  mutable detail::StripedCounters<counter_count> counters_;
  // Devices held plus adds in flight; only maintained when options_.capacity is set. On its own
  // cache line: adds and erasures write it, nothing else should share that line.
  alignas(64) std::atomic<std::size_t> reserved_{0};
  alignas(64) std::atomic<std::size_t> sweep_cursor_{0};
  std::atomic<std::size_t> evict_cursor_{0};
};

}  // namespace devcache

/// fmt support: "inserted", "already_present", "refused_full".
/// Thread-safety: pure. Throws: fmt::format_error for an invalid spec.
template <>
struct fmt::formatter<devcache::AddOutcome> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(devcache::AddOutcome outcome, FormatContext& ctx) const -> decltype(ctx.out()) {
    const std::string_view text = devcache::to_string(outcome);
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), text.size()),
                                                    ctx);
  }
};

/// fmt support: "refuse_new", "evict_least_recently_seen".
/// Thread-safety: pure. Throws: fmt::format_error for an invalid spec.
template <>
struct fmt::formatter<devcache::CapacityPolicy> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(devcache::CapacityPolicy policy, FormatContext& ctx) const -> decltype(ctx.out()) {
    const std::string_view text = devcache::to_string(policy);
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), text.size()),
                                                    ctx);
  }
};

/// fmt support, one line:
///   entries=3/100 heartbeats_held=7 adds=4 refused_adds=0 heartbeats=7 lookups=2 misses=1
///   updates=0 removals=1 expirations=0 evictions=0 shards=16 (min=0 max=1 mean=0.19)
/// ("entries=3/unbounded" without a capacity). Only the empty spec "{}" is accepted.
/// Thread-safety: pure. Throws: fmt::format_error for a non-empty spec; std::bad_alloc.
template <>
struct fmt::formatter<devcache::CacheStats> {
  constexpr auto parse(fmt::format_parse_context& ctx) -> fmt::format_parse_context::iterator {
    auto it = ctx.begin();
    if (it != ctx.end() && *it != '}') {
      throw fmt::format_error("invalid format spec for devcache::CacheStats (expected \"{}\")");
    }
    return it;
  }

  template <class FormatContext>
  auto format(const devcache::CacheStats& s, FormatContext& ctx) const -> decltype(ctx.out()) {
    auto out = fmt::format_to(ctx.out(), "entries={}/", s.entries);
    out = s.capacity ? fmt::format_to(out, "{}", *s.capacity) : fmt::format_to(out, "unbounded");
    return fmt::format_to(out,
                          " heartbeats_held={} adds={} refused_adds={} heartbeats={} lookups={} "
                          "misses={} updates={} removals={} expirations={} evictions={} "
                          "shards={} (min={} max={} mean={:.2f})",
                          s.total_heartbeats, s.adds, s.refused_adds, s.heartbeats, s.lookups,
                          s.misses, s.updates, s.removals, s.expirations, s.evictions,
                          s.shard_count, s.shard_min, s.shard_max, s.shard_mean);
  }
};
