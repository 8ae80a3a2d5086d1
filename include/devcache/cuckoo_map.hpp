// devcache/cuckoo_map.hpp — CuckooMap: ShardedMap's interface over libcuckoo's cuckoohash_map.
//
// CuckooMap has ShardedMap's public interface, member for member, except ShardedMap's own
// max_probe_length() and batch_prefetch_distance, which describe its Robin Hood tables (a cuckoo
// probe is always one or two buckets). sharded_map.hpp documents the shared semantics: no
// reference escapes a lock, callbacks run under the lock and must not call back into the map,
// single-key insertion gives the strong guarantee. The engine differs:
//
//   ShardedMap  a few dozen Robin Hood tables, each behind one reader-writer lock. Lookups share
//               their shard's lock; whole-map work goes shard by shard; size() is cheap.
//   CuckooMap   one cuckoo hash table (buckets of 4 slots; a key lives in one of two buckets)
//               whose buckets are striped over 2^16 spinlocks: an operation locks only the key's
//               two buckets, so writers to different keys rarely meet, but readers take the same
//               exclusive locks as writers. Whole-map operations (visit_all, erase_if(pred),
//               snapshot, size) lock the whole table at once: they are consistent, and block every
//               other operation while they run.
//
// Pick ShardedMap by default: it is ours, its memory grows with its contents, its whole-map
// operations do not stop the world, and size() is cheap. Pick CuckooMap for a write-heavy workload
// with many threads on many cores, where a lock per bucket beats a lock per shard, and when
// visit_all/size/snapshot are rare. The costs of libcuckoo's design:
// - Memory: a map starts at libcuckoo's default size, 2^16 buckets of 4 slots and 2^16 locks of 64
//   bytes: about 8.5 MiB for 8-byte keys and values, even when empty. (While libcuckoo has fewer
//   locks, growing the table swaps in a larger lock array that other threads read without
//   synchronisation, a data race; at 2^16 locks the array is never replaced.)
// - Whole-map operations, size() included, take all 2^16 locks: about 2 ms each in an optimised
//   build, whatever the size.
// - The locks spin without ever sleeping. With more runnable threads than cores, a thread that is
//   preempted while holding a bucket lock makes the others spin away their time slices.
// - A key can live in only two buckets of 4 slots. If more than 8 keys have the same hash (possible
//   only with a Hash that maps distinct keys to one value, or a fixed seed and chosen keys), growth
//   cannot help and insert throws libcuckoo::load_factor_too_low, after doubling the table while
//   it is over a quarter full (at most twice; the memory stays allocated). ShardedMap stays
//   correct there.
// - Out of memory: libcuckoo 0.3.1 swaps its bucket array out before it allocates the larger one,
//   so a std::bad_alloc from growing leaves the map with no bucket array; using it afterwards
//   crashes (a hidden test in map_conformance_test shows it). ShardedMap's growth is strongly
//   exception-safe.
//
// Hashing: as in ShardedMap, `Hash` gives a 64-bit value (with the default std::hash, integral and
// RawHashInput keys such as MacAddress skip it: hash_seed.hpp) that detail::KeyedMix combines with
// the map's seed, once per operation, before any lock is taken; libcuckoo receives the mixed value
// in a small probe object. libcuckoo also hashes stored keys when it moves them (cuckoo
// displacement and growth), partly in noexcept code. If `Hash` is noexcept, libcuckoo calls it
// (through the mixer) there. If it may throw, each stored key carries its mixed hash (8 bytes more
// per entry), so libcuckoo never calls `Hash` and a throwing Hash leaves the map unchanged instead
// of terminating.
//
// Requirements on the types: as for ShardedMap. libcuckoo additionally needs fewer than 9 keys per
// hash value (see above).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <libcuckoo/cuckoohash_map.hh>

#include <devcache/detail/hash_mix.hpp>
#include <devcache/detail/prefault.hpp>
#include <devcache/detail/reentrancy_check.hpp>
#include <devcache/hash_seed.hpp>

