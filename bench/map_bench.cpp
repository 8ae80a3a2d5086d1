// bench/map_bench.cpp — every map on the same work (../shared/WORKLOADS.md v1.1) in one process
// run.
//
//   map_bench [--reps R] [--ops OPS] [--threads 1,2,8] [--keys 20,14] [--maps a,b] [--out DIR]
//             [--quick]
//
// Throughput: for each repetition, configuration (mix, key shape, N, threads) and map — maps
// interleaved so that machine noise hits all of them alike — prefill, release the threads together,
// time until the last one finishes, then check the final state exactly (size and value sum). A map
// that gets a wrong answer fails the run. Then memory (heap bytes per entry at 1M entries, empty
// footprint), single-operation latency (heartbeat mix, 2 threads), and how long whole-map calls
// block a writer. Prints one line per run and, with --out, writes CSV and markdown there.
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "adapters.hpp"
#include "blocking.hpp"
#include "report.hpp"
#include "throughput.hpp"
#include "workload.hpp"

namespace devcache::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  unsigned reps = 3;
  std::uint64_t ops = 2'000'000;
  std::vector<unsigned> threads{1, 2, 8};
  std::vector<unsigned> key_bits{20, 14};
  std::vector<std::string> maps;  // empty: all
  std::string out;
  bool quick = false;  // CI: tiny op counts, one repetition, skip nothing
};

struct MapEntry {
  std::string name;
  bool concurrent;
  std::function<double(const Mix&, KeyShape, std::uint64_t, unsigned, std::uint64_t)> run;
};

// Live bytes allocated through operator new (counted by the replacements at the end of this file).
std::atomic<std::int64_t> live_bytes{0};

std::size_t heap_in_use() { return static_cast<std::size_t>(live_bytes.load()); }

template <class Adapter>
MemoryRow measure_memory(const std::string& name, std::uint64_t entries) {
  const std::size_t base = heap_in_use();
  auto map = std::make_unique<Adapter>();
  const std::size_t empty = heap_in_use() - base;
  for (std::uint64_t i = 0; i < entries; ++i) map->insert(mac_of(KeyShape::random, i), i);
  const std::size_t full = heap_in_use() - base;
  return MemoryRow{name, empty, static_cast<double>(full) / static_cast<double>(entries)};
}

template <class Adapter>
LatencyRow measure_latency(const std::string& name, std::uint64_t ops) {
  const Mix& mix = mixes[3];  // heartbeat
  constexpr std::uint64_t n = std::uint64_t{1} << 20;
  auto map = std::make_unique<Adapter>();
  for (std::uint64_t i = 0; i < n; i += 2) map->insert(mac_of(KeyShape::random, i), i);
  std::vector<std::vector<std::uint32_t>> samples(2);
  std::latch start(1);
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < 2; ++t) {
    workers.emplace_back([&, t] {
      samples[t].reserve(ops);
      start.wait();
      run_thread(*map, mix, KeyShape::random, n, t, ops, [&](auto&& op) {
        const auto a = Clock::now();
        op();
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - a);
        samples[t].push_back(
            static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
      });
    });
  }
  start.count_down();
  for (auto& w : workers) w.join();
  std::vector<std::uint32_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return static_cast<double>(
        all[static_cast<std::size_t>(p * static_cast<double>(all.size() - 1))]);
  };
  return LatencyRow{name, pct(0.50), pct(0.99), pct(0.999), static_cast<double>(all.back())};
}

// How long whole-map calls block a writer: one writer thread runs heartbeat-mix operations on a
// 1M-entry ShardedMap and records its worst single-operation latency while the main thread runs
// the call, next to its worst latency with nothing else running and during a control call that
// takes no lock of the map (build_and_free). Each repetition runs every call once; medians.
std::vector<BlockingRow> measure_blocking(unsigned reps) {
  constexpr std::uint64_t n = std::uint64_t{1} << 21;
  ShardedMapAdapter adapter;
  auto& map = adapter.map();
  for (std::uint64_t i = 0; i < n; i += 2)
    map.insert(MacAddress::from_u64(mac_of(KeyShape::random, i)), i);

  // The writer: heartbeat-mix updates of random keys.
  const auto write = [&map](std::uint64_t step) {
    const std::uint64_t key = mac_of(KeyShape::random, splitmix64(step) & (n - 1));
    map.visit(MacAddress::from_u64(key), [](std::uint64_t& v) { ++v; });
  };
  std::vector<std::vector<BlockingRow>> runs(reps);
  for (auto& rows : runs) {
    rows.push_back(writer_alone(write));
    auto add = [&](std::string what, const std::function<void()>& call) {
      rows.push_back(writer_worst_while(std::move(what), write, call));
    };
    add("(control: no map call) a vector of 1M entries built and freed",
        [] { build_and_free<std::pair<MacAddress, std::uint64_t>>(std::size_t{1} << 20); });
    add("snapshot() of 1M entries", [&] {
      auto s = map.snapshot();
      (void)s;
    });
    add("cvisit_all() collect of 1M entries", [&] {
      std::vector<std::uint64_t> hits;
      map.cvisit_all([&](const MacAddress& k, const std::uint64_t& v) {
        if ((v & 63) == 0) hits.push_back(k.to_u64());
      });
    });
    add("erase_if(pred) sweep of 1M entries (erases ~1/64)", [&] {
      map.erase_if([](const MacAddress&, const std::uint64_t& v) { return (v & 63) == 1; });
    });
  }
  return median_rows(runs);
}

