// tests/compile_fail/bad_mac_literal.cpp — must NOT compile: 'g' is not a hex digit, and the _mac
// literal is consteval. The ctest test passes only if the compiler's diagnostic names
// malformed_mac_address_literal. Keep it identical to good_mac_literal.cpp but for the literal.
#include <devcache/mac_address.hpp>

using namespace devcache::literals;

constexpr devcache::MacAddress mac = "00:11:22:33:44:5g"_mac;

static_assert(mac.oui() == 0x001122);
