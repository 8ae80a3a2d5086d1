// devcache/persistence.hpp — saving a DeviceCache to a file and loading it back, so that a
// restarted process continues with the devices it knew.
//
//   devcache::save(cache, "/var/lib/app/devices.state");            // atomic and durable
//   devcache::LoadReport r = devcache::load(cache, "/var/lib/app/devices.state");
//   // r.inserted devices restored, r.replaced replaced, r.refused_full refused (cache full)
//
// Not included by the umbrella header devcache.hpp: it needs zlib (Debian: zlib1g-dev) for its
// checksums, so link the CMake target devcache::persistence (devcache::devcache plus zlib).
//
// Design
// ------
// Consistency. save() copies the cache with get_cache_snapshot(), which locks every shard shared
// at once: the file is one point in time, never a mix of before and after a concurrent write.
// Writers wait for the copy (O(size)), not for the file: it is written after the locks are gone.
//
// Atomicity and durability. The file is written under a temporary name in the same directory
// (".<name>.tmp-<pid>-<n>", <name> cut to its first 200 bytes so that a target whose name takes
// the file system's whole 255 bytes still gets one; created exclusively), fsync()ed, renamed over
// the target (rename(2) replaces atomically within a file system), and then the directory is
// fsync()ed so that the rename itself survives a power loss. Whenever a process or the machine
// dies, the target holds the previous file or the new one, never a torn one. A crash can leave a
// temporary file behind; nothing reads it, and removing it is safe whenever no save is running. On
// any error the temporary file is removed, the target is left as it was, and PersistenceError says
// which file and which call failed, with strerror.
//
// Format (version 1). Binary, little-endian, because the file exists to restore the cache
// exactly and quickly, at a million devices too: times are integers of nanoseconds, not text to
// round or re-parse; a device takes a fixed 54 bytes plus its id (66 with an IPv6 address), with
// no field names or escaping; and reading is one bounds-checked copy per field, with no parser
// (or parser dependency) and nothing to escape or unescape.
//
//   header, 36 bytes:
//     0  8  magic 89 44 56 43 0d 0a 1a 0a ("\x89DVC\r\n\x1a\n": not text, and a transfer that
//           mangles line ends or 8-bit bytes breaks it visibly, as PNG's does)
//     8  4  format version (1)
//    12  4  flags (0: none are defined)
//    16  8  record count
//    24  8  when the file was saved: wall-clock nanoseconds since the Unix epoch (signed)
//    32  4  CRC-32 of bytes 0..32
//   then `record count` records, each:
//     0  4  tag "DREC"
//     4  4  body size B: the bytes from offset 8 up to the record's CRC
//     8  6  MAC address
//    14  1  IP family: 4 or 6
//    15  1  flags: bit 0 = has a port (no other bit is defined)
//    16  2  port (0 without one)
//    18  8  heartbeat count
//    26  8  first seen: wall-clock nanoseconds since the Unix epoch (signed)
//    34  8  last seen: the same
//    42  4  device id length L
//    46  4 or 16  IP address, network byte order
//    ..  L  device id bytes, as stored
//   8+B  4  CRC-32 of the record's bytes 0..8+B
//   and nothing after the last record.
// The checksum is zlib's CRC-32 (crc32_z), which detects every error burst of up to 32 bits, so
// any single corrupted byte, and a corrupted file is rejected rather than half-believed.
// Per-record checksums and tags let LoadOptions::skip_bad_records skip a damaged record and find
// the next good one, instead of losing everything after the damage.
//
// Time. The cache's clock is steady_clock by default, whose epoch (usually boot) means nothing
// after a restart, so times are stored as wall-clock (system_clock) time: at save, with both
// clocks read at one moment (a TimeAnchor), wall = system_now + (t - clock_now); at load, with a
// new anchor, t = clock_now + (wall - system_now). A device seen 10 s before the save is therefore
// 10 s plus the downtime old after the load, and ages out as it should. ManualClock works the
// same way. Times too far from now to convert (more than about 292 years) are clamped.
//
// Loading validates everything (header, every record's checksum and fields, no MAC twice) into a
// vector first and changes the cache only after that succeeded: a file that is foreign,
// truncated, corrupt or of another version throws PersistenceError, naming the file, the byte
// offset (and record) where it went wrong and what is wrong, and leaves the cache unchanged. With
// LoadOptions::skip_bad_records, bad records are skipped and counted instead (a bad header still
// throws), in time linear in the file size whatever it holds (see RangeCrc). Then each entry is
// stored with DeviceCache::restore_device_entry: an entry with the same MAC is replaced (the file
// wins), other cached devices are kept, and entries that do not fit under the capacity are refused
// — most recently seen first in, never evicting — and counted in the LoadReport, never silently
// lost.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <zlib.h>

#include <devcache/detail/saturating.hpp>
#include <devcache/device_cache.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>

namespace devcache {

/// The version of the file format save() writes and load() reads.
inline constexpr std::uint32_t persistence_format_version = 1;

/// A reading of the cache's clock and of the wall clock (system_clock) at one moment: what
/// converts the cache's times to wall-clock times at save and back at load (see the file
/// comment). save() and load() take one with now(); give your own to save_entries() and
/// load_entries() to make a test exact, or to pretend that time passed.
///
/// Thread-safety: a plain value. Throws: nothing.
template <class Clock>
struct TimeAnchor {
  std::chrono::system_clock::time_point wall;
  typename Clock::time_point clock;

