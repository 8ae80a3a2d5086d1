// devcache/sharded_map.hpp — ShardedMap, devcache's concurrent hash map.
//
// Design
// ------
// The map is an array of `shard_count()` shards (a power of two). Each shard is one 64-byte-aligned
// block holding a reader-writer lock (detail/rw_lock.hpp) and an open-addressing Robin Hood table
// (detail/flat_table.hpp) that stores keys and values inline: no allocation per entry, and growth
// rehashes only that shard, under its lock. Beside the shards, a second array keeps each shard
// table's location (detail::TableLocation, rewritten only when a table reallocates): a
// single-key operation reads it without a lock and prefetches the key's slot before it takes the
// shard's lock, so the two cache misses overlap instead of following one another.
//
// Every key is hashed once per operation, before any lock is taken: `Hash` gives a 64-bit value
// that a keyed mixer (detail/hash_mix.hpp) combines with the map's secret seed. With the default
// std::hash, integral keys and keys that specialise RawHashInput (MacAddress) skip std::hash and go
// straight to the keyed mixer. The low bits of the result
// pick the shard, the high bits the home slot inside it, so the two choices are independent.
//
// Locking protocol
// - An operation on one key locks exactly one shard: shared for lookups, exclusive for changes.
// - Whole-map operations either lock each shard in turn (weakly consistent: they see each shard at
// a
//   different moment) or, for snapshot(), lock all shards shared in index order. Nothing else ever
//   holds two shard locks, so no lock-order cycle exists and no operation can deadlock.
// - No reference, pointer or iterator into the map is ever returned: lookups copy the value out,
// and
//   work on a value in place happens in a callback that runs while the shard is locked (the visit,
//   upsert and erase_if families). There are no iterators because they cannot stay valid while
//   other threads change the map, and a guard held by the caller is the classic way to deadlock a
//   concurrent map (holding one across a co_await, or locking the map again while holding one).
// - A callback must not call back into the same map. Debug builds detect it and abort with a
// message
//   (detail/reentrancy_check.hpp) instead of deadlocking silently.
// - If a hash, a comparison, a copy, an allocation or a callback throws, the exception propagates,
//   the lock is released by RAII, and the map stays valid: single-key insertion gives the strong
//   guarantee; a throwing callback keeps whatever it had already changed in the value.
//
// Requirements on the types
// - Key: copy-constructible, nothrow-move-constructible, nothrow-destructible; KeyEqual(a, b) must
//   agree with Hash (equal keys, equal hashes).
// - Value: nothrow-move-constructible and nothrow-destructible; copy-constructible for find() and
//   snapshot(); assignable for insert_or_assign().
// - Hash: callable on const Key&, returning an integer; it need not avalanche (the keyed mixer
// does).
//   It may throw; growth then hashes every key before moving any, to keep the strong guarantee.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <devcache/detail/flat_table.hpp>
#include <devcache/detail/hash_mix.hpp>
#include <devcache/detail/prefault.hpp>
#include <devcache/detail/reentrancy_check.hpp>
#include <devcache/detail/rw_lock.hpp>
#include <devcache/hash_seed.hpp>

namespace devcache {

/// The default shard count: 32 × std::thread::hardware_concurrency(), rounded up to a power of
/// two, at least 64 and at most 1024 (64 on a 2-core machine: 4 KiB of shards).
///
/// Why so many: every operation writes its shard's lock word, so the shard's cache line moves to
/// the core that runs the operation. With few shards two cores keep taking the same few lines
/// from each other and often find the lock held. On 2 cores (bench/run.sh), 2 threads got 0.53-0.90
/// times the 1-thread rate on a 2^14-entry table and 0.80-1.16 times on 2^20 entries with 8
/// shards; with 64 shards 0.65-1.16 and 1.33-1.78 times. A shard costs 64 bytes.
/// Thread-safe; never throws.
inline std::size_t default_shard_count() noexcept {
  const std::size_t threads = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  return std::clamp<std::size_t>(std::bit_ceil(32 * threads), 64, 1024);
}

/// The most shards a map may have.
inline constexpr std::size_t max_shard_count = std::size_t{1} << 16;

/// A concurrent hash map split into independently locked shards.
///
/// Every member function is safe to call from any number of threads at once, except the
/// constructor and destructor. Each comment says which locks the call takes:
/// "locks one shard shared/exclusive", "locks each shard in turn" (weakly consistent) or
/// "locks all shards shared" (consistent; blocks writers for the duration).
///
/// Example:
/// @code
///   devcache::ShardedMap<devcache::MacAddress, std::uint64_t> beats;
///   beats.insert(mac, 0);
///   beats.visit(mac, [](std::uint64_t& n) { ++n; });   // in place, under the shard's lock
///   std::optional<std::uint64_t> n = beats.find(mac);  // a copy; no reference escapes
/// @endcode
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>,
          class Allocator = std::allocator<std::pair<const Key, Value>>>
class ShardedMap {
  using table_type = detail::FlatTable<Key, Value, KeyEqual, Allocator>;
  using slot_type = typename table_type::slot_type;

