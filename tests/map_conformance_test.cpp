// The typed conformance suite: every map backend (ShardedMap, CuckooMap) must give the same answers
// to the same calls, for several key and value types. Backend-specific behaviour (shard counts,
// Robin Hood saturation in ShardedMap) is tested at the end.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "sanitizers.hpp"

#include <devcache/cuckoo_map.hpp>
#include <devcache/detail/hash_mix.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/hash_seed.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::CuckooMap;
using devcache::HashSeed;
using devcache::MacAddress;
using devcache::ShardedMap;
using u64 = std::uint64_t;

// ---------------------------------------------------------------------------------------------
// Backends, key/value combinations and value factories

struct Sharded {
  template <class K, class V, class H = std::hash<K>, class E = std::equal_to<K>,
            class A = std::allocator<std::pair<const K, V>>>
  using map = ShardedMap<K, V, H, E, A>;
  static constexpr bool sharded = true;
};
struct Cuckoo {
  template <class K, class V, class H = std::hash<K>, class E = std::equal_to<K>,
            class A = std::allocator<std::pair<const K, V>>>
  using map = CuckooMap<K, V, H, E, A>;
  static constexpr bool sharded = false;
};

template <class Backend, class K, class V>
struct Combo {
  using backend = Backend;
  using key = K;
  using value = V;
  using map = typename Backend::template map<K, V>;
};
using ShardedU64U64 = Combo<Sharded, u64, u64>;
using ShardedU64String = Combo<Sharded, u64, std::string>;
using ShardedMacU64 = Combo<Sharded, MacAddress, u64>;
using CuckooU64U64 = Combo<Cuckoo, u64, u64>;
using CuckooU64String = Combo<Cuckoo, u64, std::string>;
using CuckooMacU64 = Combo<Cuckoo, MacAddress, u64>;

#define DEVCACHE_TEST_COMBOS \
  ShardedU64U64, ShardedU64String, ShardedMacU64, CuckooU64U64, CuckooU64String, CuckooMacU64

// make<T>(i): the i-th key or value of type T; distinct i give distinct results.
template <class T>
T make(u64 i);
template <>
u64 make<u64>(u64 i) {
  return i;
}
template <>
std::string make<std::string>(u64 i) {
  // Longer than any small-string buffer, so every value owns heap memory.
  return "a value long enough to live on the heap #" + std::to_string(i);
}
template <>
MacAddress make<MacAddress>(u64 i) {
  return MacAddress::from_u64(i & MacAddress::max_value);
}

// The index i of the key make<K>(i).
u64 contents_key(u64 k) { return k; }
u64 contents_key(MacAddress k) { return k.to_u64(); }

// A number that identifies a value, for predicates.
u64 digest(u64 v) { return v; }
u64 digest(const std::string& v) { return std::hash<std::string>{}(v); }

// bump(v): a different value, as an in-place update would produce.
void bump(u64& v) { ++v; }
void bump(std::string& v) {
  if (v.size() > 80) v.resize(50);
  v += '+';
}

template <class Map>
std::map<u64, typename Map::mapped_type> contents_by_index(const Map& map) {
  // Keys are make<K>(i) with small i; index them by i so the comparison is type-independent.
  std::map<u64, typename Map::mapped_type> out;
  for (auto& [k, v] : map.snapshot()) out.emplace(contents_key(k), std::move(v));
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Unit semantics, one public function (family) at a time

TEMPLATE_TEST_CASE("insert inserts only if absent", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(1));
  CHECK(map.empty());
  CHECK(map.insert(make<K>(1), make<V>(10)));
  CHECK_FALSE(map.insert(make<K>(1), make<V>(11)));
  CHECK(map.find(make<K>(1)) == make<V>(10));
  const V lvalue = make<V>(20);
  CHECK(map.insert(make<K>(2), lvalue));  // copies from an lvalue
  CHECK(lvalue == make<V>(20));
  CHECK(map.size() == 2);
  CHECK_FALSE(map.empty());
}

TEMPLATE_TEST_CASE("insert_or_assign returns true on insert and false on assign", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(2));
  CHECK(map.insert_or_assign(make<K>(5), make<V>(1)));
  CHECK(map.find(make<K>(5)) == make<V>(1));
  CHECK_FALSE(map.insert_or_assign(make<K>(5), make<V>(2)));
  CHECK(map.find(make<K>(5)) == make<V>(2));
  const V lvalue = make<V>(3);
  CHECK_FALSE(map.insert_or_assign(make<K>(5), lvalue));
  CHECK(map.find(make<K>(5)) == make<V>(3));
  CHECK(map.size() == 1);
}

namespace {
// An argument that records whether a Value was built from it.
template <class V>
struct Tracked {
  u64 i;
  bool* used;
  operator V() const {  // NOLINT(google-explicit-constructor): the point of the test
    *used = true;
    return make<V>(i);
  }
};
}  // namespace

TEMPLATE_TEST_CASE("try_emplace and upsert do not use their arguments when the key is present",
                   "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(3));
  bool used = false;
  CHECK(map.try_emplace(make<K>(1), Tracked<V>{7, &used}));
  CHECK(used);
  CHECK(map.find(make<K>(1)) == make<V>(7));

  used = false;
  CHECK_FALSE(map.try_emplace(make<K>(1), Tracked<V>{8, &used}));
  CHECK_FALSE(used);
  CHECK(map.find(make<K>(1)) == make<V>(7));

  // An rvalue passed to a failed insertion is left intact (not moved from). The calls are made
  // outside Catch's macros, which repeat their expression.
  V for_try_emplace = make<V>(9);
  const bool emplaced = map.try_emplace(make<K>(1), std::move(for_try_emplace));
  CHECK_FALSE(emplaced);
  CHECK(for_try_emplace == make<V>(9));  // NOLINT(bugprone-use-after-move): not moved, by contract
  V for_upsert = make<V>(9);
  const bool upserted = map.upsert(
      make<K>(1), [](V&) {}, std::move(for_upsert));
  CHECK_FALSE(upserted);
  CHECK(for_upsert == make<V>(9));  // NOLINT(bugprone-use-after-move)
  V for_insert = make<V>(9);
  const bool inserted = map.insert(make<K>(1), std::move(for_insert));
  CHECK_FALSE(inserted);
  CHECK(for_insert == make<V>(9));  // NOLINT(bugprone-use-after-move)
}

TEMPLATE_TEST_CASE("find and contains", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(4));
  CHECK_FALSE(map.find(make<K>(1)).has_value());
  CHECK_FALSE(map.contains(make<K>(1)));
  for (u64 i = 0; i < 100; ++i) REQUIRE(map.insert(make<K>(i), make<V>(i * 3)));
  for (u64 i = 0; i < 100; ++i) {
    REQUIRE(map.contains(make<K>(i)));
    REQUIRE(map.find(make<K>(i)) == make<V>(i * 3));
  }
  for (u64 i = 100; i < 200; ++i) {
    REQUIRE_FALSE(map.contains(make<K>(i)));
    REQUIRE_FALSE(map.find(make<K>(i)).has_value());
  }
}

TEMPLATE_TEST_CASE("visit and cvisit", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(5));
  int calls = 0;
  CHECK_FALSE(map.visit(make<K>(1), [&](V&) { ++calls; }));
  CHECK_FALSE(map.cvisit(make<K>(1), [&](const V&) { ++calls; }));
  CHECK(calls == 0);

  map.insert(make<K>(1), make<V>(1));
  map.insert(make<K>(2), make<V>(2));
  CHECK(map.visit(make<K>(1), [&](V& v) {
    ++calls;
    v = make<V>(100);
  }));
  CHECK(calls == 1);
  CHECK(map.find(make<K>(1)) == make<V>(100));
  CHECK(map.find(make<K>(2)) == make<V>(2));  // only the visited entry changed

  std::optional<V> seen;
  CHECK(map.cvisit(make<K>(1), [&](const V& v) {
    ++calls;
    seen = v;
  }));
  CHECK(calls == 2);
  CHECK(seen == make<V>(100));

  // A const map offers cvisit, find, contains, cvisit_all, snapshot, size.
  const auto& cmap = map;
  CHECK(cmap.cvisit(make<K>(2), [&](const V& v) { seen = v; }));
  CHECK(seen == make<V>(2));
}

