// examples/demo_support.hpp — the plumbing devcache's three demos share: command-line flags,
// stopping on Ctrl-C / SIGTERM or at the end of the run, simulated device fleets, a group of
// cancellable coroutines, the monitor's live line, the final report with its check that the
// numbers add up, and the state file (--state-file) that lets a restarted demo go on.
//
// The demos hold the story (who writes what to the cache, and when); this header holds what is
// the same in all three, once. It is demo code, not library code: it logs, prints and may exit.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <devcache/device_cache.hpp>
#include <devcache/device_entry.hpp>
#include <devcache/ip_address.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/persistence.hpp>

namespace demo {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

/// Seconds as a double, for printing and rates.
inline double seconds(nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// =================================================================================================
// Command line

/// What --help says about a demo, and the limits of its flags.
struct About {
  std::string_view name;
  std::string_view description;  ///< printed by --help, already wrapped
  std::chrono::seconds default_duration;
  std::size_t max_workers;        ///< the largest --workers accepted
  bool has_io_threads = false;    ///< whether the demo runs an asio::io_context (--io-threads)
  bool has_metrics_port = false;  ///< whether the demo serves Prometheus metrics (--metrics-port)
};

/// The parsed flags.
struct Options {
  std::chrono::duration<double> duration{};  ///< --duration, in seconds
  double speed = 1.0;                        ///< --speed: every period is divided by it
  std::size_t workers = 1;                   ///< --workers: producers, and as many updaters
  unsigned io_threads = 1;                   ///< --io-threads
  /// --metrics-port: serve the cache's statistics as Prometheus metrics on 127.0.0.1:PORT/metrics
  /// (0: a free port chosen by the system, which the demo logs).
  std::optional<std::uint16_t> metrics_port;
  /// --state-file: restore the cache from this file at start, save it there periodically and at
  /// the end (empty: no state file).
  std::string state_file;

  /// How long the demo runs unless a signal stops it first.
  [[nodiscard]] nanoseconds run_time() const {
    return std::chrono::duration_cast<nanoseconds>(duration);
  }
  /// A worker's base period (500 ms for a producer, say) divided by --speed; at least 1 ns.
  [[nodiscard]] nanoseconds period(nanoseconds base) const {
    const double scaled = static_cast<double>(base.count()) / speed;
    return nanoseconds(std::max<nanoseconds::rep>(1, std::llround(scaled)));
  }
  /// An observer's period (a monitor's or a collector's: they read the whole cache) divided by
  /// --speed, but at least 100 ms: at high speed, whole-cache scans would otherwise cost more
  /// than the work they observe, and distort any measurement of it.
  [[nodiscard]] nanoseconds observer_period(nanoseconds base) const {
    return std::max<nanoseconds>(period(base), std::chrono::milliseconds(100));
  }
};

inline constexpr double max_duration_seconds = 7 * 24 * 3600.0;
inline constexpr double min_speed = 0.001;
inline constexpr double max_speed = 10'000.0;
inline constexpr unsigned max_io_threads = 256;
/// How often --state-file is saved while the demo runs, whatever --speed says (saving is upkeep,
/// not part of the simulated story).
inline constexpr std::chrono::seconds state_save_period{5};

/// The default for --io-threads: one per core.
inline unsigned default_io_threads() { return std::max(1U, std::thread::hardware_concurrency()); }

inline void print_help(const About& about) {
  fmt::print(
      "Usage: {} [--duration SECONDS] [--speed FACTOR] [--workers N]{}{} [--state-file PATH]"
      "\n\n{}\n\n",
      about.name, about.has_io_threads ? " [--io-threads N]" : "",
      about.has_metrics_port ? " [--metrics-port PORT]" : "", about.description);
  fmt::print(
      "Options:\n"
      "  --duration SECONDS  How long to run; fractional values are allowed (default: {} s).\n"
      "                      Ctrl-C (SIGINT) or SIGTERM stops the demo earlier; the report is\n"
      "                      printed either way.\n"
      "  --speed FACTOR      Multiplies every rate, i.e. divides every period: --speed 100 turns\n"
      "                      a 500 ms period into 5 ms (default: 1; {} to {}). The monitor's\n"
      "                      (and collector's) period does not go below 100 ms.\n"
      "  --workers N         Starts N producers and N updaters (default: 1; 1 to {}), to\n"
      "                      measure many workers rather than guess: see examples/README.md.\n",
      about.default_duration.count(), min_speed, max_speed, about.max_workers);
  if (about.has_io_threads) {
    fmt::print(
        "  --io-threads N      Threads that run the asio::io_context (default: {}, one per core;\n"
        "                      1 to {}).\n",
        default_io_threads(), max_io_threads);
  }
  if (about.has_metrics_port) {
    fmt::print(
        "  --metrics-port PORT Serves the cache's statistics as Prometheus metrics at\n"
        "                      http://127.0.0.1:PORT/metrics (loopback only) while the demo runs;\n"
        "                      0 picks a free port and logs it (default: no metrics server).\n");
  }
  fmt::print(
      "  --state-file PATH   Restores the cache from PATH at start if it exists, and saves it\n"
      "                      there every {} s and at the end (atomically: a crash leaves the\n"
      "                      previous save or the new one), so a restarted demo goes on with\n"
      "                      its devices. Use one file per demo.\n"
      "  -h, --help          Prints this help and exits.\n\n"
      "Flags take their value as the next argument or after '=' (--speed=50).\n\n"
      "Environment:\n"
      "  SPDLOG_LEVEL        The log level (spdlog::cfg::load_env_levels, the counterpart of\n"
      "                      RUST_LOG): trace, debug, info (the default), warn, error, off.\n\n"
      "Exit status: 0 if the report's numbers add up, 1 if they do not (or the demo failed),\n"
      "2 for a bad command line.\n",
      state_save_period.count());
}

/// Prints a command-line error naming the problem and exits with status 2.
[[noreturn]] inline void usage_error(const About& about, std::string_view message) {
  fmt::print(stderr, "{}: {}\nTry '{} --help' for more information.\n", about.name, message,
             about.name);
  std::exit(2);
}

/// The whole of `text` as a T (an integer or a finite double), or nothing.
template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc{} || stop != end || text.empty()) return std::nullopt;
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(value)) return std::nullopt;
  }
  return value;
}