  /// Both clocks, read one right after the other. Throws: nothing (for the standard clocks).
  static TimeAnchor now() noexcept(noexcept(Clock::now())) {
    const typename Clock::time_point clock_now = Clock::now();
    return {std::chrono::system_clock::now(), clock_now};
  }
};

/// What save() and save_entries() wrote.
struct SaveReport {
  /// Devices written.
  std::size_t devices = 0;
  /// The size of the file.
  std::uint64_t bytes = 0;
  /// The wall-clock time recorded in the file's header.
  std::chrono::system_clock::time_point saved_at;
};

/// How load() and load_entries() read a file.
struct LoadOptions {
  /// false (the default): any bad record makes the load throw and change nothing.
  /// true: records that fail their checksum or validation, a MAC seen twice, and records missing
  /// from a truncated file are skipped and counted (LoadReport::skipped) instead. The header must
  /// still be intact.
  ///
  /// After a bad record, loading goes on at the record's claimed end (offset 8 + its body size +
  /// 4) when its tag and size field were readable and that end agrees with what follows: it is
  /// the end of the file, or a valid record starts there. The damaged record's bytes are then
  /// never read as records, which matters because a device id may hold any bytes, a whole valid
  /// record included; unless valid records inside its claimed extent follow one another exactly
  /// up to that end (a damaged size field that happens to land on a later record's start), which
  /// are then read. Otherwise (a damaged tag or size field, or two damaged records in a row) it
  /// scans forward from the bad record's second byte for the next record that passes its checksum
  /// and validation. That scan can land inside a damaged record's device id and return a record
  /// embedded there; LoadedEntries::skipped then tends to show more records than the header
  /// announced. The checksums detect accidents, not forgery: a file written by someone hostile
  /// can hold any valid records it likes.
  bool skip_bad_records = false;
};

/// What load_entries() read: the entries, and what the file said about itself.
template <class Clock>
struct LoadedEntries {
  /// The valid entries, in file order, their times converted to the Clock.
  std::vector<BasicDeviceEntry<Clock>> entries;
  /// The wall-clock time the file was saved at (from its header).
  std::chrono::system_clock::time_point saved_at;
  /// Records the header announced.
  std::uint64_t records = 0;
  /// Records skipped (skip_bad_records only): each bad record met (a place where a record should
  /// start and none could be read: damaged, invalid, or cut off by the end of the file) and each
  /// duplicate MAC counts one, and records the header announced that were never met (lost inside
  /// a damaged stretch, or missing from a truncated file) count too. That is, max(bad records
  /// met, records - entries.size()): entries.size() + skipped >= records, and it is more when the
  /// loader met more records, good and bad, than the header announced: a returned entry may then
  /// have been read from inside a damaged record (see LoadOptions::skip_bad_records).
  std::uint64_t skipped = 0;
  /// Bytes that belonged to no returned record and not to the header (skip_bad_records only):
  /// the header's 36 bytes, the returned records' bytes and skipped_bytes add up to the file size.
  std::uint64_t skipped_bytes = 0;
};

/// What load() did.
struct LoadReport {
  /// The wall-clock time the file was saved at.
  std::chrono::system_clock::time_point saved_at;
  /// Records the file's header announced.
  std::uint64_t records = 0;
  /// Devices that were not cached and now are.
  std::size_t inserted = 0;
  /// Cached devices whose entry was replaced by the file's.
  std::size_t replaced = 0;
  /// Devices not stored because the cache was full (see the file comment).
  std::size_t refused_full = 0;
  /// Bad records skipped (LoadOptions::skip_bad_records only; see LoadedEntries::skipped).
  std::uint64_t skipped = 0;
  /// Bytes skipped with them (see LoadedEntries::skipped_bytes).
  std::uint64_t skipped_bytes = 0;
};

namespace detail {

inline constexpr std::array<unsigned char, 8> state_magic{0x89, 'D',  'V',  'C',
                                                          '\r', '\n', 0x1a, '\n'};
inline constexpr std::array<unsigned char, 4> state_record_tag{'D', 'R', 'E', 'C'};
inline constexpr std::size_t state_header_size = 36;
// Tag, body size, and the body's fixed fields (up to the IP address), and the CRC.
inline constexpr std::size_t state_record_prefix = 8;
inline constexpr std::size_t state_body_fixed = 38;
inline constexpr std::size_t state_record_crc = 4;
inline constexpr std::size_t state_min_record =
    state_record_prefix + state_body_fixed + 4 + state_record_crc;
inline constexpr std::uint8_t state_flag_port = 0x01;

inline std::uint32_t state_crc(std::span<const unsigned char> bytes) noexcept {
  return static_cast<std::uint32_t>(crc32_z(0UL, bytes.data(), bytes.size()));
}

// Little-endian encoding, byte by byte (right on any host).
template <class T>
void put_le(std::vector<unsigned char>& out, T value) {
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<unsigned char>(u & 0xffU));
    if constexpr (sizeof(T) > 1) u = static_cast<U>(u >> 8U);
  }
}

