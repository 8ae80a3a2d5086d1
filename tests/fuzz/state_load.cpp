// tests/fuzz/state_load.cpp — fuzz target for reading a DeviceCache state file (persistence.hpp).
//
// The input is the file's bytes, parsed as load_entries parses them (detail::StateParser, with a
// fixed time anchor), once strictly and once with skip_bad_records. Properties checked:
//   * strict: it throws only PersistenceError, naming the file, or returns exactly the records the
//     header announced, with distinct MACs and nothing skipped;
//   * skip_bad_records: it throws only PersistenceError, and only when the strict parse throws
//     too (a bad header). Otherwise the header, the returned records (as append_record writes
//     them) and skipped_bytes add up to the file's size; entries + skipped >= records; MACs are
//     distinct; and where the strict parse succeeded, the same entries and nothing skipped;
//   * skip_bad_records runs the CRC over at most 4 times the file's bytes, whatever they are: no
//     crafted file makes it quadratic (detail::RangeCrc).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <devcache/errors.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/persistence.hpp>

#include "fuzz_check.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Entry = devcache::BasicDeviceEntry<Clock>;
using Loaded = devcache::LoadedEntries<Clock>;

const devcache::TimeAnchor<Clock>& anchor() {
  static const devcache::TimeAnchor<Clock> fixed{
      std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)),
      Clock::time_point(std::chrono::seconds(1'000))};
  return fixed;
}

const std::string path_text = "fuzz.state";

struct Outcome {
  std::optional<Loaded> loaded;  // empty: it threw PersistenceError
  std::uint64_t checksummed = 0;
};

Outcome parse(std::span<const unsigned char> file, bool skip) {
  const devcache::LoadOptions options{skip};
  devcache::detail::StateParser<Clock> parser(file, path_text, options, anchor());
  Outcome out;
  try {
    out.loaded = parser.parse();
  } catch (const devcache::PersistenceError& e) {
    DEVCACHE_FUZZ_CHECK(std::string(e.what()).find("\"fuzz.state\"") != std::string::npos);
    DEVCACHE_FUZZ_CHECK(e.path() == path_text);
  }
  out.checksummed = parser.checksummed_bytes();
  return out;
}

bool distinct_macs(const Loaded& loaded) {
  std::set<devcache::MacAddress> macs;
  for (const Entry& e : loaded.entries) {
    if (!macs.insert(e.mac).second) return false;
  }
  return true;
}

std::size_t record_bytes(const Loaded& loaded) {
  std::size_t bytes = 0;
  std::vector<unsigned char> record;
  for (const Entry& e : loaded.entries) {
    record.clear();
    devcache::detail::append_record(record, e, anchor(), path_text);
    bytes += record.size();
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> file(data, size);
  const Outcome strict = parse(file, false);
  const Outcome skip = parse(file, true);

  if (strict.loaded) {
    DEVCACHE_FUZZ_CHECK(strict.loaded->entries.size() == strict.loaded->records);
    DEVCACHE_FUZZ_CHECK(strict.loaded->skipped == 0);
    DEVCACHE_FUZZ_CHECK(strict.loaded->skipped_bytes == 0);
    DEVCACHE_FUZZ_CHECK(distinct_macs(*strict.loaded));
    DEVCACHE_FUZZ_CHECK(devcache::detail::state_header_size + record_bytes(*strict.loaded) == size);
    DEVCACHE_FUZZ_CHECK(skip.loaded.has_value());
  }
  if (!skip.loaded) {
    DEVCACHE_FUZZ_CHECK(!strict.loaded);
    return 0;
  }
  const Loaded& s = *skip.loaded;
  DEVCACHE_FUZZ_CHECK(devcache::detail::state_header_size + record_bytes(s) + s.skipped_bytes ==
                      size);
  DEVCACHE_FUZZ_CHECK(s.entries.size() + s.skipped >= s.records);
  DEVCACHE_FUZZ_CHECK(distinct_macs(s));
  DEVCACHE_FUZZ_CHECK(skip.checksummed <= 4 * size);
  if (strict.loaded) {
    DEVCACHE_FUZZ_CHECK(s.entries == strict.loaded->entries);
    DEVCACHE_FUZZ_CHECK(s.skipped == 0 && s.skipped_bytes == 0);
  }
  return 0;
}
