// tests/persistence_test.cpp — saving and loading a DeviceCache (persistence.hpp): every field
// round-trips (IPv4 and IPv6, with and without a port, odd device ids, extreme counts and times),
// empty and 100k-device caches, the wall-clock time conversion; every way a file can be bad —
// each byte corrupted in turn, truncated at every length, foreign, of another version, empty,
// missing — fails with a PersistenceError that names the file and the place, and changes nothing;
// skip_bad_records skips exactly the bad records; what load does with cached entries and the
// capacity; save errors (missing directory, a directory in the way, a write that fails) remove the
// temporary file and keep the old one; and a save while writers run is one consistent point in
// time. Also: skip_bad_records stays linear on a crafted file, never reads a record out of a
// damaged record's device id when its length holds, and load refuses devices and FIFOs. The
// SIGKILL crash test is persistence_crash_test.cpp.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <latch>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <devcache/cuckoo_map.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/persistence.hpp>
#include <devcache/sharded_map.hpp>

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using devcache::DeviceCacheOptions;
using devcache::IpAddress;
using devcache::LoadOptions;
using devcache::MacAddress;
using devcache::ManualClock;
using devcache::PersistenceError;
using namespace std::chrono_literals;

using ShardedCache = devcache::DeviceCache<devcache::ShardedMap, ManualClock>;
using CuckooCache = devcache::DeviceCache<devcache::CuckooMap, ManualClock>;
using Entry = devcache::BasicDeviceEntry<ManualClock>;
using Anchor = devcache::TimeAnchor<ManualClock>;
using SysTime = std::chrono::system_clock::time_point;

constexpr std::size_t header_size = 36;

