// devcache/ip_address.hpp — IpAddress (IPv4 or IPv6) and IpNetwork (a CIDR block such as
// "10.0.0.0/8" or "fd00::/8"), with their std::hash and fmt::formatter specialisations.
//
// Parsing and printing go through the platform's inet_pton / inet_ntop (<arpa/inet.h>): devcache
// does not carry its own address grammar. Around that call, the parser adds the checks inet_pton
// leaves to its caller, so that what is accepted is the same on every platform and every
// rejection says why:
//   * the text is copied into a bounded, NUL-terminated buffer; inputs longer than the longest
//     address (45 characters, INET6_ADDRSTRLEN - 1) and inputs holding a '\0' are rejected first,
//     because a string_view is not a C string (an embedded NUL would otherwise end the text early);
//   * text holding a ':' is parsed as IPv6, anything else as IPv4;
//   * IPv4 (and the IPv4 tail of an IPv6 address such as "::ffff:10.0.0.1") is the strict
//     dotted-quad form: four decimal components 0..255. A component with a leading zero
//     ("010.0.0.1") is rejected with a message saying so, since some parsers read it as octal;
//     glibc's inet_pton rejects it as well, the explicit check makes that hold on every platform;
//   * zone (scope) indices ("fe80::1%eth0"), brackets ("[::1]"), whitespace, "0x" forms and
//     shorthand such as "10.1" are rejected.
// Error messages quote the input (escaped, truncated past 64 bytes) and say what is wrong:
//   invalid IP address "10.0.0.300": not a valid IPv4 or IPv6 address
//   invalid CIDR "10.0.0.0/33": prefix length 33 is out of range 0..32 for IPv4
//
// Decisions:
//   * An IPv4-mapped IPv6 address ("::ffff:10.0.0.1") stays an IPv6 address: it is not equal to
//     10.0.0.1 and no IPv4 network contains it (Python's ipaddress module behaves the same way).
//     unmapped() converts it when a caller wants the IPv4 view.
//   * IpNetwork::parse is strict: the prefix length is required ("10.0.0.0" alone is rejected),
//     must be plain decimal without a leading zero, must be in 0..32 (IPv4) or 0..128 (IPv6), and
//     the address must have no host bits set ("10.0.0.1/8" is rejected with a message naming the
//     network that was probably meant, 10.0.0.0/8), like Python's ip_network(strict=True). A
//     mistyped network is more likely a bug than an intent. IpNetwork::containing(address, prefix)
//     is the non-strict form: it masks the host bits.
//   * Ordering: every IPv4 address sorts before every IPv6 address; within a family, numeric
//     (byte-wise) order. Networks order by address, then prefix length.
//   * The text form is the platform's inet_ntop output: on glibc, RFC 5952 (lower case, the
//     longest run of zero groups compressed) with dotted IPv4 for ::ffff:a.b.c.d.
//
// Thread-safety for the whole file: IpAddress and IpNetwork are plain values like int. Every
// function here is pure or const (inet_pton and inet_ntop are thread-safe), so any number of
// threads may use them concurrently; writing to one object while another thread reads it needs
// external synchronisation, as with any value.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <devcache/detail/quote.hpp>
#include <devcache/errors.hpp>

