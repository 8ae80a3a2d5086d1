// tests/ip_address_test.cpp — IpAddress and IpNetwork: parsing (IPv4, IPv6 compressed and full,
// IPv4-mapped), every error message, try_parse agreement, formatting, CIDR containment for IPv4
// and IPv6 at the edge prefixes (/0, /32, /128), ordering and hashing.
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>

namespace {

using devcache::IpAddress;
using devcache::IpFamily;
using devcache::IpNetwork;
using devcache::ParseError;
using namespace std::string_literals;

static_assert(std::is_trivially_copyable_v<IpAddress>);
static_assert(std::is_trivially_copyable_v<IpNetwork>);
static_assert(std::is_nothrow_default_constructible_v<IpAddress>);
static_assert(noexcept(IpAddress::try_parse("")));
static_assert(noexcept(IpNetwork::try_parse("")));
static_assert(!noexcept(IpAddress::parse("")));
static_assert(IpAddress{}.is_v4());
static_assert(IpAddress::from_v4(0x0a000001) ==
              IpAddress::from_bytes(std::array<std::uint8_t, 4>{10, 0, 0, 1}));
static_assert(IpAddress::from_v4(0xffffffff) <
              IpAddress::from_bytes(std::array<std::uint8_t, 16>{}));

// The message parse() throws for `text`; fails the test if it does not throw.
template <class T>
std::string parse_error(std::string_view text) {
  try {
    (void)T::parse(text);
  } catch (const ParseError& e) {
    CHECK(e.input() == std::string(text));
    CHECK_FALSE(T::try_parse(text).has_value());
    return e.what();
  }
  FAIL("no ParseError for \"" << std::string(text) << "\"");
  return {};
}

IpAddress ip(std::string_view text) { return IpAddress::parse(text); }
IpNetwork net(std::string_view text) { return IpNetwork::parse(text); }

}  // namespace

TEST_CASE("IpAddress parses IPv4 dotted quads", "[ip_address]") {
  const IpAddress a = ip("10.0.0.1");
  CHECK(a.is_v4());
  CHECK_FALSE(a.is_v6());
  CHECK(a.family() == IpFamily::v4);
  CHECK(a.bit_width() == 32);
  CHECK(std::vector<std::uint8_t>(a.bytes().begin(), a.bytes().end()) ==
        std::vector<std::uint8_t>{10, 0, 0, 1});
  CHECK(a == IpAddress::from_v4(0x0a000001));
  CHECK(ip("0.0.0.0") == IpAddress{});
  CHECK(ip("255.255.255.255") == IpAddress::from_v4(0xffffffff));
  CHECK(ip("192.168.1.20").to_string() == "192.168.1.20");
  CHECK(IpAddress::try_parse("172.16.0.1") == IpAddress::from_v4(0xac100001));
}

TEST_CASE("IpAddress parses IPv6 in full, compressed and mixed forms", "[ip_address]") {
  const IpAddress full = ip("2001:0db8:0000:0000:0000:0000:0000:0001");
  CHECK(full.is_v6());
  CHECK(full.bit_width() == 128);
  CHECK(full.bytes().size() == 16);
  CHECK(full == ip("2001:db8::1"));
  CHECK(full == ip("2001:DB8::1"));  // case-insensitive
  CHECK(full.to_string() == "2001:db8::1");
  CHECK(ip("::").to_string() == "::");
  CHECK(ip("::1").to_string() == "::1");
  CHECK(ip("1::").to_string() == "1::");
  CHECK(ip("fd00::1").bytes()[0] == 0xfd);
  CHECK(ip("1:0:0:1:0:0:0:1").to_string() == "1:0:0:1::1");  // the longer zero run is compressed
  CHECK(ip("1:2:3:4:5:6:1.2.3.4") == ip("1:2:3:4:5:6:102:304"));
  std::array<std::uint8_t, 16> loopback{};
  loopback[15] = 1;
  CHECK(ip("::1") == IpAddress::from_bytes(loopback));
}

TEST_CASE("IpAddress keeps IPv4-mapped IPv6 addresses as IPv6", "[ip_address]") {
  const IpAddress mapped = ip("::ffff:10.0.0.1");
  CHECK(mapped.is_v6());
  CHECK(mapped.is_v4_mapped());
  CHECK(mapped.to_string() == "::ffff:10.0.0.1");
  CHECK(ip("::FFFF:0a00:0001") == mapped);
  CHECK(mapped != ip("10.0.0.1"));
  CHECK(mapped.unmapped() == ip("10.0.0.1"));
  CHECK(mapped.unmapped().is_v4());
  CHECK_FALSE(ip("10.0.0.1").is_v4_mapped());
  CHECK(ip("10.0.0.1").unmapped() == ip("10.0.0.1"));
  CHECK_FALSE(ip("::1").is_v4_mapped());
  CHECK(ip("::1").unmapped() == ip("::1"));
  CHECK_FALSE(ip("::fffe:10.0.0.1").is_v4_mapped());
}

