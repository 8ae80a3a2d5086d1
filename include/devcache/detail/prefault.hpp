// devcache/detail/prefault.hpp — asks the kernel to map freshly allocated memory before use.
//
// Why: a consistent snapshot (ShardedMap::snapshot) copies every entry while it holds every shard's
// lock, into a vector it reserved before locking. Reserving does not map the pages; the first write
// to each 4 KiB page then faults while writers wait. On a VM that measured 11-13 us per first touch
// (bench/device_bench, 1M devices: writers blocked for 330 ms by a snapshot, 130-160 ms with this),
// the faults were half of the time the locks were held. Mapping the pages before locking moves
// most of that cost out: on that VM (a PVM guest, whose page tables the hypervisor shadows) about
// 5 us a page still falls on the first user-mode write after the call, against about 10 us with
// no call (README.md, Benchmarks); prefault_fresh_for_write also takes that cost before locking,
// by writing to each page. A growing table (FlatTable::rehash) also maps its new arrays in one
// call each: under the shard's lock, one call costs less than a fault per page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define DEVCACHE_DETAIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEVCACHE_DETAIL_ASAN 1
#endif
#endif
#ifndef DEVCACHE_DETAIL_ASAN
#define DEVCACHE_DETAIL_ASAN 0
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

/// prefault_for_write(p, bytes), then a write of one zero byte into each page of the range, to
/// storage that holds no objects yet (fresh from an allocator, nothing constructed in it), whose
/// bytes are indeterminate anyway. Why the write: on a VM whose page tables the hypervisor shadows
/// (the benchmark VM, a PVM guest), a page that madvise mapped still costs about 5 us at the first
/// write from user mode; this call pays that too, so a caller that fills the storage under a lock
/// does not (DeviceCache::get_cache_snapshot of 1M devices: a writer blocked 126-127 ms before,
/// 10-15 ms with this; README.md, Benchmarks). Where pages are mapped for real, the writes cost one
/// cache miss a page. Writes only inside [p, p + bytes), never to a neighbour sharing the first or
/// last page. Under AddressSanitizer it does not write: a vector's spare capacity (what snapshot()
/// passes) is poisoned where the standard library annotates containers (libc++; libstdc++ with
/// _GLIBCXX_SANITIZE_VECTOR), and the writes are only for speed. Thread-safe as long as no other
/// thread uses the range; never throws. O(bytes / page size).
inline void prefault_fresh_for_write(void* p, std::size_t bytes) noexcept {
  prefault_for_write(p, bytes);
#if defined(__linux__) && !DEVCACHE_DETAIL_ASAN
  if (p == nullptr || bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(p);  // NOLINT
  const std::uintptr_t end = begin + bytes;
  // volatile: the compiler must not drop the writes as dead stores (the caller overwrites them).
  for (std::uintptr_t at = begin; at < end; at = (at & ~(page - 1)) + page) {
    *reinterpret_cast<volatile unsigned char*>(at) = 0;  // NOLINT
  }
#endif
}

/// What a call that fills `out` under a lock does before it locks: reserves room for `estimate`
/// more elements and some growth meanwhile (1/16 + 16), and maps the spare capacity's pages
/// (prefault_fresh_for_write). Used by both maps' snapshot(). Not thread-safe on `out`.
/// O(estimate / page size). Throws std::bad_alloc or std::length_error (`out` is then unchanged).
template <class T, class Alloc>
void reserve_mapped(std::vector<T, Alloc>& out, std::size_t estimate) {
  out.reserve(out.size() + estimate + estimate / 16 + 16);
  prefault_fresh_for_write(out.data() + out.size(), (out.capacity() - out.size()) * sizeof(T));
}

}  // namespace devcache::detail