namespace devcache {

/// The two address families.
enum class IpFamily : std::uint8_t { v4 = 4, v6 = 6 };

class IpAddress;

namespace detail {

/// The longest text an IpAddress can have or parse from: INET6_ADDRSTRLEN - 1 (45).
inline constexpr std::size_t ip_max_text_size = INET6_ADDRSTRLEN - 1;
static_assert(INET_ADDRSTRLEN <= INET6_ADDRSTRLEN);

/// What went wrong; IpParseErrc::none means the parse succeeded.
enum class IpParseErrc : std::uint8_t {
  none,
  empty,         // the input is empty
  too_long,      // longer than ip_max_text_size
  nul,           // holds a '\0' (at `position`)
  whitespace,    // holds a space, tab, ... (at `position`)
  zone,          // an IPv6 zone index: "%eth0" (from `position`)
  brackets,      // "[::1]": brackets belong to URLs, not addresses
  leading_zero,  // an IPv4 component such as "010" (`component`)
  invalid,       // rejected by inet_pton
};

/// The outcome of parse_ip: the address bytes (the first 4 for IPv4, the rest zero), or an error.
struct IpParseResult {
  IpParseErrc error = IpParseErrc::none;
  IpFamily family = IpFamily::v4;
  std::array<std::uint8_t, 16> bytes{};
  std::size_t position = 0;
  std::string_view component;  // for leading_zero: a view into the input
  [[nodiscard]] bool ok() const noexcept { return error == IpParseErrc::none; }
};

/// The first dotted-decimal component of `text` with a leading zero ("010"), or an empty view.
/// Only the part after the last ':' can be dotted decimal; IPv6 hex groups may have leading
/// zeros ("::0001").
inline std::string_view ip_find_leading_zero(std::string_view text) noexcept {
  const std::size_t colon = text.rfind(':');
  std::string_view tail = colon == std::string_view::npos ? text : text.substr(colon + 1);
  if (tail.find('.') == std::string_view::npos) return {};
  while (!tail.empty()) {
    const std::size_t dot = tail.find('.');
    const std::string_view part = tail.substr(0, dot);
    if (part.size() > 1 && part[0] == '0' && part[1] >= '0' && part[1] <= '9') return part;
    if (dot == std::string_view::npos) break;
    tail.remove_prefix(dot + 1);
  }
  return {};
}

/// The one parser behind IpAddress::parse and try_parse. Never allocates, never throws.
/// Complexity: O(text size).
inline IpParseResult parse_ip(std::string_view text) noexcept {
  IpParseResult r;
  if (text.empty()) {
    r.error = IpParseErrc::empty;
    return r;
  }
  if (text.size() > ip_max_text_size) {
    r.error = IpParseErrc::too_long;
    return r;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\0') {
      r.error = IpParseErrc::nul;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      r.error = IpParseErrc::whitespace;
    } else if (c == '%') {
      r.error = IpParseErrc::zone;
    } else {
      continue;
    }
    r.position = i;
    return r;
  }
  if (text.front() == '[' || text.back() == ']') {
    r.error = IpParseErrc::brackets;
    return r;
  }
  if (const std::string_view zero = ip_find_leading_zero(text); !zero.empty()) {
    r.error = IpParseErrc::leading_zero;
    r.component = zero;
    return r;
  }
  // inet_pton wants a C string: copy into a bounded buffer (the length was checked above).
  std::array<char, ip_max_text_size + 1> buffer{};
  std::memcpy(buffer.data(), text.data(), text.size());
  const bool v6 = text.find(':') != std::string_view::npos;
  r.family = v6 ? IpFamily::v6 : IpFamily::v4;
  if (::inet_pton(v6 ? AF_INET6 : AF_INET, buffer.data(), r.bytes.data()) != 1) {
    r.error = IpParseErrc::invalid;
    r.bytes = {};
  }
  return r;
}

/// Why parse_ip failed, as the part of a message after the colon.
inline std::string ip_error_reason(std::string_view input, const IpParseResult& r) {
  const std::string at = " at position " + std::to_string(r.position);
  switch (r.error) {
    case IpParseErrc::none:
      return "no error";
    case IpParseErrc::empty:
      return "empty input";
    case IpParseErrc::too_long:
      return std::to_string(input.size()) +
             " bytes is longer than any IPv4 or IPv6 address (at most " +
             std::to_string(ip_max_text_size) + ")";
    case IpParseErrc::nul:
      return "NUL byte" + at;
    case IpParseErrc::whitespace: {
      return "whitespace " + quote_char(input[r.position]) + at + " is not allowed";
    }
    case IpParseErrc::zone:
      return "IPv6 zone indices (" + quote_input(input.substr(r.position)) + at +
             ") are not supported";
    case IpParseErrc::brackets:
      return "square brackets are not part of an address (write ::1, not [::1])";
    case IpParseErrc::leading_zero:
      return "IPv4 component " + quote_input(r.component) +
             " has a leading zero (it could be read as octal)";
    case IpParseErrc::invalid:
      return "not a valid IPv4 or IPv6 address";
  }
  return "unknown error";
}

/// Writes the address's text form to `out` (room for ip_max_text_size + 1 chars, NUL-terminated);
/// returns the length. Never throws.
inline std::size_t ip_to_chars(IpFamily family, const std::array<std::uint8_t, 16>& bytes,
                               std::array<char, ip_max_text_size + 1>& out) noexcept {
  const int af = family == IpFamily::v4 ? AF_INET : AF_INET6;
  if (::inet_ntop(af, bytes.data(), out.data(), static_cast<socklen_t>(out.size())) == nullptr) {
    out[0] = '\0';  // cannot happen: the buffer is large enough for both families
    return 0;
  }
  return std::strlen(out.data());
}

/// Zeroes every bit after the first `prefix` bits of bytes[0..size).
constexpr void ip_mask(std::array<std::uint8_t, 16>& bytes, std::size_t size,
                       std::size_t prefix) noexcept {
  for (std::size_t i = 0; i < size; ++i) {
    const std::size_t first_bit = 8 * i;
    if (prefix >= first_bit + 8) continue;
    const std::size_t keep = prefix > first_bit ? prefix - first_bit : 0;
    bytes[i] = static_cast<std::uint8_t>(bytes[i] & static_cast<std::uint8_t>(0xff00U >> keep));
  }
}

/// A bijective 64-bit finaliser (xor-shift-multiply); every output bit depends on every input bit.
constexpr std::uint64_t ip_hash_mix(std::uint64_t x) noexcept {
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

}  // namespace detail

/// An IPv4 or IPv6 address: a 17-byte value type.
///
/// Example:
///   auto ip = devcache::IpAddress::parse("10.0.0.7");          // throws devcache::ParseError
///   if (auto v6 = devcache::IpAddress::try_parse(text)) { ... }  // noexcept
///   fmt::print("{} {:>15}\n", ip, ip);                          // fmt width/fill/align work
///   bool lan = devcache::IpNetwork::parse("10.0.0.0/8").contains(ip);
///
/// Thread-safety: a value type (see the file comment); every member is const or static.
class IpAddress {
 public:
  /// The longest text form: 45 characters (INET6_ADDRSTRLEN - 1).
  static constexpr std::size_t max_text_size = detail::ip_max_text_size;

