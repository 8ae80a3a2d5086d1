// bench/adapters.hpp — one small adapter per map, all with the same five operations:
//   read(k, out) / insert(k, v) (only if absent) / remove(k, old) / update(k) (value += 1 in place,
//   atomically) / for_each(f) (quiescent: used only to check the final state).
// Peers hash their u64 keys with murmur3's fmix64 (Fmix64) so that weak hashing flatters nobody.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include <absl/container/flat_hash_map.h>
#include <libcuckoo/cuckoohash_map.hh>
#include <tbb/concurrent_hash_map.h>

#include "devcache_adapter.hpp"
#include "workload.hpp"

namespace devcache::bench {

class LibcuckooAdapter {
 public:
  [[nodiscard]] bool read(std::uint64_t k, std::uint64_t& out) const { return map_.find(k, out); }
  bool insert(std::uint64_t k, std::uint64_t v) { return map_.insert(k, v); }
  bool remove(std::uint64_t k, std::uint64_t& old) {
    return map_.erase_fn(k, [&](std::uint64_t& v) {
      old = v;
      return true;
    });
  }
  bool update(std::uint64_t k) {
    return map_.update_fn(k, [](std::uint64_t& v) { ++v; });
  }
  template <class F>
  void for_each(F&& f) const {
    auto locked = map_.lock_table();
    for (const auto& [k, v] : locked) f(k, v);
  }
  [[nodiscard]] std::size_t size() const { return map_.size(); }

 private:
  mutable libcuckoo::cuckoohash_map<std::uint64_t, std::uint64_t, Fmix64> map_;
};

struct TbbHashCompare {
  static std::size_t hash(std::uint64_t k) { return Fmix64{}(k); }
  static bool equal(std::uint64_t a, std::uint64_t b) { return a == b; }
};

template <class Allocator = tbb::tbb_allocator<std::pair<const std::uint64_t, std::uint64_t>>>
class TbbAdapterT {
  using Map = tbb::concurrent_hash_map<std::uint64_t, std::uint64_t, TbbHashCompare, Allocator>;

 public:
  [[nodiscard]] bool read(std::uint64_t k, std::uint64_t& out) const {
    typename Map::const_accessor a;
    if (!map_.find(a, k)) return false;
    out = a->second;
    return true;
  }
  bool insert(std::uint64_t k, std::uint64_t v) { return map_.insert({k, v}); }
  bool remove(std::uint64_t k, std::uint64_t& old) {
    typename Map::accessor a;
    if (!map_.find(a, k)) return false;
    old = a->second;
    return map_.erase(a);
  }
  bool update(std::uint64_t k) {
    typename Map::accessor a;
    if (!map_.find(a, k)) return false;
    ++a->second;
    return true;
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, v] : map_) f(k, v);
  }
  [[nodiscard]] std::size_t size() const { return map_.size(); }

 private:
  Map map_;
};
using TbbAdapter = TbbAdapterT<>;

/// The four operations on a std-style map (find/emplace/erase), with an optional lock: a
/// `std::unordered_map` behind one `std::shared_mutex`, or abseil's table with no lock at all.
/// Reads take the lock shared, inserts and removes exclusive. Where the mapped type is a
/// std::atomic, an update takes the lock shared too and adds with fetch_add, as a careful user of
/// one lock would write it (it changes no node, only a value): updates then run alongside reads
/// and each other instead of queueing behind one writer, which makes the heartbeat mix (90%
/// updates) a fair fight. Otherwise (the unsynchronised ceiling) it updates under the exclusive
/// lock.
template <class Map, class Mutex>
class StdStyleAdapter {
  static constexpr bool atomic_values =
      std::is_same_v<typename Map::mapped_type, std::atomic<std::uint64_t>>;

  template <class V>
  static std::uint64_t load(const V& v) {
    if constexpr (atomic_values) {
      return v.load(std::memory_order_relaxed);
    } else {
      return v;
    }
  }

 public:
  [[nodiscard]] bool read(std::uint64_t k, std::uint64_t& out) const {
    const std::shared_lock lock(mutex_);
    const auto it = map_.find(k);
    if (it == map_.end()) return false;
    out = load(it->second);
    return true;
  }
  bool insert(std::uint64_t k, std::uint64_t v) {
    const std::unique_lock lock(mutex_);
    return map_.emplace(k, v).second;
  }
  bool remove(std::uint64_t k, std::uint64_t& old) {
    const std::unique_lock lock(mutex_);
    const auto it = map_.find(k);
    if (it == map_.end()) return false;
    old = load(it->second);
    map_.erase(it);
    return true;
  }
  bool update(std::uint64_t k) {
    if constexpr (atomic_values) {
      const std::shared_lock lock(mutex_);
      const auto it = map_.find(k);
      if (it == map_.end()) return false;
      it->second.fetch_add(1, std::memory_order_relaxed);
      return true;
    } else {
      const std::unique_lock lock(mutex_);
      const auto it = map_.find(k);
      if (it == map_.end()) return false;
      ++it->second;
      return true;
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [k, v] : map_) f(k, load(v));
  }
  [[nodiscard]] std::size_t size() const { return map_.size(); }

 private:
  mutable Mutex mutex_;
  Map map_;
};

/// A lock that does nothing: the unsynchronised ceiling, run with one thread only.
struct NoLock {
  void lock() noexcept {}
  void unlock() noexcept {}
  void lock_shared() noexcept {}
  void unlock_shared() noexcept {}
};

using StdMutexAdapter =
    StdStyleAdapter<std::unordered_map<std::uint64_t, std::atomic<std::uint64_t>, Fmix64>,
                    std::shared_mutex>;
using AbslAdapter =
    StdStyleAdapter<absl::flat_hash_map<std::uint64_t, std::uint64_t, Fmix64>, NoLock>;

}  // namespace devcache::bench
