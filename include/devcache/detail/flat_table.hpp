// devcache/detail/flat_table.hpp — the open-addressing table inside one shard.
//
// Layout: two arrays of the same length, `meta_` (one byte per slot) and `slots_` (key and value
// stored inline, no allocation per entry). meta 0 means empty; otherwise it is the slot's probe
// distance + 1 (1 = the entry sits in its home slot), saturated at 255.
//
// Probing is linear with Robin Hood ordering: entries of a cluster stay sorted by home slot, so a
// lookup stops as soon as it meets an entry closer to its home than the lookup is to its own
// (meta < distance), and erase shifts the rest of the cluster back by one (no tombstones, so a
// remove-heavy mix never degrades probe lengths). Insert places the entry at its sorted position
// and shifts the cluster forward by one, which is equivalent to the classic swap chain.
//
// The home slot is fastrange(hash, capacity) = (hash * capacity) >> 64: it uses the hash's high
// bits and works for any capacity. The shard is chosen from the low bits (sharded_map.hpp), so the
// two choices are independent.
//
// Saturation: a distance of 255 or more is stored as 255. Only a flood of keys with near-identical
// hashes gets there (a weak user Hash, or a fixed, known seed). Clusters stay sorted by home slot
// even then: where insert must compare its distance with a saturated resident's, and where erase
// shifts a saturated entry back, the resident's true distance is recomputed from its hash, so every
// stored distance below 255 stays exact. A lookup past distance 254 cannot use the order (it cannot
// compare saturated distances without hashing) and simply scans to the end of the cluster. Only a
// flood of keys with near-identical hashes (possible only with a fixed, known seed) reaches it; the
// table stays correct, only slower.
//
// The table is not synchronised: the shard's lock guards it. Every operation takes the key's hash,
// computed by the caller before taking the lock. Key and Value must be nothrow-move-constructible,
// which makes growth and shifting no-throw once memory is allocated (strong guarantee).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <devcache/detail/hash_mix.hpp>
#include <devcache/detail/prefault.hpp>

namespace devcache::detail {

/// What the caller of a prefetch means to do with the line: only read it, or write it.
enum class Access : std::uint8_t { read, write };

/// Asks the cache for the line at address `p`, in the state `access` needs. Never faults and
/// never changes memory, so `p` may be stale or point anywhere (it is only an address).
///
/// Why a write prefetch: with two cores, the entry an update is about to change was often last
/// written by the other core. A read prefetch fetches the line shared, and the write that follows
/// must then invalidate the other core's copy: a second round trip between the cores (about 200
/// ns each on the benchmark VM). A write prefetch fetches it exclusive in one. x86 spells it
/// PREFETCHW; GCC and Clang emit that for __builtin_prefetch(p, 1) only when the target enables it
/// (-mprfchw), so it is written out here. Every x86-64 processor accepts the instruction: those
/// without the feature (Intel before Broadwell) execute it as a no-op.
inline void prefetch(const void* p, Access access) noexcept {
  if (access == Access::read) {
    __builtin_prefetch(p);
    return;
  }
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__PRFCHW__)
  asm volatile("prefetchw (%0)" : : "r"(p));
#else
  __builtin_prefetch(p, 1);
#endif
}

template <class Key, class Value>
struct Slot {
  Key key;
  Value value;

  template <class K, class... Args>
  explicit Slot(K&& k, Args&&... args)
      : key(std::forward<K>(k)), value(std::forward<Args>(args)...) {}
};

/// Where a table's arrays are, republished by the table whenever it reallocates them, so that a
/// thread that does not hold the table's lock can ask the cache for the lines a lookup will touch
/// (FlatTable::prefetch). It lives outside the table, in an array of its own (ShardedMap keeps one
/// per shard): the shard's cache line holds the lock, which every operation writes, while this is
/// written only when the table grows or is cleared, so both cores keep a copy and reading it costs
/// no transfer between them.
struct TableLocation {
  std::atomic<std::size_t> capacity{0};
  std::atomic<std::uintptr_t> meta{0};
  std::atomic<std::uintptr_t> slots{0};
};

