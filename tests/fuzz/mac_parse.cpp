// tests/fuzz/mac_parse.cpp — fuzz target for MacAddress::parse and try_parse.
//
// The input is the text to parse. Properties checked on every input:
//   * parse and try_parse agree: the same inputs accepted, the same value; parse throws only
//     devcache::ParseError, whose input() is the text and whose message quotes it (escaped,
//     truncated past 64 bytes) and stays printable;
//   * acceptance matches a reference parser written from the grammar documented in
//     mac_address.hpp (six groups of 1-2 digits with ':' or '-', three of 4 with '.' or '-', two of
//     6 with ':' or '-', or 12 bare digits; one separator kind; nothing else), value included;
//   * an accepted address formats, through to_string(), operator<< and every fmt spec, to the
//     expected text, which parses back to the same value;
//   * the input used as an fmt spec is accepted exactly when it is empty or one of c C h H d D b B.
#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <devcache/errors.hpp>
#include <devcache/mac_address.hpp>

#include "fuzz_check.hpp"

namespace {

using devcache::MacAddress;
using devcache::fuzz::hex_digit;

// The documented grammar, as directly as possible: split at separators, then check the shape.
std::optional<std::uint64_t> reference_parse(std::string_view text) {
  char separator = 0;
  std::vector<std::string_view> groups;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ':' || c == '-' || c == '.') {
      if (separator == 0) separator = c;
      if (c != separator) return std::nullopt;
      groups.push_back(text.substr(start, i - start));
      start = i + 1;
    } else if (hex_digit(c) < 0) {
      return std::nullopt;
    }
  }
  groups.push_back(text.substr(start));
  std::size_t min_digits = 0;
  std::size_t max_digits = 0;
  const bool colon_or_hyphen = separator == ':' || separator == '-';
  if (separator == 0 && groups.size() == 1) {
    min_digits = max_digits = 12;
  } else if (colon_or_hyphen && groups.size() == 6) {
    min_digits = 1;
    max_digits = 2;
  } else if ((separator == '.' || separator == '-') && groups.size() == 3) {
    min_digits = max_digits = 4;
  } else if (colon_or_hyphen && groups.size() == 2) {
    min_digits = max_digits = 6;
  } else {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  for (const std::string_view group : groups) {
    if (group.size() < min_digits || group.size() > max_digits) return std::nullopt;
    std::uint64_t group_value = 0;
    for (const char c : group)
      group_value = group_value * 16 + static_cast<std::uint64_t>(hex_digit(c));
    value = (value << (48 / groups.size())) | group_value;
  }
  return value;
}

// The expected text of `mac` for one fmt spec letter, built from the octets.
std::string expected_text(MacAddress mac, char style) {
  const bool upper = style >= 'A' && style <= 'Z';
  const char* const hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string digits;
  for (const std::uint8_t octet : mac.to_bytes()) {
    digits += hex[octet >> 4];
    digits += hex[octet & 0xf];
  }
  std::size_t group = 2;
  char separator = ':';
  switch (style) {
    case 'h':
    case 'H':
      separator = '-';
      break;
    case 'd':
    case 'D':
      group = 4;
      separator = '.';
      break;
    case 'b':
    case 'B':
      return digits;
    default:
      break;
  }
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && i % group == 0) out += separator;
    out += digits[i];
  }
  return out;
}

void check_round_trip(const std::string& text, MacAddress mac) {
  const std::optional<MacAddress> again = MacAddress::try_parse(text);
  DEVCACHE_FUZZ_CHECK(again.has_value());
  DEVCACHE_FUZZ_CHECK(*again == mac);
  DEVCACHE_FUZZ_CHECK(MacAddress::parse(text) == mac);
}

void check_accepted(MacAddress mac) {
  DEVCACHE_FUZZ_CHECK(mac.to_u64() <= MacAddress::max_value);
  DEVCACHE_FUZZ_CHECK(MacAddress::from_u64(mac.to_u64()) == mac);
  DEVCACHE_FUZZ_CHECK(MacAddress::from_bytes(mac.to_bytes()) == mac);
  DEVCACHE_FUZZ_CHECK(mac.oui() == mac.to_u64() >> 24);

  const std::string canonical = mac.to_string();
  DEVCACHE_FUZZ_CHECK(canonical == expected_text(mac, 'c'));
  check_round_trip(canonical, mac);
  std::ostringstream stream;
  stream << mac;
  DEVCACHE_FUZZ_CHECK(stream.str() == canonical);

  const std::array<std::pair<char, std::string>, 9> formatted = {{
      {'c', fmt::format("{}", mac)},
      {'c', fmt::format("{:c}", mac)},
      {'C', fmt::format("{:C}", mac)},
      {'h', fmt::format("{:h}", mac)},
      {'H', fmt::format("{:H}", mac)},
      {'d', fmt::format("{:d}", mac)},
      {'D', fmt::format("{:D}", mac)},
      {'b', fmt::format("{:b}", mac)},
      {'B', fmt::format("{:B}", mac)},
  }};
  for (const auto& [style, text] : formatted) {
    DEVCACHE_FUZZ_CHECK(text == expected_text(mac, style));
    check_round_trip(text, mac);
  }
}

// The input as the spec of "{:...}": valid exactly when empty or one documented letter. Inputs
// holding braces are skipped: they would change the format string's structure, not the spec.
void check_spec(std::string_view spec) {
  if (spec.find_first_of("{}") != std::string_view::npos) return;
  const bool valid =
      spec.empty() ||
      (spec.size() == 1 && std::string_view("cChHdDbB").find(spec[0]) != std::string_view::npos);
  const MacAddress mac = MacAddress::from_u64(0x0a1b2c3d4e5f);
  std::string format = "{:";
  format.append(spec);
  format += '}';
  try {
    const std::string text = fmt::format(fmt::runtime(format), mac);
    DEVCACHE_FUZZ_CHECK(valid);
    DEVCACHE_FUZZ_CHECK(text == expected_text(mac, spec.empty() ? 'c' : spec[0]));
  } catch (const fmt::format_error&) {
    DEVCACHE_FUZZ_CHECK(!valid);
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): bytes as text
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::optional<MacAddress> tried = MacAddress::try_parse(text);
  std::optional<MacAddress> parsed;
  try {
    parsed = MacAddress::parse(text);
  } catch (const devcache::ParseError& e) {
    DEVCACHE_FUZZ_CHECK(e.input() == text);
    devcache::fuzz::check_message_quotes_input(e.what(), "invalid MAC address ", text,
                                               devcache::detail::message_max_input);
  }
  DEVCACHE_FUZZ_CHECK(parsed.has_value() == tried.has_value());
  if (parsed) DEVCACHE_FUZZ_CHECK(*parsed == *tried);

  const std::optional<std::uint64_t> expected = reference_parse(text);
  DEVCACHE_FUZZ_CHECK(expected.has_value() == parsed.has_value());
  if (parsed) {
    DEVCACHE_FUZZ_CHECK(parsed->to_u64() == *expected);
    check_accepted(*parsed);
  }
  check_spec(text);
  return 0;
}
