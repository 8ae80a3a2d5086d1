// tests/concurrency/history_test.cpp — concurrent histories, checked after the fact.
//
// Threads mix adds, heartbeats, removes, whole-map reads (weakly consistent collects and
// consistent snapshots) on a small set of overlapping keys, and log every call: what they asked,
// what they got, and two ticks of one global logical clock (an atomic counter) taken just before
// and just after the call. Every call takes effect at some instant between its two ticks, so the
// logs bound what each observation may show. The checker then verifies that every observation is
// explainable:
//   * each key's lives ("incarnations": from a successful add to the remove that ends it) carry a
//     unique id; an observation shows only incarnations whose add had begun and whose remove had
//     not completed, and shows every incarnation that was certainly alive throughout it;
//   * heartbeat counts are exact: per incarnation, the count seen by a remove (or at the end)
//     equals the successful heartbeats logged for it, and every count observed mid-run lies
//     between the heartbeats certainly before the observation and those possibly before it;
//   * a failed heartbeat, add or remove is explained by the key's state in its window;
//   * no snapshot holds a key twice, and every snapshot is prefix-closed under one thread's
//     in-order inserts (a consistent snapshot holding key i holds every earlier key).
// Run over ShardedMap (where a heartbeat's callback sees which incarnation it hit, so
// attribution is exact) and over DeviceCache (where each churned device has one owner thread
// that adds and removes it, so each incarnation's remove is known from the owner's log).
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "../sanitizers.hpp"

#include "run_threads.hpp"
#include <fmt/format.h>

#include <devcache/device_cache.hpp>
#include <devcache/mac_address.hpp>
#include <devcache/manual_clock.hpp>
#include <devcache/sharded_map.hpp>

namespace {

using devcache::test::run_threads;

using u64 = std::uint64_t;
constexpr u64 never = std::numeric_limits<u64>::max();

constexpr u64 scale_down = devcache::test::thread_sanitizer ? 4 : 1;

// The logical clock: every tick is a distinct, totally ordered number.
class LogicalClock {
 public:
  u64 tick() noexcept { return now_.fetch_add(1); }

 private:
  std::atomic<u64> now_{1};
};

// One life of a key.
struct Incarnation {
  u64 key = 0;
  u64 add_before = 0;  // ticks around the add that began it
  u64 add_after = 0;
  u64 remove_before = never;  // ... and around the remove that ended it (never: still alive)
  u64 remove_after = never;
  u64 beats_at_remove = never;  // what the remove saw, when the backend reports it
};

// A heartbeat: `incarnation` is the one it hit when the backend says (0: unknown or failed).
struct Beat {
  u64 key = 0;
  u64 incarnation = 0;
  u64 before = 0;
  u64 after = 0;
  bool ok = false;
};

// A failed add or remove.
struct Failure {
  u64 key = 0;
  u64 before = 0;
  u64 after = 0;
};

struct Seen {
  u64 key = 0;
  u64 incarnation = 0;
  u64 beats = 0;
};

// What one whole-map read returned (only the churned keys).
struct Observation {
  u64 before = 0;
  u64 after = 0;
  std::vector<Seen> seen;
};

// One thread's log.
struct Log {
  std::vector<std::pair<u64, Incarnation>> incarnations;  // (id, life)
  std::vector<Beat> beats;
  std::vector<Failure> failed_adds;
  std::vector<Failure> failed_removes;
  std::vector<Observation> observations;
  u64 prefix_violations = 0;
};

// The merged logs and the checks.
class History {
 public:
  History(u64 keys, const std::vector<Log>& logs, bool beats_attributed)
      : keys_(keys), attributed_(beats_attributed), by_key_(keys), beats_by_key_(keys) {
    for (const Log& log : logs) {
      for (const auto& [id, life] : log.incarnations) lives_.emplace(id, life);
      for (const Beat& b : log.beats) {
        if (!b.ok) {
          failed_beats_.push_back(b);
        } else if (attributed_) {
          beats_by_incarnation_[b.incarnation].push_back(b);
        } else {
          beats_by_key_[b.key].push_back(b);
        }
      }
      failed_adds_.insert(failed_adds_.end(), log.failed_adds.begin(), log.failed_adds.end());
      failed_removes_.insert(failed_removes_.end(), log.failed_removes.begin(),
                             log.failed_removes.end());
      for (const Observation& o : log.observations) observations_.push_back(&o);
    }
    for (const auto& [id, life] : lives_) by_key_[life.key].push_back(id);
    // Indexes that keep the checks near-linear: each key's lives sorted by the end of their add
    // (with the running maximum of the start of their remove), and its heartbeats by start.
    alive_index_.resize(keys);
    for (u64 key = 0; key < keys; ++key) {
      std::vector<u64>& ids = by_key_[key];
      std::sort(ids.begin(), ids.end(),
                [&](u64 a, u64 b) { return lives_.at(a).add_after < lives_.at(b).add_after; });
      u64 running = 0;
      for (const u64 id : ids) {
        const Incarnation& life = lives_.at(id);
        running = std::max(running, life.remove_before);
        alive_index_[key].push_back(AliveIndex{life.add_after, running, life.remove_before, id});
      }
      std::vector<Beat>& beats = beats_by_key_[key];
      std::sort(beats.begin(), beats.end(),
                [](const Beat& a, const Beat& b) { return a.before < b.before; });
      for (const Beat& b : beats) longest_beat_ = std::max(longest_beat_, b.after - b.before);
    }
  }

