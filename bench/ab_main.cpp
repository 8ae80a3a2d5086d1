// bench/ab_main.cpp — map_ab: two builds of ShardedMap side by side in one process.
//
//   map_ab [--reps R] [--ops OPS] [--bits 14,20] [--threads 1,2,8] [--mixes 0,1,2,3]
//          [--shapes 0,1]        (mixes: read-heavy, exchange, rapid-grow, heartbeat; shapes:
//                                 random, oui-seq)
//
// Single processes of a VM can run 15% apart (where their memory lands, what the host does), which
// hides a change of a few percent between two full runs. Here both versions (A and B, see
// ab_variant.cpp and ab.sh) run the same WORKLOADS.md configurations alternately in one process:
// A then B in even repetitions, B then A in odd ones, because whichever runs second in a pair can
// be several percent slower for that reason alone. Prints the medians and B/A per configuration
// and the geometric mean of B/A. Build it with A = B (the default) to see the harness's own noise.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "workload.hpp"

double run_a(std::size_t mix, unsigned bits, int shape, unsigned threads, std::uint64_t ops);
double run_b(std::size_t mix, unsigned bits, int shape, unsigned threads, std::uint64_t ops);

namespace {

std::vector<unsigned> parse_list(const std::string& s, const char* what, unsigned max) {
  std::vector<unsigned> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t comma = std::min(s.find(',', at), s.size());
    const std::string item = s.substr(at, comma - at);
    std::size_t used = 0;
    unsigned long v = 0;
    try {
      v = std::stoul(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v > max) {
      throw std::invalid_argument(
          fmt::format(R"(map_ab: {} "{}": "{}" is not a number from 0 to {})", what, s, item, max));
    }
    out.push_back(static_cast<unsigned>(v));
    at = comma + 1;
  }
  return out;
}

unsigned parse_one(const std::string& s, const char* what, unsigned max) {
  const std::vector<unsigned> v = parse_list(s, what, max);
  if (v.size() != 1) {
    throw std::invalid_argument(fmt::format(R"(map_ab: {} "{}": one number expected)", what, s));
  }
  return v[0];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) try {
  unsigned reps = 5;
  std::uint64_t ops = 2'000'000;
  std::vector<unsigned> bits{14, 20};
  std::vector<unsigned> threads{1, 2, 8};
  std::vector<unsigned> mixes{0, 1, 2, 3};
  std::vector<unsigned> shapes{0};
  const char* const usage =
      "usage: map_ab [--reps R] [--ops OPS] [--bits 14,20] [--threads 1,2,8] [--mixes 0,1,2,3] "
      "[--shapes 0,1]";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help") {
      fmt::print("{}\n", usage);
      return 0;
    }
    if (i + 1 >= argc) throw std::invalid_argument("map_ab: " + a + " needs a value (--help)");
    const std::string v = argv[++i];
    if (a == "--reps") {
      reps = parse_one(v, "--reps", 99);
    } else if (a == "--ops") {
      ops = parse_one(v, "--ops", 1'000'000'000);
    } else if (a == "--bits") {
      bits = parse_list(v, "--bits", 24);
    } else if (a == "--threads") {
      threads = parse_list(v, "--threads", 256);
    } else if (a == "--mixes") {
      mixes = parse_list(v, "--mixes", devcache::bench::mixes.size() - 1);
    } else if (a == "--shapes") {
      shapes = parse_list(v, "--shapes", 1);
    } else {
      throw std::invalid_argument(fmt::format(R"(map_ab: unknown option "{}"; {})", a, usage));
    }
  }
  if (reps == 0 || ops == 0 || std::count(bits.begin(), bits.end(), 0U) != 0 ||
      std::count(threads.begin(), threads.end(), 0U) != 0) {
    throw std::invalid_argument("map_ab: --reps, --ops, --bits and --threads must be at least 1");
  }
  double log_sum = 0;
  std::size_t configs = 0;
  for (const unsigned b : bits) {
    for (const unsigned t : threads) {
      for (const unsigned m : mixes) {
        for (const unsigned s : shapes) {
          const int shape = static_cast<int>(s);
          std::vector<double> a;
          std::vector<double> bv;
          for (unsigned r = 0; r < reps; ++r) {
            if (r % 2 == 0) {
              a.push_back(run_a(m, b, shape, t, ops));
              bv.push_back(run_b(m, b, shape, t, ops));
            } else {
              bv.push_back(run_b(m, b, shape, t, ops));
              a.push_back(run_a(m, b, shape, t, ops));
            }
          }
          const double ma = median(a);
          const double mb = median(bv);
          fmt::print(
              "2^{} threads={} mix={:<10} keys={:<7} A {:6.2f} B {:6.2f} Mops/s  B/A {:.3f}\n", b,
              t, devcache::bench::mixes.at(m).name,
              devcache::bench::name(shape == 0 ? devcache::bench::KeyShape::random
                                               : devcache::bench::KeyShape::oui_seq),
              ma, mb, mb / ma);
          std::fflush(stdout);
          log_sum += std::log(mb / ma);
          ++configs;
        }
      }
    }
  }
  fmt::print("geometric mean of B/A over {} configurations: {:.3f} ({} repetitions each)\n",
             configs, std::exp(log_sum / static_cast<double>(configs)), reps);
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "{}\n", e.what());
  return 1;
}