MacAddress mac(std::uint64_t n) { return MacAddress::from_u64(0x02'00'00'00'00'00ULL + n); }
// 10.x.y.z for even n, fd00::n for odd n.
IpAddress ip_of(std::uint64_t n) {
  if (n % 2 == 0) return IpAddress::from_v4(0x0a000000U + static_cast<std::uint32_t>(n));
  std::array<std::uint8_t, 16> bytes{0xfd};
  for (std::size_t i = 0; i < 8; ++i) bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  return IpAddress::from_bytes(bytes);
}

DeviceCacheOptions options(std::optional<std::size_t> capacity = std::nullopt) {
  DeviceCacheOptions o;
  o.shard_count = 8;
  o.hash_seed = devcache::HashSeed::fixed(11);
  o.capacity = capacity;
  return o;
}

// An anchor pairing ManualClock time 5000 s with 2023-11-14 22:13:20 UTC.
Anchor anchor(std::chrono::seconds wall_offset = 0s, ManualClock::duration clock_offset = 0s) {
  return {SysTime(1'700'000'000s + wall_offset), ManualClock::time_point(5000s + clock_offset)};
}

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "devcache-persistence-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  [[nodiscard]] fs::path operator/(const std::string& name) const { return path_ / name; }
  [[nodiscard]] const fs::path& path() const { return path_; }
  // The names of the files in the directory.
  [[nodiscard]] std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

std::vector<unsigned char> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// The PersistenceError that f throws (the test fails if it throws none).
template <class F>
PersistenceError error_of(F&& f) {
  try {
    f();
  } catch (const PersistenceError& e) {
    return e;
  }
  FAIL("no PersistenceError was thrown");
  throw std::logic_error("unreachable");
}

// A small set of entries covering every kind of field.
std::vector<Entry> varied_entries() {
  const auto t = [](std::int64_t s) { return ManualClock::time_point(std::chrono::seconds(s)); };
  std::vector<Entry> entries;
  entries.push_back({"cam-1", MacAddress::parse("00:11:22:33:44:55"), IpAddress::parse("10.0.0.7"),
                     554, 3, t(1000), t(4990)});
  entries.push_back({"sensor-ipv6", MacAddress::parse("aa:bb:cc:dd:ee:ff"),
                     IpAddress::parse("2001:db8::1:2"), std::nullopt, 0, t(4999), t(4999)});
  entries.push_back({"", MacAddress::parse("00:00:00:00:00:00"), IpAddress::parse("0.0.0.0"), 0,
                     std::numeric_limits<std::uint64_t>::max(), t(-7), t(6000)});
  entries.push_back({std::string("bin\0ary \xff\xfe utf-8 \xc3\xa9", 19),
                     MacAddress::parse("ff:ff:ff:ff:ff:ff"), IpAddress::parse("::ffff:10.1.2.3"),
                     65535, 1, t(5000), t(5000)});
  entries.push_back(
      {std::string(1000, 'x'), mac(7), IpAddress::parse("255.255.255.255"), 1, 42, t(0), t(1)});
  return entries;
}

// The byte offset of each record of a file holding `entries`, in order, and the end.
std::vector<std::size_t> record_offsets(const std::vector<Entry>& entries) {
  std::vector<std::size_t> offsets{header_size};
  for (const Entry& e : entries) {
    offsets.push_back(offsets.back() + 12 + 38 + e.ip.bytes().size() + e.device_id.size());
  }
  return offsets;
}

// A valid header announcing `records` records, followed by `body`.
std::vector<unsigned char> state_file(std::uint64_t records,
                                      const std::vector<unsigned char>& body = {}) {
  std::vector<unsigned char> file(devcache::detail::state_magic.begin(),
                                  devcache::detail::state_magic.end());
  devcache::detail::put_le(file, devcache::persistence_format_version);
  devcache::detail::put_le(file, std::uint32_t{0});
  devcache::detail::put_le(file, records);
  devcache::detail::put_le(file, std::int64_t{1'700'000'000'000'000'000});
  devcache::detail::put_le(file, devcache::detail::state_crc(file));
  file.insert(file.end(), body.begin(), body.end());
  return file;
}

// The bytes of one valid record for `e`.
std::vector<unsigned char> record_bytes(const Entry& e) {
  std::vector<unsigned char> bytes;
  devcache::detail::append_record(bytes, e, anchor(), "test");
  return bytes;
}

// Everything but the times, which move with the wall clock between a save and a load.
bool same_except_times(const Entry& a, const Entry& b) {
  return a.device_id == b.device_id && a.mac == b.mac && a.ip == b.ip && a.port == b.port &&
         a.heartbeat_count == b.heartbeat_count;
}

}  // namespace

TEST_CASE("persistence: every field round-trips exactly with one anchor", "[persistence]") {
  TempDir dir;
  const fs::path path = dir / "state";
  const std::vector<Entry> entries = varied_entries();
  const devcache::SaveReport saved = devcache::save_entries(entries, path, anchor());
  CHECK(saved.devices == entries.size());
  CHECK(saved.bytes == fs::file_size(path));
  CHECK(saved.bytes == record_offsets(entries).back());
  CHECK(saved.saved_at == anchor().wall);
  CHECK(dir.files() == std::vector<std::string>{"state"});  // no temporary file left

  const devcache::LoadedEntries<ManualClock> loaded =
      devcache::load_entries<ManualClock>(path, {}, anchor());
  CHECK(loaded.entries == entries);  // every field, in file order
  CHECK(loaded.records == entries.size());
  CHECK(loaded.skipped == 0);
  CHECK(loaded.skipped_bytes == 0);
  CHECK(loaded.saved_at == anchor().wall);
}

TEST_CASE("persistence: times are stored as wall-clock time and keep their age", "[persistence]") {
  TempDir dir;
  const fs::path path = dir / "state";
  const std::vector<Entry> entries = varied_entries();
  devcache::save_entries(entries, path, anchor());

  // A restart an hour later, with a cache clock that restarted near zero: each device is its age
  // at the save plus the hour old.
  const Anchor later{anchor().wall + 1h, ManualClock::time_point(20s)};
  const auto loaded = devcache::load_entries<ManualClock>(path, {}, later);
  REQUIRE(loaded.entries.size() == entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto age_at_save = anchor().clock - entries[i].last_seen;
    CHECK(later.clock - loaded.entries[i].last_seen == age_at_save + 1h);
    CHECK(loaded.entries[i].last_seen - loaded.entries[i].first_seen ==
          entries[i].last_seen - entries[i].first_seen);
  }
  CHECK(loaded.saved_at == anchor().wall);

  // The header holds the save's wall-clock time, in nanoseconds since the Unix epoch.
  const std::vector<unsigned char> file = read_file(path);
  std::int64_t ns = 0;
  for (std::size_t i = 0; i < 8; ++i) ns |= std::int64_t{file[24 + i]} << (8 * i);
  CHECK(ns == 1'700'000'000'000'000'000);

  // Times beyond what nanoseconds hold are clamped, not wrapped.
  Entry far = entries[0];
  far.first_seen = ManualClock::time_point::min();
  far.last_seen = ManualClock::time_point::max();
  devcache::save_entries(std::vector<Entry>{far}, path, anchor());
  const auto clamped = devcache::load_entries<ManualClock>(path, {}, anchor());
  REQUIRE(clamped.entries.size() == 1);
  CHECK(clamped.entries[0].last_seen > anchor().clock + std::chrono::hours(24 * 365 * 200));
  CHECK(clamped.entries[0].first_seen < anchor().clock - std::chrono::hours(24 * 365 * 200));
}

TEMPLATE_TEST_CASE("persistence: save and load a cache, through both map backends", "[persistence]",
                   ShardedCache, CuckooCache) {
  ManualClock::reset();
  ManualClock::set(ManualClock::time_point(100s));
  TempDir dir;
  const fs::path path = dir / "devices.state";
  TestType cache(options());
  for (std::uint64_t n = 0; n < 50; ++n) {
    const std::optional<std::uint16_t> port =
        n % 3 == 0 ? std::nullopt : std::optional<std::uint16_t>(1000 + n);
    cache.add_device_entry("dev-" + std::to_string(n), mac(n), ip_of(n), port);
    ManualClock::advance(1s);
    for (std::uint64_t k = 0; k < n % 5; ++k) cache.record_heartbeat(mac(n));
  }
  const std::vector<Entry> before = cache.get_cache_snapshot();
  const devcache::SaveReport saved = devcache::save(cache, path);
  CHECK(saved.devices == 50);

  TestType restored(options());
  const devcache::LoadReport report = devcache::load(restored, path);
  CHECK(report.records == 50);
  CHECK(report.inserted == 50);
  CHECK(report.replaced == 0);
  CHECK(report.refused_full == 0);
  CHECK(report.skipped == 0);
  CHECK(report.saved_at == saved.saved_at);
  const std::vector<Entry> after = restored.get_cache_snapshot();
  REQUIRE(after.size() == before.size());
  // The manual clock stood still while the wall clock moved on a little: every time moved back
  // by that same little, which is the real time between the save and the load.
  const auto shift = after[0].last_seen - before[0].last_seen;
  CHECK(shift <= 0s);
  CHECK(shift > -10s);
  for (std::size_t i = 0; i < before.size(); ++i) {
    CHECK(same_except_times(after[i], before[i]));
    CHECK(after[i].first_seen - before[i].first_seen == shift);
    CHECK(after[i].last_seen - before[i].last_seen == shift);
  }
  const devcache::CacheStats stats = restored.get_cache_stats();
  CHECK(stats.adds == 50);  // a restored device is counted as an add
  CHECK(stats.total_heartbeats == cache.get_cache_stats().total_heartbeats);
}

TEST_CASE("persistence: an empty cache saves a header-only file and loads as nothing",
          "[persistence]") {
  ManualClock::reset();
  TempDir dir;
  const fs::path path = dir / "empty.state";
  ShardedCache empty(options());
  const devcache::SaveReport saved = devcache::save(empty, path);
  CHECK(saved.devices == 0);
  CHECK(fs::file_size(path) == header_size);

  ShardedCache cache(options());
  cache.add_device_entry("kept", mac(1), ip_of(2), 80);
  const devcache::LoadReport report = devcache::load(cache, path);
  CHECK(report.records == 0);
  CHECK(report.inserted + report.replaced + report.refused_full + report.skipped == 0);
  CHECK(cache.size() == 1);
}

TEST_CASE("persistence: a target whose name takes all 255 bytes saves and loads", "[persistence]") {
  // The temporary file's name adds a dot and a suffix to the target's: it used to pass the
  // file system's 255-byte limit ("File name too long"), so such a target could never be saved.
  ManualClock::reset();
  TempDir dir;
  const fs::path path = dir / std::string(255, 'n');
  ShardedCache cache(options());
  cache.add_device_entry("long", mac(1), ip_of(1), 80);
  CHECK(devcache::save(cache, path).devices == 1);
  ShardedCache loaded(options());
  CHECK(devcache::load(loaded, path).inserted == 1);
  CHECK(fs::file_size(path) > header_size);
  CHECK(dir.files() == std::vector<std::string>{std::string(255, 'n')});  // no temporary file
}

TEST_CASE("persistence: 100k devices round-trip", "[persistence]") {
  ManualClock::reset();
  TempDir dir;
  const fs::path path = dir / "big.state";
  constexpr std::uint64_t count = 100'000;
  std::vector<Entry> entries;
  entries.reserve(count);
  for (std::uint64_t n = 0; n < count; ++n) {
    entries.push_back({"device-" + std::to_string(n), mac(n), ip_of(n),
                       n % 7 == 0 ? std::nullopt : std::optional<std::uint16_t>(n % 65536), n * 3,
                       ManualClock::time_point(std::chrono::milliseconds(n)),
                       ManualClock::time_point(std::chrono::milliseconds(2 * n))});
  }
  const auto saved = devcache::save_entries(entries, path, anchor());
  CHECK(saved.devices == count);
  const auto loaded = devcache::load_entries<ManualClock>(path, {}, anchor());
  CHECK(loaded.entries == entries);

  ShardedCache cache(options());
  const devcache::LoadReport report = devcache::load(cache, path);
  CHECK(report.inserted == count);
  CHECK(cache.get_cache_stats().entries == count);
}

TEST_CASE("persistence: every corrupted byte is detected, located, and changes nothing",
          "[persistence]") {
  ManualClock::reset();
  TempDir dir;
  const fs::path good = dir / "good";
  const fs::path bad = dir / "bad";
  std::vector<Entry> entries = varied_entries();
  entries.resize(4);  // keep the file small: ~170 bytes, each corrupted in turn
  devcache::save_entries(entries, good, anchor());
  const std::vector<unsigned char> file = read_file(good);
  const std::vector<std::size_t> offsets = record_offsets(entries);
  REQUIRE(file.size() == offsets.back());

  ShardedCache cache(options());
  cache.add_device_entry("resident", mac(99), ip_of(99), 9);
  cache.add_device_entry("same-mac", entries[1].mac, ip_of(1), 1);  // would be replaced
  const std::vector<Entry> before = cache.get_cache_snapshot();
  const devcache::CacheStats stats_before = cache.get_cache_stats();

  for (std::size_t pos = 0; pos < file.size(); ++pos) {
    INFO("corrupted byte at offset " << pos);
    std::vector<unsigned char> corrupt = file;
    corrupt[pos] ^= 0x5a;
    write_file(bad, corrupt);

    const PersistenceError e = error_of([&] { devcache::load(cache, bad); });
    CHECK_THAT(e.what(), Contains(bad.string()));
    CHECK(e.path() == bad.string());
    CHECK(!e.code());
    REQUIRE(e.offset().has_value());
    if (pos < header_size) {
      // The header: the magic, the version, or its checksum.
      CHECK(!e.record().has_value());
      if (pos < 8) {
        CHECK_THAT(e.what(), Contains("not a devcache state file"));
      } else if (pos < 12) {
        CHECK_THAT(e.what(), Contains("format version"));
      } else {
        CHECK_THAT(e.what(), Contains("header checksum mismatch"));
      }
      // A bad header fails with skip_bad_records too.
      error_of([&] { devcache::load_entries<ManualClock>(bad, {.skip_bad_records = true}); });
    } else {
      // A record: its tag, or its checksum (the size, the fields, the checksum itself).
      const auto record = static_cast<std::size_t>(
          std::upper_bound(offsets.begin(), offsets.end(), pos) - offsets.begin() - 1);
      CHECK(e.record() == record);
      CHECK(*e.offset() >= offsets[record]);
      CHECK_THAT(e.what(), Contains("record " + std::to_string(record) + " of 4"));
      if (pos - offsets[record] < 4) {
        CHECK_THAT(e.what(), Contains("bad record tag"));
      } else if (pos - offsets[record] >= 8) {
        CHECK_THAT(e.what(), Contains("checksum mismatch"));
      }
      // skip_bad_records skips that record and only that one.
      const auto skipping =
          devcache::load_entries<ManualClock>(bad, {.skip_bad_records = true}, anchor());
      std::vector<Entry> expected = entries;
      expected.erase(expected.begin() + static_cast<std::ptrdiff_t>(record));
      CHECK(skipping.entries == expected);
      CHECK(skipping.skipped == 1);
      CHECK(skipping.records == 4);
      CHECK(skipping.skipped_bytes == offsets[record + 1] - offsets[record]);
    }
  }
  CHECK(cache.get_cache_snapshot() == before);
  CHECK(cache.get_cache_stats() == stats_before);
}

TEST_CASE(
    "persistence: a file truncated at any length is rejected, and skipping keeps whole records",
    "[persistence]") {
  TempDir dir;
  const fs::path good = dir / "good";
  const fs::path cut = dir / "cut";
  std::vector<Entry> entries = varied_entries();
  entries.resize(3);
  devcache::save_entries(entries, good, anchor());
  const std::vector<unsigned char> file = read_file(good);
  const std::vector<std::size_t> offsets = record_offsets(entries);

  for (std::size_t length = 0; length < file.size(); ++length) {
    INFO("truncated to " << length << " of " << file.size() << " bytes");
    write_file(cut, std::vector<unsigned char>(file.begin(),
                                               file.begin() + static_cast<std::ptrdiff_t>(length)));
    const PersistenceError e =
        error_of([&] { devcache::load_entries<ManualClock>(cut, {}, anchor()); });
    CHECK_THAT(e.what(), Contains(cut.string()));
    CHECK_THAT(e.what(), Contains(length == 0 ? "empty file" : "truncated"));
    if (length < header_size) {
      error_of([&] { devcache::load_entries<ManualClock>(cut, {.skip_bad_records = true}); });
      continue;
    }
    const auto whole = static_cast<std::size_t>(
        std::upper_bound(offsets.begin(), offsets.end(), length) - offsets.begin() - 1);
    CHECK(e.record() == whole);
    const auto skipping =
        devcache::load_entries<ManualClock>(cut, {.skip_bad_records = true}, anchor());
    CHECK(
        skipping.entries ==
        std::vector<Entry>(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(whole)));
    CHECK(skipping.skipped == entries.size() - whole);
    CHECK(skipping.skipped_bytes == length - offsets[whole]);
  }
}

TEST_CASE("persistence: foreign, other-version, empty, missing and padded files", "[persistence]") {
  ManualClock::reset();
  TempDir dir;
  const fs::path path = dir / "file";
  ShardedCache cache(options());
  cache.add_device_entry("resident", mac(1), ip_of(1), 1);
  const std::vector<Entry> before = cache.get_cache_snapshot();

  SECTION("foreign") {
    const std::string json = R"({"devices": [{"mac": "00:11:22:33:44:55"}]})";
    write_file(path, std::vector<unsigned char>(json.begin(), json.end()));
    const PersistenceError e = error_of([&] { devcache::load(cache, path); });
    CHECK_THAT(e.what(), Contains("not a devcache state file"));
    CHECK_THAT(e.what(), Contains("7b 22 64 65"));  // what it starts with
    CHECK(e.offset() == 0);
  }
  SECTION("another version") {
    devcache::save_entries(varied_entries(), path, anchor());
    std::vector<unsigned char> file = read_file(path);
    file[8] = 2;  // version 2, with a valid header checksum
    const auto crc = static_cast<std::uint32_t>(crc32_z(0UL, file.data(), 32));
    for (std::size_t i = 0; i < 4; ++i) file[32 + i] = static_cast<unsigned char>(crc >> (8 * i));
    write_file(path, file);
    const PersistenceError e = error_of([&] { devcache::load(cache, path); });
    CHECK_THAT(e.what(), Contains("format version 2 is not supported"));
    CHECK_THAT(e.what(), Contains("reads version 1"));
    CHECK(e.offset() == 8);
  }
  SECTION("empty") {
    write_file(path, {});
    const PersistenceError e = error_of([&] { devcache::load(cache, path); });
    CHECK_THAT(e.what(), Contains("empty file"));
  }
  SECTION("missing") {
    const fs::path missing = dir / "no-such-file";
    const PersistenceError e = error_of([&] { devcache::load(cache, missing); });
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK_THAT(e.what(), Contains(missing.string()));
    CHECK_THAT(e.what(), Contains("No such file or directory"));
  }
  SECTION("a directory") {
    const PersistenceError e = error_of([&] { devcache::load(cache, dir.path()); });
    CHECK(e.code() == std::errc::is_a_directory);
    CHECK_THAT(e.what(),
               Contains(dir.path().string() + "\": it is a directory, not a regular file"));
  }
  SECTION("a character device: /dev/null (and /dev/zero, which would never end)") {
    const PersistenceError e = error_of([&] { devcache::load(cache, "/dev/null"); });
    CHECK(e.code() == std::errc::invalid_argument);
    CHECK(e.path() == "/dev/null");
    // Checked before /dev/zero: without the check, reading it would run until std::bad_alloc.
    REQUIRE_THAT(e.what(), Contains("\"/dev/null\": it is a character device, not a regular file"));
    const PersistenceError zero = error_of([&] { devcache::load(cache, "/dev/zero"); });
    CHECK_THAT(zero.what(), Contains("\"/dev/zero\": it is a character device"));
  }
  SECTION("a FIFO with no writer: refused, not waited on") {
    const fs::path fifo = dir / "fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::future<std::string> message = std::async(std::launch::async, [&] {
      return std::string(error_of([&] { devcache::load_entries<ManualClock>(fifo); }).what());
    });
    // No timing is asserted: this only ends a load that waits for a writer (open(2) of a FIFO
    // blocks without one), so that the failure shows instead of a hung test.
    if (message.wait_for(30s) == std::future_status::timeout) {
      const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (writer >= 0) ::close(writer);
    }
    CHECK_THAT(message.get(), Contains("it is a FIFO (named pipe), not a regular file"));
  }
  SECTION("bytes after the last record") {
    devcache::save_entries(varied_entries(), path, anchor());
    std::vector<unsigned char> file = read_file(path);
    const std::size_t end = file.size();
    file.insert(file.end(), {1, 2, 3});
    write_file(path, file);
    const PersistenceError e = error_of([&] { devcache::load(cache, path); });
    CHECK_THAT(e.what(), Contains("3 unexpected bytes"));
    CHECK(e.offset() == end);
    const auto skipping = devcache::load_entries<ManualClock>(path, {.skip_bad_records = true});
    CHECK(skipping.entries.size() == varied_entries().size());
    CHECK(skipping.skipped == 0);
    CHECK(skipping.skipped_bytes == 3);
  }
  SECTION("a MAC twice") {
    std::vector<Entry> twice = varied_entries();
    twice.push_back(twice[1]);
    twice.back().device_id = "impostor";
    devcache::save_entries(twice, path, anchor());
    const PersistenceError e = error_of([&] { devcache::load(cache, path); });
    CHECK_THAT(e.what(), Contains("appears twice"));
    CHECK(e.record() == twice.size() - 1);
    const auto skipping =
        devcache::load_entries<ManualClock>(path, {.skip_bad_records = true}, anchor());
    CHECK(skipping.entries == varied_entries());  // the first one wins
    CHECK(skipping.skipped == 1);
  }
  CHECK(cache.get_cache_snapshot() == before);
}

TEST_CASE("persistence: skip_bad_records counts exactly what it skips", "[persistence]") {
  TempDir dir;
  const fs::path path = dir / "state";
  std::vector<Entry> entries;
  for (std::uint64_t n = 0; n < 20; ++n) {
    entries.push_back({"dev-" + std::to_string(n), mac(n), ip_of(n), 80, n,
                       ManualClock::time_point(1s), ManualClock::time_point(2s)});
  }
  devcache::save_entries(entries, path, anchor());
  std::vector<unsigned char> file = read_file(path);
  const std::vector<std::size_t> offsets = record_offsets(entries);
  // Damage records 3 (its size field), 4 (its checksum), 10 (its tag) and 11 and 12 (a run
  // of garbage over both).
  file[offsets[3] + 5] ^= 0x40;
  file[offsets[5] - 1] ^= 0x01;
  file[offsets[10]] = 'X';
  std::fill(file.begin() + static_cast<std::ptrdiff_t>(offsets[11] + 3),
            file.begin() + static_cast<std::ptrdiff_t>(offsets[12] + 9), 0xee);
  write_file(path, file);

  ShardedCache cache(options());
  CHECK_THROWS_AS(devcache::load(cache, path), PersistenceError);
  CHECK(cache.size() == 0);
  const devcache::LoadReport report = devcache::load(cache, path, {.skip_bad_records = true});
  CHECK(report.records == 20);
  CHECK(report.skipped == 5);
  CHECK(report.inserted == 15);
  CHECK(report.skipped_bytes == (offsets[5] - offsets[3]) + (offsets[13] - offsets[10]));
  for (const std::uint64_t n : std::array<std::uint64_t, 5>{3, 4, 10, 11, 12})
    CHECK(!cache.get_device_entry_by_mac(mac(n)));
}

TEST_CASE("persistence: the CRC of a byte range follows from prefix CRCs (what RangeCrc relies on)",
          "[persistence]") {
  std::mt19937_64 random(7);
  std::vector<unsigned char> bytes(5000);
  for (unsigned char& b : bytes) b = static_cast<unsigned char>(random());
  const auto crc = [&](std::size_t a, std::size_t b) {
    return static_cast<std::uint32_t>(crc32_z(0UL, bytes.data() + a, b - a));
  };
  std::vector<std::size_t> offsets;
  for (int i = 0; i < 200; ++i) offsets.push_back(100 + random() % (bytes.size() - 100 + 1));
  // The identity, for zlib's CRC and any bytes A before B: crc(B) = crc(AB) ^ combine(crc(A), 0,
  // len(B)), with A starting anywhere (here at 0, or at 100: RangeCrc's base).
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    const std::size_t a = std::min(offsets[i], offsets[i + 1]);
    const std::size_t b = std::max(offsets[i], offsets[i + 1]);
    for (const std::size_t base : {std::size_t{0}, std::size_t{100}}) {
      const std::uint32_t derived =
          crc(base, b) ^
          static_cast<std::uint32_t>(crc32_combine(crc(base, a), 0, static_cast<z_off_t>(b - a)));
      CHECK(derived == crc(a, b));
    }
  }
  const devcache::detail::RangeCrc ranges(bytes, 100, offsets);
  CHECK(ranges.bytes_read() == *std::max_element(offsets.begin(), offsets.end()) - 100);
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    const std::size_t a = std::min(offsets[i], offsets[i + 1]);
    const std::size_t b = std::max(offsets[i], offsets[i + 1]);
    CHECK(ranges.crc(a, b) == crc(a, b));
  }
  const std::size_t unnamed = [&] {
    std::size_t n = 100;
    while (std::find(offsets.begin(), offsets.end(), n) != offsets.end()) ++n;
    return n;
  }();
  CHECK(!ranges.crc(unnamed, offsets[0]).has_value());
}

