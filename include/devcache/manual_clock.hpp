// devcache/manual_clock.hpp — ManualClock, a clock that moves only when a test moves it.
//
// DeviceCache takes its clock as a template parameter and reads time from nowhere else, so a
// test can drive aging, "seen within the last N seconds" and least-recently-seen eviction exactly,
// without sleeping:
//
//   using Cache = devcache::DeviceCache<devcache::ShardedMap, devcache::ManualClock>;
//   devcache::ManualClock::reset();
//   Cache cache;
//   cache.add_device_entry("cam-1", mac, ip, 554);
//   devcache::ManualClock::advance(std::chrono::seconds(301));
//   auto expired = cache.sweep_all_expired();  // cam-1
//
// It is useful to users' tests too, which is why it lives in the library and not under tests/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ratio>

namespace devcache {

/// A clock meeting the Cpp17Clock requirements (std::chrono::is_clock_v is true) whose now() reads
/// a process-wide atomic tick count that only reset(), set() and advance() change.
///
/// Thread-safety: every member is static and safe to call from any thread at once (one atomic
/// load or store each). The time is global to the process: tests that use ManualClock must not run
/// in parallel in the same process (Catch2 runs test cases one after another, which is fine), and
/// each test should start with reset() so that it does not depend on what earlier tests did.
///
/// is_steady is false because set() may move time backwards.
struct ManualClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<ManualClock>;
  static constexpr bool is_steady = false;

  /// The current time: the epoch plus the ticks set so far. Throws: nothing.
  static time_point now() noexcept { return time_point(duration(ticks().load())); }

  /// Moves time forward by `d` (backward if `d` is negative). Throws: nothing.
  static void advance(duration d) noexcept { ticks().fetch_add(d.count()); }

  /// Sets the time to `t`. Throws: nothing.
  static void set(time_point t) noexcept { ticks().store(t.time_since_epoch().count()); }

  /// Sets the time back to the epoch, time_point{}. Throws: nothing.
  static void reset() noexcept { ticks().store(0); }

 private:
  static std::atomic<rep>& ticks() noexcept {
    static std::atomic<rep> value{0};
    return value;
  }
};

static_assert(std::chrono::is_clock_v<ManualClock>);

}  // namespace devcache