/// Parses the flags described by print_help. Exits with status 0 after --help, and with status 2
/// after printing an error that names the flag and the value for anything it cannot accept.
inline Options parse_command_line(int argc, char** argv, const About& about) {
  Options options;
  options.duration = about.default_duration;
  options.io_threads = default_io_threads();
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      print_help(about);
      std::exit(0);
    }
    const std::size_t equals = arg.find('=');
    const std::string_view flag = arg.substr(0, equals);
    const bool known = flag == "--duration" || flag == "--speed" || flag == "--workers" ||
                       (flag == "--io-threads" && about.has_io_threads) ||
                       (flag == "--metrics-port" && about.has_metrics_port) ||
                       flag == "--state-file";
    if (!known) usage_error(about, fmt::format("unknown argument '{}'", arg));
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      usage_error(about, fmt::format("{} needs a value", flag));
    }
    const auto invalid = [&](std::string_view expected) {
      usage_error(about,
                  fmt::format("invalid value '{}' for {}: expected {}", value, flag, expected));
    };
    if (flag == "--duration") {
      const auto s = parse_number<double>(value);
      if (!s || *s <= 0 || *s > max_duration_seconds) {
        invalid(
            fmt::format("a number of seconds greater than 0 and at most {}", max_duration_seconds));
      }
      options.duration = std::chrono::duration<double>(*s);
    } else if (flag == "--speed") {
      const auto x = parse_number<double>(value);
      if (!x || *x < min_speed || *x > max_speed) {
        invalid(fmt::format("a number from {} to {}", min_speed, max_speed));
      }
      options.speed = *x;
    } else if (flag == "--workers") {
      const auto n = parse_number<std::size_t>(value);
      if (!n || *n < 1 || *n > about.max_workers) {
        invalid(fmt::format("a whole number from 1 to {}", about.max_workers));
      }
      options.workers = *n;
    } else if (flag == "--metrics-port") {
      const auto port = parse_number<std::uint16_t>(value);
      if (!port) invalid("a port number from 0 to 65535");
      options.metrics_port = *port;
    } else if (flag == "--state-file") {
      if (value.empty()) invalid("a file path");
      options.state_file = value;
    } else {
      const auto n = parse_number<unsigned>(value);
      if (!n || *n < 1 || *n > max_io_threads) {
        invalid(fmt::format("a whole number from 1 to {}", max_io_threads));
      }
      options.io_threads = *n;
    }
  }
  return options;
}

// =================================================================================================
// Stopping

/// Catches SIGINT (Ctrl-C) and SIGTERM from its construction on, with an asio::signal_set on a
/// private io_context, so that a signal ends the demo with its report instead of killing it.
/// Construct it first thing in main; a signal that arrives before wait() is kept for it, and one
/// that arrives after wait() returned is ignored (the demo is stopping anyway).
class StopSignal {
 public:
  /// Blocks until SIGINT or SIGTERM arrives or `run_time` has passed, and says which.
  /// Call it once, from one thread.
  std::string wait(nanoseconds run_time) {
    std::string reason;
    asio::steady_timer deadline(io_, run_time);
    signals_.async_wait([&](const std::error_code& error, int signal_number) {
      if (error || !reason.empty()) return;
      reason = signal_number == SIGINT ? "SIGINT (Ctrl-C)" : "SIGTERM";
      deadline.cancel();
    });
    deadline.async_wait([&](const std::error_code& error) {
      if (error || !reason.empty()) return;
      reason = fmt::format("the {:g} s run ended", seconds(run_time));
      signals_.cancel();
    });
    io_.run();  // until both handlers have run: one fired, the other was cancelled
    return reason;
  }

 private:
  asio::io_context io_{1};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
};

// =================================================================================================
// Pacing

/// A worker's random engine: std::minstd_rand, 8 bytes, cheap enough for 100,000 coroutines.
using Random = std::minstd_rand;

/// A random engine seeded differently for every call and every run.
inline Random make_random() {
  static const std::uint32_t base = std::random_device{}();
  static std::atomic<std::uint32_t> calls{0};
  return Random(base ^ (calls.fetch_add(1, std::memory_order_relaxed) * 2654435761U));
}

/// A worker's schedule: one tick every `period`, at a fixed rate (a tick that comes late does
/// not delay the ones after it), except that a worker more than a period behind skips the ticks
/// it missed instead of catching up in a burst: a worker never runs faster than its rate.
class Ticker {
 public:
  /// The first tick one period from now.
  explicit Ticker(nanoseconds period) : period_(period), next_(Clock::now() + period) {}
  /// The first tick at a random point of the first period, so that many workers started
  /// together do not all tick in step.
  Ticker(nanoseconds period, Random& random)
      : period_(period),
        next_(Clock::now() + nanoseconds(std::uniform_int_distribution<nanoseconds::rep>(
                                 0, period.count() - 1)(random))) {}

  /// The time of the next tick; each call moves on by one period.
  Clock::time_point next() {
    const Clock::time_point now = Clock::now();
    if (next_ < now - period_) next_ = now;  // more than a period late: skip the missed ticks
    const Clock::time_point tick = next_;
    next_ += period_;
    return tick;
  }

 private:
  nanoseconds period_;
  Clock::time_point next_;
};