template <class Key, class Value, class KeyEqual, class Allocator>
class FlatTable {
 public:
  using slot_type = Slot<Key, Value>;
  using slot_allocator =
      typename std::allocator_traits<Allocator>::template rebind_alloc<slot_type>;
  using meta_allocator =
      typename std::allocator_traits<Allocator>::template rebind_alloc<std::uint8_t>;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  static constexpr std::size_t min_capacity = 8;
  // The most entries a table can be asked to make room for: far beyond any memory, but below it
  // the capacity and the arrays' size in bytes are computed without overflow.
  static constexpr std::size_t max_entries =
      std::numeric_limits<std::size_t>::max() / 16 / (sizeof(slot_type) + 1);
  // The load policy (grow_at, grow_target below). A table whose arrays take less than sparse_bytes
  // is sparse: it grows past 1/2 full, by doubling. From dense_from slots on (arrays of
  // sparse_bytes or more) it is dense: it grows past 7/8 full, by a fifth. Robin Hood keeps
  // probe sequences short at 7/8, but half full, most keys sit in their home slot and most inserts
  // and erasures shift nothing: a small table is faster that way (1 thread, 2^14 keys in 64
  // shards: 1.08-1.21x per mix; README.md, Benchmarks), and costs less than sparse_bytes more per
  // table than the dense policy would.
  static constexpr std::size_t sparse_bytes = std::size_t{16} * 1024;
  static constexpr std::size_t dense_from =
      (sparse_bytes + sizeof(slot_type)) / (sizeof(slot_type) + 1);  // ceil(sparse_bytes / slot)
  static constexpr std::size_t max_load_num = 7;                     // dense
  static constexpr std::size_t max_load_den = 8;

  static_assert(std::is_nothrow_move_constructible_v<Key>,
                "devcache maps require a nothrow-move-constructible Key");
  static_assert(std::is_nothrow_move_constructible_v<Value>,
                "devcache maps require a nothrow-move-constructible Value");
  static_assert(std::is_nothrow_destructible_v<Key> && std::is_nothrow_destructible_v<Value>,
                "devcache maps require nothrow-destructible Key and Value");