TEST_CASE("persistence: skip_bad_records checksums each byte a bounded number of times",
          "[persistence]") {
  // Before RangeCrc, each tag after a bad record had its record's CRC computed over the length it
  // claims; a file of tags that each claim to reach nearly to the end took O(n^2) (~18 s for
  // 1 MiB). The parser counts the bytes it runs the CRC over: linear means a small multiple of the
  // file size (the first bad record's own claim, read directly, plus one pass for RangeCrc), where
  // the old loader read about n^2 / 16 bytes here. No timing involved.
  const std::string path_text = "crafted";
  const LoadOptions skip{.skip_bad_records = true};
  const Anchor at = anchor();
  const auto checksummed = [&](const std::vector<unsigned char>& file,
                               std::size_t expected_entries) {
    devcache::detail::StateParser<ManualClock> parser(file, path_text, skip, at);
    const devcache::LoadedEntries<ManualClock> loaded = parser.parse();
    CHECK(loaded.entries.size() == expected_entries);
    CHECK(header_size + loaded.skipped_bytes + [&] {
      std::size_t bytes = 0;
      for (const Entry& e : loaded.entries) bytes += record_bytes(e).size();
      return bytes;
    }() == file.size());
    return parser.checksummed_bytes();
  };
  constexpr std::size_t size = 256 * 1024;
  // Every 8 bytes a tag and a size that ends the record `short_of` bytes before the end of the
  // file: 0 is the end of the file (a consistent claim, skipped at once), 1 is not.
  for (const std::size_t short_of : {std::size_t{1}, std::size_t{0}, std::size_t{8}}) {
    INFO("records end " << short_of << " bytes before the end of the file");
    std::vector<unsigned char> file = state_file(2);
    while (file.size() + 8 <= size) {
      file.insert(file.end(), {'D', 'R', 'E', 'C'});
      devcache::detail::put_le(file, static_cast<std::uint32_t>(size - file.size() - 8 - short_of));
    }
    file.resize(size);
    CHECK(checksummed(file, 0) <= 3 * size);
  }
  // Valid records, each followed by a bad one that claims to reach nearly to the end: each bad one
  // would be read whole once, so n^2 / (record size) before.
  {
    std::vector<unsigned char> body;
    constexpr std::uint64_t count = 2000;
    for (std::uint64_t n = 0; n < count; ++n) {
      const std::vector<unsigned char> good =
          record_bytes({"dev-" + std::to_string(n), mac(n), ip_of(n), 80, n, {}, {}});
      body.insert(body.end(), good.begin(), good.end());
      body.insert(body.end(), {'D', 'R', 'E', 'C', 0, 0, 0, 0});
    }
    std::vector<unsigned char> file = state_file(count, body);
    for (std::size_t at_tag = header_size; at_tag + 8 <= file.size(); ++at_tag) {
      if (std::equal(file.begin() + static_cast<std::ptrdiff_t>(at_tag),
                     file.begin() + static_cast<std::ptrdiff_t>(at_tag + 8),
                     std::array<unsigned char, 8>{'D', 'R', 'E', 'C', 0, 0, 0, 0}.begin())) {
        const auto claim = static_cast<std::uint32_t>(file.size() - at_tag - 12 - 1);
        for (std::size_t i = 0; i < 4; ++i) {
          file[at_tag + 4 + i] = static_cast<unsigned char>(claim >> (8 * i));
        }
      }
    }
    CHECK(checksummed(file, count) <= 3 * file.size());
  }
}

