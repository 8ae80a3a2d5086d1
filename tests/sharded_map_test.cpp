// ShardedMap-specific behaviour beyond the shared conformance suite: the batch calls, the
// raw-hash-input path for integral and MacAddress keys, the shard layout, and the page prefault
// that snapshot() does before it locks.
#include <devcache/detail/prefault.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/sharded_map.hpp>

#include <catch2/catch.hpp>

#include "sanitizers.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using devcache::HashSeed;
using devcache::MacAddress;
using devcache::ShardedMap;

TEST_CASE("visit_many visits exactly the present keys, in order per key", "[sharded_map][batch]") {
  ShardedMap<std::uint64_t, std::uint64_t> map(8, HashSeed::fixed(7));
  for (std::uint64_t k = 0; k < 1000; k += 2) map.insert(k, std::uint64_t{0});

  std::vector<std::uint64_t> keys;
  std::mt19937_64 rng(42);
  std::map<std::uint64_t, std::uint64_t> expected;
  std::size_t expected_found = 0;
  for (int i = 0; i < 5000; ++i) {  // spans many chunks, with repeats and absent keys
    const std::uint64_t k = rng() % 1000;
    keys.push_back(k);
    if (k % 2 == 0) {
      ++expected[k];
      ++expected_found;
    }
  }
  std::vector<std::uint64_t> seen;
  const std::size_t found = map.visit_many(std::span<const std::uint64_t>(keys),
                                           [&](const std::uint64_t& k, std::uint64_t& v) {
                                             ++v;
                                             seen.push_back(k);
                                           });
  CHECK(found == expected_found);
  CHECK(seen.size() == expected_found);
  for (std::uint64_t k = 0; k < 1000; k += 2) {
    const auto it = expected.find(k);
    CHECK(map.find(k) == (it == expected.end() ? 0 : it->second));
  }
  CHECK(map.visit_many(std::span<const std::uint64_t>(),
                       [](const std::uint64_t&, std::uint64_t&) {}) == 0);
}

TEST_CASE("upsert_many inserts the absent keys once and updates the rest", "[sharded_map][batch]") {
  ShardedMap<MacAddress, std::string> map;
  std::vector<MacAddress> keys;
  for (std::uint64_t i = 0; i < 300; ++i)
    keys.push_back(MacAddress::from_u64(0x001122000000ULL | (i % 100)));
  const std::size_t inserted = map.upsert_many(
      std::span<const MacAddress>(keys), [](const MacAddress&, std::string& v) { v += "+"; },
      std::string("new"));
  CHECK(inserted == 100);
  CHECK(map.size() == 100);
  for (std::uint64_t i = 0; i < 100; ++i) {
    CHECK(map.find(MacAddress::from_u64(0x001122000000ULL | i)) ==
          std::optional<std::string>("new++"));
  }
}

TEST_CASE("a throwing batch callback leaves the map usable", "[sharded_map][batch]") {
  ShardedMap<std::uint64_t, std::uint64_t> map(4, HashSeed::fixed(1));
  for (std::uint64_t k = 0; k < 100; ++k) map.insert(k, k);
  std::vector<std::uint64_t> keys(100);
  for (std::uint64_t k = 0; k < 100; ++k) keys[k] = k;
  int calls = 0;
  CHECK_THROWS_AS(map.visit_many(std::span<const std::uint64_t>(keys),
                                 [&](const std::uint64_t&, std::uint64_t&) {
                                   if (++calls == 10) throw std::runtime_error("boom");
                                 }),
                  std::runtime_error);
  CHECK(calls == 10);
  // Every lock was released: exclusive operations on every shard go through.
  for (std::uint64_t k = 0; k < 100; ++k) CHECK(map.visit(k, [](std::uint64_t& v) { ++v; }));
  CHECK(map.size() == 100);
}

TEST_CASE("default hashing spreads sequential MACs evenly over the shards", "[sharded_map]") {
  // oui-seq keys (one vendor, serial numbers) would all land in a few shards under a weak shard
  // selection. With the keyed mix the largest shard stays close to the mean.
  ShardedMap<MacAddress, std::uint64_t> map(16);
  constexpr std::uint64_t n = 1 << 16;
  for (std::uint64_t i = 0; i < n; ++i)
    map.insert(MacAddress::from_u64((0x001122ULL << 24) | i), i);
  const auto sizes = map.shard_sizes();
  REQUIRE(sizes.size() == 16);
  const double mean = static_cast<double>(n) / 16;
  for (const std::size_t s : sizes) {
    CHECK(static_cast<double>(s) < mean * 1.1);
    CHECK(static_cast<double>(s) > mean * 0.9);
  }
}