  /// 0.0.0.0 (IPv4). Throws: nothing.
  constexpr IpAddress() noexcept = default;

  /// Parses an IPv4 address in dotted-quad form or an IPv6 address in any RFC 4291 form
  /// (compressed, full, with an embedded IPv4 tail), as described in the file comment.
  /// Thread-safety: pure. Complexity: O(text size).
  /// Throws: ParseError, whose message quotes `text` and says what is wrong; std::bad_alloc.
  static IpAddress parse(std::string_view text) {
    const detail::IpParseResult r = detail::parse_ip(text);
    if (!r.ok()) {
      throw ParseError("invalid IP address " + detail::quote_input(text) + ": " +
                           detail::ip_error_reason(text, r),
                       text);
    }
    return {r.family, r.bytes};
  }

  /// Like parse, but returns std::nullopt exactly where parse would throw.
  /// Thread-safety: pure. Complexity: O(text size). Throws: nothing (never allocates).
  static std::optional<IpAddress> try_parse(std::string_view text) noexcept {
    const detail::IpParseResult r = detail::parse_ip(text);
    if (!r.ok()) return std::nullopt;
    return IpAddress(r.family, r.bytes);
  }

  /// The IPv4 address whose value (host byte order) is `value`: from_v4(0x0a000001) is 10.0.0.1.
  /// Throws: nothing.
  static constexpr IpAddress from_v4(std::uint32_t value) noexcept {
    return from_bytes(std::array<std::uint8_t, 4>{
        static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
        static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)});
  }

  /// The IPv4 address with these octets, in network order. Throws: nothing.
  static constexpr IpAddress from_bytes(const std::array<std::uint8_t, 4>& octets) noexcept {
    std::array<std::uint8_t, 16> bytes{};
    std::copy(octets.begin(), octets.end(), bytes.begin());
    return {IpFamily::v4, bytes};
  }

  /// The IPv6 address with these bytes, in network order. Throws: nothing.
  static constexpr IpAddress from_bytes(const std::array<std::uint8_t, 16>& bytes) noexcept {
    return {IpFamily::v6, bytes};
  }

  /// The family. Throws: nothing.
  [[nodiscard]] constexpr IpFamily family() const noexcept { return family_; }
  [[nodiscard]] constexpr bool is_v4() const noexcept { return family_ == IpFamily::v4; }
  [[nodiscard]] constexpr bool is_v6() const noexcept { return family_ == IpFamily::v6; }

  /// The address bits: 32 for IPv4, 128 for IPv6. Throws: nothing.
  [[nodiscard]] constexpr std::size_t bit_width() const noexcept { return is_v4() ? 32 : 128; }

