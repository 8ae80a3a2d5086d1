// tests/fuzz/ip_parse.cpp — fuzz target for IpAddress and IpNetwork (CIDR) parsing.
//
// The whole input is parsed both as an address and as a network. If it holds a '|', the part
// before the first '|' is also parsed as a network and the part after it as an address, to test
// contains() on unrelated pairs. Properties checked:
//   * parse and try_parse agree (acceptance and value); parse throws only devcache::ParseError,
//     whose input() is the text and whose message quotes it (escaped, truncated past 64 bytes);
//   * text without ':' is accepted as an address exactly when it is a strict dotted quad (four
//     decimal components 0..255 without leading zeros: a reference parser), with those bytes;
//     text with ':' is accepted only as IPv6;
//   * an accepted address or network formats (to_string, to_chars, fmt with and without a width)
//     to text that parses back to the same value;
//   * a network: its address part parses to its address, its prefix is in range, it contains its
//     own address and the addresses that differ from it in host bits only, not those that differ
//     in a network bit or in family; containing(address, prefix) gives it back;
//   * contains(ip) matches a bit-by-bit reference on every (network, address) pair.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>

#include "fuzz_check.hpp"

namespace {

using devcache::IpAddress;
using devcache::IpNetwork;

// The strict dotted quad, from the documented rules.
std::optional<std::array<std::uint8_t, 4>> reference_v4(std::string_view text) {
  std::array<std::uint8_t, 4> octets{};
  std::size_t count = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '.') continue;
    const std::string_view part = text.substr(start, i - start);
    if (count == 4 || part.empty() || part.size() > 3) return std::nullopt;
    if (part.size() > 1 && part[0] == '0') return std::nullopt;
    unsigned value = 0;
    for (const char c : part) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 255) return std::nullopt;
    octets[count++] = static_cast<std::uint8_t>(value);
    start = i + 1;
  }
  if (count != 4) return std::nullopt;
  return octets;
}

bool bit(const IpAddress& ip, std::size_t i) {
  return ((ip.bytes()[i / 8] >> (7 - i % 8)) & 1U) != 0;
}

// `ip` with bit i (0 = the most significant) flipped.
IpAddress flip(const IpAddress& ip, std::size_t i) {
  std::array<std::uint8_t, 16> bytes{};
  for (std::size_t k = 0; k < ip.bytes().size(); ++k) bytes[k] = ip.bytes()[k];
  bytes[i / 8] = static_cast<std::uint8_t>(bytes[i / 8] ^ (0x80U >> (i % 8)));
  if (ip.is_v4())
    return IpAddress::from_bytes(
        std::array<std::uint8_t, 4>{bytes[0], bytes[1], bytes[2], bytes[3]});
  return IpAddress::from_bytes(bytes);
}

bool reference_contains(const IpNetwork& net, const IpAddress& ip) {
  if (net.family() != ip.family()) return false;
  for (std::size_t i = 0; i < net.prefix_length(); ++i) {
    if (bit(net.address(), i) != bit(ip, i)) return false;
  }
  return true;
}

std::optional<IpAddress> parse_address(std::string_view text) {
  const std::optional<IpAddress> tried = IpAddress::try_parse(text);
  std::optional<IpAddress> parsed;
  try {
    parsed = IpAddress::parse(text);
  } catch (const devcache::ParseError& e) {
    DEVCACHE_FUZZ_CHECK(e.input() == text);
    devcache::fuzz::check_message_quotes_input(e.what(), "invalid IP address ", text,
                                               devcache::detail::message_max_input);
  }
  DEVCACHE_FUZZ_CHECK(parsed.has_value() == tried.has_value());
  if (!parsed) return std::nullopt;
  DEVCACHE_FUZZ_CHECK(*parsed == *tried);
  return parsed;
}

std::optional<IpNetwork> parse_network(std::string_view text) {
  const std::optional<IpNetwork> tried = IpNetwork::try_parse(text);
  std::optional<IpNetwork> parsed;
  try {
    parsed = IpNetwork::parse(text);
  } catch (const devcache::ParseError& e) {
    DEVCACHE_FUZZ_CHECK(e.input() == text);
    devcache::fuzz::check_message_quotes_input(e.what(), "invalid CIDR ", text,
                                               devcache::detail::message_max_input);
  }
  DEVCACHE_FUZZ_CHECK(parsed.has_value() == tried.has_value());
  if (!parsed) return std::nullopt;
  DEVCACHE_FUZZ_CHECK(*parsed == *tried);
  return parsed;
}

