// devcache/hash_seed.hpp — the per-map secret that keys devcache's hashing, and the
// customisation point that lets 64-bit keys skip a second hash.
//
// The keys of a device cache come from the network, so an attacker can choose them. A map whose
// bucket choice is a fixed function of the key can be flooded with keys that all land in one place
// (a "hash flooding" attack), turning O(1) operations into O(n). Every devcache map therefore mixes
// the key's hash with a random per-map seed by default; a fixed seed is available for reproducible
// tests and benchmarks, and is documented as unsafe against chosen keys.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <random>
#include <type_traits>

namespace devcache {

/// The seed that keys a map's hash function.
///
/// `HashSeed::random()` (the default everywhere) draws a fresh secret; `HashSeed::fixed(v)` gives a
/// reproducible one. Trivially copyable; thread-safe to copy.
class HashSeed {
 public:
  /// A seed no two maps of a process share, derived from one std::random_device draw per process
  /// (taken on first use, thread-safe) mixed with a per-call counter.
  /// Thread-safety: safe from any thread (one relaxed atomic increment).
  /// Throws: std::system_error only if std::random_device cannot be opened on first use.
  static HashSeed random() {
    static const std::uint64_t process_secret = [] {
      std::random_device device;
      return (std::uint64_t{device()} << 32) ^ std::uint64_t{device()};
    }();
    static std::atomic<std::uint64_t> counter{0};
    const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    return HashSeed{splitmix(process_secret + n * 0x9E3779B97F4A7C15ULL)};
  }

  /// A fixed, reproducible seed. Not safe against attacker-chosen keys: use only for tests and
  /// benchmarks. Never throws.
  static constexpr HashSeed fixed(std::uint64_t value) noexcept { return HashSeed{value}; }

  /// The seed's value. Never throws.
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return value_; }

  friend constexpr bool operator==(HashSeed, HashSeed) noexcept = default;

 private:
  constexpr explicit HashSeed(std::uint64_t value) noexcept : value_(value) {}

  static constexpr std::uint64_t splitmix(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }

  std::uint64_t value_;
};

/// Customisation point for key types that are a 64-bit value at heart (MacAddress is one).
///
/// A map that uses the default `std::hash<Key>` feeds `RawHashInput<Key>::get(key)` straight to
/// its keyed mixer instead of hashing twice (std::hash, then the seeded mix): the seeded mix alone
/// already spreads every input bit over the whole result. A user-supplied Hash is always used as
/// given. Specialise it next to the key type with
/// `static constexpr std::uint64_t get(const Key&) noexcept`, which must be injective (distinct
/// keys, distinct values). Integral keys need no specialisation.
template <class Key>
struct RawHashInput;

namespace detail {

template <class Key, class Hash>
concept HasRawHashInput = std::same_as<Hash, std::hash<Key>> &&
    (std::integral<Key> || requires(const Key& k) {
      { RawHashInput<Key>::get(k) }
      noexcept->std::same_as<std::uint64_t>;
    });

/// The value a map with hasher `Hash` feeds to its keyed mixer for `key`.
template <class Key, class Hash>
constexpr std::uint64_t hash_input(const Hash& hash, const Key& key) noexcept(
    HasRawHashInput<Key, Hash> || std::is_nothrow_invocable_v<const Hash&, const Key&>) {
  if constexpr (HasRawHashInput<Key, Hash> && std::integral<Key>) {
    return static_cast<std::uint64_t>(key);
  } else if constexpr (HasRawHashInput<Key, Hash>) {
    return RawHashInput<Key>::get(key);
  } else {
    return static_cast<std::uint64_t>(hash(key));
  }
}

}  // namespace detail

}  // namespace devcache