std::vector<unsigned> parse_list(const std::string& s) {
  std::vector<unsigned> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    out.push_back(static_cast<unsigned>(std::stoul(item)));
  return out;
}
std::vector<std::string> parse_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "map_bench: {} needs a value\n", a);
        std::exit(1);
      }
      return argv[++i];
    };
    if (a == "--reps")
      o.reps = static_cast<unsigned>(std::stoul(value()));
    else if (a == "--ops")
      o.ops = std::stoull(value());
    else if (a == "--threads")
      o.threads = parse_list(value());
    else if (a == "--keys")
      o.key_bits = parse_list(value());
    else if (a == "--maps")
      o.maps = parse_names(value());
    else if (a == "--out")
      o.out = value();
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: map_bench [--reps R] [--ops OPS] [--threads 1,2,8] [--keys 20,14] "
          "[--maps NAME,...] [--out DIR] [--quick]\n");
      std::exit(0);
    } else {
      fmt::print(stderr, "map_bench: unknown option {}\n", a);
      std::exit(1);
    }
  }
  if (o.quick) {
    o.reps = 1;
    o.ops = 20'000;
  }
  return o;
}

}  // namespace
}  // namespace devcache::bench

int main(int argc, char** argv) {
  using namespace devcache::bench;
  const Options opt = parse_options(argc, argv);
  // Before the run, not after it: a bad --out should not cost a whole run.
  if (!opt.out.empty()) make_directory_or_exit(opt.out);
  const auto started = Clock::now();

  const std::vector<MapEntry> all_maps{
      {"ShardedMap", true, run_throughput<ShardedMapAdapter>},
      {"CuckooMap", true, run_throughput<CuckooMapAdapter>},
      {"libcuckoo", true, run_throughput<LibcuckooAdapter>},
      {"tbb", true, run_throughput<TbbAdapter>},
      {"std+shared_mutex", true, run_throughput<StdMutexAdapter>},
      {"absl-unsync", false, run_throughput<AbslAdapter>},
  };
  std::vector<const MapEntry*> maps;
  for (const auto& m : all_maps) {
    if (opt.maps.empty() || std::find(opt.maps.begin(), opt.maps.end(), m.name) != opt.maps.end()) {
      maps.push_back(&m);
    }
  }

  Report report(machine_description(), opt.reps, opt.ops);
  for (unsigned rep = 0; rep < opt.reps; ++rep) {
    for (const unsigned bits : opt.key_bits) {
      for (const KeyShape shape : {KeyShape::random, KeyShape::oui_seq}) {
        for (const Mix& mix : mixes) {
          for (const unsigned t : opt.threads) {
            for (const MapEntry* m : maps) {
              if (!m->concurrent && t != 1) continue;  // the unsynchronised ceiling: 1 thread only
              const double mops = m->run(mix, shape, std::uint64_t{1} << bits, t, opt.ops);
              const std::string n_note = bits == 20 ? "" : fmt::format(" N={}", 1U << bits);
              fmt::print("map={} mix={} keys={} threads={} mops={:.2f}{}\n", m->name, mix.name,
                         name(shape), t, mops, n_note);
              std::fflush(stdout);
              report.add(ThroughputRun{rep, m->name, std::string(mix.name),
                                       std::string(name(shape)), bits, t, mops});
            }
          }
        }
      }
    }
  }

  const std::uint64_t mem_entries = opt.quick ? 10'000 : 1'000'000;
  report.memory = {
      measure_memory<ShardedMapAdapter>("ShardedMap", mem_entries),
      measure_memory<CuckooMapAdapter>("CuckooMap", mem_entries),
      measure_memory<LibcuckooAdapter>("libcuckoo", mem_entries),
      // TBB allocates through its own scalable allocator by default; count it via std::allocator.
      measure_memory<TbbAdapterT<std::allocator<std::pair<const std::uint64_t, std::uint64_t>>>>(
          "tbb", mem_entries),
      measure_memory<StdMutexAdapter>("std+shared_mutex", mem_entries),
      measure_memory<AbslAdapter>("absl-unsync", mem_entries),
  };
  for (const auto& m : report.memory) {
    fmt::print("memory map={} empty_bytes={} bytes_per_entry={:.1f} (at {} entries)\n", m.map,
               m.empty_bytes, m.bytes_per_entry, mem_entries);
  }
  const std::uint64_t lat_ops = opt.quick ? 20'000 : 1'000'000;
  report.latency = {
      measure_latency<ShardedMapAdapter>("ShardedMap", lat_ops),
      measure_latency<CuckooMapAdapter>("CuckooMap", lat_ops),
      measure_latency<LibcuckooAdapter>("libcuckoo", lat_ops),
      measure_latency<TbbAdapter>("tbb", lat_ops),
      measure_latency<StdMutexAdapter>("std+shared_mutex", lat_ops),
  };
  for (const auto& l : report.latency) {
    fmt::print(
        "latency map={} mix=heartbeat threads=2 p50_ns={:.0f} p99_ns={:.0f} p999_ns={:.0f} "
        "max_ns={:.0f}\n",
        l.map, l.p50, l.p99, l.p999, l.max);
  }
  if (!opt.quick) {
    report.blocking = measure_blocking(opt.reps);
    for (const auto& b : report.blocking) {
      fmt::print("blocking call=\"{}\" call_ms={:.1f} writer_worst_ms={:.2f}\n", b.what, b.call_ms,
                 b.writer_worst_ms);
    }
  }
  report.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  fmt::print("map_bench took {:.0f} s\n", report.wall_seconds);
  if (!opt.out.empty()) report.write(opt.out);
  return 0;
}

// Counting replacements of the global allocation functions: every map here allocates through
// operator new (TBB's memory run uses std::allocator), so live_bytes is exactly what the maps hold.
namespace {
void* counted_alloc(std::size_t n, std::size_t align) {
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n == 0 ? 1 : n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  devcache::bench::live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)),
                                        std::memory_order_relaxed);
  return p;
}
void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  devcache::bench::live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)),
                                        std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