TEST_CASE("IpAddress rejects malformed text with a message naming the input and the problem",
          "[ip_address]") {
  using E = IpAddress;
  CHECK(parse_error<E>("10.0.0.300") ==
        R"(invalid IP address "10.0.0.300": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("") == R"(invalid IP address "": empty input)");
  CHECK(parse_error<E>("1.2.3") ==
        R"(invalid IP address "1.2.3": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("1.2.3.4.5") ==
        R"(invalid IP address "1.2.3.4.5": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("0x1.2.3.4") ==
        R"(invalid IP address "0x1.2.3.4": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("+1.2.3.4") ==
        R"(invalid IP address "+1.2.3.4": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("1.2.3.4/8") ==
        R"(invalid IP address "1.2.3.4/8": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("1::2::3") ==
        R"(invalid IP address "1::2::3": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("1:2:3:4:5:6:7:8:9") ==
        R"(invalid IP address "1:2:3:4:5:6:7:8:9": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("00000::1") ==
        R"(invalid IP address "00000::1": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("::ffff:1.2.3") ==
        R"(invalid IP address "::ffff:1.2.3": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("localhost") ==
        R"(invalid IP address "localhost": not a valid IPv4 or IPv6 address)");

  // Leading zeros: rejected explicitly, on every platform.
  CHECK(
      parse_error<E>("010.0.0.1") ==
      R"(invalid IP address "010.0.0.1": IPv4 component "010" has a leading zero (it could be read as octal))");
  CHECK(
      parse_error<E>("1.2.3.04") ==
      R"(invalid IP address "1.2.3.04": IPv4 component "04" has a leading zero (it could be read as octal))");
  CHECK(
      parse_error<E>("::ffff:10.0.00.1") ==
      R"(invalid IP address "::ffff:10.0.00.1": IPv4 component "00" has a leading zero (it could be read as octal))");
  CHECK(ip("::0001") == ip("::1"));  // IPv6 hex groups may have leading zeros

  // What inet_pton would misread or reject without saying why.
  CHECK(parse_error<E>(" 10.0.0.1") ==
        R"(invalid IP address " 10.0.0.1": whitespace ' ' at position 0 is not allowed)");
  CHECK(parse_error<E>("10.0.0.1\n") ==
        R"(invalid IP address "10.0.0.1\n": whitespace '\n' at position 8 is not allowed)");
  CHECK(
      parse_error<E>("fe80::1%eth0") ==
      R"(invalid IP address "fe80::1%eth0": IPv6 zone indices ("%eth0" at position 7) are not supported)");
  CHECK(
      parse_error<E>("[::1]") ==
      R"(invalid IP address "[::1]": square brackets are not part of an address (write ::1, not [::1]))");
  CHECK(parse_error<E>("\xff") == R"(invalid IP address "\xff": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<E>("a\"b") == R"(invalid IP address "a\"b": not a valid IPv4 or IPv6 address)");
}

TEST_CASE("IpAddress rejects embedded NULs and over-long input before calling inet_pton",
          "[ip_address]") {
  // A string_view is not a C string: "10.0.0.1\0garbage" must not parse as 10.0.0.1.
  const std::string with_nul("10.0.0.1\0garbage", 16);
  CHECK(parse_error<IpAddress>(with_nul) ==
        R"(invalid IP address "10.0.0.1\x00garbage": NUL byte at position 8)");
  CHECK(parse_error<IpAddress>(std::string_view("\0", 1)) ==
        R"(invalid IP address "\x00": NUL byte at position 0)");

  // The longest valid text is 45 characters; one more is rejected by length.
  const std::string longest = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
  REQUIRE(longest.size() == IpAddress::max_text_size);
  CHECK(ip(longest) == ip("::ffff:255.255.255.255"));
  CHECK(parse_error<IpAddress>(longest + "0") ==
        "invalid IP address \"" + longest +
            "0\": 46 bytes is longer than any IPv4 or IPv6 address (at most 45)");
  const std::string huge(100, '1');
  CHECK(
      parse_error<IpAddress>(huge) ==
      "invalid IP address \"" + std::string(64, '1') +
          "\"... (input truncated to its first 64 of 100 bytes): 100 bytes is longer than any IPv4 "
          "or IPv6 address (at most 45)");

  // A view into a larger buffer: only the viewed characters count.
  const std::string_view prefix = std::string_view("10.0.0.12345").substr(0, 8);
  CHECK(ip(prefix) == ip("10.0.0.1"));
}

