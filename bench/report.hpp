// bench/report.hpp — collects benchmark results and writes them as CSV and markdown.
// Ratios are "same-run": computed within one repetition (the maps ran interleaved, a few seconds
// apart) and then the median over repetitions is reported, so slow drift of a noisy machine
// cancels.
#pragma once

#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "bench_config.hpp"

namespace devcache::bench {

struct ThroughputRun {
  unsigned rep;
  std::string map, mix, keys;
  unsigned bits, threads;
  double mops;
};
struct MemoryRow {
  std::string map;
  std::size_t empty_bytes;
  double bytes_per_entry;
};
struct LatencyRow {
  std::string map;
  double p50, p99, p999, max;
};
struct BlockingRow {
  std::string what;
  double call_ms, writer_worst_ms;
};

/// What a blocking table's rows are, for its heading: "medians of 3 repetitions", or "one run".
inline std::string blocking_rows_are(std::size_t reps) {
  return reps == 1 ? std::string("one run") : fmt::format("medians of {} repetitions", reps);
}

/// Closes `f`, which wrote `path`. If anything failed (a missing or read-only directory, a full
/// disk), says so, naming the file, and exits with status 1: a result that was not written must
/// not be reported as written.
inline void close_or_exit(std::ofstream& f, const std::string& path) {
  f.close();
  if (!f) {
    fmt::print(stderr, "error: could not open or write {}\n", path);
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): the benchmark threads have finished
  }
}

/// Creates directory `dir` (and its parents) unless it exists; if that fails, says why, naming
/// the directory, and exits with status 1.
inline void make_directory_or_exit(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    fmt::print(stderr, "error: could not create the output directory {}: {}\n", dir, ec.message());
    std::exit(1);  // NOLINT(concurrency-mt-unsafe): the benchmark threads have finished
  }
}