TEMPLATE_TEST_CASE("upsert inserts when absent and updates in place when present", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(6));
  int calls = 0;
  auto f = [&](V& v) {
    ++calls;
    bump(v);
  };
  CHECK(map.upsert(make<K>(1), f, make<V>(10)));
  CHECK(calls == 0);
  CHECK(map.find(make<K>(1)) == make<V>(10));
  CHECK_FALSE(map.upsert(make<K>(1), f, make<V>(99)));
  CHECK(calls == 1);
  V expected = make<V>(10);
  bump(expected);
  CHECK(map.find(make<K>(1)) == expected);
  CHECK(map.size() == 1);

  // A stateful, move-only callback works (the maps must not copy it).
  struct MoveOnly {
    std::unique_ptr<int> count = std::make_unique<int>(0);
    void operator()(V&) { ++*count; }
  };
  MoveOnly mo;
  CHECK_FALSE(map.upsert(make<K>(1), mo, make<V>(0)));
  CHECK_FALSE(map.upsert(make<K>(1), mo, make<V>(0)));
  CHECK(*mo.count == 2);
  CHECK(map.visit(make<K>(1), mo));
  CHECK(*mo.count == 3);
}

TEMPLATE_TEST_CASE("erase and erase_if(key, pred)", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(7));
  CHECK_FALSE(map.erase(make<K>(1)));
  map.insert(make<K>(1), make<V>(1));
  map.insert(make<K>(2), make<V>(2));
  CHECK(map.erase(make<K>(1)));
  CHECK_FALSE(map.erase(make<K>(1)));
  CHECK_FALSE(map.contains(make<K>(1)));
  CHECK(map.size() == 1);

  int calls = 0;
  CHECK_FALSE(map.erase_if(make<K>(3), [&](const V&) {
    ++calls;
    return true;
  }));
  CHECK(calls == 0);  // absent: the predicate is not called

  std::optional<V> seen;
  CHECK_FALSE(map.erase_if(make<K>(2), [&](const V& v) {
    ++calls;
    seen = v;
    return false;
  }));
  CHECK(calls == 1);
  CHECK(seen == make<V>(2));
  CHECK(map.contains(make<K>(2)));

  CHECK(map.erase_if(make<K>(2), [&](const V& v) { return v == make<V>(2); }));
  CHECK_FALSE(map.contains(make<K>(2)));
  CHECK(map.empty());
}

TEMPLATE_TEST_CASE("erase_if(pred) erases exactly the matching entries", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(8));
  CHECK(map.erase_if([](const K&, const V&) { return true; }) == 0);
  for (u64 i = 0; i < 1000; ++i) map.insert(make<K>(i), make<V>(i));
  std::size_t calls = 0;
  const std::size_t erased = map.erase_if([&](const K& k, const V& v) {
    ++calls;
    CHECK(v == make<V>(contents_key(k)));
    return contents_key(k) % 3 == 0;
  });
  CHECK(calls == 1000);  // each entry seen exactly once, even while entries move
  CHECK(erased == 334);
  CHECK(map.size() == 666);
  for (u64 i = 0; i < 1000; ++i) REQUIRE(map.contains(make<K>(i)) == (i % 3 != 0));
  CHECK(map.erase_if([](const K&, const V&) { return true; }) == 666);
  CHECK(map.empty());
}

TEMPLATE_TEST_CASE("visit_all and cvisit_all see every entry once", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(9));
  std::size_t calls = 0;
  map.visit_all([&](const K&, V&) { ++calls; });
  map.cvisit_all([&](const K&, const V&) { ++calls; });
  CHECK(calls == 0);

  for (u64 i = 0; i < 500; ++i) map.insert(make<K>(i), make<V>(i));
  std::vector<u64> seen;
  map.visit_all([&](const K& k, V& v) {
    seen.push_back(contents_key(k));
    CHECK(v == make<V>(contents_key(k)));
    v = make<V>(contents_key(k) + 1000);
  });
  std::sort(seen.begin(), seen.end());
  REQUIRE(seen.size() == 500);
  for (u64 i = 0; i < 500; ++i) REQUIRE(seen[i] == i);

  seen.clear();
  std::as_const(map).cvisit_all([&](const K& k, const V& v) {
    seen.push_back(contents_key(k));
    CHECK(v == make<V>(contents_key(k) + 1000));
  });
  CHECK(seen.size() == 500);
}

TEMPLATE_TEST_CASE("per-shard visitation covers the map and rejects bad indices", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(4, HashSeed::fixed(10));
  for (u64 i = 0; i < 300; ++i) map.insert(make<K>(i), make<V>(i));
  const std::size_t shards = map.shard_count();
  REQUIRE(shards >= 1);

  std::vector<std::size_t> counts(shards);
  std::size_t total = 0;
  for (std::size_t s = 0; s < shards; ++s) {
    std::vector<K> keys;
    map.cvisit_shard(s, [&](const K& k, const V&) { keys.push_back(k); });
    for (const K& k : keys) REQUIRE(map.shard_of(k) == s);  // each key is in its own shard
    map.visit_shard(s, [&](const K&, V& v) { bump(v); });
    counts[s] = keys.size();
    total += counts[s];
  }
  CHECK(total == 300);
  for (u64 i = 0; i < 300; ++i) {
    V expected = make<V>(i);
    bump(expected);
    REQUIRE(map.find(make<K>(i)) == expected);  // visit_shard changed every entry once
  }
  CHECK(map.shard_sizes() == counts);

  // erase_if_shard erases only in its shard.
  const std::size_t victim = map.shard_of(make<K>(0));
  const std::size_t erased = map.erase_if_shard(victim, [](const K&, const V&) { return true; });
  CHECK(erased == counts[victim]);
  CHECK(map.size() == 300 - counts[victim]);
  CHECK_FALSE(map.contains(make<K>(0)));

  auto ignore = [](const K&, const V&) { return false; };
  CHECK_THROWS_AS(map.visit_shard(shards, [](const K&, V&) {}), std::out_of_range);
  CHECK_THROWS_AS(map.cvisit_shard(shards, ignore), std::out_of_range);
  CHECK_THROWS_AS(map.erase_if_shard(shards, ignore), std::out_of_range);
  CHECK_THROWS_AS(map.visit_shard(static_cast<std::size_t>(-1), [](const K&, V&) {}),
                  std::out_of_range);
  CHECK(map.size() == 300 - counts[victim]);
}

TEMPLATE_TEST_CASE("visit_many and upsert_many act on each listed key in turn", "[map][batch]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(30));
  for (u64 i = 0; i < 200; i += 2) map.insert(make<K>(i), make<V>(i));

  // Many chunks' worth of keys, with repeats and absent keys.
  std::vector<K> keys;
  std::map<u64, std::size_t> listed;
  std::mt19937_64 rng(31);
  for (int j = 0; j < 500; ++j) {
    const u64 i = rng() % 200;
    keys.push_back(make<K>(i));
    ++listed[i];
  }
  CHECK(map.visit_many(std::span<const K>(), [](const K&, V&) { FAIL("no keys"); }) == 0);

  std::map<u64, std::size_t> visited;
  const std::size_t found = map.visit_many(std::span<const K>(keys), [&](const K& k, V& v) {
    ++visited[contents_key(k)];
    bump(v);
  });
  std::size_t expected_found = 0;
  for (const auto& [i, n] : listed) {
    if (i % 2 == 0) {
      expected_found += n;
      REQUIRE(visited[i] == n);  // a key listed twice is visited twice
    } else {
      REQUIRE(visited.count(i) == 0);  // absent keys are not visited
    }
  }
  CHECK(found == expected_found);
  for (u64 i = 0; i < 200; i += 2) {
    V expected = make<V>(i);
    for (std::size_t n = listed.count(i) ? listed[i] : 0; n > 0; --n) bump(expected);
    REQUIRE(map.find(make<K>(i)) == expected);
  }

  // upsert_many: the first occurrence of an absent key inserts a copy of the value, every later
  // one (and every present key) is updated in place.
  std::map<u64, V> expected;
  for (const auto& [k, v] : contents_by_index(map)) expected.emplace(k, v);
  std::size_t expected_inserted = 0;
  for (const K& k : keys) {
    const auto [it, inserted] = expected.try_emplace(contents_key(k), make<V>(999));
    if (inserted) {
      ++expected_inserted;
    } else {
      bump(it->second);
    }
  }
  std::size_t calls = 0;
  const std::size_t inserted = map.upsert_many(
      std::span<const K>(keys),
      [&](const K&, V& v) {
        ++calls;
        bump(v);
      },
      make<V>(999));
  CHECK(inserted == expected_inserted);
  CHECK(calls == keys.size() - expected_inserted);
  CHECK(contents_by_index(map) == expected);
  CHECK(map.upsert_many(
            std::span<const K>(), [](const K&, V&) {}, make<V>(0)) == 0);

  // A throwing callback stops the batch; the map stays usable.
  int seen = 0;
  CHECK_THROWS_AS(map.visit_many(std::span<const K>(keys),
                                 [&](const K&, V&) {
                                   if (++seen == 3) throw std::runtime_error("stop");
                                 }),
                  std::runtime_error);
  CHECK(seen == 3);
  CHECK(map.visit(keys.front(), [](V&) {}));
  CHECK(map.size() == expected.size());
}

