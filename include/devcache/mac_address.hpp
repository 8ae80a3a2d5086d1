// devcache/mac_address.hpp — MacAddress, the 48-bit key of every devcache map, with its
// std::hash and fmt::formatter specialisations.
//
// MacAddress is a constexpr value type: one std::uint64_t whose bits 47..0 hold octets 0..5
// big-endian (from_u64(0x001122334455) is 00:11:22:33:44:55), so comparison is octet-wise
// lexicographic and the type is trivially copyable and 8 bytes.
//
// Parsing (parse, try_parse, the _mac literal) is case-insensitive and accepts exactly:
//   00:11:22:33:44:55   00-11-22-33-44-55   six groups of 1 or 2 hex digits
//   0011.2233.4455      0011-2233-4455      three groups of 4 (Cisco dotted, or hyphens)
//   001122:334455       001122-334455       two groups of 6
//   001122334455                            12 bare hex digits
// Decision: one-digit groups (0:1:2:3:4:5, meaning 00:01:02:03:04:05) are accepted only in the
// six-group colon and hyphen forms, as netaddr and folly do; every other form needs its exact
// digit count. Separators may not be mixed, and nothing else is allowed: no whitespace, no "0x",
// no surrounding garbage. An EUI-64 spelling (00:11:22:33:44:55:66:77, 0011.2233.4455.6677, 16
// bare digits) is rejected with a message saying so. Error messages quote the input (escaped, and
// truncated past 64 bytes) and give the 0-based byte position of the problem, e.g.
//   invalid MAC address "00:11:22:33:44:5g": 'g' at position 16 is not a hex digit
//
// Formatting: to_string(), operator<< and fmt's "{}" give the canonical lowercase colon form.
// fmt format specs, one letter (width and fill are not supported: format to_string() for that):
//   {} or {:c}  0a:1b:2c:3d:4e:5f   colon, lower case     {:C}  0A:1B:2C:3D:4E:5F
//   {:h}        0a-1b-2c-3d-4e-5f   hyphen                {:H}  0A-1B-2C-3D-4E-5F
//   {:d}        0a1b.2c3d.4e5f      Cisco dotted          {:D}  0A1B.2C3D.4E5F
//   {:b}        0a1b2c3d4e5f        bare                  {:B}  0A1B2C3D4E5F
// Any other spec is a fmt::format_error, reported at compile time where fmt checks the format
// string (fmt::format("{:x}", mac) does not compile).
//
// Thread-safety for the whole file: MacAddress is a plain value like int. Every function here is
// pure or const, so any number of threads may use it concurrently; writing to one object while
// another thread reads it needs external synchronisation, as with any value.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <devcache/detail/mac_parse.hpp>
#include <devcache/errors.hpp>
#include <devcache/hash_seed.hpp>

namespace devcache {

namespace detail {

/// A formatted address: at most 17 characters, NUL-terminated.
struct MacText {
  std::array<char, 18> chars{};
  std::size_t size = 0;

  [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars.data(), size}; }
  [[nodiscard]] constexpr const char* c_str() const noexcept { return chars.data(); }
};

/// `value` in the style of one fmt spec letter (see the file comment). An unknown style is
/// treated as 'c'.
constexpr MacText mac_format(std::uint64_t value, char style) noexcept {
  const bool upper = style >= 'A' && style <= 'Z';
  const std::string_view hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char separator = ':';
  std::size_t group_digits = 2;
  switch (style) {
    case 'h':
    case 'H':
      separator = '-';
      break;
    case 'd':
    case 'D':
      separator = '.';
      group_digits = 4;
      break;
    case 'b':
    case 'B':
      separator = 0;
      group_digits = 12;
      break;
    default:
      break;
  }
  MacText text;
  for (std::size_t i = 0; i < 12; ++i) {
    if (i != 0 && i % group_digits == 0) text.chars[text.size++] = separator;
    text.chars[text.size++] = hex[(value >> (44 - 4 * i)) & 0xf];
  }
  return text;
}

/// Cold path of MacAddress::from_u64. Throws: std::out_of_range (always).
[[noreturn]] inline void throw_mac_out_of_range(std::uint64_t value) {
  throw std::out_of_range(
      fmt::format("MacAddress::from_u64: value {:#x} exceeds 48 bits (the largest MAC address is "
                  "0xffffffffffff)",
                  value));
}

/// Non-constexpr on purpose: a malformed _mac literal reaches this call during constant
/// evaluation, so the compiler rejects it and names this function in the diagnostic.
[[noreturn]] inline void malformed_mac_address_literal(std::string_view text,
                                                       const MacParseResult& result) {
  throw_mac_parse_error(text, result);
}

/// A bijective 64-bit finaliser (add a constant, then xor-shift-multiply three times): every
/// output bit depends on every input bit, and distinct inputs never collide.
constexpr std::uint64_t mac_hash_mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace detail

/// A 48-bit IEEE 802 MAC address (EUI-48).
///
/// Example:
///   using namespace devcache::literals;
///   constexpr auto gateway = "00:11:22:33:44:55"_mac;          // checked at compile time
///   auto mac = devcache::MacAddress::parse("0011.2233.4455");  // throws devcache::ParseError
///   if (auto m = devcache::MacAddress::try_parse(user_input)) { ... }
///   fmt::print("{} {:C} {:d}\n", mac, mac, mac);  // 00:11:22:33:44:55 00:11:... 0011.2233.4455
///
/// Thread-safety: a value type (see the file comment); every member is const or static.
class MacAddress {
 public:
  /// The largest value: ff:ff:ff:ff:ff:ff.
  static constexpr std::uint64_t max_value = 0xffff'ffff'ffffULL;