/// Sleeps until `time` or until `stop` is requested, whichever comes first, and returns whether
/// the worker should go on (false once a stop was requested). The wait is a
/// condition_variable_any wait that takes the stop_token, so a stop wakes a sleeping thread at
/// once: no thread sleeps through shutdown.
inline bool sleep_until(std::stop_token stop, Clock::time_point time) {
  thread_local std::mutex mutex;  // each thread sleeps on its own: nothing is shared but the token
  thread_local std::condition_variable_any wakeup;
  std::unique_lock<std::mutex> lock(mutex);
  wakeup.wait_until(lock, stop, time, [] { return false; });
  return !stop.stop_requested();
}

/// Holds threads back until open(). Starting 2,000 threads takes a fraction of a second when none
/// of them runs yet, and can take many seconds when each new one must compete for the cores with
/// those already working; held back, they also all start ticking together.
class StartGate {
 public:
  /// Lets every waiting thread go. From any thread.
  void open() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  /// Waits until the gate opens or `stop` is requested; returns whether it opened.
  bool wait(std::stop_token stop) {
    std::unique_lock<std::mutex> lock(mutex_);
    return opened_.wait(lock, stop, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable_any opened_;
  bool open_ = false;
};

/// The coroutines' sleep_until: the wait for `timer` to expire at `time`, to co_await. When
/// TaskGroup::cancel_all cancels it, the wait ends at once and sets `cancelled`
/// (asio::error::operation_aborted) instead of throwing: 200,000 coroutines told to stop at once
/// should not throw 200,000 exceptions. Not a coroutine itself, so it costs no frame of its own.
inline asio::awaitable<void> sleep_until(asio::steady_timer& timer, Clock::time_point time,
                                         std::error_code& cancelled) {
  timer.expires_at(time);
  return timer.async_wait(asio::redirect_error(asio::use_awaitable, cancelled));
}

/// Coroutines that can be stopped together and waited for with a time limit.
///
/// Stopping takes two things. A coroutine checks stop_token() after each wait, like a thread
/// worker: that ends the ones that are awake or already queued to run (under overload, all of
/// them). And a sleeping coroutine must be woken: spawn() starts each coroutine with an
/// asio::cancellation_signal bound to its completion handler, on one of a fixed set of strands
/// (round-robin). A cancellation signal is not thread-safe, but a coroutine only ever runs on its
/// strand, so cancel_all() posts one job to each strand that emits the signals of that strand's
/// coroutines; it may be called from any thread, and costs one post per strand however many
/// coroutines there are. Cancelled, the timer wait a coroutine is suspended in ends at once with
/// asio::error::operation_aborted (sleep_until sets it), and one it starts afterwards throws it.
///
/// Declare the TaskGroup after the io_context: its strands must be gone before the io_context
/// goes. Before the TaskGroup goes, either every coroutine has ended (wait_for returned true) or
/// the io_context has been stopped and its threads joined, so no completion handler, which
/// refers to the TaskGroup, can run any more.
class TaskGroup {
 public:
  /// Strands to spread the coroutines over: enough to keep every io thread busy.
  static constexpr std::size_t strand_count = 64;

  explicit TaskGroup(asio::io_context& io) {
    for (std::size_t i = 0; i < strand_count; ++i) shards_.emplace_back(asio::make_strand(io));
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() = default;

  /// Starts `task`. Not concurrently with spawn() or cancel_all().
  void spawn(asio::awaitable<void> task) {
    Shard& shard = shards_[spawned_++ % shards_.size()];
    asio::cancellation_signal& cancel = shard.cancels.emplace_back();
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      ++running_;
    }
    asio::co_spawn(shard.strand, std::move(task),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [this](std::exception_ptr error) { finished(error); }));
  }

  /// The token every coroutine should check after each wait: cancel_all requests the stop.
  [[nodiscard]] std::stop_token stop_token() const { return stop_.get_token(); }

  /// Asks every coroutine to stop: requests the stop, then cancels every coroutine's pending
  /// wait (terminal cancellation), which ends a sleeping one at once. Returns at once.
  void cancel_all() {
    stop_.request_stop();  // a coroutine already queued to run sees this on waking up
    for (Shard& shard : shards_) {
      asio::post(shard.strand, [&shard] {
        for (asio::cancellation_signal& cancel : shard.cancels) {
          cancel.emit(asio::cancellation_type::terminal);  // no-op for a coroutine that ended
        }
      });
    }
  }

  /// Waits until every coroutine has ended, at most `timeout`; returns whether they all have.
  bool wait_for(nanoseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return all_done_.wait_for(lock, timeout, [this] { return running_ == 0; });
  }

  /// Coroutines spawned.
  [[nodiscard]] std::size_t size() const { return spawned_; }
  /// Coroutines that have not ended yet.
  [[nodiscard]] std::size_t running() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return running_;
  }
  /// Coroutines that ended with an exception other than their cancellation.
  [[nodiscard]] std::size_t failed() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return failed_;
  }

 private:
  struct Shard {
    explicit Shard(asio::strand<asio::io_context::executor_type> s) : strand(std::move(s)) {}
    asio::strand<asio::io_context::executor_type> strand;
    std::deque<asio::cancellation_signal> cancels;  // a deque: a signal never moves
  };

  void finished(const std::exception_ptr& error) {
    bool failed = false;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::system_error& e) {
        failed = e.code() != asio::error::operation_aborted;
        if (failed) spdlog::error("a coroutine failed: {}", e.what());
      } catch (const std::exception& e) {
        failed = true;
        spdlog::error("a coroutine failed: {}", e.what());
      } catch (...) {
        failed = true;
        spdlog::error("a coroutine failed with an unknown exception");
      }
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    failed_ += failed ? 1 : 0;
    if (--running_ == 0) all_done_.notify_all();
  }

  std::stop_source stop_;
  std::deque<Shard> shards_;  // made by the constructor only: cancel_all's jobs refer to them
  std::size_t spawned_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable all_done_;
  std::size_t running_ = 0;
  std::size_t failed_ = 0;
};