TEST_CASE("persistence: skip_bad_records keeps intact records a damaged size field jumps over",
          "[persistence]") {
  // A size field damaged so that the record claims to end exactly where a later record starts:
  // resuming at that claimed end lost the intact records in between (found by a review: 16 of
  // 9,600 single-bit flips of size fields lost 469 records each).
  TempDir dir;
  const fs::path path = dir / "state";
  std::vector<Entry> four;
  for (std::uint64_t n = 0; n < 4; ++n) {
    four.push_back(Entry{"ten-bytes" + std::to_string(n), mac(n), ip_of(2 * n), 1, n,
                         ManualClock::time_point(1s), ManualClock::time_point(2s)});
  }
  devcache::save_entries(four, path, anchor());
  std::vector<unsigned char> file = read_file(path);
  const std::vector<std::size_t> offsets = record_offsets(four);
  REQUIRE(offsets[1] - offsets[0] == offsets[2] - offsets[1]);  // records of one size
  const std::size_t record = offsets[1] - offsets[0];
  REQUIRE(record == 64);
  file[offsets[0] + 4] ^= 0x40;  // the body size grows by 64: it now claims to end at offsets[2]
  write_file(path, file);
  const auto loaded =
      devcache::load_entries<ManualClock>(path, {.skip_bad_records = true}, anchor());
  CHECK(loaded.entries == std::vector<Entry>(four.begin() + 1, four.end()));
  CHECK(loaded.skipped == 1);
  CHECK(loaded.skipped_bytes == record);
}

