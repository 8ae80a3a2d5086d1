// devcache/detail/saturating.hpp — 64-bit time arithmetic that saturates instead of overflowing.
//
// Times come from users and from files (an update's last_seen, a restored entry, a corrupt or
// hostile state file), so any time_point, time_point::min() and max() included, must be handled:
// a plain `now - last_seen` is signed overflow (undefined behaviour) for such values. These clamp
// to the int64 range instead, which keeps every comparison the right way round.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace devcache::detail {

/// a + b, clamped to [INT64_MIN, INT64_MAX]. Throws: nothing.
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return sum;
}

/// a - b, clamped to [INT64_MIN, INT64_MAX]. Throws: nothing.
inline std::int64_t saturating_sub(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t difference = 0;
  if (__builtin_sub_overflow(a, b, &difference)) {
    return b < 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return difference;
}

/// d in nanoseconds, for durations whose range fits (the clocks devcache uses count nanoseconds).
/// Throws: nothing.
template <class Duration>
std::int64_t to_ns(Duration d) noexcept {
  return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

/// How long before `now` the time `then` was, in nanoseconds, saturated: INT64_MAX for a `then`
/// too far in the past to count, negative for a `then` after `now`. Throws: nothing.
template <class TimePoint>
std::int64_t age_ns(TimePoint now, TimePoint then) noexcept {
  return saturating_sub(to_ns(now.time_since_epoch()), to_ns(then.time_since_epoch()));
}

}  // namespace devcache::detail
