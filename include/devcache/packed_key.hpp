// devcache/packed_key.hpp — PackedKey, the customisation point for keys that fit in 56 bits.
//
// A FlatTable slot normally holds the key and the value, and the table keeps one metadata byte
// per slot (the slot's probe distance) in a separate array, so a lookup in a table larger than
// the cache misses twice: once for the metadata byte, once for the entry. A key whose every value
// fits in the low 56 bits of a 64-bit word (a MacAddress has 48) leaves the word's top byte free:
// the table then stores the key as that word, with the metadata byte in its top 8 bits. A slot of
// a MacAddress -> u64 map is 16 bytes holding all three, one probe step is one load, and a lookup
// touches one cache line instead of two (README.md, Benchmarks).
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace devcache {

/// Specialise for a key type whose values are at most 56 bits, with
///   static constexpr std::uint64_t pack(const Key&) noexcept;   // < 2^56, injective
///   static constexpr Key unpack(std::uint64_t bits) noexcept;   // unpack(pack(k)) == k
/// Two keys must be equal (operator==) exactly when their packed values are. Maps whose KeyEqual is
/// std::equal_to then compare packed words instead of calling it. MacAddress specialises it.
template <class Key>
struct PackedKey;

namespace detail {

/// The top byte of a packed slot's word holds the metadata; the key uses the rest.
inline constexpr std::uint64_t packed_key_mask = (std::uint64_t{1} << 56) - 1;

/// True if FlatTable<Key, Value, KeyEqual> packs its keys: PackedKey<Key> is specialised and the
/// map compares keys with std::equal_to (which PackedKey's contract makes equivalent).
template <class Key, class KeyEqual>
concept PackableKey = (std::same_as<KeyEqual, std::equal_to<Key>> ||
                       std::same_as<KeyEqual, std::equal_to<>>)&&requires(const Key& k,
                                                                          std::uint64_t bits) {
  { PackedKey<Key>::pack(k) }
  noexcept->std::same_as<std::uint64_t>;
  { PackedKey<Key>::unpack(bits) }
  noexcept->std::same_as<Key>;
};

}  // namespace detail

}  // namespace devcache