inline std::string machine_description() {
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  uname(&u);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
#if defined(__clang__)
  const char* compiler = "clang " __clang_version__;
#else
  const char* compiler = "g++ " __VERSION__;
#endif
  return fmt::format(
      "- machine: {}, {} hardware threads, Linux {}\n- compiler: {}\n- flags: {}\n- date: {}\n",
      cpu, std::thread::hardware_concurrency(), u.release, compiler, DEVCACHE_BENCH_FLAGS, date);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

class Report {
 public:
  Report(std::string machine, unsigned reps, std::uint64_t ops)
      : machine_(std::move(machine)), reps_(reps), ops_(ops) {}

  void add(ThroughputRun r) { runs_.push_back(std::move(r)); }

  std::vector<MemoryRow> memory;
  std::vector<LatencyRow> latency;
  std::vector<BlockingRow> blocking;
  /// map_bench's wall-clock time from start to the report (prefills, checks and every section
  /// included); 0 leaves the run-time section out.
  double wall_seconds = 0;

  void write(const std::string& dir) const {
    make_directory_or_exit(dir);  // map_bench made it at the start; it may have gone since
    write_runs_csv(dir + "/throughput_runs.csv");
    write_medians_csv(dir + "/throughput.csv");
    write_markdown(dir + "/results.md");
  }

 private:
  using ConfigKey =
      std::tuple<unsigned, std::string, std::string, unsigned>;  // bits, keys, mix, threads

  [[nodiscard]] std::optional<double> run_of(unsigned rep, const std::string& map,
                                             const ConfigKey& c) const {
    for (const auto& r : runs_) {
      if (r.rep == rep && r.map == map && r.bits == std::get<0>(c) && r.keys == std::get<1>(c) &&
          r.mix == std::get<2>(c) && r.threads == std::get<3>(c)) {
        return r.mops;
      }
    }
    return std::nullopt;
  }
  [[nodiscard]] std::optional<double> median_of(const std::string& map, const ConfigKey& c) const {
    std::vector<double> v;
    for (unsigned rep = 0; rep < reps_; ++rep) {
      if (auto x = run_of(rep, map, c)) v.push_back(*x);
    }
    if (v.empty()) return std::nullopt;
    return median(v);
  }
  // Median over repetitions of num(rep) / den(rep), where each may combine several maps.
  template <class Num, class Den>
  [[nodiscard]] std::optional<double> ratio(Num num, Den den) const {
    std::vector<double> v;
    for (unsigned rep = 0; rep < reps_; ++rep) {
      const auto a = num(rep);
      const auto b = den(rep);
      if (a && b && *b > 0) v.push_back(*a / *b);
    }
    if (v.empty()) return std::nullopt;
    return median(v);
  }

  [[nodiscard]] std::vector<std::string> maps() const {
    std::vector<std::string> out;
    for (const auto& r : runs_) {
      if (std::find(out.begin(), out.end(), r.map) == out.end()) out.push_back(r.map);
    }
    return out;
  }
  [[nodiscard]] std::set<ConfigKey> configs() const {
    std::set<ConfigKey> out;
    for (const auto& r : runs_) out.emplace(r.bits, r.keys, r.mix, r.threads);
    return out;
  }

  void write_runs_csv(const std::string& path) const {
    std::ofstream f(path);
    f << "rep,map,mix,keys,n,threads,mops\n";
    for (const auto& r : runs_) {
      f << fmt::format("{},{},{},{},{},{},{:.3f}\n", r.rep, r.map, r.mix, r.keys, 1U << r.bits,
                       r.threads, r.mops);
    }
    close_or_exit(f, path);
  }
  void write_medians_csv(const std::string& path) const {
    std::ofstream f(path);
    f << "map,mix,keys,n,threads,median_mops\n";
    for (const auto& c : configs()) {
      for (const auto& m : maps()) {
        if (auto v = median_of(m, c)) {
          f << fmt::format("{},{},{},{},{},{:.3f}\n", m, std::get<2>(c), std::get<1>(c),
                           1U << std::get<0>(c), std::get<3>(c), *v);
        }
      }
    }
    close_or_exit(f, path);
  }

  void write_markdown(const std::string& path) const {
    std::ofstream f(path);
    f << "# devcache map benchmark\n\n"
      << machine_
      << fmt::format(
             "- work: ../shared/WORKLOADS.md v1.1, {} operations per thread, {} repetitions "
             "(maps interleaved), medians shown\n\n",
             ops_, reps_);
    const auto ms = maps();
    f << "## Throughput (Mops/s, median)\n\n| N | keys | mix | threads |";
    for (const auto& m : ms) f << ' ' << m << " |";
    f << "\n|---|---|---|---|";
    for (std::size_t i = 0; i < ms.size(); ++i) f << "---|";
    f << '\n';
    for (const auto& c : configs()) {
      f << fmt::format("| 2^{} | {} | {} | {} |", std::get<0>(c), std::get<1>(c), std::get<2>(c),
                       std::get<3>(c));
      for (const auto& m : ms) {
        const auto v = median_of(m, c);
        f << (v ? fmt::format(" {:.2f} |", *v) : std::string(" – |"));
      }
      f << '\n';
    }
    write_targets(f);
    if (!memory.empty()) {
      f << "\n## Memory\n\n| map | empty map (bytes) | bytes per entry at 1M entries "
           "|\n|---|---|---|\n";
      for (const auto& m : memory)
        f << fmt::format("| {} | {} | {:.1f} |\n", m.map, m.empty_bytes, m.bytes_per_entry);
    }
    if (!latency.empty()) {
      f << "\n## Latency of single operations (heartbeat mix, 2 threads, N = 2^20, ns)\n\n"
           "| map | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|\n";
      for (const auto& l : latency) {
        f << fmt::format("| {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} |\n", l.map, l.p50, l.p99,
                         l.p999, l.max);
      }
    }
    if (!blocking.empty()) {
      f << fmt::format(
          "\n## How long whole-map calls block a writer (ShardedMap, 1M entries, {})\n\n"
          "| call | call duration (ms) | writer's worst operation meanwhile (ms) "
          "|\n|---|---|---|\n",
          blocking_rows_are(reps_));
      for (const auto& b : blocking) {
        f << fmt::format("| {} | {:.1f} | {:.2f} |\n", b.what, b.call_ms, b.writer_worst_ms);
      }
    }
    write_run_time(f);
    close_or_exit(f, path);
  }

  // Where the suite's time goes: each map's timed operations (threads * ops / rate, summed over
  // every run), by thread count, against map_bench's wall-clock time.
  void write_run_time(std::ofstream& f) const {
    if (wall_seconds <= 0) return;
    std::set<unsigned> thread_counts;
    for (const auto& r : runs_) thread_counts.insert(r.threads);
    f << fmt::format(
        "\n## Run time\n\nmap_bench took {:.0f} s (wall clock, prefills, checks, memory, "
        "latency and blocking included). Timed operations, seconds summed over every run:\n\n"
        "| map |",
        wall_seconds);
    for (const unsigned t : thread_counts) f << fmt::format(" {} thread{} |", t, t == 1 ? "" : "s");
    f << " all |\n|---|";
    for (std::size_t i = 0; i <= thread_counts.size(); ++i) f << "---|";
    f << '\n';
    std::map<unsigned, double> per_threads;
    for (const auto& m : maps()) {
      f << "| " << m << " |";
      double total = 0;
      for (const unsigned t : thread_counts) {
        double s = 0;
        for (const auto& r : runs_) {
          if (r.map == m && r.threads == t && r.mops > 0)
            s += static_cast<double>(t) * static_cast<double>(ops_) / (r.mops * 1e6);
        }
        total += s;
        per_threads[t] += s;
        f << fmt::format(" {:.1f} |", s);
      }
      f << fmt::format(" {:.1f} |\n", total);
    }
    double grand_total = 0;
    f << "| all maps |";
    for (const unsigned t : thread_counts) {
      grand_total += per_threads[t];
      f << fmt::format(" {:.1f} |", per_threads[t]);
    }
    f << fmt::format(" {:.1f} |\n", grand_total);
  }

  void write_targets(std::ofstream& f) const {
    const std::string us = "ShardedMap";
    auto at = [&](const std::string& map, unsigned bits, const std::string& keys,
                  const std::string& mix, unsigned threads) {
      return [=, this](unsigned rep) {
        return run_of(rep, map, ConfigKey{bits, keys, mix, threads});
      };
    };
    std::set<std::tuple<unsigned, std::string, std::string>> cases;  // bits, keys, mix
    for (const auto& c : configs()) cases.emplace(std::get<0>(c), std::get<1>(c), std::get<2>(c));

    f << "\n## Targets (same-run ratios, median over repetitions)\n\n"
         "| N | keys | mix | 1 thread: ShardedMap / absl (≥ 0.85) | 2 threads: ShardedMap / "
         "max(libcuckoo, tbb) (≥ 1.2) "
         "| ShardedMap 8 threads / 2 threads (≥ 0.9) |\n|---|---|---|---|---|---|\n";
    auto cell = [](std::optional<double> r, double target) {
      if (!r) return std::string("–");
      return fmt::format("{:.2f} {}", *r, *r >= target ? "✅" : "❌");
    };
    for (const auto& [bits, keys, mix] : cases) {
      const auto r1 = ratio(at(us, bits, keys, mix, 1), at("absl-unsync", bits, keys, mix, 1));
      const auto peer2 = [&, bits = bits, keys = keys,
                          mix = mix](unsigned rep) -> std::optional<double> {
        const auto a = at("libcuckoo", bits, keys, mix, 2)(rep);
        const auto b = at("tbb", bits, keys, mix, 2)(rep);
        if (!a && !b) return std::nullopt;
        return std::max(a.value_or(0), b.value_or(0));
      };
      const auto r2 = ratio(at(us, bits, keys, mix, 2), peer2);
      const auto r8 = ratio(at(us, bits, keys, mix, 8), at(us, bits, keys, mix, 2));
      f << fmt::format("| 2^{} | {} | {} | {} | {} | {} |\n", bits, keys, mix, cell(r1, 0.85),
                       cell(r2, 1.2), cell(r8, 0.9));
    }
  }

  std::string machine_;
  unsigned reps_;
  std::uint64_t ops_;
  std::vector<ThroughputRun> runs_;
};

}  // namespace devcache::bench