/// Threads running an io_context's run(). join() waits until run() returns by itself (no work
/// left); if join() was not called, the destructor stops the io_context first, so that an
/// exception on the way out cannot leave main waiting for coroutines forever.
class IoThreads {
 public:
  IoThreads(asio::io_context& io, unsigned count) : io_(io) {
    threads_.reserve(count);
    for (unsigned i = 0; i < count; ++i) threads_.emplace_back([&io] { io.run(); });
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  ~IoThreads() {
    if (!threads_.empty()) io_.stop();
  }  // the jthreads join after this

  void join() { threads_.clear(); }

 private:
  asio::io_context& io_;
  std::vector<std::jthread> threads_;
};

// =================================================================================================
// Simulated devices

/// "aa:bb:cc" for the OUI 0xaabbcc.
inline std::string format_oui(std::uint32_t oui) {
  return fmt::format("{:02x}:{:02x}:{:02x}", (oui >> 16) & 0xffU, (oui >> 8) & 0xffU, oui & 0xffU);
}

/// A family of simulated devices with one OUI, and the tally of what the workers did with them.
/// Device n (n = 1, 2, ...) is "<id_prefix>-n", has the MAC <oui>:xx:xx:xx with xx:xx:xx = n
/// and the IPv4 address `network` + n (wrapping within the network). The report checks the
/// cache against the tally. Thread-safety: every member is safe from any thread.
class Fleet {
 public:
  struct Device {
    std::string id;
    devcache::MacAddress mac;
    devcache::IpAddress ip;
  };

  /// `label` names the fleet in the report ("threads"); `network` is an IPv4 CIDR block.
  Fleet(std::string label, std::string id_prefix, std::uint32_t oui, std::string_view network)
      : label_(std::move(label)),
        id_prefix_(std::move(id_prefix)),
        oui_(oui),
        network_(devcache::IpNetwork::parse(network)) {}

  /// The next new device (a counter shared by all the fleet's producers).
  Device next_device() { return device(issued_.fetch_add(1, std::memory_order_relaxed) + 1); }

  /// The MAC of a device next_device() has handed out, chosen uniformly at random; nothing before
  /// the first. Its producer may still be adding it, in which case a heartbeat for it misses.
  std::optional<devcache::MacAddress> random_known_mac(Random& random) const {
    const std::uint64_t issued = issued_.load(std::memory_order_relaxed);
    if (issued == 0) return std::nullopt;
    return mac_of(std::uniform_int_distribution<std::uint64_t>(1, issued)(random));
  }

