// bench/workload.hpp — the map workloads of ../shared/WORKLOADS.md (v1.1), one definition shared by
// every benchmark: key shapes, the PRNG, the mixes, and the per-thread operation loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace devcache::bench {

/// splitmix64's output function applied to x + golden gamma: the PRNG step and the `random` key
/// shape's mac(i) both use it.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// The PRNG each worker thread runs: splitmix64 seeded with 0x5EED + thread index.
class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  constexpr std::uint64_t next() noexcept {
    const std::uint64_t out = splitmix64(state_);
    state_ += 0x9E3779B97F4A7C15ULL;
    return out;
  }

 private:
  std::uint64_t state_;
};

/// murmur3's 64-bit finaliser: the strong mixer every peer hashes its u64 keys with.
struct Fmix64 {
  std::size_t operator()(std::uint64_t k) const noexcept {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return static_cast<std::size_t>(k);
  }
};

enum class KeyShape { random, oui_seq };
constexpr std::string_view name(KeyShape s) { return s == KeyShape::random ? "random" : "oui-seq"; }

/// mac(i) for a key index.
constexpr std::uint64_t mac_of(KeyShape shape, std::uint64_t i) noexcept {
  return shape == KeyShape::random ? (splitmix64(i) & 0xFFFF'FFFF'FFFFULL)
                                   : ((0x001122ULL << 24) | i);
}

enum class Op : std::uint8_t { read, insert, remove, update };

struct Mix {
  std::string_view name;
  std::array<unsigned, 4> percent;  // read, insert, remove, update
};
inline constexpr std::array<Mix, 4> mixes{{
    {"read-heavy", {98, 1, 1, 0}},
    {"exchange", {10, 40, 40, 10}},
    {"rapid-grow", {5, 80, 5, 10}},
    {"heartbeat", {8, 1, 1, 90}},
}};

/// Maps r % 100 to an operation by the mix's cumulative percentages.
struct OpPicker {
  std::array<Op, 100> table{};
  explicit constexpr OpPicker(const Mix& mix) {
    unsigned at = 0;
    for (unsigned op = 0; op < 4; ++op) {
      for (unsigned k = 0; k < mix.percent[op]; ++k) table[at++] = static_cast<Op>(op);
    }
  }
  [[nodiscard]] constexpr Op pick(std::uint64_t r) const noexcept { return table[r % 100]; }
};

/// What one thread did, so the final state of the map can be checked exactly.
struct Tally {
  std::uint64_t inserts = 0;     // successful inserts
  std::uint64_t removes = 0;     // successful removes
  std::int64_t value_delta = 0;  // sum of inserted values + updates - removed values
  std::uint64_t read_hits = 0;   // keeps reads from being optimised away
};

/// Runs `ops` operations of `mix` for thread `t` against adapter `map`. The key universe is
/// [0, n) (n a power of two). `each` is called around every operation (latency sampling) — pass an
/// empty lambda for throughput runs.
template <class Map, class Each>
Tally run_thread(Map& map, const Mix& mix, KeyShape shape, std::uint64_t n, unsigned t,
                 std::uint64_t ops, Each&& each) {
  const OpPicker picker(mix);
  SplitMix64 rng(0x5EEDULL + t);
  Tally tally;
  for (std::uint64_t k = 0; k < ops; ++k) {
    const std::uint64_t r = rng.next();
    const Op op = picker.pick(r);
    const std::uint64_t i = rng.next() & (n - 1);
    const std::uint64_t key = mac_of(shape, i);
    each([&] {
      switch (op) {
        case Op::read: {
          std::uint64_t v = 0;
          if (map.read(key, v)) tally.read_hits += 1 + (v & 1);
          break;
        }
        case Op::insert:
          if (map.insert(key, i)) {
            ++tally.inserts;
            tally.value_delta += static_cast<std::int64_t>(i);
          }
          break;
        case Op::remove: {
          std::uint64_t old = 0;
          if (map.remove(key, old)) {
            ++tally.removes;
            tally.value_delta -= static_cast<std::int64_t>(old);
          }
          break;
        }
        case Op::update:
          if (map.update(key)) tally.value_delta += 1;
          break;
      }
    });
  }
  return tally;
}

}  // namespace devcache::bench
