// bench_queue: mpx::Queue against raw MPI send/recv and against Python's
// multiprocessing.Queue, measured side by side in one run.
//
//   mpiexec -n 2 build/bin/bench_queue            # throughput and latency, 2 ranks
//   mpiexec -n 3 build/bin/bench_queue            # adds the third-party-host rows
//
// Rows (targets from issue 3):
//   * throughput, 8 B items: rank 1 puts, rank 0 (the host) gets, vs rank 1 MPI_Send and
//     rank 0 MPI_Recv of the same number of 8-byte messages: ratio >= 0.30.
//   * the same mpx number vs Python's multiprocessing.Queue (one producer process, one
//     consumer): ratio >= 10.
//   * latency, 8 B: a put on one rank until the get returns on the other, as a ping-pong
//     through two queues, vs an MPI_Send/MPI_Recv ping-pong: ratio <= 3 with each queue
//     hosted by its getter (one message per direction); for information also with both
//     queues on rank 0 (rank 1's gets are then requests to rank 0).
//   * vs Python's multiprocessing.Queue latency (information).
//   * with 3 ranks: host 0, producer 1, consumer 2 (every item crosses two hops, and each
//     get is a request to the host), for information.
//   * wake-up: a getter that has been idle for 50 ms (pollers backed off to sleeping)
//     receives an item after how long (information; bounded by MPX_MAX_SLEEP_US).
#include <mpi.h>
#include <mpx/mpx.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bench = mpx::bench;

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  const auto opt = bench::parse_options(argc, argv, "bench_queue");
  if (!bench::require_ranks(2, "bench_queue")) return 1;
  bench::Report report("bench_queue", opt);
  const auto& world = mpx::Communicator::world();
  const int rank = world.rank();
  MPI_Comm raw = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &raw);

  // ---- throughput: rank 1 -> host rank 0 ------------------------------------------------------
  double mpx_rate = 0;
  if (opt.wants("throughput")) {
    report.progress("throughput 8 B");
    mpx::Queue<std::int64_t> q;
    auto queue_body = [&](long n) {
      if (rank == 1)
        for (long i = 0; i < n; ++i) q.put(i);
      if (rank == 0)
        for (long i = 0; i < n; ++i) (void)q.get();
    };
    auto raw_body = [&](long n) {
      std::int64_t v = 0;
      if (rank == 1)
        for (long i = 0; i < n; ++i) {
          v = i;
          MPI_Send(&v, 8, MPI_BYTE, 0, 1, raw);
        }
      if (rank == 0)
        for (long i = 0; i < n; ++i) MPI_Recv(&v, 8, MPI_BYTE, 1, 1, raw, MPI_STATUS_IGNORE);
    };
    const auto t = bench::compare(queue_body, raw_body, opt);
    mpx_rate = 1.0 / t.candidate;
    report.add({"throughput", "8 B, put rank 1 -> get host", mpx_rate / 1e6, "MPI_Send/Recv stream",
                1.0 / t.baseline / 1e6, "M items/s", bench::at_least(0.30)});
    world.barrier();
  }
  if (opt.wants("throughput") && opt.wants("python")) {
    report.progress("python multiprocessing.Queue throughput");
    try {
      const double py = bench::run_python("bench/python/queue_baseline.py",
                                          {"throughput", opt.quick ? "20000" : "200000"});
      report.add({"throughput", "8 B vs Python", mpx_rate / 1e6, "python mp.Queue", py / 1e6,
                  "M items/s", bench::at_least(10.0)});
    } catch (const bench::Skipped& e) {
      report.skip("throughput", "8 B vs Python", "python mp.Queue", e.what());
    }
  }

  // ---- latency: ping-pong through two queues ----------------------------------------------------
  // Target row: each queue hosted by the rank that gets from it (the placement to choose for
  // latency): a put is one message straight to the waiting getter's rank. Information row:
  // both queues on rank 0 (the default host), where rank 1's every get is a request to rank 0
  // (three messages per round trip instead of two).
  double mpx_latency = 0;
  if (opt.wants("latency")) {
    std::int64_t v = 0;
    auto raw_body = bench::ping_pong(
        rank, [&](int peer) { MPI_Send(&v, 8, MPI_BYTE, peer, 2, raw); },
        [&](int peer) { MPI_Recv(&v, 8, MPI_BYTE, peer, 2, raw, MPI_STATUS_IGNORE); });
    for (const bool at_getter : {true, false}) {
      report.progress(at_getter ? "latency 8 B, queues hosted by their getters"
                                : "latency 8 B, both queues on rank 0");
      mpx::Queue<std::int64_t> there(0, world, at_getter ? 1 : 0);  // rank 0 -> rank 1
      mpx::Queue<std::int64_t> back(0, world, 0);                   // rank 1 -> rank 0
      std::int64_t value = 0;
      auto queue_body = bench::ping_pong(
          rank, [&](int peer) { (peer == 1 ? there : back).put(value); },
          [&](int peer) { value = (peer == 1 ? back : there).get(); });
      const auto t = bench::compare(queue_body, raw_body, opt);
      if (at_getter) {
        mpx_latency = bench::one_way_us(t.candidate);
        report.add({"latency", "8 B put -> get, host = getter", mpx_latency, "MPI_Send/Recv",
                    bench::one_way_us(t.baseline), "us", bench::at_most(3.0)});
      } else {
        report.add({"latency", "8 B put -> get, host rank 0", bench::one_way_us(t.candidate),
                    "MPI_Send/Recv", bench::one_way_us(t.baseline), "us", bench::no_target(),
                    "rank 1 gets from a queue hosted on rank 0: a request + the item per get"});
      }
      world.barrier();
    }
  }
  if (opt.wants("latency") && opt.wants("python")) {
    report.progress("python multiprocessing.Queue latency");
    try {
      const double py = bench::run_python("bench/python/queue_baseline.py",
                                          {"latency", opt.quick ? "2000" : "20000"});
      report.add({"latency", "8 B vs Python", mpx_latency, "python mp.Queue", py, "us",
                  bench::no_target()});
    } catch (const bench::Skipped& e) {
      report.skip("latency", "8 B vs Python", "python mp.Queue", e.what());
    }
  }

  // ---- third-party host: 0 hosts, 1 produces, 2 consumes ------------------------------------------
  if (world.size() >= 3 && opt.wants("third-party")) {
    report.progress("third-party host throughput");
    mpx::Queue<std::int64_t> q;
    auto queue_body = [&](long n) {
      if (rank == 1)
        for (long i = 0; i < n; ++i) q.put(i);
      if (rank == 2)
        for (long i = 0; i < n; ++i) (void)q.get();
    };
    auto raw_body = [&](long n) {
      std::int64_t v = 0;
      if (rank == 1)
        for (long i = 0; i < n; ++i) MPI_Send(&v, 8, MPI_BYTE, 2, 3, raw);
      if (rank == 2)
        for (long i = 0; i < n; ++i) MPI_Recv(&v, 8, MPI_BYTE, 1, 3, raw, MPI_STATUS_IGNORE);
    };
    const auto t = bench::compare(queue_body, raw_body, opt);
    report.add({"throughput", "8 B, host 0, put 1 -> get 2", 1.0 / t.candidate / 1e6,
                "MPI_Send/Recv 1 -> 2", 1.0 / t.baseline / 1e6, "M items/s", bench::no_target(),
                "each get is a round trip to the host: rate is bounded by 1 / (2 x latency)"});
    world.barrier();

    report.progress("third-party host latency");
    mpx::Queue<std::int64_t> there, back;
    std::int64_t value = 0;
    auto queue_pp = bench::ping_pong(
        rank, [&](int peer) { (peer == 2 ? there : back).put(value); },
        [&](int peer) { value = (peer == 2 ? back : there).get(); }, 1, 2);
    std::int64_t v = 0;
    auto raw_pp = bench::ping_pong(
        rank, [&](int peer) { MPI_Send(&v, 8, MPI_BYTE, peer, 4, raw); },
        [&](int peer) { MPI_Recv(&v, 8, MPI_BYTE, peer, 4, raw, MPI_STATUS_IGNORE); }, 1, 2);
    const auto l = bench::compare(queue_pp, raw_pp, opt);
    report.add({"latency", "8 B, host 0, ranks 1 <-> 2", bench::one_way_us(l.candidate),
                "MPI_Send/Recv 1 <-> 2", bench::one_way_us(l.baseline), "us", bench::no_target(),
                "two hops per direction (producer -> host -> waiting getter)"});
    world.barrier();
  }

  // ---- wake-up after an idle spell ------------------------------------------------------------------
  if (opt.wants("wake-up")) {
    report.progress("wake-up after 50 ms idle");
    mpx::Queue<std::int64_t> q;  // steady_clock nanoseconds: one clock for every rank of a node
    auto now_ns = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
    std::vector<double> delays;
    for (int k = 0; k < (opt.quick ? 5 : 20); ++k) {
      world.barrier();
      if (rank == 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        q.put(static_cast<std::int64_t>(now_ns()));
      }
      if (rank == 0) {
        const std::int64_t sent = q.get();
        delays.push_back(static_cast<double>(now_ns() - sent) / 1e3);
      }
    }
    if (rank == 0)
      report.add({"wake-up", "get idle 50 ms, then put", bench::median(delays), "MPX_MAX_SLEEP_US",
                  static_cast<double>(mpx::detail::max_sleep_us()), "us", bench::no_target(),
                  "median delay from put to get after both sides backed off to sleeping"});
    world.barrier();
  }

  MPI_Comm_free(&raw);
  return report.finish();
}
