// concurrent_mixed_demo — thread workers and coroutine workers writing to one
// devcache::DeviceCache at the same time.
//
// The original said its threads demo and its tokio demo could run at once "to see cache
// interaction". Two processes cannot share an in-process cache, so this demo does what was meant
// in one process: the threads demo's workers (std::jthread, devices 00:11:22:xx:xx:xx, IPs
// 192.168.x.y, a device every 500 ms, a heartbeat every 333 ms) and the coroutine demo's workers
// (asio coroutines, devices aa:bb:cc:xx:xx:xx, IPs 10.x.y.z, every 400 ms and 250 ms) share one
// cache. A monitor thread logs, every 2 s, what the cache holds for each OUI, found with
// collect_entries_in_subnet, and checks that neither family's subnet holds the other's devices.
// The report breaks the numbers down by OUI and checks each family separately.
//
//   concurrent_mixed_demo                          # 20 s
//   concurrent_mixed_demo --duration 2 --speed 50  # the same story in 2 s
//   concurrent_mixed_demo --state-file mixed.state # run it again: it goes on from there
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <fmt/format.h>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include <devcache/device_cache.hpp>

#include "demo_support.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;
using Cache = devcache::DeviceCache<>;

constexpr demo::About about{
    .name = "concurrent_mixed_demo",
    .description =
        "Thread workers and coroutine workers share one devcache::DeviceCache at the same time.\n"
        "N producer and N updater threads work on devices 00:11:22:xx:xx:xx (IPs 192.168.x.y;\n"
        "a device every 500 ms, a heartbeat every 333 ms each), N producer and N updater\n"
        "coroutines on an asio::io_context work on devices aa:bb:cc:xx:xx:xx (IPs 10.x.y.z;\n"
        "every 400 ms and 250 ms each), and a monitor thread logs what the cache holds for each\n"
        "OUI every 2 s. At the end, a report breaks the numbers down by OUI and checks that each\n"
        "family's own counts agree with the cache.",
    .default_duration = 20s,
    .max_workers = 10'000,
    .has_io_threads = true,
};

constexpr auto thread_producer_period = 500ms;
constexpr auto thread_updater_period = 333ms;
constexpr auto coroutine_producer_period = 400ms;
constexpr auto coroutine_updater_period = 250ms;
constexpr auto monitor_period = 2s;
constexpr auto shutdown_timeout = 2s;
constexpr std::uint16_t device_port = 8080;

// ---- the monitor --------------------------------------------------------------------------------