  /// A table that republishes its arrays' location in `*location` (if not null; it must outlive
  /// the table).
  explicit FlatTable(TableLocation* location = nullptr,
                     const Allocator& alloc = Allocator()) noexcept
      : location_(location), slot_alloc_(alloc), meta_alloc_(alloc) {}
  FlatTable(const FlatTable&) = delete;
  FlatTable& operator=(const FlatTable&) = delete;
  ~FlatTable() { release(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t allocated_bytes() const noexcept {
    return capacity_ * (sizeof(slot_type) + 1);
  }
  [[nodiscard]] slot_type& slot(std::size_t i) noexcept { return slots_[i]; }
  [[nodiscard]] const slot_type& slot(std::size_t i) const noexcept { return slots_[i]; }

  /// Hints the cache about the lines a lookup of `hash` touches first, in the table whose location
  /// is `where`. Callable without the table's lock: ShardedMap calls it before it locks the shard,
  /// so that the entry's cache misses overlap the lock's (and the batch calls for a whole chunk of
  /// keys ahead). A stale or mixed view (a pointer from one generation, the capacity from another)
  /// only makes the prefetch useless: a prefetch never faults and never changes memory, so the
  /// address is computed as an integer and need not point into the arrays.
  ///
  /// `entry` says whether the caller will write the entry (an update or erase under the exclusive
  /// lock): its slot's line is then asked for exclusive. The distance byte's line is always asked
  /// for shared, even by writers: it holds the distances of 64 slots, which probes of other keys
  /// read, and most writes leave it unchanged (an update never writes it). Measured on 2 cores
  /// (same-process A/B against shared prefetches, medians of 5, several processes): the heartbeat
  /// mix (90% updates) ran 3-7% faster at 2 and 8 threads with 2^14 keys and 1-4% with 2^20; the
  /// other mixes moved by less than the noise (+-2%). In processes where the two vCPUs pass lines
  /// to each other fast (the same mixes then run 2-3x faster) the gain shrinks to 0-3%. Asking
  /// for the distance line exclusive as well gained 5% on exchange at 2^14 keys but lost 3-9% on
  /// exchange and rapid-grow at 2^20.
  static void prefetch(const TableLocation& where, std::uint64_t hash, Access entry) noexcept {
    const std::size_t cap = where.capacity.load(std::memory_order_relaxed);
    const auto pos = static_cast<std::uintptr_t>((static_cast<uint128>(hash) * cap) >> 64);
    const std::uintptr_t meta = where.meta.load(std::memory_order_relaxed);
    const std::uintptr_t slots = where.slots.load(std::memory_order_relaxed);
    detail::prefetch(reinterpret_cast<const void*>(meta + pos), Access::read);        // NOLINT
    detail::prefetch(reinterpret_cast<const void*>(slots + pos * sizeof(slot_type)),  // NOLINT
                     entry);
  }

  /// What a lookup found: the entry's index (found), or where the key would be inserted if the
  /// table does not grow first (spot: the slot where the lookup stopped and its distance from the
  /// key's home slot; only valid below saturation, dist < 255).
  struct Probe {
    std::size_t pos;
    unsigned dist;
    bool found;
  };

  /// Looks the key up. Changes nothing.
  template <class K>
  [[nodiscard]] Probe probe(std::uint64_t hash, const K& key, const KeyEqual& eq) const {
    std::size_t pos = home(hash);
    // The distances and the entries are separate arrays: request the home slot's entry now, so
    // that in a table larger than the cache its miss overlaps the distance byte's miss instead of
    // following it (most keys sit in their home slot's line).
    __builtin_prefetch(slots_ + pos);
    for (unsigned dist = 1;; ++dist) {
      const unsigned m = meta_[pos];
      if (dist < 255) [[likely]] {
        if (m < dist) return Probe{pos, dist, false};
        if (m == dist && eq(slots_[pos].key, key)) return Probe{pos, dist, true};
      } else {
        // Saturated: distances no longer order the cluster, so scan to its end.
        if (m == 0) return Probe{pos, dist, false};
        if (m == 255 && eq(slots_[pos].key, key)) return Probe{pos, dist, true};
      }
      pos = next(pos);
    }
  }

  /// Index of the entry with `key`, or npos.
  template <class K>
  [[nodiscard]] std::size_t find(std::uint64_t hash, const K& key, const KeyEqual& eq) const {
    const Probe p = probe(hash, key, eq);
    return p.found ? p.pos : npos;
  }

  /// Inserts a new entry built from (key, args...), after probe() found the key absent and nothing
  /// changed the table since. The probe's stopping slot is where the entry goes, so the cluster is
  /// not walked a second time (unless the table grows first or the probe went past saturation).
  /// Strong guarantee: if building the entry, hashing during growth, or allocating throws, the
  /// table is unchanged. Returns the entry's index.
  template <class HashFn, class K, class... Args>
  std::size_t insert_absent(const Probe& absent, std::uint64_t hash, const HashFn& hash_fn, K&& key,
                            Args&&... args) {
    slot_type entry(std::forward<K>(key),
                    std::forward<Args>(args)...);  // may throw: nothing changed
    Spot spot{absent.pos, absent.dist};
    const bool grow = size_ >= grow_at();
    if (grow) rehash(grow_target(size_ + 1), hash_fn);
    if (grow || absent.dist >= 255) {
      // locate() may hash saturated residents (and so throw) but changes nothing.
      spot = locate(hash, [&](std::size_t pos) { return hash_fn(slots_[pos].key); });
    }
    shift_in(spot, std::move(entry), nullptr);  // cannot throw
    return spot.pos;
  }

  /// Removes the entry at `pos` and closes the gap. `hash_fn` is only called for entries whose
  /// distance saturated; if it may throw, those hashes are computed before anything changes.
  template <class HashFn>
  void erase_at(std::size_t pos, const HashFn& hash_fn) {
    if constexpr (!std::is_nothrow_invocable_v<const HashFn&, const Key&>) {
      // Rare path, possible only when distances saturate: precompute to keep the strong guarantee.
      std::vector<std::uint64_t> saturated;
      for (std::size_t j = next(pos); meta_[j] > 1; j = next(j)) {
        if (meta_[j] == 255) saturated.push_back(hash_fn(slots_[j].key));
      }
      std::size_t k = 0;
      erase_and_shift(pos, [&](const Key&) { return saturated[k++]; });
    } else {
      erase_and_shift(pos, hash_fn);
    }
  }

  /// Ensures room for `n` entries without growth. Strong guarantee. Throws std::length_error if
  /// n > max_entries, std::bad_alloc, whatever hash_fn throws.
  template <class HashFn>
  void reserve(std::size_t n, const HashFn& hash_fn) {
    if (n > grow_at()) rehash(capacity_for(n), hash_fn);
  }

  /// Destroys every entry and frees the arrays.
  void clear() noexcept { release(); }

  /// Calls f(slot_type&) for each entry, in slot order.
  template <class F>
  void for_each(F&& f) {
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (meta_[i] != 0) f(slots_[i]);
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (meta_[i] != 0) f(static_cast<const slot_type&>(slots_[i]));
    }
  }

  /// The longest probe sequence of any entry: its distance from its home slot plus one (1: every
  /// entry sits in its home slot; 0: the table is empty). A saturated distance is recomputed from
  /// the entry's hash (hash_fn), so the result is exact. O(capacity). Changes nothing.
  template <class HashFn>
  [[nodiscard]] std::size_t max_probe_length(const HashFn& hash_fn) const {
    std::size_t longest = 0;
    for (std::size_t i = 0; i < capacity_; ++i) {
      const std::size_t m = meta_[i];
      if (m == 0) continue;
      longest = std::max(longest, m < 255 ? m : distance(i, home(hash_fn(slots_[i].key))));
    }
    return longest;
  }

  /// Erases each entry for which pred(slot_type&) is true; returns how many. If pred throws, the
  /// entries already erased stay erased and the table stays valid.
  template <class Pred, class HashFn>
  std::size_t erase_if(Pred&& pred, const HashFn& hash_fn) {
    if (size_ == 0) return 0;
    // Start right after an empty slot so no entry is shifted over the start (and visited twice, or
    // skipped) while we walk: erase only moves entries backwards within their cluster.
    std::size_t start = 0;
    while (meta_[start] != 0) ++start;
    std::size_t erased = 0;
    std::size_t pos = next(start);
    for (std::size_t remaining = capacity_; remaining != 0;) {
      if (meta_[pos] != 0 && pred(slots_[pos])) {
        erase_at(pos, hash_fn);
        ++erased;
        continue;  // the next entry of the cluster (if any) has just moved into pos
      }
      pos = next(pos);
      --remaining;
    }
    return erased;
  }

 private:
  static std::uint8_t* empty_meta() noexcept {
    // Shared by every empty table: one zero byte that lookups read and nothing ever writes.
    alignas(64) static std::uint8_t zero = 0;
    return &zero;
  }

  [[nodiscard]] std::size_t home(std::uint64_t hash) const noexcept {
    return static_cast<std::size_t>((static_cast<uint128>(hash) * capacity_) >> 64);
  }
  [[nodiscard]] std::size_t next(std::size_t pos) const noexcept {
    return pos + 1 == capacity_ ? 0 : pos + 1;
  }
  [[nodiscard]] std::size_t distance(std::size_t pos, std::size_t home_pos) const noexcept {
    return (pos >= home_pos ? pos - home_pos : pos + capacity_ - home_pos) + 1;
  }
  static std::uint8_t saturate(std::size_t d) noexcept {
    return static_cast<std::uint8_t>(d < 255 ? d : 255);
  }

  // The size at which the next insertion grows a table of `capacity` slots (computed, not stored:
  // it keeps a shard, lock included, within one cache line).
  static constexpr std::size_t grow_at(std::size_t capacity) noexcept {
    return capacity < dense_from ? capacity / 2 : capacity * max_load_num / max_load_den;
  }
  [[nodiscard]] std::size_t grow_at() const noexcept { return grow_at(capacity_); }
  // A capacity that holds n entries without growing (grow_at(capacity_for(n)) >= n): sparse if a
  // sparse table can, else dense. Throws std::length_error past max_entries.
  static std::size_t capacity_for(std::size_t n) {
    if (n > max_entries) {
      throw std::length_error("devcache: cannot make room for " + std::to_string(n) +
                              " entries in one table (at most " + std::to_string(max_entries) +
                              ")");
    }
    const std::size_t sparse = std::max(2 * n, min_capacity);
    if (sparse < dense_from) return sparse;
    const std::size_t dense = (n * max_load_den + max_load_num - 1) / max_load_num + 1;
    return std::max({dense, dense_from, min_capacity});
  }
  // A sparse table doubles (so a table just past the sparse range takes less than twice
  // sparse_bytes, whatever its load). A dense table grows by a fifth: with the 7/8 maximum load,
  // the load after growing is 0.73, so a table that grew as a dense table never holds more than
  // (sizeof(slot_type) + 1) / 0.73 bytes per entry as it grows (23.3 for a MAC -> u64 map, against
  // 36 at the 0.44 load that doubling leaves). The price is more, smaller rehashes: amortised,
  // each entry is moved about five times while the table grows (twice with doubling). Capacities
  // need not be powers of two: the home slot is fastrange(hash, capacity).
  [[nodiscard]] std::size_t grow_target(std::size_t n) const {
    const std::size_t grown =
        capacity_ < dense_from ? 2 * capacity_ : capacity_ + std::max(capacity_ / 5, min_capacity);
    return std::max(capacity_for(n), grown);
  }

  struct Spot {
    std::size_t pos;
    unsigned dist;
  };

  // Where an entry with `hash` goes: the first slot that is empty or holds an entry whose home is
  // later than ours (a smaller distance), so every cluster stays sorted by home slot. Past
  // saturation the stored distances cannot be compared, so a saturated resident's true distance is
  // recomputed from its hash (resident_hash(pos)); this is what keeps lookups and erasure exact
  // after a flood of colliding keys. Changes nothing.
  template <class ResidentHash>
  [[nodiscard]] Spot locate(std::uint64_t hash, const ResidentHash& resident_hash) const {
    std::size_t pos = home(hash);
    for (unsigned dist = 1;; ++dist) {
      const unsigned m = meta_[pos];
      if (dist < 255) {
        if (m < dist) return Spot{pos, dist};
      } else {
        if (m < 255) return Spot{pos, dist};
        if (distance(pos, home(resident_hash(pos))) < dist) return Spot{pos, dist};
      }
      pos = next(pos);
    }
  }

  // Shifts the cluster from spot.pos up to the next empty slot forward by one (back to front) and
  // moves `entry` into spot.pos. `side`, if given, is an array of per-slot values shifted along.
  // No-throw (moves only).
  void shift_in(Spot spot, slot_type&& entry, std::uint64_t* side) noexcept {
    std::size_t empty = spot.pos;
    while (meta_[empty] != 0) empty = next(empty);
    for (std::size_t i = empty; i != spot.pos;) {
      const std::size_t prev = i == 0 ? capacity_ - 1 : i - 1;
      std::construct_at(slots_ + i, std::move(slots_[prev]));
      std::destroy_at(slots_ + prev);
      meta_[i] = static_cast<std::uint8_t>(meta_[prev] == 255 ? 255 : meta_[prev] + 1);
      if (side != nullptr) side[i] = side[prev];
      i = prev;
    }
    std::construct_at(slots_ + spot.pos, std::move(entry));
    meta_[spot.pos] = saturate(spot.dist);
    ++size_;
  }

  template <class HashFn>
  void erase_and_shift(std::size_t pos, const HashFn& hash_fn) noexcept {
    std::destroy_at(slots_ + pos);
    meta_[pos] = 0;
    for (std::size_t j = next(pos); meta_[j] > 1; j = next(j)) {
      // One slot closer to home: the distance drops by one. A saturated distance is recomputed.
      const std::uint8_t moved = meta_[j] == 255
                                     ? saturate(distance(j, home(hash_fn(slots_[j].key))) - 1)
                                     : static_cast<std::uint8_t>(meta_[j] - 1);
      std::construct_at(slots_ + pos, std::move(slots_[j]));
      std::destroy_at(slots_ + j);
      meta_[pos] = moved;
      meta_[j] = 0;
      pos = j;
    }
    --size_;
  }

  // Moves every entry into fresh arrays of `new_capacity` slots. Strong guarantee: allocation and
  // (possibly throwing) hashing happen before any entry moves.
  template <class HashFn>
  void rehash(std::size_t new_capacity, const HashFn& hash_fn) {
    slot_type* new_slots =
        std::allocator_traits<slot_allocator>::allocate(slot_alloc_, new_capacity);
    std::uint8_t* new_meta = nullptr;
    try {
      new_meta = std::allocator_traits<meta_allocator>::allocate(meta_alloc_, new_capacity);
    } catch (...) {
      std::allocator_traits<slot_allocator>::deallocate(slot_alloc_, new_slots, new_capacity);
      throw;
    }
    if (new_capacity >= dense_from && size_ >= new_capacity / 16) {
      // Map the new arrays' pages now, in one call each, rather than one fault per page as the
      // entries move in (on a VM, 11-13 us a fault; detail/prefault.hpp). This runs under the
      // shard's lock: rapid-grow at 2^20 keys, 2 threads, ran 1.15-1.27x faster with it. Only
      // when the entries moving in touch most pages anyway (one per 16 slots, spread by hash):
      // reserve() on an empty table still leaves its pages to be mapped as they are used.
      prefault_for_write(new_slots, new_capacity * sizeof(slot_type));
      prefault_for_write(new_meta, new_capacity);
    }
    std::memset(new_meta, 0, new_capacity);

    // A hash that may throw is called here, for every entry, and never again below: the new table
    // keeps each slot's hash in a side array while it fills (for locate() past saturation).
    std::vector<std::uint64_t> hashes;
    std::vector<std::uint64_t> side;
    if constexpr (!std::is_nothrow_invocable_v<const HashFn&, const Key&>) {
      try {
        side.resize(new_capacity);
        hashes.reserve(size_);
        for (std::size_t i = 0; i < capacity_; ++i) {
          if (meta_[i] != 0) hashes.push_back(hash_fn(slots_[i].key));
        }
      } catch (...) {
        std::allocator_traits<meta_allocator>::deallocate(meta_alloc_, new_meta, new_capacity);
        std::allocator_traits<slot_allocator>::deallocate(slot_alloc_, new_slots, new_capacity);
        throw;
      }
    }

    slot_type* old_slots = slots_;
    std::uint8_t* old_meta = meta_;
    const std::size_t old_capacity = capacity_;
    slots_ = new_slots;
    meta_ = new_meta;
    capacity_ = new_capacity;
    publish_location();
    size_ = 0;
    std::size_t k = 0;
    // The old clusters are sorted by home slot, and fastrange keeps that order, so entries mostly
    // arrive in order of their new home: each then goes right after the one placed before it (or
    // into its empty home slot), with no walk along the cluster and nothing to shift. Where that
    // does not hold (two entries sharing an old home, a cluster wrapping past the array's end),
    // locate() and shift_in() place the entry as any insert would.
    std::size_t last_pos = npos;
    std::size_t last_home = 0;
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old_meta[i] == 0) continue;
      if constexpr (std::is_nothrow_invocable_v<const HashFn&, const Key&>) {
        const std::uint64_t h = hash_fn(old_slots[i].key);
        const std::size_t h_home = home(h);
        // Every slot from h_home up to last_pos holds an entry whose home is at or before
        // last_home <= h_home, so the spot is the first slot after them, if it is empty.
        const std::size_t p = last_pos == npos || h_home > last_pos ? h_home : last_pos + 1;
        const bool in_order = (last_pos == npos || h_home >= last_home) && p < capacity_ &&
                              meta_[p] == 0 && p - h_home < 254;
        const Spot spot =
            in_order ? Spot{p, static_cast<unsigned>(p - h_home + 1)}
                     : locate(h, [&](std::size_t pos) { return hash_fn(slots_[pos].key); });
        shift_in(spot, std::move(old_slots[i]), nullptr);
        last_pos = spot.pos;
        last_home = h_home;
      } else {
        const std::uint64_t h = hashes[k++];
        const Spot spot = locate(h, [&](std::size_t pos) noexcept { return side[pos]; });
        shift_in(spot, std::move(old_slots[i]), side.data());
        side[spot.pos] = h;
      }
      std::destroy_at(old_slots + i);
    }
    if (old_capacity != 0) {
      std::allocator_traits<meta_allocator>::deallocate(meta_alloc_, old_meta, old_capacity);
      std::allocator_traits<slot_allocator>::deallocate(slot_alloc_, old_slots, old_capacity);
    }
  }

  // Republishes where the arrays are for prefetch(). Called with the lock held exclusive.
  void publish_location() noexcept {
    if (location_ == nullptr) return;
    location_->capacity.store(capacity_, std::memory_order_relaxed);
    location_->meta.store(reinterpret_cast<std::uintptr_t>(meta_),  // NOLINT
                          std::memory_order_relaxed);
    location_->slots.store(reinterpret_cast<std::uintptr_t>(slots_),  // NOLINT
                           std::memory_order_relaxed);
  }

  void release() noexcept {
    if (capacity_ == 0) return;
    for (std::size_t i = 0; i < capacity_; ++i) {
      if (meta_[i] != 0) std::destroy_at(slots_ + i);
    }
    std::allocator_traits<meta_allocator>::deallocate(meta_alloc_, meta_, capacity_);
    std::allocator_traits<slot_allocator>::deallocate(slot_alloc_, slots_, capacity_);
    meta_ = empty_meta();
    slots_ = nullptr;
    capacity_ = 0;
    publish_location();
    size_ = 0;
  }

  std::uint8_t* meta_ = empty_meta();
  slot_type* slots_ = nullptr;
  std::size_t capacity_ = 0;
  TableLocation* location_;  // where publish_location() writes (or nullptr)
  std::size_t size_ = 0;
  [[no_unique_address]] slot_allocator slot_alloc_;
  [[no_unique_address]] meta_allocator meta_alloc_;
};

}  // namespace devcache::detail