 public:
  using key_type = Key;
  using mapped_type = Value;
  using value_type = std::pair<const Key, Value>;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using allocator_type = Allocator;
  using size_type = std::size_t;

  static_assert(std::is_copy_constructible_v<Key>, "ShardedMap requires a copy-constructible Key");
  static_assert(std::is_invocable_r_v<std::size_t, const Hash&, const Key&>,
                "ShardedMap's Hash must be callable on const Key& and return an integer");
  static_assert(std::is_invocable_r_v<bool, const KeyEqual&, const Key&, const Key&>,
                "ShardedMap's KeyEqual must be callable on two const Key& and return bool");

  /// A map with default_shard_count() shards and a random seed.
  /// Throws: std::bad_alloc; std::system_error if no random seed can be drawn.
  ShardedMap() : ShardedMap(default_shard_count()) {}

  /// A map with `shard_count` shards (rounded up to a power of two; 0 means the default).
  /// Throws: std::invalid_argument if shard_count exceeds max_shard_count; std::bad_alloc;
  /// std::system_error if the default `seed` (HashSeed::random()) cannot be drawn.
  explicit ShardedMap(std::size_t shard_count, HashSeed seed = HashSeed::random(),
                      const Hash& hash = Hash(), const KeyEqual& equal = KeyEqual(),
                      const Allocator& alloc = Allocator())
      : hasher_(hash),
        equal_(equal),
        mix_(detail::KeyedMix::from_seed(seed.value())),
        seed_(seed),
        shard_alloc_(alloc),
        location_alloc_(alloc) {
    if (shard_count == 0) shard_count = default_shard_count();
    if (shard_count > max_shard_count) {
      throw std::invalid_argument("ShardedMap: shard count " + std::to_string(shard_count) +
                                  " exceeds the maximum of " + std::to_string(max_shard_count));
    }
    shard_count_ = std::bit_ceil(shard_count);
    locations_ = std::allocator_traits<location_allocator>::allocate(location_alloc_, shard_count_);
    try {
      shards_ = std::allocator_traits<shard_allocator>::allocate(shard_alloc_, shard_count_);
    } catch (...) {
      std::allocator_traits<location_allocator>::deallocate(location_alloc_, locations_,
                                                            shard_count_);
      throw;
    }
    for (std::size_t i = 0; i < shard_count_; ++i) {
      std::construct_at(locations_ + i);
      std::construct_at(shards_ + i, locations_ + i, alloc);
    }
  }

  ShardedMap(const ShardedMap&) = delete;
  ShardedMap& operator=(const ShardedMap&) = delete;

  /// Not thread-safe: no other call may run concurrently. O(size + capacity).
  ~ShardedMap() {
    std::destroy_n(shards_, shard_count_);
    std::allocator_traits<shard_allocator>::deallocate(shard_alloc_, shards_, shard_count_);
    std::destroy_n(locations_, shard_count_);
    std::allocator_traits<location_allocator>::deallocate(location_alloc_, locations_,
                                                          shard_count_);
  }

  // ---------------------------------------------------------------------------------------------
  // Insertion

  /// Inserts (key, value) if the key is absent; returns true if it inserted.
  /// Locks one shard exclusive. Amortised O(1); a shard's growth is O(shard size).
  /// Throws: whatever Hash, KeyEqual, Key's copy (the key is copied into the entry) or Value's
  /// constructor throw, std::bad_alloc; the map is then unchanged.
  template <class V = Value>
  requires std::constructible_from<Value, V&&>
  bool insert(const Key& key, V&& value) { return try_emplace(key, std::forward<V>(value)); }

