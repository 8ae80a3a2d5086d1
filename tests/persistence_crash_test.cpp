// tests/persistence_crash_test.cpp — devcache::save_entries survives SIGKILL at any moment.
//
// A forked child saves snapshot after snapshot to one file, in a loop, while this process kills
// it with SIGKILL at a random moment — before, during or after a save's write, fsync, rename or
// directory fsync. After every kill the file must load (every checksum holds) and hold exactly one
// of the snapshots written: snapshot k is a pure function of k (its size, every device's id, MAC,
// IP, port, heartbeat count and times), the devices' ids name k, so the file says which snapshot
// it claims to be and the test rebuilds that snapshot to compare. k never goes backwards: a save
// may be lost to a kill, never undone. Temporary files left by saves killed midway are counted
// (evidence that kills land inside saves) and removed.
//
//   persistence_crash_test [KILLS] [SEED]     (defaults: 150 kills, a random seed)
//
// This checks atomicity against a crash of the process; that the fsyncs make it survive a power
// loss too cannot be checked without pulling the plug.
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <devcache/device_entry.hpp>
#include <devcache/errors.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/persistence.hpp>

namespace {

namespace fs = std::filesystem;
using devcache::ManualClock;
using Entry = devcache::BasicDeviceEntry<ManualClock>;
using Anchor = devcache::TimeAnchor<ManualClock>;
using namespace std::chrono_literals;

// Child k ranges are disjoint: child i writes snapshots i * k_stride + 1, + 2, ...
constexpr std::uint64_t k_stride = 1'000'000;
constexpr auto child_time_limit = 30s;  // a child nobody kills stops by itself
constexpr auto max_kill_delay = 30ms;

const Anchor anchor{std::chrono::system_clock::time_point(1'700'000'000s),
                    ManualClock::time_point(0s)};

// Snapshot k: 1 to 3000 devices, every field a function of k and the device's index.
std::vector<Entry> snapshot(std::uint64_t k) {
  const std::uint64_t n = 1 + (k * 7919) % 3000;
  std::vector<Entry> entries;
  entries.reserve(n);
  for (std::uint64_t j = 0; j < n; ++j) {
    Entry e;
    e.device_id = fmt::format("k{}-d{}", k, j);
    e.mac = devcache::MacAddress::from_u64(((k & 0xff'ffffU) << 24U) | j);
    if (j % 2 == 0) {
      e.ip = devcache::IpAddress::from_v4(static_cast<std::uint32_t>(k * 131 + j));
    } else {
      std::array<std::uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8};
      for (std::size_t i = 0; i < 8; ++i) bytes[8 + i] = static_cast<std::uint8_t>((k + j) >> i);
      e.ip = devcache::IpAddress::from_bytes(bytes);
    }
    if ((k + j) % 5 != 0) e.port = static_cast<std::uint16_t>((k + j) % 65536);
    e.heartbeat_count = k * j;
    e.first_seen = ManualClock::time_point(std::chrono::seconds(k) + std::chrono::milliseconds(j));
    e.last_seen = e.first_seen + std::chrono::nanoseconds(j);
    entries.push_back(std::move(e));
  }
  return entries;
}

// The k a loaded snapshot claims to be, from its first device's id "k<k>-d0".
std::optional<std::uint64_t> claimed_k(const std::vector<Entry>& entries) {
  if (entries.empty()) return std::nullopt;
  const std::string& id = entries.front().device_id;
  const std::size_t dash = id.find('-');
  if (id.size() < 2 || id[0] != 'k' || dash == std::string::npos) return std::nullopt;
  return std::stoull(id.substr(1, dash - 1));
}

[[noreturn]] void run_child(const fs::path& path, std::uint64_t first_k, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(4);  // the parent died before prctl
  const auto deadline = std::chrono::steady_clock::now() + child_time_limit;
  try {
    for (std::uint64_t k = first_k; std::chrono::steady_clock::now() < deadline; ++k) {
      devcache::save_entries(snapshot(k), path, anchor);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child: %s\n", e.what());
    ::_exit(2);
  }
  ::_exit(3);
}

struct Failure {
  std::string what;
};

}  // namespace

int main(int argc, char** argv) try {
  const int kills = argc > 1 ? std::stoi(argv[1]) : 150;
  const std::uint64_t seed = argc > 2 ? std::stoull(argv[2]) : std::random_device{}();
  fmt::print("persistence_crash_test: {} kills, seed {}\n", kills, seed);
  std::mt19937_64 random(seed);

  std::string dir_name = (fs::temp_directory_path() / "devcache-crash-XXXXXX").string();
  if (::mkdtemp(dir_name.data()) == nullptr) throw Failure{"mkdtemp failed"};
  const fs::path dir = dir_name;
  const fs::path path = dir / "state";
  struct Cleanup {
    explicit Cleanup(fs::path d) : dir(std::move(d)) {}
    Cleanup(const Cleanup&) = delete;
    Cleanup& operator=(const Cleanup&) = delete;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
    fs::path dir;
  } cleanup{dir};

  const auto start = std::chrono::steady_clock::now();
  std::optional<std::uint64_t> last_k;
  int missing = 0;
  int unchanged = 0;
  int temporaries = 0;
  for (int i = 0; i < kills; ++i) {
    const std::uint64_t first_k = (static_cast<std::uint64_t>(i) + 1) * k_stride + 1;
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) throw Failure{"fork failed"};
    if (child == 0) run_child(path, first_k, parent);

    const auto delay = std::chrono::microseconds(std::uniform_int_distribution<std::int64_t>(
        0, std::chrono::microseconds(max_kill_delay).count())(random));
    std::this_thread::sleep_for(delay);
    ::kill(child, SIGKILL);
    int status = 0;
    if (::waitpid(child, &status, 0) != child) throw Failure{"waitpid failed"};
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
      throw Failure{
          fmt::format("kill {}: the child was not killed but ended with status {:#x}", i, status)};
    }

    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path() == path) continue;
      ++temporaries;  // a save killed before its rename
      fs::remove(entry.path());
    }
    if (!fs::exists(path)) {
      if (last_k) throw Failure{fmt::format("kill {}: the file disappeared", i)};
      ++missing;  // killed before the first save completed
      continue;
    }
    // Must load: a torn or mixed file fails a checksum or the record count.
    const auto loaded = devcache::load_entries<ManualClock>(path, {}, anchor);
    const std::optional<std::uint64_t> k = claimed_k(loaded.entries);
    if (!k) throw Failure{fmt::format("kill {}: the file holds no snapshot", i)};
    if (*k / k_stride == 0 || *k / k_stride > static_cast<std::uint64_t>(i) + 1) {
      throw Failure{fmt::format("kill {}: snapshot {} was never written", i, *k)};
    }
    if (last_k && *k < *last_k) {
      throw Failure{fmt::format("kill {}: snapshot {} replaced the later {}", i, *k, *last_k)};
    }
    if (loaded.entries != snapshot(*k)) {
      throw Failure{fmt::format("kill {}: the file claims snapshot {} but differs from it", i, *k)};
    }
    if (last_k == k) ++unchanged;
    last_k = k;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(
      "persistence_crash_test: {} kills in {:.1f} s; after each the file loaded and was a "
      "snapshot written ({} before the first save completed, {} with no newer snapshot); {} "
      "kills landed inside a save (its temporary file was left); last snapshot {}\n",
      kills, elapsed, missing, unchanged, temporaries, last_k.value_or(0));
  if (kills >= 100 && temporaries == 0) {
    throw Failure{"no kill landed inside a save: the test did not test anything"};
  }
  fmt::print("persistence_crash_test: passed\n");
  return 0;
} catch (const Failure& f) {
  fmt::print(stderr, "persistence_crash_test: FAILED: {}\n", f.what);
  return 1;
} catch (const std::exception& e) {
  fmt::print(stderr, "persistence_crash_test: FAILED: {}\n", e.what());
  return 1;
}
