// tests/compile_fail/good_mac_literal.cpp — the control for bad_mac_literal.cpp: the same file
// with a well-formed literal must compile, which proves the compile-fail harness works.
#include <devcache/mac_address.hpp>

using namespace devcache::literals;

constexpr devcache::MacAddress mac = "00:11:22:33:44:5f"_mac;

static_assert(mac.oui() == 0x001122);
