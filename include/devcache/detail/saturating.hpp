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
#include <ratio>
#include <type_traits>

namespace devcache::detail {

__extension__ using int128 = __int128;  // GCC and Clang both provide it

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

/// `ticks` ticks of `Period` in nanoseconds, clamped to the int64 range (rounded toward zero for
/// a unit finer than a nanosecond). Throws: nothing.
template <class Period>
std::int64_t ticks_to_ns(int128 ticks) noexcept {
  using ratio = std::ratio_divide<Period, std::nano>;  // nanoseconds per tick, reduced
  // |ticks| < 2^65 (a difference of two int64 counts), so the product fits in 128 bits for any
  // tick up to a century.
  static_assert(ratio::num <= 3'200'000'000'000'000'000, "devcache: a clock tick over a century");
  const int128 ns = ticks * ratio::num / ratio::den;
  constexpr auto lowest = static_cast<int128>(std::numeric_limits<std::int64_t>::min());
  constexpr auto highest = static_cast<int128>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(ns < lowest ? lowest : ns > highest ? highest : ns);
}

/// d in nanoseconds, clamped to the int64 range: a clock that counts microseconds (or anything
/// coarser) has time_points that nanoseconds cannot hold, and duration_cast would overflow on
/// them. Throws: nothing.
template <class Rep, class Period>
std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
  static_assert(std::is_integral_v<Rep>, "devcache: times must have an integral count");
  return ticks_to_ns<Period>(d.count());
}

/// How long before `now` the time `then` was, in nanoseconds, saturated: INT64_MAX for a `then`
/// too far in the past to count, negative for a `then` after `now`. The difference is taken in
/// the clock's own ticks first, so times at the ends of a coarser clock's range compare right.
/// Throws: nothing.
template <class TimePoint>
std::int64_t age_ns(TimePoint now, TimePoint then) noexcept {
  using Duration = typename TimePoint::duration;
  static_assert(std::is_integral_v<typename Duration::rep>,
                "devcache: times must have an integral count");
  return ticks_to_ns<typename Duration::period>(
      static_cast<int128>(now.time_since_epoch().count()) -
      static_cast<int128>(then.time_since_epoch().count()));
}

}  // namespace devcache::detail