template <class T>
T get_le(const unsigned char* p) noexcept {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (std::size_t i = sizeof(T); i-- > 0;) u = static_cast<U>((u << 8U) | p[i]);
  return static_cast<T>(u);
}

// Clock time -> wall-clock nanoseconds since the Unix epoch: wall + (t - clock).
template <class Clock>
std::int64_t to_wall_ns(typename Clock::time_point t, const TimeAnchor<Clock>& anchor) noexcept {
  const std::int64_t age = age_ns(t, anchor.clock);
  return saturating_add(to_ns(anchor.wall.time_since_epoch()), age);
}

// Wall-clock nanoseconds since the Unix epoch -> clock time: clock + (wall_ns - wall).
template <class Clock>
typename Clock::time_point from_wall_ns(std::int64_t wall_ns,
                                        const TimeAnchor<Clock>& anchor) noexcept {
  const std::int64_t offset = saturating_sub(wall_ns, to_ns(anchor.wall.time_since_epoch()));
  const std::int64_t ns = saturating_add(to_ns(anchor.clock.time_since_epoch()), offset);
  return typename Clock::time_point(
      std::chrono::duration_cast<typename Clock::duration>(std::chrono::nanoseconds(ns)));
}

inline std::chrono::system_clock::time_point wall_from_ns(std::int64_t ns) noexcept {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

inline std::string errno_text(int error) { return std::system_category().message(error); }

// What a file of type `mode` (st_mode) is, for a message.
inline std::string_view file_type_name(mode_t mode) noexcept {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "a file of unknown type";
}

// A file descriptor, closed on destruction (errors of that close are ignored: the paths that
// care call close() themselves).
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) noexcept : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  // Takes ownership of `fd` (this holds none yet).
  void reset(int fd) noexcept { fd_ = fd; }
  // Closes now and returns 0, or the errno of close().
  int close() noexcept {
    const int fd = std::exchange(fd_, -1);
    return fd >= 0 && ::close(fd) != 0 ? errno : 0;
  }

 private:
  int fd_;
};

// Writes all of `bytes`, retrying short writes and EINTR; returns 0 or the errno.
inline int write_all(int fd, std::span<const unsigned char> bytes) noexcept {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return 0;
}

// The temporary file of one save: created exclusively next to the target, removed by the
// destructor unless commit() renamed it over the target.
class TempFile {
 public:
  TempFile(std::filesystem::path target, std::string target_text)
      : target_(std::move(target)), target_text_(std::move(target_text)) {
    // The name cut to 200 bytes: the temporary name must fit in NAME_MAX (255) even when the
    // target's does exactly. Two targets that share those bytes only make the loop below try
    // another suffix.
    const std::string base =
        "." + target_.filename().string().substr(0, 200) + ".tmp-" + std::to_string(::getpid()) +
        "-" + std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()) % 1'000'000U);
    for (unsigned attempt = 0;; ++attempt) {
      path_ = target_.parent_path() / (base + "-" + std::to_string(attempt));
      const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        fd_.reset(fd);
        break;
      }
      if (errno != EEXIST || attempt == 100) fail("cannot create the temporary file", errno);
    }
    // A replaced file keeps its permissions (a new one gets 0666 less the umask).
    struct stat old {};
    if (::stat(target_.c_str(), &old) == 0 && ::fchmod(fd_.get(), old.st_mode & 07777) != 0) {
      const int error = errno;
      ::unlink(path_.c_str());  // the destructor does not run when the constructor throws
      fail("cannot set the permissions of the temporary file", error);
    }
    created_ = true;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    fd_.close();
    if (created_) ::unlink(path_.c_str());
  }

  void write(std::span<const unsigned char> bytes) {
    if (const int error = write_all(fd_.get(), bytes))
      fail("cannot write the temporary file", error);
  }

  // fsync, close, rename over the target, fsync the directory.
  void commit() {
    if (::fsync(fd_.get()) != 0) fail("cannot fsync the temporary file", errno);
    if (const int error = fd_.close()) fail("cannot close the temporary file", error);
    if (::rename(path_.c_str(), target_.c_str()) != 0) {
      fail("cannot rename the temporary file over it", errno);
    }
    created_ = false;  // it is the target now
    const std::filesystem::path dir =
        target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
    const FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) {
      fail_saved("cannot open its directory to fsync the rename", errno);
    }
    // EINVAL: this file system cannot fsync a directory; the rename is as durable as it gets.
    if (::fsync(dir_fd.get()) != 0 && errno != EINVAL) {
      fail_saved("cannot fsync its directory", errno);
    }
  }

 private:
  [[noreturn]] void fail(std::string_view what, int error) const {
    throw PersistenceError(fmt::format(R"(devcache: cannot save "{}": {} "{}": {})", target_text_,
                                       what, path_.string(), errno_text(error)),
                           target_text_, std::error_code(error, std::generic_category()));
  }
  [[noreturn]] void fail_saved(std::string_view what, int error) const {
    throw PersistenceError(fmt::format("devcache: saved \"{}\", but {}: {} (the new file may not "
                                       "survive a power loss)",
                                       target_text_, what, errno_text(error)),
                           target_text_, std::error_code(error, std::generic_category()));
  }

  std::filesystem::path target_;
  std::string target_text_;
  std::filesystem::path path_;
  FileDescriptor fd_;
  bool created_ = false;
};

