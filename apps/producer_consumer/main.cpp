// producer_consumer: the Queue producer/consumer of seeds 000, 002 and 003, with many
// producers and consumers on the ranks of an MPI job, and a check that every item was
// consumed exactly once.
//
//   mpiexec -n 4 build/bin/producer_consumer                      # seed-style, ~2 s
//   mpiexec -n 4 build/bin/producer_consumer --producers 2 --consumers 2 --items 20000 --json
//
// Roles: rank 0 hosts the queue. With at least 1 + P + C ranks, ranks 1..P produce and
// ranks P+1..P+C consume (further ranks only watch); with exactly P + C ranks, rank 0 is
// also producer-1. Each producer puts --items items (a random value 0..256, as in the seed,
// tagged with the producer and a sequence number), sleeping --delay-ms after each put; each
// consumer takes items until the queue is closed and drained, sleeping three times that after
// each get (the seed's consumer is the slower side). When every producer is done, producer-1
// closes the queue: no 'DONE' sentinel, and no consumer can stop early because the queue
// looked empty for a moment (seed 000's race). Then rank 0 checks that every item was
// consumed exactly once and in order per producer, and prints a summary (exit code 1 if not).
#include <mpx/mpx.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"

namespace {

/// One queue item: the seed's random value, plus who made it and when (for the check).
struct Item {
  std::int32_t producer = 0;  // 1-based
  std::int32_t seq = 0;
  std::int32_t value = 0;
};

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "producer_consumer",
                     "[--producers P] [--consumers C] [--items N] [--delay-ms D] [--maxsize M] "
                     "[--quiet] [--json]");
  const long long producers = cli.integer("--producers", 1);
  const long long consumers = cli.integer("--consumers", 2);
  const long long items = cli.integer("--items", 10);
  const long long delay_option = cli.integer("--delay-ms", -1);
  const long long maxsize = cli.integer("--maxsize", 0);
  const bool quiet = cli.flag("--quiet");
  const bool json = cli.flag("--json");
  cli.done();

  const auto& world = mpx::Communicator::world();
  const int rank = world.rank();
  const int np = world.size();
  auto usage_error = [&](const std::string& message) {
    if (rank == 0) std::fprintf(stderr, "producer_consumer: %s\n", message.c_str());
    return 2;
  };
  if (producers < 1 || consumers < 1)
    return usage_error("--producers and --consumers must be at least 1");
  if (items < 0) return usage_error("--items must not be negative");
  if (maxsize < 0) return usage_error("--maxsize must not be negative (0 means unbounded)");
  if (delay_option < -1) return usage_error("--delay-ms must not be negative");
  if (producers + consumers > np)
    return usage_error(
        "--producers " + std::to_string(producers) + " --consumers " + std::to_string(consumers) +
        " needs at least " + std::to_string(producers + consumers) +
        " ranks (one rank per producer and per consumer; one more lets rank 0 only host the "
        "queue), but this job has " +
        std::to_string(np) + ": run mpiexec -n " + std::to_string(producers + consumers) + " (or " +
        std::to_string(producers + consumers + 1) + ")");
  // Default pause: the seed's rhythm (scaled down to 100 ms) for small runs, none for big ones.
  const long long total = producers * items;
  const auto delay =
      std::chrono::milliseconds(delay_option >= 0 ? delay_option : (total <= 100 ? 100 : 0));
  const bool lines = !quiet && !json && total <= 1000;

  // Roles.
  const int first = np >= producers + consumers + 1 ? 1 : 0;
  const int producer_id = rank >= first && rank < first + producers ? rank - first + 1 : 0;
  const int consumer_id = rank >= first + producers && rank < first + producers + consumers
                              ? rank - first - static_cast<int>(producers) + 1
                              : 0;

  mpx::Queue<Item> queue(maxsize);  // collective; rank 0 hosts it
  // Producers agree among themselves when they are all done (the others get a comm too).
  const auto producers_comm = world.split(producer_id ? 0 : 1, rank, "producers");

  world.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t produced = 0;
  std::vector<std::int64_t> consumed_keys;  // producer << 32 | seq, in the order got
  if (producer_id) {
    const std::string name = "producer-" + std::to_string(producer_id);
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<int> value(0, 256);
    for (long long i = 0; i < items; ++i) {
      const Item item{producer_id, static_cast<std::int32_t>(i), value(random)};
      queue.put(item);
      ++produced;
      if (lines)
        say("Process Producer : item " + std::to_string(item.value) + " appended to queue " + name);
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      if (lines) say("The size of queue is " + std::to_string(queue.qsize()));
    }
    producers_comm.barrier();             // every producer is done ...
    if (producer_id == 1) queue.close();  // ... so the stream ends here
  }
  if (consumer_id) {
    const std::string name = "consumer-" + std::to_string(consumer_id);
    for (const Item& item : queue) {  // until closed and drained
      consumed_keys.push_back((std::int64_t{item.producer} << 32) | item.seq);
      if (lines)
        say("Process Consumer : item " + std::to_string(item.value) + " popped from by " + name);
      if (delay.count() > 0) std::this_thread::sleep_for(3 * delay);  // the seed sleeps 2 s + 1 s
    }
  }
  const std::int64_t consumed = static_cast<std::int64_t>(consumed_keys.size());

  // ---- the check, on rank 0 ---------------------------------------------------------------------
  const auto all_produced = world.gather(produced, 0);
  const auto all_consumed = world.gather(consumed, 0);
  const auto keys = world.gatherv(std::span<const std::int64_t>(consumed_keys), 0);
  const double seconds = world.allreduce(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), mpx::maximum{});
  int ok = 1;
  if (rank == 0) {
    std::int64_t lost = 0, duplicated = 0, foreign = 0, reordered = 0;
    std::map<std::int64_t, int> seen;
    for (std::int64_t k : keys) ++seen[k];
    for (long long p = 1; p <= producers; ++p)
      for (long long i = 0; i < items; ++i) {
        auto it = seen.find((p << 32) | i);
        if (it == seen.end())
          ++lost;
        else if (it->second > 1)
          duplicated += it->second - 1;
      }
    for (const auto& [k, n] : seen) {
      const std::int64_t p = k >> 32, i = k & 0xffffffff;
      if (p < 1 || p > producers || i >= items) foreign += n;
    }
    // Order per producer within each consumer's stream (the consumers' keys are gathered in
    // rank order, each consumer's in the order it got them).
    std::size_t offset = 0;
    for (int r = 0; r < np; ++r) {
      std::map<std::int64_t, std::int64_t> last;
      for (std::int64_t j = 0; j < all_consumed[static_cast<std::size_t>(r)]; ++j) {
        const std::int64_t k = keys[offset + static_cast<std::size_t>(j)];
        auto it = last.find(k >> 32);
        if (it != last.end() && (k & 0xffffffff) <= it->second) ++reordered;
        last[k >> 32] = k & 0xffffffff;
      }
      offset += static_cast<std::size_t>(all_consumed[static_cast<std::size_t>(r)]);
    }
    std::int64_t total_produced = 0, total_consumed = 0;
    for (auto v : all_produced) total_produced += v;
    for (auto v : all_consumed) total_consumed += v;
    ok = lost == 0 && duplicated == 0 && foreign == 0 && reordered == 0 &&
         total_produced == total && total_consumed == total;
    const double rate = seconds > 0 ? static_cast<double>(total_consumed) / seconds : 0;
    auto role_of = [&](int r) {
      const int pid = r >= first && r < first + producers ? r - first + 1 : 0;
      const int cid = r >= first + producers && r < first + producers + consumers
                          ? r - first - static_cast<int>(producers) + 1
                          : 0;
      return std::make_pair(pid, cid);
    };
    if (json) {
      std::string out = "{\"ranks\": " + std::to_string(np) +
                        ", \"producers\": " + std::to_string(producers) +
                        ", \"consumers\": " + std::to_string(consumers) +
                        ", \"items_per_producer\": " + std::to_string(items) +
                        ", \"maxsize\": " + std::to_string(maxsize) +
                        ", \"delay_ms\": " + std::to_string(delay.count()) + ", \"per_rank\": [";
      for (int r = 0; r < np; ++r) {
        const auto [pid, cid] = role_of(r);
        std::string role = r == 0 ? "host" : "";
        if (pid) role += std::string(role.empty() ? "" : "+") + "producer-" + std::to_string(pid);
        if (cid) role += std::string(role.empty() ? "" : "+") + "consumer-" + std::to_string(cid);
        if (role.empty()) role = "idle";
        out += std::string(r ? ", " : "") + "{\"rank\": " + std::to_string(r) + ", \"role\": \"" +
               role +
               "\", \"produced\": " + std::to_string(all_produced[static_cast<std::size_t>(r)]) +
               ", \"consumed\": " + std::to_string(all_consumed[static_cast<std::size_t>(r)]) + "}";
      }
      char tail[512];
      std::snprintf(tail, sizeof tail,
                    "], \"total_produced\": %lld, \"total_consumed\": %lld, \"lost\": %lld, "
                    "\"duplicated\": %lld, \"reordered\": %lld, \"seconds\": %.6f, "
                    "\"items_per_second\": %.1f, \"exactly_once\": %s}",
                    static_cast<long long>(total_produced), static_cast<long long>(total_consumed),
                    static_cast<long long>(lost), static_cast<long long>(duplicated),
                    static_cast<long long>(reordered), seconds, rate, ok ? "true" : "false");
      say(out + tail);
    } else {
      if (!lines && !quiet) say("(per-item lines are printed for runs of at most 1000 items)");
      say("Summary: " + std::to_string(producers) + " producer(s) x " + std::to_string(items) +
          " items, " + std::to_string(consumers) + " consumer(s), maxsize " +
          std::to_string(maxsize) + ", " + std::to_string(np) + " ranks (rank 0 hosts the queue)");
      for (int r = 0; r < np; ++r) {
        const auto [pid, cid] = role_of(r);
        if (pid)
          say("  producer-" + std::to_string(pid) + " (rank " + std::to_string(r) + "): produced " +
              std::to_string(all_produced[static_cast<std::size_t>(r)]));
        if (cid)
          say("  consumer-" + std::to_string(cid) + " (rank " + std::to_string(r) + "): consumed " +
              std::to_string(all_consumed[static_cast<std::size_t>(r)]));
      }
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "  total: produced %lld, consumed %lld in %.3f s (%.0f items/s)",
                    static_cast<long long>(total_produced), static_cast<long long>(total_consumed),
                    seconds, rate);
      say(buf);
      if (ok) {
        say("Verdict: every item was consumed exactly once (and in order per producer)");
      } else {
        say("Verdict: FAILED: " + std::to_string(lost) + " lost, " + std::to_string(duplicated) +
            " duplicated, " + std::to_string(foreign) + " unknown, " + std::to_string(reordered) +
            " out of order");
      }
    }
  }
  ok = world.bcast(ok, 0);
  return ok ? 0 : 1;
}
