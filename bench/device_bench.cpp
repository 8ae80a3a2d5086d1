// bench/device_bench.cpp — the device-registry paths that ../shared/WORKLOADS.md does not cover:
//
//   1. batch:  ShardedMap's visit_many / upsert_many over spans of 64 and of 256 keys against the
//              same keys one call at a time (N = 2^20 random MACs, half present, 1 thread).
//   2. device: DeviceCache::record_heartbeat and record_heartbeats on 1M devices, 1 and 2
//              threads, alone and next to a collector thread that runs collect_* calls back to
//              back (it reports how many it finished).
//   3. blocking: how long get_cache_snapshot(), collect_* calls and an aging sweep over the 1M
//              devices block a heartbeat writer (its worst single-call latency meanwhile), next
//              to a control that takes no lock of the cache (building a vector as large as a
//              whole-cache result): what the writer waits there is the machine, not a lock.
//   4. flood:  a default (randomly seeded) ShardedMap fed key sets built to collide — MACs that
//              differ only in their top bits, only in the bits a shard index would use, and a set
//              built to collide under one fixed seed — next to the same set in a map that uses
//              that fixed seed, the map an attacker who knows the seed gets.
//
//   device_bench [--reps R] [--shards S] [--quick] [--out DIR]   (S: the DeviceCache's shards)
//
// Every configuration runs --reps times, interleaved, and the median is reported; every run checks
// its result exactly (values summed, heartbeats counted), so a fast but wrong path fails. Prints
// one line per run and, with --out, writes DIR/device.md.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <devcache/devcache.hpp>

#include "blocking.hpp"
#include "report.hpp"
#include "workload.hpp"

namespace devcache::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Map = ShardedMap<MacAddress, std::uint64_t>;

struct Options {
  unsigned reps = 3;
  std::size_t shards = 0;  // DeviceCache shards; 0: the cache's default
  bool quick = false;
  std::string out;
};