// Appends one record for `e`.
template <class Clock>
void append_record(std::vector<unsigned char>& out, const BasicDeviceEntry<Clock>& e,
                   const TimeAnchor<Clock>& anchor, const std::string& path_text) {
  const std::size_t ip_size = e.ip.bytes().size();
  const std::size_t body = state_body_fixed + ip_size + e.device_id.size();
  if (body > std::numeric_limits<std::uint32_t>::max()) {
    throw PersistenceError(fmt::format("devcache: cannot save \"{}\": the device id of {} is "
                                       "{} bytes long, more than a record can hold",
                                       path_text, e.mac, e.device_id.size()),
                           path_text);
  }
  const std::size_t start = out.size();
  out.insert(out.end(), state_record_tag.begin(), state_record_tag.end());
  put_le(out, static_cast<std::uint32_t>(body));
  const std::array<std::uint8_t, 6> mac = e.mac.to_bytes();
  out.insert(out.end(), mac.begin(), mac.end());
  put_le(out, static_cast<std::uint8_t>(e.ip.family()));
  put_le(out, e.port ? state_flag_port : std::uint8_t{0});
  put_le(out, e.port.value_or(std::uint16_t{0}));
  put_le(out, e.heartbeat_count);
  put_le(out, to_wall_ns(e.first_seen, anchor));
  put_le(out, to_wall_ns(e.last_seen, anchor));
  put_le(out, static_cast<std::uint32_t>(e.device_id.size()));
  const std::span<const std::uint8_t> ip = e.ip.bytes();
  out.insert(out.end(), ip.begin(), ip.end());
  out.insert(out.end(), e.device_id.begin(), e.device_id.end());
  put_le(out, state_crc(std::span<const unsigned char>(out).subspan(start)));
}

// The CRC-32 of byte ranges [a, b) of one buffer whose ends were all named up front, each in
// O(log n) after a single pass over the bytes.
//
// Why: after a bad record, skip_bad_records tries the record at every tag that follows, and each
// such record claims a length of its own; a crafted file makes every one of them claim to reach
// nearly to the end of the file, so reading each claimed range to check its CRC would take
// O(n^2) (a 1 MiB file: ~18 s). How: CRC-32 is linear, so for zlib's (conditioned) CRC and any
// bytes A before B, crc(B) = crc(AB) ^ crc32_combine(crc(A), 0, len(B)) (the test checks the
// identity). The pass records the running CRC from `base` at every named offset; the CRC of
// [a, b) is then running(b) ^ crc32_combine(running(a), 0, b - a), without reading its bytes.
class RangeCrc {
 public:
  // `offsets`: every offset a range will start or end at, each in [base, bytes.size()].
  RangeCrc(std::span<const unsigned char> bytes, std::size_t base, std::vector<std::size_t> offsets)
      : offsets_(std::move(offsets)) {
    std::sort(offsets_.begin(), offsets_.end());
    offsets_.erase(std::unique(offsets_.begin(), offsets_.end()), offsets_.end());
    crcs_.reserve(offsets_.size());
    uLong crc = 0;
    std::size_t at = base;
    for (const std::size_t offset : offsets_) {
      crc = crc32_z(crc, bytes.data() + at, offset - at);
      at = offset;
      crcs_.push_back(static_cast<std::uint32_t>(crc));
    }
    bytes_read_ = at - base;
  }

  // The CRC-32 of [a, b), or nothing if a or b was not named (or b - a does not fit z_off_t).
  [[nodiscard]] std::optional<std::uint32_t> crc(std::size_t a, std::size_t b) const {
    const auto ia = std::lower_bound(offsets_.begin(), offsets_.end(), a);
    const auto ib = std::lower_bound(offsets_.begin(), offsets_.end(), b);
    if (ia == offsets_.end() || *ia != a || ib == offsets_.end() || *ib != b ||
        b - a > static_cast<std::size_t>(std::numeric_limits<z_off_t>::max())) {
      return std::nullopt;
    }
    const uLong shifted = crc32_combine(crcs_[static_cast<std::size_t>(ia - offsets_.begin())], 0,
                                        static_cast<z_off_t>(b - a));
    return static_cast<std::uint32_t>(crcs_[static_cast<std::size_t>(ib - offsets_.begin())] ^
                                      shifted);
  }

  // The bytes the constructor ran the CRC over.
  [[nodiscard]] std::size_t bytes_read() const noexcept { return bytes_read_; }

 private:
  std::vector<std::size_t> offsets_;  // sorted, distinct
  std::vector<std::uint32_t> crcs_;   // crcs_[i]: the CRC of [base, offsets_[i])
  std::size_t bytes_read_ = 0;
};

// Parses a state file held in memory (see the file comment for what it checks).
template <class Clock>
class StateParser {
 public:
  StateParser(std::span<const unsigned char> file, const std::string& path_text,
              const LoadOptions& options, const TimeAnchor<Clock>& anchor)
      : file_(file), path_(path_text), options_(options), anchor_(anchor) {}