  /// Inserts (key, value), or assigns value to the existing entry; returns true if it inserted.
  /// Locks one shard exclusive. Amortised O(1).
  /// Throws: as insert(), or whatever Value's assignment throws (the entry then holds whatever
  /// that assignment left).
  template <class V = Value>
  requires std::constructible_from<Value, V&&> && std::assignable_from<Value&, V&&>
  bool insert_or_assign(const Key& key, V&& value) {
    check("insert_or_assign");
    const std::uint64_t h = hash(key);
    Shard& s = shard_for(h, detail::Access::write);
    detail::ExclusiveGuard guard(s.lock);
    const auto probe = s.table.probe(h, key, equal_);
    if (probe.found) {
      s.table.slot(probe.pos).value = std::forward<V>(value);
      return false;
    }
    s.table.insert_absent(probe, h, bound_hash(), key, std::forward<V>(value));
    return true;
  }

  /// Constructs Value(args...) for key if the key is absent; returns true if it inserted. The
  /// arguments are not used when the key is present.
  /// Locks one shard exclusive. Amortised O(1).
  /// Throws: as insert(); the map is then unchanged.
  template <class... Args>
  requires std::constructible_from<Value, Args&&...>
  bool try_emplace(const Key& key, Args&&... args) {
    check("try_emplace");
    const std::uint64_t h = hash(key);
    // Access::read: unlike the other exclusive calls, this one writes nothing when the key is
    // present, the common case of an insert-if-absent (shard_for).
    Shard& s = shard_for(h, detail::Access::read);
    detail::ExclusiveGuard guard(s.lock);
    const auto probe = s.table.probe(h, key, equal_);
    if (probe.found) return false;
    s.table.insert_absent(probe, h, bound_hash(), key, std::forward<Args>(args)...);
    return true;
  }