  /// The address bytes in network order: 4 for IPv4, 16 for IPv6. The span points into *this.
  /// Throws: nothing.
  [[nodiscard]] constexpr std::span<const std::uint8_t> bytes() const noexcept {
    return {bytes_.data(), is_v4() ? std::size_t{4} : std::size_t{16}};
  }

  /// True for an IPv4-mapped IPv6 address, ::ffff:a.b.c.d. Throws: nothing.
  [[nodiscard]] constexpr bool is_v4_mapped() const noexcept {
    if (!is_v6()) return false;
    for (std::size_t i = 0; i < 10; ++i) {
      if (bytes_[i] != 0) return false;
    }
    return bytes_[10] == 0xff && bytes_[11] == 0xff;
  }

  /// The IPv4 address an IPv4-mapped IPv6 address maps, or *this for any other address.
  /// Throws: nothing.
  [[nodiscard]] constexpr IpAddress unmapped() const noexcept {
    if (!is_v4_mapped()) return *this;
    return from_bytes(std::array<std::uint8_t, 4>{bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
  }

  /// The text form (inet_ntop): "10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1".
  /// Thread-safety: const. Throws: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    std::array<char, max_text_size + 1> buffer{};
    return {buffer.data(), detail::ip_to_chars(family_, bytes_, buffer)};
  }

  /// Writes the text form to `out`, NUL-terminated, and returns its length: to_string() without
  /// allocating. Thread-safety: const. Throws: nothing.
  std::size_t to_chars(std::array<char, max_text_size + 1>& out) const noexcept {
    return detail::ip_to_chars(family_, bytes_, out);
  }

  /// IPv4 before IPv6, then numeric order. Throws: nothing.
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misfires on a defaulted <=>
  friend constexpr auto operator<=>(const IpAddress&, const IpAddress&) noexcept = default;
  friend constexpr bool operator==(const IpAddress&, const IpAddress&) noexcept = default;

 private:
  constexpr IpAddress(IpFamily family, const std::array<std::uint8_t, 16>& bytes) noexcept
      : family_(family), bytes_(bytes) {}

  // Declaration order is comparison order. For IPv4 only bytes_[0..4) are used; the rest are 0.
  IpFamily family_ = IpFamily::v4;
  std::array<std::uint8_t, 16> bytes_{};
};

/// A CIDR block: an address whose host bits are zero and a prefix length, e.g. 10.0.0.0/8 or
/// fd00::/8. See the file comment for what parse() accepts.
///
/// Example:
///   const auto lan = devcache::IpNetwork::parse("192.168.0.0/16");
///   lan.contains(devcache::IpAddress::parse("192.168.1.20"));   // true
///   devcache::IpNetwork::parse("192.168.1.1/16");                // throws: host bits are set
///   devcache::IpNetwork::containing(ip, 24);                     // masks instead: a.b.c.0/24
///
/// Thread-safety: a value type (see the file comment).
class IpNetwork {
 public:
  /// 0.0.0.0/0: every IPv4 address. Throws: nothing.
  constexpr IpNetwork() noexcept = default;

  /// Parses "address/prefix-length" strictly (see the file comment).
  /// Thread-safety: pure. Complexity: O(text size).
  /// Throws: ParseError, whose message quotes `text` and says what is wrong; std::bad_alloc.
  static IpNetwork parse(std::string_view text) {
    const Parsed p = parse_impl(text);
    if (p.error == Errc::none) return {p.network_address, p.prefix};
    throw ParseError("invalid CIDR " + detail::quote_input(text) + ": " + error_reason(text, p),
                     text);
  }

  /// Like parse, but returns std::nullopt exactly where parse would throw.
  /// Thread-safety: pure. Throws: nothing (never allocates).
  static std::optional<IpNetwork> try_parse(std::string_view text) noexcept {
    const Parsed p = parse_impl(text);
    if (p.error != Errc::none) return std::nullopt;
    return IpNetwork(p.network_address, p.prefix);
  }

  /// The network of `prefix_length` bits that contains `address`: host bits are masked off,
  /// so containing(10.1.2.3, 8) is 10.0.0.0/8 (the non-strict form of parse).
  /// Throws: std::out_of_range if prefix_length exceeds address.bit_width().
  static IpNetwork containing(const IpAddress& address, std::size_t prefix_length) {
    if (prefix_length > address.bit_width()) {
      throw std::out_of_range("IpNetwork::containing: prefix length " +
                              std::to_string(prefix_length) + " is out of range 0.." +
                              std::to_string(address.bit_width()) + " for " +
                              (address.is_v4() ? "IPv4" : "IPv6"));
    }
    return {mask(address, prefix_length), static_cast<std::uint8_t>(prefix_length)};
  }