  // Failed checks, with the first few described in `report`.
  u64 check(const std::map<u64, Seen>& final_state, std::string& report) {
    // Heartbeats hit only live incarnations, and are exact per incarnation.
    for (const auto& [id, beats] : beats_by_incarnation_) {
      const auto it = lives_.find(id);
      if (it == lives_.end()) {
        fail(report, "a heartbeat hit unknown incarnation {}", id);
        continue;
      }
      for (const Beat& b : beats) {
        if (!(it->second.add_before < b.after && it->second.remove_after > b.before)) {
          fail(report, "heartbeat [{}, {}] hit incarnation {} outside its life", b.before, b.after,
               id);
        }
      }
    }
    for (const auto& [id, life] : lives_) {
      const auto final_it = final_state.find(life.key);
      const bool alive_at_end = final_it != final_state.end() && final_it->second.incarnation == id;
      if ((life.remove_after == never) != alive_at_end) {
        fail(report, "incarnation {} of key {}: removed {} but present at the end {}", id, life.key,
             life.remove_after != never, alive_at_end);
      }
      if (!attributed_) continue;
      const u64 sent = beats_by_incarnation_.count(id) ? beats_by_incarnation_[id].size() : 0;
      const u64 held = alive_at_end ? final_it->second.beats : life.beats_at_remove;
      if (held != sent) {
        fail(report, "incarnation {} of key {} held {} heartbeats, {} succeeded", id, life.key,
             held, sent);
      }
    }
    for (const auto& [key, seen] : final_state) {
      if (!lives_.count(seen.incarnation)) fail(report, "final key {} has no add", key);
    }

    for (const Observation* o : observations_) check_observation(*o, report);

    // Failures are explained: a failed heartbeat or remove saw no certainly-live incarnation; a
    // failed add saw a possibly-live one.
    for (const Beat& b : failed_beats_) {
      if (certainly_alive_during(b.key, b.before, b.after) != 0) {
        fail(report, "heartbeat of key {} failed [{}, {}] while it was certainly present", b.key,
             b.before, b.after);
      }
    }
    for (const Failure& f : failed_removes_) {
      if (certainly_alive_during(f.key, f.before, f.after) != 0) {
        fail(report, "remove of key {} failed [{}, {}] while it was certainly present", f.key,
             f.before, f.after);
      }
    }
    for (const Failure& f : failed_adds_) {
      bool explained = false;
      for (const u64 id : by_key_[f.key]) {
        const Incarnation& life = lives_.at(id);
        explained = explained || (life.add_before < f.after && life.remove_after > f.before);
      }
      if (!explained) {
        fail(report, "add of key {} failed [{}, {}] while it was certainly absent", f.key, f.before,
             f.after);
      }
    }
    return failures_;
  }

