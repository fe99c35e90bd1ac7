// bench_sync: mpx::Lock and mpx::Barrier against raw MPI and Python's multiprocessing,
// measured side by side in one run.
// mpx-bench: ranks=2
//
//   mpiexec -n 2 build/bin/bench_sync            # every row
//   mpiexec -n 2 build/bin/bench_sync --quick    # short smoke run
//
// Rows (targets from issue 5):
//   * lock pairs/s, uncontended: rank 0 acquires and releases an mpx::Lock in a loop while
//     the other ranks wait, vs Python's multiprocessing.Lock in one process: ratio >= 5.
//     Also vs a raw MPI passive-target lock (MPI_Win_lock(MPI_LOCK_EXCLUSIVE) + unlock on
//     rank 0's window), for information.
//   * lock pairs/s, contended: every rank loops on the same lock (total pairs/s of all
//     ranks) vs two Python processes on one multiprocessing.Lock: ratio >= 5; and vs the
//     raw MPI lock with every rank contending (information).
//   * barrier: time of one Barrier(size).wait() of every rank vs MPI_Barrier: ratio <= 2;
//     vs Python's multiprocessing.Barrier(2) (information).
//   * the cross-node path (state on rank 0, served by its progress thread; objects created
//     while MPX_NO_SHARED_MEMORY=1 is set): rank 1's lock pairs vs two MPI ping-pongs, and
//     the barrier vs MPI_Barrier, for information.
// The raw MPI lock needs Open MPI's one-sided "sm" component (the default "rdma" one crashes
// on this platform, see shared/PLATFORM.md): the benchmark sets OMPI_MCA_osc=sm before
// MPI_Init unless the variable is already set.
#include <mpi.h>
#include <mpx/mpx.hpp>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

#include "harness.hpp"

namespace bench = mpx::bench;