  /// Goes on from a previous run: counts the fleet's devices among `entries` (the cache just
  /// restored from a state file) with their heartbeats, and makes next_device() continue after the
  /// highest of them. Call it before any worker starts.
  void resume(const std::vector<devcache::DeviceEntry>& entries) {
    std::uint64_t highest = issued_.load(std::memory_order_relaxed);
    for (const devcache::DeviceEntry& e : entries) {
      if (!produced(e)) continue;
      ++restored_.devices;
      restored_.heartbeats += e.heartbeat_count;
      highest = std::max<std::uint64_t>(highest, e.mac.to_u64() & 0xff'ffffU);
    }
    issued_.store(highest, std::memory_order_relaxed);
  }

  /// Counts what add_device_entry did with one of the fleet's devices.
  void count_add(devcache::AddOutcome outcome) {
    switch (outcome) {
      case devcache::AddOutcome::inserted:
        adds_.inserted.fetch_add(1, std::memory_order_relaxed);
        break;
      case devcache::AddOutcome::already_present:
        adds_.already_present.fetch_add(1, std::memory_order_relaxed);
        break;
      case devcache::AddOutcome::refused_full:
        adds_.refused.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }

  /// Counts one record_heartbeat call: `recorded` is what it returned (the device was present).
  void count_heartbeat(bool recorded) {
    (recorded ? beats_.recorded : beats_.missed).fetch_add(1, std::memory_order_relaxed);
  }

  /// Whether `entry` is exactly what this fleet's producer stored for its MAC (id and IP).
  [[nodiscard]] bool produced(const devcache::DeviceEntry& entry) const {
    const Device expected = device(entry.mac.to_u64() & 0xff'ffffU);
    return entry.mac.oui() == oui_ && entry.device_id == expected.id && entry.ip == expected.ip;
  }

  [[nodiscard]] const std::string& label() const { return label_; }
  [[nodiscard]] std::uint32_t oui() const { return oui_; }
  [[nodiscard]] const devcache::IpNetwork& network() const { return network_; }
  [[nodiscard]] std::uint64_t inserted() const { return load(adds_.inserted); }
  [[nodiscard]] std::uint64_t already_present() const { return load(adds_.already_present); }
  [[nodiscard]] std::uint64_t refused() const { return load(adds_.refused); }
  [[nodiscard]] std::uint64_t recorded() const { return load(beats_.recorded); }
  [[nodiscard]] std::uint64_t missed() const { return load(beats_.missed); }
  [[nodiscard]] std::uint64_t sent() const { return recorded() + missed(); }
  /// The fleet's devices, and their heartbeats, restored from a state file (resume).
  [[nodiscard]] std::uint64_t restored() const { return restored_.devices; }
  [[nodiscard]] std::uint64_t restored_heartbeats() const { return restored_.heartbeats; }

 private:
  static std::uint64_t load(const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  }

  [[nodiscard]] devcache::MacAddress mac_of(std::uint64_t n) const {
    return devcache::MacAddress::from_u64((std::uint64_t{oui_} << 24) | (n & 0xff'ffffU));
  }

  [[nodiscard]] Device device(std::uint64_t n) const {
    std::uint32_t base = 0;
    for (const std::uint8_t byte : network_.address().bytes()) base = (base << 8) | byte;
    const std::size_t host_bits = 32 - network_.prefix_length();
    const std::uint32_t host_mask =
        host_bits == 32 ? ~0U : static_cast<std::uint32_t>((1ULL << host_bits) - 1);
    return Device{fmt::format("{}-{}", id_prefix_, n), mac_of(n),
                  devcache::IpAddress::from_v4(base | (static_cast<std::uint32_t>(n) & host_mask))};
  }

  // Producers and updaters count on different cache lines.
  struct alignas(64) AddCounts {
    std::atomic<std::uint64_t> inserted{0};
    std::atomic<std::uint64_t> already_present{0};
    std::atomic<std::uint64_t> refused{0};
  };
  struct alignas(64) HeartbeatCounts {
    std::atomic<std::uint64_t> recorded{0};
    std::atomic<std::uint64_t> missed{0};
  };

  std::string label_;
  std::string id_prefix_;
  std::uint32_t oui_;
  devcache::IpNetwork network_;
  alignas(64) std::atomic<std::uint64_t> issued_{0};
  AddCounts adds_;
  HeartbeatCounts beats_;
  struct {
    std::uint64_t devices = 0;
    std::uint64_t heartbeats = 0;
  } restored_;  // written by resume() before the workers start, read after they end
};

// ---- producer and updater workers on a cache instance (the coroutine and mixed demos) ----------

/// A producer's step: adds the fleet's next device (on `port`) and counts the outcome.
template <class Cache>
void add_next_device(Cache& cache, Fleet& fleet, std::uint16_t port) {
  Fleet::Device device = fleet.next_device();
  fleet.count_add(
      cache.add_device_entry(std::move(device.id), device.mac, device.ip, port).outcome);
}

/// An updater's step: records a heartbeat for a random device the fleet has added, if any.
template <class Cache>
void heartbeat_random_device(Cache& cache, Fleet& fleet, Random& random) {
  if (const std::optional<devcache::MacAddress> mac = fleet.random_known_mac(random)) {
    fleet.count_heartbeat(cache.record_heartbeat(*mac));
  }
}

/// Calls step(random) every `period` (the first after a random part of it) on this thread until
/// `stop` is requested. The producer and updater threads are this loop around their step.
template <class Step>
void every_period_on_thread(std::stop_token stop, nanoseconds period, Step step) {
  Random random = make_random();
  for (Ticker ticker(period, random); sleep_until(stop, ticker.next());) step(random);
}

/// The coroutine twin of every_period_on_thread: step(random) every `period` until
/// TaskGroup::cancel_all cancels it or `stop` is requested. `step` is moved into the frame.
template <class Step>
asio::awaitable<void> every_period_in_coroutine(std::stop_token stop, nanoseconds period,
                                                Step step) {
  Random random = make_random();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::error_code cancelled;
  for (Ticker ticker(period, random);;) {
    co_await sleep_until(timer, ticker.next(), cancelled);
    if (cancelled || stop.stop_requested()) co_return;
    step(random);
  }
}

/// A producer thread: add_next_device every `period` until `stop` is requested.
template <class Cache>
void produce_on_thread(std::stop_token stop, Cache& cache, Fleet& fleet, nanoseconds period,
                       std::uint16_t port) {
  every_period_on_thread(std::move(stop), period,
                         [&cache, &fleet, port](Random&) { add_next_device(cache, fleet, port); });
}

/// An updater thread: heartbeat_random_device every `period` until `stop` is requested.
template <class Cache>
void update_on_thread(std::stop_token stop, Cache& cache, Fleet& fleet, nanoseconds period) {
  every_period_on_thread(std::move(stop), period, [&cache, &fleet](Random& random) {
    heartbeat_random_device(cache, fleet, random);
  });
}

/// A producer coroutine: add_next_device every `period` until cancelled or stopped.
template <class Cache>
asio::awaitable<void> produce_in_coroutine(std::stop_token stop, Cache& cache, Fleet& fleet,
                                           nanoseconds period, std::uint16_t port) {
  return every_period_in_coroutine(std::move(stop), period, [&cache, &fleet, port](Random&) {
    add_next_device(cache, fleet, port);
  });
}

/// An updater coroutine: heartbeat_random_device every `period` until cancelled or stopped.
template <class Cache>
asio::awaitable<void> update_in_coroutine(std::stop_token stop, Cache& cache, Fleet& fleet,
                                          nanoseconds period) {
  return every_period_in_coroutine(std::move(stop), period, [&cache, &fleet](Random& random) {
    heartbeat_random_device(cache, fleet, random);
  });
}

// =================================================================================================
// The monitor's live line

/// Formats the monitor's line: cache totals, and their rates since the previous line.
class Pulse {
 public:
  std::string line(const devcache::CacheStats& stats) {
    const Clock::time_point now = Clock::now();
    const double interval = std::max(seconds(now - last_), 1e-9);
    std::string text = fmt::format(
        "t={:.1f}s devices={} (+{:.0f}/s) heartbeats={} (+{:.0f}/s)", seconds(now - start_),
        stats.entries, static_cast<double>(stats.adds - last_adds_) / interval, stats.heartbeats,
        static_cast<double>(stats.heartbeats - last_heartbeats_) / interval);
    last_ = now;
    last_adds_ = stats.adds;
    last_heartbeats_ = stats.heartbeats;
    return text;
  }

 private:
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = start_;
  std::uint64_t last_adds_ = 0;
  std::uint64_t last_heartbeats_ = 0;
};

// =================================================================================================
// The report

/// The peak resident set size of this process in KiB (VmHWM in /proc/self/status), if known.
inline std::optional<std::uint64_t> peak_memory_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("VmHWM:")) continue;
    const std::size_t first = line.find_first_of("0123456789");
    if (first == std::string::npos) return std::nullopt;
    const std::size_t last = line.find_first_not_of("0123456789", first);
    return parse_number<std::uint64_t>(std::string_view(line).substr(first, last - first));
  }
  return std::nullopt;
}

/// The moments of a run, marked by main as they happen: the workers are being started (at
/// construction), all of them are running, the stop is requested, all of them have ended. The
/// throughput is measured between the second and the third, over what the fleets counted then.
class Timeline {
 public:
  Timeline() = default;

  /// Marks that every worker is running, and what `fleets` had counted by then.
  void all_started(std::initializer_list<const Fleet*> fleets) {
    started_ = Clock::now();
    for (const Fleet* f : fleets) {
      adds_at_start_ += f->inserted();
      heartbeats_at_start_ += f->recorded();
    }
  }
  void stop_requested() { stop_requested_ = Clock::now(); }
  void all_ended() { ended_ = Clock::now(); }

  [[nodiscard]] nanoseconds starting() const { return started_ - starting_; }
  [[nodiscard]] nanoseconds running() const { return stop_requested_ - started_; }
  [[nodiscard]] nanoseconds stopping() const { return ended_ - stop_requested_; }
  [[nodiscard]] std::uint64_t adds_at_start() const { return adds_at_start_; }
  [[nodiscard]] std::uint64_t heartbeats_at_start() const { return heartbeats_at_start_; }

 private:
  Clock::time_point starting_ = Clock::now();
  Clock::time_point started_ = starting_;
  Clock::time_point stop_requested_ = starting_;
  Clock::time_point ended_ = starting_;
  std::uint64_t adds_at_start_ = 0;
  std::uint64_t heartbeats_at_start_ = 0;
};

/// How a run went, for the report's first lines.
struct Run {
  std::string_view demo;
  std::string workers;      ///< who ran: "threads: 2 producer(s), 2 updater(s), 1 monitor"
  std::string stop_reason;  ///< what StopSignal::wait returned
  Timeline timeline;
};

/// The report printed at the end of a demo: what the workers did, what the cache holds, a
/// heartbeat histogram, the top devices, the numbers by OUI, and the checks that they agree.
class Report {
 public:
  explicit Report(Run run) : run_(std::move(run)) {}

  /// Adds a line of the demo's own ("collections", "12 runs ...").
  void note(std::string label, std::string text) {
    notes_.emplace_back(std::move(label), std::move(text));
  }
  /// Adds a check of the demo's own.
  void check(std::string what, bool ok) { checks_.push_back({std::move(what), ok}); }
  /// Adds the check "left == right" of the demo's own, printing both names and values.
  void check_equal(std::string_view left_name, std::uint64_t left, std::string_view right_name,
                   std::uint64_t right) {
    checks_.push_back(equal(left_name, left, right_name, right));
  }

  /// Prints the report on stdout, with the standard checks for `fleets` against `stats` and
  /// `entries` (both read after every worker stopped), and returns the exit status: 0 if every
  /// check holds, 1 otherwise. Nothing in the demos removes a device, so every check is exact.
  int print(const devcache::CacheStats& stats, const std::vector<devcache::DeviceEntry>& entries,
            std::initializer_list<const Fleet*> fleets) {
    std::uint64_t inserted = 0, present = 0, refused = 0, recorded = 0, missed = 0;
    std::uint64_t restored = 0, restored_heartbeats = 0;  // from --state-file
    for (const Fleet* f : fleets) {
      inserted += f->inserted();
      present += f->already_present();
      refused += f->refused();
      recorded += f->recorded();
      missed += f->missed();
      restored += f->restored();
      restored_heartbeats += f->restored_heartbeats();
    }
    std::uint64_t held_heartbeats = 0;
    for (const devcache::DeviceEntry& e : entries) held_heartbeats += e.heartbeat_count;
    const Timeline& t = run_.timeline;
    const double running = std::max(seconds(t.running()), 1e-9);

    fmt::print("\n==== {} report ====\n", run_.demo);
    line("ran", fmt::format("{:.2f} s after {:.2f} s of starting the workers; stopped because {}; "
                            "all workers ended {:.1f} ms later",
                            seconds(t.running()), seconds(t.starting()), run_.stop_reason,
                            seconds(t.stopping()) * 1e3));
    line("workers", run_.workers);
    line("devices added",
         fmt::format("{} (already present: {}, refused: {})", inserted, present, refused));
    line("heartbeats", fmt::format("{} sent: {} recorded (device present), {} missed (device "
                                   "not added yet)",
                                   recorded + missed, recorded, missed));
    line("throughput",
         fmt::format("{:.0f} heartbeats/s, {:.0f} adds/s (while all workers ran)",
                     static_cast<double>(recorded - t.heartbeats_at_start()) / running,
                     static_cast<double>(inserted - t.adds_at_start()) / running));
    line("cpu time", cpu_time(t));
    const std::optional<std::uint64_t> peak = peak_memory_kib();
    line("peak memory",
         peak ? fmt::format("{:.1f} MiB (VmHWM {} kB)", static_cast<double>(*peak) / 1024.0, *peak)
              : std::string("unknown (no VmHWM in /proc/self/status)"));
    if (restored != 0) {
      line("restored", fmt::format("{} devices with {} heartbeats from the state file", restored,
                                   restored_heartbeats));
    }
    line("cache stats", fmt::format("{}", stats));
    for (const auto& [label, text] : notes_) line(label, text);

    print_histogram(entries);
    print_top_devices(entries);
    print_by_oui(entries, fleets);

    // The standard checks, then the demo's own.
    // Restored devices count as adds in the cache's stats, and bring their heartbeat counts.
    const bool any_restored = restored != 0;
    std::vector<Check> checks{
        equal(any_restored ? "devices added by the producers + restored"
                           : "devices added by the producers",
              inserted + restored, "adds counted by the cache", stats.adds),
        equal("adds counted by the cache", stats.adds, "devices in the cache", entries.size()),
        equal("devices in the cache", entries.size(), "entries in the cache stats", stats.entries),
        equal("adds refused (producers)", refused, "refused adds counted by the cache",
              stats.refused_adds),
        equal("heartbeats sent that hit a present device", recorded,
              "heartbeats counted by the cache", stats.heartbeats),
        equal(any_restored ? "heartbeats counted by the cache + restored"
                           : "heartbeats counted by the cache",
              stats.heartbeats + restored_heartbeats, "sum of heartbeat counts over the devices",
              held_heartbeats),
        equal("sum of heartbeat counts over the devices", held_heartbeats,
              "heartbeats held in the cache stats", stats.total_heartbeats),
        equal("devices removed, expired or evicted",
              stats.removals + stats.expirations + stats.evictions, "none", 0),
    };
    std::uint64_t strangers = 0;  // entries no fleet produced as they are
    for (const devcache::DeviceEntry& e : entries) {
      const bool ours = std::any_of(fleets.begin(), fleets.end(),
                                    [&e](const Fleet* f) { return f->produced(e); });
      strangers += ours ? 0 : 1;
    }
    checks.push_back(
        equal("devices whose id or IP does not belong to their MAC", strangers, "none", 0));
    if (fleets.size() > 1) {
      for (const Fleet* f : fleets) {
        const OuiTotals held = totals(entries, f->oui());
        const std::string oui = format_oui(f->oui());
        checks.push_back(equal(fmt::format("{} devices added (or restored) by {}", oui, f->label()),
                               f->inserted() + f->restored(),
                               fmt::format("{} devices in the cache", oui), held.devices));
        checks.push_back(
            equal(fmt::format("{} heartbeats recorded (or restored) by {}", oui, f->label()),
                  f->recorded() + f->restored_heartbeats(),
                  fmt::format("{} heartbeat counts in the cache", oui), held.heartbeats));
      }
    }
    checks.insert(checks.end(), checks_.begin(), checks_.end());

    fmt::print("\nchecks\n");
    std::size_t failed = 0;
    for (const Check& c : checks) {
      fmt::print("  {}  {}\n", c.ok ? "ok    " : "FAILED", c.what);
      failed += c.ok ? 0 : 1;
    }
    if (failed == 0) {
      fmt::print("check: numbers add up ({} checks)\n", checks.size());
    } else {
      fmt::print("check: FAILED, the numbers do not add up ({} of {} checks failed)\n", failed,
                 checks.size());
    }
    std::fflush(stdout);
    return failed == 0 ? 0 : 1;
  }

 private:
  struct Check {
    std::string what;
    bool ok;
  };
  struct OuiTotals {
    std::uint64_t devices = 0;
    std::uint64_t heartbeats = 0;
  };

  static Check equal(std::string_view left_name, std::uint64_t left, std::string_view right_name,
                     std::uint64_t right) {
    return {fmt::format("{} ({}) == {} ({})", left_name, left, right_name, right), left == right};
  }

  // The process's CPU time so far (getrusage), its share of one core over the run, and its
  // context switches: on a shared machine, CPU per operation is steadier than operations per
  // second.
  static std::string cpu_time(const Timeline& t) {
    rusage usage{};
    if (getrusage(RUSAGE_SELF, &usage) != 0) return "unknown (getrusage failed)";
    const auto to_seconds = [](const timeval& tv) {
      return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
    };
    const double user = to_seconds(usage.ru_utime);
    const double system = to_seconds(usage.ru_stime);
    const double wall = std::max(seconds(t.starting() + t.running() + t.stopping()), 1e-9);
    return fmt::format(
        "{:.2f} s user + {:.2f} s system ({:.0f}% of one core); {} voluntary and "
        "{} involuntary context switches",
        user, system, 100 * (user + system) / wall, usage.ru_nvcsw, usage.ru_nivcsw);
  }

  static void line(std::string_view label, std::string_view text) {
    fmt::print("{:<14} {}\n", label, text);
  }

  static OuiTotals totals(const std::vector<devcache::DeviceEntry>& entries, std::uint32_t oui) {
    OuiTotals t;
    for (const devcache::DeviceEntry& e : entries) {
      if (e.mac.oui() != oui) continue;
      ++t.devices;
      t.heartbeats += e.heartbeat_count;
    }
    return t;
  }

  // Heartbeat counts in at most 12 equal-width buckets, one bar each.
  static void print_histogram(const std::vector<devcache::DeviceEntry>& entries) {
    fmt::print("\nheartbeats per device ({} devices)\n", entries.size());
    if (entries.empty()) return;
    std::uint64_t max_count = 0;
    for (const devcache::DeviceEntry& e : entries)
      max_count = std::max(max_count, e.heartbeat_count);
    constexpr std::uint64_t max_buckets = 12;
    const std::uint64_t width = max_count / max_buckets + 1;
    std::vector<std::uint64_t> buckets(static_cast<std::size_t>(max_count / width + 1), 0);
    for (const devcache::DeviceEntry& e : entries) ++buckets[e.heartbeat_count / width];
    const std::uint64_t tallest = *std::max_element(buckets.begin(), buckets.end());
    std::vector<std::string> labels;
    std::size_t label_width = 0;
    for (std::uint64_t low = 0; labels.size() < buckets.size(); low += width) {
      labels.push_back(width == 1 ? fmt::format("{}", low)
                                  : fmt::format("{}-{}", low, low + width - 1));
      label_width = std::max(label_width, labels.back().size());
    }
    constexpr std::uint64_t bar_width = 50;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      const std::uint64_t bar =
          buckets[i] == 0 ? 0 : std::max<std::uint64_t>(1, buckets[i] * bar_width / tallest);
      fmt::print("  {:>{}} | {:<{}} {}\n", labels[i], label_width, std::string(bar, '#'), bar_width,
                 buckets[i]);
    }
  }

  static void print_top_devices(const std::vector<devcache::DeviceEntry>& entries) {
    constexpr std::size_t top = 5;
    std::vector<const devcache::DeviceEntry*> order;
    order.reserve(entries.size());
    for (const devcache::DeviceEntry& e : entries) order.push_back(&e);
    const auto shown = static_cast<std::ptrdiff_t>(std::min(top, order.size()));
    std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                      [](const devcache::DeviceEntry* a, const devcache::DeviceEntry* b) {
                        if (a->heartbeat_count != b->heartbeat_count)
                          return a->heartbeat_count > b->heartbeat_count;
                        return a->mac < b->mac;
                      });
    fmt::print("\ntop devices by heartbeats\n");
    const Clock::time_point now = Clock::now();
    for (std::ptrdiff_t i = 0; i < shown; ++i) {
      const devcache::DeviceEntry& e = *order[static_cast<std::size_t>(i)];
      fmt::print(
          "  {}. {:<18} {} {:<15} {:>6} heartbeats, added {:.1f} s ago, last seen {:.1f} s "
          "ago\n",
          i + 1, e.device_id, e.mac, e.ip, e.heartbeat_count, seconds(now - e.first_seen),
          seconds(now - e.last_seen));
    }
  }