[[noreturn]] void check_failed(const std::string& what) {
  fmt::print(stderr, "CHECK FAILED: {}\n", what);
  std::exit(2);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Uniform key indices in [0, n), the same sequence for every path that is compared.
std::vector<MacAddress> key_stream(std::uint64_t n, std::uint64_t count, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<MacAddress> keys(count);
  for (auto& k : keys) k = MacAddress::from_u64(mac_of(KeyShape::random, rng.next() & (n - 1)));
  return keys;
}

// ---------------------------------------------------------------------------------------------
// 1. batch vs one at a time

struct BatchResult {
  double single_visit = 0;
  double batch_visit = 0;
  double single_upsert = 0;
  double batch_upsert = 0;
};

// The span lengths the batch calls are measured with: 64 keys, and 256 (ShardedMap's batch_chunk:
// with the default shard count a chunk holds several keys of each shard).
constexpr std::array<std::size_t, 2> batch_spans{64, 256};
// The span length the device heartbeat runs send.
constexpr std::size_t heartbeat_span = 256;

BatchResult run_batch(std::uint64_t n, std::uint64_t ops, std::size_t chunk) {
  const std::vector<MacAddress> keys = key_stream(n, ops, 0xBA7C);
  auto prefilled = [n] {
    auto map = std::make_unique<Map>();
    for (std::uint64_t i = 0; i < n; i += 2)
      map->insert(MacAddress::from_u64(mac_of(KeyShape::random, i)), std::uint64_t{0});
    return map;
  };
  auto total = [](const Map& map) {
    std::uint64_t sum = 0;
    map.cvisit_all([&](const MacAddress&, const std::uint64_t& v) { sum += v; });
    return sum;
  };
  const auto bump = [](std::uint64_t& v) { ++v; };
  const auto bump_key = [](const MacAddress&, std::uint64_t& v) { ++v; };
  BatchResult r;

  // visit: the heartbeat of a registry (present keys bumped, absent ones ignored).
  std::uint64_t hits_single = 0;
  {
    auto map = prefilled();
    const auto t0 = Clock::now();
    for (const MacAddress& k : keys) hits_single += map->visit(k, bump) ? 1 : 0;
    r.single_visit = static_cast<double>(ops) / seconds_since(t0) / 1e6;
    if (total(*map) != hits_single) check_failed("single visit sum");
  }
  {
    auto map = prefilled();
    std::uint64_t hits = 0;
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < keys.size(); i += chunk) {
      hits +=
          map->visit_many(std::span(keys).subspan(i, std::min(chunk, keys.size() - i)), bump_key);
    }
    r.batch_visit = static_cast<double>(ops) / seconds_since(t0) / 1e6;
    if (hits != hits_single || total(*map) != hits) check_failed("visit_many hits or sum");
  }
  // upsert: present keys bumped, absent ones inserted with 1.
  std::uint64_t size_single = 0;
  {
    auto map = prefilled();
    const auto t0 = Clock::now();
    for (const MacAddress& k : keys) map->upsert(k, bump, std::uint64_t{1});
    r.single_upsert = static_cast<double>(ops) / seconds_since(t0) / 1e6;
    size_single = map->size();
    if (total(*map) != ops) check_failed("single upsert sum");
  }
  {
    auto map = prefilled();
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < keys.size(); i += chunk) {
      map->upsert_many(std::span(keys).subspan(i, std::min(chunk, keys.size() - i)), bump_key,
                       std::uint64_t{1});
    }
    r.batch_upsert = static_cast<double>(ops) / seconds_since(t0) / 1e6;
    if (total(*map) != ops || map->size() != size_single) check_failed("upsert_many sum or size");
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// 2. DeviceCache heartbeats, with and without a concurrent collector

struct DeviceRow {
  unsigned threads;
  bool batch;
  bool collector;
  double mops;
  double collector_calls_per_s;
};

using Cache = DeviceCache<>;

// A cache of `devices` devices (shards: ShardedMap's shard count; CuckooMap ignores it).
template <class C = Cache>
std::unique_ptr<C> device_cache(std::uint64_t devices, std::size_t shards) {
  DeviceCacheOptions o;
  o.hash_seed = HashSeed::random();
  o.shard_count = shards;
  auto cache = std::make_unique<C>(o);
  const IpAddress ip = IpAddress::parse("10.0.0.1");
  for (std::uint64_t i = 0; i < devices; ++i) {
    cache->add_device_entry(fmt::format("dev-{}", i),
                            MacAddress::from_u64(mac_of(KeyShape::random, i)), ip, std::nullopt);
  }
  return cache;
}

DeviceRow run_device(Cache& cache, std::uint64_t devices, unsigned threads, bool batch,
                     bool collector, std::uint64_t per_thread) {
  constexpr std::size_t chunk = heartbeat_span;
  constexpr auto time_limit = std::chrono::seconds(2);
  const std::uint64_t before = cache.get_cache_stats().heartbeats;
  std::vector<std::vector<MacAddress>> streams;
  for (unsigned t = 0; t < threads; ++t) {
    // devices is not a power of two in general: reduce with a multiply-shift.
    SplitMix64 rng(0xD0 + t);
    std::vector<MacAddress> keys(per_thread);
    for (auto& k : keys) {
      const auto i =
          static_cast<std::uint64_t>((static_cast<detail::uint128>(rng.next()) * devices) >> 64);
      k = MacAddress::from_u64(mac_of(KeyShape::random, i));
    }
    streams.push_back(std::move(keys));
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> collected_calls{0};
  std::thread collector_thread;
  if (collector) {
    collector_thread = std::thread([&] {
      std::uint64_t calls = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        // Full scans that match (almost) nothing: the cost is the walk and the shard locks.
        const auto busy = cache.collect_entries_with_high_heartbeats(1'000'000'000);
        const auto lan = cache.collect_entries_in_subnet("192.168.0.0/16");
        if (!busy.empty() || !lan.empty()) check_failed("collector matched devices it should not");
        calls += 2;
      }
      collected_calls.store(calls);
    });
  }
  std::latch start(1);
  std::vector<std::thread> workers;
  std::vector<std::uint64_t> missing(threads, 0);
  std::vector<std::uint64_t> sent(threads, 0);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::vector<MacAddress>& keys = streams[t];
      start.wait();
      // Heartbeats go out in chunks of heartbeat_span (one record_heartbeats call, or as many
      // record_heartbeat calls) until the stream ends or time_limit has passed, whichever comes
      // first: next to a collector the rate can drop by orders of magnitude, and the run must still
      // end.
      const auto deadline = Clock::now() + time_limit;
      std::uint64_t found = 0;
      std::size_t i = 0;
      for (; i < keys.size() && Clock::now() < deadline; i += chunk) {
        const auto part = std::span(keys).subspan(i, std::min(chunk, keys.size() - i));
        if (batch) {
          found += cache.record_heartbeats(part);
        } else {
          for (const MacAddress& k : part) found += cache.record_heartbeat(k) ? 1 : 0;
        }
      }
      sent[t] = std::min(i, keys.size());
      missing[t] = sent[t] - found;
    });
  }
  const auto t0 = Clock::now();
  start.count_down();
  for (auto& w : workers) w.join();
  const double secs = seconds_since(t0);
  stop.store(true);
  if (collector_thread.joinable()) collector_thread.join();
  for (const std::uint64_t m : missing) {
    if (m != 0) check_failed("a heartbeat missed a cached device");
  }
  const std::uint64_t total = std::accumulate(sent.begin(), sent.end(), std::uint64_t{0});
  if (cache.get_cache_stats().heartbeats - before != total) check_failed("heartbeats lost");
  return DeviceRow{threads, batch, collector, static_cast<double>(total) / secs / 1e6,
                   static_cast<double>(collected_calls.load()) / secs};
}