TEMPLATE_TEST_CASE("snapshot holds exactly the contents", "[map]", DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(11));
  CHECK(map.snapshot().empty());
  std::map<u64, V> expected;
  for (u64 i = 0; i < 700; ++i) {
    map.insert(make<K>(i * 7), make<V>(i));
    expected.emplace(i * 7, make<V>(i));
  }
  for (u64 i = 0; i < 700; i += 5) {
    map.erase(make<K>(i * 7));
    expected.erase(i * 7);
  }
  const auto snap = map.snapshot();
  CHECK(snap.size() == expected.size());
  CHECK(contents_by_index(map) == expected);
}

TEMPLATE_TEST_CASE("size, empty, clear, reserve and allocated_bytes", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  typename TestType::map map(0, HashSeed::fixed(12));
  CHECK(map.size() == 0);
  CHECK(map.empty());
  const std::size_t empty_bytes = map.allocated_bytes();
  CHECK(empty_bytes > 0);

  map.reserve(5000);
  CHECK(map.empty());
  CHECK(map.allocated_bytes() >= empty_bytes);
  map.reserve(300'000);  // more than a new CuckooMap holds
  CHECK(map.empty());
  const std::size_t reserved_bytes = map.allocated_bytes();
  CHECK(reserved_bytes > empty_bytes);
  for (u64 i = 0; i < 5000; ++i) REQUIRE(map.insert(make<K>(i), make<V>(i)));
  CHECK(map.size() == 5000);
  std::size_t sum = 0;
  for (const std::size_t s : map.shard_sizes()) sum += s;
  CHECK(sum == 5000);
  CHECK(map.shard_sizes().size() == map.shard_count());
  CHECK(map.allocated_bytes() >= reserved_bytes);
  map.reserve(10);  // never shrinks below the contents
  CHECK(map.size() == 5000);
  CHECK(map.find(make<K>(4999)) == make<V>(4999));

  map.clear();
  CHECK(map.size() == 0);
  CHECK(map.empty());
  CHECK_FALSE(map.contains(make<K>(1)));
  CHECK(map.snapshot().empty());
  // Usable after clear.
  CHECK(map.insert(make<K>(1), make<V>(1)));
  CHECK(map.size() == 1);
  map.clear();
  map.clear();
  CHECK(map.empty());
}

TEMPLATE_TEST_CASE("seeds: fixed seeds round-trip and reproduce, random seeds differ", "[map]",
                   DEVCACHE_TEST_COMBOS) {
  using K = typename TestType::key;
  using V = typename TestType::value;
  using Map = typename TestType::map;
  Map a(0, HashSeed::fixed(42));
  Map b(0, HashSeed::fixed(42));
  CHECK(a.seed() == HashSeed::fixed(42));
  CHECK(a.seed().value() == 42);
  for (u64 i = 0; i < 2000; ++i) {
    a.insert(make<K>(i), make<V>(i));
    b.insert(make<K>(i), make<V>(i));
  }
  for (u64 i = 0; i < 2000; i += 3) {
    a.erase(make<K>(i));
    b.erase(make<K>(i));
  }
  // The same seed and the same operations lay the table out identically.
  CHECK(a.snapshot() == b.snapshot());
  for (u64 i = 0; i < 2000; ++i) REQUIRE(a.shard_of(make<K>(i)) == b.shard_of(make<K>(i)));

  Map c;
  Map d;
  CHECK(c.seed() != d.seed());
  CHECK(c.seed() != a.seed());

  // The functors are returned by copy.
  CHECK(a.hash_function()(make<K>(3)) == std::hash<K>{}(make<K>(3)));
  CHECK(a.key_eq()(make<K>(3), make<K>(3)));
  static_assert(std::is_same_v<typename Map::key_type, K>);
  static_assert(std::is_same_v<typename Map::mapped_type, V>);
  static_assert(std::is_same_v<typename Map::value_type, std::pair<const K, V>>);
  static_assert(std::is_same_v<typename Map::hasher, std::hash<K>>);
  static_assert(std::is_same_v<typename Map::key_equal, std::equal_to<K>>);
  static_assert(
      std::is_same_v<typename Map::allocator_type, std::allocator<std::pair<const K, V>>>);
  static_assert(std::is_same_v<typename Map::size_type, std::size_t>);
}

// ---------------------------------------------------------------------------------------------
// Randomized differential run against std::unordered_map: every result is checked.

namespace {

// Reports the first mismatch with the operation number and key index.
#define DEVCACHE_SAME(got, want)                        \
  do {                                                  \
    if (!((got) == (want))) {                           \
      INFO("operation " << n << " on key index " << i); \
      REQUIRE((got) == (want));                         \
    }                                                   \
  } while (false)

template <class Map>
void run_differential(Map& map, u64 ops, u64 key_count, u64 seed) {
  using K = typename Map::key_type;
  using V = typename Map::mapped_type;
  std::unordered_map<u64, V> ref;
  std::mt19937_64 rng(seed);
  std::uint64_t n = 0;
  std::uint64_t i = 0;
  auto check_all = [&] {
    REQUIRE(map.size() == ref.size());
    const auto contents = contents_by_index(map);
    REQUIRE(contents.size() == ref.size());  // no duplicate keys
    for (const auto& [k, v] : contents) {
      const auto it = ref.find(k);
      REQUIRE(it != ref.end());
      REQUIRE(it->second == v);
    }
  };
  for (n = 0; n < ops; ++n) {
    i = rng() % key_count;
    const K key = make<K>(i);
    const u64 r = rng() % 100;
    const V value = make<V>(rng() % 1000);
    if (r < 14) {
      DEVCACHE_SAME(map.insert(key, value), ref.try_emplace(i, value).second);
    } else if (r < 22) {
      DEVCACHE_SAME(map.insert_or_assign(key, value), ref.insert_or_assign(i, value).second);
    } else if (r < 30) {
      DEVCACHE_SAME(map.try_emplace(key, value), ref.try_emplace(i, value).second);
    } else if (r < 44) {
      const auto it = ref.find(i);
      DEVCACHE_SAME(map.find(key),
                    (it == ref.end() ? std::optional<V>() : std::optional<V>(it->second)));
    } else if (r < 50) {
      DEVCACHE_SAME(map.contains(key), ref.count(i) == 1);
    } else if (r < 58) {
      const auto it = ref.find(i);
      DEVCACHE_SAME(map.visit(key, [](V& v) { bump(v); }), it != ref.end());
      if (it != ref.end()) bump(it->second);
    } else if (r < 63) {
      const auto it = ref.find(i);
      std::optional<V> seen;
      DEVCACHE_SAME(map.cvisit(key, [&](const V& v) { seen = v; }), it != ref.end());
      if (it != ref.end()) DEVCACHE_SAME(seen, std::optional<V>(it->second));
    } else if (r < 73) {
      const auto [it, inserted] = ref.try_emplace(i, value);
      if (!inserted) bump(it->second);
      DEVCACHE_SAME(map.upsert(
                        key, [](V& v) { bump(v); }, value),
                    inserted);
    } else if (r < 85) {
      DEVCACHE_SAME(map.erase(key), ref.erase(i) == 1);
    } else if (r < 97) {
      const auto it = ref.find(i);
      const bool erase = it != ref.end() && digest(it->second) % 2 == 1;
      DEVCACHE_SAME(map.erase_if(key, [](const V& v) { return digest(v) % 2 == 1; }), erase);
      if (erase) ref.erase(it);
    } else if (r < 98 && n % 32 == 0) {
      // A whole-map erase of a small pseudo-random subset (rarely: CuckooMap locks 2^16 locks).
      const u64 residue = rng() % 251;
      std::size_t expected = 0;
      for (auto it = ref.begin(); it != ref.end();) {
        if (it->first % 251 == residue) {
          it = ref.erase(it);
          ++expected;
        } else {
          ++it;
        }
      }
      DEVCACHE_SAME(
          map.erase_if([&](const K& k, const V&) { return contents_key(k) % 251 == residue; }),
          expected);
    } else if (r < 99 && n % 16 == 1) {
      // Batches of a few keys (with possible repeats).
      std::vector<K> batch;
      std::vector<u64> indices;
      for (int j = 0; j < 6; ++j) {
        indices.push_back(rng() % key_count);
        batch.push_back(make<K>(indices.back()));
      }
      if (rng() % 2 == 0) {
        std::size_t expected = 0;
        for (const u64 idx : indices) {
          const auto it = ref.find(idx);
          if (it != ref.end()) {
            ++expected;
            bump(it->second);
          }
        }
        DEVCACHE_SAME(map.visit_many(std::span<const K>(batch), [](const K&, V& v) { bump(v); }),
                      expected);
      } else {
        std::size_t expected = 0;
        for (const u64 idx : indices) {
          const auto [it, inserted] = ref.try_emplace(idx, value);
          if (inserted) {
            ++expected;
          } else {
            bump(it->second);
          }
        }
        DEVCACHE_SAME(map.upsert_many(
                          std::span<const K>(batch), [](const K&, V& v) { bump(v); }, value),
                      expected);
      }
    } else if (n % 32 == 0) {
      DEVCACHE_SAME(map.size(), ref.size());
    }
    if (n % 50000 == 0) check_all();
  }
  check_all();
}

constexpr u64 differential_ops = devcache::test::sanitized ? 100'000 : 200'000;

}  // namespace

TEMPLATE_TEST_CASE("randomized differential run against std::unordered_map", "[map][differential]",
                   DEVCACHE_TEST_COMBOS) {
  typename TestType::map map(0, HashSeed::fixed(0xD1FF));
  run_differential(map, differential_ops, 5000, 1234);
}

TEMPLATE_TEST_CASE("randomized differential run with one shard and a random seed",
                   "[map][differential]", ShardedU64U64, CuckooU64String) {
  typename TestType::map map(1);
  INFO("seed " << map.seed().value());
  run_differential(map, differential_ops / 4, 300, 99);
}

// ---------------------------------------------------------------------------------------------
// Exception safety (per backend)

namespace {

struct CopyError {};
struct HashError {};
struct Boom {};

// A value whose copies throw on demand; moves never throw (the maps require that).
struct Fragile {
  static inline bool throw_on_copy = false;
  // Throws at the copy_countdown-th copy (construction or assignment) from now (0: the next); -1
  // never.
  static inline long copy_countdown = -1;
  static void maybe_throw() {
    if (throw_on_copy || (copy_countdown >= 0 && copy_countdown-- == 0)) throw CopyError{};
  }
  u64 v = 0;
  explicit Fragile(u64 x) : v(x) {}
  Fragile(const Fragile& other) : v(other.v) { maybe_throw(); }
  Fragile(Fragile&&) noexcept = default;
  Fragile& operator=(const Fragile& other) {
    maybe_throw();
    v = other.v;
    return *this;
  }
  Fragile& operator=(Fragile&&) noexcept = default;
  ~Fragile() = default;
  friend bool operator==(const Fragile&, const Fragile&) = default;
};

// Clears Fragile::throw_on_copy however the test ends.
struct NoThrowOnExit {
  NoThrowOnExit() = default;
  NoThrowOnExit(const NoThrowOnExit&) = delete;
  NoThrowOnExit& operator=(const NoThrowOnExit&) = delete;
  ~NoThrowOnExit() {
    Fragile::throw_on_copy = false;
    Fragile::copy_countdown = -1;
  }
};

// A hash that throws at its countdown-th call from now (countdown 0: the next call); -1 never.
struct CountdownHash {
  static inline long countdown = -1;
  std::size_t operator()(u64 k) const {
    if (countdown >= 0 && countdown-- == 0) throw HashError{};
    return std::hash<u64>{}(k);
  }
};

struct DisarmOnExit {
  DisarmOnExit() = default;
  DisarmOnExit(const DisarmOnExit&) = delete;
  DisarmOnExit& operator=(const DisarmOnExit&) = delete;
  ~DisarmOnExit() { CountdownHash::countdown = -1; }
};

template <class Map>
void require_contents(const Map& map, u64 count) {
  // Exactly keys 0..count-1, each with value == key.
  REQUIRE(map.size() == count);
  std::vector<u64> keys;
  map.cvisit_all([&](const u64& k, const auto& v) {
    keys.push_back(k);
    REQUIRE(v == typename Map::mapped_type(k));
  });
  std::sort(keys.begin(), keys.end());
  REQUIRE(keys.size() == count);
  for (u64 i = 0; i < count; ++i) REQUIRE(keys[i] == i);
}

}  // namespace

TEMPLATE_TEST_CASE("a throwing Value copy leaves the map unchanged and usable", "[map][exception]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, Fragile>;
  const NoThrowOnExit guard;
  Map map(1, HashSeed::fixed(13));  // one shard, so it grows often
  constexpr u64 count = 600;
  for (u64 i = 0; i < count; ++i) {
    const Fragile value(i);
    Fragile::throw_on_copy = true;
    REQUIRE_THROWS_AS(map.insert(i, value), CopyError);
    REQUIRE_THROWS_AS(map.try_emplace(i, value), CopyError);
    REQUIRE_THROWS_AS(map.insert_or_assign(i, value), CopyError);
    REQUIRE_THROWS_AS(map.upsert(
                          i, [](Fragile&) { FAIL("not present"); }, value),
                      CopyError);
    Fragile::throw_on_copy = false;
    REQUIRE_FALSE(map.contains(i));
    if (i % 100 == 0) REQUIRE(map.size() == i);  // (CuckooMap's size() locks 2^16 locks)
    REQUIRE(map.insert(i, value));
  }
  require_contents(map, count);

  // Copies out of the map throw too; the locks are released and nothing changes.
  Fragile::throw_on_copy = true;
  REQUIRE_THROWS_AS(map.find(7), CopyError);
  REQUIRE_THROWS_AS(map.snapshot(), CopyError);
  Fragile::throw_on_copy = false;
  REQUIRE(map.find(7) == Fragile(7));
  REQUIRE(map.visit(7, [](Fragile& f) { f.v = 7; }));
  REQUIRE(map.snapshot().size() == count);
  require_contents(map, count);
}

TEMPLATE_TEST_CASE("a throwing callback releases the lock and leaves the map usable",
                   "[map][exception]", Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64>;
  Map map(0, HashSeed::fixed(14));
  for (u64 i = 0; i < 100; ++i) map.insert(i, i);
  const u64 k = 42;
  auto same_key_works = [&] {
    REQUIRE(map.visit(k, [](u64&) {}));
    REQUIRE(map.find(k) == k);
    REQUIRE(map.cvisit(k, [](const u64&) {}));
    REQUIRE(map.snapshot().size() == map.size());  // every lock is free
  };

  REQUIRE_THROWS_AS(map.visit(k,
                              [](u64& v) {
                                v = 1000;  // kept: a throwing callback keeps what it changed
                                throw Boom{};
                              }),
                    Boom);
  REQUIRE(map.find(k) == 1000u);
  map.insert_or_assign(k, k);
  same_key_works();

  REQUIRE_THROWS_AS(map.cvisit(k, [](const u64&) { throw Boom{}; }), Boom);
  same_key_works();

  REQUIRE_THROWS_AS(map.upsert(
                        k, [](u64&) { throw Boom{}; }, u64{0}),
                    Boom);
  same_key_works();

  REQUIRE_THROWS_AS(map.erase_if(k, [](const u64&) -> bool { throw Boom{}; }), Boom);
  REQUIRE(map.contains(k));  // nothing erased
  same_key_works();

  int seen = 0;
  REQUIRE_THROWS_AS(map.visit_all([&](const u64&, u64&) {
    if (++seen == 10) throw Boom{};
  }),
                    Boom);
  same_key_works();

  REQUIRE_THROWS_AS(map.cvisit_all([](const u64&, const u64&) { throw Boom{}; }), Boom);
  same_key_works();

  REQUIRE_THROWS_AS(map.visit_shard(map.shard_of(k), [](const u64&, u64&) { throw Boom{}; }), Boom);
  same_key_works();
  REQUIRE_THROWS_AS(map.cvisit_shard(map.shard_of(k), [](const u64&, const u64&) { throw Boom{}; }),
                    Boom);
  same_key_works();

  // erase_if(pred): entries erased before the throw stay erased.
  std::size_t erased_before_throw = 0;
  REQUIRE_THROWS_AS(map.erase_if([&](const u64& key, const u64&) {
    if (key == k) return false;
    if (erased_before_throw == 20) throw Boom{};
    ++erased_before_throw;
    return true;
  }),
                    Boom);
  REQUIRE(erased_before_throw == 20);
  REQUIRE(map.size() == 80);
  same_key_works();

  REQUIRE_THROWS_AS(
      map.erase_if_shard(map.shard_of(k), [](const u64&, const u64&) -> bool { throw Boom{}; }),
      Boom);
  same_key_works();
  REQUIRE(map.size() == map.snapshot().size());
  REQUIRE(map.insert(1000, u64{1}));
}

TEMPLATE_TEST_CASE("a throwing Hash leaves the map unchanged and usable", "[map][exception]",
                   Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64, CountdownHash>;
  const DisarmOnExit guard;
  Map map(1, HashSeed::fixed(15));
  for (u64 i = 0; i < 50; ++i) map.insert(i, i);

  auto throws_now = [&](auto&& op) {
    CountdownHash::countdown = 0;
    REQUIRE_THROWS_AS(op(), HashError);
    CountdownHash::countdown = -1;
    require_contents(map, 50);
  };
  throws_now([&] { return map.insert(100, u64{100}); });
  throws_now([&] { return map.insert_or_assign(1, u64{100}); });
  throws_now([&] { return map.try_emplace(100, u64{100}); });
  throws_now([&] {
    return map.upsert(
        1, [](u64& v) { v = 100; }, u64{100});
  });
  throws_now([&] { return map.find(1); });
  throws_now([&] { return map.contains(1); });
  throws_now([&] { return map.visit(1, [](u64& v) { v = 100; }); });
  throws_now([&] { return map.cvisit(1, [](const u64&) {}); });
  throws_now([&] { return map.erase(1); });
  throws_now([&] { return map.erase_if(1, [](const u64&) { return true; }); });
  if constexpr (TestType::sharded) throws_now([&] { return map.shard_of(1); });
}

TEMPLATE_TEST_CASE("a Hash that throws while the table grows leaves the map unchanged",
                   "[map][exception]", Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64, CountdownHash>;
  const DisarmOnExit guard;
  Map map(1, HashSeed::fixed(16));  // one shard: all keys share one table, which grows often
  // Enough keys to grow the table several times (a new CuckooMap has room for 2^18).
  const u64 count = TestType::sharded ? 2000 : 300'000;
  const std::size_t bytes_before = map.allocated_bytes();
  std::size_t throws_after_first_call = 0;
  for (u64 i = 0; i < count; ++i) {
    // Let the k-th hash call of this insert throw, for k = 1, 2, 4, ... until the insert makes
    // fewer calls than that and succeeds.
    for (long k = 1;; k *= 2) {
      CountdownHash::countdown = k - 1;
      bool inserted = false;
      try {
        inserted = map.insert(i, i);
      } catch (const HashError&) {
        CountdownHash::countdown = -1;
        if (k > 1) {
          // Growth (or a cuckoo move) hashed stored keys and threw: check everything.
          ++throws_after_first_call;
          require_contents(map, i);
        } else {
          // (Plain ifs: hundreds of thousands of Catch assertions would dominate the run time.)
          if (map.contains(i)) FAIL("key " << i << " inserted although its hash threw");
          if (i % 50000 == 0) REQUIRE(map.size() == i);
        }
        continue;
      }
      CountdownHash::countdown = -1;
      if (!inserted) FAIL("key " << i << " was not inserted");
      break;
    }
  }
  require_contents(map, count);
  CHECK(map.allocated_bytes() > bytes_before);  // it did grow
  if constexpr (TestType::sharded) {
    // ShardedMap rehashes stored keys when a shard grows.
    CHECK(throws_after_first_call > 0);
  } else {
    // CuckooMap stores the hash of a key whose Hash may throw: libcuckoo never calls Hash.
    CHECK(throws_after_first_call == 0);
  }
}

namespace {

// An allocator that counts its allocations and fails those above a size on demand.
struct AllocationControl {
  static inline std::size_t count = 0;
  static inline std::size_t fail_above = static_cast<std::size_t>(-1);  // bytes
  // Fails the countdown-th allocation from now (0: the next); -1 never.
  static inline long countdown = -1;
};
struct AllowAllOnExit {
  AllowAllOnExit() = default;
  AllowAllOnExit(const AllowAllOnExit&) = delete;
  AllowAllOnExit& operator=(const AllowAllOnExit&) = delete;
  ~AllowAllOnExit() {
    AllocationControl::fail_above = static_cast<std::size_t>(-1);
    AllocationControl::countdown = -1;
  }
};
template <class T>
struct TestAllocator {
  using value_type = T;
  TestAllocator() = default;
  template <class U>
  TestAllocator(const TestAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
  T* allocate(std::size_t n) {
    ++AllocationControl::count;
    if (n * sizeof(T) > AllocationControl::fail_above) throw std::bad_alloc();
    if (AllocationControl::countdown >= 0 && AllocationControl::countdown-- == 0) {
      throw std::bad_alloc();
    }
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const TestAllocator<U>&) const noexcept {
    return true;
  }
};
using TestAlloc = TestAllocator<std::pair<const u64, u64>>;

}  // namespace

TEMPLATE_TEST_CASE("the Allocator is used", "[map]", Sharded, Cuckoo) {
  using Map = typename TestType::template map<u64, u64, std::hash<u64>, std::equal_to<>, TestAlloc>;
  static_assert(std::is_same_v<typename Map::allocator_type, TestAlloc>);
  const std::size_t before = AllocationControl::count;
  Map map(0, HashSeed::fixed(22), std::hash<u64>(), std::equal_to<>(), TestAlloc());
  for (u64 i = 0; i < 1000; ++i) map.insert(i, i);
  CHECK(AllocationControl::count > before);
  require_contents(map, 1000);
}

TEST_CASE("ShardedMap: a failed allocation while a shard grows leaves the map unchanged",
          "[sharded_map][exception]") {
  const AllowAllOnExit guard;
  ShardedMap<u64, u64, std::hash<u64>, std::equal_to<>, TestAlloc> map(1, HashSeed::fixed(23));
  AllocationControl::fail_above = std::size_t{64} * 1024;  // a table of a few thousand slots
  u64 i = 0;
  REQUIRE_THROWS_AS(
      [&] {
        for (;; ++i) map.insert(i, i);
      }(),
      std::bad_alloc);
  REQUIRE(i > 1000);
  require_contents(map, i);
  AllocationControl::fail_above = static_cast<std::size_t>(-1);
  for (u64 j = i; j < 2 * i; ++j) REQUIRE(map.insert(j, j));
  require_contents(map, 2 * i);
}

namespace {

// Which kind of failure an exhaustive run injects: the k-th allocation of the map's allocator,
// the k-th copy of a Value, or the k-th call of a callback.
enum class Fault : std::uint8_t { allocation, value_copy, callback };

struct CallbackControl {
  static inline long countdown = -1;
  static void maybe_throw() {
    if (countdown >= 0 && countdown-- == 0) throw Boom{};
  }
};

void disarm_all() {
  AllocationControl::countdown = -1;
  Fragile::copy_countdown = -1;
  CallbackControl::countdown = -1;
}

struct DisarmAllOnExit {
  DisarmAllOnExit() = default;
  DisarmAllOnExit(const DisarmAllOnExit&) = delete;
  DisarmAllOnExit& operator=(const DisarmAllOnExit&) = delete;
  ~DisarmAllOnExit() { disarm_all(); }
};

using FaultyMap = ShardedMap<u64, Fragile, std::hash<u64>, std::equal_to<>,
                             TestAllocator<std::pair<const u64, Fragile>>>;

// Checks that `map` is consistent (size() agrees with a visit of every entry and with a
// snapshot, and every visited key is found with its value) and returns its contents.
std::map<u64, u64> consistent_contents(FaultyMap& map) {
  std::map<u64, u64> visited;
  u64 visits = 0;
  map.visit_all([&](const u64& k, Fragile& v) {
    ++visits;
    visited.emplace(k, v.v);
  });
  REQUIRE(visits == visited.size());  // no key twice
  REQUIRE(map.size() == visits);
  REQUIRE(map.snapshot().size() == visits);
  u64 unfindable = 0;  // (one assertion, not thousands: this runs after every injected fault)
  for (const auto& [k, v] : visited) {
    const std::optional<Fragile> found = map.find(k);
    unfindable += found.has_value() && found->v == v ? 0 : 1;
  }
  REQUIRE(unfindable == 0);
  return visited;
}

// Eight distinct keys below 64 (a batch with a repeated key could stop between its two visits).
std::vector<u64> distinct_keys(std::mt19937_64& rng) {
  std::vector<u64> keys;
  while (keys.size() < 8) {
    const u64 k = rng() % 64;
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  return keys;
}

// One scripted run: 250 operations of every kind on 64 keys, with a reference std::map. The
// fault armed before the run fires (at most once) somewhere in it; the operation that throws must
// then leave the map as its documented guarantee says: unchanged for single-key operations,
// reserve and the copies out (find, snapshot); for a batch, each key of the batch either
// untouched or done. The run then goes on, and at the end the map must equal the reference and
// still work. Returns whether the fault fired.
bool scripted_run(Fault fault, long k) {
  FaultyMap map(2, HashSeed::fixed(31));
  std::map<u64, u64> ref;
  std::mt19937_64 rng(4242);
  switch (fault) {
    case Fault::allocation:
      AllocationControl::countdown = k;
      break;
    case Fault::value_copy:
      Fragile::copy_countdown = k;
      break;
    case Fault::callback:
      CallbackControl::countdown = k;
      break;
  }
  bool fired = false;
  const auto bump = [](u64& v) { v += 1000; };
  for (int op = 0; op < 250; ++op) {
    const u64 key = rng() % 64;
    const Fragile value(key);
    const int kind = static_cast<int>(rng() % 11);
    std::map<u64, u64> expected_if_done = ref;  // the reference if the operation completes
    std::vector<u64> batch;                     // keys a batch call may leave half done
    bool threw = false;
    try {
      switch (kind) {
        case 0:
          expected_if_done.try_emplace(key, key);
          map.insert(key, value);
          break;
        case 1:
          expected_if_done[key] = key;
          map.insert_or_assign(key, value);
          break;
        case 2:
          expected_if_done.try_emplace(key, key);
          map.try_emplace(key, value);
          break;
        case 3: {
          const auto [it, inserted] = expected_if_done.try_emplace(key, key);
          if (!inserted) bump(it->second);
          map.upsert(
              key,
              [&](Fragile& f) {
                CallbackControl::maybe_throw();
                bump(f.v);
              },
              value);
          break;
        }
        case 4:
          expected_if_done.erase(key);
          map.erase(key);
          break;
        case 5: {
          const std::optional<Fragile> found = map.find(key);
          REQUIRE(found.has_value() == (ref.count(key) == 1));
          if (found) REQUIRE(found->v == ref.at(key));
          break;
        }
        case 6: {
          const auto snap = map.snapshot();
          REQUIRE(snap.size() == ref.size());
          break;
        }
        case 7: {
          batch = distinct_keys(rng);
          for (const u64 b : batch) {
            const auto [it, inserted] = expected_if_done.try_emplace(b, 0);
            if (!inserted) bump(it->second);
          }
          map.upsert_many(
              std::span<const u64>(batch),
              [&](const u64&, Fragile& f) {
                CallbackControl::maybe_throw();
                bump(f.v);
              },
              Fragile(0));
          break;
        }
        case 8: {
          batch = distinct_keys(rng);
          for (const u64 b : batch) {
            if (const auto it = expected_if_done.find(b); it != expected_if_done.end()) {
              bump(it->second);
            }
          }
          map.visit_many(std::span<const u64>(batch), [&](const u64&, Fragile& f) {
            CallbackControl::maybe_throw();
            bump(f.v);
          });
          break;
        }
        case 9:
          map.reserve(ref.size() + 40);
          break;
        default: {
          const u64 residue = rng() % 5;
          std::erase_if(expected_if_done, [&](const auto& kv) { return kv.first % 5 == residue; });
          map.erase_if([&](const u64& k2, const Fragile&) {
            CallbackControl::maybe_throw();
            return k2 % 5 == residue;
          });
          break;
        }
      }
      ref = expected_if_done;
    } catch (const std::bad_alloc&) {
      REQUIRE(fault == Fault::allocation);
      threw = true;
    } catch (const CopyError&) {
      REQUIRE(fault == Fault::value_copy);
      threw = true;
    } catch (const Boom&) {
      REQUIRE(fault == Fault::callback);
      threw = true;
    }
    if (threw) {
      // The fault fired here (once: its countdown is spent): check the guarantee, then adopt the
      // map's state as the reference.
      REQUIRE_FALSE(fired);
      fired = true;
      disarm_all();
      const std::map<u64, u64> actual = consistent_contents(map);
      if (kind == 7 || kind == 8 || kind == 10) {
        // A batch or a sweep: each key either as before or as done; nothing else changed.
        std::vector<u64> keys;
        keys.reserve(ref.size() + expected_if_done.size());
        for (const auto& [k2, v] : ref) keys.push_back(k2);
        for (const auto& [k2, v] : expected_if_done) keys.push_back(k2);
        for (const u64 k2 : keys) {
          const auto a = actual.find(k2);
          const auto before = ref.find(k2);
          const auto after = expected_if_done.find(k2);
          const bool as_before = (a == actual.end()) == (before == ref.end()) &&
                                 (a == actual.end() || a->second == before->second);
          const bool as_after = (a == actual.end()) == (after == expected_if_done.end()) &&
                                (a == actual.end() || a->second == after->second);
          INFO("key " << k2 << ", operation " << kind << ", k " << k);
          REQUIRE((as_before || as_after));
        }
        for (const auto& [k2, v] : actual) {
          REQUIRE((ref.count(k2) == 1 || expected_if_done.count(k2) == 1));
        }
        ref = actual;
      } else {
        INFO("operation " << kind << ", k " << k);
        REQUIRE(actual == ref);  // strong guarantee: unchanged
      }
    }
  }
  disarm_all();
  REQUIRE(consistent_contents(map) == ref);
  // Still usable: fresh keys go in and come out, every key can be erased.
  u64 failed = 0;
  for (u64 i = 100; i < 200; ++i) failed += map.insert(i, Fragile(i)) ? 0 : 1;
  for (u64 i = 100; i < 200; ++i) failed += map.find(i) == Fragile(i) ? 0 : 1;
  for (const auto& [k2, v] : ref) failed += map.erase(k2) ? 0 : 1;
  REQUIRE(failed == 0);
  REQUIRE(map.size() == 100);
  return fired;
}

}  // namespace

// The fault-injection counterpart of the tests above, exhaustive: for every k, the k-th allocation
// (or Value copy, or callback call) of a scripted run throws. ShardedMap only: CuckooMap cannot
// survive a failed allocation while it grows (the libcuckoo bug below).
TEST_CASE("ShardedMap: a fault at every possible point of a run leaves it consistent and usable",
          "[sharded_map][exception]") {
  const AllowAllOnExit allow;
  const NoThrowOnExit no_throw;
  const DisarmAllOnExit disarm;
  const Fault fault = GENERATE(Fault::allocation, Fault::value_copy, Fault::callback);
  CAPTURE(static_cast<int>(fault));
  long k = 0;
  while (scripted_run(fault, k)) ++k;
  // k is now the number of points at which the fault could fire (the first run it did not).
  WARN("fault " << static_cast<int>(fault) << " injected at each of " << k << " points");
  CHECK(k > 5);  // at least a few injection points (measured: 12 allocations, ~1,000 copies)
}

namespace {
template <class K, class V>
using AllocFaultyMap =
    ShardedMap<K, V, std::hash<K>, std::equal_to<K>, TestAllocator<std::pair<const K, V>>>;
}  // namespace

// The same for a DeviceCache over ShardedMap with the failing allocator: an add whose map
// allocation fails stores nothing, counts nothing, and gives its capacity reservation back.
TEST_CASE("DeviceCache: an allocation failing at every possible point keeps it exact",
          "[device_cache][exception]") {
  const AllowAllOnExit allow;
  const auto policy = GENERATE(devcache::CapacityPolicy::refuse_new,
                               devcache::CapacityPolicy::evict_least_recently_seen);
  CAPTURE(policy);
  constexpr std::size_t capacity = 60;
  const auto mac = [](u64 n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); };
  const auto ip = devcache::IpAddress::from_v4(0x0a000001U);
  long k = 0;
  for (bool fired = true; fired; ++k) {
    devcache::DeviceCacheOptions options;
    options.shard_count = 2;
    options.hash_seed = HashSeed::fixed(32);
    options.capacity = capacity;
    options.capacity_policy = policy;
    devcache::DeviceCache<AllocFaultyMap> cache(options);
    AllocationControl::countdown = k;
    fired = false;
    u64 adds = 0;
    u64 removals = 0;
    for (u64 i = 0; i < 150; ++i) {
      const u64 n = i % 90;
      try {
        const devcache::AddResult r = cache.add_device_entry("d", mac(n), ip);
        adds += r.outcome == devcache::AddOutcome::inserted ? 1 : 0;
      } catch (const std::bad_alloc&) {
        fired = true;
        REQUIRE_FALSE(cache.get_device_entry_by_mac(mac(n)).has_value());
      }
      if (i % 7 == 3) cache.record_heartbeat(mac(n / 2));
      if (i % 11 == 5 && cache.remove_device(mac(n / 3))) ++removals;
    }
    AllocationControl::countdown = -1;
    const devcache::CacheStats s = cache.get_cache_stats();
    REQUIRE(s.adds == adds);
    REQUIRE(s.removals == removals);
    REQUIRE(s.entries == s.adds - s.removals - s.evictions);
    REQUIRE(cache.get_cache_snapshot().size() == s.entries);
    // The reservation count is exact: exactly capacity - entries more devices fit.
    const std::size_t room = capacity - s.entries;
    for (u64 n = 0; n < room; ++n) {
      REQUIRE(cache.add_device_entry("fill", mac(1000 + n), ip) ==
              devcache::AddResult{devcache::AddOutcome::inserted, 0});
    }
    const devcache::AddResult next = cache.add_device_entry("over", mac(2000), ip);
    if (policy == devcache::CapacityPolicy::refuse_new) {
      REQUIRE(next.outcome == devcache::AddOutcome::refused_full);
    } else {
      REQUIRE(next.outcome == devcache::AddOutcome::inserted);
      REQUIRE(next.evicted >= 1);
    }
    REQUIRE(cache.size() == capacity);
  }
  WARN("allocation failure injected at each of " << k - 1 << " points");
  CHECK(k > 5);
}

// KNOWN BUG in libcuckoo 0.3.1, hidden ([.]) because it crashes: cuckoo_fast_double swaps its
// bucket array out before it allocates the larger one, so a std::bad_alloc there leaves a null
// bucket array behind and the next operation dereferences it. Run it by name to see.
TEST_CASE("BUG (libcuckoo): CuckooMap is unusable after a failed allocation while it grows",
          "[.][cuckoo_map][exception][known-bug]") {
  const AllowAllOnExit guard;
  CuckooMap<u64, u64, std::hash<u64>, std::equal_to<>, TestAlloc> map(0, HashSeed::fixed(24));
  AllocationControl::fail_above =
      std::size_t{5} * 1024 * 1024;  // the 2^16-bucket table fits, 2^17 does not
  u64 i = 0;
  REQUIRE_THROWS_AS(
      [&] {
        for (;; ++i) map.insert(i, i);
      }(),
      std::bad_alloc);
  AllocationControl::fail_above = static_cast<std::size_t>(-1);
  CHECK(map.contains(0));  // crashes (null bucket array)
  require_contents(map, i);
}

// ---------------------------------------------------------------------------------------------
// Backend-specific behaviour

TEST_CASE("ShardedMap rounds the shard count up to a power of two", "[sharded_map]") {
  CHECK(ShardedMap<u64, u64>(1).shard_count() == 1);
  CHECK(ShardedMap<u64, u64>(5).shard_count() == 8);
  CHECK(ShardedMap<u64, u64>(8).shard_count() == 8);
  CHECK(ShardedMap<u64, u64>(9).shard_count() == 16);
  CHECK(ShardedMap<u64, u64>(0).shard_count() == devcache::default_shard_count());
  CHECK(ShardedMap<u64, u64>().shard_count() == devcache::default_shard_count());
  CHECK(ShardedMap<u64, u64>(devcache::max_shard_count).shard_count() == devcache::max_shard_count);
  using Map = ShardedMap<u64, u64>;
  CHECK_THROWS_AS(Map(devcache::max_shard_count + 1), std::invalid_argument);
  const std::size_t d = devcache::default_shard_count();
  CHECK(d >= 64);
  CHECK(d <= 1024);
  CHECK((d & (d - 1)) == 0);
  ShardedMap<u64, u64> map(5);
  for (u64 i = 0; i < 1000; ++i) REQUIRE(map.shard_of(i) < 8);
  CHECK(map.shard_sizes().size() == 8);
}

TEST_CASE("CuckooMap accepts and ignores the shard count", "[cuckoo_map]") {
  CHECK(CuckooMap<u64, u64>(5).shard_count() == 1);
  CHECK(CuckooMap<u64, u64>().shard_count() == 1);
  using Map = CuckooMap<u64, u64>;
  CHECK_NOTHROW(Map(devcache::max_shard_count + 1));
  CuckooMap<u64, u64> map(64, HashSeed::fixed(3));
  for (u64 i = 0; i < 100; ++i) map.insert(i, i);
  CHECK(map.shard_of(17) == 0);
  CHECK(map.shard_sizes() == std::vector<std::size_t>{100});
}

namespace {
// Deliberately terrible hashes, to push ShardedMap's Robin Hood distances past 255.
struct DivHash {
  std::size_t operator()(u64 k) const noexcept { return k / 1000; }
};
struct ConstantHash {
  std::size_t operator()(u64) const noexcept { return 7; }
};
// Keys from 10^9 on share one hash; the others hash to themselves.
struct SharedAboveHash {
  static constexpr u64 first_shared = 1'000'000'000;
  std::size_t operator()(u64 k) const noexcept { return k >= first_shared ? 42 : k; }
};
}  // namespace

TEST_CASE("ShardedMap stays correct with a constant hash (saturated distances)",
          "[sharded_map][robin_hood]") {
  // 600 keys, one home slot: probe distances reach 600, far past the saturation at 255.
  ShardedMap<u64, u64, ConstantHash> map(2, HashSeed::fixed(17));
  run_differential(map, differential_ops / 10, 600, 5);
}

TEST_CASE("ShardedMap stays correct with a hash of k / 1000 (saturated distances)",
          "[sharded_map][robin_hood]") {
  // Groups of 1000 keys share a hash: clusters run past distance 255 and into each other.
  ShardedMap<u64, u64, DivHash> filled(2, HashSeed::fixed(18));
  for (u64 i = 0; i < 5000; ++i) REQUIRE(filled.insert(i * 7 % 5000, i * 7 % 5000));
  require_contents(filled, 5000);
  for (u64 i = 0; i < 5000; ++i) REQUIRE(filled.find(i) == i);

  ShardedMap<u64, u64, DivHash> map(2, HashSeed::fixed(18));
  run_differential(map, differential_ops / 4, 5000, 6);
}

// Regression tests for a bug found in review: an insert past saturation (distance >= 255) ignored
// home-slot order, and erasures in front later made the disorder visible, losing keys. The next
// test shows the mechanism.
TEST_CASE("ShardedMap with a hash of k / 1000 keeps every key when half of them are erased",
          "[sharded_map][robin_hood][regression]") {
  ShardedMap<u64, u64, DivHash> map(2, HashSeed::fixed(18));
  for (u64 i = 0; i < 5000; ++i) REQUIRE(map.insert(i * 7 % 5000, i * 7 % 5000));
  require_contents(map, 5000);
  u64 failed_erases = 0;
  for (u64 i = 0; i < 5000; i += 2) failed_erases += map.erase(i) ? 0 : 1;
  u64 lost = 0;
  for (u64 i = 1; i < 5000; i += 2) lost += map.contains(i) ? 0 : 1;
  CHECK(failed_erases == 0);  // the bug: present keys that erase() could not find
  CHECK(lost == 0);           // the bug: odd keys, never erased, that contains() no longer found
  CHECK(map.size() == 2500);
}

namespace {
// Keys below 1'000'000 hash to group_a, the others to group_b.
struct TwoGroupHash {
  u64 group_a = 0;
  u64 group_b = 0;
  std::size_t operator()(u64 k) const noexcept { return k < 1'000'000 ? group_a : group_b; }
};
}  // namespace

TEST_CASE("ShardedMap does not lose a key after a saturated insert and erasures",
          "[sharded_map][robin_hood][regression]") {
  // Two groups of keys whose home slots are a few dozen slots apart: pick group hashes whose keyed
  // hashes differ by 2^58..2^59, so the homes (the hash's high bits scaled to the capacity, ~1200
  // here) are 1/64..1/32 of the table apart, whatever the exact capacity.
  constexpr u64 seed = 20;
  const auto mix = devcache::detail::KeyedMix::from_seed(seed);
  TwoGroupHash hash;
  while (mix(hash.group_a) >= (u64{1} << 63)) ++hash.group_a;
  hash.group_b = hash.group_a + 1;
  while (!(mix(hash.group_b) > mix(hash.group_a) &&
           mix(hash.group_b) - mix(hash.group_a) >= (u64{1} << 58) &&
           mix(hash.group_b) - mix(hash.group_a) < (u64{1} << 59))) {
    ++hash.group_b;
  }
  ShardedMap<u64, u64, TwoGroupHash> map(1, HashSeed::fixed(seed), hash);
  map.reserve(1000);  // no growth below: the layout is exactly what the inserts make

  // 300 keys of group A fill home_a .. home_a+299; distances past 255 saturate.
  for (u64 i = 0; i < 300; ++i) REQUIRE(map.insert(i, i));
  // A group-B key walks to the end of the cluster (its distance saturates too) ...
  REQUIRE(map.insert(1'000'000, u64{0}));
  // ... and one more group-A key (the bug placed it after the B key, out of home order).
  REQUIRE(map.insert(300, u64{300}));
  REQUIRE(map.contains(300));
  // Erasing from the front shifts both back until their distances are exact again (< 255); with
  // the bug, the B key's distance was then smaller than the A key's at that slot, and lookups of
  // the A key stopped there.
  for (u64 i = 0; i < 100; ++i) REQUIRE(map.erase(i));
  CHECK(map.size() == 202);
  CHECK(map.contains(1'000'000));
  CHECK(map.contains(300));  // the bug: stored but unreachable
  CHECK(map.find(300) == u64{300});
  CHECK_FALSE(map.insert(300, u64{1}));  // the bug: inserted a duplicate key
  CHECK(map.size() == 202);              // the bug: 203
}

namespace {
// Three consecutive keys share a hash: entries share home slots, so a growing table meets entries
// out of home order.
struct DivBy3Hash {
  std::size_t operator()(u64 k) const noexcept { return k / 3; }
};
}  // namespace

TEST_CASE("ShardedMap keeps every key through each growth, with shared homes and wrapped clusters",
          "[sharded_map][robin_hood]") {
  // Growth moves entries in slot order and places most of them right after the previous one; the
  // rest (shared home slots, clusters wrapping past the array's end, which happens for most seeds
  // at this load) take the general path. After every growth each key must still be found, and
  // each absent key still reported absent.
  const u64 seed = GENERATE(u64{1}, u64{2}, u64{3}, u64{4});
  ShardedMap<u64, u64, DivBy3Hash> map(1, HashSeed::fixed(seed));
  constexpr u64 count = 30'000;
  std::size_t bytes = map.allocated_bytes();
  std::size_t growths = 0;
  for (u64 i = 0; i < count; ++i) {
    const u64 k = i * 7'919 % count;  // a scrambled order
    REQUIRE(map.insert(k, k + 1));
    if (map.allocated_bytes() == bytes) continue;
    bytes = map.allocated_bytes();
    ++growths;
    u64 lost = 0;
    u64 phantom = 0;
    for (u64 j = 0; j <= i; ++j) {
      const u64 key = j * 7'919 % count;
      lost += map.find(key) == key + 1 ? 0 : 1;
      phantom += map.contains(key + count) ? 1 : 0;
    }
    REQUIRE(lost == 0);
    REQUIRE(phantom == 0);
  }
  CHECK(growths > 20);
  CHECK(map.size() == count);
}

TEST_CASE("CuckooMap cannot store more than 8 keys with one hash", "[cuckoo_map]") {
  // Documented limitation of cuckoo hashing (two buckets of 4 slots per hash value).
  CuckooMap<u64, u64, ConstantHash> map(0, HashSeed::fixed(21));
  u64 inserted = 0;
  bool threw = false;
  for (u64 i = 0; i < 20 && !threw; ++i) {
    try {
      if (map.insert(i, i)) ++inserted;
    } catch (const libcuckoo::load_factor_too_low&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(inserted >= 4);  // 8 unless the key's two buckets coincide
  CHECK(inserted <= 8);
  require_contents(map, inserted);  // unchanged and usable
  CHECK(map.erase(0));
  CHECK(map.insert(100, u64{100}));
}

TEST_CASE("CuckooMap: keys sharing one hash grow a populated table at most once before it throws",
          "[cuckoo_map][memory]") {
  // No growth separates keys with one hash, but libcuckoo doubles a table whose insert finds no
  // room until its load factor falls below a minimum. With libcuckoo's default minimum (0.05),
  // 9 such keys took a table of 100,000 entries (0.38 full) through three doublings, from 8.5 to
  // 40 MiB, before the throw. CuckooMap sets the minimum to 0.25: one doubling here.
  CuckooMap<u64, u64, SharedAboveHash> map(0, HashSeed::fixed(3));
  constexpr u64 count = 100'000;
  for (u64 i = 0; i < count; ++i) REQUIRE(map.insert(i, i));
  const std::size_t before = map.allocated_bytes();
  u64 inserted = 0;
  bool threw = false;
  for (u64 i = 0; i < 20 && !threw; ++i) {
    try {
      if (map.insert(SharedAboveHash::first_shared + i, i)) ++inserted;
    } catch (const libcuckoo::load_factor_too_low&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(inserted <= 8);
  CHECK(map.size() == count + inserted);
  CHECK(map.allocated_bytes() < 2 * before);
  CHECK(map.find(count - 1) == count - 1);
}

TEST_CASE(
    "CuckooMap::reserve() beyond what a table can hold throws length_error naming the request",
    "[cuckoo_map][memory]") {
  // Before the check, libcuckoo rounded such a request up to whole buckets with wrapping
  // arithmetic: reserve(SIZE_MAX) asked for a table of 0 buckets (an assertion failure in
  // libcuckoo when NDEBUG is not defined, a silently wrong table when it is).
  using Map = CuckooMap<u64, u64>;
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  Map map(0, HashSeed::fixed(5));
  for (u64 i = 0; i < 1000; ++i) REQUIRE(map.insert(i, i));
  const std::size_t bytes = map.allocated_bytes();
  for (const std::size_t n : {max, max - 2, max / 2, Map::max_reserve + 1}) {
    CAPTURE(n);
    CHECK_THROWS_AS(map.reserve(n), std::length_error);
    CHECK_THROWS_WITH(map.reserve(n), Catch::Contains(std::to_string(n)));
  }
  CHECK(map.allocated_bytes() == bytes);  // nothing reserved, nothing lost
  require_contents(map, 1000);
}