  /// 00:00:00:00:00:00. Throws: nothing.
  constexpr MacAddress() noexcept = default;

  /// Parses any spelling listed in the file comment.
  /// Thread-safety: pure. Complexity: O(text size).
  /// Throws: ParseError, whose message quotes `text` and says what is wrong and at which byte.
  static constexpr MacAddress parse(std::string_view text) {
    const detail::MacParseResult result = detail::parse_mac(text);
    if (!result.ok()) detail::throw_mac_parse_error(text, result);
    return MacAddress(result.value);
  }

  /// Like parse, but returns std::nullopt exactly where parse would throw.
  /// Thread-safety: pure. Complexity: O(text size). Throws: nothing.
  static constexpr std::optional<MacAddress> try_parse(std::string_view text) noexcept {
    const detail::MacParseResult result = detail::parse_mac(text);
    if (!result.ok()) return std::nullopt;
    return MacAddress(result.value);
  }

  /// The address whose octets are bits 47..0 of `value`, big-endian.
  /// Thread-safety: pure. Throws: std::out_of_range if value > max_value.
  static constexpr MacAddress from_u64(std::uint64_t value) {
    if (value > max_value) detail::throw_mac_out_of_range(value);
    return MacAddress(value);
  }

  /// The address with these octets, in transmission order. Thread-safety: pure. Throws: nothing.
  static constexpr MacAddress from_bytes(std::span<const std::uint8_t, 6> bytes) noexcept {
    std::uint64_t value = 0;
    for (const std::uint8_t b : bytes) value = (value << 8) | b;
    return MacAddress(value);
  }

  /// As from_bytes(span). Thread-safety: pure. Throws: nothing.
  static constexpr MacAddress from_bytes(const std::array<std::uint8_t, 6>& bytes) noexcept {
    return from_bytes(std::span<const std::uint8_t, 6>(bytes));
  }

  /// The address as an integer in [0, max_value]. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr std::uint64_t to_u64() const noexcept { return value_; }

