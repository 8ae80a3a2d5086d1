// bench/devcache_adapter.hpp — the benchmark adapter of devcache's own maps (adapters.hpp has the
// peers'). Apart from the peers, so that map_ab can build two versions of devcache side by side
// without the peers' libraries.
#pragma once

#include <cstddef>
#include <cstdint>

#include <devcache/cuckoo_map.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

namespace devcache::bench {

/// devcache's maps, keyed by MacAddress with their default (randomly seeded, keyed) hashing.
template <template <class...> class MapT>
class DevcacheAdapter {
 public:
  [[nodiscard]] bool read(std::uint64_t k, std::uint64_t& out) const {
    return map_.cvisit(MacAddress::from_u64(k), [&](const std::uint64_t& v) { out = v; });
  }
  bool insert(std::uint64_t k, std::uint64_t v) { return map_.insert(MacAddress::from_u64(k), v); }
  bool remove(std::uint64_t k, std::uint64_t& old) {
    return map_.erase_if(MacAddress::from_u64(k), [&](const std::uint64_t& v) {
      old = v;
      return true;
    });
  }
  bool update(std::uint64_t k) {
    return map_.visit(MacAddress::from_u64(k), [](std::uint64_t& v) { ++v; });
  }
  template <class F>
  void for_each(F&& f) const {
    map_.cvisit_all([&](const MacAddress& k, const std::uint64_t& v) { f(k.to_u64(), v); });
  }
  [[nodiscard]] std::size_t size() const { return map_.size(); }
  MapT<MacAddress, std::uint64_t>& map() { return map_; }

 private:
  MapT<MacAddress, std::uint64_t> map_;
};
using ShardedMapAdapter = DevcacheAdapter<ShardedMap>;
using CuckooMapAdapter = DevcacheAdapter<CuckooMap>;

}  // namespace devcache::bench
