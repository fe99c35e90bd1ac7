// bench_shared: mpx::Value::fetch_add against raw MPI_Fetch_and_op and against Python's
// multiprocessing.Value with its lock, measured side by side in one run.
// mpx-bench: ranks=2
//
//   mpiexec -n 2 build/bin/bench_shared            # every row
//   mpiexec -n 2 build/bin/bench_shared --quick    # short smoke run
//
// Rows (target from issue 5: fetch_add at least as fast as raw MPI_Fetch_and_op on one node):
//   * fetch_add/s, uncontended: rank 0 adds in a loop while the others wait, mpx::Value<long>
//     vs MPI_Fetch_and_op(MPI_SUM) + MPI_Win_flush on a shared-memory window of rank 0 (one
//     passive-target epoch, MPI_Win_lock_all): ratio >= 1.
//   * fetch_add/s, contended: every rank adds to the same value at once (total of all
//     ranks), same baseline: ratio >= 1.
//   * vs Python: `with v.get_lock(): v.value += 1` on a multiprocessing.Value, one process
//     and two processes (information: Python has no atomic add).
//   * the cross-node path (the value on rank 0, served by its progress thread, forced with
//     MPX_NO_SHARED_MEMORY=1 for one object), vs the same MPI baseline (information: every
//     add is a message round trip).
// The MPI window is MPI_Win_allocate_shared on the node's ranks; MPI_Fetch_and_op needs Open
// MPI's one-sided "sm" component (the default "rdma" one is not usable here, see
// shared/PLATFORM.md): the benchmark sets OMPI_MCA_osc=sm before MPI_Init unless the variable
// is already set (`mpiexec --mca osc sm` does the same by hand).
#include <mpi.h>
#include <mpx/mpx.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bench = mpx::bench;