int main(int argc, char** argv) {
  ::setenv("OMPI_MCA_osc", "sm", 0);
  mpx::Environment env(argc, argv);
  const auto opt = bench::parse_options(argc, argv, "bench_sync");
  if (!bench::require_ranks(2, "bench_sync")) return 1;
  bench::Report report("bench_sync", opt);
  const auto& world = mpx::Communicator::world();
  const int rank = world.rank();
  const int size = world.size();
  MPI_Comm raw = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &raw);

  // The raw MPI lock: an exclusive passive-target epoch on rank 0's window.
  MPI_Win win = MPI_WIN_NULL;
  void* base = nullptr;
  const bool have_win = MPI_Win_allocate(8, 1, MPI_INFO_NULL, raw, &base, &win) == MPI_SUCCESS;
  auto raw_pair = [&] {
    MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
    MPI_Win_unlock(0, win);
  };

  mpx::Lock lock;
  const char* path = "shared memory";

  // ---- uncontended ----------------------------------------------------------------------------
  double alone_rate = 0;
  if (opt.wants("lock")) {
    report.progress("lock pairs, uncontended");
    auto mpx_body = [&](long n) {
      if (rank == 0)
        for (long i = 0; i < n; ++i) {
          lock.acquire();
          lock.release();
        }
    };
    if (have_win) {
      auto raw_body = [&](long n) {
        if (rank == 0)
          for (long i = 0; i < n; ++i) raw_pair();
      };
      const auto t = bench::compare(mpx_body, raw_body, opt);
      alone_rate = 1.0 / t.candidate;
      report.add({"lock pairs, uncontended", path, alone_rate / 1e6, "MPI_Win_lock excl",
                  1.0 / t.baseline / 1e6, "M pairs/s", bench::no_target()});
    } else {
      alone_rate = 1.0 / bench::measure(mpx_body, opt);
      report.skip("lock pairs, uncontended", path, "MPI_Win_lock excl", "MPI_Win_allocate failed");
    }
    try {
      const double py = bench::run_python("bench/python/sync_baseline.py",
                                          {"lock", opt.quick ? "20000" : "300000"});
      report.add({"lock pairs, uncontended", "vs Python", alone_rate / 1e6, "python mp.Lock",
                  py / 1e6, "M pairs/s", bench::at_least(5.0)});
    } catch (const bench::Skipped& e) {
      report.skip("lock pairs, uncontended", "vs Python", "python mp.Lock", e.what());
    }
  }

  // ---- contended ------------------------------------------------------------------------------
  if (opt.wants("lock")) {
    report.progress("lock pairs, contended");
    auto mpx_body = [&](long n) {
      for (long i = 0; i < n; ++i) {
        std::lock_guard guard(lock);
      }
    };
    double rate = 0;
    if (have_win) {
      auto raw_body = [&](long n) {
        for (long i = 0; i < n; ++i) raw_pair();
      };
      const auto t = bench::compare(mpx_body, raw_body, opt);
      rate = size / t.candidate;
      report.add({"lock pairs, contended", std::to_string(size) + " ranks", rate / 1e6,
                  "MPI_Win_lock excl", size / t.baseline / 1e6, "M pairs/s", bench::no_target()});
    } else {
      rate = size / bench::measure(mpx_body, opt);
    }
    try {
      const double py = bench::run_python("bench/python/sync_baseline.py",
                                          {"lock_contended", opt.quick ? "20000" : "200000"});
      report.add({"lock pairs, contended", std::to_string(size) + " ranks vs Python", rate / 1e6,
                  "python mp.Lock, 2 procs", py / 1e6, "M pairs/s", bench::at_least(5.0)});
    } catch (const bench::Skipped& e) {
      report.skip("lock pairs, contended", "vs Python", "python mp.Lock", e.what());
    }
  }

  // ---- barrier --------------------------------------------------------------------------------
  if (opt.wants("barrier")) {
    report.progress("barrier");
    mpx::Barrier barrier(size);
    auto mpx_body = [&](long n) {
      for (long i = 0; i < n; ++i) barrier.wait();
    };
    auto raw_body = [&](long n) {
      for (long i = 0; i < n; ++i) MPI_Barrier(raw);
    };
    const auto t = bench::compare(mpx_body, raw_body, opt);
    report.add({"barrier", std::to_string(size) + " ranks", t.candidate * 1e6, "MPI_Barrier",
                t.baseline * 1e6, "us", bench::at_most(2.0)});
    try {
      const double py = bench::run_python("bench/python/sync_baseline.py",
                                          {"barrier", opt.quick ? "2000" : "20000"});
      report.add({"barrier", std::to_string(size) + " ranks vs Python", t.candidate * 1e6,
                  "python mp.Barrier(2)", py, "us", bench::no_target()});
    } catch (const bench::Skipped& e) {
      report.skip("barrier", "vs Python", "python mp.Barrier", e.what());
    }
  }

  // ---- cross-node path (information) ---------------------------------------------------------
  // MPX_NO_SHARED_MEMORY is read when an object is created: objects made while it is set keep
  // their state on rank 0 and serve it from rank 0's progress thread, as across nodes.
  if (opt.wants("host")) {
    ::setenv("MPX_NO_SHARED_MEMORY", "1", 1);
    mpx::Lock hosted_lock;
    mpx::Barrier hosted_barrier(size);
    ::unsetenv("MPX_NO_SHARED_MEMORY");
    const char* hosted = "host rank 0";
    report.progress("lock pairs and barrier, cross-node path");
    // Rank 0 must not sit in a spinning MPI call meanwhile: a blocked MPI thread slows the
    // progress thread's MPI calls to milliseconds (shared/PLATFORM.md). Both sides end with
    // the harness's sleeping barrier.
    auto lock_body = [&](long n) {
      if (rank == 1)
        for (long i = 0; i < n; ++i) {
          hosted_lock.acquire();
          hosted_lock.release();
        }
      bench::idle_barrier(raw);
    };
    auto pingpong_body = [&](long n) {  // one MPI round trip per iteration, as a reference
      std::int64_t v = 0;
      for (long i = 0; i < n; ++i) {
        if (rank == 1) {
          MPI_Send(&v, 8, MPI_BYTE, 0, 7, raw);
          MPI_Recv(&v, 8, MPI_BYTE, 0, 7, raw, MPI_STATUS_IGNORE);
        } else if (rank == 0) {
          MPI_Recv(&v, 8, MPI_BYTE, 1, 7, raw, MPI_STATUS_IGNORE);
          MPI_Send(&v, 8, MPI_BYTE, 1, 7, raw);
        }
      }
      bench::idle_barrier(raw);
    };
    const auto t = bench::compare(lock_body, pingpong_body, opt);
    report.add({"lock pairs, rank 1", hosted, 1.0 / t.candidate / 1e6, "2 MPI round trips",
                0.5 / t.baseline / 1e6, "M pairs/s", bench::no_target()});
    auto barrier_body = [&](long n) {
      for (long i = 0; i < n; ++i) hosted_barrier.wait();
    };
    auto raw_body = [&](long n) {
      for (long i = 0; i < n; ++i) MPI_Barrier(raw);
    };
    const auto b = bench::compare(barrier_body, raw_body, opt);
    report.add({"barrier", std::string(hosted) + ", " + std::to_string(size) + " ranks",
                b.candidate * 1e6, "MPI_Barrier", b.baseline * 1e6, "us", bench::no_target()});
  }

  if (have_win) MPI_Win_free(&win);
  MPI_Comm_free(&raw);
  return report.finish();
}
