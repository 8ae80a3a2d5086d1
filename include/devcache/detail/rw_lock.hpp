// devcache/detail/rw_lock.hpp — the reader-writer lock that guards one shard.
//
// Why not std::shared_mutex: pthread_rwlock is an out-of-line call with more state than a shard
// needs, and its fast path cannot be inlined into the map's operations. This lock is one 32-bit
// word:
//
//   bit 31  writer        a writer holds the lock
//   bit 30  writer_wait   a writer is waiting; new readers stand back so writers are not starved
//   bit 29  sleepers      at least one thread is (about to be) asleep in a futex wait on the word
//   0..28   readers       number of readers holding the lock
//
// Uncontended, lock_shared is one fetch_add, lock one compare-and-swap, and each unlock one
// atomic RMW. Under contention a thread spins briefly (the holder usually finishes within a few
// hundred cycles), then sleeps with std::atomic::wait (a futex on Linux). It never spins without
// bound, so a thread that is preempted while holding the lock (8 or 16 threads on 2 cores) costs
// the waiters a sleep, not a core. Unlock only issues a wake-up syscall when the sleepers bit says
// somebody sleeps.
//
// All synchronisation goes through std::atomic, so ThreadSanitizer understands it.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace devcache::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class RwLock {
 public:
  RwLock() noexcept = default;
  ~RwLock() = default;
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;
  RwLock(RwLock&&) = delete;
  RwLock& operator=(RwLock&&) = delete;

  void lock_shared() noexcept {
    // One fetch_add, not a load and a compare-and-swap: when another core last wrote the word,
    // the load would fetch its cache line shared and the CAS fetch it again, exclusive.
    const std::uint32_t prev = state_.fetch_add(1, std::memory_order_acquire);
    if ((prev & (writer | writer_wait)) == 0) [[likely]] {
      return;
    }
    // A writer holds the lock or waits for it: back out (waking it if it sleeps waiting for the
    // readers to drain and ours was the last count) and wait in the slow path.
    unlock_shared();
    lock_shared_slow();
  }

  void unlock_shared() noexcept {
    const std::uint32_t prev = state_.fetch_sub(1, std::memory_order_release);
    // The last reader out wakes whoever sleeps (a writer waiting for the readers to drain).
    if ((prev & readers) == 1 && (prev & sleepers) != 0) wake_all();
  }

  void lock() noexcept {
    std::uint32_t expected = 0;
    if (state_.compare_exchange_weak(expected, writer, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }

  void unlock() noexcept {
    // Subtracting the writer bit we hold clears it; unlike fetch_and (whose result we need), a
    // fetch_sub compiles to one lock xadd, not a compare-and-swap loop.
    const std::uint32_t prev = state_.fetch_sub(writer, std::memory_order_release);
    if ((prev & sleepers) != 0) wake_all();
  }

 private:
  static constexpr std::uint32_t writer = 1U << 31;
  static constexpr std::uint32_t writer_wait = 1U << 30;
  static constexpr std::uint32_t sleepers = 1U << 29;
  static constexpr std::uint32_t readers = sleepers - 1;
  static constexpr int spin_limit = 64;

  void wake_all() noexcept {
    state_.fetch_and(~sleepers, std::memory_order_relaxed);
    state_.notify_all();
  }

  // Marks the word as having a sleeper, then sleeps until it changes. Returns at once if the word
  // changed in between (the caller re-examines it either way).
  void sleep_on(std::uint32_t s) noexcept {
    if ((s & sleepers) == 0) {
      if (!state_.compare_exchange_strong(s, s | sleepers, std::memory_order_relaxed)) return;
      s |= sleepers;
    }
    state_.wait(s, std::memory_order_relaxed);
  }

  void lock_shared_slow() noexcept {
    for (int spins = 0;; ++spins) {
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      if ((s & (writer | writer_wait)) == 0) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      if (spins < spin_limit) {
        cpu_relax();
      } else {
        sleep_on(s);
      }
    }
  }

  void lock_slow() noexcept {
    for (int spins = 0;; ++spins) {
      std::uint32_t s = state_.load(std::memory_order_relaxed);
      if ((s & (writer | readers)) == 0) {
        // Free: take it, clearing writer_wait (other waiting writers set it again) but keeping the
        // sleepers bit so our unlock wakes them.
        if (state_.compare_exchange_weak(s, (s & sleepers) | writer, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      if ((s & writer_wait) == 0) {
        state_.compare_exchange_weak(s, s | writer_wait, std::memory_order_relaxed);
        continue;
      }
      if (spins < spin_limit) {
        cpu_relax();
      } else {
        sleep_on(s);
      }
    }
  }

  std::atomic<std::uint32_t> state_{0};
};

// RAII guards (std::shared_lock/std::unique_lock would do, but these are smaller and cannot be
// moved out of the scope that holds them).
class SharedGuard {
 public:
  explicit SharedGuard(RwLock& lock) noexcept : lock_(lock) { lock_.lock_shared(); }
  ~SharedGuard() { lock_.unlock_shared(); }
  SharedGuard(const SharedGuard&) = delete;
  SharedGuard& operator=(const SharedGuard&) = delete;

 private:
  RwLock& lock_;
};

class ExclusiveGuard {
 public:
  explicit ExclusiveGuard(RwLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~ExclusiveGuard() { lock_.unlock(); }
  ExclusiveGuard(const ExclusiveGuard&) = delete;
  ExclusiveGuard& operator=(const ExclusiveGuard&) = delete;

 private:
  RwLock& lock_;
};

}  // namespace devcache::detail