  /// The network address (host bits zero). Throws: nothing.
  [[nodiscard]] constexpr const IpAddress& address() const noexcept { return address_; }
  /// The prefix length: 0..32 for IPv4, 0..128 for IPv6. Throws: nothing.
  [[nodiscard]] constexpr std::size_t prefix_length() const noexcept { return prefix_; }
  [[nodiscard]] constexpr IpFamily family() const noexcept { return address_.family(); }
  [[nodiscard]] constexpr bool is_v4() const noexcept { return address_.is_v4(); }
  [[nodiscard]] constexpr bool is_v6() const noexcept { return address_.is_v6(); }

  /// True if `ip` has the same family and its first prefix_length() bits equal the network's.
  /// An IPv4-mapped IPv6 address is not in any IPv4 network (use ip.unmapped() for that).
  /// Thread-safety: const. Complexity: O(1). Throws: nothing.
  [[nodiscard]] bool contains(const IpAddress& ip) const noexcept {
    if (ip.family() != address_.family()) return false;
    return mask(ip, prefix_) == address_;
  }

  /// "10.0.0.0/8". Thread-safety: const. Throws: std::bad_alloc.
  [[nodiscard]] std::string to_string() const {
    return address_.to_string() + "/" + std::to_string(prefix_);
  }

  /// By address (so IPv4 first), then by prefix length. Throws: nothing.
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misfires on a defaulted <=>
  friend constexpr auto operator<=>(const IpNetwork&, const IpNetwork&) noexcept = default;
  friend constexpr bool operator==(const IpNetwork&, const IpNetwork&) noexcept = default;

 private:
  enum class Errc : std::uint8_t {
    none,
    no_slash,
    bad_address,
    empty_prefix,
    prefix_not_decimal,
    prefix_leading_zero,
    prefix_out_of_range,
    host_bits_set
  };
  struct Parsed {
    Errc error = Errc::none;
    IpAddress network_address;  // masked
    std::uint8_t prefix = 0;
    detail::IpParseResult address;  // for bad_address
    std::size_t slash = 0;
    std::size_t max_prefix = 0;
  };

  constexpr IpNetwork(const IpAddress& address, std::uint8_t prefix) noexcept
      : address_(address), prefix_(prefix) {}

  static IpAddress mask(const IpAddress& ip, std::size_t prefix) noexcept {
    std::array<std::uint8_t, 16> bytes{};
    const std::span<const std::uint8_t> src = ip.bytes();
    std::copy(src.begin(), src.end(), bytes.begin());
    detail::ip_mask(bytes, src.size(), prefix);
    if (ip.is_v4())
      return IpAddress::from_bytes(
          std::array<std::uint8_t, 4>{bytes[0], bytes[1], bytes[2], bytes[3]});
    return IpAddress::from_bytes(bytes);
  }

