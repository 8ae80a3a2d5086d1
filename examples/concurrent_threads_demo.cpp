// concurrent_threads_demo — devcache with plain threads, through the DeviceCacheManager facade
// (the original Rust API's names over one process-wide cache).
//
// A producer thread adds a device about every 500 ms, an updater thread records a heartbeat for a
// random known device about every 333 ms, and a monitor thread logs a statistics line every 3 s,
// for 20 s. Then every thread is stopped (a stop wakes a sleeping thread at once), and the report
// checks what the threads did against what the cache holds.
//
//   concurrent_threads_demo                          # 20 s, as the original
//   concurrent_threads_demo --duration 2 --speed 50  # the same story in 2 s
//   SPDLOG_LEVEL=debug concurrent_threads_demo       # also log every add and heartbeat
//   concurrent_threads_demo --state-file threads.state  # run it again: it goes on from there
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include <devcache/device_cache_manager.hpp>

#include "demo_support.hpp"

namespace {

using devcache::DeviceCacheManager;
using namespace std::chrono_literals;

constexpr demo::About about{
    .name = "concurrent_threads_demo",
    .description =
        "Threads share the process-wide device cache through the DeviceCacheManager facade: N\n"
        "producer threads each add a device (MAC 00:11:22:xx:xx:xx, IP 192.168.x.y, id device-n)\n"
        "about every 500 ms, N updater threads each record a heartbeat for a random known device\n"
        "about every 333 ms, and a monitor thread logs the cache statistics every 3 s. At the "
        "end,\n"
        "a report checks that the workers' own counts agree with the cache.",
    .default_duration = 20s,
    .max_workers = 10'000,
};

constexpr auto producer_period = 500ms;
constexpr auto updater_period = 333ms;
constexpr auto monitor_period = 3s;
constexpr std::uint16_t device_port = 8080;
constexpr std::uint64_t busy_heartbeats = 3;  // the monitor's "busy device" threshold

// Adds a new device every `period` once all workers are started, the first after a random part
// of a period.
void produce(std::stop_token stop, demo::StartGate& start, demo::Fleet& fleet,
             std::chrono::nanoseconds period) {
  demo::Random random = demo::make_random();
  if (!start.wait(stop)) return;
  for (demo::Ticker ticker(period, random); demo::sleep_until(stop, ticker.next());) {
    demo::Fleet::Device device = fleet.next_device();
    const devcache::AddResult result =
        DeviceCacheManager::add_device_entry(device.id, device.mac, device.ip, device_port);
    fleet.count_add(result.outcome);
    spdlog::debug("added {} {} {}: {}", device.id, device.mac, device.ip, result.outcome);
  }
}

// Records a heartbeat for a random device the producers have added, every `period`.
void update(std::stop_token stop, demo::StartGate& start, demo::Fleet& fleet,
            std::chrono::nanoseconds period) {
  demo::Random random = demo::make_random();
  if (!start.wait(stop)) return;
  for (demo::Ticker ticker(period, random); demo::sleep_until(stop, ticker.next());) {
    const std::optional<devcache::MacAddress> mac = fleet.random_known_mac(random);
    if (!mac) continue;  // no device yet
    const bool recorded = DeviceCacheManager::record_heartbeat(*mac);
    fleet.count_heartbeat(recorded);
    spdlog::debug("heartbeat {}: {}", *mac, recorded ? "recorded" : "device not added yet");
  }
}

// Logs the statistics line every `period`, with two of the original collect calls.
void monitor(std::stop_token stop, std::chrono::nanoseconds period) {
  demo::Pulse pulse;
  for (demo::Ticker ticker(period); demo::sleep_until(stop, ticker.next());) {
    const devcache::CacheStats stats = DeviceCacheManager::get_cache_stats();
    const std::size_t busy =
        DeviceCacheManager::collect_entries_with_high_heartbeats(busy_heartbeats).size();
    const std::size_t recent = DeviceCacheManager::collect_entries_newer_than(1).size();
    spdlog::info("{} | {} with >= {} heartbeats, {} seen in the last second", pulse.line(stats),
                 busy, busy_heartbeats, recent);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const demo::Options options = demo::parse_command_line(argc, argv, about);
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug, the counterpart of RUST_LOG; info if unset
  demo::StopSignal stop_signal;    // from here on, Ctrl-C and SIGTERM stop the demo cleanly

  demo::Fleet fleet("threads", "device", 0x00'11'22, "192.168.0.0/16");
  // --state-file: the previous run's devices, and saves every few seconds and at the end.
  demo::StateFile state(DeviceCacheManager::instance(), options.state_file);
  state.restore({&fleet});
  state.start_saving();
  spdlog::info("{}: {} producer and {} updater threads for {:g} s at speed {:g}", about.name,
               options.workers, options.workers, options.duration.count(), options.speed);

  demo::Timeline timeline;
  demo::StartGate start;  // holds the workers back until all of them exist
  std::vector<std::jthread> workers;
  workers.reserve(2 * options.workers + 1);
  for (std::size_t i = 0; i < options.workers; ++i) {
    workers.emplace_back(produce, std::ref(start), std::ref(fleet),
                         options.period(producer_period));
    workers.emplace_back(update, std::ref(start), std::ref(fleet), options.period(updater_period));
  }
  workers.emplace_back(monitor, options.observer_period(monitor_period));
  start.open();
  timeline.all_started({&fleet});

  const std::string stop_reason = stop_signal.wait(options.run_time());
  timeline.stop_requested();
  spdlog::info("stopping: {}", stop_reason);
  for (std::jthread& worker : workers) worker.request_stop();  // wakes every sleeping thread now
  workers.clear();                                             // and joins them
  timeline.all_ended();

  demo::Report report({
      .demo = about.name,
      .workers =
          fmt::format("threads: {0} producer(s), {0} updater(s), 1 monitor", options.workers),
      .stop_reason = stop_reason,
      .timeline = timeline,
  });
  state.finish(report);
  return report.print(DeviceCacheManager::get_cache_stats(),
                      DeviceCacheManager::get_cache_snapshot(), {&fleet});
} catch (const std::exception& e) {
  spdlog::critical("{}: {}", about.name, e.what());
  return 1;
}