  LoadedEntries<Clock> parse() {
    LoadedEntries<Clock> out;
    parse_header(out);
    // Never trust the count for an allocation: a record takes at least state_min_record bytes.
    out.entries.reserve(static_cast<std::size_t>(
        std::min<std::uint64_t>(out.records, file_.size() / state_min_record)));
    std::unordered_set<MacAddress> seen;
    seen.reserve(out.entries.capacity());
    std::size_t pos = state_header_size;
    std::uint64_t found = 0;  // valid records read (strict: the index of the next)
    std::uint64_t bad = 0;    // bad records met and duplicates (skip_bad_records)
    while (found < out.records) {
      if (options_.skip_bad_records && pos == file_.size()) break;  // the rest is missing
      BasicDeviceEntry<Clock> entry;
      const std::optional<Problem> problem = parse_record(pos, found, entry);
      if (!problem) {
        ++found;
        if (seen.insert(entry.mac).second) {
          pos += record_size_;
          out.entries.push_back(std::move(entry));
          continue;
        }
        if (!options_.skip_bad_records) {
          fail(fmt::format("record {} of {}: MAC {} appears twice", found - 1, out.records,
                           entry.mac),
               pos, found - 1);
        }
        ++bad;
        out.skipped_bytes += record_size_;  // the duplicate is skipped whole
        pos += record_size_;
        continue;
      }
      if (!options_.skip_bad_records) {
        fail(fmt::format("record {} of {} at byte offset {}: {}", found, out.records,
                         problem->offset, problem->what),
             problem->offset, found);
      }
      ++bad;
      // From here on, trying a record at each tag must not read each one's claimed bytes anew.
      if (!ranges_) index_records_from(pos);
      const std::size_t bad_at = pos;
      pos = after_bad_record(pos, *problem, found);
      out.skipped_bytes += pos - bad_at;
    }
    if (pos != file_.size()) {
      if (!options_.skip_bad_records) {
        fail(fmt::format("{} unexpected bytes after the last of the {} records, from byte offset "
                         "{} (a corrupt record count, or data appended to the file)",
                         file_.size() - pos, out.records, pos),
             pos, std::nullopt);
      }
      out.skipped_bytes += file_.size() - pos;
    }
    out.skipped = std::max<std::uint64_t>(bad, out.records - out.entries.size());
    return out;
  }

  // The bytes this parser ran the CRC over: the header's, the records' checked one by one, and
  // RangeCrc's pass. What a test reads to see that skip_bad_records stays linear in the file size
  // on a crafted file, without timing it. Thread-safety: const. Throws: nothing.
  [[nodiscard]] std::uint64_t checksummed_bytes() const noexcept { return checksummed_bytes_; }

 private:
  struct Problem {
    std::size_t offset;  // where the bad field is
    std::string what;
    // Where the record claims to end, when its tag and size were readable and it fits in the file
    // (it failed its checksum or validation).
    std::optional<std::size_t> end = std::nullopt;
  };

  [[noreturn]] void fail(const std::string& what, std::optional<std::uint64_t> offset,
                         std::optional<std::uint64_t> record) const {
    throw PersistenceError(fmt::format(R"(devcache: cannot load "{}": {})", path_, what), path_, {},
                           PersistenceError::Location{offset, record});
  }

  void parse_header(LoadedEntries<Clock>& out) {
    const std::size_t size = file_.size();
    if (size == 0) fail("empty file (0 bytes): not a devcache state file", 0, std::nullopt);
    const std::size_t magic_bytes = std::min(size, state_magic.size());
    if (!std::equal(file_.begin(), file_.begin() + static_cast<std::ptrdiff_t>(magic_bytes),
                    state_magic.begin())) {
      fail(fmt::format("not a devcache state file (it starts with {:02x}, expected {:02x})",
                       fmt::join(file_.first(magic_bytes), " "), fmt::join(state_magic, " ")),
           0, std::nullopt);
    }
    if (size < state_header_size) {
      fail(fmt::format("truncated: the file is {} bytes long, the header alone takes {}", size,
                       state_header_size),
           size, std::nullopt);
    }
    const unsigned char* h = file_.data();
    const auto version = get_le<std::uint32_t>(h + 8);
    if (version != persistence_format_version) {
      fail(fmt::format("byte offset 8: format version {} is not supported (this build reads "
                       "version {}; or the header is corrupt)",
                       version, persistence_format_version),
           8, std::nullopt);
    }
    const auto stored = get_le<std::uint32_t>(h + 32);
    checksummed_bytes_ += 32;
    const std::uint32_t computed = state_crc(file_.first(32));
    if (stored != computed) {
      fail(fmt::format("byte offset 32: header checksum mismatch (stored {:#010x}, computed "
                       "{:#010x}): the header is corrupt",
                       stored, computed),
           32, std::nullopt);
    }
    const auto flags = get_le<std::uint32_t>(h + 12);
    if (flags != 0) {
      fail(fmt::format("byte offset 12: unknown header flags {:#x}", flags), 12, std::nullopt);
    }
    out.records = get_le<std::uint64_t>(h + 16);
    out.saved_at = wall_from_ns(get_le<std::int64_t>(h + 24));
  }