namespace devcache {

namespace detail {

/// A key stored together with its keyed hash (used when the user's Hash may throw).
template <class Key>
struct HashedKey {
  Key key;
  std::uint64_t hash;
};

/// What CuckooMap hands libcuckoo to look a key up: the key and its already computed keyed hash.
template <class Key>
struct KeyProbe {
  const Key& key;
  std::uint64_t hash;
};

}  // namespace detail

/// A concurrent hash map over libcuckoo's cuckoohash_map, with ShardedMap's interface.
///
/// Every member function is safe to call from any number of threads at once, except the
/// constructor and destructor. Each comment says which locks the call takes: "locks the key's two
/// buckets" (an insertion may also lock the buckets of a cuckoo path, and growth locks the whole
/// table) or "locks the whole table" (consistent; blocks every other operation for the duration).
/// The shard interface is kept for compatibility: the table counts as one shard, index 0.
///
/// Example:
/// @code
///   devcache::CuckooMap<devcache::MacAddress, std::uint64_t> beats;
///   beats.insert(mac, 0);
///   beats.visit(mac, [](std::uint64_t& n) { ++n; });   // in place, under the bucket locks
///   std::optional<std::uint64_t> n = beats.find(mac);  // a copy; no reference escapes
/// @endcode
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>,
          class Allocator = std::allocator<std::pair<const Key, Value>>>
class CuckooMap {
 public:
  using key_type = Key;
  using mapped_type = Value;
  using value_type = std::pair<const Key, Value>;
  using hasher = Hash;
  using key_equal = KeyEqual;
  using allocator_type = Allocator;
  using size_type = std::size_t;

  static_assert(std::is_copy_constructible_v<Key>, "CuckooMap requires a copy-constructible Key");
  static_assert(std::is_invocable_r_v<std::size_t, const Hash&, const Key&>,
                "CuckooMap's Hash must be callable on const Key& and return an integer");
  static_assert(std::is_invocable_r_v<bool, const KeyEqual&, const Key&, const Key&>,
                "CuckooMap's KeyEqual must be callable on two const Key& and return bool");
  static_assert(std::is_nothrow_move_constructible_v<Key>,
                "devcache maps require a nothrow-move-constructible Key");
  static_assert(std::is_nothrow_move_constructible_v<Value>,
                "devcache maps require a nothrow-move-constructible Value");
  static_assert(std::is_nothrow_destructible_v<Key> && std::is_nothrow_destructible_v<Value>,
                "devcache maps require nothrow-destructible Key and Value");

 private:
  // Whether stored keys carry their hash (see the file comment).
  static constexpr bool stores_hash =
      !noexcept(detail::hash_input(std::declval<const Hash&>(), std::declval<const Key&>()));
  using stored_key = std::conditional_t<stores_hash, detail::HashedKey<Key>, Key>;
  using probe_type = detail::KeyProbe<Key>;

  static const Key& key_of(const Key& key) noexcept { return key; }
  static const Key& key_of(const detail::HashedKey<Key>& key) noexcept { return key.key; }
  static const Key& key_of(const probe_type& probe) noexcept { return probe.key; }

  // libcuckoo copies its functors on every call, so they only point back at the map.
  struct TableHash {
    const CuckooMap* map;
    std::size_t operator()(const Key& key) const noexcept requires(!stores_hash) {
      return static_cast<std::size_t>(map->hash(key));
    }
    std::size_t operator()(const detail::HashedKey<Key>& key) const noexcept {
      return static_cast<std::size_t>(key.hash);
    }
    std::size_t operator()(const probe_type& probe) const noexcept {
      return static_cast<std::size_t>(probe.hash);
    }
  };
  struct TableEqual {
    const CuckooMap* map;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return static_cast<bool>(map->equal_(key_of(a), key_of(b)));
    }
  };
  using table_allocator = typename std::allocator_traits<Allocator>::template rebind_alloc<
      std::pair<const stored_key, Value>>;
  using table_type =
      libcuckoo::cuckoohash_map<stored_key, Value, TableHash, TableEqual, table_allocator>;