  static void print_by_oui(const std::vector<devcache::DeviceEntry>& entries,
                           std::initializer_list<const Fleet*> fleets) {
    fmt::print("\n{:<10}  {:<11} {:>13} {:>9} {:>20} {:>9}\n", "by OUI", "fleet", "devices added",
               "in cache", "heartbeats recorded", "in cache");
    for (const Fleet* f : fleets) {
      const OuiTotals held = totals(entries, f->oui());
      fmt::print("  {:<8}  {:<11} {:>13} {:>9} {:>20} {:>9}\n", format_oui(f->oui()), f->label(),
                 f->inserted(), held.devices, f->recorded(), held.heartbeats);
    }
  }

  Run run_;
  std::vector<std::pair<std::string, std::string>> notes_;
  std::vector<Check> checks_;
};

// =================================================================================================
// The state file (--state-file)

/// --state-file for one cache: restore() loads the file if it exists, start_saving() saves it
/// every state_save_period on a thread of its own, and finish() stops that and saves once more,
/// so that a restarted demo goes on with its devices. Without --state-file every member does
/// nothing. Each save is devcache::save: a consistent copy of the cache (writers wait for the
/// copy, not for the disk), written atomically. Declare it after the cache: its thread must stop
/// before the cache goes.
template <class Cache>
class StateFile {
 public:
  StateFile(Cache& cache, std::string path) : cache_(cache), path_(std::move(path)) {}

