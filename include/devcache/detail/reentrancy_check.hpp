// devcache/detail/reentrancy_check.hpp — catches a callback that calls back into its own map.
//
// A visit/upsert/erase_if callback runs while its shard is locked. If it calls into the same map it
// deadlocks (same shard) or risks a lock-order deadlock with another thread (other shard). In debug
// builds (NDEBUG not defined, or DEVCACHE_REENTRANCY_CHECK=1) every public map operation checks a
// thread-local list of the maps whose callbacks are running on this thread, and aborts with a
// message naming the operation instead of hanging. In release builds the check compiles to nothing.
//
// The two versions of CallbackScope differ in size and behaviour, so each lives in an inline
// namespace of its own: a program that links files built with and without NDEBUG then has two
// classes with different names, not one name with two layouts (an ODR violation that let a
// release file's 1-byte object be built by the debug constructor, which writes 16 bytes: a stack
// overflow). In such a program a map operation checks or not depending on which file's copy of it
// the linker kept; tests/reentrancy_mixed_*.cpp.
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef DEVCACHE_REENTRANCY_CHECK
#ifdef NDEBUG
#define DEVCACHE_REENTRANCY_CHECK 0
#else
#define DEVCACHE_REENTRANCY_CHECK 1
#endif
#endif

namespace devcache::detail {

#if DEVCACHE_REENTRANCY_CHECK

inline namespace reentrancy_checked {

[[noreturn]] inline void reentrancy_violation(const char* map_type,
                                              const char* operation) noexcept {
  std::fprintf(
      stderr,
      "devcache: re-entrant call: %s::%s was called from inside a callback of the same map "
      "(the callback runs under a shard lock; calling back into the map would deadlock)\n",
      map_type, operation);
  std::abort();
}

/// Marks, for its lifetime, that a callback of map `owner` is running on this thread.
class CallbackScope {
 public:
  explicit CallbackScope(const void* owner) noexcept : owner_(owner), prev_(top()) { top() = this; }
  ~CallbackScope() { top() = prev_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;

  /// Aborts if a callback of `owner` is running on this thread.
  static void check(const void* owner, const char* map_type, const char* operation) noexcept {
    for (const CallbackScope* s = top(); s != nullptr; s = s->prev_) {
      if (s->owner_ == owner) reentrancy_violation(map_type, operation);
    }
  }

 private:
  static const CallbackScope*& top() noexcept {
    thread_local const CallbackScope* innermost = nullptr;
    return innermost;
  }

  const void* owner_;
  const CallbackScope* prev_;
};

}  // namespace reentrancy_checked

#else

inline namespace reentrancy_unchecked {

class CallbackScope {
 public:
  explicit CallbackScope(const void* /*owner*/) noexcept {}
  static void check(const void* /*owner*/, const char* /*map_type*/,
                    const char* /*operation*/) noexcept {}
};

}  // namespace reentrancy_unchecked

#endif

}  // namespace devcache::detail