  // libcuckoo has min(bucket_count(), 2^16) locks of one 64-byte line each. While it has fewer, a
  // growth appends a larger lock array to a std::list that other threads read without
  // synchronisation (a data race ThreadSanitizer reports). Starting at 2^16 buckets, libcuckoo's
  // own default, the lock array is full-size from the start and is never replaced.
  static constexpr std::size_t max_lock_count = std::size_t{1} << 16;
  static constexpr std::size_t initial_capacity = max_lock_count * table_type::slot_per_bucket();
  // When an insert finds no free slot, libcuckoo doubles the table unless its load factor is
  // below this, and then throws load_factor_too_low. Its default, 0.05, let 9 keys with one hash
  // (which no growth can separate) double a table holding 100,000 entries three times before the
  // throw, keeping the memory: 8.5 MiB became 40 MiB. With the keyed hash spreading keys, a cuckoo
  // table of 4-slot buckets finds room far beyond a quarter full, so below that growth is never
  // what an insert needs: at most two doublings now precede the throw (from nearly full).
  static constexpr double min_load_factor = 0.25;
  static constexpr std::size_t lock_bytes = 64;
  // Bytes per slot of libcuckoo's bucket array: the entry, its partial key, its occupied flag.
  static constexpr std::size_t slot_bytes =
      sizeof(std::pair<const stored_key, Value>) + sizeof(std::uint8_t) + sizeof(bool);

 public:
  /// An empty map with a random seed. Allocates libcuckoo's default table (see the file comment).
  /// Throws: std::bad_alloc; std::system_error if no random seed can be drawn.
  CuckooMap() : CuckooMap(0) {}

  /// An empty map. `shard_count` is accepted for interface compatibility with ShardedMap and
  /// ignored: libcuckoo's table has no shards (shard_count() is always 1, and no count is too
  /// large). Allocates libcuckoo's default table: 2^16 buckets and 2^16 locks. O(2^16).
  /// Throws: std::bad_alloc.
  explicit CuckooMap(std::size_t shard_count, HashSeed seed = HashSeed::random(),
                     const Hash& hash = Hash(), const KeyEqual& equal = KeyEqual(),
                     const Allocator& alloc = Allocator())
      : hasher_(hash),
        equal_(equal),
        mix_(detail::KeyedMix::from_seed(seed.value())),
        seed_(seed),
        table_(initial_capacity, TableHash{this}, TableEqual{this}, table_allocator(alloc)) {
    static_cast<void>(shard_count);
    table_.minimum_load_factor(min_load_factor);
  }

  CuckooMap(const CuckooMap&) = delete;
  CuckooMap& operator=(const CuckooMap&) = delete;

  /// Not thread-safe: no other call may run concurrently. O(size + capacity).
  ~CuckooMap() = default;

  // ---------------------------------------------------------------------------------------------
  // Insertion

  /// Inserts (key, value) if the key is absent; returns true if it inserted.
  /// Locks the key's two buckets. Amortised O(1); growth is O(size) and locks the whole table.
  /// Throws: whatever Hash, KeyEqual or Value's constructor throw, or
  /// libcuckoo::load_factor_too_low (see the file comment); the map is then unchanged.
  /// std::bad_alloc from growth leaves the map unusable (a libcuckoo defect, see the file comment).
  template <class V = Value>
  requires std::constructible_from<Value, V&&>
  bool insert(const Key& key, V&& value) {
    check("insert");
    return table_.insert(insert_key(key), std::forward<V>(value));
  }

  /// Inserts (key, value), or assigns value to the existing entry; returns true if it inserted.
  /// Locks the key's two buckets. Amortised O(1).
  /// Throws: as insert(), or whatever Value's assignment throws (the entry then holds whatever
  /// that assignment left).
  template <class V = Value>
  requires std::constructible_from<Value, V&&> && std::assignable_from<Value&, V&&>
  bool insert_or_assign(const Key& key, V&& value) {
    check("insert_or_assign");
    // libcuckoo uses `value` either to construct the entry or in the functor, never both.
    return table_.upsert(
        insert_key(key), [&value](Value& existing) { existing = std::forward<V>(value); },
        std::forward<V>(value));
  }