  [[nodiscard]] std::size_t incarnations() const noexcept { return lives_.size(); }
  [[nodiscard]] std::size_t observations() const noexcept { return observations_.size(); }

 private:
  template <class... Args>
  void fail(std::string& report, fmt::format_string<Args...> format, Args&&... args) {
    if (++failures_ <= 10) {
      report += fmt::format(format, std::forward<Args>(args)...);
      report += '\n';
    }
  }

  // The incarnation of `key` alive for the whole of [before, after], or 0. (At most one is: lives
  // of one key do not overlap.) Scans back from the last life whose add ended before `before`
  // while an earlier one may still have been alive after `after`.
  u64 certainly_alive_during(u64 key, u64 before, u64 after) const {
    const std::vector<AliveIndex>& index = alive_index_[key];
    auto it = std::lower_bound(index.begin(), index.end(), before,
                               [](const AliveIndex& a, u64 t) { return a.add_after < t; });
    while (it != index.begin()) {
      --it;
      if (it->max_remove_before <= after) return 0;
      if (it->remove_before > after) return it->id;
    }
    return 0;
  }

  // Successful heartbeats that certainly (completed before `before`) and possibly (began before
  // `after`) reached incarnation `id` before an observation over [before, after].
  std::pair<u64, u64> beats_bounds(u64 id, const Incarnation& life, u64 before, u64 after) {
    u64 low = 0;
    u64 high = 0;
    if (attributed_) {
      const auto it = beats_by_incarnation_.find(id);
      if (it == beats_by_incarnation_.end()) return {0, 0};
      for (const Beat& b : it->second) {
        low += b.after < before ? 1 : 0;
        high += b.before < after ? 1 : 0;
      }
    } else {
      // Without attribution: a heartbeat of the key that began after the incarnation's add had
      // completed and completed before the observation began certainly hit it (the incarnation
      // was alive before and after it, and lives do not come back); one that overlaps the life
      // possibly did.
      // Only heartbeats that began after add_before - longest_beat_ can end after add_before.
      const std::vector<Beat>& beats = beats_by_key_[life.key];
      const u64 from = life.add_before > longest_beat_ ? life.add_before - longest_beat_ : 0;
      auto it = std::lower_bound(beats.begin(), beats.end(), from,
                                 [](const Beat& b, u64 t) { return b.before < t; });
      for (; it != beats.end() && it->before < after; ++it) {
        low += (it->before > life.add_after && it->after < before) ? 1 : 0;
        high += it->after > life.add_before ? 1 : 0;
      }
    }
    return {low, high};
  }

  void check_observation(const Observation& o, std::string& report) {
    std::vector<u64> keys;
    for (const Seen& s : o.seen) {
      keys.push_back(s.key);
      const auto it = lives_.find(s.incarnation);
      if (it == lives_.end() || it->second.key != s.key) {
        fail(report, "observation [{}, {}] shows key {} with unknown incarnation {}", o.before,
             o.after, s.key, s.incarnation);
        continue;
      }
      const Incarnation& life = it->second;
      if (!(life.add_before < o.after)) {
        fail(report, "observation [{}, {}] shows key {} before its add began ({})", o.before,
             o.after, s.key, life.add_before);
      }
      if (!(life.remove_after > o.before)) {
        fail(report, "observation [{}, {}] shows key {} after its remove completed ({})", o.before,
             o.after, s.key, life.remove_after);
      }
      const auto [low, high] = beats_bounds(s.incarnation, life, o.before, o.after);
      if (s.beats < low || s.beats > high) {
        fail(report, "observation [{}, {}] shows key {} with {} heartbeats, not in [{}, {}]",
             o.before, o.after, s.key, s.beats, low, high);
      }
    }
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
      fail(report, "observation [{}, {}] holds a key twice", o.before, o.after);
    }
    for (u64 key = 0; key < keys_; ++key) {
      if (certainly_alive_during(key, o.before, o.after) != 0 &&
          !std::binary_search(keys.begin(), keys.end(), key)) {
        fail(report, "observation [{}, {}] misses key {}, present throughout", o.before, o.after,
             key);
      }
    }
  }

