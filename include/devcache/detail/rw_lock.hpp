// devcache/detail/rw_lock.hpp — the reader-writer lock that guards one shard.
//
// Why not std::shared_mutex: pthread_rwlock is an out-of-line call with more state than a shard
// needs, and its fast path cannot be inlined into the map's operations. This lock is one 32-bit
// word:
//
//   bit 31  writer        a writer holds the lock
//   bit 30  writer_wait   a writer waits for the readers to drain; new readers stand back so
//                         writers are not starved
//   bit 29  sleepers      at least one thread is (about to be) asleep in a futex wait on the word
//   0..28   readers       number of readers holding the lock
//
// Uncontended, lock() and lock_shared() are one compare-and-swap each, unlock_shared() one atomic
// RMW, and unlock() a load and a plain release store. While the writer bit is set, only the
// sleepers bit can change (set by a thread about to sleep, cleared by a waker): readers and writers
// compare-and-swap the word only from states without the writer bit, and writer_wait is only set
// while readers hold the lock. So a release that finds the word equal to `writer` can store 0
// without an RMW. That is the point: an RMW waits until every store before it (the entry the
// writer just changed, whose cache line may still be on the other core) has left the store
// buffer; a plain store does not, so the next operation overlaps that wait. A lock + unlock pair
// costs one atomic RMW instead of two (single thread: 5.9 ns instead of 11.2; on 2 cores, writes
// ran 2-10% faster at 2 threads and 6-10% at 8 in a same-process A/B; README.md, Benchmarks).
//
// Under contention a thread spins briefly (the holder usually finishes within a few hundred
// cycles), then yields its core for a while (8 threads on 2 cores: the holder may be waiting for
// one), then sleeps on the word (a futex on Linux) after setting the sleepers bit. It never spins
// without bound, so a thread preempted while holding the lock costs the waiters a sleep, not a
// core. A release only issues a wake-up syscall when the sleepers bit says somebody sleeps.
//
// The price of the plain store: a thread can set the sleepers bit between the release's load and
// its store, which then erases the bit, and fall asleep before the store reaches it, with nobody
// left to wake it. Every sleep therefore has a timeout (wait_timeout_ns: 1 ms), after which the
// sleeper looks at the word again. The window is a few nanoseconds wide and only reachable by a
// thread that already spun and yielded; a lost wake-up costs that thread at most one timeout,
// never correctness. Mutual exclusion rests only on the compare-and-swaps and the release store.
//
// All synchronisation goes through std::atomic, so ThreadSanitizer understands it (the futex call
// only blocks; the word carries every happens-before edge). tests/concurrency/rw_lock_test.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

/// Sleeps while `word` holds `expected`, for at most `timeout_ns` nanoseconds. May return early
/// (a wake-up, a signal, a spurious return): callers re-examine the word either way.
inline void wait_on(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                    long timeout_ns) noexcept {
#if defined(__linux__)
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                std::atomic<std::uint32_t>::is_always_lock_free);
  const timespec timeout{0, timeout_ns};
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,cppcoreguidelines-pro-type-vararg)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
          &timeout, nullptr, 0);
#else
  (void)word;
  (void)expected;
  std::this_thread::sleep_for(std::chrono::nanoseconds(timeout_ns / 16));
#endif
}

/// Wakes every thread sleeping in wait_on(word, ...).
inline void wake_all_on(std::atomic<std::uint32_t>& word) noexcept {
#if defined(__linux__)
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,cppcoreguidelines-pro-type-vararg)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
#else
  (void)word;
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
    // Guess the common state (free) so that one compare-and-swap takes the lock: a load first would
    // fetch the cache line shared and the CAS fetch it again, exclusive, when another core last
    // wrote it.
    std::uint32_t s = 0;
    if (state_.compare_exchange_weak(s, 1, std::memory_order_acquire, std::memory_order_relaxed))
        [[likely]] {
      return;
    }
    lock_shared_slow(s);
  }

  void unlock_shared() noexcept {
    const std::uint32_t prev = state_.fetch_sub(1, std::memory_order_release);
    // The last reader out wakes whoever sleeps (a writer waiting for the readers to drain).
    if ((prev & readers) == 1 && (prev & sleepers) != 0) wake_all();
  }

  void lock() noexcept {
    std::uint32_t s = 0;
    if (state_.compare_exchange_weak(s, writer, std::memory_order_acquire,
                                     std::memory_order_relaxed)) [[likely]] {
      return;
    }
    lock_slow(s);
  }

  void unlock() noexcept {
    // While we hold the lock only the sleepers bit can change (file comment): if it is clear, a
    // plain store releases the lock.
    if (state_.load(std::memory_order_relaxed) == writer) [[likely]] {
      state_.store(0, std::memory_order_release);
      return;
    }
    if ((state_.exchange(0, std::memory_order_release) & sleepers) != 0) wake_all_on(state_);
  }

 private:
  static constexpr std::uint32_t writer = 1U << 31;
  static constexpr std::uint32_t writer_wait = 1U << 30;
  static constexpr std::uint32_t sleepers = 1U << 29;
  static constexpr std::uint32_t readers = sleepers - 1;
  static constexpr int spin_limit = 64;
  static constexpr int yield_limit = spin_limit + 16;
  static constexpr long wait_timeout_ns = 1'000'000;

  void wake_all() noexcept {
    state_.fetch_and(~sleepers, std::memory_order_relaxed);
    wake_all_on(state_);
  }

  // Waits a little for state_ to change from `s`: the first spin_limit rounds spin on the CPU, the
  // next ones yield it (8 threads on 2 cores: the holder may be waiting for a core), the rest sleep
  // until a release wakes us or the timeout passes. Returns the state to re-examine.
  std::uint32_t back_off(int spins, std::uint32_t s) noexcept {
    if (spins < spin_limit) {
      cpu_relax();
    } else if (spins < yield_limit) {
      std::this_thread::yield();
    } else if ((s & sleepers) != 0 ||
               state_.compare_exchange_strong(s, s | sleepers, std::memory_order_relaxed)) {
      wait_on(state_, s | sleepers, wait_timeout_ns);
    }
    return state_.load(std::memory_order_relaxed);
  }

  void lock_shared_slow(std::uint32_t s) noexcept {
    for (int spins = 0;; ++spins) {
      if ((s & (writer | writer_wait)) == 0) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          return;
        }
        continue;  // s holds the current state
      }
      s = back_off(spins, s);
    }
  }

  void lock_slow(std::uint32_t s) noexcept {
    for (int spins = 0;; ++spins) {
      if ((s & (writer | readers)) == 0) {
        // Free: take it, clearing writer_wait (other waiting writers set it again) but keeping the
        // sleepers bit so our release wakes them.
        if (state_.compare_exchange_weak(s, (s & sleepers) | writer, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          return;
        }
        continue;
      }
      if ((s & (writer | writer_wait)) == 0) {
        // Readers hold it: ask new readers to stand back. (Not while a writer holds it: its
        // release would erase the bit.)
        if (state_.compare_exchange_weak(s, s | writer_wait, std::memory_order_relaxed)) {
          s |= writer_wait;
        }
        continue;
      }
      s = back_off(spins, s);
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