  // Parses the record at `pos` into `entry` and sets record_size_, or says what is wrong.
  std::optional<Problem> parse_record(std::size_t pos, std::uint64_t index,
                                      BasicDeviceEntry<Clock>& entry) {
    const std::size_t left = file_.size() - pos;
    const auto truncated = [&](std::size_t needed) {
      return Problem{file_.size(),
                     fmt::format("truncated: the record needs {} bytes, the file ends after {} "
                                 "(the file is {} bytes long, record {} starts at byte offset {})",
                                 needed, left, file_.size(), index, pos)};
    };
    if (left < state_record_prefix) return truncated(state_record_prefix);
    const unsigned char* r = file_.data() + pos;
    if (!std::equal(state_record_tag.begin(), state_record_tag.end(), r)) {
      return Problem{
          pos, fmt::format("bad record tag {:02x} (expected {:02x}): corrupt",
                           fmt::join(std::span(r, 4), " "), fmt::join(state_record_tag, " "))};
    }
    const auto body = get_le<std::uint32_t>(r + 4);
    if (body < state_body_fixed + 4) {
      return Problem{pos + 4, fmt::format("record size {} is too small: corrupt", body)};
    }
    const std::size_t total = state_record_prefix + std::size_t{body} + state_record_crc;
    if (left < total) return truncated(total);
    const std::size_t crc_at = state_record_prefix + body;
    const auto stored = get_le<std::uint32_t>(r + crc_at);
    const std::uint32_t computed = record_crc(pos, crc_at);
    if (stored != computed) {
      return Problem{pos + crc_at,
                     fmt::format("checksum mismatch (stored {:#010x}, computed {:#010x}): the "
                                 "record is corrupt",
                                 stored, computed),
                     pos + total};
    }
    // The checksum holds: what follows can only fail for a file this code did not write.
    const unsigned char* b = r + state_record_prefix;
    const std::uint8_t family = b[6];
    const std::uint8_t flags = b[7];
    const auto port = get_le<std::uint16_t>(b + 8);
    const auto id_size = get_le<std::uint32_t>(b + 34);
    const std::size_t ip_size = family == 4 ? 4 : 16;
    if (family != 4 && family != 6) {
      return Problem{pos + 14, fmt::format("IP family {} is neither 4 nor 6", family), pos + total};
    }
    if ((flags & ~state_flag_port) != 0 || ((flags & state_flag_port) == 0 && port != 0)) {
      return Problem{pos + 15, fmt::format("invalid flags {:#04x} with port {}", flags, port),
                     pos + total};
    }
    if (std::size_t{body} != state_body_fixed + ip_size + id_size) {
      return Problem{pos + 4,
                     fmt::format("record size {} does not match an IPv{} address and a "
                                 "{}-byte device id",
                                 body, family, id_size),
                     pos + total};
    }
    std::array<std::uint8_t, 6> mac{};
    std::copy(b, b + 6, mac.begin());
    entry.mac = MacAddress::from_bytes(mac);
    const unsigned char* ip = b + state_body_fixed;
    if (family == 4) {
      entry.ip = IpAddress::from_bytes(std::array<std::uint8_t, 4>{ip[0], ip[1], ip[2], ip[3]});
    } else {
      std::array<std::uint8_t, 16> v6{};
      std::copy(ip, ip + 16, v6.begin());
      entry.ip = IpAddress::from_bytes(v6);
    }
    entry.port = (flags & state_flag_port) != 0 ? std::optional<std::uint16_t>(port) : std::nullopt;
    entry.heartbeat_count = get_le<std::uint64_t>(b + 10);
    entry.first_seen = from_wall_ns(get_le<std::int64_t>(b + 18), anchor_);
    entry.last_seen = from_wall_ns(get_le<std::int64_t>(b + 26), anchor_);
    const auto* id = reinterpret_cast<const char*>(ip + ip_size);
    entry.device_id.assign(id, id_size);
    record_size_ = total;
    return std::nullopt;
  }

  // The CRC of the record at `pos`, whose CRC is at pos + crc_at: from ranges_ once a bad record
  // made index_records_from() build it, else read directly.
  std::uint32_t record_crc(std::size_t pos, std::size_t crc_at) {
    if (ranges_) {
      if (const std::optional<std::uint32_t> crc = ranges_->crc(pos, pos + crc_at)) return *crc;
    }
    checksummed_bytes_ += crc_at;
    return state_crc(file_.subspan(pos, crc_at));
  }

  // Builds ranges_ for every place from `from` on where parse_record would check a CRC: each tag
  // followed by a size that is large enough and fits in the file (the checks parse_record makes
  // before the CRC). O(file size + k log k) time and O(k) memory for k such tags.
  void index_records_from(std::size_t from) {
    std::vector<std::size_t> offsets;
    for (std::size_t pos = from; pos + state_record_prefix <= file_.size(); ++pos) {
      const unsigned char* r = file_.data() + pos;
      if (!std::equal(state_record_tag.begin(), state_record_tag.end(), r)) continue;
      const auto body = get_le<std::uint32_t>(r + 4);
      const std::size_t crc_at = state_record_prefix + std::size_t{body};
      if (body < state_body_fixed + 4 || file_.size() - pos < crc_at + state_record_crc) continue;
      offsets.push_back(pos);
      offsets.push_back(pos + crc_at);
    }
    ranges_.emplace(file_, from, std::move(offsets));
    checksummed_bytes_ += ranges_->bytes_read();
  }