  struct AliveIndex {
    u64 add_after;
    u64 max_remove_before;  // over this life and every earlier one in the index
    u64 remove_before;
    u64 id;
  };

  u64 keys_;
  bool attributed_;
  std::vector<std::vector<AliveIndex>> alive_index_;
  u64 longest_beat_ = 0;
  std::map<u64, Incarnation> lives_;
  std::vector<std::vector<u64>> by_key_;
  std::map<u64, std::vector<Beat>> beats_by_incarnation_;
  std::vector<std::vector<Beat>> beats_by_key_;
  std::vector<Beat> failed_beats_;
  std::vector<Failure> failed_adds_;
  std::vector<Failure> failed_removes_;
  std::vector<const Observation*> observations_;
  u64 failures_ = 0;
};

// The ordered keys one thread inserts in sequence, never removed: a snapshot holding one holds
// every earlier one. Returns the number of violations in `seen` (keys >= ordered_base).
constexpr u64 ordered_base = 1'000'000;
u64 prefix_violations(std::vector<u64>& ordered_seen) {
  std::sort(ordered_seen.begin(), ordered_seen.end());
  u64 bad = 0;
  for (u64 i = 0; i < ordered_seen.size(); ++i) bad += ordered_seen[i] == ordered_base + i ? 0 : 1;
  return bad;
}

// The incarnation id a thread gives its n-th add: unique across threads, never 0.
u64 incarnation_id(std::size_t thread, u64 n) { return (u64{thread + 1} << 40) | (n + 1); }

}  // namespace

TEST_CASE("history: ShardedMap adds, heartbeats, removes, collects and snapshots are explainable",
          "[concurrency][history]") {
  struct Cell {
    u64 incarnation = 0;
    u64 beats = 0;
  };
  constexpr std::size_t threads = 6;
  constexpr u64 keys = 48;  // every thread works on every key
  const u64 ops = 12'000 / scale_down;
  devcache::ShardedMap<u64, Cell> map(8);
  LogicalClock clock;
  std::vector<Log> logs(threads);

  run_threads(threads, [&](std::size_t t) {
    Log& log = logs[t];
    std::mt19937_64 rng(0x4157 + t);
    u64 adds = 0;
    u64 ordered = 0;
    for (u64 j = 0; j < ops; ++j) {
      const u64 key = rng() % keys;
      const u64 r = rng() % 100;
      if (t == 0 && j % 4 == 0) map.insert(ordered_base + ordered++, Cell{});  // in order
      if (r < 40) {
        u64 hit = 0;
        const u64 before = clock.tick();
        const bool ok = map.visit(key, [&hit](Cell& c) {
          ++c.beats;
          hit = c.incarnation;
        });
        log.beats.push_back(Beat{key, hit, before, clock.tick(), ok});
      } else if (r < 60) {
        const u64 id = incarnation_id(t, adds++);
        const u64 before = clock.tick();
        const bool ok = map.insert(key, Cell{id, 0});
        const u64 after = clock.tick();
        if (ok) {
          log.incarnations.emplace_back(id, Incarnation{key, before, after});
        } else {
          log.failed_adds.push_back(Failure{key, before, after});
        }
      } else if (r < 80) {
        Cell removed;
        const u64 before = clock.tick();
        const bool ok = map.erase_if(key, [&removed](const Cell& c) {
          removed = c;
          return true;
        });
        const u64 after = clock.tick();
        if (ok) {
          // Which incarnation ended, and with how many heartbeats: patched into its life below.
          log.incarnations.emplace_back(
              removed.incarnation, Incarnation{key, never, never, before, after, removed.beats});
        } else {
          log.failed_removes.push_back(Failure{key, before, after});
        }
      } else {
        Observation o;
        std::vector<u64> ordered_seen;
        const bool consistent = r >= 90;
        o.before = clock.tick();
        if (consistent) {
          for (const auto& [k, c] : map.snapshot()) {
            if (k >= ordered_base) {
              ordered_seen.push_back(k);
            } else {
              o.seen.push_back(Seen{k, c.incarnation, c.beats});
            }
          }
        } else {
          map.cvisit_all([&o](const u64& k, const Cell& c) {
            if (k < ordered_base) o.seen.push_back(Seen{k, c.incarnation, c.beats});
          });
        }
        o.after = clock.tick();
        if (consistent) log.prefix_violations += prefix_violations(ordered_seen);
        log.observations.push_back(std::move(o));
      }
    }
  });

  // Merge each remove into the life its add began (removes were logged as partial lives).
  std::map<u64, Incarnation> lives;
  for (Log& log : logs) {
    for (const auto& [id, part] : log.incarnations) {
      Incarnation& life = lives[id];
      if (part.add_after != never) {
        life.key = part.key;
        life.add_before = part.add_before;
        life.add_after = part.add_after;
      } else {
        life.remove_before = part.remove_before;
        life.remove_after = part.remove_after;
        life.beats_at_remove = part.beats_at_remove;
      }
    }
    log.incarnations.clear();
  }
  logs[0].incarnations.assign(lives.begin(), lives.end());
  u64 prefix_bad = 0;
  for (const Log& log : logs) prefix_bad += log.prefix_violations;

  std::map<u64, Seen> final_state;
  u64 ordered_present = 0;
  for (const auto& [k, c] : map.snapshot()) {
    if (k >= ordered_base) {
      ++ordered_present;
    } else {
      final_state.emplace(k, Seen{k, c.incarnation, c.beats});
    }
  }
  History history(keys, logs, /*beats_attributed=*/true);
  std::string report;
  const u64 failures = history.check(final_state, report);
  fmt::print("history (ShardedMap): {} incarnations, {} observations checked\n",
             history.incarnations(), history.observations());
  INFO(report);
  CHECK(failures == 0);
  CHECK(prefix_bad == 0);
  CHECK(ordered_present == (ops + 3) / 4);
  CHECK(map.size() == final_state.size() + ordered_present);
}