TEST_CASE("IpAddress formats with to_string, to_chars and fmt", "[ip_address]") {
  const IpAddress v4 = ip("10.0.0.7");
  const IpAddress v6 = ip("fd00::7");
  CHECK(fmt::format("{}", v4) == "10.0.0.7");
  CHECK(fmt::format("{}", v6) == "fd00::7");
  CHECK(fmt::format("[{:>10}]", v4) == "[  10.0.0.7]");
  CHECK(fmt::format("[{:*<9}]", v6) == "[fd00::7**]");
  std::array<char, IpAddress::max_text_size + 1> buffer{};
  CHECK(std::string_view(buffer.data(), v6.to_chars(buffer)) == "fd00::7");
  CHECK(buffer[7] == '\0');
  const IpAddress widest = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  CHECK(widest.to_string().size() == 39);
  // Round trip through the text form.
  for (const char* text : {"0.0.0.0", "1.2.3.4", "::", "::1", "2001:db8::8:800:200c:417a",
                           "::ffff:1.2.3.4", "fe80::1:2:3:4"}) {
    CHECK(ip(ip(text).to_string()) == ip(text));
  }
}

TEST_CASE("IpAddress orders IPv4 before IPv6, then numerically, and hashes consistently",
          "[ip_address]") {
  CHECK(ip("10.0.0.1") < ip("10.0.0.2"));
  CHECK(ip("9.255.255.255") < ip("10.0.0.0"));
  CHECK(ip("255.255.255.255") < ip("::"));
  CHECK(ip("::1") < ip("::2"));
  CHECK((ip("fd00::1") <=> ip("fd00::1")) == std::strong_ordering::equal);
  CHECK(ip("0.0.0.0") != ip("::"));

  const std::hash<IpAddress> h;
  CHECK(h(ip("10.0.0.1")) == h(ip("10.0.0.1")));
  CHECK(h(ip("::ffff:10.0.0.1")) == h(ip("::FFFF:10.0.0.1")));
  // Distinct addresses, including the same bytes in the other family, hash apart.
  std::unordered_set<std::size_t> hashes;
  std::set<IpAddress> ordered;
  for (std::uint32_t i = 0; i < 1000; ++i) {
    hashes.insert(h(IpAddress::from_v4(i)));
    ordered.insert(IpAddress::from_v4(i));
    std::array<std::uint8_t, 16> bytes{};
    bytes[12] = static_cast<std::uint8_t>(i >> 24);
    bytes[13] = static_cast<std::uint8_t>(i >> 16);
    bytes[14] = static_cast<std::uint8_t>(i >> 8);
    bytes[15] = static_cast<std::uint8_t>(i);
    hashes.insert(h(IpAddress::from_bytes(bytes)));
    ordered.insert(IpAddress::from_bytes(bytes));
  }
  CHECK(hashes.size() == 2000);
  CHECK(ordered.size() == 2000);
  CHECK(ordered.begin()->is_v4());
  CHECK(ordered.rbegin()->is_v6());
}

TEST_CASE("IpNetwork parses CIDR blocks", "[ip_address][cidr]") {
  const IpNetwork ten = net("10.0.0.0/8");
  CHECK(ten.is_v4());
  CHECK(ten.family() == IpFamily::v4);
  CHECK(ten.address() == ip("10.0.0.0"));
  CHECK(ten.prefix_length() == 8);
  CHECK(ten.to_string() == "10.0.0.0/8");
  CHECK(fmt::format("{}", ten) == "10.0.0.0/8");
  CHECK(fmt::format("[{:>12}]", ten) == "[  10.0.0.0/8]");

  const IpNetwork ula = net("fd00::/8");
  CHECK(ula.is_v6());
  CHECK(ula.prefix_length() == 8);
  CHECK(ula.to_string() == "fd00::/8");
  CHECK(net("FD00:0000::/8") == ula);

  CHECK(net("0.0.0.0/0").prefix_length() == 0);
  CHECK(net("::/0").prefix_length() == 0);
  CHECK(net("10.1.2.3/32").prefix_length() == 32);
  CHECK(net("2001:db8::1/128").prefix_length() == 128);
  CHECK(net("10.1.2.128/25").address() == ip("10.1.2.128"));
  CHECK(IpNetwork::try_parse("192.168.0.0/16") == net("192.168.0.0/16"));
  CHECK(IpNetwork{} == net("0.0.0.0/0"));
}

