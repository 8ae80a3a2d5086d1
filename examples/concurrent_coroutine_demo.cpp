// concurrent_coroutine_demo — devcache with C++20 coroutines on asio, using a DeviceCache
// instance (no global state).
//
// A producer coroutine adds a device about every 400 ms, an updater records a heartbeat for a
// random known device about every 250 ms, a monitor logs a statistics line every 2 s, and a
// collection task runs the four collect calls every 2 s while the others write, checking every
// result it gets. One asio::io_context, run by one thread per core, runs them all, for 25 s. Then
// the coroutines are cancelled and waited for (at most 2 s), and the report checks what they did
// against what the cache holds.
//
//   concurrent_coroutine_demo                          # 25 s, as the original
//   concurrent_coroutine_demo --duration 2 --speed 50  # the same story in 2 s
//   SPDLOG_LEVEL=debug concurrent_coroutine_demo       # also log every collection
//   concurrent_coroutine_demo --state-file coro.state  # run it again: it goes on from there
//   concurrent_coroutine_demo --metrics-port 9464      # Prometheus metrics at 127.0.0.1:9464
//
// The cache never blocks a coroutine for long: each call takes a shard lock for one short step
// and returns (device_cache.hpp), so calling it from a coroutine, without co_await, is fine.
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <fmt/format.h>
#include <prometheus/exposer.h>
#include <prometheus/labels.h>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include <devcache/device_cache.hpp>
#include <devcache/prometheus.hpp>

#include "demo_support.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using Cache = devcache::DeviceCache<>;

constexpr demo::About about{
    .name = "concurrent_coroutine_demo",
    .description =
        "C++20 coroutines on one asio::io_context share a devcache::DeviceCache: N producer\n"
        "coroutines each add a device (MAC aa:bb:cc:xx:xx:xx, IP 10.x.y.z, id device-n) about\n"
        "every 400 ms, N updater coroutines each record a heartbeat for a random known device\n"
        "about every 250 ms, a monitor logs the cache statistics every 2 s, and a collection\n"
        "task runs collect_entries_with_high_heartbeats, collect_entries_newer_than,\n"
        "collect_entries_by_ip_pattern and collect_entries_in_subnet every 2 s while the others\n"
        "write, checking each result. At the end, the coroutines are cancelled and waited for\n"
        "(at most 2 s), and a report checks that their own counts agree with the cache.",
    .default_duration = 25s,
    .max_workers = 1'000'000,
    .has_io_threads = true,
    .has_metrics_port = true,
};

constexpr auto producer_period = 400ms;
constexpr auto updater_period = 250ms;
constexpr auto monitor_period = 2s;
constexpr auto collector_period = 2s;
constexpr auto shutdown_timeout = 2s;
constexpr std::uint16_t device_port = 8080;

// Logs the statistics line every `period`.
asio::awaitable<void> monitor(std::stop_token stop, const Cache& cache, nanoseconds period) {
  demo::Pulse pulse;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::error_code cancelled;
  for (demo::Ticker ticker(period);;) {
    co_await demo::sleep_until(timer, ticker.next(), cancelled);
    if (cancelled || stop.stop_requested()) co_return;
    spdlog::info("{}", pulse.line(cache.get_cache_stats()));
  }
}

// What the collection task saw. Written by that task only; read after it has ended.
struct Collections {
  std::uint64_t runs = 0;
  std::uint64_t violations = 0;   // results holding an entry their query should not have matched
  std::uint64_t regressions = 0;  // results smaller than the previous run's, though they can't be
  std::size_t busy = 0, recent = 0, by_pattern = 0, in_subnet = 0;  // the last run's sizes
};

constexpr std::uint64_t busy_heartbeats = 5;
constexpr std::string_view ip_pattern = "10.0.1.";  // devices 256 to 511
constexpr std::string_view subnet = "10.0.0.0/24";  // devices 1 to 255

