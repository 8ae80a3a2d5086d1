// devcache/detail/hash_mix.hpp — the keyed finaliser applied to every key's hash.
#pragma once

#include <cstdint>

namespace devcache::detail {

/// Mixes a 64-bit hash with a 64-bit secret: (h ^ k0) * k1 as a 128-bit product, folded by xor.
/// One multiply on the hot path; every output bit depends on every input bit and on the secret, so
/// neither the in-shard position (taken from the high bits) nor the shard (low bits) can be chosen
/// by an attacker who does not know the secret. It is not a cryptographic MAC.
__extension__ using uint128 = unsigned __int128;  // GCC and Clang both provide it

struct KeyedMix {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 1;

  /// Derives both keys from one seed.
  static constexpr KeyedMix from_seed(std::uint64_t seed) noexcept {
    return KeyedMix{seed ^ 0x243F6A8885A308D3ULL,
                    ((seed * 0x9E3779B97F4A7C15ULL) ^ 0x13198A2E03707344ULL) | 1ULL};
  }

  [[nodiscard]] constexpr std::uint64_t operator()(std::uint64_t h) const noexcept {
    const uint128 p = static_cast<uint128>(h ^ k0) * k1;
    return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
  }
};

}  // namespace devcache::detail