TEST_CASE("IpNetwork rejects malformed CIDR text with a message", "[ip_address][cidr]") {
  using N = IpNetwork;
  CHECK(parse_error<N>("10.0.0.0/33") ==
        R"(invalid CIDR "10.0.0.0/33": prefix length "33" is out of range 0..32 for IPv4)");
  CHECK(parse_error<N>("fd00::/129") ==
        R"(invalid CIDR "fd00::/129": prefix length "129" is out of range 0..128 for IPv6)");
  CHECK(
      parse_error<N>("fd00::/99999999999999999999999") ==
      R"(invalid CIDR "fd00::/99999999999999999999999": prefix length "99999999999999999999999" is out of range 0..128 for IPv6)");
  // A long prefix is truncated in the reason as in the quoted input: the message stays short.
  const std::string long_prefix = "10.0.0.0/" + std::string(300, '9');
  const std::string sixty_four_nines(64, '9');
  CHECK(
      parse_error<N>(long_prefix) ==
      R"(invalid CIDR ")" + long_prefix.substr(0, 64) +
          R"("... (input truncated to its first 64 of 309 bytes): prefix length ")" +
          sixty_four_nines +
          R"("... (input truncated to its first 64 of 300 bytes) is out of range 0..32 for IPv4)");
  CHECK(parse_error<N>("10.0.0.1/8") ==
        R"(invalid CIDR "10.0.0.1/8": host bits are set (the network is 10.0.0.0/8))");
  CHECK(parse_error<N>("fd00::1/8") ==
        R"(invalid CIDR "fd00::1/8": host bits are set (the network is fd00::/8))");
  CHECK(parse_error<N>("10.0.0.128/24") ==
        R"(invalid CIDR "10.0.0.128/24": host bits are set (the network is 10.0.0.0/24))");
  CHECK(parse_error<N>("10.0.0.0") ==
        R"(invalid CIDR "10.0.0.0": missing "/" and prefix length (e.g. "10.0.0.0/8"))");
  CHECK(parse_error<N>("") ==
        R"(invalid CIDR "": missing "/" and prefix length (e.g. "10.0.0.0/8"))");
  CHECK(parse_error<N>("10.0.0.0/") ==
        R"(invalid CIDR "10.0.0.0/": the prefix length after "/" is empty)");
  CHECK(parse_error<N>("10.0.0.0/8a") ==
        R"(invalid CIDR "10.0.0.0/8a": prefix length "8a" is not a decimal number)");
  CHECK(parse_error<N>("10.0.0.0/-1") ==
        R"(invalid CIDR "10.0.0.0/-1": prefix length "-1" is not a decimal number)");
  CHECK(parse_error<N>("10.0.0.0/ 8") ==
        R"(invalid CIDR "10.0.0.0/ 8": prefix length " 8" is not a decimal number)");
  CHECK(parse_error<N>("10.0.0.0/8/8") ==
        R"(invalid CIDR "10.0.0.0/8/8": prefix length "8/8" is not a decimal number)");
  CHECK(parse_error<N>("10.0.0.0/08") ==
        R"(invalid CIDR "10.0.0.0/08": prefix length "08" has a leading zero)");
  CHECK(parse_error<N>("10.0.0.300/8") ==
        R"(invalid CIDR "10.0.0.300/8": address "10.0.0.300": not a valid IPv4 or IPv6 address)");
  CHECK(parse_error<N>("/8") == R"(invalid CIDR "/8": address "": empty input)");
  CHECK(
      parse_error<N>("010.0.0.0/8") ==
      R"(invalid CIDR "010.0.0.0/8": address "010.0.0.0": IPv4 component "010" has a leading zero (it could be read as octal))");
}