// Logs, every `period`, the cache totals and what the cache holds in each family's subnet, and
// counts the entries found in a family's subnet that the family did not produce (there must be
// none: the two families only ever share the cache, never a key or an entry).
void monitor(std::stop_token stop, const Cache& cache, const demo::Fleet& threads,
             const demo::Fleet& coroutines, nanoseconds period, std::uint64_t& strangers) {
  demo::Pulse pulse;
  const auto describe = [&](const demo::Fleet& fleet) {
    std::uint64_t heartbeats = 0;
    const auto entries = cache.collect_entries_in_subnet(fleet.network());
    for (const devcache::DeviceEntry& e : entries) {
      heartbeats += e.heartbeat_count;
      if (!fleet.produced(e)) ++strangers;
    }
    return fmt::format("{} ({}): {} devices, {} heartbeats", demo::format_oui(fleet.oui()),
                       fleet.label(), entries.size(), heartbeats);
  };
  for (demo::Ticker ticker(period); demo::sleep_until(stop, ticker.next());) {
    const std::string line = pulse.line(cache.get_cache_stats());
    spdlog::info("{} | {} | {}", line, describe(threads), describe(coroutines));
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const demo::Options options = demo::parse_command_line(argc, argv, about);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, the counterpart of RUST_LOG; info if unset
  demo::StopSignal stop_signal;    // from here on, Ctrl-C and SIGTERM stop the demo cleanly

  // The one cache both kinds of worker write to, and what each family did with it. Declared
  // before the io_context, so that they outlive the coroutines.
  Cache cache;
  demo::Fleet thread_fleet("threads", "thread-device", 0x00'11'22, "192.168.0.0/16");
  demo::Fleet coroutine_fleet("coroutines", "coro-device", 0xaa'bb'cc, "10.0.0.0/8");
  // --state-file: the previous run's devices, and saves every few seconds and at the end.
  demo::StateFile state(cache, options.state_file);
  state.restore({&thread_fleet, &coroutine_fleet});
  state.start_saving();
  std::uint64_t strangers = 0;  // written by the monitor thread, read after it has been joined
  asio::io_context io(static_cast<int>(options.io_threads));
  demo::TaskGroup tasks(io);
  demo::Timeline timeline;

  for (std::size_t i = 0; i < options.workers; ++i) {
    tasks.spawn(demo::produce_in_coroutine(tasks.stop_token(), cache, coroutine_fleet,
                                           options.period(coroutine_producer_period), device_port));
    tasks.spawn(demo::update_in_coroutine(tasks.stop_token(), cache, coroutine_fleet,
                                          options.period(coroutine_updater_period)));
  }
  spdlog::info(
      "{}: {} producer and {} updater threads, and as many coroutines on {} io "
      "thread(s), for {:g} s at speed {:g}",
      about.name, options.workers, options.workers, options.io_threads, options.duration.count(),
      options.speed);

  demo::IoThreads io_threads(io, options.io_threads);  // each runs io.run()
  std::vector<std::jthread> workers;
  workers.reserve(2 * options.workers + 1);
  for (std::size_t i = 0; i < options.workers; ++i) {
    workers.emplace_back(demo::produce_on_thread<Cache>, std::ref(cache), std::ref(thread_fleet),
                         options.period(thread_producer_period), device_port);
    workers.emplace_back(demo::update_on_thread<Cache>, std::ref(cache), std::ref(thread_fleet),
                         options.period(thread_updater_period));
  }
  workers.emplace_back(monitor, std::cref(cache), std::cref(thread_fleet),
                       std::cref(coroutine_fleet), options.observer_period(monitor_period),
                       std::ref(strangers));
  timeline.all_started({&thread_fleet, &coroutine_fleet});

  const std::string stop_reason = stop_signal.wait(options.run_time());
  timeline.stop_requested();
  spdlog::info("stopping: {}", stop_reason);
  tasks.cancel_all();                                          // both kinds of worker at once
  for (std::jthread& worker : workers) worker.request_stop();  // wakes every sleeping thread now
  workers.clear();                                             // and joins them
  const bool all_ended = tasks.wait_for(shutdown_timeout);
  if (!all_ended) {
    spdlog::error("{} of {} coroutines still running {} s after the stop: stopping the io_context",
                  tasks.running(), tasks.size(), shutdown_timeout.count());
    io.stop();
  }
  io_threads.join();
  timeline.all_ended();

  demo::Report report({
      .demo = about.name,
      .workers = fmt::format("threads: {0} producer(s), {0} updater(s), 1 monitor; "
                             "coroutines: {0} producer(s), {0} updater(s); {1} io thread(s)",
                             options.workers, options.io_threads),
      .stop_reason = stop_reason,
      .timeline = timeline,
  });
  state.finish(report);
  report.check(fmt::format("all {} coroutines ended within {} s of the stop", tasks.size(),
                           shutdown_timeout.count()),
               all_ended);
  report.check_equal("coroutines that failed", tasks.failed(), "none", 0);
  report.check_equal("entries the monitor found in the wrong family's subnet", strangers, "none",
                     0);
  return report.print(cache.get_cache_stats(), cache.get_cache_snapshot(),
                      {&thread_fleet, &coroutine_fleet});
} catch (const std::exception& e) {
  spdlog::critical("{}: {}", about.name, e.what());
  return 1;
}