  // Where to read on after the bad record at `pos`: its claimed end, when the record has one and
  // it agrees with what follows (the end of the file, or a record that parses starts there), so
  // that nothing inside the bad record is taken for a record; else the next record after `pos`
  // that parses, or the end of the file (see LoadOptions::skip_bad_records).
  //
  // A claimed end that agrees can still be wrong: a damaged size field (or bytes lost inside the
  // record) can land it on a later record's start, past intact records. So the bad record's
  // extent is searched too: if valid records start inside it and follow one another exactly up
  // to the claimed end, they are records, not bytes of the bad one, and reading goes on at the
  // first of them. (A record embedded in a device id is followed by the rest of the id and the bad
  // record's own checksum: a chain from it reaches the claimed end only by a 1-in-2^32 coincidence
  // of checksums, or by forgery.) Both searches stay within the extent, so this is O(extent).
  std::size_t after_bad_record(std::size_t pos, const Problem& problem, std::uint64_t index) {
    if (problem.end) {
      const std::size_t end = *problem.end;
      BasicDeviceEntry<Clock> scratch;
      if (end == file_.size() || !parse_record(end, index, scratch)) {
        const std::size_t first = resync(pos + 1, index, end);
        return first < end && chain_reaches(first, end, index) ? first : end;
      }
    }
    return resync(pos + 1, index, file_.size());
  }

  // Whether records that parse follow one another from `from` up to exactly `end`.
  bool chain_reaches(std::size_t from, std::size_t end, std::uint64_t index) {
    BasicDeviceEntry<Clock> scratch;
    std::size_t pos = from;
    while (pos < end && !parse_record(pos, index, scratch)) pos += record_size_;
    return pos == end;
  }

  // The offset of the first record that starts in [from, limit) and parses (the caller then reads
  // it), or `limit` if none does. Each record tried costs O(log n) with ranges_, not its claimed
  // size; the ranges scanned after successive bad records do not overlap (each ends where the
  // caller reads on), so all scanning takes O(file size).
  std::size_t resync(std::size_t from, std::uint64_t index, std::size_t limit) {
    BasicDeviceEntry<Clock> scratch;
    for (std::size_t pos = from; pos < limit && pos + state_min_record <= file_.size(); ++pos) {
      const unsigned char* r = file_.data() + pos;
      if (!std::equal(state_record_tag.begin(), state_record_tag.end(), r)) continue;
      if (!parse_record(pos, index, scratch)) return pos;
    }
    return limit;
  }

  std::span<const unsigned char> file_;
  const std::string& path_;
  const LoadOptions& options_;
  const TimeAnchor<Clock>& anchor_;
  std::size_t record_size_ = 0;     // the size of the record parse_record last accepted
  std::optional<RangeCrc> ranges_;  // built at the first bad record (skip_bad_records)
  std::uint64_t checksummed_bytes_ = 0;
};

}  // namespace detail

/// Writes `entries` to the file `path` atomically and durably (see the file comment), their times
/// converted to wall-clock time with `anchor`. MACs should be distinct (load rejects a file that
/// has one twice). If `path` is a symbolic link, the rename replaces the link itself with a
/// regular file, and the file it pointed to keeps its contents. Returns what it wrote.
/// Thread-safety: touches only its arguments and the file system; concurrent saves to one path
/// are safe (each writes its own temporary file; the last rename wins).
/// Complexity: O(entries.size() + total device id size); writes in 1 MiB chunks.
/// Throws: PersistenceError naming `path`, the call that failed and strerror (the target is then
/// unchanged and the temporary file removed, except when only the final directory fsync fails:
/// the message then says the file was saved); std::bad_alloc.
template <class Clock>
SaveReport save_entries(const std::vector<BasicDeviceEntry<Clock>>& entries,
                        const std::filesystem::path& path,
                        const TimeAnchor<Clock>& anchor = TimeAnchor<Clock>::now()) {
  constexpr std::size_t chunk = std::size_t{1} << 20U;
  const std::string path_text = path.string();
  SaveReport report{entries.size(), 0, anchor.wall};
  detail::TempFile temp(path, path_text);
  std::vector<unsigned char> buffer;
  buffer.reserve(chunk + 256);
  buffer.insert(buffer.end(), detail::state_magic.begin(), detail::state_magic.end());
  detail::put_le(buffer, persistence_format_version);
  detail::put_le(buffer, std::uint32_t{0});
  detail::put_le(buffer, static_cast<std::uint64_t>(entries.size()));
  detail::put_le(buffer, detail::to_ns(anchor.wall.time_since_epoch()));
  detail::put_le(buffer, detail::state_crc(buffer));
  for (const BasicDeviceEntry<Clock>& e : entries) {
    detail::append_record(buffer, e, anchor, path_text);
    if (buffer.size() >= chunk) {
      temp.write(buffer);
      report.bytes += buffer.size();
      buffer.clear();
    }
  }
  temp.write(buffer);
  report.bytes += buffer.size();
  temp.commit();
  return report;
}

/// Saves a consistent snapshot of `cache` (get_cache_snapshot()) to `path`, atomically and
/// durably (see the file comment). Returns what it wrote.
/// Thread-safety: safe while other threads use the cache: locks all shards shared for the copy
/// (writers wait for it; O(size + capacity)), and writes the file after releasing them.
/// Complexity: O(size log size) for the sorted snapshot, plus the writing.
/// Throws: as save_entries; std::bad_alloc.
template <template <class...> class Map, class Clock>
SaveReport save(const DeviceCache<Map, Clock>& cache, const std::filesystem::path& path) {
  const std::vector<BasicDeviceEntry<Clock>> entries = cache.get_cache_snapshot();
  return save_entries(entries, path, TimeAnchor<Clock>::now());
}