TEST_CASE("two maps with the same fixed seed place keys identically", "[sharded_map]") {
  ShardedMap<std::uint64_t, int> a(32, HashSeed::fixed(99));
  ShardedMap<std::uint64_t, int> b(32, HashSeed::fixed(99));
  ShardedMap<std::uint64_t, int> c(32, HashSeed::fixed(100));
  int differ = 0;
  for (std::uint64_t k = 0; k < 256; ++k) {
    CHECK(a.shard_of(k) == b.shard_of(k));
    differ += a.shard_of(k) != c.shard_of(k) ? 1 : 0;
  }
  CHECK(differ > 128);  // another seed moves most keys (about 31/32 of them)
  CHECK(HashSeed::random() != HashSeed::random());
}

TEST_CASE("an empty map allocates only its shards and their table locations", "[sharded_map]") {
  // Per shard: its 64-byte cache line (lock and table header) and the 24-byte TableLocation that
  // lookups read without the lock.
  ShardedMap<MacAddress, std::uint64_t> map(8);
  const std::size_t empty = std::size_t{8} * (64 + 24);
  CHECK(map.allocated_bytes() == empty);
  map.insert(MacAddress::from_u64(1), std::uint64_t{1});
  CHECK(map.allocated_bytes() > empty);
  map.clear();
  CHECK(map.allocated_bytes() == empty);
}

TEST_CASE("batches keep each shard's keys in the order given, for every shard count",
          "[sharded_map][batch]") {
  // The batch sorts a chunk by shard with a radix sort, one pass per 8 bits of the shard index
  // (none for 1 shard, two above 256): every pass must be stable, so a key listed twice is
  // inserted by its first occurrence and updated by the second.
  const std::size_t shards = GENERATE(as<std::size_t>{}, 1, 8, 64, 256, 512, 1024, 65536);
  CAPTURE(shards);
  ShardedMap<std::uint64_t, std::uint64_t> map(shards, HashSeed::fixed(11));
  std::vector<std::uint64_t> keys;
  std::mt19937_64 rng(shards);
  std::map<std::uint64_t, std::uint64_t> occurrences;
  for (int i = 0; i < 3000; ++i) {
    keys.push_back(rng() % 700);
    ++occurrences[keys.back()];
  }
  std::vector<std::uint64_t> order;  // keys in the order the callback saw them
  const std::size_t inserted = map.upsert_many(
      std::span<const std::uint64_t>(keys),
      [&](const std::uint64_t& k, std::uint64_t& v) {
        ++v;
        order.push_back(k);
      },
      std::uint64_t{1});
  CHECK(inserted == occurrences.size());
  CHECK(order.size() == keys.size() - occurrences.size());
  for (const auto& [k, n] : occurrences) CHECK(map.find(k) == n);
  // Within one chunk, the updates of one shard's keys follow the input order: replay the input
  // chunk by chunk and compare shard by shard.
  std::vector<std::uint64_t> expected;
  std::map<std::uint64_t, bool> present;
  for (std::size_t base = 0; base < keys.size(); base += map.batch_chunk) {
    const std::size_t end = std::min(keys.size(), base + map.batch_chunk);
    std::vector<std::uint64_t> chunk(keys.begin() + static_cast<std::ptrdiff_t>(base),
                                     keys.begin() + static_cast<std::ptrdiff_t>(end));
    std::stable_sort(chunk.begin(), chunk.end(), [&](std::uint64_t a, std::uint64_t b) {
      return map.shard_of(a) < map.shard_of(b);
    });
    for (const std::uint64_t k : chunk) {
      if (present[k]) expected.push_back(k);
      present[k] = true;
    }
  }
  CHECK(order == expected);
}

TEST_CASE("a table under 16 KiB is at most half full, a larger one at most 7/8",
          "[sharded_map][memory]") {
  // Slots are 16 bytes plus one metadata byte. A table whose arrays take less than 16 KiB grows
  // past half full, by doubling (so it is never less than a quarter full either); from 16 KiB on
  // it grows past 7/8 full. Checked after every insert, from the first table to 4 MiB.
  ShardedMap<MacAddress, std::uint64_t> map(1, HashSeed::fixed(5));
  const std::size_t shard_array = map.allocated_bytes();
  std::size_t sparse_tables = 0;
  std::size_t dense_tables = 0;
  std::size_t last_capacity = 0;
  constexpr std::size_t sparse_below = std::size_t{16} * 1024;  // bytes
  for (std::uint64_t i = 1; i <= 200'000; ++i) {
    map.insert(MacAddress::from_u64(i * 0x9E3779B97F4AULL & 0xFFFF'FFFF'FFFF), i);
    const std::size_t table_bytes = map.allocated_bytes() - shard_array;
    REQUIRE(table_bytes % 17 == 0);
    const std::size_t capacity = table_bytes / 17;
    const std::size_t size = map.size();
    if (capacity == last_capacity) continue;
    // The table has just grown, on the insert that found the previous one at its limit.
    CAPTURE(size, last_capacity, capacity);
    if (last_capacity != 0) {
      if (last_capacity * 17 < sparse_below) {
        CHECK(size - 1 == last_capacity / 2);  // a sparse table grows past half full
        CHECK(capacity == 2 * last_capacity);  // by doubling
      } else {
        CHECK(size - 1 == last_capacity * 7 / 8);              // a dense one past 7/8 full
        CHECK(capacity == last_capacity + last_capacity / 5);  // by a fifth
      }
    }
    (table_bytes < sparse_below ? sparse_tables : dense_tables) += 1;
    CHECK((capacity == 8 || 4 * size >= capacity));  // never less than a quarter full
    last_capacity = capacity;
  }
  CHECK(sparse_tables == 7);  // 8, 16, ... 512 slots
  CHECK(dense_tables > 20);
}