  /// Loads the file into the cache if it exists, logs what it restored, and lets each fleet go on
  /// from its restored devices (Fleet::resume). A file that exists but cannot be loaded throws
  /// devcache::PersistenceError, which names the file and what is wrong with it: the demo stops
  /// rather than overwrite it.
  void restore(std::initializer_list<Fleet*> fleets) {
    if (path_.empty()) return;
    if (!std::filesystem::exists(path_)) {
      spdlog::info("state file {} does not exist yet: starting empty", path_);
      return;
    }
    const devcache::LoadReport r = devcache::load(cache_, path_);
    const auto age = std::chrono::system_clock::now() - r.saved_at;
    spdlog::info(
        "restored {} devices from {} (saved {:.1f} s ago; {} records, {} replaced, {} "
        "refused: cache full)",
        r.inserted, path_, std::chrono::duration<double>(age).count(), r.records, r.replaced,
        r.refused_full);
    const std::vector<devcache::DeviceEntry> entries = cache_.get_cache_snapshot();
    for (Fleet* f : fleets) f->resume(entries);
  }

  /// Starts saving every state_save_period until finish().
  void start_saving() {
    if (path_.empty()) return;
    saver_ = std::jthread([this](std::stop_token stop) {
      for (Ticker ticker(state_save_period); sleep_until(stop, ticker.next());) save(false);
    });
  }