int main(int argc, char** argv) {
  ::setenv("OMPI_MCA_osc", "sm", 0);
  mpx::Environment env(argc, argv);
  const auto opt = bench::parse_options(argc, argv, "bench_shared");
  if (!bench::require_ranks(2, "bench_shared")) return 1;
  bench::Report report("bench_shared", opt);
  const auto& world = mpx::Communicator::world();
  const int rank = world.rank();
  const int size = world.size();

  // The raw baseline: a long in a shared-memory window of rank 0, updated with
  // MPI_Fetch_and_op inside one passive-target epoch.
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int node_size = 0;
  MPI_Comm_size(node, &node_size);
  MPI_Win win = MPI_WIN_NULL;
  long* base = nullptr;
  const bool one_node = node_size == size;
  const bool have_win =
      one_node &&
      MPI_Win_allocate_shared(rank == 0 ? static_cast<MPI_Aint>(sizeof(long)) : 0, sizeof(long),
                              MPI_INFO_NULL, node, &base, &win) == MPI_SUCCESS;
  if (have_win) MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  const long one = 1;
  auto raw_add = [&] {
    long old = 0;
    MPI_Fetch_and_op(&one, &old, MPI_LONG, 0, 0, MPI_SUM, win);
    MPI_Win_flush(0, win);
    return old;
  };

  mpx::Value<long> value(0);
  const std::string path = value.uses_shared_memory() ? "shared memory" : "served (cross-node)";

  // ---- uncontended --------------------------------------------------------------------------
  double alone_rate = 0;
  if (opt.wants("fetch_add")) {
    report.progress("fetch_add, uncontended");
    auto mpx_body = [&](long n) {
      if (rank == 0)
        for (long i = 0; i < n; ++i) (void)value.fetch_add(1);
    };
    if (have_win) {
      auto raw_body = [&](long n) {
        if (rank == 0)
          for (long i = 0; i < n; ++i) (void)raw_add();
      };
      const auto t = bench::compare(mpx_body, raw_body, opt);
      alone_rate = 1.0 / t.candidate;
      report.add({"fetch_add, uncontended", path, alone_rate / 1e6, "MPI_Fetch_and_op",
                  1.0 / t.baseline / 1e6, "M ops/s", bench::at_least(1.0)});
    } else {
      alone_rate = 1.0 / bench::measure(mpx_body, opt);
      report.skip("fetch_add, uncontended", path, "MPI_Fetch_and_op",
                  "no shared-memory window (ranks on several nodes)");
    }
    try {
      const double py = bench::run_python("bench/python/shared_baseline.py",
                                          {"value", opt.quick ? "20000" : "300000"});
      report.add({"fetch_add, uncontended", "vs Python", alone_rate / 1e6, "python Value+get_lock",
                  py / 1e6, "M ops/s", bench::no_target()});
    } catch (const bench::Skipped& e) {
      report.skip("fetch_add, uncontended", "vs Python", "python Value+get_lock", e.what());
    }
  }

  // ---- contended ----------------------------------------------------------------------------
  if (opt.wants("fetch_add")) {
    report.progress("fetch_add, contended");
    auto mpx_body = [&](long n) {
      for (long i = 0; i < n; ++i) (void)value.fetch_add(1);
    };
    double rate = 0;
    if (have_win) {
      auto raw_body = [&](long n) {
        for (long i = 0; i < n; ++i) (void)raw_add();
      };
      const auto t = bench::compare(mpx_body, raw_body, opt);
      rate = size / t.candidate;
      report.add({"fetch_add, contended", std::to_string(size) + " ranks", rate / 1e6,
                  "MPI_Fetch_and_op", size / t.baseline / 1e6, "M ops/s", bench::at_least(1.0)});
    } else {
      rate = size / bench::measure(mpx_body, opt);
    }
    try {
      const double py = bench::run_python("bench/python/shared_baseline.py",
                                          {"value_contended", opt.quick ? "20000" : "200000"});
      report.add({"fetch_add, contended", std::to_string(size) + " ranks vs Python", rate / 1e6,
                  "python Value+get_lock, 2 procs", py / 1e6, "M ops/s", bench::no_target()});
    } catch (const bench::Skipped& e) {
      report.skip("fetch_add, contended", "vs Python", "python Value+get_lock", e.what());
    }
  }

  // ---- the cross-node path, on this node ------------------------------------------------------
  if (opt.wants("served") && value.uses_shared_memory()) {
    report.progress("fetch_add, served path");
    ::setenv("MPX_NO_SHARED_MEMORY", "1", 1);
    mpx::Value<long> served(0, mpx::SharedOptions{.lock = false});
    ::unsetenv("MPX_NO_SHARED_MEMORY");
    // Rank 1 adds (rank 0 is the host: its own adds never leave the process). Rank 0 waits in
    // mpx's barrier, which sleeps, instead of the harness's MPI_Barrier, which would spin on
    // the core its progress thread needs.
    const long n = opt.quick ? 2000 : 20000;
    std::vector<double> times;
    for (int r = 0; r < std::max(3, opt.rounds / 3); ++r) {
      world.barrier();
      const auto t0 = bench::Clock::now();
      if (rank == 1)
        for (long i = 0; i < n; ++i) (void)served.fetch_add(1);
      world.barrier();
      times.push_back(std::chrono::duration<double>(bench::Clock::now() - t0).count());
    }
    const double served_rate = static_cast<double>(n) / bench::median(times);
    if (have_win) {
      auto raw_body = [&](long k) {
        if (rank == 1)
          for (long i = 0; i < k; ++i) (void)raw_add();
      };
      const double raw_rate = 1.0 / bench::measure(raw_body, opt);
      report.add({"fetch_add, rank 1 alone", "served (cross-node path)", served_rate / 1e3,
                  "MPI_Fetch_and_op", raw_rate / 1e3, "k ops/s", bench::no_target(),
                  "every add is a request to rank 0's progress thread and its reply"});
    }
  }

  if (have_win) {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
  }
  MPI_Comm_free(&node);
  return report.finish();
}