  /// Constructs Value(args...) for key if the key is absent; returns true if it inserted. The
  /// arguments are not used when the key is present.
  /// Locks the key's two buckets. Amortised O(1). Throws: as insert(); the map is then unchanged.
  template <class... Args>
  requires std::constructible_from<Value, Args&&...>
  bool try_emplace(const Key& key, Args&&... args) {
    check("try_emplace");
    return table_.insert(insert_key(key), std::forward<Args>(args)...);
  }

  /// If the key is present, calls f(Value&) on it in place; otherwise inserts value, in one atomic
  /// step. Returns true if it inserted.
  /// Locks the key's two buckets; f runs under them and must not call into this map.
  /// Throws: whatever f throws (the entry keeps what f changed), or as insert().
  template <class F, class V = Value>
  requires std::invocable<F&, Value&> && std::constructible_from<Value, V&&>
  bool upsert(const Key& key, F&& f, V&& value) {
    check("upsert");
    return table_.upsert(
        insert_key(key),
        [this, &f](Value& existing) {
          const detail::CallbackScope scope(this);
          f(existing);
        },
        std::forward<V>(value));
  }

  // ---------------------------------------------------------------------------------------------
  // Lookup and visitation

  /// A copy of the key's value, or std::nullopt.
  /// Locks the key's two buckets. Throws: whatever Hash, KeyEqual or Value's copy throw.
  [[nodiscard]] std::optional<Value> find(const Key& key) const {
    check("find");
    std::optional<Value> out;
    table_.find_fn(probe(key), [&out](const Value& value) { out.emplace(value); });
    return out;
  }

  /// Whether the key is present. Locks the key's two buckets.
  /// Throws: whatever Hash or KeyEqual throw.
  [[nodiscard]] bool contains(const Key& key) const {
    check("contains");
    return table_.contains(probe(key));
  }

  /// Calls f(Value&) on the key's value in place; returns false (and does not call f) if absent.
  /// Locks the key's two buckets; f runs under them and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or f throw.
  template <class F>
  requires std::invocable<F&, Value&>
  bool visit(const Key& key, F&& f) {
    check("visit");
    return table_.update_fn(probe(key), [this, &f](Value& value) {
      const detail::CallbackScope scope(this);
      f(value);
    });
  }

  /// Calls f(const Value&) on the key's value; returns false (and does not call f) if absent.
  /// Locks the key's two buckets (libcuckoo has no shared locks: readers exclude each other too);
  /// f runs under them and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or f throw.
  template <class F>
  requires std::invocable<F&, const Value&>
  bool cvisit(const Key& key, F&& f) const {
    check("cvisit");
    return table_.find_fn(probe(key), [this, &f](const Value& value) {
      const detail::CallbackScope scope(this);
      f(value);
    });
  }

  /// Calls f(const Key&, Value&) on every entry.
  /// Locks the whole table: consistent (f sees one point in time). O(size + capacity). f must not
  /// call into this map. Throws: whatever f throws (entries not yet visited are then skipped).
  template <class F>
  requires std::invocable<F&, const Key&, Value&>
  void visit_all(F&& f) {
    check("visit_all");
    visit_locked(f);
  }

  /// Calls f(const Key&, const Value&) on every entry.
  /// Locks the whole table: consistent. O(size + capacity). f must not call into this map.
  /// Throws: whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, const Value&>
  void cvisit_all(F&& f) const {
    check("cvisit_all");
    cvisit_locked(f);
  }

  /// visit_all() for shard 0, the only shard. Locks the whole table. O(size + capacity).
  /// Throws: std::out_of_range if shard != 0; whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, Value&>
  void visit_shard(std::size_t shard, F&& f) {
    check("visit_shard");
    check_shard(shard);
    visit_locked(f);
  }

