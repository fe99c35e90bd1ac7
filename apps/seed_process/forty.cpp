// Seed 004, "Process": cpu_count, then 40 processes started all at once and joined.
//
//   Python (seed 004)                                     mpx
//   mp.cpu_count()                                        mpx::cpu_count()
//   procs=[mp.Process(target=stampa, args=(str(i),))      procs.emplace_back(stampa,
//          ...                                                             std::to_string(i));
//          for i in range(40)]
//   for i in procs: i.start()                             for (auto& p : procs) p.start();
//
// Python forks 40 processes; mpx runs the 40 targets on the job's process slots (ranks
// 1..N-1): start() waits for a free slot when all are busy, so the lines come out in rough
// order, interleaved between slots as in the seed. Run: mpiexec -n 4 forty.
#include <mpx/mpx.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"

void stampa(std::string string) {
  std::printf("La stringa \u00e8 %s\n", string.c_str());
  std::fflush(stdout);
}
MPX_REGISTER(stampa);

int main(int argc, char** argv) {
  mpx::Environment env(argc, argv);
  mpx::apps::Cli cli(argc, argv, "forty", "[--processes N]");
  const int n = static_cast<int>(cli.integer("--processes", 40));
  cli.done();
  if (auto main_process = mpx::ProcessSlots::serve()) {
    std::printf("The number of cores is %d\n", mpx::cpu_count());
    std::fflush(stdout);
    std::vector<mpx::Process> procs;
    for (int i = 0; i < n; ++i) procs.emplace_back(stampa, std::to_string(i));
    for (auto& p : procs) p.start();
    for (auto& p : procs) p.join();
    int failed = 0;
    for (auto& p : procs) failed += p.exitcode() != 0;
    std::printf("%d processes joined, %d failed (on %d process slots)\n", n, failed,
                main_process.slots());
  }
}