TEST_CASE("persistence: skip_bad_records does not read a record out of a damaged record's id",
          "[persistence]") {
  TempDir dir;
  const fs::path path = dir / "state";
  // A device id holding the bytes of a complete valid record (ids are arbitrary bytes).
  const Entry inner{"forged",
                    MacAddress::parse("02:aa:aa:aa:aa:aa"),
                    IpAddress::parse("10.9.9.9"),
                    std::nullopt,
                    7,
                    ManualClock::time_point(1s),
                    ManualClock::time_point(2s)};
  const std::vector<unsigned char> inner_bytes = record_bytes(inner);
  Entry outer{std::string(inner_bytes.begin(), inner_bytes.end()),
              mac(1),
              ip_of(2),
              80,
              1,
              ManualClock::time_point(1s),
              ManualClock::time_point(2s)};
  const Entry before{
      "before", mac(10), ip_of(10), 1, 1, ManualClock::time_point(1s), ManualClock::time_point(2s)};
  const Entry after{
      "after", mac(11), ip_of(11), 1, 1, ManualClock::time_point(1s), ManualClock::time_point(2s)};
  const auto load_skipping = [&] {
    return devcache::load_entries<ManualClock>(path, {.skip_bad_records = true}, anchor());
  };

  SECTION("the damaged record alone: its end is the end of the file") {
    devcache::save_entries(std::vector<Entry>{outer}, path, anchor());
    std::vector<unsigned char> file = read_file(path);
    file[header_size + 8] ^= 0x01;  // a bit of the MAC: the record's checksum fails
    write_file(path, file);
    const auto loaded = load_skipping();
    CHECK(loaded.entries.empty());
    CHECK(loaded.records == 1);
    CHECK(loaded.skipped == 1);
    CHECK(loaded.skipped_bytes == file.size() - header_size);
  }
  const std::vector<Entry> three{before, outer, after};
  devcache::save_entries(three, path, anchor());
  std::vector<unsigned char> file = read_file(path);
  const std::vector<std::size_t> offsets = record_offsets(three);
  SECTION("between two records: a valid record starts at its end") {
    file[offsets[1] + 8] ^= 0x01;
    write_file(path, file);
    const auto loaded = load_skipping();
    CHECK(loaded.entries == std::vector<Entry>{before, after});
    CHECK(loaded.skipped == 1);
    CHECK(loaded.skipped_bytes == offsets[2] - offsets[1]);
  }
  SECTION("the damaged record's size field: the scan lands in the id (the documented limit)") {
    file[offsets[1] + 4] ^= 0x01;  // the record now claims to end a byte late (or early)
    write_file(path, file);
    const auto loaded = load_skipping();
    // The embedded record is returned, and the report shows more records met than announced:
    // the bad record's start and its tail (after the embedded record) count as two.
    CHECK(loaded.entries == std::vector<Entry>{before, inner, after});
    CHECK(loaded.records == 3);
    CHECK(loaded.skipped == 2);
    CHECK(loaded.entries.size() + loaded.skipped > loaded.records);
    CHECK(loaded.skipped_bytes == offsets[2] - offsets[1] - inner_bytes.size());
  }
}

