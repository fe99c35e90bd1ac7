// bench_launch: what starting a job costs. Times `mpiexec -n 2 hello` (an mpx program:
// MPI_Init_thread(MPI_THREAD_MULTIPLE), the progress thread, printing) against
// `mpiexec -n 2 launch_bare` (MPI_Init + MPI_Finalize, nothing else), alternating the two,
// and the same two programs started alone (a singleton world of one rank).
// The result is reported beside the bare program; there is no target.
// It starts the jobs itself, so run it directly, not under mpiexec:
//   build-release/bin/bench_launch [--quick] [--json] [--rounds N]
//
// mpx-bench: ranks=0
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bench = mpx::bench;

namespace {

/// Median seconds of `candidate` and `baseline`, run alternately `rounds` times after one
/// untimed run of each (local). Throws bench::Skipped when a command fails.
std::pair<double, double> time_pair(const std::string& candidate, const std::string& baseline,
                                    int rounds) {
  std::vector<double> c, b;
  for (int i = 0; i <= rounds; ++i) {
    const double tc = bench::time_command_once(candidate);
    const double tb = bench::time_command_once(baseline);
    if (i > 0) c.push_back(tc), b.push_back(tb);
  }
  return {bench::median(c), bench::median(b)};
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = bench::parse_options(argc, argv, "bench_launch");
  if (opt.rounds == 9 && !opt.quick) opt.rounds = 7;  // each round starts four jobs
  bench::Report report("bench_launch", opt);
  if (bench::mpi_active() || std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr)
    std::fprintf(stderr, "note: bench_launch starts its own jobs; run it directly, not under mpiexec\n");

  const std::string bin = MPX_BINARY_DIR;
  const std::string hello = bin + "/hello";
  const std::string bare = bin + "/launch_bare";
  for (const auto& program : {hello, bare}) {
    if (::access(program.c_str(), X_OK) != 0) {
      report.skip("launch", "mpiexec -n 2", "MPI_Init/Finalize",
                  program + " is not built (build the targets hello and launch_bare)");
      return report.finish();
    }
  }

  // Same launcher options for both programs: as root Open MPI needs --allow-run-as-root,
  // and more ranks than cores need --oversubscribe.
  std::string mpiexec = bench::clean_mpi_env_prefix() + " " + std::string(MPX_MPIEXEC) + " -n 2";
  if (::geteuid() == 0) mpiexec += " --allow-run-as-root";
  if (std::thread::hardware_concurrency() < 2) mpiexec += " --oversubscribe";
  const std::string alone = bench::clean_mpi_env_prefix() + " ";

  struct Case {
    std::string name, candidate, baseline;
  };
  const std::vector<Case> cases{
      {"mpiexec -n 2", mpiexec + " " + hello, mpiexec + " " + bare},
      {"singleton (no mpiexec)", alone + hello, alone + bare},
  };
  for (const auto& c : cases) {
    if (!opt.wants(c.name)) continue;
    report.progress(c.name);
    try {
      const auto [t_hello, t_bare] = time_pair(c.candidate, c.baseline, opt.rounds);
      report.add({"launch hello", c.name, t_hello, "MPI_Init/Finalize", t_bare, "s", bench::no_target(),
                  c.name == "mpiexec -n 2" ? "wall time from starting the command to its exit; "
                                             "hello = mpx::Environment (MPI_THREAD_MULTIPLE, "
                                             "progress thread) + one line per rank"
                                           : ""});
    } catch (const bench::Skipped& e) {
      report.skip("launch hello", c.name, "MPI_Init/Finalize", e.what());
    }
  }
  return report.finish();
}