// ---------------------------------------------------------------------------------------------
// 4. hash flooding

constexpr std::uint64_t attack_seed = 0x5EEDF00D;

// MACs chosen so that, in a ShardedMap seeded with attack_seed, they land in shard 0 with home
// slots in the first 1/1024 of that shard's table (the top 10 hash bits are zero): every one of
// them collides into one cluster. Found by brute force, as an attacker who knew the seed would.
std::vector<MacAddress> fixed_seed_attack(std::size_t count) {
  // The map's own hash: its Hash (std::hash<MacAddress>) keyed by the seed's mix.
  const auto mix = detail::KeyedMix::from_seed(HashSeed::fixed(attack_seed).value());
  const std::hash<MacAddress> base;
  std::vector<MacAddress> keys;
  SplitMix64 rng(0xA77AC);
  while (keys.size() < count) {
    const MacAddress k = MacAddress::from_u64(rng.next() & 0xFFFF'FFFF'FFFF);
    const std::uint64_t h = mix(detail::hash_input(base, k));
    if ((h >> 54) == 0 && (h & 7) == 0) keys.push_back(k);
  }
  return keys;
}

struct FloodRow {
  std::string keys;
  std::string map;
  double mops;
  std::size_t largest_shard;
  std::size_t count;
};

FloodRow run_flood(const std::string& keys_name, const std::vector<MacAddress>& keys,
                   const std::string& map_name, HashSeed seed) {
  Map map(8, seed);
  const auto t0 = Clock::now();
  for (const MacAddress& k : keys) map.insert(k, std::uint64_t{1});
  for (int round = 0; round < 4; ++round) {
    for (const MacAddress& k : keys) map.visit(k, [](std::uint64_t& v) { ++v; });
  }
  for (const MacAddress& k : keys) map.erase(k);
  const double secs = seconds_since(t0);
  if (!map.empty()) check_failed("flood map not empty after erasing every key");
  // Largest shard of the full set (measured once more, outside the timing).
  for (const MacAddress& k : keys) map.insert(k, std::uint64_t{1});
  const auto sizes = map.shard_sizes();
  const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
  return FloodRow{keys_name, map_name, static_cast<double>(keys.size() * 6) / secs / 1e6, largest,
                  keys.size()};
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--reps" && i + 1 < argc) {
      o.reps = static_cast<unsigned>(std::stoul(argv[++i]));
    } else if (a == "--shards" && i + 1 < argc) {
      o.shards = std::stoul(argv[++i]);
    } else if (a == "--out" && i + 1 < argc) {
      o.out = argv[++i];
    } else if (a == "--help" || a == "-h") {
      fmt::print("usage: device_bench [--reps R] [--shards S] [--quick] [--out DIR]\n");
      std::exit(0);
    } else {
      fmt::print(stderr, "device_bench: unknown option or missing value: {}\n", a);
      std::exit(1);
    }
  }
  if (o.quick) o.reps = 1;
  return o;
}

}  // namespace
}  // namespace devcache::bench