  static Parsed parse_impl(std::string_view text) noexcept {
    Parsed p;
    p.slash = text.find('/');
    if (p.slash == std::string_view::npos) {
      p.error = Errc::no_slash;
      return p;
    }
    p.address = detail::parse_ip(text.substr(0, p.slash));
    if (!p.address.ok()) {
      p.error = Errc::bad_address;
      return p;
    }
    const IpAddress ip =
        p.address.family == IpFamily::v4
            ? IpAddress::from_bytes(std::array<std::uint8_t, 4>{
                  p.address.bytes[0], p.address.bytes[1], p.address.bytes[2], p.address.bytes[3]})
            : IpAddress::from_bytes(p.address.bytes);
    p.max_prefix = ip.bit_width();
    const std::string_view digits = text.substr(p.slash + 1);
    if (digits.empty()) {
      p.error = Errc::empty_prefix;
      return p;
    }
    std::size_t prefix = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') {
        p.error = Errc::prefix_not_decimal;
        return p;
      }
      if (prefix <= 128) prefix = prefix * 10 + static_cast<std::size_t>(c - '0');
    }
    if (digits.size() > 1 && digits[0] == '0') {
      p.error = Errc::prefix_leading_zero;
      return p;
    }
    if (prefix > p.max_prefix) {
      p.error = Errc::prefix_out_of_range;
      return p;
    }
    p.network_address = mask(ip, prefix);
    p.prefix = static_cast<std::uint8_t>(prefix);
    if (p.network_address != ip) p.error = Errc::host_bits_set;
    return p;
  }

  static std::string error_reason(std::string_view text, const Parsed& p) {
    const std::string_view digits =
        p.slash == std::string_view::npos ? std::string_view{} : text.substr(p.slash + 1);
    const std::string family = p.max_prefix == 32 ? "IPv4" : "IPv6";
    switch (p.error) {
      case Errc::none:
        return "no error";
      case Errc::no_slash:
        return R"(missing "/" and prefix length (e.g. "10.0.0.0/8"))";
      case Errc::bad_address: {
        const std::string_view address = text.substr(0, p.slash);
        return "address " + detail::quote_input(address) + ": " +
               detail::ip_error_reason(address, p.address);
      }
      case Errc::empty_prefix:
        return "the prefix length after \"/\" is empty";
      case Errc::prefix_not_decimal:
        return "prefix length " + detail::quote_input(digits) + " is not a decimal number";
      case Errc::prefix_leading_zero:
        return "prefix length " + detail::quote_input(digits) + " has a leading zero";
      case Errc::prefix_out_of_range:
        return "prefix length " + detail::quote_input(digits) + " is out of range 0.." +
               std::to_string(p.max_prefix) + " for " + family;
      case Errc::host_bits_set:
        return "host bits are set (the network is " + p.network_address.to_string() + "/" +
               std::to_string(p.prefix) + ")";
    }
    return "unknown error";
  }

  // Declaration order is comparison order.
  IpAddress address_;
  std::uint8_t prefix_ = 0;
};

}  // namespace devcache

/// Hashes the family and all address bytes. Thread-safety: pure. Throws: nothing.
template <>
struct std::hash<devcache::IpAddress> {
  std::size_t operator()(const devcache::IpAddress& ip) const noexcept {
    std::array<std::uint8_t, 16> bytes{};
    const std::span<const std::uint8_t> src = ip.bytes();
    std::copy(src.begin(), src.end(), bytes.begin());
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      hi = (hi << 8) | bytes[i];
      lo = (lo << 8) | bytes[i + 8];
    }
    const std::uint64_t h = devcache::detail::ip_hash_mix(
        devcache::detail::ip_hash_mix(hi ^ static_cast<std::uint64_t>(ip.family())) ^ lo);
    return static_cast<std::size_t>(h);
  }
};

/// Hashes the network address and the prefix length. Thread-safety: pure. Throws: nothing.
template <>
struct std::hash<devcache::IpNetwork> {
  std::size_t operator()(const devcache::IpNetwork& net) const noexcept {
    const std::uint64_t h = std::hash<devcache::IpAddress>()(net.address());
    return static_cast<std::size_t>(devcache::detail::ip_hash_mix(h + net.prefix_length()));
  }
};

/// fmt support: the text form, with fmt's string specs (width, fill, alignment: "{:>15}").
/// Thread-safety: pure. Throws: fmt::format_error for an invalid spec.
template <>
struct fmt::formatter<devcache::IpAddress> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(const devcache::IpAddress& ip, FormatContext& ctx) const -> decltype(ctx.out()) {
    std::array<char, devcache::IpAddress::max_text_size + 1> buffer{};
    const std::size_t size = ip.to_chars(buffer);
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(buffer.data(), size), ctx);
  }
};

/// fmt support: "10.0.0.0/8", with fmt's string specs (width, fill, alignment).
/// Thread-safety: pure. Throws: fmt::format_error for an invalid spec; std::bad_alloc.
template <>
struct fmt::formatter<devcache::IpNetwork> : fmt::formatter<fmt::string_view> {
  template <class FormatContext>
  auto format(const devcache::IpNetwork& net, FormatContext& ctx) const -> decltype(ctx.out()) {
    std::array<char, devcache::IpAddress::max_text_size + 1> buffer{};
    std::size_t size = net.address().to_chars(buffer);
    fmt::memory_buffer text;
    text.append(buffer.data(), buffer.data() + size);
    fmt::format_to(std::back_inserter(text), "/{}", net.prefix_length());
    size = text.size();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), size), ctx);
  }
};