void check_address(std::string_view text, const std::optional<IpAddress>& ip) {
  const bool has_colon = text.find(':') != std::string_view::npos;
  if (!has_colon) {
    const auto expected = reference_v4(text);
    DEVCACHE_FUZZ_CHECK(expected.has_value() == ip.has_value());
    if (ip) {
      DEVCACHE_FUZZ_CHECK(ip->is_v4());
      DEVCACHE_FUZZ_CHECK(IpAddress::from_bytes(*expected) == *ip);
    }
  }
  if (!ip) return;
  DEVCACHE_FUZZ_CHECK(ip->is_v6() == has_colon);
  DEVCACHE_FUZZ_CHECK(ip->bytes().size() == (ip->is_v4() ? 4U : 16U));
  DEVCACHE_FUZZ_CHECK(ip->bit_width() == 8 * ip->bytes().size());

  const std::string canonical = ip->to_string();
  DEVCACHE_FUZZ_CHECK(!canonical.empty() && canonical.size() <= IpAddress::max_text_size);
  DEVCACHE_FUZZ_CHECK(IpAddress::parse(canonical) == *ip);
  DEVCACHE_FUZZ_CHECK(IpAddress::try_parse(canonical) == ip);
  std::array<char, IpAddress::max_text_size + 1> buffer{};
  DEVCACHE_FUZZ_CHECK(std::string_view(buffer.data(), ip->to_chars(buffer)) == canonical);
  DEVCACHE_FUZZ_CHECK(fmt::format("{}", *ip) == canonical);
  const std::string padded = fmt::format("{:>50}", *ip);
  DEVCACHE_FUZZ_CHECK(padded.size() == 50 && padded.ends_with(canonical));
  DEVCACHE_FUZZ_CHECK(std::hash<IpAddress>{}(IpAddress::parse(canonical)) ==
                      std::hash<IpAddress>{}(*ip));

  if (ip->is_v4_mapped()) {
    const IpAddress v4 = ip->unmapped();
    DEVCACHE_FUZZ_CHECK(v4.is_v4());
    for (std::size_t i = 0; i < 4; ++i) DEVCACHE_FUZZ_CHECK(v4.bytes()[i] == ip->bytes()[12 + i]);
    DEVCACHE_FUZZ_CHECK(v4 != *ip);
  } else {
    DEVCACHE_FUZZ_CHECK(ip->unmapped() == *ip);
  }
}

void check_network(std::string_view text, const IpNetwork& net) {
  const std::size_t slash = text.find('/');
  DEVCACHE_FUZZ_CHECK(slash != std::string_view::npos);
  DEVCACHE_FUZZ_CHECK(IpAddress::parse(text.substr(0, slash)) == net.address());
  DEVCACHE_FUZZ_CHECK(std::to_string(net.prefix_length()) == text.substr(slash + 1));
  const IpAddress& address = net.address();
  const std::size_t width = address.bit_width();
  DEVCACHE_FUZZ_CHECK(net.prefix_length() <= width);
  DEVCACHE_FUZZ_CHECK(net.family() == address.family());

  const std::string canonical = net.to_string();
  DEVCACHE_FUZZ_CHECK(canonical == address.to_string() + "/" + std::to_string(net.prefix_length()));
  DEVCACHE_FUZZ_CHECK(IpNetwork::parse(canonical) == net);
  DEVCACHE_FUZZ_CHECK(fmt::format("{}", net) == canonical);
  const std::string padded = fmt::format("{:<60}", net);
  DEVCACHE_FUZZ_CHECK(padded.size() == 60 && padded.starts_with(canonical));

  DEVCACHE_FUZZ_CHECK(net.contains(address));
  DEVCACHE_FUZZ_CHECK(IpNetwork::containing(address, net.prefix_length()) == net);
  for (std::size_t i = 0; i < width; ++i) {
    // Flipping a host bit stays inside; flipping a network bit leaves.
    const IpAddress other = flip(address, i);
    DEVCACHE_FUZZ_CHECK(net.contains(other) == (i >= net.prefix_length()));
    DEVCACHE_FUZZ_CHECK(reference_contains(net, other) == net.contains(other));
    if (i >= net.prefix_length()) {
      DEVCACHE_FUZZ_CHECK(IpNetwork::containing(other, net.prefix_length()) == net);
    }
  }
  // The other family never matches, whatever its bits.
  const IpAddress other_family = address.is_v4()
                                     ? IpAddress::from_bytes(std::array<std::uint8_t, 16>{})
                                     : IpAddress::from_v4(0);
  DEVCACHE_FUZZ_CHECK(!net.contains(other_family));
  // Host bits set: rejected by the strict parse, masked by containing().
  if (net.prefix_length() < width) {
    const IpAddress host = flip(address, width - 1);
    const std::string with_host = host.to_string() + "/" + std::to_string(net.prefix_length());
    DEVCACHE_FUZZ_CHECK(!IpNetwork::try_parse(with_host).has_value());
    DEVCACHE_FUZZ_CHECK(IpNetwork::containing(host, net.prefix_length()) == net);
  }
  // Every shorter prefix contains this network's address too.
  for (std::size_t p = 0; p <= net.prefix_length(); p += 7) {
    DEVCACHE_FUZZ_CHECK(IpNetwork::containing(address, p).contains(address));
  }
}

void check_pair(const IpNetwork& net, const IpAddress& ip) {
  const bool inside = net.contains(ip);
  DEVCACHE_FUZZ_CHECK(inside == reference_contains(net, ip));
  if (net.family() == ip.family()) {
    const IpNetwork around = IpNetwork::containing(ip, net.prefix_length());
    DEVCACHE_FUZZ_CHECK(around.contains(ip));
    DEVCACHE_FUZZ_CHECK((around == net) == inside);
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): bytes as text
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::optional<IpAddress> ip = parse_address(text);
  check_address(text, ip);
  const std::optional<IpNetwork> net = parse_network(text);
  if (net) check_network(text, *net);
  if (ip) DEVCACHE_FUZZ_CHECK(!net);  // an address has no '/', a network needs one

  if (const std::size_t bar = text.find('|'); bar != std::string_view::npos) {
    const std::string_view net_text = text.substr(0, bar);
    const std::string_view ip_text = text.substr(bar + 1);
    const std::optional<IpNetwork> left = parse_network(net_text);
    if (left) check_network(net_text, *left);
    const std::optional<IpAddress> right = parse_address(ip_text);
    check_address(ip_text, right);
    if (left && right) check_pair(*left, *right);
  }
  return 0;
}
