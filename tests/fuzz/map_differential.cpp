// tests/fuzz/map_differential.cpp — differential fuzz target for ShardedMap and CuckooMap.
//
// The input is decoded into a stream of map operations, applied in lockstep to three maps and to a
// std::unordered_map that serves as the reference; every result, and the final contents, must
// match the reference.
//   sharded  ShardedMap<MacAddress, u64> with 1..64 or 512 shards (chosen by the input; 512
//            makes the batch calls sort by shard in two radix passes), fixed seed;
//   weak     ShardedMap with one shard and a deliberately weak Hash (chosen by the input) that maps
//            many keys to one value, so Robin Hood clusters grow past the distance saturation at
//            255 and insert, lookup and backward-shift erase run on long probe chains;
//   cuckoo   CuckooMap<MacAddress, u64>, fixed seed, if the input asks for it. It is slow here: a
//            CuckooMap allocates 2^16 buckets and locks up front, and its whole-table operations
//            (clear, size, snapshot, erase_if(pred), visit_all) take all 2^16 locks and walk 2^18
//            slots, milliseconds under the sanitizers. So one map serves every input (emptied key
//            by key at the end of each), whole-table calls reach it at most 4 times per input
//            (then it gets the equivalent single-key calls), its final check looks every key up,
//            and inputs without it explore ShardedMap much faster.
// Keys come from a small key space (8, 64, 300 or 1024 keys, chosen by the input) so operations
// collide. Every seed is fixed: an input always replays the same way.
//
// Input layout: byte 0 picks the key space (bits 0-1) and the shard count (bits 2-4); byte 1 picks
// the weak hash (bits 0-2) and whether the CuckooMap takes part (bit 3); then each operation is an
// opcode byte followed by its arguments (a key is two bytes, little-endian, taken modulo the key
// space). Missing bytes read as zero.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <devcache/cuckoo_map.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

#include "fuzz_check.hpp"