TEST_CASE("history: DeviceCache adds, heartbeats, removes, collects and snapshots are explainable",
          "[concurrency][history][device_cache]") {
  using Cache = devcache::DeviceCache<devcache::ShardedMap, devcache::ManualClock>;
  using Entry = Cache::entry_type;
  devcache::ManualClock::reset();
  constexpr std::size_t threads = 6;
  constexpr u64 churned = 36;   // device k is added and removed only by thread k % threads
  constexpr u64 stable = 12;    // added before the run, never removed
  constexpr u64 contended = 8;  // every thread adds and removes these
  const u64 ops = 8'000 / scale_down;
  devcache::DeviceCacheOptions options;
  options.shard_count = 8;
  Cache cache(options);
  const auto mac = [](u64 k) { return devcache::MacAddress::from_u64(0x02'00'00'00'00'00ULL + k); };
  const devcache::IpAddress ip = devcache::IpAddress::parse("10.1.2.3");
  // Keys: churned [0, churned), stable [churned, churned + stable), contended after them, and the
  // ordered keys from ordered_base. The device id of a churned device's entry is its incarnation.
  constexpr u64 contended_base = churned + stable;
  for (u64 k = churned; k < contended_base; ++k) {
    REQUIRE(cache.add_device_entry("stable", mac(k), ip).outcome == devcache::AddOutcome::inserted);
  }
  LogicalClock clock;
  std::vector<Log> logs(threads);
  std::vector<std::vector<u64>> stable_beats(threads, std::vector<u64>(stable, 0));
  std::vector<u64> stable_missing(threads, 0);  // a stable device is never absent
  std::vector<u64> contended_beats(threads, 0);
  std::vector<u64> contended_adds(threads, 0);
  std::vector<u64> contended_removes(threads, 0);
  std::vector<u64> ordered_added(threads, 0);

  run_threads(threads, [&](std::size_t t) {
    Log& log = logs[t];
    std::mt19937_64 rng(0xCAC4E + t);
    u64 adds = 0;
    std::vector<u64> my_live(churned, 0);  // the live incarnation of each device this thread owns
    const auto parse_id = [](const Entry& e) { return std::stoull(e.device_id); };
    for (u64 j = 0; j < ops; ++j) {
      const u64 r = rng() % 100;
      if (t == 0 && j % 4 == 0) {
        cache.add_device_entry("ordered", mac(ordered_base + ordered_added[0]++), ip);
      }
      if (j % 64 == 0) devcache::ManualClock::advance(std::chrono::seconds(1));
      if (r < 35) {
        // A heartbeat for any device: churned, stable or contended.
        const u64 key = rng() % (churned + stable + contended);
        const u64 before = clock.tick();
        const bool ok = cache.record_heartbeat(mac(key));
        const u64 after = clock.tick();
        if (key < churned) {
          log.beats.push_back(Beat{key, 0, before, after, ok});
        } else if (key < contended_base) {
          stable_beats[t][key - churned] += ok ? 1 : 0;
          stable_missing[t] += ok ? 0 : 1;
        } else {
          contended_beats[t] += ok ? 1 : 0;
        }
      } else if (r < 65) {
        // Add (r < 50) or remove one of this thread's devices, or a contended one.
        const bool add = r < 50;
        if (rng() % 4 == 0) {
          const u64 key = contended_base + rng() % contended;
          if (add) {
            contended_adds[t] += cache.add_device_entry("contended", mac(key), ip).outcome ==
                                         devcache::AddOutcome::inserted
                                     ? 1
                                     : 0;
          } else {
            contended_removes[t] += cache.remove_device(mac(key)) ? 1 : 0;
          }
          continue;
        }
        const u64 key = (rng() % (churned / threads)) * threads + t;
        const u64 before = clock.tick();
        if (add) {
          const u64 id = incarnation_id(t, adds++);
          const auto outcome = cache.add_device_entry(std::to_string(id), mac(key), ip).outcome;
          const u64 after = clock.tick();
          if (outcome == devcache::AddOutcome::inserted) {
            my_live[key] = id;
            log.incarnations.emplace_back(id, Incarnation{key, before, after});
          } else {
            log.failed_adds.push_back(Failure{key, before, after});
          }
        } else {
          const bool ok = cache.remove_device(mac(key));
          const u64 after = clock.tick();
          if (ok) {
            // The owner is the only adder and remover: the live incarnation is the one removed.
            for (auto& [id, life] : log.incarnations) {
              if (id == my_live[key]) {
                life.remove_before = before;
                life.remove_after = after;
              }
            }
            my_live[key] = 0;
          } else {
            log.failed_removes.push_back(Failure{key, before, after});
          }
        }
      } else {
        Observation o;
        std::vector<u64> ordered_seen;
        const bool consistent = r >= 85;
        o.before = clock.tick();
        const std::vector<Entry> entries =
            consistent ? cache.get_cache_snapshot() : cache.collect_entries_with_high_heartbeats(0);
        o.after = clock.tick();
        for (const Entry& e : entries) {
          const u64 key = e.mac.to_u64() - mac(0).to_u64();
          if (key >= ordered_base) {
            ordered_seen.push_back(key);
          } else if (key < churned) {
            o.seen.push_back(Seen{key, parse_id(e), e.heartbeat_count});
          }
        }
        if (consistent) log.prefix_violations += prefix_violations(ordered_seen);
        log.observations.push_back(std::move(o));
      }
    }
  });

  u64 violations = 0;
  u64 missing = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    violations += logs[t].prefix_violations;
    missing += stable_missing[t];
  }
  CHECK(violations == 0);
  CHECK(missing == 0);

  std::map<u64, Seen> final_state;
  u64 contended_present = 0;
  u64 ordered_present = 0;
  std::vector<u64> stable_held(stable, 0);
  const std::vector<Entry> snapshot = cache.get_cache_snapshot();
  for (const Entry& e : snapshot) {
    const u64 key = e.mac.to_u64() - mac(0).to_u64();
    if (key < churned) {
      final_state.emplace(key, Seen{key, std::stoull(e.device_id), e.heartbeat_count});
    } else if (key < contended_base) {
      stable_held[key - churned] = e.heartbeat_count;
    } else if (key < ordered_base) {
      ++contended_present;
    } else {
      ++ordered_present;
    }
  }
  History history(churned, logs, /*beats_attributed=*/false);
  std::string report;
  const u64 failures = history.check(final_state, report);
  fmt::print("history (DeviceCache): {} incarnations, {} observations checked\n",
             history.incarnations(), history.observations());
  INFO(report);
  CHECK(failures == 0);

  // Stable devices: heartbeat totals exact. Contended devices: their successful adds and removes
  // alternate, so the net count is the final presence. Ordered devices: all there.
  u64 stable_total = 0;
  for (u64 k = 0; k < stable; ++k) {
    u64 sent = 0;
    for (std::size_t t = 0; t < threads; ++t) sent += stable_beats[t][k];
    CHECK(stable_held[k] == sent);
    stable_total += sent;
  }
  u64 total_contended_adds = 0;
  u64 total_contended_removes = 0;
  u64 total_contended_beats = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    total_contended_adds += contended_adds[t];
    total_contended_removes += contended_removes[t];
    total_contended_beats += contended_beats[t];
  }
  CHECK(total_contended_adds - total_contended_removes == contended_present);
  CHECK(ordered_present == ordered_added[0]);

  // The statistics agree with the logs exactly.
  u64 churn_adds = 0;
  u64 churn_removes = 0;
  u64 churn_beats = 0;
  for (const Log& log : logs) {
    churn_adds += log.incarnations.size();
    for (const auto& [id, life] : log.incarnations) churn_removes += life.remove_after != never;
    for (const Beat& b : log.beats) churn_beats += b.ok ? 1 : 0;
  }
  const devcache::CacheStats s = cache.get_cache_stats();
  CHECK(s.adds == stable + churn_adds + total_contended_adds + ordered_added[0]);
  CHECK(s.removals == churn_removes + total_contended_removes);
  CHECK(s.entries == s.adds - s.removals);
  CHECK(s.entries == snapshot.size());
  CHECK(s.heartbeats == churn_beats + stable_total + total_contended_beats);
}