  /// Stops the periodic saves, saves once more, and adds the check that every save succeeded to
  /// `report`. Call it after the workers stopped, so that the file holds what the report shows.
  void finish(Report& report) {
    if (path_.empty()) return;
    saver_ = std::jthread();  // requests the stop and joins
    const std::optional<std::size_t> devices = save(true);
    report.check(devices ? fmt::format("saved {} devices to the state file {}", *devices, path_)
                         : fmt::format("saved the state file {}", path_),
                 devices.has_value() && failures_ == 0);
    if (failures_ != 0) spdlog::error("{} periodic saves of {} failed", failures_, path_);
  }

 private:
  // One save; logs it (a periodic one at debug level) and returns how many devices it wrote.
  std::optional<std::size_t> save(bool last) {
    try {
      const devcache::SaveReport r = devcache::save(cache_, path_);
      if (last) {
        spdlog::info("saved {} devices to {} ({} bytes)", r.devices, path_, r.bytes);
      } else {
        spdlog::debug("saved {} devices to {} ({} bytes)", r.devices, path_, r.bytes);
      }
      return r.devices;
    } catch (const devcache::PersistenceError& e) {
      spdlog::error("{}", e.what());
      if (!last) ++failures_;
      return std::nullopt;
    }
  }

  Cache& cache_;
  std::string path_;
  std::atomic<std::uint64_t> failures_{0};
  std::jthread saver_;  // last: it stops first
};

}  // namespace demo