TEMPLATE_TEST_CASE(
    "persistence: load replaces same-MAC entries, keeps others, refuses past the "
    "capacity",
    "[persistence]", ShardedCache, CuckooCache) {
  ManualClock::reset();
  ManualClock::set(ManualClock::time_point(5000s));
  TempDir dir;
  const fs::path path = dir / "state";
  // The file: device 1 (also cached), and new devices 2, 3, 4 seen 30, 10 and 20 s before the
  // save.
  const auto at = [](std::chrono::seconds s) { return ManualClock::time_point(5000s - s); };
  const std::vector<Entry> file_entries{
      {"one-from-file", mac(1), ip_of(1), 11, 100, at(100s), at(50s)},
      {"two", mac(2), ip_of(2), 22, 2, at(40s), at(30s)},
      {"three", mac(3), ip_of(3), std::nullopt, 3, at(40s), at(10s)},
      {"four", mac(4), ip_of(4), 44, 4, at(40s), at(20s)},
  };
  devcache::save_entries(file_entries, path, Anchor::now());

  SECTION("unbounded: all stored") {
    TestType cache(options());
    cache.add_device_entry("one-cached", mac(1), ip_of(1), 1);
    cache.add_device_entry("resident", mac(9), ip_of(9), 9);
    const devcache::LoadReport report = devcache::load(cache, path);
    CHECK(report.inserted == 3);
    CHECK(report.replaced == 1);
    CHECK(report.refused_full == 0);
    CHECK(cache.size() == 5);
    CHECK(cache.get_device_entry_by_mac(mac(1))->device_id == "one-from-file");  // the file wins
    CHECK(cache.get_device_entry_by_mac(mac(1))->heartbeat_count == 100);
    CHECK(cache.get_device_entry_by_mac(mac(9))->device_id == "resident");  // kept
    const devcache::CacheStats stats = cache.get_cache_stats();
    CHECK(stats.adds == 2 + 3);
    CHECK(stats.updates == 1);
  }
  SECTION(
      "capacity 4 with three cached: one replaced, the most recent new device in, two refused") {
    auto o = options(4);
    o.capacity_policy = devcache::CapacityPolicy::evict_least_recently_seen;  // load never evicts
    TestType cache(o);
    cache.add_device_entry("one-cached", mac(1), ip_of(1), 1);
    cache.add_device_entry("resident-a", mac(8), ip_of(8), 8);
    cache.add_device_entry("resident-b", mac(9), ip_of(9), 9);
    const devcache::LoadReport report = devcache::load(cache, path);
    CHECK(report.replaced == 1);
    CHECK(report.inserted == 1);
    CHECK(report.refused_full == 2);
    CHECK(cache.size() == 4);
    CHECK(cache.get_device_entry_by_mac(mac(3)));  // seen 10 s before the save: the most recent
    CHECK(!cache.get_device_entry_by_mac(mac(2)));
    CHECK(!cache.get_device_entry_by_mac(mac(4)));
    CHECK(cache.get_device_entry_by_mac(mac(8)));
    CHECK(cache.get_device_entry_by_mac(mac(9)));
    const devcache::CacheStats stats = cache.get_cache_stats();
    CHECK(stats.refused_adds == 2);
    CHECK(stats.evictions == 0);
    // The capacity reservation stays exact: removing one makes room for exactly one.
    CHECK(cache.remove_device(mac(8)));
    CHECK(cache.restore_device_entry(file_entries[1]) == devcache::RestoreOutcome::inserted);
    CHECK(cache.restore_device_entry(file_entries[3]) == devcache::RestoreOutcome::refused_full);
    CHECK(cache.restore_device_entry(file_entries[1]) == devcache::RestoreOutcome::replaced);
  }
}