TEST_CASE("history: the checker rejects histories that cannot happen", "[history]") {
  // One life of key 0: added over ticks [1, 2], removed over [10, 11] having seen one heartbeat,
  // which ran over [3, 4].
  const auto check = [](const Observation& o, const std::vector<Beat>& extra_beats = {}) {
    std::vector<Log> logs(1);
    logs[0].incarnations.emplace_back(7, Incarnation{0, 1, 2, 10, 11, 1});
    logs[0].beats.push_back(Beat{0, 7, 3, 4, true});
    for (const Beat& b : extra_beats) logs[0].beats.push_back(b);
    logs[0].observations.push_back(o);
    History history(1, logs, /*beats_attributed=*/true);
    std::string report;
    return history.check({}, report);
  };
  CHECK(check(Observation{5, 6, {Seen{0, 7, 1}}}) == 0);                  // possible
  CHECK(check(Observation{3, 6, {Seen{0, 7, 0}}}) == 0);                  // the beat may come later
  CHECK(check(Observation{5, 6, {Seen{0, 7, 0}}}) == 1);                  // lost heartbeat
  CHECK(check(Observation{5, 6, {Seen{0, 7, 2}}}) == 1);                  // invented heartbeat
  CHECK(check(Observation{12, 13, {Seen{0, 7, 1}}}) == 1);                // seen after its remove
  CHECK(check(Observation{5, 6, {}}) == 1);                               // missed while present
  CHECK(check(Observation{5, 6, {Seen{0, 7, 1}, Seen{0, 7, 1}}}) == 1);   // twice
  CHECK(check(Observation{5, 6, {Seen{0, 8, 0}}}) == 1);                  // a life that never began
  CHECK(check(Observation{12, 13, {}}, {Beat{0, 0, 5, 6, false}}) == 1);  // failed while present
  CHECK(check(Observation{12, 13, {}}, {Beat{0, 7, 12, 13, true}}) == 2);  // hit after remove
}