int main(int argc, char** argv) {
  using namespace devcache::bench;
  using devcache::HashSeed;
  using devcache::MacAddress;
  const Options opt = parse_options(argc, argv);
  // Before the run, not after it: a bad --out should not cost a whole run.
  if (!opt.out.empty()) make_directory_or_exit(opt.out);
  const std::uint64_t n = opt.quick ? std::uint64_t{1} << 14 : std::uint64_t{1} << 20;
  const std::uint64_t ops = opt.quick ? 50'000 : 4'000'000;

  // 1. batch
  std::map<std::size_t, std::vector<BatchResult>> batch_runs;  // by span length
  for (unsigned rep = 0; rep < opt.reps; ++rep) {
    for (const std::size_t span : batch_spans) {
      const BatchResult r = run_batch(n, ops, span);
      fmt::print(
          "batch N={} span={} visit single={:.2f} batch={:.2f} ({:.2f}x)  upsert single={:.2f} "
          "batch={:.2f} ({:.2f}x) Mops/s\n",
          n, span, r.single_visit, r.batch_visit, r.batch_visit / r.single_visit, r.single_upsert,
          r.batch_upsert, r.batch_upsert / r.single_upsert);
      std::fflush(stdout);
      batch_runs[span].push_back(r);
    }
  }

  // 2. device heartbeats
  const std::uint64_t devices = opt.quick ? 10'000 : 1'000'000;
  const std::uint64_t per_thread = opt.quick ? 20'000 : 2'000'000;
  auto cache = device_cache(devices, opt.shards);
  const std::size_t cache_shards = cache->shard_count();
  std::map<std::tuple<unsigned, bool, bool>, std::vector<DeviceRow>> device_runs;
  for (unsigned rep = 0; rep < opt.reps; ++rep) {
    for (const unsigned threads : {1U, 2U}) {
      for (const bool collector : {false, true}) {
        for (const bool batch : {false, true}) {
          const DeviceRow r = run_device(*cache, devices, threads, batch, collector, per_thread);
          fmt::print(
              "device devices={} threads={} path={} collector={} heartbeat_mops={:.2f} "
              "collector_calls_per_s={:.1f}\n",
              devices, threads, batch ? "record_heartbeats" : "record_heartbeat",
              collector ? "yes" : "no", r.mops, r.collector_calls_per_s);
          std::fflush(stdout);
          device_runs[{threads, collector, batch}].push_back(r);
        }
      }
    }
  }

  // 3. blocking
  std::vector<std::vector<BlockingRow>> blocking_runs(opt.reps);
  {
    // The writer heartbeats random cached devices (of `c`: this cache, or the CuckooMap one).
    const auto heartbeat = [devices](auto& c, std::uint64_t step) {
      const auto i = static_cast<std::uint64_t>(
          (static_cast<devcache::detail::uint128>(splitmix64(step)) * devices) >> 64);
      if (!c.record_heartbeat(MacAddress::from_u64(mac_of(KeyShape::random, i)))) {
        check_failed("a heartbeat missed a cached device");
      }
    };
    const auto snapshot_of = [devices](const auto& c) {
      if (c.get_cache_snapshot().size() != devices) check_failed("snapshot size");
    };
    const auto write = [&](std::uint64_t step) { heartbeat(*cache, step); };
    const auto match_none = [&cache] {
      if (!cache->collect_entries_with_high_heartbeats(1'000'000'000).empty())
        check_failed("collect matched devices it should not");
    };
    const auto match_all = [&cache, devices] {
      if (cache->collect_entries_in_subnet("10.0.0.0/8").size() != devices)
        check_failed("collect missed devices");
    };
    const auto snapshot = [&] { snapshot_of(*cache); };
    // The other backend's snapshot locks its whole table (cuckoo_map.hpp): measured with a
    // writer on a cache of its own.
    auto cuckoo = device_cache<devcache::DeviceCache<devcache::CuckooMap>>(devices, 0);
    const auto cuckoo_write = [&](std::uint64_t step) { heartbeat(*cuckoo, step); };
    const auto cuckoo_snapshot = [&] { snapshot_of(*cuckoo); };
    const auto memory_only = [devices] { build_and_free<devcache::DeviceEntry>(devices); };
    const auto sweep = [&cache] {
      if (!cache->sweep_all_expired().empty()) check_failed("sweep expired fresh devices");
    };
    for (unsigned rep = 0; rep < opt.reps; ++rep) {
      for (BlockingRow& r : std::vector<BlockingRow>{
               writer_alone(write),
               writer_worst_while("(control: no cache call) a vector of as many entries built "
                                  "and freed",
                                  write, memory_only),
               writer_worst_while("get_cache_snapshot() (all shards locked shared)", write,
                                  snapshot),
               writer_worst_while("collect_entries_with_high_heartbeats() (matches none)", write,
                                  match_none),
               writer_worst_while("collect_entries_in_subnet() (matches all, copies them)", write,
                                  match_all),
               writer_worst_while("sweep_all_expired() (walks all; none has expired)", write,
                                  sweep),
               writer_worst_while("DeviceCache<CuckooMap>: get_cache_snapshot() (whole table "
                                  "locked: twice, for size() and for the copy)",
                                  cuckoo_write, cuckoo_snapshot)}) {
        fmt::print("blocking call=\"{}\" call_ms={:.1f} writer_worst_ms={:.3f}\n", r.what,
                   r.call_ms, r.writer_worst_ms);
        std::fflush(stdout);
        blocking_runs[rep].push_back(std::move(r));
      }
    }
  }
  cache.reset();

  // 4. flood
  const std::size_t flood_n = opt.quick ? 2'000 : 100'000;
  std::vector<MacAddress> random_keys;
  std::vector<MacAddress> top_bits;
  std::vector<MacAddress> low_stride;
  SplitMix64 rng(0xF100D);
  for (std::size_t i = 0; i < flood_n; ++i) {
    random_keys.push_back(MacAddress::from_u64(rng.next() & 0xFFFF'FFFF'FFFF));
    // Only the top 17 bits vary (the OUI's top bits): a low-bit shard index sees one value.
    top_bits.push_back(MacAddress::from_u64(static_cast<std::uint64_t>(i) << 31));
    // Multiples of 4096: every low-bit shard or bucket index sees zero.
    low_stride.push_back(
        MacAddress::from_u64((static_cast<std::uint64_t>(i) << 12) | 0x0200'0000'0000));
  }
  const std::vector<MacAddress> attack = fixed_seed_attack(opt.quick ? 500 : 20'000);
  std::map<std::pair<std::string, std::string>, std::vector<FloodRow>> flood_runs;
  for (unsigned rep = 0; rep < opt.reps; ++rep) {
    for (const auto& [name, keys] :
         std::vector<std::pair<std::string, const std::vector<MacAddress>*>>{
             {"random", &random_keys},
             {"top bits only", &top_bits},
             {"multiples of 4096", &low_stride},
             {"fixed-seed attack set", &attack}}) {
      for (const bool fixed : {false, true}) {
        if (fixed && name != "fixed-seed attack set") continue;
        const FloodRow r = run_flood(
            name, *keys,
            fixed ? "ShardedMap, the attacked fixed seed" : "ShardedMap, random seed (default)",
            fixed ? HashSeed::fixed(attack_seed) : HashSeed::random());
        fmt::print("flood keys=\"{}\" map=\"{}\" count={} mops={:.2f} largest_shard={}\n", r.keys,
                   r.map, r.count, r.mops, r.largest_shard);
        std::fflush(stdout);
        flood_runs[{r.keys, r.map}].push_back(r);
      }
    }
  }

  if (!opt.out.empty()) {
    auto med = [](std::vector<double> v) { return median(std::move(v)); };
    std::string md =
        "# devcache device-level benchmarks (bench/device_bench)\n\n" + machine_description() +
        fmt::format("- command: `device_bench --reps {}{}{}`; medians of {} runs\n\n", opt.reps,
                    opt.shards != 0 ? fmt::format(" --shards {}", opt.shards) : "",
                    opt.quick ? " --quick" : "", opt.reps);
    md += fmt::format(
        "## Batch vs one at a time (ShardedMap<MacAddress, u64>, {} shards (the default), N = {}, "
        "half present, 1 thread)\n\n| call | keys per batch call | one at a time (Mops/s) | "
        "batch (Mops/s) | same-run ratio |\n|---|---|---|---|---|\n",
        devcache::default_shard_count(), n);
    for (const auto& [span, runs] : batch_runs) {
      std::vector<double> sv, bv, su, bu, rv, ru;
      for (const auto& r : runs) {
        sv.push_back(r.single_visit);
        bv.push_back(r.batch_visit);
        su.push_back(r.single_upsert);
        bu.push_back(r.batch_upsert);
        rv.push_back(r.batch_visit / r.single_visit);
        ru.push_back(r.batch_upsert / r.single_upsert);
      }
      md += fmt::format(
          "| visit / visit_many | {} | {:.2f} | {:.2f} | {:.2f}x |\n"
          "| upsert / upsert_many | {} | {:.2f} | {:.2f} | {:.2f}x |\n",
          span, med(sv), med(bv), med(rv), span, med(su), med(bu), med(ru));
    }
    md += fmt::format(
        "\n## DeviceCache heartbeats ({} devices, {} shards; each thread sends up to 2M "
        "heartbeats, "
        "in chunks of {}, for at most 2 s)\n\n| threads | collector running | "
        "record_heartbeat (Mops/s) | record_heartbeats, batches of {} (Mops/s) | collector calls/s "
        "(single / batch) |\n|---|---|---|---|---|\n",
        devices, cache_shards, heartbeat_span, heartbeat_span);
    for (const unsigned threads : {1U, 2U}) {
      for (const bool collector : {false, true}) {
        std::vector<double> s, b, cs, cb;
        for (const auto& r : device_runs[{threads, collector, false}]) {
          s.push_back(r.mops);
          cs.push_back(r.collector_calls_per_s);
        }
        for (const auto& r : device_runs[{threads, collector, true}]) {
          b.push_back(r.mops);
          cb.push_back(r.collector_calls_per_s);
        }
        md += fmt::format("| {} | {} | {:.2f} | {:.2f} | {} |\n", threads, collector ? "yes" : "no",
                          med(s), med(b),
                          collector ? fmt::format("{:.1f} / {:.1f}", med(cs), med(cb)) : "-");
      }
    }
    md += fmt::format(
        "\n## How long whole-cache calls block a heartbeat writer ({} devices, {} shards, {})\n\n"
        "One thread calls record_heartbeat on random devices in a loop; the table gives its worst "
        "single-call latency while the call runs. The control row takes no lock of the cache: "
        "what the writer waits there is the machine (mapping and unmapping that much memory), "
        "and the calls that build a whole-cache result pay it too.\n\n| call | call (ms) | "
        "writer's worst (ms) "
        "|\n|---|---|---|\n",
        devices, cache_shards, blocking_rows_are(blocking_runs.size()));
    for (const BlockingRow& r : median_rows(blocking_runs)) {
      md += fmt::format("| {} | {:.1f} | {:.3f} |\n", r.what, r.call_ms, r.writer_worst_ms);
    }
    md +=
        "\n## Hash flooding (insert, 4 visits and erase of each key; 8 shards)\n\n"
        "| key set | keys | map | Mops/s | largest shard (mean = keys / 8) "
        "|\n|---|---|---|---|---|\n";
    for (const auto& [key, runs] : flood_runs) {
      std::vector<double> m;
      for (const auto& r : runs) m.push_back(r.mops);
      md += fmt::format("| {} | {} | {} | {:.2f} | {} |\n", key.first, runs.front().count,
                        key.second, med(m), runs.back().largest_shard);
    }
    const std::string path = opt.out + "/device.md";
    std::ofstream file(path);
    file << md;
    close_or_exit(file, path);
    fmt::print("wrote {}\n", path);
  }
  return 0;
}