  /// The six octets in transmission order. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr std::array<std::uint8_t, 6> to_bytes() const noexcept {
    std::array<std::uint8_t, 6> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<std::uint8_t>(value_ >> (40 - 8 * i));
    }
    return bytes;
  }

  /// The Organizationally Unique Identifier: the first three octets (bits 47..24).
  /// Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr std::uint32_t oui() const noexcept {
    return static_cast<std::uint32_t>(value_ >> 24);
  }

  /// True if the I/G bit (lowest bit of the first octet) is set: a group address. Broadcast is
  /// multicast too. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (value_ >> 40) & 1U; }

  /// True if the I/G bit is clear: an individual address. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_unicast() const noexcept { return !is_multicast(); }

  /// True for ff:ff:ff:ff:ff:ff. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_broadcast() const noexcept { return value_ == max_value; }

  /// True for 00:00:00:00:00:00. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_zero() const noexcept { return value_ == 0; }

  /// True if the U/L bit (second-lowest bit of the first octet) is set: assigned locally rather
  /// than from a vendor's OUI. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_locally_administered() const noexcept {
    return (value_ >> 41) & 1U;
  }

  /// True if the U/L bit is clear. Thread-safety: const. Throws: nothing.
  [[nodiscard]] constexpr bool is_universal() const noexcept { return !is_locally_administered(); }

  /// The canonical form, lowercase with colons: "00:11:22:33:44:55".
  /// Thread-safety: const. Throws: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    return std::string(detail::mac_format(value_, 'c').view());
  }

  /// Numeric order, which is lexicographic order of the octets (std::strong_ordering).
  /// Throws: nothing.
  // clang-tidy 14 reports the literal 0 of the synthesised comparison:
  // NOLINTNEXTLINE(modernize-use-nullptr)
  friend constexpr auto operator<=>(const MacAddress&, const MacAddress&) noexcept = default;
  /// Throws: nothing.
  friend constexpr bool operator==(const MacAddress&, const MacAddress&) noexcept = default;

  /// Writes the canonical form (honouring the stream's width and fill). A template so that this
  /// header needs only <iosfwd>: it is instantiated where the caller has included <ostream>.
  /// Thread-safety: as for the stream. Throws: whatever the stream throws.
  template <class CharT, class Traits>
  friend std::basic_ostream<CharT, Traits>& operator<<(std::basic_ostream<CharT, Traits>& os,
                                                       MacAddress mac) {
    return os << detail::mac_format(mac.value_, 'c').c_str();
  }

 private:
  constexpr explicit MacAddress(std::uint64_t value) noexcept : value_(value) {}

  std::uint64_t value_ = 0;
};

namespace literals {

/// "00:11:22:33:44:55"_mac: a MacAddress checked at compile time. Accepts what parse accepts; a
/// malformed literal does not compile (the diagnostic names malformed_mac_address_literal).
/// Thread-safety: compile time only.
consteval MacAddress operator""_mac(const char* text, std::size_t size) {
  const std::string_view view(text, size);
  const detail::MacParseResult result = detail::parse_mac(view);
  if (!result.ok()) detail::malformed_mac_address_literal(view, result);
  return MacAddress::from_u64(result.value);
}

}  // namespace literals

}  // namespace devcache

/// devcache's maps feed a MacAddress's 48-bit value straight to their seeded mixer (see
/// RawHashInput in hash_seed.hpp) rather than hashing it twice.
template <>
struct devcache::RawHashInput<devcache::MacAddress> {
  static constexpr std::uint64_t get(devcache::MacAddress mac) noexcept { return mac.to_u64(); }
};

/// The unkeyed default hash: a bijective 64-bit finaliser over all 48 bits (never the identity).
/// devcache's maps mix it again with a per-map random seed.
/// Thread-safety: pure. Throws: nothing.
template <>
struct std::hash<devcache::MacAddress> {
  std::size_t operator()(devcache::MacAddress mac) const noexcept {
    const std::uint64_t h = devcache::detail::mac_hash_mix(mac.to_u64());
    if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t)) {
      return static_cast<std::size_t>(h ^ (h >> 32));
    } else {
      return static_cast<std::size_t>(h);
    }
  }
};

/// fmt support; the format specs are listed in the file comment.
/// Thread-safety: pure. Throws: fmt::format_error for an unknown spec (at compile time for
/// checked format strings).
template <>
struct fmt::formatter<devcache::MacAddress> {
  constexpr auto parse(fmt::format_parse_context& ctx) -> fmt::format_parse_context::iterator {
    auto it = ctx.begin();
    const auto end = ctx.end();
    if (it == end || *it == '}') return it;
    switch (*it) {
      case 'c':
      case 'C':
      case 'h':
      case 'H':
      case 'd':
      case 'D':
      case 'b':
      case 'B':
        style_ = *it++;
        break;
      default:
        throw fmt::format_error(
            "invalid format spec for devcache::MacAddress (expected one of c C h H d D b B)");
    }
    if (it != end && *it != '}') {
      throw fmt::format_error(
          "invalid format spec for devcache::MacAddress (expected a single letter)");
    }
    return it;
  }

  template <class FormatContext>
  auto format(devcache::MacAddress mac, FormatContext& ctx) const -> decltype(ctx.out()) {
    const devcache::detail::MacText text = devcache::detail::mac_format(mac.to_u64(), style_);
    auto out = ctx.out();
    for (const char c : text.view()) *out++ = c;
    return out;
  }

 private:
  char style_ = 'c';  // the spec letter; see mac_format
};