// Runs the four collect calls every `period` while the producers and updaters write, and checks
// every entry of every result against its query. Devices are never removed and heartbeat counts
// only grow, so the busy, pattern and subnet results can only grow from one run to the next,
// even though each is weakly consistent (a shard at a time).
asio::awaitable<void> collect(std::stop_token stop, const Cache& cache, const demo::Fleet& fleet,
                              nanoseconds period, Collections& seen) {
  const devcache::IpNetwork network = devcache::IpNetwork::parse(subnet);
  const nanoseconds recent_window = period / 2;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::error_code cancelled;
  for (demo::Ticker ticker(period);;) {
    co_await demo::sleep_until(timer, ticker.next(), cancelled);
    if (cancelled || stop.stop_requested()) co_return;

    const auto before = demo::Clock::now();
    const auto busy = cache.collect_entries_with_high_heartbeats(busy_heartbeats);
    const auto recent = cache.collect_entries_newer_than(recent_window);
    const auto by_pattern = cache.collect_entries_by_ip_pattern(ip_pattern);
    const auto in_subnet = cache.collect_entries_in_subnet(network);

    const auto count_violations = [&](const auto& entries, auto&& matches) {
      for (const devcache::DeviceEntry& e : entries) {
        if (!matches(e) || !fleet.produced(e)) ++seen.violations;
      }
    };
    count_violations(busy, [](const auto& e) { return e.heartbeat_count >= busy_heartbeats; });
    count_violations(recent, [&](const auto& e) { return before - e.last_seen < recent_window; });
    count_violations(by_pattern,
                     [](const auto& e) { return e.ip.to_string().starts_with(ip_pattern); });
    count_violations(in_subnet, [&](const auto& e) { return network.contains(e.ip); });
    if (busy.size() < seen.busy || by_pattern.size() < seen.by_pattern ||
        in_subnet.size() < seen.in_subnet) {
      ++seen.regressions;
    }
    ++seen.runs;
    seen.busy = busy.size();
    seen.recent = recent.size();
    seen.by_pattern = by_pattern.size();
    seen.in_subnet = in_subnet.size();
    spdlog::debug(
        "collected {} with >= {} heartbeats, {} seen in the last {:.3f} s, {} with IP "
        "{}*, {} in {}",
        busy.size(), busy_heartbeats, recent.size(), demo::seconds(recent_window),
        by_pattern.size(), ip_pattern, in_subnet.size(), subnet);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const demo::Options options = demo::parse_command_line(argc, argv, about);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, the counterpart of RUST_LOG; info if unset
  demo::StopSignal stop_signal;    // from here on, Ctrl-C and SIGTERM stop the demo cleanly

  // Everything the coroutines refer to is declared before the io_context, so it outlives them.
  Cache cache;
  demo::Fleet fleet("coroutines", "device", 0xaa'bb'cc, "10.0.0.0/8");
  // --state-file: the previous run's devices, and saves every few seconds and at the end.
  demo::StateFile state(cache, options.state_file);
  state.restore({&fleet});
  state.start_saving();
  Collections collections;
  // --metrics-port: the cache's statistics for Prometheus, read at each scrape, on loopback only.
  // Declared after the cache, and the exposer after the collector, so the exposer's HTTP threads
  // have stopped (joined) before the collector goes, and the collector before the cache.
  std::shared_ptr<devcache::PrometheusCollector> metrics;
  std::unique_ptr<prometheus::Exposer> exposer;
  if (options.metrics_port) {
    metrics = std::make_shared<devcache::PrometheusCollector>(
        cache, prometheus::Labels{{"demo", std::string(about.name)}});
    exposer = std::make_unique<prometheus::Exposer>(
        fmt::format("127.0.0.1:{}", *options.metrics_port), 1);
    exposer->RegisterCollectable(metrics);
    const std::vector<int> ports = exposer->GetListeningPorts();
    spdlog::info("serving Prometheus metrics at http://127.0.0.1:{}/metrics",
                 ports.empty() ? 0 : ports.front());
  }
  asio::io_context io(static_cast<int>(options.io_threads));
  demo::TaskGroup tasks(io);
  demo::Timeline timeline;

  for (std::size_t i = 0; i < options.workers; ++i) {
    tasks.spawn(demo::produce_in_coroutine(tasks.stop_token(), cache, fleet,
                                           options.period(producer_period), device_port));
    tasks.spawn(demo::update_in_coroutine(tasks.stop_token(), cache, fleet,
                                          options.period(updater_period)));
  }
  tasks.spawn(monitor(tasks.stop_token(), cache, options.observer_period(monitor_period)));
  tasks.spawn(collect(tasks.stop_token(), cache, fleet, options.observer_period(collector_period),
                      collections));
  spdlog::info("{}: {} producer and {} updater coroutines on {} io thread(s), {:g} s at speed {:g}",
               about.name, options.workers, options.workers, options.io_threads,
               options.duration.count(), options.speed);

  demo::IoThreads io_threads(io, options.io_threads);  // each runs io.run()
  timeline.all_started({&fleet});

  const std::string stop_reason = stop_signal.wait(options.run_time());
  timeline.stop_requested();
  spdlog::info("stopping: {}", stop_reason);
  tasks.cancel_all();
  const bool all_ended = tasks.wait_for(shutdown_timeout);
  if (!all_ended) {
    spdlog::error("{} of {} coroutines still running {} s after the stop: stopping the io_context",
                  tasks.running(), tasks.size(), shutdown_timeout.count());
    io.stop();
  }
  io_threads.join();  // io.run() returns once no coroutine is left
  timeline.all_ended();

  demo::Report report({
      .demo = about.name,
      .workers = fmt::format("coroutines: {0} producer(s), {0} updater(s), 1 monitor, "
                             "1 collector; {1} io thread(s)",
                             options.workers, options.io_threads),
      .stop_reason = stop_reason,
      .timeline = timeline,
  });
  state.finish(report);
  report.note("collections",
              fmt::format("{} runs while the others wrote; the last found {} with >= {} "
                          "heartbeats, {} recently seen, {} with IP {}*, {} in {}",
                          collections.runs, collections.busy, busy_heartbeats, collections.recent,
                          collections.by_pattern, ip_pattern, collections.in_subnet, subnet));
  report.check(fmt::format("all {} coroutines ended within {} s of the stop", tasks.size(),
                           shutdown_timeout.count()),
               all_ended);
  report.check_equal("coroutines that failed", tasks.failed(), "none", 0);
  report.check_equal("collected entries that do not match their query", collections.violations,
                     "none", 0);
  report.check_equal("collections that lost entries", collections.regressions, "none", 0);
  return report.print(cache.get_cache_stats(), cache.get_cache_snapshot(), {&fleet});
} catch (const std::exception& e) {
  spdlog::critical("{}: {}", about.name, e.what());
  return 1;
}