TEST_CASE("IpNetwork::containing masks host bits; prefix lengths are checked",
          "[ip_address][cidr]") {
  CHECK(IpNetwork::containing(ip("10.1.2.3"), 8) == net("10.0.0.0/8"));
  CHECK(IpNetwork::containing(ip("10.1.2.3"), 0) == net("0.0.0.0/0"));
  CHECK(IpNetwork::containing(ip("10.1.2.3"), 32) == net("10.1.2.3/32"));
  CHECK(IpNetwork::containing(ip("10.1.2.255"), 25) == net("10.1.2.128/25"));
  CHECK(IpNetwork::containing(ip("fd12:3456::1"), 16) == net("fd12::/16"));
  CHECK(IpNetwork::containing(ip("fd12:3456::1"), 128) == net("fd12:3456::1/128"));
  CHECK_THROWS_AS(IpNetwork::containing(ip("10.1.2.3"), 33), std::out_of_range);
  CHECK_THROWS_WITH(IpNetwork::containing(ip("::1"), 129),
                    "IpNetwork::containing: prefix length 129 is out of range 0..128 for IPv6");
}

TEST_CASE("IpNetwork::contains matches the prefix bits of the same family", "[ip_address][cidr]") {
  const IpNetwork ten = net("10.0.0.0/8");
  CHECK(ten.contains(ip("10.0.0.0")));
  CHECK(ten.contains(ip("10.255.255.255")));
  CHECK(ten.contains(ip("10.1.2.3")));
  CHECK_FALSE(ten.contains(ip("11.0.0.0")));
  CHECK_FALSE(ten.contains(ip("9.255.255.255")));
  CHECK_FALSE(ten.contains(ip("::ffff:10.0.0.1")));  // IPv4-mapped stays IPv6
  CHECK(ten.contains(ip("::ffff:10.0.0.1").unmapped()));

  // A prefix that ends inside a byte.
  const IpNetwork slash25 = net("192.168.1.128/25");
  CHECK(slash25.contains(ip("192.168.1.128")));
  CHECK(slash25.contains(ip("192.168.1.255")));
  CHECK_FALSE(slash25.contains(ip("192.168.1.127")));
  const IpNetwork slash12 = net("172.16.0.0/12");
  CHECK(slash12.contains(ip("172.31.255.255")));
  CHECK_FALSE(slash12.contains(ip("172.32.0.0")));

  // Edge prefixes.
  const IpNetwork all4 = net("0.0.0.0/0");
  CHECK(all4.contains(ip("0.0.0.0")));
  CHECK(all4.contains(ip("255.255.255.255")));
  CHECK_FALSE(all4.contains(ip("::")));
  const IpNetwork host4 = net("10.1.2.3/32");
  CHECK(host4.contains(ip("10.1.2.3")));
  CHECK_FALSE(host4.contains(ip("10.1.2.2")));
  CHECK_FALSE(host4.contains(ip("10.1.2.4")));

  const IpNetwork ula = net("fd00::/8");
  CHECK(ula.contains(ip("fd00::1")));
  CHECK(ula.contains(ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(ula.contains(ip("fc00::1")));
  CHECK_FALSE(ula.contains(ip("fe00::")));
  CHECK_FALSE(ula.contains(ip("10.0.0.1")));
  const IpNetwork all6 = net("::/0");
  CHECK(all6.contains(ip("::")));
  CHECK(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(all6.contains(ip("0.0.0.0")));
  const IpNetwork host6 = net("2001:db8::1/128");
  CHECK(host6.contains(ip("2001:db8::1")));
  CHECK_FALSE(host6.contains(ip("2001:db8::")));
  CHECK_FALSE(host6.contains(ip("2001:db8::2")));
  const IpNetwork slash127 = net("2001:db8::/127");
  CHECK(slash127.contains(ip("2001:db8::1")));
  CHECK_FALSE(slash127.contains(ip("2001:db8::2")));
  const IpNetwork slash64 = net("2001:db8:0:1::/64");
  CHECK(slash64.contains(ip("2001:db8:0:1:ffff::1")));
  CHECK_FALSE(slash64.contains(ip("2001:db8:0:2::1")));
}

TEST_CASE("IpNetwork orders by address then prefix and hashes consistently", "[ip_address][cidr]") {
  CHECK(net("10.0.0.0/8") < net("10.0.0.0/16"));
  CHECK(net("10.0.0.0/16") < net("11.0.0.0/8"));
  CHECK(net("255.0.0.0/8") < net("::/0"));
  CHECK(net("10.0.0.0/8") != net("10.0.0.0/9"));
  const std::hash<IpNetwork> h;
  CHECK(h(net("fd00::/8")) == h(net("FD00::/8")));
  CHECK(h(net("10.0.0.0/8")) != h(net("10.0.0.0/9")));
  std::unordered_set<IpNetwork> set{net("10.0.0.0/8"), net("10.0.0.0/8"), net("fd00::/8")};
  CHECK(set.size() == 2);
}