TEST_CASE("persistence: save errors name the file and the cause, and leave no temporary file",
          "[persistence]") {
  ManualClock::reset();
  TempDir dir;
  const std::vector<Entry> entries = varied_entries();

  SECTION("the directory does not exist") {
    const fs::path path = dir / "missing" / "state";
    const PersistenceError e = error_of([&] { devcache::save_entries(entries, path, anchor()); });
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(e.path() == path.string());
    CHECK_THAT(e.what(), Contains(path.string()));
    CHECK_THAT(e.what(), Contains("No such file or directory"));
  }
  SECTION("a directory is in the way") {
    const fs::path path = dir / "state";
    fs::create_directory(path);
    fs::create_directory(path / "inside");
    const PersistenceError e = error_of([&] { devcache::save_entries(entries, path, anchor()); });
    CHECK(e.code());
    CHECK_THAT(e.what(), Contains("cannot rename"));
    CHECK(dir.files() == std::vector<std::string>{"state"});
  }
  SECTION("a write fails (file size limit): the old file stays") {
    const fs::path path = dir / "state";
    devcache::save_entries(std::vector<Entry>(entries.begin(), entries.begin() + 1), path,
                           anchor());
    const std::vector<unsigned char> old = read_file(path);
    std::vector<Entry> many;
    for (std::uint64_t n = 0; n < 2000; ++n) {
      many.push_back({"dev-" + std::to_string(n), mac(n), ip_of(n), 1, n, {}, {}});
    }
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit small = saved;
    small.rlim_cur = 4096;
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of a signal
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::optional<PersistenceError> e = [&]() -> std::optional<PersistenceError> {
      try {
        devcache::save_entries(many, path, anchor());
      } catch (const PersistenceError& error) {
        return error;
      }
      return std::nullopt;
    }();
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    REQUIRE(e.has_value());
    CHECK(e->code() == std::errc::file_too_large);
    CHECK_THAT(e->what(), Contains("cannot write the temporary file"));
    CHECK_THAT(e->what(), Contains(path.string()));
    CHECK(read_file(path) == old);
    CHECK(dir.files() == std::vector<std::string>{"state"});
  }
  SECTION("a replaced file keeps its permissions") {
    const fs::path path = dir / "state";
    devcache::save_entries(entries, path, anchor());
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    devcache::save_entries(entries, path, anchor());
    CHECK(fs::status(path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  }
}

TEST_CASE("persistence: a save while writers run is one consistent point in time",
          "[persistence][concurrency]") {
  ManualClock::reset();
  TempDir dir;
  const fs::path path = dir / "state";
  // Each writer adds its devices in order, and after each add heartbeats its two pinned devices,
  // A then B. A consistent copy therefore holds a prefix of each writer's devices and, for each
  // writer, A's count equal to B's or one more; a copy made a shard at a time would not.
  constexpr std::uint64_t writers = 2;
  constexpr std::uint64_t per_writer = 1'000'000;
  constexpr std::uint64_t max_adds = 5'000;
  ShardedCache cache(options());
  const auto pinned = [](std::uint64_t w, std::uint64_t k) { return mac(w * per_writer + k); };
  for (std::uint64_t w = 0; w < writers; ++w) {
    cache.add_device_entry("a", pinned(w, 0), ip_of(w), 1);
    cache.add_device_entry("b", pinned(w, 1), ip_of(w), 1);
  }
  std::atomic<bool> stop{false};
  std::latch start(writers + 1);
  std::vector<std::jthread> threads;
  for (std::uint64_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      start.arrive_and_wait();
      for (std::uint64_t i = 2; !stop.load(std::memory_order_relaxed); ++i) {
        if (i < max_adds) cache.add_device_entry("d", pinned(w, i), ip_of(i), std::nullopt);
        cache.record_heartbeat(pinned(w, 0));
        cache.record_heartbeat(pinned(w, 1));
      }
    });
  }
  start.arrive_and_wait();
  std::size_t largest = 0;
  for (int round = 0; round < 10; ++round) {
    devcache::save(cache, path);
    const auto loaded = devcache::load_entries<ManualClock>(path);
    largest = std::max(largest, loaded.entries.size());
    for (std::uint64_t w = 0; w < writers; ++w) {
      std::vector<std::uint64_t> indexes;
      std::uint64_t a = 0;
      std::uint64_t b = 0;
      for (const Entry& e : loaded.entries) {
        const std::uint64_t n = e.mac.to_u64() - mac(0).to_u64();
        if (n / per_writer != w) continue;
        indexes.push_back(n % per_writer);
        if (n % per_writer == 0) a = e.heartbeat_count;
        if (n % per_writer == 1) b = e.heartbeat_count;
      }
      std::sort(indexes.begin(), indexes.end());
      INFO("round " << round << ", writer " << w << ": " << indexes.size() << " devices");
      CHECK(indexes.back() + 1 == indexes.size());  // a prefix
      CHECK((a == b || a == b + 1));
    }
  }
  stop = true;
  threads.clear();
  CHECK(largest > 2 * writers);  // the writers did run during the saves
  CHECK(dir.files() == std::vector<std::string>{"state"});
}
