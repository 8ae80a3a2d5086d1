// A downstream program that uses devcache through add_subdirectory(devcache): the umbrella header,
// both map backends (which pull in libcuckoo and Threads) and the fmt formatter (which links fmt).
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>

#include <devcache/devcache.hpp>

int main() {
  const auto mac = devcache::MacAddress::parse("00:11:22:33:44:55");
  const std::string text = mac.to_string();
  const std::string formatted = fmt::format("{}", mac);

  devcache::ShardedMap<devcache::MacAddress, std::uint64_t> sharded;
  sharded.insert(mac, 7);
  devcache::CuckooMap<devcache::MacAddress, std::uint64_t> cuckoo;
  cuckoo.insert(mac, 9);

  if (text != "00:11:22:33:44:55" || formatted != text ||
      sharded.find(mac) != std::optional<std::uint64_t>(7) ||
      cuckoo.find(mac) != std::optional<std::uint64_t>(9)) {
    std::fprintf(stderr, "add_subdirectory_test: unexpected results (\"%s\", \"%s\")\n",
                 text.c_str(), formatted.c_str());
    return 1;
  }
  std::puts("add_subdirectory_test: ok");
  return 0;
}