  /// If the key is present, calls f(Value&) on it in place; otherwise inserts value. One atomic
  /// step: no other thread sees the key between the check and the change. Returns true if it
  /// inserted.
  /// Locks one shard exclusive; f runs under it and must not call into this map.
  /// Throws: whatever f throws (the entry keeps what f changed), or as insert().
  template <class F, class V = Value>
  requires std::invocable<F&, Value&> && std::constructible_from<Value, V&&>
  bool upsert(const Key& key, F&& f, V&& value) {
    check("upsert");
    const std::uint64_t h = hash(key);
    Shard& s = shard_for(h, detail::Access::write);
    detail::ExclusiveGuard guard(s.lock);
    const auto probe = s.table.probe(h, key, equal_);
    if (probe.found) {
      const detail::CallbackScope scope(this);
      f(s.table.slot(probe.pos).value);
      return false;
    }
    s.table.insert_absent(probe, h, bound_hash(), key, std::forward<V>(value));
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Lookup and visitation

  /// A copy of the key's value, or std::nullopt.
  /// Locks one shard shared. Throws: whatever Hash, KeyEqual or Value's copy throw.
  [[nodiscard]] std::optional<Value> find(const Key& key) const {
    check("find");
    const std::uint64_t h = hash(key);
    const Shard& s = shard_for(h, detail::Access::read);
    detail::SharedGuard guard(s.lock);
    const std::size_t pos = s.table.find(h, key, equal_);
    if (pos == table_type::npos) return std::nullopt;
    return s.table.slot(pos).value;
  }

  /// Whether the key is present. Locks one shard shared. Throws: whatever Hash or KeyEqual throw.
  [[nodiscard]] bool contains(const Key& key) const {
    check("contains");
    const std::uint64_t h = hash(key);
    const Shard& s = shard_for(h, detail::Access::read);
    detail::SharedGuard guard(s.lock);
    return s.table.find(h, key, equal_) != table_type::npos;
  }

  /// Calls f(Value&) on the key's value in place; returns false (and does not call f) if absent.
  /// Locks one shard exclusive; f runs under it and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or f throw.
  template <class F>
  requires std::invocable<F&, Value&>
  bool visit(const Key& key, F&& f) {
    check("visit");
    const std::uint64_t h = hash(key);
    Shard& s = shard_for(h, detail::Access::write);
    detail::ExclusiveGuard guard(s.lock);
    const std::size_t pos = s.table.find(h, key, equal_);
    if (pos == table_type::npos) return false;
    const detail::CallbackScope scope(this);
    f(s.table.slot(pos).value);
    return true;
  }

  /// Calls f(const Value&) on the key's value; returns false (and does not call f) if absent.
  /// Locks one shard shared; f runs under it and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or f throw.
  template <class F>
  requires std::invocable<F&, const Value&>
  bool cvisit(const Key& key, F&& f) const {
    check("cvisit");
    const std::uint64_t h = hash(key);
    const Shard& s = shard_for(h, detail::Access::read);
    detail::SharedGuard guard(s.lock);
    const std::size_t pos = s.table.find(h, key, equal_);
    if (pos == table_type::npos) return false;
    const detail::CallbackScope scope(this);
    f(static_cast<const Value&>(s.table.slot(pos).value));
    return true;
  }

  /// Calls f(const Key&, Value&) on every entry, a shard at a time.
  /// Locks each shard exclusive in turn: weakly consistent (entries inserted or erased meanwhile in
  /// shards not yet visited may or may not be seen). O(size + capacity). f must not call into this
  /// map. Throws: whatever f throws (shards not yet visited are then skipped).
  template <class F>
  requires std::invocable<F&, const Key&, Value&>
  void visit_all(F&& f) {
    for (std::size_t i = 0; i < shard_count_; ++i) visit_shard(i, f);
  }

  /// Calls f(const Key&, const Value&) on every entry, a shard at a time.
  /// Locks each shard shared in turn: weakly consistent. O(size + capacity). f must not call into
  /// this map. Throws: whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, const Value&>
  void cvisit_all(F&& f) const {
    for (std::size_t i = 0; i < shard_count_; ++i) cvisit_shard(i, f);
  }

  /// visit_all restricted to shard `shard` (< shard_count()), for callers that spread whole-map
  /// work over several calls. Locks that shard exclusive. O(shard size + capacity).
  /// Throws: std::out_of_range for a bad index; whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, Value&>
  void visit_shard(std::size_t shard, F&& f) {
    check("visit_shard");
    Shard& s = shard_at(shard);
    detail::ExclusiveGuard guard(s.lock);
    const detail::CallbackScope scope(this);
    s.table.for_each([&](slot_type& slot) { f(std::as_const(slot.key), slot.value); });
  }

  /// cvisit_all restricted to one shard. Locks that shard shared. O(shard size + capacity).
  /// Throws: std::out_of_range for a bad index; whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, const Value&>
  void cvisit_shard(std::size_t shard, F&& f) const {
    check("cvisit_shard");
    const Shard& s = shard_at(shard);
    detail::SharedGuard guard(s.lock);
    const detail::CallbackScope scope(this);
    s.table.for_each([&](const slot_type& slot) { f(slot.key, slot.value); });
  }

  /// A consistent point-in-time copy of every entry: all shards are locked shared, in index order
  /// (so two snapshots cannot deadlock), while the copy is made. Writers wait for it. The result's
  /// memory is allocated and mapped before locking, so the locks are held only for the copy.
  /// Locks all shards shared. O(size + capacity).
  /// Throws: std::bad_alloc, or whatever Key's or Value's copy throws; the map is unchanged.
  [[nodiscard]] std::vector<std::pair<Key, Value>> snapshot() const {
    check("snapshot");
    std::vector<std::pair<Key, Value>> out;
    // Allocate and map the result before locking: faulting its pages in one by one while every
    // shard is locked made writers wait (detail/prefault.hpp).
    detail::reserve_mapped(out, size());
    std::size_t locked = 0;
    try {
      for (; locked < shard_count_; ++locked) shards_[locked].lock.lock_shared();
      std::size_t total = 0;
      for (std::size_t i = 0; i < shard_count_; ++i) total += shards_[i].table.size();
      out.reserve(total);
      for (std::size_t i = 0; i < shard_count_; ++i) {
        shards_[i].table.for_each(
            [&](const slot_type& slot) { out.emplace_back(slot.key, slot.value); });
      }
    } catch (...) {
      for (std::size_t i = 0; i < locked; ++i) shards_[i].lock.unlock_shared();
      throw;
    }
    for (std::size_t i = 0; i < shard_count_; ++i) shards_[i].lock.unlock_shared();
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Batches: the hot loop of a device registry (heartbeats for many devices at once)

  /// For each key of `keys` that is present, calls f(const Key&, Value&) on its value in place;
  /// returns how many were present. Equivalent to calling visit(key, ...) for each key, but faster:
  /// keys are taken in chunks of batch_chunk and sorted by shard; each shard's keys are done under
  /// one acquisition of its lock, and each key's slot is prefetched batch_prefetch_distance keys
  /// ahead, so cache misses overlap instead of following one another. Keys of one shard are
  /// visited in the order given (a key listed twice is visited twice); keys of different shards in
  /// shard order. Each key's visit is atomic; the batch as a whole is not.
  /// Locks each touched shard exclusive, once per chunk. O(keys.size()). f must not call into this
  /// map. Throws: whatever Hash, KeyEqual or f throw (keys not yet reached are then not visited).
  template <class F>
  requires std::invocable<F&, const Key&, Value&> std::size_t visit_many(std::span<const Key> keys,
                                                                         F&& f) {
    check("visit_many");
    std::size_t found = 0;
    for_each_sorted_by_shard(keys, [&](Shard& s, std::uint64_t h, const Key& key) {
      const std::size_t pos = s.table.find(h, key, equal_);
      if (pos == table_type::npos) return;
      ++found;
      f(key, s.table.slot(pos).value);
    });
    return found;
  }

  /// For each key of `keys`: if present, calls f(const Key&, Value&) in place; otherwise inserts a
  /// copy of `value`. Returns how many it inserted. Batched like visit_many; each key's upsert is
  /// atomic, the batch is not.
  /// Locks each touched shard exclusive, once per chunk. Amortised O(keys.size()). f must not call
  /// into this map. Throws: whatever Hash, KeyEqual, f or Value's copy throw, std::bad_alloc (keys
  /// not yet reached are then untouched; the key being inserted is not inserted).
  template <class F>
  requires std::invocable<F&, const Key&, Value&> && std::copy_constructible<Value> std::size_t
  upsert_many(std::span<const Key> keys, F&& f, const Value& value) {
    check("upsert_many");
    std::size_t inserted = 0;
    for_each_sorted_by_shard(keys, [&](Shard& s, std::uint64_t h, const Key& key) {
      const auto probe = s.table.probe(h, key, equal_);
      if (probe.found) {
        f(key, s.table.slot(probe.pos).value);
      } else {
        s.table.insert_absent(probe, h, bound_hash(), key, value);
        ++inserted;
      }
    });
    return inserted;
  }

  /// How many keys the batch calls hash and sort by shard at a time. With the default 64 shards a
  /// chunk holds about 4 keys per shard, so a lock acquisition serves several keys.
  static constexpr std::size_t batch_chunk = 256;
  /// How many keys ahead of the one being done the batch calls prefetch: enough to overlap the
  /// misses of a table that does not fit in the cache, few enough that the prefetches do not
  /// queue behind one another (a core tracks only a few dozen outstanding misses).
  static constexpr std::size_t batch_prefetch_distance = 8;

  // ---------------------------------------------------------------------------------------------
  // Erasure

  /// Erases the key; returns true if it was present. Locks one shard exclusive.
  /// Throws: whatever Hash or KeyEqual throw; and, only with a Hash that may throw and a cluster
  /// whose distances saturated (a flood of colliding hashes), std::bad_alloc from the list of
  /// hashes computed before anything moves. The map is then unchanged.
  bool erase(const Key& key) {
    check("erase");
    const std::uint64_t h = hash(key);
    Shard& s = shard_for(h, detail::Access::write);
    detail::ExclusiveGuard guard(s.lock);
    const std::size_t pos = s.table.find(h, key, equal_);
    if (pos == table_type::npos) return false;
    s.table.erase_at(pos, bound_hash());
    return true;
  }

  /// Erases the key if pred(const Value&) is true, in one atomic step; returns true if it erased.
  /// Locks one shard exclusive; pred runs under it and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or pred throw, or std::bad_alloc as erase() (nothing is then
  /// erased).
  template <class Pred>
  requires std::predicate<Pred&, const Value&>
  bool erase_if(const Key& key, Pred&& pred) {
    check("erase_if");
    const std::uint64_t h = hash(key);
    Shard& s = shard_for(h, detail::Access::write);
    detail::ExclusiveGuard guard(s.lock);
    const std::size_t pos = s.table.find(h, key, equal_);
    if (pos == table_type::npos) return false;
    {
      const detail::CallbackScope scope(this);
      if (!pred(std::as_const(s.table.slot(pos).value))) return false;
    }
    s.table.erase_at(pos, bound_hash());
    return true;
  }

  /// Erases every entry for which pred(const Key&, const Value&) is true; returns how many.
  /// Locks each shard exclusive in turn: weakly consistent. O(size + capacity). pred must not call
  /// into this map. Throws: whatever pred throws (entries already erased stay erased).
  template <class Pred>
  requires std::predicate<Pred&, const Key&, const Value&> std::size_t erase_if(Pred&& pred) {
    std::size_t erased = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) erased += erase_if_shard(i, pred);
    return erased;
  }

  /// erase_if(pred) restricted to shard `shard`. Locks that shard exclusive.
  /// O(shard size + capacity). Throws: std::out_of_range for a bad index; whatever pred throws.
  template <class Pred>
  requires std::predicate<Pred&, const Key&, const Value&> std::size_t erase_if_shard(
      std::size_t shard, Pred&& pred) {
    check("erase_if_shard");
    Shard& s = shard_at(shard);
    detail::ExclusiveGuard guard(s.lock);
    const detail::CallbackScope scope(this);
    return s.table.erase_if(
        [&](const slot_type& slot) { return static_cast<bool>(pred(slot.key, slot.value)); },
        bound_hash());
  }

  /// Erases every entry and frees the shards' tables.
  /// Locks each shard exclusive in turn: entries inserted meanwhile into shards already cleared
  /// survive. O(size + capacity). Never throws.
  void clear() noexcept {
    check("clear");
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::ExclusiveGuard guard(shards_[i].lock);
      shards_[i].table.clear();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Size and capacity

  /// The number of entries: the sum of the shards' counts, each read under its lock. Under
  /// concurrent writes it may be out of date by the time it returns.
  /// Locks each shard shared in turn. O(shard_count()). Never throws.
  [[nodiscard]] std::size_t size() const noexcept {
    check("size");
    std::size_t total = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::SharedGuard guard(shards_[i].lock);
      total += shards_[i].table.size();
    }
    return total;
  }

  /// size() == 0, with the same caveat. Locks each shard shared in turn. Never throws.
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// The number of entries in each shard, each read under its lock (weakly consistent).
  /// Locks each shard shared in turn. O(shard_count()). Throws: std::bad_alloc.
  [[nodiscard]] std::vector<std::size_t> shard_sizes() const {
    check("shard_sizes");
    std::vector<std::size_t> sizes(shard_count_);
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::SharedGuard guard(shards_[i].lock);
      sizes[i] = shards_[i].table.size();
    }
    return sizes;
  }

