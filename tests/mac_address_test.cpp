// tests/mac_address_test.cpp — MacAddress: parsing (every spelling, every error message),
// try_parse agreement, the _mac literal, formatting, bits, conversions, ordering and hashing;
// plus devcache::ParseError.
#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <devcache/errors.hpp>
#include <devcache/mac_address.hpp>

namespace {

using devcache::MacAddress;
using devcache::ParseError;
using namespace devcache::literals;
using namespace std::string_literals;

// --- compile-time guarantees ---
static_assert(sizeof(MacAddress) == 8);
static_assert(std::is_trivially_copyable_v<MacAddress>);
static_assert(std::is_nothrow_default_constructible_v<MacAddress>);
static_assert(MacAddress{}.is_zero());
static_assert(MacAddress{}.to_u64() == 0);
static_assert("00:11:22:33:44:55"_mac.to_u64() == 0x001122334455);
static_assert("AA-bb-Cc-dD-ee-FF"_mac.to_u64() == 0xaabbccddeeff);
static_assert("0:1:2:3:4:5"_mac.to_u64() == 0x000102030405);
static_assert(MacAddress::parse("0011.2233.4455") == "00:11:22:33:44:55"_mac);
static_assert(MacAddress::parse("001122334455") == MacAddress::from_u64(0x001122334455));
static_assert(MacAddress::try_parse("00:11:22:33:44:55") == "00:11:22:33:44:55"_mac);
static_assert(!MacAddress::try_parse("00:11:22:33:44:5g").has_value());
static_assert(!MacAddress::try_parse("").has_value());
static_assert(noexcept(MacAddress::try_parse("")));
static_assert(!noexcept(MacAddress::parse("")));
static_assert(!noexcept(MacAddress::from_u64(0)));
static_assert(MacAddress::from_u64(0xffffffffffff).is_broadcast());
static_assert("01:00:5e:00:00:fb"_mac.is_multicast());
static_assert("02:00:00:00:00:01"_mac.is_locally_administered());
static_assert("00:11:22:33:44:55"_mac.oui() == 0x001122);
static_assert("00:11:22:33:44:55"_mac.to_bytes() ==
              std::array<std::uint8_t, 6>{0x00, 0x11, 0x22, 0x33, 0x44, 0x55});
static_assert(MacAddress::from_bytes(std::array<std::uint8_t, 6>{1, 2, 3, 4, 5, 6}) ==
              "01:02:03:04:05:06"_mac);
static_assert("00:11:22:33:44:55"_mac < "00:11:22:33:44:56"_mac);
static_assert(("00:11:22:33:44:55"_mac <=> "00:11:22:33:44:55"_mac) == std::strong_ordering::equal);
static_assert(std::is_same_v<decltype(MacAddress{} <=> MacAddress{}), std::strong_ordering>);
static_assert(std::is_nothrow_invocable_v<std::hash<MacAddress>, MacAddress>);
static_assert(std::is_base_of_v<std::invalid_argument, ParseError>);
static_assert(std::is_nothrow_copy_constructible_v<ParseError>);

// The message parse() throws for `text`, or "<no error>".
std::string parse_error_of(std::string_view text) {
  try {
    (void)MacAddress::parse(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  return "<no error>";
}

// The exact message every rejected input must produce.
struct BadInput {
  std::string text;
  std::string message;
};

const std::vector<BadInput>& bad_inputs() {
  static const std::vector<BadInput> table = {
      // The example from the issue, verbatim.
      {"00:11:22:33:44:5g",
       R"(invalid MAC address "00:11:22:33:44:5g": 'g' at position 16 is not a hex digit)"},
      {"", R"(invalid MAC address "": empty input)"},
      // Characters that are not hex digits.
      {"g0:11:22:33:44:55",
       R"(invalid MAC address "g0:11:22:33:44:55": 'g' at position 0 is not a hex digit)"},
      {"0x001122334455",
       R"(invalid MAC address "0x001122334455": 'x' at position 1 is not a hex digit)"},
      {"00:11 :22:33:44:55",
       R"(invalid MAC address "00:11 :22:33:44:55": ' ' at position 5 is not a hex digit)"},
      {"00_11_22_33_44_55",
       R"(invalid MAC address "00_11_22_33_44_55": '_' at position 2 is not a hex digit)"},
      // Leading and trailing garbage or whitespace.
      {" 00:11:22:33:44:55",
       R"(invalid MAC address " 00:11:22:33:44:55": unexpected ' ' at position 0 before the first hex digit)"},
      {":00:11:22:33:44:55",
       R"(invalid MAC address ":00:11:22:33:44:55": unexpected ':' at position 0 before the first hex digit)"},
      {"\"00:11:22:33:44:55\"",
       R"(invalid MAC address "\"00:11:22:33:44:55\"": unexpected '"' at position 0 before the first hex digit)"},
      {"00:11:22:33:44:55 ",
       R"(invalid MAC address "00:11:22:33:44:55 ": unexpected trailing whitespace ' ' at position 17)"},
      {"00:11:22:33:44:55\r\n",
       R"(invalid MAC address "00:11:22:33:44:55\r\n": unexpected trailing whitespace '\r' at position 17)"},
      {"00:11:22:33:44:5 ",
       R"(invalid MAC address "00:11:22:33:44:5 ": unexpected trailing whitespace ' ' at position 16)"},
      {"00:11:22:33:44:55x",
       R"(invalid MAC address "00:11:22:33:44:55x": unexpected 'x' at position 17 after a complete address)"},
      {"00:11:22:33:44:55 x",
       R"(invalid MAC address "00:11:22:33:44:55 x": unexpected ' ' at position 17 after a complete address)"},
      {"001122334455/24",
       R"(invalid MAC address "001122334455/24": unexpected '/' at position 12 after a complete address)"},
      {"001122334455:",
       R"(invalid MAC address "001122334455:": unexpected ':' at position 12 after a complete address)"},
      {"0011.2233.4455;",
       R"(invalid MAC address "0011.2233.4455;": unexpected ';' at position 14 after a complete address)"},
      // Separators.
      {"00:11-22:33:44:55",
       R"(invalid MAC address "00:11-22:33:44:55": mixed separators: '-' at position 5 does not match the first separator ':' at position 2)"},
      {"0011.2233-4455",
       R"(invalid MAC address "0011.2233-4455": mixed separators: '-' at position 9 does not match the first separator '.' at position 4)"},
      {"001122-334455:",
       R"(invalid MAC address "001122-334455:": mixed separators: ':' at position 13 does not match the first separator '-' at position 6)"},
      {"0011-2233-4455-",
       R"(invalid MAC address "0011-2233-4455-": input ends with separator '-' at position 14)"},
      {"00::11:22:33:44:55",
       R"(invalid MAC address "00::11:22:33:44:55": group 2 is empty: separator ':' at position 3 follows another separator)"},
      {"00:11:22:33:44:55:",
       R"(invalid MAC address "00:11:22:33:44:55:": input ends with separator ':' at position 17)"},
      // Group sizes.
      {"00:111:22:33:44:55",
       R"(invalid MAC address "00:111:22:33:44:55": group 2 at position 3 has 3 hex digits, expected 1 or 2 in the xx:xx:xx:xx:xx:xx form)"},
      {"00-11-22-33-44-555",
       R"(invalid MAC address "00-11-22-33-44-555": group 6 at position 15 has 3 hex digits, expected 1 or 2 in the xx-xx-xx-xx-xx-xx form)"},
      {"001:11:22:33:44:55",
       R"(invalid MAC address "001:11:22:33:44:55": group 1 at position 0 has 3 hex digits, expected 1, 2 or 6 before separator ':')"},
      {"0011:2233:4455",
       R"(invalid MAC address "0011:2233:4455": group 1 at position 0 has 4 hex digits, expected 1, 2 or 6 before separator ':')"},
      {"00112-33445-5",
       R"(invalid MAC address "00112-33445-5": group 1 at position 0 has 5 hex digits, expected 1, 2, 4 or 6 before separator '-')"},
      {"00.11.22.33.44.55",
       R"(invalid MAC address "00.11.22.33.44.55": group 1 at position 0 has 2 hex digits, expected 4 before separator '.')"},
      {"0011.223.4455",
       R"(invalid MAC address "0011.223.4455": group 2 at position 5 has 3 hex digits, expected 4 in the xxxx.xxxx.xxxx form)"},
      {"0011-2233-4",
       R"(invalid MAC address "0011-2233-4": group 3 at position 10 has 1 hex digit, expected 4 in the xxxx-xxxx-xxxx form)"},
      {"001122:33445",
       R"(invalid MAC address "001122:33445": group 2 at position 7 has 5 hex digits, expected 6 in the xxxxxx:xxxxxx form)"},
      {"001122-3344556",
       R"(invalid MAC address "001122-3344556": group 2 at position 7 has 7 hex digits, expected 6 in the xxxxxx-xxxxxx form)"},
      {"00112233445",
       R"(invalid MAC address "00112233445": found 11 hex digits and no separator, expected 12)"},
      {"0011223344556",
       R"(invalid MAC address "0011223344556": found 13 hex digits and no separator, expected 12)"},
      {"0", R"(invalid MAC address "0": found 1 hex digit and no separator, expected 12)"},
      // Group counts.
      {"00:11:22:33:44",
       R"(invalid MAC address "00:11:22:33:44": too few groups: found 5, expected 6 in the xx:xx:xx:xx:xx:xx form)"},
      {"0011.2233",
       R"(invalid MAC address "0011.2233": too few groups: found 2, expected 3 in the xxxx.xxxx.xxxx form)"},
      {"00:11:22:33:44:55:66",
       R"(invalid MAC address "00:11:22:33:44:55:66": too many groups: found 7, expected 6 in the xx:xx:xx:xx:xx:xx form (group 7 starts at position 18))"},
      {"0011-2233-4455-66",
       R"(invalid MAC address "0011-2233-4455-66": too many groups: found 4, expected 3 in the xxxx-xxxx-xxxx form (group 4 starts at position 15))"},
      {"001122:334455:667788",
       R"(invalid MAC address "001122:334455:667788": too many groups: found 3, expected 2 in the xxxxxx:xxxxxx form (group 3 starts at position 14))"},
      // EUI-64.
      {"00:11:22:33:44:55:66:77",
       R"(invalid MAC address "00:11:22:33:44:55:66:77": this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address)"},
      {"00-11-22-33-44-55-66-77",
       R"(invalid MAC address "00-11-22-33-44-55-66-77": this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address)"},
      {"0011.2233.4455.6677",
       R"(invalid MAC address "0011.2233.4455.6677": this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address)"},
      {"0011-2233-4455-6677",
       R"(invalid MAC address "0011-2233-4455-6677": this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address)"},
      {"0011223344556677",
       R"(invalid MAC address "0011223344556677": this is a 64-bit EUI-64 address (8 octets), not a 48-bit MAC address)"},
      // Non-printable and non-ASCII bytes are escaped.
      {"00:11\0:22:33:44:55"s,
       R"(invalid MAC address "00:11\x00:22:33:44:55": '\x00' at position 5 is not a hex digit)"},
      {"00:11:22:33:44:5\xc3\xa9",
       R"(invalid MAC address "00:11:22:33:44:5\xc3\xa9": '\xc3' at position 16 is not a hex digit)"},
      {"00:11:22:33:44:5\t",
       R"(invalid MAC address "00:11:22:33:44:5\t": unexpected trailing whitespace '\t' at position 16)"},
      {"00:11:22\x7f",
       R"(invalid MAC address "00:11:22\x7f": '\x7f' at position 8 is not a hex digit)"},
      {"00:11:22:33:44:5'",
       R"(invalid MAC address "00:11:22:33:44:5'": '\'' at position 16 is not a hex digit)"},
      {"00:11:22:33:44:5\\",
       R"(invalid MAC address "00:11:22:33:44:5\\": '\\' at position 16 is not a hex digit)"},
  };
  return table;
}

// Every accepted spelling of 00:11:22:33:44:55 and of aa:bb:cc:dd:ee:ff.
const std::vector<std::string>& good_spellings_001122334455() {
  static const std::vector<std::string> table = {
      "00:11:22:33:44:55", "00-11-22-33-44-55", "0011.2233.4455",
      "001122334455",      "0011-2233-4455",    "001122-334455",
      "001122:334455",     "0:11:22:33:44:55",  "0-11-22-33-44-55",
  };
  return table;
}

const std::vector<std::string>& good_spellings_aabbccddeeff() {
  static const std::vector<std::string> table = {
      "aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF", "aA:Bb:cC:Dd:eE:fF", "aa-bb-cc-dd-ee-ff",
      "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff",    "AABB.CCDD.EEFF",    "AaBb.CcDd.EeFf",
      "aabbccddeeff",      "AABBCCDDEEFF",      "aAbBcCdDeEfF",      "aabb-ccdd-eeff",
      "AABB-CCDD-EEFF",    "aabbcc-ddeeff",     "AABBCC-DDEEFF",     "aabbcc:ddeeff",
      "AABBCC:DDEEFF",     "AaBbCc:DdEeFf",
  };
  return table;
}

// Asserts that parse and try_parse agree on `text`: same acceptance and, if accepted, same value.
void check_agreement(std::string_view text) {
  const std::optional<MacAddress> tried = MacAddress::try_parse(text);
  std::optional<MacAddress> parsed;
  bool threw = false;
  try {
    parsed = MacAddress::parse(text);
  } catch (const ParseError&) {
    threw = true;
  }
  INFO("input: " << std::string(text));
  REQUIRE(tried.has_value() == !threw);
  if (tried) REQUIRE(*tried == *parsed);
}

}  // namespace

TEST_CASE("MacAddress is an 8-byte value that defaults to zero", "[mac_address]") {
  const MacAddress mac;
  CHECK(mac.is_zero());
  CHECK(mac.to_u64() == 0);
  CHECK(mac.to_string() == "00:00:00:00:00:00");
  CHECK(mac == MacAddress::from_u64(0));
}

TEST_CASE("parse accepts every spelling in any case", "[mac_address][parse]") {
  for (const std::string& text : good_spellings_001122334455()) {
    INFO(text);
    CHECK(MacAddress::parse(text).to_u64() == 0x001122334455);
    CHECK(MacAddress::try_parse(text) == MacAddress::from_u64(0x001122334455));
  }
  for (const std::string& text : good_spellings_aabbccddeeff()) {
    INFO(text);
    CHECK(MacAddress::parse(text).to_u64() == 0xaabbccddeeff);
    CHECK(MacAddress::try_parse(text) == MacAddress::from_u64(0xaabbccddeeff));
  }
  // Runtime strings, not only literals.
  const std::string runtime = std::string("01:23:45") + ":67:89:ab";
  CHECK(MacAddress::parse(runtime).to_u64() == 0x0123456789ab);
  CHECK(MacAddress::parse("ff:ff:ff:ff:ff:ff").is_broadcast());
  CHECK(MacAddress::parse("00:00:00:00:00:00").is_zero());
}

TEST_CASE("one-digit groups only in the six-group colon and hyphen forms", "[mac_address][parse]") {
  CHECK(MacAddress::parse("0:1:2:3:4:5").to_u64() == 0x000102030405);
  CHECK(MacAddress::parse("0-1-2-3-4-5").to_u64() == 0x000102030405);
  CHECK(MacAddress::parse("a:B:c:D:e:F").to_u64() == 0x0a0b0c0d0e0f);
  CHECK(MacAddress::parse("00:1:22:3:44:5").to_u64() == 0x000122034405);
  CHECK(MacAddress::parse("f-ff-f-ff-f-ff").to_u64() == 0x0fff0fff0fff);
  CHECK_FALSE(MacAddress::try_parse("11.2233.4455"));
  CHECK_FALSE(MacAddress::try_parse("0011.223.4455"));
  CHECK_FALSE(MacAddress::try_parse("011-2233-4455"));
  CHECK_FALSE(MacAddress::try_parse("01122-334455"));
  CHECK_FALSE(MacAddress::try_parse("001122:33445"));
  CHECK_FALSE(MacAddress::try_parse("01122334455"));
}

TEST_CASE("parse errors have exact messages", "[mac_address][parse][errors]") {
  for (const BadInput& bad : bad_inputs()) {
    INFO("input: " << bad.text);
    CHECK(parse_error_of(bad.text) == bad.message);
  }
}

TEST_CASE("the issue's example message, verbatim", "[mac_address][parse][errors]") {
  CHECK_THROWS_WITH(
      MacAddress::parse("00:11:22:33:44:5g"),
      R"(invalid MAC address "00:11:22:33:44:5g": 'g' at position 16 is not a hex digit)");
  CHECK_THROWS_AS(MacAddress::parse("00:11:22:33:44:5g"), ParseError);
  CHECK_THROWS_AS(MacAddress::parse("00:11:22:33:44:5g"), std::invalid_argument);
}

TEST_CASE("every parse error quotes the input and keeps it", "[mac_address][parse][errors]") {
  for (const BadInput& bad : bad_inputs()) {
    INFO("input: " << bad.text);
    try {
      (void)MacAddress::parse(bad.text);
      FAIL("parse did not throw");
    } catch (const ParseError& e) {
      const std::string what = e.what();
      if (bad.text.find_first_of(std::string("\0\"\\\t\r\n\x7f\xc3", 8)) == std::string::npos) {
        CHECK_THAT(what, Catch::Matchers::Contains("\"" + bad.text + "\""));
      }
      CHECK_THAT(what, Catch::Matchers::StartsWith("invalid MAC address \""));
      CHECK(e.input() == bad.text);
    }
  }
}

TEST_CASE("very long inputs are truncated in the message, not in input()",
          "[mac_address][errors]") {
  const std::string text = std::string(100, '0') + "g";
  try {
    (void)MacAddress::parse(text);
    FAIL("parse did not throw");
  } catch (const ParseError& e) {
    CHECK(std::string(e.what()) == "invalid MAC address \"" + std::string(64, '0') +
                                       "\"... (input truncated to its first 64 of 101 bytes): "
                                       "'g' at position 100 is not a hex digit");
    CHECK(e.input() == text);
  }
  // Exactly 64 bytes are quoted whole.
  const std::string sixty_four(64, '1');
  CHECK(parse_error_of(sixty_four) == "invalid MAC address \"" + sixty_four +
                                          "\": found 64 hex digits and no separator, expected 12");
}

TEST_CASE("ParseError carries its message and input", "[errors]") {
  const ParseError with_input("bad thing", "the input");
  CHECK(std::string(with_input.what()) == "bad thing");
  CHECK(with_input.input() == "the input");
  const ParseError without_input("only a message");
  CHECK(without_input.input().empty());
  const ParseError copy = with_input;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(copy.input() == "the input");
  CHECK(std::string(copy.what()) == "bad thing");
}

TEST_CASE("try_parse agrees with parse", "[mac_address][parse]") {
  SECTION("on the tables") {
    for (const BadInput& bad : bad_inputs()) {
      check_agreement(bad.text);
      CHECK_FALSE(MacAddress::try_parse(bad.text).has_value());
    }
    for (const std::string& text : good_spellings_001122334455()) check_agreement(text);
    for (const std::string& text : good_spellings_aabbccddeeff()) check_agreement(text);
  }
  SECTION("on every one-byte substitution, deletion and insertion of good inputs") {
    for (const std::string base :
         {"00:11:22:33:44:55", "0011.2233.4455", "001122334455", "001122-334455", "0-1-2-3-4-5"}) {
      for (std::size_t i = 0; i <= base.size(); ++i) {
        for (int b = 0; b < 256; ++b) {
          const char c = static_cast<char>(b);
          std::string inserted = base;
          inserted.insert(i, 1, c);
          check_agreement(inserted);
          if (i < base.size()) {
            std::string substituted = base;
            substituted[i] = c;
            check_agreement(substituted);
          }
        }
        if (i < base.size()) {
          std::string deleted = base;
          deleted.erase(i, 1);
          check_agreement(deleted);
        }
      }
    }
  }
}

TEST_CASE("the _mac literal is checked at compile time", "[mac_address][literal]") {
  constexpr MacAddress a = "00:11:22:33:44:55"_mac;
  constexpr MacAddress b = "0011.2233.4455"_mac;
  constexpr MacAddress c = "001122334455"_mac;
  static_assert(a == b && b == c);
  static_assert(a == MacAddress::parse("00-11-22-33-44-55"));
  CHECK(a.to_u64() == 0x001122334455);
  CHECK("FF:FF:FF:FF:FF:FF"_mac.is_broadcast());
}

TEST_CASE("to_string, operator<< and fmt give the canonical form", "[mac_address][format]") {
  const MacAddress mac = "0A:1b:2C:3d:4E:5f"_mac;
  CHECK(mac.to_string() == "0a:1b:2c:3d:4e:5f");
  CHECK(fmt::format("{}", mac) == "0a:1b:2c:3d:4e:5f");
  CHECK(fmt::to_string(mac) == "0a:1b:2c:3d:4e:5f");

  std::ostringstream os;
  os << mac;
  CHECK(os.str() == "0a:1b:2c:3d:4e:5f");

  std::ostringstream padded;
  padded << std::setw(20) << std::setfill('*') << std::left << mac << '|';
  CHECK(padded.str() == "0a:1b:2c:3d:4e:5f***|");

  std::wostringstream wide;
  wide << mac;
  CHECK(wide.str() == L"0a:1b:2c:3d:4e:5f");

  CHECK(MacAddress{}.to_string() == "00:00:00:00:00:00");
  CHECK(MacAddress::from_u64(MacAddress::max_value).to_string() == "ff:ff:ff:ff:ff:ff");
}

TEST_CASE("fmt format specs", "[mac_address][format]") {
  const MacAddress mac = "0a:1b:2c:3d:4e:5f"_mac;
  CHECK(fmt::format("{}", mac) == "0a:1b:2c:3d:4e:5f");
  CHECK(fmt::format("{:c}", mac) == "0a:1b:2c:3d:4e:5f");
  CHECK(fmt::format("{:C}", mac) == "0A:1B:2C:3D:4E:5F");
  CHECK(fmt::format("{:h}", mac) == "0a-1b-2c-3d-4e-5f");
  CHECK(fmt::format("{:H}", mac) == "0A-1B-2C-3D-4E-5F");
  CHECK(fmt::format("{:d}", mac) == "0a1b.2c3d.4e5f");
  CHECK(fmt::format("{:D}", mac) == "0A1B.2C3D.4E5F");
  CHECK(fmt::format("{:b}", mac) == "0a1b2c3d4e5f");
  CHECK(fmt::format("{:B}", mac) == "0A1B2C3D4E5F");
  CHECK(fmt::format("[{0}] [{0:H}]", mac) == "[0a:1b:2c:3d:4e:5f] [0A-1B-2C-3D-4E-5F]");

  // Every formatted spelling parses back to the same address.
  for (const char* spec : {"{:c}", "{:C}", "{:h}", "{:H}", "{:d}", "{:D}", "{:b}", "{:B}"}) {
    INFO(spec);
    CHECK(MacAddress::parse(fmt::format(fmt::runtime(spec), mac)) == mac);
  }

  // Unknown specs are rejected (at compile time for checked format strings; here at run time).
  CHECK_THROWS_AS(fmt::format(fmt::runtime("{:x}"), mac), fmt::format_error);
  CHECK_THROWS_AS(fmt::format(fmt::runtime("{:cc}"), mac), fmt::format_error);
  CHECK_THROWS_AS(fmt::format(fmt::runtime("{:>20}"), mac), fmt::format_error);
}

TEST_CASE("bit predicates", "[mac_address][bits]") {
  const MacAddress unicast_universal = "00:11:22:33:44:55"_mac;
  CHECK(unicast_universal.is_unicast());
  CHECK_FALSE(unicast_universal.is_multicast());
  CHECK(unicast_universal.is_universal());
  CHECK_FALSE(unicast_universal.is_locally_administered());
  CHECK_FALSE(unicast_universal.is_broadcast());
  CHECK_FALSE(unicast_universal.is_zero());

  const MacAddress multicast = "01:00:5e:00:00:fb"_mac;  // IPv4 mDNS group
  CHECK(multicast.is_multicast());
  CHECK_FALSE(multicast.is_unicast());
  CHECK(multicast.is_universal());

  const MacAddress local = "02:42:ac:11:00:02"_mac;  // a Docker bridge address
  CHECK(local.is_locally_administered());
  CHECK_FALSE(local.is_universal());
  CHECK(local.is_unicast());

  const MacAddress broadcast = "ff:ff:ff:ff:ff:ff"_mac;
  CHECK(broadcast.is_broadcast());
  CHECK(broadcast.is_multicast());
  CHECK(broadcast.is_locally_administered());
  CHECK_FALSE(broadcast.is_zero());

  const MacAddress zero;
  CHECK(zero.is_zero());
  CHECK(zero.is_unicast());
  CHECK(zero.is_universal());
  CHECK_FALSE(zero.is_broadcast());

  // Only bits 40 and 41 (of the first octet) matter; the same bits in other octets do not.
  CHECK_FALSE("00:01:01:01:01:01"_mac.is_multicast());
  CHECK_FALSE("00:02:02:02:02:02"_mac.is_locally_administered());
  CHECK("03:00:00:00:00:00"_mac.is_multicast());
  CHECK("03:00:00:00:00:00"_mac.is_locally_administered());
  CHECK_FALSE("ff:ff:ff:ff:ff:fe"_mac.is_broadcast());
}

TEST_CASE("oui and to_u64", "[mac_address][bits]") {
  CHECK("00:11:22:33:44:55"_mac.oui() == 0x001122U);
  CHECK("fc:fb:fa:00:00:00"_mac.oui() == 0xfcfbfaU);
  CHECK("ff:ff:ff:ff:ff:ff"_mac.oui() == 0xffffffU);
  CHECK(MacAddress{}.oui() == 0U);
  CHECK("12:34:56:78:9a:bc"_mac.to_u64() == 0x123456789abcULL);
}

TEST_CASE("from_u64 accepts 48 bits and rejects more", "[mac_address][bits]") {
  CHECK(MacAddress::from_u64(0x001122334455).to_string() == "00:11:22:33:44:55");
  CHECK(MacAddress::from_u64(0xffffffffffff).is_broadcast());
  CHECK(MacAddress::from_u64(0).is_zero());
  for (const std::uint64_t v : {0x123456789abcULL, 0x800000000000ULL, 1ULL}) {
    CHECK(MacAddress::from_u64(v).to_u64() == v);
  }
  CHECK_THROWS_AS(MacAddress::from_u64(0x1000000000000ULL), std::out_of_range);
  CHECK_THROWS_WITH(MacAddress::from_u64(0x1000000000000ULL),
                    "MacAddress::from_u64: value 0x1000000000000 exceeds 48 bits (the largest MAC "
                    "address is 0xffffffffffff)");
  CHECK_THROWS_WITH(MacAddress::from_u64(~0ULL),
                    Catch::Matchers::Contains("0xffffffffffffffff exceeds 48 bits"));
}

TEST_CASE("bytes round trip", "[mac_address][bytes]") {
  const std::array<std::uint8_t, 6> bytes{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
  const MacAddress mac = MacAddress::from_bytes(bytes);
  CHECK(mac.to_string() == "de:ad:be:ef:00:01");
  CHECK(mac.to_bytes() == bytes);

  // From a span over part of a frame, and from a C array.
  const std::array<std::uint8_t, 8> frame{0xaa, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0xbb};
  CHECK(MacAddress::from_bytes(std::span<const std::uint8_t, 6>(frame.data() + 1, 6)) == mac);
  const std::uint8_t c_array[6] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};  // NOLINT(*-avoid-c-arrays)
  CHECK(MacAddress::from_bytes(c_array) == mac);

  for (const MacAddress m : {"00:00:00:00:00:00"_mac, "ff:ff:ff:ff:ff:ff"_mac,
                             "01:23:45:67:89:ab"_mac, "80:00:00:00:00:01"_mac}) {
    CHECK(MacAddress::from_bytes(m.to_bytes()) == m);
    CHECK(MacAddress::from_u64(m.to_u64()) == m);
    CHECK(MacAddress::parse(m.to_string()) == m);
  }
}

TEST_CASE("ordering is numeric, which is octet-lexicographic", "[mac_address][ordering]") {
  const MacAddress a = "00:00:00:00:00:ff"_mac;
  const MacAddress b = "00:00:00:00:01:00"_mac;
  const MacAddress c = "01:00:00:00:00:00"_mac;
  CHECK(a < b);
  CHECK(b < c);
  CHECK(a != b);
  CHECK(a == "00-00-00-00-00-ff"_mac);
  CHECK((a <=> b) == std::strong_ordering::less);
  CHECK((c <=> b) == std::strong_ordering::greater);
  CHECK((a <=> a) == std::strong_ordering::equal);
  CHECK(a <= a);
  CHECK(c >= b);

  std::vector<MacAddress> macs{c, a, "ff:ff:ff:ff:ff:ff"_mac, b, MacAddress{}};
  std::sort(macs.begin(), macs.end());
  CHECK(macs == std::vector<MacAddress>{MacAddress{}, a, b, c, "ff:ff:ff:ff:ff:ff"_mac});
  CHECK(std::is_sorted(macs.begin(), macs.end(),
                       [](MacAddress x, MacAddress y) { return x.to_bytes() < y.to_bytes(); }));
}

TEST_CASE("std::hash mixes all 48 bits", "[mac_address][hash]") {
  const std::hash<MacAddress> hash;
  const std::vector<MacAddress> bases{MacAddress{}, "00:11:22:33:44:55"_mac,
                                      "ff:ff:ff:ff:ff:ff"_mac, "a5:5a:0f:f0:33:cc"_mac};
  for (const MacAddress base : bases) {
    INFO("base: " << base);
    // Not the identity.
    CHECK(hash(base) != static_cast<std::size_t>(base.to_u64()));
    std::set<std::size_t> seen{hash(base)};
    for (int bit = 0; bit < 48; ++bit) {
      INFO("bit: " << bit);
      const MacAddress flipped = MacAddress::from_u64(base.to_u64() ^ (std::uint64_t{1} << bit));
      const std::size_t h = hash(flipped);
      CHECK(h != hash(base));
      CHECK(seen.insert(h).second);  // distinct from every other single-bit neighbour too
      // Each flip changes many output bits (a sanity check of mixing, not a statistical test).
      CHECK(std::popcount(static_cast<std::uint64_t>(h ^ hash(base))) >= 8);
    }
  }
  // Equal addresses hash equally, and the hash works with the standard containers.
  CHECK(hash("00:11:22:33:44:55"_mac) == hash(MacAddress::parse("0011.2233.4455")));
  std::unordered_set<MacAddress> set{"00:11:22:33:44:55"_mac, "0011.2233.4455"_mac,
                                     "00:11:22:33:44:56"_mac};
  CHECK(set.size() == 2);
}