  /// cvisit_all() for shard 0, the only shard. Locks the whole table. O(size + capacity).
  /// Throws: std::out_of_range if shard != 0; whatever f throws.
  template <class F>
  requires std::invocable<F&, const Key&, const Value&>
  void cvisit_shard(std::size_t shard, F&& f) const {
    check("cvisit_shard");
    check_shard(shard);
    cvisit_locked(f);
  }

  /// A consistent point-in-time copy of every entry. The result is allocated and mapped before
  /// the copy, sized by a size() call of its own, so the copy's lock is held only for the copy
  /// (DeviceCache<CuckooMap>::get_cache_snapshot of 1M devices: a heartbeat writer blocked 9-23
  /// ms, against 260 ms when the result was allocated and faulted in under the lock; bench/
  /// device_bench. The price is size()'s own whole-table lock, about 2 ms, which small maps notice
  /// most).
  /// Locks the whole table twice: for size(), then while it copies. O(size + capacity).
  /// Throws: std::bad_alloc, or whatever Key's or Value's copy throws; the map is unchanged.
  [[nodiscard]] std::vector<std::pair<Key, Value>> snapshot() const {
    check("snapshot");
    std::vector<std::pair<Key, Value>> out;
    detail::reserve_mapped(out, size());
    const auto locked = table_.lock_table();
    out.reserve(locked.size());
    for (const auto& entry : locked) out.emplace_back(key_of(entry.first), entry.second);
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Batches (ShardedMap's interface; libcuckoo has no batch operation, so these are loops)

  /// For each key of `keys` that is present, calls f(const Key&, Value&) on its value in place;
  /// returns how many were present. Exactly visit(key, ...) for each key in the order given (a key
  /// listed twice is visited twice). Each key's visit is atomic; the batch as a whole is not.
  /// Locks each key's two buckets in turn. O(keys.size()). f must not call into this map.
  /// Throws: whatever Hash, KeyEqual or f throw (keys not yet reached are then not visited).
  template <class F>
  requires std::invocable<F&, const Key&, Value&> std::size_t visit_many(std::span<const Key> keys,
                                                                         F&& f) {
    check("visit_many");
    std::size_t found = 0;
    for (const Key& key : keys) {
      auto visit_one = [this, &f, &key](Value& value) {
        const detail::CallbackScope scope(this);
        f(key, value);
      };
      if (table_.update_fn(probe(key), visit_one)) ++found;
    }
    return found;
  }

  /// For each key of `keys`: if present, calls f(const Key&, Value&) in place; otherwise inserts a
  /// copy of `value`. Returns how many it inserted. Exactly upsert() for each key in the order
  /// given; each key's upsert is atomic, the batch is not.
  /// Locks each key's two buckets in turn. Amortised O(keys.size()). f must not call into this
  /// map. Throws: as upsert() (keys not yet reached are then untouched; the key being inserted is
  /// not inserted).
  template <class F>
  requires std::invocable<F&, const Key&, Value&> && std::copy_constructible<Value> std::size_t
  upsert_many(std::span<const Key> keys, F&& f, const Value& value) {
    check("upsert_many");
    std::size_t inserted = 0;
    for (const Key& key : keys) {
      auto update_one = [this, &f, &key](Value& existing) {
        const detail::CallbackScope scope(this);
        f(key, existing);
      };
      if (table_.upsert(insert_key(key), update_one, value)) ++inserted;
    }
    return inserted;
  }

  /// Kept for interface compatibility with ShardedMap, which hashes and groups keys by this many at
  /// a time; CuckooMap's batches take keys one by one.
  static constexpr std::size_t batch_chunk = 256;

  // ---------------------------------------------------------------------------------------------
  // Erasure

  /// Erases the key; returns true if it was present. Locks the key's two buckets.
  /// Throws: whatever Hash or KeyEqual throw.
  bool erase(const Key& key) {
    check("erase");
    return table_.erase(probe(key));
  }

  /// Erases the key if pred(const Value&) is true, in one atomic step; returns true if it erased.
  /// Locks the key's two buckets; pred runs under them and must not call into this map.
  /// Throws: whatever Hash, KeyEqual or pred throw (nothing is then erased).
  template <class Pred>
  requires std::predicate<Pred&, const Value&>
  bool erase_if(const Key& key, Pred&& pred) {
    check("erase_if");
    bool erased = false;
    // libcuckoo's erase_fn erases when the functor returns true, and returns whether it found the
    // key; what we return is the predicate's verdict.
    table_.erase_fn(probe(key), [this, &pred, &erased](Value& value) {
      const detail::CallbackScope scope(this);
      erased = static_cast<bool>(pred(std::as_const(value)));
      return erased;
    });
    return erased;
  }

  /// Erases every entry for which pred(const Key&, const Value&) is true; returns how many.
  /// Locks the whole table: consistent. O(size + capacity). pred must not call into this map.
  /// Throws: whatever pred throws (entries already erased stay erased).
  template <class Pred>
  requires std::predicate<Pred&, const Key&, const Value&> std::size_t erase_if(Pred&& pred) {
    check("erase_if");
    return erase_if_locked(pred);
  }

  /// erase_if(pred) for shard 0, the only shard. Locks the whole table. O(size + capacity).
  /// Throws: std::out_of_range if shard != 0; whatever pred throws.
  template <class Pred>
  requires std::predicate<Pred&, const Key&, const Value&> std::size_t erase_if_shard(
      std::size_t shard, Pred&& pred) {
    check("erase_if_shard");
    check_shard(shard);
    return erase_if_locked(pred);
  }

  /// Erases every entry; the bucket array keeps its size (the memory is not released).
  /// Locks the whole table. O(capacity). Never throws.
  void clear() noexcept {
    check("clear");
    table_.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Size and capacity

  /// The number of entries. Exact at the moment it is read, but may be out of date by the time it
  /// returns under concurrent writes.
  /// Locks the whole table: O(2^16) (see the file comment), and every other operation waits
  /// meanwhile; call it sparingly. (libcuckoo's own size() sums its per-lock counters without
  /// taking the locks, a data race that ThreadSanitizer reports.) Never throws.
  [[nodiscard]] std::size_t size() const noexcept {
    check("size");
    return table_.lock_table().size();
  }

  /// size() == 0, with the same cost and caveat. Locks the whole table. Never throws.
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// {size()}: the table is one shard. Locks the whole table. Throws: std::bad_alloc.
  [[nodiscard]] std::vector<std::size_t> shard_sizes() const {
    check("shard_sizes");
    return std::vector<std::size_t>{table_.lock_table().size()};
  }

  /// An estimate of the bytes allocated by the map: the bucket array (slots, partial keys and
  /// occupancy flags), the locks and the map object. It leaves out the old bucket array while a
  /// growth is still being migrated (libcuckoo moves buckets lazily), libcuckoo's small bookkeeping
  /// allocations, and memory the values own. Locks nothing (the bucket count is read atomically).
  /// Never throws.
  [[nodiscard]] std::size_t allocated_bytes() const noexcept {
    check("allocated_bytes");
    const std::size_t buckets = table_.bucket_count();
    const std::size_t locks = buckets < max_lock_count ? buckets : max_lock_count;
    return buckets * table_type::slot_per_bucket() * slot_bytes + locks * lock_bytes +
           sizeof(*this);
  }

  /// The most entries reserve() accepts: far beyond any memory, but below it libcuckoo's sizing
  /// arithmetic (slots rounded up to a power-of-two bucket count, times the bytes per slot) cannot
  /// wrap around.
  static constexpr std::size_t max_reserve =
      std::numeric_limits<std::size_t>::max() / 4 / slot_bytes;

  /// Makes room for about `n` entries, so that inserting them is unlikely to grow the table (cuckoo
  /// hashing may still need to grow before it is full). No effect if the table already has room
  /// (a new map has room for 2^18).
  /// Locks the whole table while it rebuilds. O(size + n).
  /// Throws: std::length_error (naming n) if n > max_reserve, leaving the map unchanged (libcuckoo
  /// would round such a request around to a tiny table); std::bad_alloc,
  /// libcuckoo::load_factor_too_low. libcuckoo rebuilds by moving entries into a new table, so
  /// unlike ShardedMap the guarantee is then only basic: after such an exception the map is valid
  /// but entries may have been left moved-from.
  void reserve(std::size_t n) {
    check("reserve");
    if (n > max_reserve) {
      throw std::length_error("CuckooMap::reserve: room for " + std::to_string(n) +
                              " entries is more than one table can hold (" +
                              std::to_string(max_reserve) + ")");
    }
    if (n > table_.capacity()) table_.reserve(n);
  }

  /// 1: libcuckoo's table is not sharded. Never throws.
  [[nodiscard]] std::size_t shard_count() const noexcept { return 1; }

  /// 0, the only shard, for every key. Never throws (unlike ShardedMap's, it does not hash).
  [[nodiscard]] std::size_t shard_of(const Key& /*key*/) const { return 0; }

  /// The seed this map's hashing is keyed with. Never throws.
  [[nodiscard]] HashSeed seed() const noexcept { return seed_; }
  /// Copies of the functors given at construction. Throws: whatever their copy throws.
  [[nodiscard]] hasher hash_function() const { return hasher_; }
  [[nodiscard]] key_equal key_eq() const { return equal_; }

 private:
  // As ShardedMap: integral and RawHashInput keys with the default std::hash skip it.
  [[nodiscard]] std::uint64_t hash(const Key& key) const
      noexcept(noexcept(detail::hash_input(std::declval<const Hash&>(), key))) {
    return mix_(detail::hash_input(hasher_, key));
  }

  // The lookup object: hashes the key here, outside libcuckoo's locks.
  [[nodiscard]] probe_type probe(const Key& key) const { return probe_type{key, hash(key)}; }

  // What libcuckoo constructs a new entry's key from: the key itself, or the key with its hash
  // (computed here, so a throwing Hash changes nothing).
  [[nodiscard]] decltype(auto) insert_key(const Key& key) const {
    if constexpr (stores_hash) {
      return detail::HashedKey<Key>{key, hash(key)};
    } else {
      return (key);
    }
  }

  static void check_shard(std::size_t shard) {
    if (shard != 0) {
      throw std::out_of_range("CuckooMap: shard index " + std::to_string(shard) +
                              " is out of range (shard_count() is 1)");
    }
  }

  template <class F>
  void visit_locked(F& f) {
    auto locked = table_.lock_table();
    const detail::CallbackScope scope(this);
    for (auto& entry : locked) f(key_of(entry.first), entry.second);
  }

  template <class F>
  void cvisit_locked(F& f) const {
    const auto locked = table_.lock_table();
    const detail::CallbackScope scope(this);
    for (const auto& entry : locked) f(key_of(entry.first), entry.second);
  }

  template <class Pred>
  std::size_t erase_if_locked(Pred& pred) {
    auto locked = table_.lock_table();
    const detail::CallbackScope scope(this);
    std::size_t erased = 0;
    for (auto it = locked.begin(); it != locked.end();) {
      if (pred(key_of(it->first), std::as_const(it->second))) {
        it = locked.erase(it);  // the next occupied slot
        ++erased;
      } else {
        ++it;
      }
    }
    return erased;
  }

  void check(const char* operation) const noexcept {
    detail::CallbackScope::check(this, "CuckooMap", operation);
  }

  [[no_unique_address]] Hash hasher_;
  [[no_unique_address]] KeyEqual equal_;
  detail::KeyedMix mix_;
  HashSeed seed_;
  // lock_table() is non-const in libcuckoo, and const members need it (cvisit_all, snapshot, size).
  mutable table_type table_;
};

}  // namespace devcache
