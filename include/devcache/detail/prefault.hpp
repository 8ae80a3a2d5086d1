// devcache/detail/prefault.hpp — asks the kernel to map freshly allocated memory before use.
//
// Why: a consistent snapshot (ShardedMap::snapshot) copies every entry while it holds every shard's
// lock, into a vector it reserved before locking. Reserving does not map the pages; the first write
// to each 4 KiB page then faults while writers wait. On a VM that measured 11-13 us per first touch
// (bench/device_bench, 1M devices: writers blocked for 330 ms by a snapshot, 130-160 ms with this),
// the faults were half of the time the locks were held. Mapping the pages before locking moves
// most of that cost out: on that VM (a PVM guest, whose page tables the hypervisor shadows) about
// 5 us a page still falls on the first user-mode write after the call, against about 10 us with
// no call (README.md, Benchmarks). A growing table (FlatTable::rehash) also maps its new arrays
// in one call each: under the shard's lock, one call costs less than a fault per page.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace devcache::detail {

/// Maps the pages under [p, p + bytes) writable now (Linux: madvise(MADV_POPULATE_WRITE), kernel
/// 5.14 or later), without changing their contents. Best effort: where the call is unavailable or
/// fails, it does nothing and the pages fault on first use as usual. Thread-safe; never throws.
/// O(bytes / page size).
inline void prefault_for_write(const void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  if (p == nullptr || bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);  // NOLINT
  const auto end = reinterpret_cast<std::uintptr_t>(p) + bytes;          // NOLINT
  // Rounding the start down stays inside the mapping that holds p; populating never changes
  // memory, so a page shared with a neighbouring allocation is unaffected.
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);  // NOLINT
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace devcache::detail