/// Reads and validates the state file `path` without touching any cache: every entry, its times
/// converted to Clock with `anchor` (see the file comment).
/// Thread-safety: touches only its arguments and the file.
/// Complexity: O(file size); with skip_bad_records, after a bad record, O(log n) more for each
/// record tag that follows it (see detail::RangeCrc), whatever the file holds.
/// Throws: PersistenceError naming `path`: with code() set if the file cannot be read (missing:
/// std::errc::no_such_file_or_directory) or is not a regular file (a directory:
/// std::errc::is_a_directory; a device, FIFO or socket: std::errc::invalid_argument), or with
/// offset() (and record()) if it is empty, foreign, of another version, truncated or corrupt (with
/// skip_bad_records, only if its header is); std::bad_alloc.
template <class Clock>
LoadedEntries<Clock> load_entries(const std::filesystem::path& path,
                                  const LoadOptions& options = {},
                                  const TimeAnchor<Clock>& anchor = TimeAnchor<Clock>::now()) {
  const std::string path_text = path.string();
  const auto io_error = [&](std::string_view what, int error) {
    return PersistenceError(fmt::format(R"(devcache: cannot load "{}": {}: {})", path_text, what,
                                        detail::errno_text(error)),
                            path_text, std::error_code(error, std::generic_category()));
  };
  // Only a regular file: reading /dev/zero never ends (until std::bad_alloc), and opening a
  // FIFO waits for a writer, perhaps forever. So the path is checked before it is opened, and
  // what was opened is checked again (fstat: it may have been replaced in between). A plain
  // blocking open, not O_NONBLOCK: on a regular file under a lease (Samba oplocks, NFS
  // delegations) that fails with EAGAIN where a blocking open waits for the lease to be released.
  // Left: a path replaced by a FIFO between the two checks still blocks the open.
  const auto refuse_unless_regular = [&](const struct stat& info) {
    if (S_ISREG(info.st_mode)) return;
    const int error = S_ISDIR(info.st_mode) ? EISDIR : EINVAL;
    throw PersistenceError(
        fmt::format(R"(devcache: cannot load "{}": it is {}, not a regular file)", path_text,
                    detail::file_type_name(info.st_mode)),
        path_text, std::error_code(error, std::generic_category()));
  };
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw io_error("cannot open it", errno);
  refuse_unless_regular(info);
  // O_NOCTTY: were it replaced by a terminal, that must not become ours.
  const detail::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) throw io_error("cannot open it", errno);
  if (::fstat(fd.get(), &info) != 0) throw io_error("cannot stat it", errno);
  refuse_unless_regular(info);
  std::vector<unsigned char> file(static_cast<std::size_t>(info.st_size));
  std::size_t size = 0;
  for (;;) {
    if (size == file.size()) file.resize(size + 4096);  // the file may have grown
    const ssize_t n = ::read(fd.get(), file.data() + size, file.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot read it", errno);
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  file.resize(size);
  return detail::StateParser<Clock>(file, path_text, options, anchor).parse();
}

/// Loads the state file `path` into `cache`. The whole file is read and validated first (see
/// load_entries); only then are its entries stored, with restore_device_entry, most recently seen
/// first: an entry with a cached MAC replaces the cached one, other cached devices are kept, and
/// entries that do not fit under the capacity are refused (never evicting) and counted. Stats
/// count them as updates, adds and refused adds.
/// Thread-safety: safe while other threads use the cache, but not atomic with respect to them:
/// each entry is stored atomically (one shard exclusive), so a concurrent reader can see some of
/// the file's entries and not yet others.
/// Complexity: O(file size + n log n) for n entries (with skip_bad_records, see load_entries).
/// Throws: as load_entries, and then the cache is unchanged; std::bad_alloc (possibly after some
/// entries were stored).
template <template <class...> class Map, class Clock>
LoadReport load(DeviceCache<Map, Clock>& cache, const std::filesystem::path& path,
                const LoadOptions& options = {}) {
  LoadedEntries<Clock> loaded = load_entries<Clock>(path, options, TimeAnchor<Clock>::now());
  std::sort(loaded.entries.begin(), loaded.entries.end(),
            [](const BasicDeviceEntry<Clock>& a, const BasicDeviceEntry<Clock>& b) {
              return a.last_seen > b.last_seen;
            });
  LoadReport report;
  report.saved_at = loaded.saved_at;
  report.records = loaded.records;
  report.skipped = loaded.skipped;
  report.skipped_bytes = loaded.skipped_bytes;
  for (BasicDeviceEntry<Clock>& e : loaded.entries) {
    switch (cache.restore_device_entry(std::move(e))) {
      case RestoreOutcome::inserted:
        ++report.inserted;
        break;
      case RestoreOutcome::replaced:
        ++report.replaced;
        break;
      case RestoreOutcome::refused_full:
        ++report.refused_full;
        break;
    }
  }
  return report;
}

}  // namespace devcache