  /// The longest probe sequence in any shard: one more than the largest distance of an entry from
  /// its home slot (1: every entry sits in its home slot; 0: the map is empty). A diagnostic for
  /// tests and monitoring of hash flooding: with a random seed it stays small (a few dozen at
  /// most, at the 7/8 maximum load) whatever the keys, while a flood of keys that share a home
  /// slot (a weak Hash, or keys chosen against a known fixed seed) shows up as a length near the
  /// number of colliding keys.
  /// Locks each shard shared in turn: weakly consistent. O(size + capacity).
  /// Throws: whatever Hash throws (entries whose distance saturated are hashed again).
  [[nodiscard]] std::size_t max_probe_length() const {
    check("max_probe_length");
    std::size_t longest = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::SharedGuard guard(shards_[i].lock);
      longest = std::max(longest, shards_[i].table.max_probe_length(bound_hash()));
    }
    return longest;
  }

  /// Bytes allocated by the map: the shard array, the shards' table locations and every shard's
  /// table.
  /// Locks each shard shared in turn. O(shard_count()). Never throws.
  [[nodiscard]] std::size_t allocated_bytes() const noexcept {
    check("allocated_bytes");
    std::size_t total = shard_count_ * (sizeof(Shard) + sizeof(detail::TableLocation));
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::SharedGuard guard(shards_[i].lock);
      total += shards_[i].table.allocated_bytes();
    }
    return total;
  }

  /// Makes room for about `n` entries in total, so that inserting them grows no shard (keys spread
  /// evenly; each shard reserves its share plus a margin of 1/16 for imbalance).
  /// Locks each shard exclusive in turn. O(n). Throws: std::length_error (naming n) if a shard's
  /// share is more than one table can hold (2^64 / 16 / (slot size + 1) entries: not a real size),
  /// std::bad_alloc, whatever Hash throws; a shard that could not grow is unchanged.
  void reserve(std::size_t n) {
    check("reserve");
    const std::size_t share = n / shard_count_;
    if (share > table_type::max_entries - table_type::max_entries / 16 - 16) {
      // (Checked before the margin is added, which could wrap around and reserve far less.)
      throw std::length_error("ShardedMap::reserve: room for " + std::to_string(n) +
                              " entries is more than " + std::to_string(shard_count_) +
                              " shards can hold (" + std::to_string(table_type::max_entries) +
                              " each)");
    }
    const std::size_t per_shard = share + share / 16 + 16;
    for (std::size_t i = 0; i < shard_count_; ++i) {
      detail::ExclusiveGuard guard(shards_[i].lock);
      shards_[i].table.reserve(per_shard, bound_hash());
    }
  }

  /// The number of shards (a power of two). Never throws.
  [[nodiscard]] std::size_t shard_count() const noexcept { return shard_count_; }

  /// The index of the shard that holds `key`. Throws: whatever Hash throws.
  [[nodiscard]] std::size_t shard_of(const Key& key) const {
    return hash(key) & (shard_count_ - 1);
  }

  /// The seed this map's hashing is keyed with. Never throws.
  [[nodiscard]] HashSeed seed() const noexcept { return seed_; }
  [[nodiscard]] hasher hash_function() const { return hasher_; }
  [[nodiscard]] key_equal key_eq() const { return equal_; }

 private:
  struct alignas(64) Shard {
    Shard(detail::TableLocation* location, const Allocator& alloc) : table(location, alloc) {}
    mutable detail::RwLock lock;
    table_type table;
  };
  static_assert(!std::is_empty_v<Allocator> || sizeof(Shard) == 64,
                "with a stateless allocator a shard (lock and table) fills exactly one cache line");
  using shard_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<Shard>;
  using location_allocator =
      typename std::allocator_traits<Allocator>::template rebind_alloc<detail::TableLocation>;

  // The keyed hash of a stored key, for the table's growth and erase paths.
  struct BoundHash {
    const ShardedMap* map;
    std::uint64_t operator()(const Key& key) const noexcept(noexcept(map->hash(key))) {
      return map->hash(key);
    }
  };
  [[nodiscard]] BoundHash bound_hash() const noexcept { return BoundHash{this}; }

  struct BatchItem {
    std::uint64_t hash;
    std::uint32_t shard;   // < max_shard_count
    std::uint32_t offset;  // in the chunk (< batch_chunk)
  };
  static_assert(max_shard_count <= std::uint64_t{1} << 32 && batch_chunk <= 65535);

  // The batch calls' loop. Takes `keys` in chunks of batch_chunk; hashes each chunk's keys, sorts
  // them by shard (a stable LSD radix sort on the shard index, 8 bits a pass: one pass up to 256
  // shards, two up to 65,536), then walks the sorted chunk, holding each shard's lock exclusive
  // for the run of its keys and calling item(shard, hash, key) for each, with the slot of the key
  // batch_prefetch_distance places ahead prefetched. Stable: a key's occurrences keep their order.
  // Holds one lock at a time. A callback scope covers item (it calls the user's callbacks).
  template <class Item>
  void for_each_sorted_by_shard(std::span<const Key> keys, Item&& item) {
    std::array<BatchItem, batch_chunk> buffer_a;
    std::array<BatchItem, batch_chunk> buffer_b;
    const auto prefetch = [this](const BatchItem& b) {
      // Access::read, although the batch calls write: fetching the lines exclusive made no
      // measurable difference to visit_many at 2^20 keys, 1 thread (same-process A/B), and the
      // batches have not been measured with several threads. For the same reason the shard's own
      // line is not prefetched here as shard_for() does: a batch takes a lock per run of keys of
      // one shard (about 4 in a 256-key chunk with 64 shards), not per key.
      table_type::prefetch(locations_[b.shard], b.hash, detail::Access::read);
    };
    for (std::size_t base = 0; base < keys.size(); base += batch_chunk) {
      const std::size_t n = std::min(batch_chunk, keys.size() - base);
      BatchItem* sorted = buffer_a.data();
      BatchItem* spare = buffer_b.data();
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t h = hash(keys[base + i]);
        sorted[i] = BatchItem{h, static_cast<std::uint32_t>(h & (shard_count_ - 1)),
                              static_cast<std::uint32_t>(i)};
      }
      for (unsigned shift = 0; ((shard_count_ - 1) >> shift) != 0; shift += 8) {
        std::array<std::uint16_t, 257> first{};
        for (std::size_t i = 0; i < n; ++i) ++first[((sorted[i].shard >> shift) & 0xFFU) + 1];
        for (std::size_t d = 1; d < first.size(); ++d) first[d] += first[d - 1];
        for (std::size_t i = 0; i < n; ++i)
          spare[first[(sorted[i].shard >> shift) & 0xFFU]++] = sorted[i];
        std::swap(sorted, spare);
      }
      for (std::size_t i = 0; i < std::min(n, batch_prefetch_distance); ++i) prefetch(sorted[i]);
      for (std::size_t i = 0; i < n;) {
        const std::uint32_t shard = sorted[i].shard;
        Shard& s = shards_[shard];
        detail::ExclusiveGuard guard(s.lock);
        const detail::CallbackScope scope(this);
        do {
          if (i + batch_prefetch_distance < n) prefetch(sorted[i + batch_prefetch_distance]);
          item(s, sorted[i].hash, keys[base + sorted[i].offset]);
          ++i;
        } while (i < n && sorted[i].shard == shard);
      }
    }
  }

  [[nodiscard]] std::uint64_t hash(const Key& key) const
      noexcept(noexcept(detail::hash_input(std::declval<const Hash&>(), key))) {
    return mix_(detail::hash_input(hasher_, key));
  }
  // The shard of hash h. It also asks the cache for the shard's own line, exclusive (the lock
  // word, which the caller writes next), and for the table lines a probe of h reads first
  // (TableLocation, flat_table.hpp), so that their misses overlap: with two cores, the shard's line
  // is often in the other core's cache, and the entry's is not in any cache when the table is
  // large (2 threads: +7-14% per write-heavy mix; README.md, Benchmarks). The lock's own
  // compare-and-swap would fetch its line too, but later: a locked instruction waits for
  // everything before it to complete, a prefetch does not (2^14 keys: +5-20% per mix at 2 threads,
  // +9-19% at 8; 1 thread unchanged; README.md, Benchmarks). `entry` is
  // Access::write for the calls that write the entry whenever the key is present (visit, upsert,
  // insert_or_assign, erase, erase_if): its line is then fetched ready to be written
  // (detail::prefetch). try_emplace asks for it shared, since it writes only when the key is
  // absent, and a line fetched exclusive but not written only has to travel back to the other
  // core, which reads it next: with Access::write there, 2 threads at 2^14 keys ran rapid-grow
  // (80% inserts, most of them finding the key) 3-5% slower and exchange 2-3% faster than with
  // Access::read. Takes no lock.
  [[nodiscard]] Shard& shard_for(std::uint64_t h, detail::Access entry) const noexcept {
    const std::size_t i = h & (shard_count_ - 1);
    detail::prefetch(&shards_[i], detail::Access::write);
    table_type::prefetch(locations_[i], h, entry);
    return shards_[i];
  }
  [[nodiscard]] Shard& shard_at(std::size_t i) const {
    if (i >= shard_count_) {
      throw std::out_of_range("ShardedMap: shard index " + std::to_string(i) +
                              " is out of range (shard_count() is " + std::to_string(shard_count_) +
                              ")");
    }
    return shards_[i];
  }
  void check(const char* operation) const noexcept {
    detail::CallbackScope::check(this, "ShardedMap", operation);
  }

  [[no_unique_address]] Hash hasher_;
  [[no_unique_address]] KeyEqual equal_;
  detail::KeyedMix mix_;
  HashSeed seed_;
  [[no_unique_address]] shard_allocator shard_alloc_;
  [[no_unique_address]] location_allocator location_alloc_;
  std::size_t shard_count_ = 0;
  Shard* shards_ = nullptr;
  detail::TableLocation* locations_ = nullptr;  // one per shard, read without locks
};

}  // namespace devcache