namespace {

using devcache::HashSeed;
using devcache::MacAddress;
using u64 = std::uint64_t;

constexpr u64 key_prefix = 0x02005e000000;  // a locally administered OUI; key i is prefix | i

MacAddress key_at(u64 index) { return MacAddress::from_u64(key_prefix | index); }
u64 index_of(const MacAddress& key) { return key.to_u64() & 0xffffff; }

// Hashes that map many keys to one value. The map's keyed mixer cannot separate equal hashes, so
// keys with one hash share one home slot.
struct WeakHash {
  unsigned kind = 0;
  std::size_t operator()(const MacAddress& key) const noexcept {
    const u64 i = index_of(key);
    switch (kind) {
      case 0:
        return 7;  // every key collides
      case 1:
        return i >> 2;  // runs of 4
      case 2:
        return i >> 5;  // runs of 32
      case 3:
        return i >> 8;  // runs of 256: clusters just past saturation
      default:
        return i % 3;  // three interleaved groups
    }
  }
};

using Sharded = devcache::ShardedMap<MacAddress, u64>;
using Weak = devcache::ShardedMap<MacAddress, u64, WeakHash>;
using Cuckoo = devcache::CuckooMap<MacAddress, u64>;
using Reference = std::unordered_map<u64, u64>;  // key index -> value

constexpr std::size_t cuckoo_whole_table_budget = 4;  // see Differential::whole_table

constexpr std::array<u64, 4> key_spaces = {8, 64, 300, 1024};

void bump(u64& v) { v = v * 31 + 7; }

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool done() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  u64 u16() {
    const u64 lo = byte();
    return lo | (u64{byte()} << 8);
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Byte 0's bits 2-4: 1, 2, 4, ..., 64 shards, or 512.
std::size_t shard_count_for(std::uint8_t config) {
  const unsigned code = (config >> 2U) & 7U;
  return code == 7 ? 512 : std::size_t{1} << code;
}

class Differential {
 public:
  Differential(Reader& in, Cuckoo& cuckoo)
      : in_(in),
        config_(in.byte()),
        key_space_(key_spaces[config_ & 3U]),
        sharded_(shard_count_for(config_), HashSeed::fixed(0x5eed)),
        options_(in.byte()),
        weak_(1, HashSeed::fixed(0x3eaf), WeakHash{static_cast<unsigned>((options_ & 7U) % 5)}),
        cuckoo_(cuckoo),
        use_cuckoo_((options_ & 8U) != 0) {}

  Differential(const Differential&) = delete;
  Differential& operator=(const Differential&) = delete;

  // Leaves the shared CuckooMap empty for the next input, without locking the whole table: its
  // contents are the reference's (check_contents checked that).
  ~Differential() {
    if (!use_cuckoo_) return;
    for (const auto& kv : ref_) cuckoo_.erase(key_at(kv.first));
  }

  void run() {
    for (std::size_t step = 0; !in_.done(); ++step) {
      step_ = step;
      apply(in_.byte());
    }
    check_contents("final");
  }

 private:
  template <class Map>
  static constexpr bool is_cuckoo(const Map& /*map*/) {
    return std::is_same_v<Map, Cuckoo>;
  }

  // Whether a whole-table call may go to `map`: always for the ShardedMaps, and for the CuckooMap
  // cuckoo_whole_table_budget times per input. Past that, the CuckooMap gets the equivalent
  // single-key calls instead (or, for a call that only checks, nothing).
  template <class Map>
  bool whole_table(const Map& map) {
    if (!is_cuckoo(map)) return true;
    if (cuckoo_whole_table_calls_ == cuckoo_whole_table_budget) return false;
    ++cuckoo_whole_table_calls_;
    return true;
  }

  // Calls f(map) for each map under test.
  template <class F>
  void each(F&& f) {
    f(sharded_);
    f(weak_);
    if (use_cuckoo_) f(cuckoo_);
  }

  void context(const char* op) {
    std::string& c = devcache::fuzz::check_context();
    c = op;
    c += " at step ";
    c += std::to_string(step_);
  }

  u64 key_index() { return in_.u16() % key_space_; }
  u64 value() { return in_.byte(); }

  std::optional<u64> expected(u64 k) const {
    const auto it = ref_.find(k);
    return it == ref_.end() ? std::nullopt : std::optional<u64>(it->second);
  }

  // A batch of up to 300 keys (more than ShardedMap's batch chunk of 256), possibly repeated.
  std::vector<MacAddress> batch(std::vector<u64>& indices) {
    const std::size_t n = 1 + in_.u16() % 300;
    const u64 base = in_.u16();
    std::vector<MacAddress> keys;
    for (std::size_t i = 0; i < n; ++i) {
      indices.push_back((base + in_.byte()) % key_space_);
      keys.push_back(key_at(indices.back()));
    }
    return keys;
  }

  void apply(std::uint8_t opcode) {
    switch (opcode % 24) {
      case 0: {
        context("insert");
        const u64 k = key_index();
        const u64 v = value();
        const bool inserted = !ref_.contains(k);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.insert(key_at(k), v) == inserted); });
        ref_.try_emplace(k, v);
        break;
      }
      case 1: {
        context("insert_or_assign");
        const u64 k = key_index();
        const u64 v = value();
        const bool inserted = !ref_.contains(k);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.insert_or_assign(key_at(k), v) == inserted); });
        ref_.insert_or_assign(k, v);
        break;
      }
      case 2: {
        context("try_emplace");
        const u64 k = key_index();
        const u64 v = value();
        const bool inserted = !ref_.contains(k);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.try_emplace(key_at(k), v) == inserted); });
        ref_.try_emplace(k, v);
        break;
      }
      case 3: {
        context("upsert");
        const u64 k = key_index();
        const u64 v = value();
        const bool inserted = !ref_.contains(k);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.upsert(key_at(k), bump, v) == inserted); });
        const auto [it, added] = ref_.try_emplace(k, v);
        if (!added) bump(it->second);
        break;
      }
      case 4: {
        context("visit");
        const u64 k = key_index();
        const bool present = ref_.contains(k);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.visit(key_at(k), bump) == present); });
        if (present) bump(ref_[k]);
        break;
      }
      case 5: {
        context("cvisit");
        const u64 k = key_index();
        const std::optional<u64> want = expected(k);
        each([&](const auto& m) {
          std::optional<u64> seen;
          DEVCACHE_FUZZ_CHECK(m.cvisit(key_at(k), [&](const u64& v) { seen = v; }) ==
                              want.has_value());
          DEVCACHE_FUZZ_CHECK(seen == want);
        });
        break;
      }
      case 6: {
        context("find");
        const u64 k = key_index();
        const std::optional<u64> want = expected(k);
        each([&](const auto& m) { DEVCACHE_FUZZ_CHECK(m.find(key_at(k)) == want); });
        break;
      }
      case 7: {
        context("contains");
        const u64 k = key_index();
        const bool present = ref_.contains(k);
        each([&](const auto& m) { DEVCACHE_FUZZ_CHECK(m.contains(key_at(k)) == present); });
        break;
      }
      case 8: {
        context("erase");
        const u64 k = key_index();
        const bool present = ref_.erase(k) == 1;
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.erase(key_at(k)) == present); });
        break;
      }
      case 9: {
        context("erase_if(key, pred)");
        const u64 k = key_index();
        const u64 parity = in_.byte() & 1U;
        const auto pred = [parity](const u64& v) { return (v & 1U) == parity; };
        const std::optional<u64> want = expected(k);
        const bool erase = want && pred(*want);
        each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.erase_if(key_at(k), pred) == erase); });
        if (erase) ref_.erase(k);
        break;
      }
      case 10: {
        context("erase_if(pred)");
        const u64 modulus = 1 + in_.byte() % 8;
        const u64 residue = in_.byte() % modulus;
        const auto pred = [=](const MacAddress& key, const u64& v) {
          return (index_of(key) + v) % modulus == residue;
        };
        std::vector<u64> gone;
        for (const auto& [k, v] : ref_) {
          if (pred(key_at(k), v)) gone.push_back(k);
        }
        for (const u64 k : gone) ref_.erase(k);
        each([&](auto& m) {
          if (whole_table(m)) {
            DEVCACHE_FUZZ_CHECK(m.erase_if(pred) == gone.size());
          } else {
            for (const u64 k : gone) DEVCACHE_FUZZ_CHECK(m.erase(key_at(k)));
          }
        });
        break;
      }
      case 11: {
        context("clear");
        each([&](auto& m) {
          if (whole_table(m)) {
            m.clear();
            DEVCACHE_FUZZ_CHECK(m.empty());
          } else {
            for (const auto& kv : ref_) DEVCACHE_FUZZ_CHECK(m.erase(key_at(kv.first)));
          }
        });
        ref_.clear();
        break;
      }
      case 12: {
        context("reserve");
        const std::size_t n = in_.u16() % 4096;
        each([&](auto& m) { m.reserve(n); });
        check_contents("reserve");
        break;
      }
      case 13: {
        context("snapshot");
        check_contents("snapshot", true);
        break;
      }
      case 14: {
        context("size");
        each([&](const auto& m) {
          if (!whole_table(m)) return;
          DEVCACHE_FUZZ_CHECK(m.size() == ref_.size());
          DEVCACHE_FUZZ_CHECK(m.empty() == ref_.empty());
          const std::vector<std::size_t> sizes = m.shard_sizes();
          DEVCACHE_FUZZ_CHECK(sizes.size() == m.shard_count());
          DEVCACHE_FUZZ_CHECK(std::accumulate(sizes.begin(), sizes.end(), std::size_t{0}) ==
                              ref_.size());
        });
        break;
      }
      case 15: {
        context("visit_many");
        std::vector<u64> indices;
        const std::vector<MacAddress> keys = batch(indices);
        std::size_t found = 0;
        for (const u64 k : indices) {
          if (const auto it = ref_.find(k); it != ref_.end()) {
            ++found;
            bump(it->second);
          }
        }
        each([&](auto& m) {
          const std::size_t n = m.visit_many(std::span<const MacAddress>(keys),
                                             [](const MacAddress&, u64& v) { bump(v); });
          DEVCACHE_FUZZ_CHECK(n == found);
        });
        break;
      }
      case 16: {
        context("upsert_many");
        std::vector<u64> indices;
        const std::vector<MacAddress> keys = batch(indices);
        const u64 v = value();
        std::size_t inserted = 0;
        for (const u64 k : indices) {
          const auto [it, added] = ref_.try_emplace(k, v);
          if (added) {
            ++inserted;
          } else {
            bump(it->second);
          }
        }
        each([&](auto& m) {
          const std::size_t n = m.upsert_many(
              std::span<const MacAddress>(keys), [](const MacAddress&, u64& x) { bump(x); }, v);
          DEVCACHE_FUZZ_CHECK(n == inserted);
        });
        break;
      }
      case 17: {
        context("visit_all");
        each([&](auto& m) {
          if (whole_table(m)) {
            m.visit_all([](const MacAddress&, u64& v) { bump(v); });
          } else {
            for (const auto& kv : ref_) DEVCACHE_FUZZ_CHECK(m.visit(key_at(kv.first), bump));
          }
        });
        for (auto& kv : ref_) bump(kv.second);
        break;
      }
      case 18:
      case 19:
      case 20: {
        // A run of consecutive keys: with a weak hash, this is what builds long clusters.
        context("insert run");
        const u64 start = key_index();
        const u64 n = 1 + u64{in_.byte()} * 4;
        for (u64 i = 0; i < n; ++i) {
          const u64 k = (start + i) % key_space_;
          const bool inserted = ref_.try_emplace(k, k).second;
          each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.insert(key_at(k), k) == inserted); });
        }
        break;
      }
      default: {
        // A strided run of erasures: backward-shift erase through long clusters.
        context("erase run");
        const u64 start = key_index();
        const u64 n = 1 + u64{in_.byte()} * 4;
        const u64 stride = 1 + in_.byte() % 4;
        for (u64 i = 0; i < n; ++i) {
          const u64 k = (start + i * stride) % key_space_;
          const bool present = ref_.erase(k) == 1;
          each([&](auto& m) { DEVCACHE_FUZZ_CHECK(m.erase(key_at(k)) == present); });
        }
        break;
      }
    }
  }

  // The whole contents: snapshot() must match the reference, and at the end every key of the key
  // space must be found, or not, as the reference says. `thorough` adds size() and cvisit_all().
  // The CuckooMap's whole-table calls run only when thorough (see the file comment).
  void check_contents(const char* when, bool thorough = false) {
    const bool final = std::string_view(when) == "final";
    context(when);
    std::vector<std::pair<u64, u64>> want(ref_.begin(), ref_.end());
    std::sort(want.begin(), want.end());
    each([&](const auto& m) {
      if (final) {
        for (u64 k = 0; k < key_space_; ++k) DEVCACHE_FUZZ_CHECK(m.find(key_at(k)) == expected(k));
      }
      if (is_cuckoo(m) && !(thorough && whole_table(m))) return;
      std::vector<std::pair<u64, u64>> got;
      for (const auto& [key, v] : m.snapshot()) got.emplace_back(index_of(key), v);
      std::sort(got.begin(), got.end());
      DEVCACHE_FUZZ_CHECK(got == want);
      if (thorough) {
        DEVCACHE_FUZZ_CHECK(m.size() == ref_.size());
        got.clear();
        m.cvisit_all(
            [&](const MacAddress& key, const u64& v) { got.emplace_back(index_of(key), v); });
        std::sort(got.begin(), got.end());
        DEVCACHE_FUZZ_CHECK(got == want);
      }
    });
  }

  Reader& in_;
  std::uint8_t config_;
  u64 key_space_;
  Sharded sharded_;
  std::uint8_t options_;
  Weak weak_;
  Cuckoo& cuckoo_;
  bool use_cuckoo_;
  std::size_t cuckoo_whole_table_calls_ = 0;
  Reference ref_;
  std::size_t step_ = 0;
};

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Cuckoo cuckoo(0, HashSeed::fixed(0xc0c0));
  Reader in(data, size);
  Differential(in, cuckoo).run();
  devcache::fuzz::check_context().clear();
  return 0;
}