TEST_CASE("a large table holds at most 24 bytes per MacAddress -> u64 entry",
          "[sharded_map][memory]") {
  // Slots are 16 bytes plus one metadata byte. From 16 KiB of arrays (964 slots) on a table grows
  // by a fifth at 7/8 load, so its load stays >= 0.729: at most 17 / 0.729 = 23.3 bytes per
  // entry.
  ShardedMap<MacAddress, std::uint64_t> map(1, HashSeed::fixed(3));
  const std::size_t shard_array = map.allocated_bytes();
  double worst = 0;
  for (std::uint64_t i = 1; i <= 300'000; ++i) {
    map.insert(MacAddress::from_u64(i * 0x9E3779B97F4AULL & 0xFFFF'FFFF'FFFF), i);
    if (i >= 4096 && i % 101 == 0) {
      worst = std::max(worst, static_cast<double>(map.allocated_bytes() - shard_array) /
                                  static_cast<double>(map.size()));
    }
  }
  CHECK(map.size() == 300'000);
  CAPTURE(worst);
  CHECK(worst <= 23.4);
}

TEST_CASE("prefetches for reading and writing never fault and change nothing", "[sharded_map]") {
  // ShardedMap prefetches a slot from a table location read without the lock, which may be stale:
  // the address may belong to freed memory, or to nothing. Every such address must be harmless.
  using devcache::detail::Access;
  std::vector<unsigned char> buffer(4096, 0x5A);
  const void* unmapped = nullptr;
#if defined(__linux__)
  void* const page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(page != MAP_FAILED);
  REQUIRE(munmap(page, 4096) == 0);
  unmapped = page;  // an address whose page is no longer mapped
#endif
  for (const Access access : {Access::read, Access::write}) {
    devcache::detail::prefetch(buffer.data(), access);
    devcache::detail::prefetch(buffer.data() + 4095, access);
    devcache::detail::prefetch(nullptr, access);
    devcache::detail::prefetch(unmapped, access);
  }
  CHECK(std::count(buffer.begin(), buffer.end(), 0x5A) == 4096);
}

TEST_CASE("prefault_for_write maps pages without changing what they hold", "[sharded_map]") {
  // snapshot() prefaults the vector it reserved before locking the shards; the call must leave
  // every byte as it was, around and inside the range, aligned or not (the start is rounded down
  // to a page, into memory that belongs to a neighbour).
  const std::size_t bytes = std::size_t{3} << 20;  // large enough for its own mmap'd chunk
  std::vector<unsigned char> buffer(bytes);
  for (std::size_t i = 0; i < bytes; ++i) buffer[i] = static_cast<unsigned char>(i * 131 + 7);
  devcache::detail::prefault_for_write(buffer.data() + 1000, bytes - 5000);
  devcache::detail::prefault_for_write(buffer.data(), bytes);
  devcache::detail::prefault_for_write(nullptr, 4096);
  devcache::detail::prefault_for_write(buffer.data(), 0);
  std::size_t changed = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (buffer[i] != static_cast<unsigned char>(i * 131 + 7)) ++changed;
  }
  CHECK(changed == 0);

  // And the snapshot it serves still copies every entry.
  ShardedMap<MacAddress, std::uint64_t> map(8, HashSeed::fixed(3));
  for (std::uint64_t k = 0; k < 50'000; ++k) map.insert(MacAddress::from_u64(k), k * 3);
  const auto snap = map.snapshot();
  REQUIRE(snap.size() == 50'000);
  std::uint64_t sum = 0;
  std::size_t wrong = 0;
  for (const auto& [mac, v] : snap) {
    if (v != mac.to_u64() * 3) ++wrong;
    sum += v;
  }
  CHECK(wrong == 0);
  CHECK(sum == std::uint64_t{3} * (50'000ULL * 49'999ULL / 2));
}

TEST_CASE("prefault_fresh_for_write writes only inside its range, at most a byte a page",
          "[sharded_map]") {
  // snapshot() passes its result vector's spare capacity: the bytes before and after the range
  // (on the same pages) belong to someone else and must not change; inside, the call may write a
  // zero into each page, nothing more.
  const std::size_t page = 4096;  // the smallest Linux page: the bound below holds for larger ones
  const std::size_t bytes = std::size_t{3} << 20;
  std::vector<unsigned char> buffer(bytes, 0x5A);
  const std::size_t first = 1000;
  const std::size_t length = bytes - 5000;  // starts and ends inside a page
  devcache::detail::prefault_fresh_for_write(buffer.data() + first, length);
  devcache::detail::prefault_fresh_for_write(nullptr, 4096);
  devcache::detail::prefault_fresh_for_write(buffer.data(), 0);
  std::size_t changed_outside = 0;
  std::size_t changed_inside = 0;
  std::size_t nonzero_writes = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    if (buffer[i] == 0x5A) continue;
    if (i < first || i >= first + length) {
      ++changed_outside;
    } else {
      ++changed_inside;
      if (buffer[i] != 0) ++nonzero_writes;
    }
  }
  CHECK(changed_outside == 0);
  CHECK(nonzero_writes == 0);
  CHECK(changed_inside <= length / page + 2);
}

TEST_CASE("reserve_mapped makes room past the estimate and keeps what the vector holds",
          "[sharded_map]") {
  // Both maps' snapshot() call it on an empty vector; it must also keep existing elements (it
  // reserves `estimate` more, not in total) and leave room for growth between size() and the lock.
  std::vector<std::uint64_t> out{1, 2, 3};
  devcache::detail::reserve_mapped(out, 100'000);
  CHECK(out == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(out.capacity() >= 3 + 100'000 + 100'000 / 16 + 16);
  const std::uint64_t* data = out.data();
  for (std::uint64_t i = 0; i < 100'000 + 100'000 / 16; ++i) out.push_back(i);
  CHECK(out.data() == data);  // the margin is real capacity: no reallocation

  std::vector<std::uint64_t> empty;
  devcache::detail::reserve_mapped(empty, 0);
  CHECK(empty.empty());
  CHECK(empty.capacity() >= 16);
}

TEST_CASE("reserve() beyond what a table can hold throws length_error naming the request",
          "[sharded_map][memory]") {
  // Before the check, the margin added to a shard's share could wrap around: reserve() of about
  // 2^61 entries in one shard returned having reserved 964 slots, silently.
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  const std::size_t wraps = 2'170'205'185'142'300'176;  // share + share/16 + 16 == 2^61 + 1
  for (const std::size_t shards : {std::size_t{1}, std::size_t{64}}) {
    ShardedMap<std::uint64_t, std::uint64_t> map(shards, HashSeed::fixed(4));
    REQUIRE(map.insert(1, std::uint64_t{2}));
    const std::size_t bytes = map.allocated_bytes();
    // (With 64 shards, `wraps` is a share a table could hold in principle: std::bad_alloc then,
    // from a real allocation attempt, which a sanitizer build would report instead.)
    for (const std::size_t n : {max, max / 4, shards == 1 ? wraps : max / 2}) {
      CAPTURE(shards, n);
      CHECK_THROWS_AS(map.reserve(n), std::length_error);
      CHECK_THROWS_WITH(map.reserve(n), Catch::Contains(std::to_string(n)));
    }
    CHECK(map.allocated_bytes() == bytes);  // nothing reserved, nothing lost
    CHECK(map.size() == 1);
    CHECK(map.find(1) == std::uint64_t{2});
  }
}

#if defined(__linux__)
namespace {
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t total_pages = 0;
  std::size_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}
}  // namespace

TEST_CASE("reserve() does not map the slots it reserves", "[sharded_map][memory]") {
  // A growing table asks the kernel to map its new arrays at once when the entries moving in
  // will touch most pages anyway; reserving room in an empty table must stay lazy, or reserve(n)
  // would make all of n's memory resident up front. (Resident memory is counted for the whole
  // process; the reservation, 64 MiB of slots, dwarfs what else happens meanwhile.)
  if (devcache::test::thread_sanitizer) {
    // ThreadSanitizer maps shadow memory for every allocation it hands out, slots included.
    WARN("skipped under ThreadSanitizer: its shadow memory counts as resident");
    return;
  }
  ShardedMap<std::uint64_t, std::uint64_t> map(1, HashSeed::fixed(9));
  const std::size_t before = resident_bytes();
  map.reserve(3'500'000);
  const std::size_t reserved = map.allocated_bytes();
  const std::size_t grew_by = resident_bytes() - before;
  CAPTURE(reserved, grew_by);
  REQUIRE(reserved > std::size_t{64} << 20);
  CHECK(grew_by < reserved / 4);  // the metadata bytes (1/17) are zeroed, the slots untouched
}
#endif
